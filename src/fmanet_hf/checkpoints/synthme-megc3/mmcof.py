"""Per-phase motion channels and the fixed MM-COF descriptor (framework-free, numpy).

Vocabulary:
- phase 1 = onset->apex flow, phase 2 = apex->offset flow, each (H, W, 2) (u, v) pixels.
- phase channels: per phase, (u, v, M[, strain]) as a (C, H, W) float32 array, where
  M = sqrt(u^2 + v^2) (pixels) and strain = sqrt(ux^2 + vy^2 + 0.5 (uy + vx)^2)
  (dimensionless, from central differences).
- normalisation (``normalize_dual_phase``):
    * ``"per_phase_minmax"`` (paper: each phase's magnitude is min-max normalised per
      sample): M_k -> (M_k - min M_k) / range_k in [0, 1]; u_k, v_k -> divided by
      max M_k so that |(u, v)| <= 1 and signs are kept; strain min-max per phase.
    * ``"joint_max"`` (our option): both phases divided by the same max magnitude, which
      keeps how strong phase 2 is relative to phase 1; M in [0, 1], u, v in [-1, 1].
    * ``"none"``: raw pixels.
  A floor (``floor_px``, pixels) on every range keeps a static clip static: without it,
  min-max would blow sub-noise flow (1e-4 px) up to full scale, and a clip with no
  motion at all would divide 0 by 0.
- MM-COF (``compute_mmcof``): (u_c, v_c, M_c), the fixed dual-phase descriptor.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from .errors import FMANetConfigError, FMANetInputError

NORMALIZATION_MODES = ("per_phase_minmax", "joint_max", "none")
DEFAULT_FLOOR_PX = 0.05
DEFAULT_PERCENTILE = 99.5


def _check_flow(flow: np.ndarray, name: str) -> np.ndarray:
    flow = np.asarray(flow, dtype=np.float32)
    if flow.ndim != 3 or flow.shape[2] != 2 or flow.shape[0] < 2 or flow.shape[1] < 2:
        raise FMANetInputError(f"{name} must be an (H, W, 2) flow field (u, v in pixels); got shape {flow.shape}.")
    if not np.isfinite(flow).all():
        raise FMANetInputError(f"{name} contains NaN or infinite values.")
    return flow


def optical_strain(flow: np.ndarray) -> np.ndarray:
    """Optical strain magnitude sqrt(ux^2 + vy^2 + 0.5 (uy + vx)^2) of an (H, W, 2) flow.

    Derivatives are central differences in pixels per pixel (``np.gradient``), so the
    result is dimensionless. Returns (H, W) float32.
    """
    flow = _check_flow(flow, "flow")
    du_dy, du_dx = np.gradient(flow[..., 0])
    dv_dy, dv_dx = np.gradient(flow[..., 1])
    return np.sqrt(du_dx**2 + dv_dy**2 + 0.5 * (du_dy + dv_dx) ** 2).astype(np.float32)


def phase_channels(flow: np.ndarray, include_strain: bool = False) -> np.ndarray:
    """Raw motion channels of one phase: (u, v, M[, strain]) as (C, H, W) float32, pixels."""
    flow = _check_flow(flow, "flow")
    u, v = flow[..., 0], flow[..., 1]
    channels = [u, v, np.hypot(u, v)]
    if include_strain:
        channels.append(optical_strain(flow))
    return np.stack(channels).astype(np.float32)


def resize_channels(channels: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize (C, H, W) channels to (C, height, width): area averaging down, bilinear up.

    Values are not rescaled: flow stays in pixels of the frame it was computed on.
    """
    if channels.shape[1:] == (height, width):
        return channels.astype(np.float32, copy=True)
    shrinking = height <= channels.shape[1] and width <= channels.shape[2]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return np.stack(
        [cv2.resize(channel, (width, height), interpolation=interpolation) for channel in channels]
    ).astype(np.float32)


def robust_max(values: np.ndarray, percentile: float) -> float:
    """The ``percentile``-th percentile of ``values`` (100 = the plain maximum)."""
    return float(values.max()) if percentile >= 100.0 else float(np.percentile(values, percentile))


def _minmax(values: np.ndarray, floor: float, percentile: float = 100.0) -> np.ndarray:
    low = float(values.min())
    span = max(robust_max(values, percentile) - low, floor)
    return np.clip((values - low) / span, 0.0, 1.0)


def normalize_dual_phase(
    phases: Sequence[np.ndarray],
    mode: str = "per_phase_minmax",
    floor_px: float = DEFAULT_FLOOR_PX,
    percentile: float = DEFAULT_PERCENTILE,
) -> list[np.ndarray]:
    """Normalise the channels of one sample's phases (see module docstring for the modes).

    Args:
        phases: one or two (C, H, W) arrays with channels (u, v, M[, strain]) in pixels.
        mode: one of ``NORMALIZATION_MODES``.
        floor_px: smallest range (pixels) a magnitude is divided by; keeps static clips finite
            and near zero.
        percentile: the "max" of min-max is this percentile of the magnitude (100 = the
            paper's plain maximum); values above it are clipped. Below 100 a few outlier
            vectors (solver artefacts) cannot squash the whole map towards zero.

    Returns:
        Normalised copies: u, v in [-1, 1]; M (and strain) in [0, 1] (unless mode ``"none"``).
    """
    if mode not in NORMALIZATION_MODES:
        raise FMANetConfigError(f"Unknown flow_normalization {mode!r}; choose one of {list(NORMALIZATION_MODES)}.")
    if floor_px <= 0:
        raise FMANetConfigError(f"normalization_floor_px must be > 0, got {floor_px}.")
    if not 50.0 <= percentile <= 100.0:
        raise FMANetConfigError(f"normalization_percentile must be in [50, 100], got {percentile}.")
    phases = [np.asarray(p, dtype=np.float32) for p in phases]
    if mode == "none":
        return [p.copy() for p in phases]
    joint_scale = max(max(robust_max(p[2], percentile) for p in phases), floor_px)
    normalised = []
    for phase in phases:
        out = np.empty_like(phase)
        if mode == "per_phase_minmax":
            scale = max(robust_max(phase[2], percentile), floor_px)
            out[2] = _minmax(phase[2], floor_px, percentile)
        else:
            scale = joint_scale
            out[2] = np.clip(phase[2] / scale, 0.0, 1.0)
        # Clipping the vector by its own magnitude keeps its direction.
        shrink = np.minimum(1.0, scale / np.maximum(phase[2], 1e-12))
        out[0] = phase[0] * shrink / scale
        out[1] = phase[1] * shrink / scale
        if phase.shape[0] > 3:
            # Strain is dimensionless; the same floor value keeps a static clip's strain near zero.
            out[3] = _minmax(phase[3], floor_px, percentile)
        normalised.append(out)
    return normalised


