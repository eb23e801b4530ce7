"""SynthME 2.0 clip parameters: masked negatives, whose class only the offset phase shows.

A 2.0 clip is drawn like a 1.x clip (:func:`.parameters.draw_sample`: emotion and AUs,
intensities, asymmetry, amplitude, timing, distractor AU, head drift, noise, illumination,
blink), with three differences:

- **Masked negatives.** A fraction ``masked_fraction`` of NEGATIVE clips are masked: the
  onset->apex phase shows a smile (AU12 alone, as positive clips often do), and during
  apex->offset the smile releases (to 0) while the suppression AUs 15 + 17 (lip corner
  depressor, chin raiser) rise to :data:`SUPPRESSION_LEVEL_RANGE` of the amplitude and stay
  there. Only the apex->offset phase tells such a clip from a positive one. It was designed
  to test FMANet's dual-phase claim; masked (suppressed) expressions are real in MER data,
  but their share here is our choice. A masked clip requested as ``"negative"`` is labelled
  ``repression`` (CASME II's label for suppressed expressions); one requested as a native
  negative emotion keeps that emotion.
- **Positive clips** use AU12 alone in :data:`POSITIVE_AU12_ALONE_SHARE` of clips (1.x: one
  in four), so AU6 does not separate a masked negative's onset phase from a positive one.
- **Sessions.** Each clip draws which of its person's sessions (:mod:`.sessions`) it uses.

Every clip's random streams are keyed by (person id, class name, repeat) rather than by the
subject number, so a person's clips do not depend on which other people are in the set or
in which order. Amplitudes are in pixels of the frames; frames are 1-based in the record.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field

import numpy as np

from .au_motion import EMOTION_AUS, temporal_profile
from .emotions import MEGC3_CLASSES, NATIVE_TO_MEGC3, NEGATIVE_EMOTIONS
from .parameters import (
    APEX_FRACTION_RANGE,
    RESIDUAL_RANGE,
    SUB_EXPRESSION,
    SUB_JITTER,
    SUB_NOISE,
    SUB_NUISANCE,
    SUB_TIMING,
    SampleParameters,
    draw_clip_nuisance,
)
from .sessions import person_stream_key

DEFAULT_MASKED_FRACTION = 0.3
POSITIVE_AU12_ALONE_SHARE = 0.5
MASKED_SMILE_AUS = (12,)
SUPPRESSION_AUS = (15, 17)
SUPPRESSION_LEVEL_RANGE = (0.6, 1.0)  # peak of the suppression field / the clip's amplitude
MASKED_EMOTION = "repression"

# Random-stream identifiers (fixed forever; distinct from 1.x's 1-3 and the sessions' 11).
STREAM_PERSON_ORDER, STREAM_PERSON_SAMPLE = 12, 13
SUB_MASKING, SUB_SESSION = 5, 6


@dataclass
class PersonSampleParameters(SampleParameters):
    """Everything that defines one SynthME 2.0 clip (recorded in the manifest; frames 1-based).

    The inherited fields mean what they mean in 1.x, except: ``source`` is the person id and
    ``variant`` the session index (duplicated in ``person`` and ``session``), and for a masked
    clip ``aus``/``profile`` describe the smile (released to 0: ``residual`` is 0).

    Attributes:
        person: person id.
        session: 0-based index of the person's session the clip is rendered in.
        masked: a masked negative (smile, then suppression after the apex).
        offset_aus: AUs that rise only after the apex (15, 17 when masked, else empty).
        offset_au_weights: their relative intensities.
        offset_amplitude_px: peak displacement of the offset AUs' field, pixels.
        offset_profile: (N,) their intensity per frame: 0 up to the apex, a raised cosine
            to 1 at the offset frame, then 1 (they stay).
    """

    person: str = ""
    session: int = 0
    masked: bool = False
    offset_aus: list[int] = field(default_factory=list)
    offset_au_weights: list[float] = field(default_factory=list)
    offset_amplitude_px: float = 0.0
    offset_profile: list[float] = field(default_factory=list)


def person_sample_rng(seed: int, person_id: str, class_name: str, repeat: int, stream: int) -> np.random.Generator:
    """The random stream ``stream`` of one clip, keyed by (person, class name, repeat)."""
    key = (STREAM_PERSON_SAMPLE, person_stream_key(person_id), zlib.crc32(class_name.encode("utf-8")), repeat, stream)
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))


def rising_profile(frames: int, start: int, end: int) -> np.ndarray:
    """(N,) intensity: 0 up to ``start``, raised cosine to 1 at ``end``, then 1 (0-based indices)."""
    t = np.arange(frames, dtype=np.float64)
    profile = np.zeros(frames)
    rise = (t > start) & (t <= end)
    profile[rise] = 0.5 * (1.0 - np.cos(np.pi * (t[rise] - start) / (end - start)))
    profile[t > end] = 1.0
    return profile


def _draw_aus(class_name: str, expression: np.random.Generator) -> tuple[str, list[int]]:
    if class_name == "negative":
        emotion = NEGATIVE_EMOTIONS[int(expression.integers(len(NEGATIVE_EMOTIONS)))]
    elif class_name in MEGC3_CLASSES:
        emotion = {"positive": "happiness", "surprise": "surprise"}[class_name]
    else:
        emotion = class_name
    options = EMOTION_AUS[emotion]
    if emotion == "happiness":
        others = [aus for aus in options if tuple(aus) != MASKED_SMILE_AUS]
        if expression.uniform() < POSITIVE_AU12_ALONE_SHARE:
            return emotion, list(MASKED_SMILE_AUS)
        return emotion, list(others[int(expression.integers(len(others)))])
    return emotion, list(options[int(expression.integers(len(options)))])


def draw_person_sample(
    seed: int,
    subject: int,
    person_id: str,
    class_name: str,
    repeat: int,
    filename: str,
    frames: int,
    amplitude_range: tuple[float, float],
    masked_fraction: float,
    sessions: int,
) -> PersonSampleParameters:
    """Draw one SynthME 2.0 clip.

    Args:
        seed: master seed (>= 0).
        subject: 1-based subject number (folder ``subNN``) of the person in this set.
        person_id: the person (keys the random streams).
        class_name: requested class (MEGC class or native emotion).
        repeat: 0-based repeat of this class for this person.
        filename: clip folder name, e.g. ``"EP03_01"``.
        frames: frames per clip N (>= 3).
        amplitude_range: (low, high) peak displacement at the apex, pixels, log-uniform.
        masked_fraction: probability in [0, 1] that a negative clip is masked.
        sessions: number of sessions of the person to choose from.

    Returns:
        :class:`PersonSampleParameters`.
    """
    expression = person_sample_rng(seed, person_id, class_name, repeat, SUB_EXPRESSION)
    timing = person_sample_rng(seed, person_id, class_name, repeat, SUB_TIMING)
    nuisance = person_sample_rng(seed, person_id, class_name, repeat, SUB_NUISANCE)
    masking = person_sample_rng(seed, person_id, class_name, repeat, SUB_MASKING)
    session = int(person_sample_rng(seed, person_id, class_name, repeat, SUB_SESSION).integers(sessions))

    emotion, aus = _draw_aus(class_name, expression)
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

    masked = NATIVE_TO_MEGC3[emotion] == "negative" and bool(masking.uniform() < masked_fraction)
    offset_aus: list[int] = []
    offset_weights: list[float] = []
    offset_amplitude = 0.0
    offset_profile = np.zeros(frames)
    if masked:
        if class_name == "negative":
            emotion = MASKED_EMOTION
        aus = list(MASKED_SMILE_AUS)
        au_weights = [float(masking.uniform(0.6, 1.0)) for _ in aus]
        offset_aus = list(SUPPRESSION_AUS)
        offset_weights = [float(masking.uniform(0.6, 1.0)) for _ in offset_aus]
        offset_amplitude = float(masking.uniform(*SUPPRESSION_LEVEL_RANGE)) * amplitude
        offset_profile = rising_profile(frames, apex, offset)
        residual = 0.0  # the smile releases completely
    profile = temporal_profile(frames, onset, apex, offset, residual)

    clip_nuisance = draw_clip_nuisance(nuisance, frames, aus, au_weights)
    return PersonSampleParameters(
        subject=subject,
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
        source=person_id,
        variant=session,
        distractor_au=clip_nuisance.distractor_au,
        person=person_id,
        session=session,
        masked=masked,
        offset_aus=offset_aus,
        offset_au_weights=offset_weights,
        offset_amplitude_px=offset_amplitude,
        offset_profile=[round(float(p), 6) for p in offset_profile],
    )


def person_direction_jitter(seed: int, sample: PersonSampleParameters) -> np.ndarray:
    """(64, 2) per-term (rotation radians, gain) variation of the AU pulls of one 2.0 clip."""
    rng = person_sample_rng(seed, sample.person, sample.requested_class, sample.repeat, SUB_JITTER)
    return np.stack([rng.normal(0.0, math.radians(8.0), 64), rng.uniform(0.8, 1.2, 64)], axis=1)


def person_noise_rng(seed: int, sample: PersonSampleParameters) -> np.random.Generator:
    """The sensor-noise stream of one 2.0 clip."""
    return person_sample_rng(seed, sample.person, sample.requested_class, sample.repeat, SUB_NOISE)


__all__ = [
    "DEFAULT_MASKED_FRACTION",
    "MASKED_EMOTION",
    "MASKED_SMILE_AUS",
    "POSITIVE_AU12_ALONE_SHARE",
    "STREAM_PERSON_ORDER",
    "STREAM_PERSON_SAMPLE",
    "SUB_MASKING",
    "SUB_SESSION",
    "SUPPRESSION_AUS",
    "SUPPRESSION_LEVEL_RANGE",
    "PersonSampleParameters",
    "draw_person_sample",
    "person_direction_jitter",
    "person_noise_rng",
    "person_sample_rng",
    "rising_profile",
]
