"""One-page PNG explaining a prediction: frames, both flows, MM-COF, attention, probabilities.

Layout (3 rows):

1. the aligned grey crops of onset (with the 68 landmarks), apex and offset, and a text
   panel (model, key frames, preprocessing);
2. the onset->apex and apex->offset optical flows as colour maps (hue = direction, see the
   wheel; brightness = magnitude, saturating at the stated number of crop pixels, the same
   for both phases so they compare), the colour wheel, and the fixed MM-COF map (gated
   combined magnitude M_c in [0, 1] with its direction (u_c, v_c) as arrows);
3. the model's motion attention over the onset face, and the class probabilities.

The title says which class won and whether the model is trained: an untrained model's
figure says in red that its scores mean nothing.

Matplotlib runs headless (the Agg canvas, no pyplot state), and the file is written
atomically.
"""

from __future__ import annotations

import io
import os
import textwrap
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .atomic import atomic_write_bytes
from .flow import flow_to_color

#: Smallest flow magnitude (crop pixels) shown at full brightness: a static clip stays dark
#: instead of having its noise stretched to full colour.
MIN_FLOW_SCALE_PX = 0.1
FLOW_SCALE_PERCENTILE = 99.0


def flow_display_scale(*flows: np.ndarray, percentile: float = FLOW_SCALE_PERCENTILE) -> float:
    """Magnitude (pixels) shown at full brightness for all ``flows`` (H, W, 2): their joint
    ``percentile``-th magnitude, at least `MIN_FLOW_SCALE_PX`."""
    magnitudes = np.concatenate([np.linalg.norm(np.asarray(f, dtype=np.float64), axis=-1).ravel() for f in flows])
    return max(float(np.percentile(magnitudes, percentile)), MIN_FLOW_SCALE_PX)


def color_wheel(size: int = 96) -> np.ndarray:
    """(size, size, 4) float RGBA legend of `flow_to_color`: direction as hue, radius as magnitude."""
    coordinates = (np.arange(size) - (size - 1) / 2.0) / ((size - 1) / 2.0)
    u, v = np.meshgrid(coordinates, coordinates)
    rgb = flow_to_color(np.stack([u, v], axis=-1).astype(np.float32), max_magnitude=1.0).astype(np.float32) / 255.0
    alpha = (np.hypot(u, v) <= 1.0).astype(np.float32)
    return np.concatenate([rgb, alpha[..., None]], axis=-1)


def _upsample(values: np.ndarray, height: int, width: int) -> np.ndarray:
    import cv2

    return cv2.resize(np.asarray(values, dtype=np.float32), (width, height), interpolation=cv2.INTER_LINEAR)