def magnitude_modulation(magnitude: np.ndarray, threshold: float, sharpness: float) -> np.ndarray:
    """Soft-threshold gate sigmoid(sharpness * (M - threshold)) for M in [0, 1].

    Low-magnitude motion (noise) gets a gate near 0, salient motion near 1. Returned
    in (0, 1), same shape as ``magnitude``.
    """
    z = np.clip(sharpness * (np.asarray(magnitude, dtype=np.float64) - threshold), -60.0, 60.0)
    return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)


def compute_mmcof(
    onset_apex_flow: np.ndarray,
    apex_offset_flow: np.ndarray,
    *,
    theta: Sequence[float] = (0.6, 0.4),
    modulation_threshold: float = 0.15,
    modulation_sharpness: float = 20.0,
    reverse_offset_phase: bool = True,
    size: tuple[int, int] | None = None,
    floor_px: float = DEFAULT_FLOOR_PX,
    percentile: float = DEFAULT_PERCENTILE,
) -> np.ndarray:
    """The fixed Magnitude-Modulated Combined Optical Flow descriptor of one sample.

    Steps (paper where known, our choice elsewhere, see docs/design-notes.md):
    1. per phase: u, v, M; resized to ``size`` if given; M min-max normalised per phase
       (paper); u, v divided by the phase's max magnitude (our choice, keeps direction).
    2. combine: M_c = theta1 M1 + theta2 M2 (paper); u_c = theta1 u1 + s theta2 u2 (same
       for v), with s = -1 when ``reverse_offset_phase``: apex->offset motion is the
       onset->apex motion relaxing, i.e. pointing back, and adding it unsigned would cancel.
    3. modulate: gate g = sigmoid(k (M_c - t)); M_c <- g M_c; u_c, v_c <- g u_c, g v_c
       (our formula for the paper's threshold-based modulation: salient motion keeps its
       value, sub-threshold motion is pushed towards 0; no renormalisation afterwards, so
       a static clip is not blown up to full scale).

    Args:
        onset_apex_flow: (H, W, 2) flow, pixels.
        apex_offset_flow: (H, W, 2) flow, pixels, same size.
        theta: the two phase weights (>= 0, not both 0); normalised to sum 1.
        modulation_threshold: t in [0, 1], on the combined normalised magnitude.
        modulation_sharpness: k > 0; large k approaches a hard threshold.
        reverse_offset_phase: flip phase-2 direction before combining (see above).
        size: optional (height, width) output size.
        floor_px, percentile: see ``normalize_dual_phase``.

    Returns:
        (3, H, W) float32 array (u_c, v_c, M_c): u_c, v_c in [-1, 1], M_c in [0, 1].
    """
    first = _check_flow(onset_apex_flow, "onset_apex_flow")
    second = _check_flow(apex_offset_flow, "apex_offset_flow")
    if first.shape != second.shape:
        raise FMANetInputError(f"The two phase flows differ in shape: {first.shape} vs {second.shape}.")
    weights = np.asarray(theta, dtype=np.float64)
    if weights.shape != (2,) or (weights < 0).any() or weights.sum() <= 0 or not np.isfinite(weights).all():
        raise FMANetConfigError(f"theta must be two non-negative weights, not both zero; got {list(theta)}.")
    if modulation_sharpness <= 0 or not 0.0 <= modulation_threshold <= 1.0:
        raise FMANetConfigError(
            f"Need modulation_sharpness > 0 and modulation_threshold in [0, 1]; got {modulation_sharpness}, "
            f"{modulation_threshold}."
        )
    weights = weights / weights.sum()
    phases = [phase_channels(first), phase_channels(second)]
    if size is not None:
        phases = [resize_channels(p, int(size[0]), int(size[1])) for p in phases]
    phase1, phase2 = normalize_dual_phase(phases, "per_phase_minmax", floor_px, percentile)
    sign = -1.0 if reverse_offset_phase else 1.0
    combined_u = weights[0] * phase1[0] + sign * weights[1] * phase2[0]
    combined_v = weights[0] * phase1[1] + sign * weights[1] * phase2[1]
    combined_magnitude = weights[0] * phase1[2] + weights[1] * phase2[2]
    gate = magnitude_modulation(combined_magnitude, modulation_threshold, modulation_sharpness)
    return np.stack([gate * combined_u, gate * combined_v, gate * combined_magnitude]).astype(np.float32)
