"""Loading a SynthME 2.0 person's face: find the photograph, pick the person, crop, or morph.

A real person (:data:`.people.REAL_PEOPLE`): the photograph is located with
``importlib.util.find_spec`` (read in place, never copied), every face is detected (dlib
HOG on a copy of at most 1200 px, upsampling 0, then 1 if fewer faces than the photograph
should show were found; detections with score >= 0 and a jaw span >= 64 px are kept, with
68 landmarks predicted on the full-resolution image), the faces are ordered left to right,
the listed one is picked, and the photograph is cropped to a square around it (half-side
:data:`CROP_HALF_SIDE_JAW` jaw spans from the landmark centroid), so a second person in the
photograph never enters the frames.

A morph (:data:`.people.MORPHS`): both parents are loaded as above and morphed
(:mod:`.morph`); dlib is then run on the morph to check that it still shows a face.

Loaded faces are cached per process (keyed by file, size and modification time).
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from ...errors import DatasetError, FMANetConfigError, LandmarkModelError
from .faces import SourceFace
from .layout import file_sha256, package_version
from .morph import morph_faces
from .people import FACE_CHOICES, PEOPLE, Person, locate_person_file

logger = logging.getLogger(__name__)

MIN_FACE_JAW_PX = 64.0
MIN_DETECTION_SCORE = 0.0
UPSAMPLE_LEVELS = (0, 1)
DETECTION_MAX_SIDE_PX = 1200
CROP_HALF_SIDE_JAW = 1.2


@dataclass(frozen=True)
class DetectedFace:
    """One face found in a photograph.

    Attributes:
        landmarks: (68, 2) float32 (x, y) pixels of the full-resolution photograph.
        score: dlib HOG detection score (>= 0 kept).
        jaw_px: jaw span ``|landmark 16 - landmark 0|``, pixels of the photograph.
    """

    landmarks: np.ndarray
    score: float
    jaw_px: float


@dataclass(frozen=True)
class PersonFace:
    """A person's neutral face, ready to be framed into sessions.

    Attributes:
        person: the table entry.
        face: (H, W, 3) uint8 RGB image (the crop, or the morph canvas) with its (68, 2)
            float32 landmarks in that image's pixels.
        provenance: JSON-ready record for the manifest (file, sha256, package version,
            licence, detection and crop; for a morph the parents' records).
    """

    person: Person
    face: SourceFace
    provenance: dict[str, Any]


@functools.lru_cache(maxsize=2)
def _dlib_models(model_path: str):
    try:
        import dlib
    except ImportError:
        raise LandmarkModelError("SynthME needs dlib to find the faces. Install the binary wheel with `pip install dlib-bin`.") from None
    try:
        predictor = dlib.shape_predictor(model_path)
    except RuntimeError as error:
        raise LandmarkModelError(f"dlib could not load the landmark model {model_path!r}: {error}") from None
    return dlib, dlib.get_frontal_face_detector(), predictor


def detect_faces(rgb: np.ndarray, upsample: int) -> list[DetectedFace]:
    """Every usable face of a photograph at one dlib upsampling level, left to right.

    Detection runs on a copy of at most :data:`DETECTION_MAX_SIDE_PX` px; the 68 landmarks
    are predicted on the full-resolution grey image. Faces with a detection score below
    :data:`MIN_DETECTION_SCORE` or a jaw span under :data:`MIN_FACE_JAW_PX` are dropped.

    Args:
        rgb: (H, W, 3) uint8 RGB photograph.
        upsample: dlib upsampling level (0 or 1).

    Returns:
        Faces ordered by the x of their landmark centroid (left to right).

    Raises:
        LandmarkModelError: dlib or its landmark model is missing.
    """
    from ...face import find_landmark_model
    from ...frames import to_gray_float

    dlib, detector, predictor = _dlib_models(find_landmark_model())
    gray = to_gray_float(rgb)
    full = np.ascontiguousarray(np.clip(np.rint(gray), 0, 255).astype(np.uint8))
    scale = min(1.0, DETECTION_MAX_SIDE_PX / max(gray.shape))
    small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1.0 else gray
    small_u8 = np.ascontiguousarray(np.clip(np.rint(small), 0, 255).astype(np.uint8))
    rectangles, scores, _ = detector.run(small_u8, int(upsample), MIN_DETECTION_SCORE)
    faces = []
    for rectangle, score in zip(rectangles, scores):
        if score < MIN_DETECTION_SCORE:
            continue
        box = dlib.rectangle(
            int(round(rectangle.left() / scale)), int(round(rectangle.top() / scale)),
            int(round(rectangle.right() / scale)), int(round(rectangle.bottom() / scale)),
        )
        shape = predictor(full, box)
        landmarks = np.array([[shape.part(i).x, shape.part(i).y] for i in range(68)], dtype=np.float32)
        jaw = float(np.hypot(*(landmarks[16] - landmarks[0])))
        if jaw >= MIN_FACE_JAW_PX:
            faces.append(DetectedFace(landmarks=landmarks, score=float(score), jaw_px=jaw))
    return sorted(faces, key=lambda face: float(face.landmarks[:, 0].mean()))


def pick_face(faces: list[DetectedFace], choice: str) -> DetectedFace:
    """The ``"largest"`` (widest jaw), ``"left"`` or ``"right"`` face of a left-to-right list."""
    if choice not in FACE_CHOICES:
        raise FMANetConfigError(f"Unknown face choice {choice!r}; use one of {FACE_CHOICES}.")
    if choice == "left":
        return faces[0]
    if choice == "right":
        return faces[-1]
    return max(faces, key=lambda face: face.jaw_px)


def crop_around_face(rgb: np.ndarray, landmarks: np.ndarray, half_side_jaw: float = CROP_HALF_SIDE_JAW) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int, int]]:
    """Square crop centred on the landmark centroid, ``half_side_jaw`` jaw spans each way.

    Args:
        rgb: (H, W, 3) photograph.
        landmarks: (68, 2) (x, y) pixels of the face to keep.
        half_side_jaw: half the crop side, in jaw spans (landmark 0 to 16).

    Returns:
        (crop (h, w, 3), landmarks in crop pixels (68, 2) float32, box (x0, y0, x1, y1)
        in photograph pixels, clipped to the photograph, x1/y1 exclusive).
    """
    landmarks = np.asarray(landmarks, np.float64)
    centre = landmarks.mean(axis=0)
    half = half_side_jaw * float(np.hypot(*(landmarks[16] - landmarks[0])))
    height, width = rgb.shape[:2]
    x0, y0 = max(0, int(np.floor(centre[0] - half))), max(0, int(np.floor(centre[1] - half)))
    x1, y1 = min(width, int(np.ceil(centre[0] + half)) + 1), min(height, int(np.ceil(centre[1] + half)) + 1)
    crop = np.ascontiguousarray(rgb[y0:y1, x0:x1])
    return crop, (landmarks - np.array([x0, y0])).astype(np.float32), (x0, y0, x1, y1)


@functools.lru_cache(maxsize=16)
def _photograph_face(person_id: str, path: str, mtime_ns: int, size: int) -> PersonFace:
    from PIL import Image

    person = PEOPLE[person_id]
    try:
        with Image.open(path) as image:
            rgb = np.asarray(image.convert("RGB")).copy()
    except (OSError, ValueError) as error:
        raise DatasetError(f"Could not read {path} for SynthME person {person_id!r} ({error}). Reinstall `{person.install}`.") from None
    faces: list[DetectedFace] = []
    used_upsample = UPSAMPLE_LEVELS[-1]
    for upsample in UPSAMPLE_LEVELS:
        faces = detect_faces(rgb, upsample)
        if len(faces) >= person.faces_in_photo:
            used_upsample = upsample
            break
    if len(faces) < person.faces_in_photo:
        raise DatasetError(
            f"SynthME person {person_id!r}: {path} should show {person.faces_in_photo} face(s) of >= {MIN_FACE_JAW_PX:.0f} px, "
            f"dlib found {len(faces)} (upsampling {list(UPSAMPLE_LEVELS)}). The file may differ from the surveyed one: "
            f"install the surveyed version with `{person.install}`."
        )
    chosen = pick_face(faces, person.face)
    crop, landmarks, box = crop_around_face(rgb, chosen.landmarks)
    provenance = {
        "person": person_id,
        "kind": person.kind,
        "package": person.distribution,
        "package_version": package_version(person.distribution),
        "file": person.file,
        "sha256": file_sha256(path),
        "licence": person.licence,
        "note": person.note,
        "face": person.face,
        "faces_found": len(faces),
        "upsample": used_upsample,
        "detection_score": round(chosen.score, 3),
        "jaw_px": round(chosen.jaw_px, 1),
        "crop_box": list(box),
    }
    return PersonFace(person=person, face=SourceFace(rgb=crop, landmarks=landmarks), provenance=provenance)


@functools.lru_cache(maxsize=8)
def _morph_face(person_id: str, first_key: tuple, second_key: tuple) -> PersonFace:
    person = PEOPLE[person_id]
    first, second = (_photograph_face(*key) for key in (first_key, second_key))
    morph = morph_faces(first.face, second.face)
    faces = detect_faces(morph.face.rgb, 0) or detect_faces(morph.face.rgb, 1)
    if not faces:
        raise DatasetError(
            f"The morph {person_id!r} shows no face dlib can find, so it cannot stand for a person: this is an error "
            "in the SynthME 2.0 people table (fmanet_hf.data.synthetic.people). Please report it."
        )
    detected = pick_face(faces, "largest")
    iod = float(np.hypot(*(morph.face.landmarks[42:48].mean(axis=0) - morph.face.landmarks[36:42].mean(axis=0))))
    error_iod = float(np.hypot(*(detected.landmarks - morph.face.landmarks).T).mean()) / iod
    provenance = {
        "person": person_id,
        "kind": "morph",
        "parents": [first.provenance, second.provenance],
        "licence": "; ".join(f"{p.provenance['person']}: {p.provenance['licence']}" for p in (first, second)),
        "method": "landmark morph: similarity alignment, mean shape, piecewise-affine warp (Delaunay), 50/50 cross-dissolve",
        "canvas_px": int(morph.face.rgb.shape[0]),
        "redetected_score": round(detected.score, 3),
        "redetected_landmark_error_iod": round(error_iod, 4),
    }
    return PersonFace(person=person, face=morph.face, provenance=provenance)


def _photograph_key(person: Person) -> tuple:
    path = locate_person_file(person)
    stat = os.stat(path)
    return (person.id, path, stat.st_mtime_ns, stat.st_size)


def load_person_face(person: Person | str) -> PersonFace:
    """A person's neutral face with its landmarks and provenance (cached per process).

    Args:
        person: a :class:`.people.Person` or its id.

    Returns:
        :class:`PersonFace`.

    Raises:
        FMANetConfigError: an unknown person id.
        DatasetError: a package or file is missing (the message gives the pip command), the
            photograph shows fewer faces than listed, or a morph shows no face.
        LandmarkModelError: dlib or its landmark model is missing.
    """
    if isinstance(person, str):
        if person not in PEOPLE:
            raise FMANetConfigError(f"Unknown person {person!r}. Known people: {sorted(PEOPLE)}.")
        person = PEOPLE[person]
    if person.kind == "morph":
        first, second = (PEOPLE[parent] for parent in person.parents)
        return _morph_face(person.id, _photograph_key(first), _photograph_key(second))
    return _photograph_face(*_photograph_key(person))


__all__ = [
    "CROP_HALF_SIDE_JAW",
    "DETECTION_MAX_SIDE_PX",
    "MIN_DETECTION_SCORE",
    "MIN_FACE_JAW_PX",
    "UPSAMPLE_LEVELS",
    "DetectedFace",
    "PersonFace",
    "crop_around_face",
    "detect_faces",
    "load_person_face",
    "pick_face",
]
