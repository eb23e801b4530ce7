"""SynthME 2.0 sessions: how one person varies from clip to clip without becoming someone else.

Each person has :data:`SESSIONS_PER_PERSON` sessions, as a real participant is filmed on
different days: a horizontal mirror (probability 0.5), the face's size in the frame, a
slight horizontal stretch, an in-plane roll, a re-crop and a tone curve. Each clip draws
which session it uses from its own random stream. A mirrored or reshaped session is still
the same person, so it stays in that person's subject, never a new one; sessions never
change the face's shape (no shape warp), which would make a new identity.

Session parameters come from a per-person stream keyed by the person's id (crc32), so a
person's sessions do not depend on which other people are in the set.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field

import numpy as np

from .parameters import BASE_FACE_WIDTH_FRACTION

SESSIONS_PER_PERSON = 3
SESSION_MIRROR_PROBABILITY = 0.5
SESSION_FACE_WIDTH_SPREAD = 0.08  # face width fraction within +-8 % of BASE_FACE_WIDTH_FRACTION
SESSION_ASPECT_SPREAD = 0.04  # horizontal stretch within 1 +- 4 %
SESSION_ROLL_MAX_DEG = 4.0
SESSION_CENTRE_SHIFT_MAX = 0.03  # fraction of the frame size
SESSION_GAMMA_RANGE = (0.8, 1.25)  # log-uniform
SESSION_CONTRAST_SPREAD = 0.15
SESSION_BRIGHTNESS_SPREAD = 0.05

# Random-stream identifier of the SeedSequence spawn key (fixed forever; distinct from 1.x's 1-3).
STREAM_SESSION = 11


@dataclass
class PersonSession:
    """How one session frames and lights a person's face (recorded in the manifest).

    Attributes:
        person: person id.
        session: 0-based session index.
        mirror: flipped horizontally (landmark indices permuted accordingly).
        face_width_fraction: jaw span (landmark 0 to 16) / frame width.
        aspect: horizontal stretch factor applied after framing.
        roll_deg: in-plane head roll after levelling the eyes, degrees.
        centre_shift: (x, y) shift of the face centre, fractions of the frame size.
        gamma, contrast, brightness: tone curve on [0, 1] intensities:
            ``(I ** gamma - 0.5) * contrast + 0.5 + brightness``.
        shape_warp: always empty: a session never reshapes the face (that would be a new
            identity); present so the renderer frames sessions and 1.x variants alike.
        replacement_draws: how many earlier draws of this session were replaced because the
            face detector missed the face in them (0 for most).
    """

    person: str
    session: int
    mirror: bool
    face_width_fraction: float
    aspect: float
    roll_deg: float
    centre_shift: tuple[float, float]
    gamma: float
    contrast: float
    brightness: float
    shape_warp: dict[str, float] = field(default_factory=dict)
    replacement_draws: int = 0


def person_stream_key(person_id: str) -> int:
    """The integer that stands for a person in random-stream keys (crc32 of the id)."""
    return zlib.crc32(person_id.encode("utf-8"))


def draw_session(seed: int, person_id: str, index: int, attempt: int = 0) -> PersonSession:
    """Session ``index`` of one person; ``attempt`` > 0 draws a replacement for a session in
    which the face detector does not find the face (see `draw_sessions`).

    The stream is ``(STREAM_SESSION, crc32(person_id), index)`` for the first attempt (as in
    the first 2.0 sets) and ``(..., index, attempt)`` for a replacement.
    """
    key = (STREAM_SESSION, person_stream_key(person_id), index) + ((attempt,) if attempt else ())
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))
    low_gamma, high_gamma = SESSION_GAMMA_RANGE
    return PersonSession(
        person=person_id,
        session=index,
        mirror=bool(rng.uniform() < SESSION_MIRROR_PROBABILITY),
        face_width_fraction=float(BASE_FACE_WIDTH_FRACTION * (1.0 + rng.uniform(-SESSION_FACE_WIDTH_SPREAD, SESSION_FACE_WIDTH_SPREAD))),
        aspect=float(1.0 + rng.uniform(-SESSION_ASPECT_SPREAD, SESSION_ASPECT_SPREAD)),
        roll_deg=float(rng.uniform(-SESSION_ROLL_MAX_DEG, SESSION_ROLL_MAX_DEG)),
        centre_shift=(float(rng.uniform(-SESSION_CENTRE_SHIFT_MAX, SESSION_CENTRE_SHIFT_MAX)),
                      float(rng.uniform(-SESSION_CENTRE_SHIFT_MAX, SESSION_CENTRE_SHIFT_MAX))),
        gamma=float(math.exp(rng.uniform(math.log(low_gamma), math.log(high_gamma)))),
        contrast=float(1.0 + rng.uniform(-SESSION_CONTRAST_SPREAD, SESSION_CONTRAST_SPREAD)),
        brightness=float(rng.uniform(-SESSION_BRIGHTNESS_SPREAD, SESSION_BRIGHTNESS_SPREAD)),
    )


def draw_sessions(seed: int, person_id: str, count: int = SESSIONS_PER_PERSON) -> list[PersonSession]:
    """The sessions of one person (first attempts; see `draw_session`).

    Args:
        seed: master seed (>= 0).
        person_id: the person's id (keys the random stream).
        count: number of sessions.

    Returns:
        ``count`` :class:`PersonSession`, session ``k`` from the stream
        ``(STREAM_SESSION, crc32(person_id), k)``.
    """
    return [draw_session(seed, person_id, index) for index in range(count)]


__all__ = [
    "draw_session",
    "SESSIONS_PER_PERSON",
    "SESSION_ASPECT_SPREAD",
    "SESSION_BRIGHTNESS_SPREAD",
    "SESSION_CENTRE_SHIFT_MAX",
    "SESSION_CONTRAST_SPREAD",
    "SESSION_FACE_WIDTH_SPREAD",
    "SESSION_GAMMA_RANGE",
    "SESSION_MIRROR_PROBABILITY",
    "SESSION_ROLL_MAX_DEG",
    "STREAM_SESSION",
    "PersonSession",
    "draw_sessions",
    "person_stream_key",
]
