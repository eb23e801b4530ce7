"""Images the demo shows: face crops, flow colour maps, MM-COF map, attention overlay.

All functions take the processor's `MotionSample` arrays (and the model's attention map)
and return (H, W, 3) uint8 RGB images, enlarged to `PANEL_SIDE` so the 64-128 px maps
are readable in a browser. Colours of the flow maps: hue = direction, brightness =
magnitude (`fmanet_hf.flow.flow_to_color`).
"""

from __future__ import annotations

import cv2
import numpy as np

from ..flow import flow_to_color

#: Side (pixels) of each displayed panel.
PANEL_SIDE = 256
#: Smallest magnitude (pixels) shown at full brightness, so a static clip stays dark
#: instead of having its noise stretched to full colour.
FLOW_DISPLAY_FLOOR_PX = 0.1
#: Percentile of the magnitude shown at full brightness (a few outlier vectors must not
#: turn the rest of the map black).
FLOW_DISPLAY_PERCENTILE = 99.0
GAP_PX = 6


def _enlarge(image: np.ndarray, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    return cv2.resize(image, (PANEL_SIDE, PANEL_SIDE), interpolation=interpolation)


def _grey_to_rgb(grey: np.ndarray) -> np.ndarray:
    grey_u8 = np.clip(np.rint(grey), 0, 255).astype(np.uint8)
    return np.repeat(grey_u8[..., None], 3, axis=2)


def aligned_crops_strip(aligned_frames: np.ndarray) -> np.ndarray:
    """Onset, apex and offset crops side by side, separated by white gaps."""
    panels = [_enlarge(_grey_to_rgb(frame), cv2.INTER_CUBIC) for frame in aligned_frames]
    gap = np.full((PANEL_SIDE, GAP_PX, 3), 255, dtype=np.uint8)
    return np.concatenate([panels[0], gap, panels[1], gap, panels[2]], axis=1)


def face_panel(face: np.ndarray) -> np.ndarray:
    """One grey crop, enlarged, as RGB."""
    return _enlarge(_grey_to_rgb(face), cv2.INTER_CUBIC)


def shared_flow_scale(*flows: np.ndarray) -> float:
    """Magnitude (pixels) shown at full brightness for all ``flows``, so phases compare.

    The same rule as the ``predict`` figure (`fmanet_hf.visualization.flow_display_scale`),
    used from there when this install has it.
    """
    try:
        from ..visualization import flow_display_scale
    except ImportError:
        flow_display_scale = None
    if flow_display_scale is not None:
        return float(flow_display_scale(*flows))
    magnitudes = np.concatenate([np.linalg.norm(flow, axis=-1).ravel() for flow in flows])
    return max(float(np.percentile(magnitudes, FLOW_DISPLAY_PERCENTILE)), FLOW_DISPLAY_FLOOR_PX)


def flow_panel(flow: np.ndarray, scale_px: float) -> np.ndarray:
    """Colour map of one phase's flow, full brightness at ``scale_px`` pixels."""
    return _enlarge(flow_to_color(flow, max_magnitude=scale_px))


def mmcof_panel(mmcof: np.ndarray) -> np.ndarray:
    """Colour map of the fixed MM-COF (u_c, v_c); its values are normalised, so 1 = full brightness."""
    combined_flow = np.ascontiguousarray(np.stack([mmcof[0], mmcof[1]], axis=-1), dtype=np.float32)
    return _enlarge(flow_to_color(combined_flow, max_magnitude=1.0), cv2.INTER_NEAREST)


def attention_overlay(attention: np.ndarray, face: np.ndarray, face_weight: float = 0.45) -> tuple[np.ndarray, float, float]:
    """The motion-attention map (stretched to its own range) in colour over the grey face.

    Args:
        attention: (h, w) attention values in [0, 1].
        face: (H, W) grey onset crop [0, 255].
        face_weight: how much of the face shows through.

    Returns:
        (RGB overlay, attention minimum, attention maximum): the caller reports the range,
        because the colours are stretched to it.
    """
    attention = np.asarray(attention, dtype=np.float32)
    low, high = float(attention.min()), float(attention.max())
    stretched = (attention - low) / (high - low) if high - low > 1e-6 else np.zeros_like(attention)
    heat_u8 = np.clip(np.rint(cv2.resize(stretched, (PANEL_SIDE, PANEL_SIDE), interpolation=cv2.INTER_CUBIC) * 255), 0, 255)
    heat_rgb = cv2.applyColorMap(heat_u8.astype(np.uint8), cv2.COLORMAP_INFERNO)[:, :, ::-1]
    face_rgb = _enlarge(_grey_to_rgb(face), cv2.INTER_CUBIC)
    blended = face_weight * face_rgb.astype(np.float32) + (1.0 - face_weight) * heat_rgb.astype(np.float32)
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8), low, high
