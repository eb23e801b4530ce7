"""Facial action units as displacement fields on the 68 landmarks, and their timing.

An action unit (AU) is a sum of Gaussian-windowed pulls centred on the 68 dlib landmarks,
with radii proportional to the inter-ocular distance (IOD). An emotion is a set of AUs
(:data:`EMOTION_AUS`); :func:`au_displacement_field` sums their fields and scales the sum
so that its PEAK displacement is the clip's amplitude. :func:`temporal_profile` gives the
expression's intensity per frame.

Coordinates: (x, y) pixels, x right, y down. A *forward displacement field* is an
(H, W, 2) float32 array (dx, dy): the content at pixel x moves to x + D(x).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from ...errors import FaceNotFoundError, FMANetConfigError


# --------------------------------------------------------------------------------------
# 68-landmark geometry
# --------------------------------------------------------------------------------------
def _mirror_permutation() -> np.ndarray:
    """Index map of the 68 iBUG points under a horizontal flip (left and right swap roles)."""
    perm = np.arange(68)
    perm[0:17] = 16 - np.arange(17)  # jaw
    perm[17:27] = 43 - np.arange(17, 27)  # brows: 17 <-> 26
    perm[31:36] = 66 - np.arange(31, 36)  # nostrils: 31 <-> 35
    eyes = {36: 45, 37: 44, 38: 43, 39: 42, 40: 47, 41: 46}
    for a, b in eyes.items():
        perm[a], perm[b] = b, a
    perm[48:55] = 102 - np.arange(48, 55)  # outer upper lip: 48 <-> 54
    perm[55:60] = 114 - np.arange(55, 60)  # outer lower lip: 55 <-> 59
    perm[60:65] = 124 - np.arange(60, 65)  # inner upper lip: 60 <-> 64
    perm[65:68] = 132 - np.arange(65, 68)  # inner lower lip: 65 <-> 67
    return perm


MIRROR_68 = _mirror_permutation()


@dataclass(frozen=True)
class FaceAxes:
    """A face-aligned frame: unit vectors along the eye line and down the face, the IOD."""

    iod: float
    along_eyes: np.ndarray  # (2,) unit vector from the image-left eye to the image-right eye
    down_face: np.ndarray  # (2,) unit vector perpendicular to it, pointing to the chin
    midline: np.ndarray  # (2,) a point on the face's vertical midline (nose bridge)

    @classmethod
    def from_landmarks(cls, landmarks: np.ndarray) -> "FaceAxes":
        left_eye = landmarks[36:42].mean(axis=0).astype(np.float64)
        right_eye = landmarks[42:48].mean(axis=0).astype(np.float64)
        delta = right_eye - left_eye
        iod = float(np.hypot(*delta))
        if iod < 1e-3:
            raise FaceNotFoundError("Degenerate landmarks: both eye centres coincide.")
        along = delta / iod
        down = np.array([-along[1], along[0]])
        return cls(iod=iod, along_eyes=along, down_face=down, midline=landmarks[27:31].mean(axis=0).astype(np.float64))

    def side(self, point: np.ndarray) -> float:
        """+1 right of the midline (in the image), -1 left, 0 on it (within 0.08 IOD)."""
        offset = float((np.asarray(point, np.float64) - self.midline) @ self.along_eyes)
        return 0.0 if abs(offset) < 0.08 * self.iod else math.copysign(1.0, offset)

    def to_image(self, outward: float, downward: float, side: float) -> np.ndarray:
        """Face-frame vector (outward from the midline, down the face) -> image (dx, dy)."""
        return outward * side * self.along_eyes + downward * self.down_face


@dataclass(frozen=True)
class Pull:
    """One Gaussian-windowed displacement around landmarks (a building block of an AU).

    Each landmark in ``landmarks`` contributes ``weight * motion * exp(-r^2 / (2 sigma^2))``
    with ``sigma = radius * IOD`` centred on the landmark shifted by ``offset``.

    Attributes:
        landmarks: iBUG-68 indices used as centres.
        motion: (outward, downward) direction in the face frame; "outward" points away from
            the face midline, so one entry describes both sides.
        radius: Gaussian sigma in units of the inter-ocular distance.
        offset: (outward, downward) shift of the centre from the landmark, in IOD.
        weight: relative strength within its AU.
    """

    landmarks: tuple[int, ...]
    motion: tuple[float, float]
    radius: float
    offset: tuple[float, float] = (0.0, 0.0)
    weight: float = 1.0


@dataclass(frozen=True)
class ActionUnit:
    """A facial action unit as a set of landmark pulls plus its strength relative to others."""

    number: int
    name: str
    pulls: tuple[Pull, ...]
    strength: float = 1.0


_INNER_BROWS = (20, 21, 22, 23)
_OUTER_BROWS = (17, 18, 19, 24, 25, 26)
_UPPER_LIDS = (37, 38, 43, 44)
_LOWER_LIDS = (40, 41, 46, 47)
_LIP_CORNERS = (48, 54)

ACTION_UNITS: dict[int, ActionUnit] = {
    au.number: au
    for au in (
        ActionUnit(1, "inner brow raiser", (
            Pull(_INNER_BROWS, (0.0, -1.0), 0.22),
            Pull((21, 22), (0.0, -1.0), 0.28, offset=(0.0, -0.25), weight=0.6),  # forehead skin above
        )),
        ActionUnit(2, "outer brow raiser", (
            Pull(_OUTER_BROWS, (0.15, -1.0), 0.22),
        ), strength=0.9),
        ActionUnit(4, "brow lowerer", (
            Pull((21, 22), (-0.8, 0.6), 0.2),
            Pull((19, 20, 23, 24), (-0.6, 0.7), 0.2, weight=0.6),
        )),
        ActionUnit(5, "upper lid raiser", (Pull(_UPPER_LIDS, (0.0, -1.0), 0.1),), strength=0.5),
        ActionUnit(6, "cheek raiser", (
            Pull((41, 46), (0.1, -1.0), 0.3, offset=(0.05, 0.45)),
            Pull(_LOWER_LIDS, (0.0, -1.0), 0.12, weight=0.5),
        ), strength=0.7),
        ActionUnit(7, "lid tightener", (
            Pull(_LOWER_LIDS, (0.0, -1.0), 0.1),
            Pull(_UPPER_LIDS, (0.0, 0.4), 0.1, weight=0.4),
        ), strength=0.5),
        ActionUnit(9, "nose wrinkler", (
            Pull((31, 35), (0.0, -1.0), 0.16),
            Pull((29,), (0.0, -1.0), 0.2, weight=0.5),
            Pull((21, 22), (-0.3, 1.0), 0.18, weight=0.5),
        ), strength=0.8),
        ActionUnit(10, "upper lip raiser", (
            Pull((50, 51, 52), (0.0, -1.0), 0.16),
            Pull((49, 53), (0.0, -1.0), 0.16, weight=0.6),
        ), strength=0.8),
        ActionUnit(12, "lip corner puller", (
            Pull(_LIP_CORNERS, (0.8, -0.6), 0.22),
            Pull(_LIP_CORNERS, (0.5, -0.6), 0.28, offset=(0.15, -0.25), weight=0.5),
        )),
        ActionUnit(14, "dimpler", (Pull(_LIP_CORNERS, (0.7, -0.05), 0.14),), strength=0.7),
        ActionUnit(15, "lip corner depressor", (Pull(_LIP_CORNERS, (0.15, 1.0), 0.22),), strength=0.9),
        ActionUnit(17, "chin raiser", (
            Pull((7, 8, 9), (0.0, -1.0), 0.32, offset=(0.0, -0.15)),
            Pull((56, 57, 58), (0.0, -1.0), 0.16, weight=0.7),
        ), strength=0.9),
        ActionUnit(20, "lip stretcher", (Pull(_LIP_CORNERS, (1.0, 0.2), 0.24),), strength=0.8),
        ActionUnit(23, "lip tightener", (
            Pull((49, 50, 51, 52, 53), (0.0, 0.5), 0.13, weight=0.6),
            Pull((55, 56, 57, 58, 59), (0.0, -0.5), 0.13, weight=0.6),
            Pull(_LIP_CORNERS, (-1.0, 0.0), 0.13),
        ), strength=0.6),
        ActionUnit(26, "jaw drop", (
            Pull((56, 57, 58), (0.0, 1.0), 0.22, weight=0.8),
            Pull((6, 7, 8, 9, 10), (0.0, 1.0), 0.36),
        )),
    )
}

# Native emotion -> alternative AU combinations (one is drawn uniformly per clip).
# Several AU sets per emotion, as in coded datasets: micro-expressions are often partial
# (a lone AU12 smile, a brow flash without jaw drop), and emotions share AUs (fear and
# surprise both raise the brows and lids; happiness can open the jaw). Without this overlap a
# linear model on the flow separated the three classes almost perfectly.
EMOTION_AUS: dict[str, tuple[tuple[int, ...], ...]] = {
    "happiness": ((6, 12), (12,), (6, 12, 26), (12, 14)),
    "surprise": ((1, 2, 5, 26), (1, 2, 5), (1, 2), (1, 2, 26), (5, 26)),
    "disgust": ((9, 10), (4, 9), (4, 10), (4,)),
    "sadness": ((1, 4, 15), (1, 4), (15, 17)),
    "repression": ((14, 17), (15, 17), (14,)),
    "anger": ((4, 5, 23), (4, 7, 23), (4, 7)),
    "fear": ((1, 2, 4, 5, 20), (1, 2, 5, 20), (1, 2, 4), (1, 2, 5)),
}

BLINK_PULLS = (
    Pull(_UPPER_LIDS, (0.0, 1.0), 0.12),
    Pull(_LOWER_LIDS, (0.0, -0.3), 0.1, weight=0.3),
)


# --------------------------------------------------------------------------------------
# Displacement fields (public building blocks, also used by the tests)
# --------------------------------------------------------------------------------------
def pull_centres(
    landmarks: np.ndarray,
    pulls: Sequence[Pull],
    axes: FaceAxes,
    *,
    side_gains: tuple[float, float] = (1.0, 1.0),
    direction_jitter: np.ndarray | None = None,
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """Expand pulls into (centre (2,), displacement (2,), sigma px) Gaussian terms."""
    terms = []
    k = 0
    for pull in pulls:
        for index in pull.landmarks:
            point = landmarks[index].astype(np.float64)
            side = axes.side(point)
            centre = point + axes.to_image(pull.offset[0], pull.offset[1], side) * axes.iod
            vector = axes.to_image(pull.motion[0], pull.motion[1], side) * pull.weight
            if side != 0.0:
                vector = vector * (side_gains[0] if side < 0 else side_gains[1])
            if direction_jitter is not None:
                angle, gain = direction_jitter[k % len(direction_jitter)]
                c, s = math.cos(angle), math.sin(angle)
                vector = gain * np.array([c * vector[0] - s * vector[1], s * vector[0] + c * vector[1]])
            terms.append((centre, vector, pull.radius * axes.iod))
            k += 1
    return terms


def gaussian_sum_field(terms: Iterable[tuple[np.ndarray, np.ndarray, float]], shape: tuple[int, int]) -> np.ndarray:
    """Sum of isotropic Gaussian-windowed constant vectors, (H, W, 2) float32.

    An isotropic Gaussian is separable, so each term is an outer product of two 1-D
    Gaussians: O(H * W) per term without evaluating a 2-D exponential.
    """
    height, width = shape
    ys = np.arange(height, dtype=np.float64)
    xs = np.arange(width, dtype=np.float64)
    out = np.zeros((height, width, 2), np.float64)
    for centre, vector, sigma in terms:
        gy = np.exp(-((ys - centre[1]) ** 2) / (2.0 * sigma * sigma))
        gx = np.exp(-((xs - centre[0]) ** 2) / (2.0 * sigma * sigma))
        window = np.outer(gy, gx)
        out[..., 0] += vector[0] * window
        out[..., 1] += vector[1] * window
    return out.astype(np.float32)


def _peak_magnitude(field_: np.ndarray) -> float:
    return float(np.sqrt((field_.astype(np.float64) ** 2).sum(axis=-1)).max())


def scaled_to_peak(field_: np.ndarray, peak: float) -> np.ndarray:
    current = _peak_magnitude(field_)
    if current <= 1e-12:
        return np.zeros_like(field_)
    return (field_ * (peak / current)).astype(np.float32)


def au_displacement_field(
    landmarks: np.ndarray,
    aus: Sequence[int],
    amplitude_px: float,
    shape: tuple[int, int],
    *,
    au_weights: Sequence[float] | None = None,
    side_gains: tuple[float, float] = (1.0, 1.0),
    direction_jitter: np.ndarray | None = None,
) -> np.ndarray:
    """Forward displacement field of a set of action units at a given peak amplitude.

    Each AU's field is a sum of Gaussian-windowed pulls on the landmarks (see
    :data:`ACTION_UNITS`), normalised to peak 1 and multiplied by its strength and weight;
    the sum is then scaled so that its largest displacement is exactly ``amplitude_px``.

    Args:
        landmarks: (68, 2) (x, y) pixel positions of the neutral face in the frame.
        aus: AU numbers, e.g. ``(6, 12)``; each must be a key of :data:`ACTION_UNITS`.
        amplitude_px: peak displacement of the returned field, pixels (>= 0).
        shape: (height, width) of the frame, pixels.
        au_weights: optional relative intensity per AU (default 1 each).
        side_gains: multipliers for pulls on the image-left and image-right halves of the
            face (asymmetric expressions).
        direction_jitter: optional (K, 2) array of (rotation radians, gain) cycled over the
            Gaussian terms, for per-clip variation.

    Returns:
        (H, W, 2) float32 field (dx, dy) in pixels: content at x moves to x + field[y, x].
        Brow raising (AU1/AU2) has negative dy (upwards) at the brows.

    Raises:
        FMANetConfigError: unknown AU number or a negative amplitude.
    """
    if amplitude_px < 0 or not math.isfinite(amplitude_px):
        raise FMANetConfigError(f"amplitude_px must be a finite number >= 0, got {amplitude_px!r}.")
    unknown = [au for au in aus if au not in ACTION_UNITS]
    if unknown:
        raise FMANetConfigError(f"Unknown action unit(s) {unknown}; known: {sorted(ACTION_UNITS)}.")
    weights = [1.0] * len(aus) if au_weights is None else [float(w) for w in au_weights]
    if len(weights) != len(aus):
        raise FMANetConfigError(f"au_weights has {len(weights)} entries for {len(aus)} AUs.")
    landmarks = np.asarray(landmarks, np.float64)
    axes = FaceAxes.from_landmarks(landmarks)
    total = np.zeros((shape[0], shape[1], 2), np.float32)
    for au, weight in zip(aus, weights):
        unit = ACTION_UNITS[au]
        terms = pull_centres(landmarks, unit.pulls, axes, side_gains=side_gains, direction_jitter=direction_jitter)
        total += scaled_to_peak(gaussian_sum_field(terms, shape), unit.strength * weight)
    return scaled_to_peak(total, amplitude_px)


def temporal_profile(frames: int, onset: int, apex: int, offset: int, residual: float) -> np.ndarray:
    """Expression intensity per frame: 0 until onset, raised-cosine rise to 1 at the apex,
    raised-cosine decay to ``residual`` at the offset, then ``residual``.

    Args:
        frames: clip length N.
        onset, apex, offset: 0-based indices with ``0 <= onset < apex < offset < N``.
        residual: intensity kept at and after the offset, in [0, 1).

    Returns:
        (N,) float64 array in [0, 1].
    """
    t = np.arange(frames, dtype=np.float64)
    profile = np.zeros(frames)
    rise = (t >= onset) & (t <= apex)
    profile[rise] = 0.5 * (1.0 - np.cos(np.pi * (t[rise] - onset) / (apex - onset)))
    fall = (t > apex) & (t <= offset)
    profile[fall] = residual + (1.0 - residual) * 0.5 * (1.0 + np.cos(np.pi * (t[fall] - apex) / (offset - apex)))
    profile[t > offset] = residual
    return profile


__all__ = [
    "ACTION_UNITS",
    "BLINK_PULLS",
    "EMOTION_AUS",
    "MIRROR_68",
    "ActionUnit",
    "FaceAxes",
    "Pull",
    "au_displacement_field",
    "gaussian_sum_field",
    "pull_centres",
    "scaled_to_peak",
    "temporal_profile",
]
