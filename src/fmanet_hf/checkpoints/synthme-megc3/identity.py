"""Whether the three frames of a sample show the same person: landmark geometry after alignment.

A micro-expression moves the face by a few pixels; it does not change who it is. So the
68 landmarks of the apex (and offset) frame, aligned onto the onset's by the similarity
transform (rotation, uniform scale, translation) that fits them best, should land where
the onset's are, up to the expression and the detector's noise. The criterion uses only the
landmarks an expression barely moves and that do not bend with head yaw as the jaw contour
does: the nose (27-35) and the eyes (36-47). Their root-mean-square residual after the
fit, divided by the onset's inter-ocular distance (between the two eye centres), is
`landmark_geometry_distance`.

`DIFFERENT_PERSON_THRESHOLD` was measured by ``benchmarks/identity_threshold.py``
(benchmarks/results/identity-threshold.json) on the 7 real people whose photographs
installed packages ship: the 72 onset/apex and onset/offset pairs of SynthME 2.0 clips of
6 of them reach at most 0.032; the 21 pairs of two different people's photographs lie
between 0.033 and 0.19. The threshold, 0.04, flags none of those same-person pairs and 18
of the 21 different-people pairs (it misses people whose eyes and nose are alike). A
distance above it gives an `AmbiguousInputWarning`, never an error: the check can be wrong
(a strong pose change, a poor detection), and the user decides.
"""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import numpy as np

from .errors import AmbiguousInputWarning, FMANetInputError

#: Landmarks an expression barely moves and yaw does not bend: nose and eyes (dlib 68-point indices).
STABLE_LANDMARKS = (*range(27, 36), *range(36, 48))
#: Above this distance (RMS residual / inter-ocular distance) the apex or offset is taken for
#: another person's face (measured: see the module docstring).
DIFFERENT_PERSON_THRESHOLD = 0.04


def landmark_geometry_distance(reference: np.ndarray, other: np.ndarray) -> float:
    """How much ``other``'s face shape differs from ``reference``'s, pose removed.

    Args:
        reference: (68, 2) landmarks (pixels) of the onset face.
        other: (68, 2) landmarks (pixels) of the apex or offset face.

    Returns:
        RMS distance (in inter-ocular distances of ``reference``) between the stable
        landmarks of ``reference`` and those of ``other`` after the least-squares
        similarity transform of ``other`` onto ``reference`` (Umeyama's solution).
    """
    index = list(STABLE_LANDMARKS)
    target = np.asarray(reference, dtype=np.float64)[index]
    source = np.asarray(other, dtype=np.float64)[index]
    target_centred = target - target.mean(axis=0)
    source_centred = source - source.mean(axis=0)
    covariance = target_centred.T @ source_centred / len(index)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:  # a reflection is not a pose
        sign[1, 1] = -1
    rotation = u @ sign @ vt
    source_variance = (source_centred**2).sum() / len(index)
    scale = float(np.trace(np.diag(singular) @ sign) / source_variance) if source_variance > 0 else 1.0
    aligned = scale * source_centred @ rotation.T
    residual = np.sqrt(((aligned - target_centred) ** 2).sum(axis=1).mean())
    reference = np.asarray(reference, dtype=np.float64)
    interocular = np.linalg.norm(reference[36:42].mean(axis=0) - reference[42:48].mean(axis=0))
    return float(residual / max(interocular, 1e-6))


def warn_if_not_the_same_person(grey_frames: Sequence[np.ndarray], *, landmark_model_path: Any = None) -> list[float]:
    """Detect the face in each of (onset, apex, offset) and warn (`AmbiguousInputWarning`)
    when the apex's or offset's landmark geometry is further than `DIFFERENT_PERSON_THRESHOLD`
    from the onset's.

    Args:
        grey_frames: the three (H, W) grey frames, [0, 255].
        landmark_model_path: the dlib 68-point model (default: the installed one).

    Returns:
        The two distances (apex, offset); NaN where a face was not found (then nothing is claimed).
    """
    from .face import detect_face

    landmarks = []
    for frame in grey_frames:
        try:
            landmarks.append(detect_face(frame, landmark_model_path=landmark_model_path).landmarks)
        except FMANetInputError:  # no face in that frame: the processor says so where it matters
            landmarks.append(None)
    distances = []
    for name, other in zip(("apex", "offset"), landmarks[1:]):
        if landmarks[0] is None or other is None:
            distances.append(float("nan"))
            continue
        distance = landmark_geometry_distance(landmarks[0], other)
        distances.append(distance)
        if distance > DIFFERENT_PERSON_THRESHOLD:
            warnings.warn(
                f"The {name} frame's face does not match the onset's: its landmark geometry differs by {distance:.3f} "
                f"inter-ocular distances after alignment (same-person frames stay under {DIFFERENT_PERSON_THRESHOLD}). "
                "Is it another person, or another clip? Check the frames.",
                AmbiguousInputWarning,
                stacklevel=2,
            )
    return distances


__all__ = ["DIFFERENT_PERSON_THRESHOLD", "STABLE_LANDMARKS", "landmark_geometry_distance", "warn_if_not_the_same_person"]
