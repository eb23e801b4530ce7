"""The ``"mediapipe"`` face backend: Google's BlazeFace detector and face-mesh landmarks, run
by OpenCV's own DNN module, with the 68-point layout the rest of the package uses.

Why this backend exists: dlib's 68-point model (the default backend) was trained on iBUG
300-W, whose licence excludes commercial use. MediaPipe's models are distributed by Google
under Apache-2.0 (docs/face-backends.md records what was checked and why this one).

Where the model files come from: the ``mediapipe`` wheels up to 0.10.21 ship
``modules/face_detection/face_detection_short_range.tflite`` and
``modules/face_landmark/face_landmark.tflite`` (later wheels no longer do). Only these two
files are read, found with ``importlib.util.find_spec`` without importing mediapipe: its
declared dependencies (another OpenCV build, ``numpy<2``, jax) would break this package's
environment, so it is installed data-only, ``pip install --no-deps mediapipe==0.10.21``.
``$FMANET_MEDIAPIPE_MODELS`` may instead name a folder holding the two files. OpenCV (>= 4.8)
reads TFLite models itself (``cv2.dnn.readNetFromTFLite``), so no other runtime is needed.

How a face is found (the steps of MediaPipe's own face-mesh graph, written out here):

1. BlazeFace (short range) on the frame letterboxed to 128 x 128: 896 anchor boxes, each
   with a score and 6 key points (eyes, nose tip, mouth, ears); overlapping boxes are merged
   by score-weighted averaging. Short range means a face must fill a fair part of the
   frame; ``search_levels`` then retry on overlapping tiles (level k: tiles of a 2^-k side).
2. A square region of 1.5 x the box side, rotated so that the detector's eyes are level,
   is resampled to 192 x 192 and the face-mesh model returns 468 points (and a face score).
3. The region is re-centred on those points (eye corners level, 1.5 x their extent) and the
   mesh is run once more: the detector's coarse eyes no longer limit the accuracy.
4. 68 of the 468 mesh vertices stand for the 68 iBUG points (`MESH_TO_68`), so alignment,
   the rigid-region mask and the figures work unchanged. Only the eye points decide the
   crop; the others only outline the regions that head-motion estimation leaves out.

Remote-code file: imports numpy, OpenCV and relative modules only.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from dataclasses import dataclass

import cv2
import numpy as np

from .errors import LandmarkModelError

logger = logging.getLogger(__name__)

MEDIAPIPE_MODELS_ENV = "FMANET_MEDIAPIPE_MODELS"
DETECTOR_FILENAME = "face_detection_short_range.tflite"
MESH_FILENAME = "face_landmark.tflite"
#: Where the two files lie inside the ``mediapipe`` package folder.
_PACKAGE_PATHS = {
    DETECTOR_FILENAME: ("modules", "face_detection", DETECTOR_FILENAME),
    MESH_FILENAME: ("modules", "face_landmark", MESH_FILENAME),
}
MEDIAPIPE_INSTALL = "pip install --no-deps mediapipe==0.10.21"

DETECTOR_SIZE = 128
MESH_SIZE = 192
#: BlazeFace (short range) score threshold and box-merging overlap, MediaPipe's own values.
MIN_DETECTION_SCORE = 0.5
MERGE_IOU = 0.3
#: Face-mesh presence score below which a region is taken to show no face.
MIN_MESH_SCORE = 0.5
#: The region around a face that the mesh model expects: 1.5 x the face's extent.
ROI_SCALE = 1.5

# fmt: off
#: Mesh vertex standing for each of the 68 iBUG points, in iBUG order: jaw 0-16, brows 17-26,
#: nose 27-35, eyes 36-47 (outer corner, upper lid, inner corner, lower lid), mouth 48-67.
#: Chosen by what each vertex marks on MediaPipe's canonical face mesh (eye and mouth corners,
#: lid and lip midpoints, brow arcs, nose ridge, jaw contour), and checked on real photographs
#: (benchmarks/face_backends.py prints the distances): the eye points, the only ones alignment
#: uses, agree with the iBUG eye contour to a few percent of the eye distance.
MESH_TO_68 = (
    127, 234, 93, 132, 58, 136, 150, 176, 152, 400, 379, 365, 288, 361, 323, 454, 356,  # jaw
    70, 63, 105, 66, 107,  # brow on the image's left (subject's right)
    336, 296, 334, 293, 300,  # brow on the image's right
    168, 197, 5, 4,  # nose ridge down to the tip
    75, 97, 2, 326, 305,  # nostrils and the base of the nose
    33, 160, 158, 133, 153, 144,  # eye on the image's left
    362, 385, 387, 263, 373, 380,  # eye on the image's right
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,  # outer lip
    78, 82, 13, 312, 308, 317, 14, 87,  # inner lip
)
# fmt: on
#: Eye-corner vertices (outer corners) that level the refined region, as MediaPipe does.
_EYE_CORNERS = (33, 263)


def find_mediapipe_models() -> tuple[str, str]:
    """Paths of the BlazeFace detector and the face-mesh model (``.tflite``).

    Order: the folder in ``$FMANET_MEDIAPIPE_MODELS``; the ``mediapipe`` package's folder
    (found without importing it).

    Raises:
        LandmarkModelError: neither holds both files.
    """
    looked = []
    folder = os.environ.get(MEDIAPIPE_MODELS_ENV)
    if folder:
        paths = (os.path.join(folder, DETECTOR_FILENAME), os.path.join(folder, MESH_FILENAME))
        looked.append(folder)
        if all(os.path.isfile(path) for path in paths):
            return paths
    spec = importlib.util.find_spec("mediapipe")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            paths = tuple(os.path.join(location, *_PACKAGE_PATHS[name]) for name in (DETECTOR_FILENAME, MESH_FILENAME))
            looked.append(location)
            if all(os.path.isfile(path) for path in paths):
                return paths
    raise LandmarkModelError(
        "face_backend='mediapipe' needs MediaPipe's face detector and face-mesh model files "
        f"({DETECTOR_FILENAME}, {MESH_FILENAME}), shipped by the mediapipe wheels up to 0.10.21. Install them "
        f"data-only with `{MEDIAPIPE_INSTALL}` (without --no-deps, mediapipe would replace this package's OpenCV "
        f"and numpy), or set {MEDIAPIPE_MODELS_ENV} to a folder holding both files, or use face_backend='dlib'. "
        f"Looked in: {looked or 'nowhere (mediapipe is not installed and the variable is not set)'}."
    )


_thread_local = threading.local()


def _networks(detector_path: str, mesh_path: str):
    """The two OpenCV DNN networks, one pair per thread (a network is not safe to share)."""
    key = (detector_path, mesh_path)
    cached = getattr(_thread_local, "networks", None)
    if cached is None or cached[0] != key:
        try:
            detector = cv2.dnn.readNetFromTFLite(detector_path)
            mesh = cv2.dnn.readNetFromTFLite(mesh_path)
        except (cv2.error, AttributeError) as error:
            raise LandmarkModelError(
                f"OpenCV {cv2.__version__} could not load the MediaPipe models {key}: {str(error).strip()[:200]}. "
                "OpenCV 4.8 or newer reads TFLite models; check that the files are complete."
            ) from None
        cached = (key, detector, mesh)
        _thread_local.networks = cached
    return cached[1], cached[2]


def _short_range_anchors() -> np.ndarray:
    """(896, 2) anchor centres in [0, 1] of BlazeFace short range, in the model's output order.

    MediaPipe's SSD anchor settings for this model: strides 8, 16, 16, 16 on a 128 px input;
    two anchors per cell and layer; layers of equal stride share one grid (16 x 16 x 2, then
    8 x 8 x 6); every anchor has unit size.
    """
    centres = []
    for grid, per_cell in ((DETECTOR_SIZE // 8, 2), (DETECTOR_SIZE // 16, 6)):
        for y in range(grid):
            for x in range(grid):
                centres.extend([((x + 0.5) / grid, (y + 0.5) / grid)] * per_cell)
    return np.asarray(centres, dtype=np.float64)


_ANCHORS = _short_range_anchors()


@dataclass(frozen=True)
class _Box:
    """One BlazeFace detection in source pixels: box (x0, y0, x1, y1), score, (6, 2) key points."""

    box: np.ndarray
    score: float
    keypoints: np.ndarray


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def _merge_overlapping(boxes: np.ndarray, scores: np.ndarray, keypoints: np.ndarray) -> list[_Box]:
    """MediaPipe's weighted non-maximum suppression: each cluster of boxes overlapping the best
    remaining one by more than `MERGE_IOU` becomes their score-weighted average."""
    order = np.argsort(-scores)
    boxes, scores, keypoints = boxes[order], scores[order], keypoints[order]
    merged = []
    remaining = np.ones(len(scores), dtype=bool)
    for index in range(len(scores)):
        if not remaining[index]:
            continue
        cluster = remaining & (_iou(boxes[index], boxes) > MERGE_IOU)
        cluster[index] = True
        weights = scores[cluster] / scores[cluster].sum()
        merged.append(
            _Box(
                box=(boxes[cluster] * weights[:, None]).sum(0),
                score=float(scores[index]),
                keypoints=(keypoints[cluster] * weights[:, None, None]).sum(0),
            )
        )
        remaining &= ~cluster
    return merged


def _detect_in_square(image_u8: np.ndarray, detector) -> list[_Box]:
    """BlazeFace on one image, letterboxed to 128 x 128; detections in the image's pixels."""
    height, width = image_u8.shape[:2]
    scale = DETECTOR_SIZE / max(height, width)
    pad_x, pad_y = (DETECTOR_SIZE - scale * width) / 2.0, (DETECTOR_SIZE - scale * height) / 2.0
    letterbox = np.array([[scale, 0.0, pad_x], [0.0, scale, pad_y]])
    square = cv2.warpAffine(image_u8, letterbox, (DETECTOR_SIZE, DETECTOR_SIZE), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    rgb = cv2.cvtColor(square, cv2.COLOR_GRAY2RGB)
    # The model expects RGB in [-1, 1].
    detector.setInput(cv2.dnn.blobFromImage(rgb, 1.0 / 127.5, mean=(127.5, 127.5, 127.5)))
    outputs = detector.forward(detector.getUnconnectedOutLayersNames())
    regressors = next(o for o in outputs if o.shape[-1] == 16).reshape(-1, 16).astype(np.float64)
    logits = next(o for o in outputs if o.shape[-1] == 1).reshape(-1).astype(np.float64)
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -100.0, 100.0)))
    keep = scores >= MIN_DETECTION_SCORE
    if not keep.any():
        return []
    raw, anchors, scores = regressors[keep], _ANCHORS[keep], scores[keep]
    # Offsets and sizes are in input pixels relative to the anchor (x first); to 128 px units.
    centre = anchors * DETECTOR_SIZE + raw[:, 0:2]
    size = raw[:, 2:4]
    boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
    keypoints = anchors[:, None, :] * DETECTOR_SIZE + raw[:, 4:16].reshape(-1, 6, 2)
    # Back from the letterbox to image pixels.
    boxes = (boxes - np.array([pad_x, pad_y, pad_x, pad_y])) / scale
    keypoints = (keypoints - np.array([pad_x, pad_y])) / scale
    return _merge_overlapping(boxes, scores, keypoints)


