"""What is drawn at random for SynthME: subject variants and clip parameters.

Everything is determined by the seed: each subject and each sample has its own
``numpy.random.SeedSequence`` child keyed by (subject, class name, repeat), so changing
one sample's settings does not reshuffle the others. Nuisance parameters (head drift,
noise, illumination, blinks, distractor AUs) are drawn from their own random stream,
never from the label's. Every parameter is recorded in the manifest.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .au_motion import EMOTION_AUS, Pull, temporal_profile
from .emotions import MEGC3_CLASSES, NATIVE_TO_MEGC3, NEGATIVE_EMOTIONS

# Where the face centroid (mean of the 68 landmarks, near the top of the nose) sits in the
# frame, as fractions of (width, height): a little below the middle leaves room for the
# forehead, which the brow AUs move.
FACE_CENTRE_IN_FRAME = (0.5, 0.56)
# Jaw span (landmark 0 to 16) as a fraction of the frame width: 0.56 of 320 px = 179 px.
BASE_FACE_WIDTH_FRACTION = 0.56

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
STREAM_SUBJECT, STREAM_ORDER, STREAM_SAMPLE = 1, 2, 3
SUB_EXPRESSION, SUB_TIMING, SUB_NUISANCE, SUB_NOISE, SUB_JITTER = 0, 1, 2, 3, 4

# Label-independent facial activity (drawn from the nuisance stream): with this probability a
# clip carries one extra AU at DISTRACTOR_WEIGHT_RANGE of the expression's strength, whatever
# its class, as real clips carry unrelated movements.
DISTRACTOR_PROBABILITY = 0.5
DISTRACTOR_AUS = (1, 2, 4, 7, 12, 14, 15, 17)
DISTRACTOR_WEIGHT_RANGE = (0.25, 0.6)

# Identity-changing shape variations: (name, pulls, peak displacement in IOD at coefficient 1).
SHAPE_VARIATIONS: tuple[tuple[str, tuple[Pull, ...], float], ...] = (
    ("eye_spacing", (Pull(tuple(range(36, 48)), (1.0, 0.0), 0.3),), 0.05),
    ("brow_height", (Pull(tuple(range(17, 27)), (0.0, -1.0), 0.3),), 0.05),
    ("nose_length", (Pull(tuple(range(30, 36)), (0.0, 1.0), 0.25),), 0.05),
    ("mouth_width", (Pull((48, 54, 60, 64), (1.0, 0.0), 0.25),), 0.05),
    ("mouth_height", (Pull(tuple(range(48, 68)), (0.0, 1.0), 0.35),), 0.05),
    ("jaw_width", (Pull((2, 3, 4, 5, 11, 12, 13, 14), (1.0, 0.0), 0.4),), 0.06),
    ("chin_length", (Pull((7, 8, 9), (0.0, 1.0), 0.4),), 0.06),
)



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
    face_width_fraction: float = BASE_FACE_WIDTH_FRACTION
    aspect: float = 1.0
    roll_deg: float = 0.0
    centre_shift: tuple[float, float] = (0.0, 0.0)
    gamma: float = 1.0
    contrast: float = 1.0
    brightness: float = 0.0
    shape_warp: dict[str, float] = field(default_factory=dict)


def draw_subject_variant(subject: int, source: str, variant: int, rng: np.random.Generator) -> SubjectVariant:
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
        shape_warp={name: float(rng.uniform(-1.0, 1.0)) for name, _, _ in SHAPE_VARIATIONS},
    )


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


def sample_seed(seed: int, subject: int, class_name: str, repeat: int, stream: int) -> np.random.Generator:
    # Keyed by the class NAME (crc32), not its position, so reordering ``classes`` keeps samples.
    key = (STREAM_SAMPLE, subject, zlib.crc32(class_name.encode("utf-8")), repeat, stream)
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))


@dataclass(frozen=True)
class ClipNuisance:
    """The label-independent draws of one clip (both generator versions)."""

    distractor_au: int | None
    fields: dict[str, Any]


def draw_clip_nuisance(nuisance: np.random.Generator, frames: int, aus: list[int], au_weights: list[float]) -> ClipNuisance:
    """Draw a clip's nuisance from its own stream, in a fixed order (changing it changes every set).

    A distractor AU (added to ``aus``/``au_weights`` in place), head drift, an optional blink,
    then the start pose, rotation, noise level and illumination drift. Returns the distractor
    and the `SampleParameters` fields ``head_start_px`` ... ``blink``.
    """
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
    fields = {
        # Every frame, the onset included, starts at a random sub-pixel pose, so bilinear
        # resampling blurs all frames alike (an unwarped onset would be sharper than the rest).
        "head_start_px": [float(nuisance.uniform(-0.5, 0.5)), float(nuisance.uniform(-0.5, 0.5))],
        "head_drift_px": [drift_radius * math.cos(drift_angle), drift_radius * math.sin(drift_angle)],
        "head_rotation_deg": float(nuisance.uniform(-HEAD_ROTATION_MAX_DEG, HEAD_ROTATION_MAX_DEG)),
        "noise_sigma": float(nuisance.uniform(*NOISE_SIGMA_RANGE)),
        "gain_drift": float(nuisance.uniform(-GAIN_DRIFT_MAX, GAIN_DRIFT_MAX)),
        "offset_drift": float(nuisance.uniform(-OFFSET_DRIFT_MAX, OFFSET_DRIFT_MAX)),
        "blink": blink,
    }
    return ClipNuisance(distractor_au=distractor_au, fields=fields)


def draw_sample(
    seed: int, subject: SubjectVariant, class_name: str, repeat: int, filename: str, frames: int, amplitude_range: tuple[float, float]
) -> SampleParameters:
    expression = sample_seed(seed, subject.subject, class_name, repeat, SUB_EXPRESSION)
    timing = sample_seed(seed, subject.subject, class_name, repeat, SUB_TIMING)
    nuisance = sample_seed(seed, subject.subject, class_name, repeat, SUB_NUISANCE)

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

    clip_nuisance = draw_clip_nuisance(nuisance, frames, aus, au_weights)
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
        **clip_nuisance.fields,
        source=subject.source,
        variant=subject.variant,
        distractor_au=clip_nuisance.distractor_au,
    )


def direction_jitter(seed: int, sample: SampleParameters) -> np.ndarray:
    """(64, 2) per-term (rotation radians, gain) variation of the AU pulls of one clip."""
    rng = sample_seed(seed, sample.subject, sample.requested_class, sample.repeat, SUB_JITTER)
    return np.stack([rng.normal(0.0, math.radians(8.0), 64), rng.uniform(0.8, 1.2, 64)], axis=1)


__all__ = [
    "ClipNuisance",
    "draw_clip_nuisance",
    "APEX_FRACTION_RANGE",
    "BASE_FACE_WIDTH_FRACTION",
    "BLINK_AMPLITUDE_IOD",
    "BLINK_PROBABILITY",
    "DISTRACTOR_AUS",
    "DISTRACTOR_PROBABILITY",
    "DISTRACTOR_WEIGHT_RANGE",
    "FACE_CENTRE_IN_FRAME",
    "GAIN_DRIFT_MAX",
    "HEAD_ROTATION_MAX_DEG",
    "HEAD_TRANSLATION_MAX_PX",
    "NOISE_SIGMA_RANGE",
    "OFFSET_DRIFT_MAX",
    "RESIDUAL_RANGE",
    "SHAPE_VARIATIONS",
    "STREAM_ORDER",
    "STREAM_SAMPLE",
    "STREAM_SUBJECT",
    "SUB_EXPRESSION",
    "SUB_JITTER",
    "SUB_NOISE",
    "SUB_NUISANCE",
    "SUB_TIMING",
    "SampleParameters",
    "SubjectVariant",
    "direction_jitter",
    "draw_sample",
    "draw_subject_variant",
    "sample_seed",
]
