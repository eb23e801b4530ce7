"""A figure of SynthME clips: key frames and the two optical-flow phases per class.

For one clip per MEGC class (the clip whose amplitude is nearest the class median, so the
figure is typical rather than flattering; blink-free clips and not-yet-shown faces are
preferred so the expression is legible), it shows the onset, apex and offset frames and
the dense optical flow onset->apex and apex->offset, colour coded in HSV: hue is the
direction (legend wheel), brightness the magnitude, saturating at a stated number of pixels.
Rigid head motion is removed first, as the FMANet processor does: apex and offset are
registered to the onset with a global (rotation + translation) ECC fit; then their global
brightness is matched to the onset (mean and standard deviation), because TV-L1 turns a
few-percent illumination change into pixels of spurious flow.

Usage::

    from fmanet_hf.data.synthetic import generate_synthme
    from fmanet_hf.data.synthetic import render_synthme_figure
    info = generate_synthme("synthme", subjects=4, samples_per_class=2, seed=0)
    render_synthme_figure(info.root, "synthme_examples.png")
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from ...atomic import FILE_MODE
from ...errors import DatasetError, FMANetConfigError
from .emotions import MEGC3_CLASSES
from .generate import FRAMES_FOLDER, MANIFEST_NAME

FLOW_METHODS = ("tvl1", "dis")


def _read_manifest(root: Path) -> dict[str, Any]:
    path = root / MANIFEST_NAME
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise DatasetError(f"{path} not found: {root} is not a SynthME folder (make one with generate_synthme).") from None
    except ValueError as error:
        raise DatasetError(f"{path} is not valid JSON ({error}).") from None


def _pick_samples(samples: list[dict[str, Any]], classes: Sequence[str] | None) -> list[dict[str, Any]]:
    """One sample per class, the one whose amplitude is nearest the class median.

    For legibility, clips without a blink are preferred (a blink moves the eyelids more than
    most micro-expressions move anything), and so are source photographs not yet shown in
    an earlier row; each preference is dropped when no clip satisfies it.
    """
    present = [c for c in MEGC3_CLASSES if any(s["megc_class"] == c for s in samples)]
    wanted = list(classes) if classes is not None else present
    picked: list[dict[str, Any]] = []
    for class_name in wanted:
        members = [s for s in samples if s["megc_class"] == class_name]
        if not members:
            raise FMANetConfigError(f"No SynthME sample of class {class_name!r}; classes present: {present}.")
        median = float(np.median([s["amplitude_px"] for s in members]))
        shown = {s["source"] for s in picked}
        for keep in (lambda s: not s.get("blink"), lambda s: s["source"] not in shown):
            if any(keep(s) for s in members):
                members = [s for s in members if keep(s)]
        picked.append(min(members, key=lambda s: abs(s["amplitude_px"] - median)))
    return picked


def _neutral_landmarks(manifest: dict[str, Any]) -> dict[tuple[int, int | None], np.ndarray]:
    """(subject, session) -> (68, 2) neutral landmarks; session None for 1.x (one neutral per subject)."""
    out: dict[tuple[int, int | None], np.ndarray] = {}
    for subject in manifest["subjects"]:
        if "neutral_landmarks" in subject:
            out[(subject["subject"], None)] = np.asarray(subject["neutral_landmarks"], np.float64)
        for session in subject.get("sessions", []):
            if "neutral_landmarks" in session:
                out[(subject["subject"], session["session"])] = np.asarray(session["neutral_landmarks"], np.float64)
    return out


def _load_gray(path: Path) -> np.ndarray:
    from ...frames import to_gray_float

    return to_gray_float(path)


def _stabilized(reference: np.ndarray, moving: np.ndarray) -> np.ndarray:
    """Register ``moving`` (H, W) onto ``reference`` with a global Euclidean ECC fit."""
    from ...face import stabilize_to_reference, warp_frame

    height, width = reference.shape
    identity = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    transform = stabilize_to_reference(reference, moving, identity, "euclidean")
    return warp_frame(moving, transform, height, width)


def match_intensity(reference: np.ndarray, moving: np.ndarray) -> np.ndarray:
    """Match the mean and standard deviation of ``moving`` to ``reference`` (both (H, W) [0, 255]).

    TV-L1 assumes brightness constancy: with OpenCV's defaults, a global gain change of
    3 % between frames produces spurious flow of several pixels, larger than a
    micro-expression. A global affine intensity match removes that and cannot create motion.
    """
    mean_r, std_r = float(reference.mean()), float(reference.std())
    mean_m, std_m = float(moving.mean()), float(moving.std())
    return ((moving - mean_m) * (std_r / max(std_m, 1e-6)) + mean_r).astype(np.float32)


def compute_flow(first: np.ndarray, second: np.ndarray, method: str = "tvl1") -> np.ndarray:
    """Dense optical flow between two grey frames.

    Args:
        first, second: (H, W) float32 grey frames in [0, 255].
        method: ``"tvl1"`` (OpenCV-contrib Dual TV-L1, defaults) or ``"dis"`` (DIS, medium preset).

    Returns:
        (H, W, 2) float32 flow (dx, dy) in pixels: first(x) ~ second(x + flow(x)).
    """
    if method == "tvl1":
        solver = cv2.optflow.DualTVL1OpticalFlow_create()
        # OpenCV multiplies float input by 255 (it expects [0, 1]); hand it [0, 1] frames.
        return solver.calc((first / 255.0).astype(np.float32), (second / 255.0).astype(np.float32), None)
    if method == "dis":
        solver = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        as_u8 = [np.clip(np.rint(f), 0, 255).astype(np.uint8) for f in (first, second)]
        return solver.calc(as_u8[0], as_u8[1], None)
    raise FMANetConfigError(f"Unknown flow method {method!r}; use one of {FLOW_METHODS}.")


def flow_to_rgb(flow: np.ndarray, saturation_px: float) -> np.ndarray:
    """HSV colour coding of a flow field.

    Hue = direction (0 deg = right = red, 90 deg = down, image convention), value =
    ``min(|flow| / saturation_px, 1)``, full saturation.

    Args:
        flow: (H, W, 2) float (dx, dy) pixels.
        saturation_px: magnitude shown at full brightness, pixels (> 0).

    Returns:
        (H, W, 3) float32 RGB in [0, 1].
    """
    if saturation_px <= 0:
        raise FMANetConfigError(f"saturation_px must be > 0, got {saturation_px}.")
    dx, dy = flow[..., 0].astype(np.float32), flow[..., 1].astype(np.float32)
    magnitude, angle = cv2.cartToPolar(dx, dy, angleInDegrees=True)
    hsv = np.stack([angle, np.ones_like(angle), np.clip(magnitude / saturation_px, 0.0, 1.0)], axis=-1)
    return cv2.cvtColor(hsv.astype(np.float32), cv2.COLOR_HSV2RGB)


def _colour_wheel(size: int = 96) -> np.ndarray:
    """(size, size, 3) RGB in [0, 1]: the legend of :func:`flow_to_rgb` (white outside)."""
    coords = (np.arange(size, dtype=np.float32) - (size - 1) / 2.0) / ((size - 1) / 2.0)
    grid_x, grid_y = np.meshgrid(coords, coords)
    wheel = flow_to_rgb(np.stack([grid_x, grid_y], axis=-1), 1.0)
    wheel[np.hypot(grid_x, grid_y) > 1.0] = 1.0
    return wheel


def render_synthme_figure(
    root: str | os.PathLike,
    out_png: str | os.PathLike,
    *,
    classes: Sequence[str] | None = None,
    flow_method: str = "tvl1",
    saturation_px: float = 1.0,
    face_crop: bool = True,
    dpi: int = 100,
) -> Path:
    """Draw key frames and dual-phase flow of one SynthME clip per class, save as PNG.

    Args:
        root: folder written by :func:`fmanet_hf.data.synthetic.generate_synthme`.
        out_png: PNG to write (atomically: temporary file, then rename).
        classes: MEGC classes to show (default: those present, in negative/positive/surprise order).
        flow_method: ``"tvl1"`` or ``"dis"``.
        saturation_px: flow magnitude drawn at full brightness, pixels of the frame.
        face_crop: show the face region (landmark box plus a margin) rather than the full frame.
        dpi: resolution of the saved figure.

    Returns:
        Path of the written PNG.

    Raises:
        DatasetError: ``root`` is not a SynthME folder or frames are missing.
        FMANetConfigError: unknown class or flow method.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    if flow_method not in FLOW_METHODS:
        raise FMANetConfigError(f"Unknown flow method {flow_method!r}; use one of {FLOW_METHODS}.")
    root = Path(root)
    manifest = _read_manifest(root)
    picked = _pick_samples(manifest["samples"], classes)
    landmarks_of = _neutral_landmarks(manifest)

    columns = ("onset", "apex", "offset", "flow onset→apex", "flow apex→offset")
    figure = Figure(figsize=(2.3 * len(columns) + 1.2, 2.55 * len(picked) + 0.9), dpi=dpi)
    grid = figure.add_gridspec(len(picked), len(columns) + 1, width_ratios=[1.0] * len(columns) + [0.5])
    for row, sample in enumerate(picked):
        clip = root / FRAMES_FOLDER / f"sub{sample['subject']:02d}" / sample["filename"]
        indices = (sample["onset_frame"], sample["apex_frame"], sample["offset_frame"])
        paths = [clip / f"img{i}.jpg" for i in indices]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise DatasetError(f"SynthME frames missing: {missing}.")
        onset, apex, offset = (_load_gray(p) for p in paths)
        apex_s = match_intensity(onset, _stabilized(onset, apex))
        offset_s = match_intensity(onset, _stabilized(onset, offset))
        flow_rise = compute_flow(onset, apex_s, flow_method)
        flow_fall = compute_flow(apex_s, offset_s, flow_method)

        height, width = onset.shape
        y0, y1, x0, x1 = 0, height, 0, width
        key = (sample["subject"], sample.get("session"))
        if face_crop and key in landmarks_of:
            points = landmarks_of[key]
            margin_x = 0.12 * (points[:, 0].max() - points[:, 0].min())
            top = points[:, 1].min() - 0.45 * (points[:, 1].max() - points[:, 1].min())
            x0, x1 = int(max(0, points[:, 0].min() - margin_x)), int(min(width, points[:, 0].max() + margin_x))
            y0, y1 = int(max(0, top)), int(min(height, points[:, 1].max() + margin_x))
        panels = [onset, apex_s, offset_s, flow_to_rgb(flow_rise, saturation_px), flow_to_rgb(flow_fall, saturation_px)]
        peaks = [float(np.linalg.norm(f[y0:y1, x0:x1], axis=-1).max()) for f in (flow_rise, flow_fall)]
        for col, panel in enumerate(panels):
            axis = figure.add_subplot(grid[row, col])
            crop = panel[y0:y1, x0:x1]
            if crop.ndim == 2:
                axis.imshow(crop, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            else:
                axis.imshow(crop, interpolation="nearest")
            axis.set_xticks([])
            axis.set_yticks([])
            if col < 3:
                axis.set_title(f"{columns[col]} (img{indices[col]})", fontsize=8)
            else:
                axis.set_title(f"{columns[col]}\nmax {peaks[col - 3]:.2f} px", fontsize=8)
            if col == 0:
                axis.set_ylabel(
                    f"{sample['megc_class']}\n{sample['emotion']}, AU {'+'.join(map(str, sample['aus']))}\n"
                    f"apex amplitude {sample['amplitude_px']:.2f} px\nsub{sample['subject']:02d}/{sample['filename']}",
                    fontsize=8,
                )
    legend = figure.add_subplot(grid[:, -1])
    legend.imshow(_colour_wheel(), interpolation="bilinear")
    legend.set_title(f"direction\n(brightness\nsaturates at\n{saturation_px:g} px)", fontsize=8)
    legend.set_xticks([])
    legend.set_yticks([])
    legend.set_anchor("N")
    figure.suptitle(
        f"SynthME (generator {manifest['generator_version']}, seed {manifest['seed']}): one clip per class, amplitude nearest "
        f"the class median (blink-free clips preferred);\nflow = {'TV-L1 (OpenCV defaults)' if flow_method == 'tvl1' else 'DIS (medium)'} after ECC head-motion "
        "removal and a global brightness match to the onset",
        fontsize=9,
    )
    figure.tight_layout(rect=(0, 0, 1, 0.96))

    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{out_png.name}.", suffix=".png", dir=out_png.parent)
    os.close(handle)
    try:
        figure.savefig(temporary, format="png", dpi=dpi, metadata={"Software": None})
        os.chmod(temporary, FILE_MODE)  # mkstemp creates 0600; a figure is meant to be read by others
        os.replace(temporary, out_png)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
    return out_png
