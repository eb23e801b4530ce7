"""Rendering SynthME frames: the subject's neutral image, then one backward warp per frame.

Frames are rendered by one backward warp per frame (``cv2.remap``, bilinear, replicated
border) of the subject's neutral image. The exact backward map of a forward displacement
``D`` is the fixed point ``u = D(x - u)``, ``x -> x - u``. The negated field (``u = D(x)``)
is that inverse to first order, off by about ``|D| * |grad D|``: measured up to 0.23 px for a
2 px peak on the narrow eyelid AUs. One fixed-point step, ``u = D(x - D(x))``, brings it
to <= 0.04 px, so the renderer takes that step (one extra remap of the field).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .au_motion import (
    BLINK_PULLS,
    MIRROR_68,
    FaceAxes,
    au_displacement_field,
    gaussian_sum_field,
    pull_centres,
    scaled_to_peak,
)
from .clips import PersonSampleParameters, person_direction_jitter, person_noise_rng
from .faces import SourceFace
from .parameters import (
    FACE_CENTRE_IN_FRAME,
    SHAPE_VARIATIONS,
    SUB_NOISE,
    SampleParameters,
    SubjectVariant,
    direction_jitter,
    sample_seed,
)
from .sessions import PersonSession


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


@dataclass(frozen=True)
class RenderedSubject:
    neutral: np.ndarray  # (H, W, 3) or (H, W) float32 in [0, 255]
    landmarks: np.ndarray  # (68, 2) float32 frame pixels


def render_subject(face: SourceFace, variant: SubjectVariant | PersonSession, size: tuple[int, int], grayscale: bool) -> RenderedSubject:
    """Frame, reshape and re-light a source face into the subject's neutral image.

    Args:
        face: (H, W, 3) uint8 RGB photograph (or morph) with its (68, 2) landmarks.
        variant: a 1.x subject variant or a 2.0 person session (same framing fields).
        size: frame (height, width), pixels.
        grayscale: return a single-channel neutral image.

    Returns:
        :class:`RenderedSubject`: the float32 neutral image in [0, 255] and its (68, 2)
        landmarks in frame pixels.
    """
    height, width = size
    rgb = face.rgb
    landmarks = face.landmarks.astype(np.float64)
    if variant.mirror:
        rgb = rgb[:, ::-1]
        landmarks = landmarks.copy()
        landmarks[:, 0] = (rgb.shape[1] - 1) - landmarks[:, 0]
        landmarks = landmarks[MIRROR_68]

    axes = FaceAxes.from_landmarks(landmarks)
    jaw_span = float(np.hypot(*(landmarks[16] - landmarks[0])))
    scale = variant.face_width_fraction * width / jaw_span
    eye_angle = math.atan2(axes.along_eyes[1], axes.along_eyes[0])
    angle = -eye_angle + math.radians(variant.roll_deg)
    rotation = scale * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    linear = np.diag([variant.aspect, 1.0]) @ rotation
    source_centre = landmarks.mean(axis=0)
    target_centre = np.array([
        (FACE_CENTRE_IN_FRAME[0] + variant.centre_shift[0]) * width,
        (FACE_CENTRE_IN_FRAME[1] + variant.centre_shift[1]) * height,
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
        frame_axes = FaceAxes.from_landmarks(frame_landmarks)
        shape_field = np.zeros((height, width, 2), np.float32)
        for name, pulls, peak_iod in SHAPE_VARIATIONS:
            coefficient = variant.shape_warp.get(name, 0.0)
            if coefficient == 0.0:
                continue
            terms = pull_centres(frame_landmarks, pulls, frame_axes)
            shape_field += scaled_to_peak(gaussian_sum_field(terms, (height, width)), abs(coefficient) * peak_iod * frame_axes.iod) * math.copysign(1.0, coefficient)
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
    return RenderedSubject(neutral=neutral, landmarks=frame_landmarks.astype(np.float32))


def _sample_field(field_: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Bilinear samples of an (H, W, 2) field at (N, 2) (x, y) points -> (N, 2)."""
    map_x = np.ascontiguousarray(points[:, 0].astype(np.float32)[None, :])
    map_y = np.ascontiguousarray(points[:, 1].astype(np.float32)[None, :])
    sampled = cv2.remap(field_, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return sampled[0].astype(np.float64)


def render_clip(subject: RenderedSubject, sample: SampleParameters, seed: int) -> list[np.ndarray]:
    """Render the frames of one SynthME 1.x clip as uint8 arrays ((H, W, 3) RGB or (H, W))."""
    noise_rng = sample_seed(seed, sample.subject, sample.requested_class, sample.repeat, SUB_NOISE)
    return _render_frames(subject, sample, direction_jitter(seed, sample), noise_rng)


def render_person_clip(subject: RenderedSubject, sample: PersonSampleParameters, seed: int) -> list[np.ndarray]:
    """Render the frames of one SynthME 2.0 clip as uint8 arrays ((H, W, 3) RGB or (H, W)).

    As :func:`render_clip`, plus the offset AUs of a masked clip: their field (peak
    ``sample.offset_amplitude_px`` pixels) is added with its own per-frame intensity
    ``sample.offset_profile``, so it appears only after the apex. Random streams are keyed
    by the person (:func:`.clips.person_sample_rng`).

    Args:
        subject: the person's neutral image in the clip's session and its (68, 2) landmarks.
        sample: the clip's parameters.
        seed: master seed.

    Returns:
        N frames, uint8, (H, W, 3) RGB or (H, W) grey.
    """
    jitter = person_direction_jitter(seed, sample)
    offset_motion = None
    if sample.offset_aus:
        height, width = subject.neutral.shape[:2]
        offset_field = au_displacement_field(
            subject.landmarks, sample.offset_aus, sample.offset_amplitude_px, (height, width),
            au_weights=sample.offset_au_weights, side_gains=tuple(sample.side_gains), direction_jitter=jitter,
        )
        offset_motion = (offset_field, sample.offset_profile)
    return _render_frames(subject, sample, jitter, person_noise_rng(seed, sample), offset_motion)


def _render_frames(
    subject: RenderedSubject,
    sample: SampleParameters,
    jitter: np.ndarray,
    noise_rng: np.random.Generator,
    offset_motion: tuple[np.ndarray, list[float]] | None = None,
) -> list[np.ndarray]:
    neutral = subject.neutral
    height, width = neutral.shape[:2]
    frames = len(sample.profile)
    expression_field = au_displacement_field(
        subject.landmarks, sample.aus, sample.amplitude_px, (height, width),
        au_weights=sample.au_weights, side_gains=tuple(sample.side_gains), direction_jitter=jitter,
    )
    axes = FaceAxes.from_landmarks(subject.landmarks.astype(np.float64))
    blink_field = None
    if sample.blink is not None:
        terms = pull_centres(subject.landmarks.astype(np.float64), BLINK_PULLS, axes)
        blink_field = scaled_to_peak(gaussian_sum_field(terms, (height, width)), sample.blink["amplitude_iod"] * axes.iod)

    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    centre = subject.landmarks.mean(axis=0).astype(np.float64)
    # Smooth drift: a monotone ease-in/ease-out ramp from the start pose to the end pose.
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(frames) / max(frames - 1, 1))
    rendered = []
    for t in range(frames):
        displacement = expression_field * np.float32(sample.profile[t])
        if offset_motion is not None:
            displacement = displacement + offset_motion[0] * np.float32(offset_motion[1][t])
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


__all__ = ["RenderedSubject", "backward_displacement", "render_clip", "render_person_clip", "render_subject", "warp_backward"]
