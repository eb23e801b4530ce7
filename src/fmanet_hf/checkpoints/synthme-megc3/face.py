"""Face detection, 68-point landmarks, alignment and head-motion stabilisation.

The field's rule (field-notes section 3): detect and align on the ONSET frame only and
apply the same transform to apex and offset, so that landmark jitter never turns into
motion. On top of that, we remove rigid head motion between frames by registering apex
and offset to the aligned onset with a global (translation or rotation + translation)
ECC fit. A global fit uses every pixel of the crop, so the local, small motion of a
micro-expression hardly moves it, while a head shift of a few pixels is removed.

All transforms are 2x3 affine matrices in OpenCV's convention: ``crop = M @ [x, y, 1]``
maps SOURCE pixel coordinates (x right, y down, pixels) to CROP pixel coordinates.

Two face backends find the face and its 68 points (``face_backend``): ``"dlib"`` (HOG
detector + iBUG 300-W 68-point model: the default, whose model is licensed for
non-commercial use only) and ``"mediapipe"`` (Google's Apache-2.0 BlazeFace + face mesh run
by OpenCV, `face_mediapipe`). Both are imported lazily: a processor with
``align_faces=False`` never needs either.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import warnings
from dataclasses import dataclass

import cv2
import numpy as np

from .errors import FaceNotFoundError, FMANetConfigError, LandmarkModelError, StabilizationWarning

logger = logging.getLogger(__name__)

LANDMARK_MODEL_ENV = "FMANET_LANDMARK_MODEL"
LANDMARK_MODEL_FILENAME = "shape_predictor_68_face_landmarks.dat"

# 68-point (iBUG 300-W) index ranges.
LEFT_EYE = slice(36, 42)  # subject's right eye, on the image's left
RIGHT_EYE = slice(42, 48)

STABILIZATION_MODES = ("none", "translation", "euclidean")

#: Face backends: "dlib" (default; its 68-point model is non-commercial) or "mediapipe" (Apache-2.0).
FACE_BACKENDS = ("dlib", "mediapipe")

# Landmark groups that move in micro-expressions (brows + eyes, mouth + chin). Head-motion
# estimation ignores them so that it cannot absorb the very motion we want to measure.
EXPRESSIVE_REGIONS = (
    tuple(range(17, 22)) + tuple(range(36, 42)),
    tuple(range(22, 27)) + tuple(range(42, 48)),
    tuple(range(48, 60)) + tuple(range(5, 12)),
)


def find_landmark_model(explicit_path: str | os.PathLike | None = None) -> str:
    """Locate dlib's 68-point landmark model file.

    Order: ``explicit_path``; the ``FMANET_LANDMARK_MODEL`` environment variable; the file
    shipped by the ``face-recognition-models`` package (found without importing it: its
    ``__init__`` needs ``pkg_resources``, which modern environments lack).

    Raises:
        LandmarkModelError: none of these points at an existing file.
    """
    candidates = []
    if explicit_path:
        candidates.append(os.fspath(explicit_path))
    if os.environ.get(LANDMARK_MODEL_ENV):
        candidates.append(os.environ[LANDMARK_MODEL_ENV])
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidates.append(os.path.join(location, "models", LANDMARK_MODEL_FILENAME))
    for candidate in candidates:
        if os.path.isfile(candidate):
            return candidate
    raise LandmarkModelError(
        "dlib's 68-landmark model (shape_predictor_68_face_landmarks.dat) was not found. "
        "Install it with `pip install face-recognition-models`, or set the environment variable "
        f"{LANDMARK_MODEL_ENV} to the .dat file. Looked in: {candidates or 'nowhere (nothing configured)'}. "
        "Note: that model's training data (iBUG 300-W) is licensed for non-commercial use only."
    )


@functools.lru_cache(maxsize=4)
def _load_dlib_models(model_path: str):
    try:
        import dlib
    except ImportError:
        raise LandmarkModelError(
            "Face alignment needs dlib. Install the binary wheel with `pip install dlib-bin`, "
            "or pass align_faces=False to the processor."
        ) from None
    try:
        predictor = dlib.shape_predictor(model_path)
    except RuntimeError as error:
        raise LandmarkModelError(f"dlib could not load the landmark model {model_path!r}: {error}") from None
    return dlib.get_frontal_face_detector(), predictor


@dataclass(frozen=True)
class FaceDetection:
    """One detected face.

    Attributes:
        box: (x0, y0, x1, y1) in source pixels.
        landmarks: (68, 2) float32 array of (x, y) source pixel coordinates.
        num_faces: how many faces the detector found (the largest is kept).
    """

    box: tuple[int, int, int, int]
    landmarks: np.ndarray
    num_faces: int


def detect_face(
    gray: np.ndarray,
    *,
    upsample_schedule: tuple[int, ...] = (0, 1, 2),
    landmark_model_path: str | os.PathLike | None = None,
    detection_max_side: int | None = None,
    backend: str = "dlib",
) -> FaceDetection:
    """Detect the largest face and its 68 landmarks in a grey image.

    Each level in ``upsample_schedule`` is tried in turn, then the same on a
    histogram-equalised copy, before giving up. A level means: for ``backend="dlib"``, the
    HOG detector's upsampling (dlib's HOG is brittle: a face found at one upsampling can be
    missed at another); for ``"mediapipe"``, BlazeFace on the whole frame (0) or on
    overlapping tiles of a 2^-level side (faces smaller than about a sixth of the frame).

    dlib's detector cost grows with the image's area, while the landmarks need the full
    resolution. With ``detection_max_side`` (dlib only; BlazeFace always looks at a 128 px
    copy), a frame whose longer side exceeds it is first searched on a copy scaled down to
    that side (upsampling 0 only); a face found there has its box scaled back and its 68
    landmarks predicted on the FULL-resolution frame. Only if that finds nothing does the
    full-resolution schedule run.

    Args:
        gray: (H, W) grey image, uint8 or float in [0, 255].
        upsample_schedule: search levels to try, in order.
        landmark_model_path: optional explicit path of dlib's .dat model (dlib backend only).
        detection_max_side: longer side (pixels) of the downscaled copy searched first, or
            None to search the full-resolution frame only (dlib backend only).
        backend: one of `FACE_BACKENDS`.

    Raises:
        FaceNotFoundError: no face at any level.
        LandmarkModelError: the backend's model files or package are missing.
        FMANetConfigError: unknown backend.
    """
    if backend not in FACE_BACKENDS:
        raise FMANetConfigError(f"face_backend must be one of {list(FACE_BACKENDS)}, got {backend!r}.")
    image_u8 = np.ascontiguousarray(np.clip(np.rint(gray), 0, 255).astype(np.uint8))
    height, width = image_u8.shape
    found = None
    if backend == "dlib":
        found = _detect_dlib(image_u8, tuple(upsample_schedule), landmark_model_path, detection_max_side)
    else:
        from .face_mediapipe import detect_face_mediapipe

        for candidate in (image_u8, cv2.equalizeHist(image_u8)):
            found = detect_face_mediapipe(candidate, tuple(upsample_schedule))
            if found is not None:
                break
    if found is None:
        raise FaceNotFoundError(
            f"No face was found in the onset frame ({height}x{width} px; face_backend={backend!r}, tried levels "
            f"{list(upsample_schedule)} on the frame and on a contrast-equalised copy). Pass frames that show a frontal "
            "face of at least ~60 px, try the other face_backend, or set align_faces=False if your frames are already "
            "cropped and aligned."
        )
    box, landmarks, num_faces = found
    if box[0] < 0 or box[1] < 0 or box[2] >= width or box[3] >= height:
        # Still usable, but part of the crop will be repeated edge pixels, not face.
        logger.warning(
            "The face box %s reaches past the %dx%d frame; the crop's missing part is filled with repeated "
            "edge pixels. Frame the face fully for reliable motion near that border.",
            box, width, height,
        )
    return FaceDetection(box=box, landmarks=landmarks, num_faces=num_faces)


def _detect_dlib(image_u8: np.ndarray, upsample_schedule: tuple[int, ...], landmark_model_path, detection_max_side):
    """(box, (68, 2) landmarks, faces found) of the largest HOG face, or None."""
    detector, predictor = _load_dlib_models(find_landmark_model(landmark_model_path))
    height, width = image_u8.shape
    # (image searched, upsampling levels, (x, y) factors from its pixels to the full frame's)
    tries: list[tuple[np.ndarray, tuple[int, ...], tuple[float, float]]] = []
    if detection_max_side is not None and max(height, width) > detection_max_side:
        factor = max(height, width) / float(detection_max_side)
        small_size = (max(1, int(round(width / factor))), max(1, int(round(height / factor))))
        small = cv2.resize(image_u8, small_size, interpolation=cv2.INTER_AREA)
        tries.append((small, (0,), (width / small_size[0], height / small_size[1])))
    full_scale = (1.0, 1.0)
    tries += [(image_u8, upsample_schedule, full_scale), (cv2.equalizeHist(image_u8), upsample_schedule, full_scale)]
    for candidate, schedule, factor in tries:
        for upsample in schedule:
            rectangles = list(detector(candidate, int(upsample)))
            if not rectangles:
                continue
            largest = max(rectangles, key=lambda r: r.width() * r.height())
            if len(rectangles) > 1:
                logger.info("Found %d faces; using the largest (%dx%d px).", len(rectangles), largest.width(), largest.height())
            if factor != full_scale:
                # dlib boxes are inclusive pixel ranges; scale their edges, not their corners' centres.
                import dlib

                (fx, fy) = factor
                largest = dlib.rectangle(
                    int(round(largest.left() * fx)),
                    int(round(largest.top() * fy)),
                    int(round((largest.right() + 1) * fx)) - 1,
                    int(round((largest.bottom() + 1) * fy)) - 1,
                )
            shape = predictor(image_u8, largest)
            landmarks = np.array([[shape.part(i).x, shape.part(i).y] for i in range(68)], dtype=np.float32)
            box = (largest.left(), largest.top(), largest.right(), largest.bottom())
            return box, landmarks, len(rectangles)
    return None


def eye_similarity_transform(
    landmarks: np.ndarray, crop_size: int, interocular_fraction: float, eye_line_height: float
) -> np.ndarray:
    """Similarity transform (rotation, uniform scale, translation) from source to crop.

    The eye centres are mapped onto a horizontal line at ``eye_line_height * crop_size``
    from the top, ``interocular_fraction * crop_size`` pixels apart and centred.

    Args:
        landmarks: (68, 2) source (x, y) pixels.
        crop_size: side of the square crop, pixels.
        interocular_fraction: eye distance as a fraction of the crop side, (0, 1).
        eye_line_height: eye line's distance from the top as a fraction of the side, (0, 1).

    Returns:
        (2, 3) float64 matrix mapping source to crop pixels.
    """
    left_eye = landmarks[LEFT_EYE].mean(axis=0).astype(np.float64)
    right_eye = landmarks[RIGHT_EYE].mean(axis=0).astype(np.float64)
    delta = right_eye - left_eye
    distance = float(np.hypot(*delta))
    if distance < 1e-6:
        raise FaceNotFoundError("Detected eye centres coincide; the landmarks are degenerate. Use a clearer onset frame.")
    scale = interocular_fraction * crop_size / distance
    angle = np.arctan2(delta[1], delta[0])
    cos, sin = scale * np.cos(-angle), scale * np.sin(-angle)
    rotation_scale = np.array([[cos, -sin], [sin, cos]])
    eye_centre = (left_eye + right_eye) / 2.0
    target_centre = np.array([crop_size / 2.0, eye_line_height * crop_size])
    translation = target_centre - rotation_scale @ eye_centre
    return np.hstack([rotation_scale, translation[:, None]])


def resize_transform(height: int, width: int, crop_size: int | None) -> np.ndarray:
    """Source->crop transform for unaligned frames: plain scaling to a square side, or identity."""
    if crop_size is None:
        return np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    return np.array([[crop_size / width, 0.0, 0.0], [0.0, crop_size / height, 0.0]])


def _to_3x3(matrix: np.ndarray) -> np.ndarray:
    return np.vstack([matrix, [0.0, 0.0, 1.0]])


def warp_frame(gray: np.ndarray, source_to_crop: np.ndarray, out_height: int, out_width: int) -> np.ndarray:
    """Resample a grey frame into the crop with a (2, 3) source->crop matrix (bilinear, edges replicated)."""
    return cv2.warpAffine(
        gray.astype(np.float32),
        source_to_crop.astype(np.float64),
        (out_width, out_height),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )


def rigid_region_mask(landmarks_crop: np.ndarray | None, height: int, width: int) -> np.ndarray:
    """Mask (h, w) uint8 of the crop pixels used to estimate head motion.

    A border band is always left out (replicated edge pixels would pull the fit towards
    zero motion). With landmarks (crop pixels), the expressive regions (brows and eyes,
    mouth and chin, dilated by a quarter of the eye distance) are left out too.
    """
    border = max(2, min(height, width) // 16)
    mask = np.zeros((height, width), np.uint8)
    mask[border:-border, border:-border] = 1
    if landmarks_crop is None:
        return mask
    landmarks_crop = np.asarray(landmarks_crop, dtype=np.float32)
    eye_distance = float(np.hypot(*(landmarks_crop[RIGHT_EYE].mean(0) - landmarks_crop[LEFT_EYE].mean(0))))
    excluded = np.zeros_like(mask)
    for region in EXPRESSIVE_REGIONS:
        hull = cv2.convexHull(np.rint(landmarks_crop[list(region)]).astype(np.int32))
        cv2.fillConvexPoly(excluded, hull, 1)
    radius = max(1, int(round(0.25 * eye_distance)))
    excluded = cv2.dilate(excluded, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1)))
    rigid = mask & (1 - excluded)
    # Too little left (an extreme close-up): fall back to the whole interior.
    return rigid if rigid.sum() >= 0.1 * mask.sum() else mask


def stabilize_to_reference(
    reference_crop: np.ndarray,
    moving_frame: np.ndarray,
    source_to_crop: np.ndarray,
    mode: str = "euclidean",
    *,
    mask: np.ndarray | None = None,
    iterations: int = 60,
    epsilon: float = 1e-5,
) -> np.ndarray:
    """Refine the source->crop transform of ``moving_frame`` so it lines up with the reference crop.

    Rigid head motion between onset and apex/offset is estimated with OpenCV's ECC on the
    crop (a global fit, see module docstring) and folded into the transform, so the frame
    is resampled only once.

    Args:
        reference_crop: (h, w) aligned onset crop, float32 [0, 255].
        moving_frame: (H, W) full grey source frame of apex or offset.
        source_to_crop: (2, 3) transform used for the onset.
        mode: ``"none"``, ``"translation"`` or ``"euclidean"`` (rotation + translation).
        mask: (h, w) uint8 pixels to fit on (see `rigid_region_mask`); default: the interior.

    Returns:
        (2, 3) source->crop matrix for ``moving_frame``. If ECC fails (no convergence, a
        non-finite or singular estimate), the input transform is returned unchanged with a
        `StabilizationWarning`.
    """
    if mode == "none":
        return source_to_crop
    height, width = reference_crop.shape
    moving_crop = warp_frame(moving_frame, source_to_crop, height, width)
    motion = cv2.MOTION_TRANSLATION if mode == "translation" else cv2.MOTION_EUCLIDEAN
    warp = np.eye(2, 3, dtype=np.float32)
    if mask is None:
        mask = rigid_region_mask(None, height, width)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, iterations, epsilon)
    try:
        _, warp = cv2.findTransformECC(
            reference_crop.astype(np.float32), moving_crop, warp, motion, criteria, mask, 5
        )
    except cv2.error as error:
        # OpenCV's text starts with its source path: keep only what it says.
        reason = str(error).strip().splitlines()[-1].split("error: ")[-1].strip(" ()")[:120]
        return _stabilization_failed(f"ECC did not converge ({reason})", source_to_crop)
    if not np.isfinite(warp).all():
        return _stabilization_failed("ECC returned a non-finite motion estimate", source_to_crop)
    # ECC gives W with moving_crop(W x) ~ reference(x); moving_crop(y) = moving(T^-1 y).
    # So aligned(x) = moving(T^-1 W x): the source->crop map is W^-1 T.
    try:
        refined = np.linalg.inv(_to_3x3(warp.astype(np.float64))) @ _to_3x3(source_to_crop)
    except np.linalg.LinAlgError:
        return _stabilization_failed("ECC returned a singular motion estimate", source_to_crop)
    return refined[:2]


def _stabilization_failed(reason: str, source_to_crop: np.ndarray) -> np.ndarray:
    """Warn (a `StabilizationWarning`, which the pipeline puts in the result's ``warnings``)
    and return the onset transform: the frame is used without head-motion removal, so any
    head motion stays in its flow."""
    warnings.warn(
        f"Head-motion stabilisation failed: {reason}. That frame is aligned with the onset's transform only, so head "
        "motion between the frames remains in the optical flow (stabilization='none' skips this step).",
        StabilizationWarning,
        stacklevel=3,
    )
    return source_to_crop


def transform_points(points: np.ndarray, source_to_crop: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) transform to (N, 2) points; returns (N, 2) float32."""
    points = np.asarray(points, dtype=np.float64)
    return (points @ source_to_crop[:, :2].T + source_to_crop[:, 2]).astype(np.float32)