def render_prediction_figure(
    motion: Any,
    probabilities: Mapping[str, float],
    *,
    attention_map: np.ndarray | None = None,
    trained: bool = True,
    model_name: str | None = None,
    title_note: str | None = None,
    sample_name: str | None = None,
    key_frames: Mapping[str, Any] | None = None,
    true_label: str | None = None,
    processor_settings: Mapping[str, Any] | None = None,
    dpi: int = 110,
):
    """Build the figure (a `matplotlib.figure.Figure`) for one prediction.

    Args:
        motion: the processor's `MotionSample` (``aligned_frames`` (3, h, w) [0, 255];
            ``onset_apex_flow`` / ``apex_offset_flow`` (h, w, 2) in crop pixels; ``mmcof``
            (3, H, W); ``landmarks`` (68, 2) crop pixels or None).
        probabilities: ``{class name: probability}`` for every class.
        attention_map: (h', w') attention in [0, 1] (the model's ``attention_map[0, 0]``), or None.
        trained: False draws a red "untrained" warning into the title.
        model_name: what the model is (a folder, "bundled synthme-megc3"...).
        title_note: a second title line (e.g. that the model never saw real data).
        sample_name: the sample (file names, video and indices...).
        key_frames: ``{"onset", "apex", "offset", "apex_estimated"}`` for video/clip input.
        true_label: the known class, marked on the bars (SynthME examples).
        processor_settings: shown in the text panel (flow method, crop, size).
    """
    from matplotlib.figure import Figure

    frames = np.asarray(motion.aligned_frames, dtype=np.float32)
    crop_height, crop_width = frames.shape[1:]
    flows = (np.asarray(motion.onset_apex_flow), np.asarray(motion.apex_offset_flow))
    scale = flow_display_scale(*flows)
    names = list(probabilities)
    values = np.array([float(probabilities[n]) for n in names])
    best = int(np.argmax(values))

    figure = Figure(figsize=(13.0, 10.4), dpi=dpi)
    grid = figure.add_gridspec(
        3, 4, height_ratios=[1.0, 1.0, 1.0], left=0.05, right=0.95, top=0.87, bottom=0.06, wspace=0.32, hspace=0.42
    )
    verdict = f"predicted: {names[best]} ({values[best]:.2f})"
    if trained:
        figure.suptitle(
            f"FMANet micro-expression prediction: {verdict}   [trained model]" + (f"\n{title_note}" if title_note else ""),
            fontsize=15, fontweight="bold",
        )
    else:
        figure.suptitle(
            f"FMANet micro-expression prediction: {verdict}\nUNTRAINED MODEL (random weights): these scores mean nothing",
            fontsize=15, fontweight="bold", color="#b00020",
        )

    def image_axis(row: int, column: int, title: str):
        axis = figure.add_subplot(grid[row, column])
        axis.set_title(title, fontsize=11)
        axis.set_xticks([])
        axis.set_yticks([])
        return axis

    # Row 1: aligned frames + text.
    labels = ("onset", "apex", "offset")
    for column, (label, frame) in enumerate(zip(labels, frames)):
        index = f" (frame {key_frames[label]})" if key_frames and label in key_frames else ""
        suffix = ", estimated" if label == "apex" and key_frames and key_frames.get("apex_estimated") else ""
        axis = image_axis(0, column, f"{label}{index}{suffix}: aligned crop")
        axis.imshow(frame, cmap="gray", vmin=0, vmax=255)
        if column == 0 and motion.landmarks is not None:
            landmarks = np.asarray(motion.landmarks)
            axis.scatter(landmarks[:, 0], landmarks[:, 1], s=4, c="#00e5ff", linewidths=0)
    text_axis = figure.add_subplot(grid[0, 3])
    text_axis.axis("off")
    lines = []
    if model_name:
        lines.append(f"model: {model_name}")
    lines.append("weights: trained" if trained else "weights: UNTRAINED (seed 0)")
    if sample_name:
        lines.append(f"sample: {sample_name}")
    if key_frames:
        lines.append(
            "key frames: " + ", ".join(f"{k} {key_frames[k]}" for k in labels if k in key_frames)
            + (" (apex estimated)" if key_frames.get("apex_estimated") else "")
        )
    if processor_settings:
        shown = {k: processor_settings[k] for k in ("flow_method", "crop_size", "size", "stabilization", "align_faces") if k in processor_settings}
        if "size" in shown and isinstance(shown["size"], Mapping):
            shown["size"] = f"{shown['size']['height']}x{shown['size']['width']}"
        lines.extend(f"{k}: {v}" for k, v in shown.items())
    lines.append(f"crop: {crop_height}x{crop_width} px")
    if motion.landmarks is None:
        lines.append("no face alignment (align_faces=False)")
    wrapped = [part for line in lines for part in textwrap.wrap(line, 34, subsequent_indent="  ", break_on_hyphens=False)]
    text_axis.text(-0.05, 1.0, "\n".join(wrapped), va="top", ha="left", fontsize=9, family="monospace", transform=text_axis.transAxes)

    # Row 2: flows, wheel, MM-COF.
    for column, (title, flow) in enumerate(zip(("flow onset\u2192apex", "flow apex\u2192offset"), flows)):
        axis = image_axis(1, column, f"{title}\n(max |flow| {np.linalg.norm(flow, axis=-1).max():.2f} px)")
        axis.imshow(flow_to_color(flow, max_magnitude=scale))
    wheel_axis = image_axis(1, 2, f"flow key: hue = direction,\nfull brightness = {scale:.2f} px")
    wheel_axis.imshow(color_wheel(), extent=(-1, 1, 1, -1))
    for angle_label, (x, y, align) in {
        "right": (1.06, 0, "left"), "left": (-1.06, 0, "right"), "down": (0, 1.16, "center"), "up": (0, -1.16, "center")
    }.items():
        wheel_axis.text(x, y, angle_label, ha=align, va="center", fontsize=8.5)
    wheel_axis.set_xlim(-1.6, 1.6)
    wheel_axis.set_ylim(1.35, -1.35)
    wheel_axis.set_frame_on(False)

    mmcof = np.asarray(motion.mmcof, dtype=np.float32)
    mmcof_axis = image_axis(1, 3, "MM-COF: gated M_c (0-1),\narrows = (u_c, v_c)")
    shown = mmcof_axis.imshow(mmcof[2], cmap="magma", vmin=0.0, vmax=1.0)
    step = max(1, mmcof.shape[1] // 12)
    ys, xs = np.mgrid[step // 2 : mmcof.shape[1] : step, step // 2 : mmcof.shape[2] : step]
    u, v = mmcof[0][ys, xs], mmcof[1][ys, xs]
    strong = mmcof[2][ys, xs] > 0.2
    if strong.any():
        mmcof_axis.quiver(xs[strong], ys[strong], u[strong], v[strong], color="#7fffd4", angles="xy", scale_units="xy",
                          scale=1.0 / (0.9 * step), width=0.006)
    figure.colorbar(shown, cax=mmcof_axis.inset_axes([1.03, 0.0, 0.05, 1.0]))

    # Row 3: attention, probabilities.
    attention_axis = image_axis(2, 0, "motion attention on the onset face")
    attention_axis.imshow(frames[0], cmap="gray", vmin=0, vmax=255)
    if attention_map is not None:
        attention = np.asarray(attention_map, dtype=np.float32)
        low, high = float(attention.min()), float(attention.max())
        overlay = attention_axis.imshow(
            _upsample(attention, crop_height, crop_width), cmap="inferno", alpha=0.55, vmin=low, vmax=max(high, low + 1e-6)
        )
        attention_axis.set_title(
            f"motion attention on the onset face\n(values {low:.2f}-{high:.2f}, {attention.shape[0]}x{attention.shape[1]} map)",
            fontsize=11,
        )
        figure.colorbar(overlay, cax=attention_axis.inset_axes([1.03, 0.0, 0.05, 1.0]))
    else:
        attention_axis.set_title("no motion attention in this model\n(use_motion_attention=False)", fontsize=11)

    bars_axis = figure.add_subplot(grid[2, 1:].subgridspec(1, 8)[0, 2:])
    positions = np.arange(len(names))[::-1]
    colours = ["#1f77b4" if i != best else ("#2ca02c" if trained else "#b00020") for i in range(len(names))]
    bars_axis.barh(positions, values, color=colours)
    bars_axis.set_yticks(positions)
    bars_axis.set_yticklabels([f"{n}  (true)" if true_label is not None and n == true_label else n for n in names], fontsize=11)
    bars_axis.set_xlim(0, 1.08)
    bars_axis.set_xlabel("probability (softmax)")
    bars_axis.set_title("class probabilities" + ("" if trained else " (untrained: meaningless)"), fontsize=11)
    for position, value in zip(positions, values):
        if value > 0.85:  # no room right of the bar: write inside it
            bars_axis.text(value - 0.01, position, f"{value:.3f}", va="center", ha="right", fontsize=10, color="white", fontweight="bold")
        else:
            bars_axis.text(value + 0.01, position, f"{value:.3f}", va="center", fontsize=10)
    bars_axis.axvline(1.0 / len(names), color="grey", linestyle=":", linewidth=1, label=f"chance (1/{len(names)})")
    bars_axis.legend(loc="lower right", fontsize=9, frameon=False)
    return figure


def figure_to_png(figure: Any) -> bytes:
    """PNG bytes of a matplotlib figure (Agg canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def save_prediction_figure(path: str | os.PathLike, motion: Any, probabilities: Mapping[str, float], **kwargs: Any) -> Path:
    """Render `render_prediction_figure` and write it atomically as a PNG at ``path``."""
    return atomic_write_bytes(path, figure_to_png(render_prediction_figure(motion, probabilities, **kwargs)))


def numbered_paths(path: str | os.PathLike, count: int) -> Sequence[Path]:
    """``out.png`` for one figure; ``out_1.png``, ``out_2.png``... for several."""
    path = Path(path)
    if count == 1:
        return [path]
    return [path.with_name(f"{path.stem}_{i}{path.suffix or '.png'}") for i in range(1, count + 1)]


__all__ = [
    "color_wheel",
    "figure_to_png",
    "flow_display_scale",
    "numbered_paths",
    "render_prediction_figure",
    "save_prediction_figure",
]