def _tiles(height: int, width: int, level: int) -> list[tuple[int, int, int]]:
    """Square tiles (x0, y0, side) covering the frame at a search level: side = short side /
    2^level (level 0: one square per short side along the long one), half-side overlap."""
    side = max(16, int(round(min(height, width) / 2**level)))
    step = max(1, side // 2)
    xs = list(range(0, max(1, width - side + 1), step))
    ys = list(range(0, max(1, height - side + 1), step))
    if xs[-1] + side < width:
        xs.append(width - side)
    if ys[-1] + side < height:
        ys.append(height - side)
    return [(x, y, side) for y in ys for x in xs]


def detect_faces_blazeface(image_u8: np.ndarray, detector, level: int) -> list[_Box]:
    """Faces at one search level. Level 0 looks at the whole frame letterboxed (a face should
    fill a sixth of the long side or more); level k >= 1 at tiles of a 2^-k short side."""
    height, width = image_u8.shape[:2]
    if level == 0:
        return _detect_in_square(image_u8, detector)
    found: list[_Box] = []
    for x0, y0, side in _tiles(height, width, level):
        for found_box in _detect_in_square(image_u8[y0 : y0 + side, x0 : x0 + side], detector):
            offset = np.array([x0, y0], dtype=np.float64)
            found.append(_Box(found_box.box + np.tile(offset, 2), found_box.score, found_box.keypoints + offset))
    if not found:
        return []
    # The same face seen by several overlapping tiles: merge again.
    return _merge_overlapping(
        np.stack([b.box for b in found]), np.array([b.score for b in found]), np.stack([b.keypoints for b in found])
    )


def _region_transform(centre: np.ndarray, side: float, angle: float) -> np.ndarray:
    """(2, 3) source -> 192 px mesh-input transform of a square region rotated by ``angle``."""
    scale = MESH_SIZE / side
    cos, sin = scale * np.cos(-angle), scale * np.sin(-angle)
    rotation_scale = np.array([[cos, -sin], [sin, cos]])
    translation = np.array([MESH_SIZE / 2.0, MESH_SIZE / 2.0]) - rotation_scale @ centre
    return np.hstack([rotation_scale, translation[:, None]])


def _run_mesh(image_u8: np.ndarray, mesh, source_to_region: np.ndarray) -> tuple[np.ndarray, float]:
    """(468, 2) mesh points in source pixels and the face-presence score of one region."""
    region = cv2.warpAffine(
        image_u8, source_to_region, (MESH_SIZE, MESH_SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )
    rgb = cv2.cvtColor(region, cv2.COLOR_GRAY2RGB)
    mesh.setInput(cv2.dnn.blobFromImage(rgb, 1.0 / 255.0))  # the model expects RGB in [0, 1]
    outputs = mesh.forward(mesh.getUnconnectedOutLayersNames())
    points = next(o for o in outputs if o.size == 468 * 3).reshape(468, 3)[:, :2].astype(np.float64)
    logit = float(next(o for o in outputs if o.size == 1).reshape(()))
    score = 1.0 / (1.0 + np.exp(-np.clip(logit, -100.0, 100.0)))
    inverse = cv2.invertAffineTransform(source_to_region)
    return points @ inverse[:, :2].T + inverse[:, 2], score


def mesh_landmarks(image_u8: np.ndarray, face: _Box, mesh) -> tuple[np.ndarray, float]:
    """(468, 2) face-mesh points (source pixels) of a detected face and the mesh's face score."""
    x0, y0, x1, y1 = face.box
    right_eye, left_eye = face.keypoints[0], face.keypoints[1]  # subject's right eye is on the image's left
    angle = float(np.arctan2(left_eye[1] - right_eye[1], left_eye[0] - right_eye[0]))
    centre = np.array([(x0 + x1) / 2.0, (y0 + y1) / 2.0])
    side = ROI_SCALE * max(x1 - x0, y1 - y0)
    points, score = _run_mesh(image_u8, mesh, _region_transform(centre, side, angle))
    # Refine: the region MediaPipe's tracker would take from these points (eye corners level,
    # 1.5 x the points' extent in the rotated frame), then the mesh once more.
    corner_a, corner_b = points[_EYE_CORNERS[0]], points[_EYE_CORNERS[1]]
    angle = float(np.arctan2(corner_b[1] - corner_a[1], corner_b[0] - corner_a[0]))
    rotate = np.array([[np.cos(-angle), -np.sin(-angle)], [np.sin(-angle), np.cos(-angle)]])
    rotated = points @ rotate.T
    low, high = rotated.min(0), rotated.max(0)
    centre = rotate.T @ ((low + high) / 2.0)
    side = ROI_SCALE * float(max(high - low))
    if side > 1.0:
        points, score = _run_mesh(image_u8, mesh, _region_transform(centre, side, angle))
    return points, score


def detect_face_mediapipe(
    image_u8: np.ndarray, search_levels: tuple[int, ...]
) -> tuple[tuple[int, int, int, int], np.ndarray, int] | None:
    """The largest face of a grey uint8 image: (box, (68, 2) float32 landmarks, faces found),
    or None when no level finds a face the mesh confirms.

    Raises:
        LandmarkModelError: the model files are missing or unreadable.
    """
    detector, mesh = _networks(*find_mediapipe_models())
    for level in search_levels:
        faces = detect_faces_blazeface(image_u8, detector, int(level))
        faces.sort(key=lambda f: -(f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
        for face in faces:
            points, score = mesh_landmarks(image_u8, face, mesh)
            if score < MIN_MESH_SCORE:
                logger.info("The face mesh rejected a BlazeFace box %s (score %.2f).", np.round(face.box).tolist(), score)
                continue
            box = tuple(int(round(v)) for v in face.box)
            if len(faces) > 1:
                logger.info("Found %d faces; using the largest (%dx%d px).", len(faces), box[2] - box[0], box[3] - box[1])
            return box, points[list(MESH_TO_68)].astype(np.float32), len(faces)
    return None


__all__ = [
    "MEDIAPIPE_INSTALL",
    "MEDIAPIPE_MODELS_ENV",
    "MESH_TO_68",
    "detect_face_mediapipe",
    "detect_faces_blazeface",
    "find_mediapipe_models",
    "mesh_landmarks",
]
