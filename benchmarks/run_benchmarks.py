"""Speed and flow-accuracy benchmarks of fmanet-hf against the usual research pipeline (issue 7).

    python benchmarks/run_benchmarks.py --data SYNTHME_DIR --work-dir WORK_DIR \
        --json benchmarks/results/NAME.json [--sections flow_accuracy,preprocessing,...] \
        [--quick] [--markdown docs/performance.md]

Sections (each one entry of the JSON, each with the load average before and after it):

- ``flow_accuracy``: endpoint error (EPE, px) and solver time of each optical-flow setting
  on known warps of a real face (scikit-image's astronaut at 320 x 320), at the crop's
  and at the model's resolution, clean and with noise.
- ``clip_stages``: CPU time per stage (decode, face, ECC, flow, rest, model) of one
  640 x 480 clip, the bundled model's processor against a processor created now.
- ``per_clip``: preprocessing per sample, one process and one thread each, the reference
  and the package's processors taking turns sample by sample.
- ``preprocessing``: the reference pipeline (``reference_pipeline.py``) over every sample
  of ``--data`` vs ``prepare_dataset`` cold (all cores, 1 core), cached, and with the
  other flow methods.
- ``latency``: one clip of three 640 x 480 frames -> label, p50/p95 over repetitions, one
  thread, the pipelines interleaved.
- ``model``: parameters, FLOPs, forward and training-step throughput, eager vs
  ``torch.compile``.
- ``loso``: ``run_loso`` with the ``fmanet-hf loso`` defaults vs the reference LOSO,
  which is extrapolated from a few measured folds (a full one takes hours on a MEGC-size
  set). With ``--loso-subjects N`` both run in full on N subjects chosen evenly in natural
  order (`chosen_loso_subjects`), each from a cold cache, and the package runs twice: with
  its defaults (one preparation process per core) and with ``--num-proc 1`` (one process,
  as the reference).

Every ratio is ``speedup_vs_reference = reference time / this time`` (> 1: faster than the
reference), computed from figures measured in the same run on the same machine. Each
``--work-dir`` run gets a fresh ``run-<time>-<pid>`` folder, so no cache or LOSO result
of an earlier run is ever reused. ``--quick`` shrinks everything (1 repetition, a subset,
1 epoch, 1 reference fold, no torch.compile) for the CI smoke test; its figures are not
benchmarks.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

# reference_pipeline.py lives next to this file; benchmarks/ is not a package.
sys.path.insert(0, str(Path(__file__).resolve().parent))

REPO_ROOT = Path(__file__).resolve().parent.parent
FORMAT_VERSION = 1
SECTIONS = ("flow_accuracy", "clip_stages", "per_clip", "preprocessing", "latency", "model", "loso")
MARKER_START = "<!-- bench:start -->"
MARKER_END = "<!-- bench:end -->"


def markers(block: str | None) -> tuple[str, str]:
    """The start and end markers of a report block: the default one, or a named one
    (``<!-- bench:NAME:start -->``) so that a run of some sections need not erase another
    run's figures."""
    if not block:
        return MARKER_START, MARKER_END
    return f"<!-- bench:{block}:start -->", f"<!-- bench:{block}:end -->"


# --------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------
def speedup(reference_seconds: float, seconds: float) -> float:
    """``reference_seconds / seconds``: how many times faster than the reference (> 1: faster)."""
    return float(reference_seconds) / float(seconds)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile by nearest rank (a value that was actually measured)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def timed(function: Callable[[], Any]) -> tuple[Any, float]:
    """(result, wall seconds) of ``function()``."""
    started = time.perf_counter()
    result = function()
    return result, time.perf_counter() - started


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages (processes waiting for or using a core)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # not available on every platform
        return []


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------
# Machine, versions, provenance
# --------------------------------------------------------------------------------------
def machine_info() -> dict[str, Any]:
    """CPU model (from /proc/cpuinfo), core counts, RAM (GiB), OS."""
    cpu_model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gib = round(int(line.split()[1]) / 1024**2, 2)  # kB -> GiB
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "cpu_model": cpu_model or platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "cores_usable": usable,
        "ram_gib": ram_gib,
        "platform": platform.platform(),
        "thread_env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS") if k in os.environ},
    }


def versions() -> dict[str, str]:
    """Versions of Python and of the libraries whose speed is measured."""
    import cv2
    import numpy
    import torch
    import transformers

    import fmanet_hf

    found = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "opencv": cv2.__version__,
        "transformers": transformers.__version__,
        "numpy": numpy.__version__,
        "fmanet_hf": fmanet_hf.__version__,
        "torch_threads": str(torch.get_num_threads()),
    }
    for name in ("datasets", "dlib"):
        try:
            found[name] = str(__import__(name).__version__)
        except (ImportError, AttributeError):
            pass
    return found


def git_info() -> dict[str, Any]:
    """Commit of the repository and whether the working tree differs from it."""

    def run(*command: str) -> str | None:
        try:
            return subprocess.run(
                ["git", *command], cwd=REPO_ROOT, capture_output=True, text=True, timeout=30, check=True
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    commit = run("rev-parse", "HEAD")
    status = run("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None, "changed_files": status.splitlines() if status else []}


# --------------------------------------------------------------------------------------
# Run context shared by the sections
# --------------------------------------------------------------------------------------
class Context:
    """Options and figures shared between sections of one run.

    Later sections reuse what an earlier one measured in the same run (the reference
    inputs and their time, the default processor's cold cache) instead of measuring it
    twice; the JSON says where each figure comes from.
    """

    def __init__(self, args: argparse.Namespace, run_dir: Path):
        self.args = args
        self.run_dir = run_dir
        self.quick = bool(args.quick)
        self.progress = not args.quiet
        self.reference_inputs = None  # (N, 6, 64, 64) float32
        self.reference_prep_seconds: float | None = None
        self.default_cache_root: Path | None = None  # <root>/prepared holds the default processor's inputs
        self.default_prep_seconds: float | None = None
        self._dataset = None

    def dataset(self):
        """The ``--data`` set loaded as ``fmanet-hf prepare --dataset synthme`` loads it."""
        if self._dataset is None:
            from fmanet_hf.data.registry import load_dataset_by_name

            self._dataset = load_dataset_by_name("synthme", str(self.args.data), None)
        return self._dataset


# --------------------------------------------------------------------------------------
# flow_accuracy
# --------------------------------------------------------------------------------------
# scikit-image's astronaut (512 x 512) resized to 320 x 320 (x 0.625), so the face is about
# 128 px wide like the processor's crop. Facial regions from dlib's 68 landmarks on the
# 512 px image (tests/test_image_processing_fmanet.py), scaled by 0.625.
FLOW_IMAGE_SIZE = 320
FLOW_SCALE = FLOW_IMAGE_SIZE / 512.0
FLOW_BROWS = ((200.0 * FLOW_SCALE, 90.0 * FLOW_SCALE), (251.0 * FLOW_SCALE, 93.0 * FLOW_SCALE))
FLOW_MOUTH = (223.0 * FLOW_SCALE, 146.0 * FLOW_SCALE)
FLOW_SIGMA = 10.0 * FLOW_SCALE  # 6.25 px
FLOW_WINDOW = (slice(8, 178), slice(55, 225))  # 170 x 170 (y, x) around the face
FLOW_SHIFT_DIRECTION = (2.0 / math.sqrt(5.0), 1.0 / math.sqrt(5.0))  # both components move
FLOW_CASES = (
    ("bumps_0.5px", "bumps", 0.5),
    ("bumps_1px", "bumps", 1.0),
    ("bumps_2px", "bumps", 2.0),
    ("shift_0.3px", "shift", 0.3),
    ("shift_0.72px", "shift", 0.72),
)


def _displacement(kind: str, peak: float, x, y):
    """The motion field d = (du, dv) in px at image coordinates (x, y) of the 320 px face."""
    import numpy as np

    if kind == "shift":
        return np.full_like(x, peak * FLOW_SHIFT_DIRECTION[0]), np.full_like(y, peak * FLOW_SHIFT_DIRECTION[1])

    def bump(cx, cy):
        return np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * FLOW_SIGMA**2))

    # Brows move up, the mouth down.
    dv = peak * (-bump(*FLOW_BROWS[0]) - bump(*FLOW_BROWS[1]) + bump(*FLOW_MOUTH))
    return np.zeros_like(dv), dv


def flow_test_cases() -> list[dict[str, Any]]:
    """The known warps: onset/apex float32 [0, 255] windows, exact flow, evaluation region."""
    import cv2
    import numpy as np
    from skimage import data as skimage_data

    rgb = skimage_data.astronaut()[..., :3].astype(np.float64)
    grey = (rgb @ np.array([0.299, 0.587, 0.114])).astype(np.float32)
    face = cv2.resize(grey, (FLOW_IMAGE_SIZE, FLOW_IMAGE_SIZE), interpolation=cv2.INTER_AREA)
    y, x = np.mgrid[0:FLOW_IMAGE_SIZE, 0:FLOW_IMAGE_SIZE].astype(np.float64)
    cases = []
    for name, kind, peak in FLOW_CASES:
        du, dv = _displacement(kind, peak, x, y)
        # The whole image is warped and then windowed, so the window's border holds real
        # content that moved in, as in a crop of a real frame.
        apex = cv2.remap(face, (x - du).astype(np.float32), (y - dv).astype(np.float32), cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
        apex = np.clip(apex, 0.0, 255.0)
        # apex(p) = onset(p - d(p)): the onset point x sits at p = x + f(x) with f(x) = d(x + f(x)).
        fu, fv = du, dv
        for _ in range(30):  # a contraction (|grad d| < 0.2 for these fields)
            fu, fv = _displacement(kind, peak, x + fu, y + fv)
        window = FLOW_WINDOW
        region = np.hypot(du, dv)[window] > 0.3 * peak if kind == "bumps" else np.ones(face[window].shape, dtype=bool)
        cases.append(
            {
                "name": name,
                "onset": np.ascontiguousarray(face[window]),
                "apex": np.ascontiguousarray(apex[window]),
                "flow_u": fu[window],
                "flow_v": fv[window],
                "region": region,
            }
        )
    return cases


# The model sees the flow at half the crop's resolution (crop 128 -> input 64).
MODEL_RESOLUTION_FACTOR = 2
FLOW_NOISE_SIGMA = 2.0  # grey levels of the noisy copies (independent per frame, seeded)
FLOW_NOISE_SEED = 0


def downsample(image, factor: int = MODEL_RESOLUTION_FACTOR):
    """Area-average an (H, W) array by an integer factor (what INTER_AREA does)."""
    import cv2
    import numpy as np

    height, width = image.shape[:2]
    return cv2.resize(np.asarray(image, dtype=np.float32), (width // factor, height // factor), interpolation=cv2.INTER_AREA)


def flow_at_model_resolution(flow, factor: int = MODEL_RESOLUTION_FACTOR):
    """A crop-resolution (H, W, 2) flow area-averaged to the model's resolution, in ITS pixels."""
    import numpy as np

    return np.dstack([downsample(flow[..., 0], factor), downsample(flow[..., 1], factor)]) / factor


def noisy_flow_cases(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same warps with independent Gaussian noise (sigma FLOW_NOISE_SIGMA) on each frame, seeded."""
    import numpy as np

    rng = np.random.default_rng(FLOW_NOISE_SEED)
    noisy = []
    for case in cases:
        copy = dict(case)
        for key in ("onset", "apex"):
            copy[key] = np.clip(case[key] + rng.normal(0.0, FLOW_NOISE_SIGMA, case[key].shape), 0, 255).astype(np.float32)
        noisy.append(copy)
    return noisy


def flow_solvers() -> list[tuple[str, str, Callable[[Any, Any], Any], int]]:
    """(row name, description, function(onset float32, apex float32) -> flow, resolution factor).

    A factor of 1 means the solver returns the flow at the frames' resolution in their
    pixels; 2 means it works on frames area-downsampled to the model's resolution and
    returns the flow there, in those pixels.
    """
    import numpy as np

    import reference_pipeline
    from fmanet_hf.flow import OPENCV_TVL1_PARAMS, compute_optical_flow

    def as_uint8(frame):
        return np.rint(np.clip(frame, 0, 255)).astype(np.uint8)

    def at_model_resolution(method: str, params=None):
        return lambda a, b: compute_optical_flow(downsample(a), downsample(b), method, params)

    dis_medium_preset = {"finest_scale": None, "patch_size": None, "patch_stride": None,
                         "gradient_descent_iterations": None, "variational_refinement_iterations": None}
    return [
        ("reference", "OpenCV default TV-L1 on uint8 frames (research code)", lambda a, b: reference_pipeline.tvl1_flow_uint8(as_uint8(a), as_uint8(b)), 1),
        ("dis", "package DIS default (full resolution; the processor's default since format 2)", lambda a, b: compute_optical_flow(a, b, "dis"), 1),
        ("tvl1_default", "package TV-L1 default (DEFAULT_FLOW_PARAMS; format 1's default) on float frames", lambda a, b: compute_optical_flow(a, b, "tvl1"), 1),
        ("tvl1_opencv_params", "TV-L1 with OPENCV_TVL1_PARAMS on float frames", lambda a, b: compute_optical_flow(a, b, "tvl1", OPENCV_TVL1_PARAMS), 1),
        ("dis_medium_preset", "DIS, OpenCV's medium preset as it is (the package's DIS default before format 2)", lambda a, b: compute_optical_flow(a, b, "dis", dis_medium_preset), 1),
        ("farneback", "Farneback (package defaults)", lambda a, b: compute_optical_flow(a, b, "farneback"), 1),
        ("tvl1_at_model_resolution", "package TV-L1 default on frames downsampled to the model's resolution", at_model_resolution("tvl1"), MODEL_RESOLUTION_FACTOR),
        ("dis_at_model_resolution", "package DIS default on frames downsampled to the model's resolution", at_model_resolution("dis"), MODEL_RESOLUTION_FACTOR),
    ]


def endpoint_errors(flow, case: dict[str, Any], factor: int) -> tuple[float, float]:
    """(EPE at the crop's resolution, EPE at the model's resolution) of one solver's flow, px.

    The model-resolution EPE compares with the exact flow area-downsampled (in model
    pixels), over the downsampled region; a flow computed at the model's resolution
    (``factor`` 2) is compared there directly and upsampled (bilinear, x2) for the crop EPE.
    """
    import cv2
    import numpy as np

    exact_crop = np.dstack([case["flow_u"], case["flow_v"]]).astype(np.float32)
    exact_model = flow_at_model_resolution(exact_crop)
    region_model = downsample(case["region"].astype(np.float32)) > 0.5
    if factor == 1:
        flow_crop, flow_model = flow, flow_at_model_resolution(flow)
    else:
        height, width = exact_crop.shape[:2]
        flow_model = flow
        flow_crop = cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR) * factor
    crop_error = np.hypot(*(flow_crop - exact_crop).transpose(2, 0, 1))[case["region"]]
    model_error = np.hypot(*(flow_model - exact_model).transpose(2, 0, 1))[region_model]
    return float(crop_error.mean()), float(model_error.mean())


def section_flow_accuracy(ctx: Context) -> dict[str, Any]:
    """EPE (px) per known warp and solver time (s, one OpenCV thread) per flow setting."""
    import cv2
    import numpy as np

    reps = 1 if ctx.quick else ctx.args.flow_reps
    cases = flow_test_cases()
    noisy_cases = noisy_flow_cases(cases)
    previous_threads = cv2.getNumThreads()
    # One thread: solver cost, not how well a solver spreads over this machine's cores.
    cv2.setNumThreads(1)
    rows = []
    try:
        for name, description, solve, factor in flow_solvers():
            epe, epe_model, epe_noisy, epe_noisy_model, case_seconds = {}, {}, {}, {}, {}
            for case, noisy in zip(cases, noisy_cases):
                times = []
                for _ in range(reps):
                    flow, seconds = timed(lambda: solve(case["onset"], case["apex"]))
                    times.append(seconds)
                epe[case["name"]], epe_model[case["name"]] = endpoint_errors(flow, case, factor)
                epe_noisy[case["name"]], epe_noisy_model[case["name"]] = endpoint_errors(solve(noisy["onset"], noisy["apex"]), noisy, factor)
                case_seconds[case["name"]] = statistics.median(times)
            rows.append(
                {
                    "name": name,
                    "description": description,
                    "resolution_factor": factor,
                    "epe_px": epe,
                    "mean_epe_px": float(np.mean(list(epe.values()))),
                    "epe_model_resolution_px": epe_model,
                    "mean_epe_model_resolution_px": float(np.mean(list(epe_model.values()))),
                    "epe_noisy_px": epe_noisy,
                    "mean_epe_noisy_px": float(np.mean(list(epe_noisy.values()))),
                    "epe_noisy_model_resolution_px": epe_noisy_model,
                    "mean_epe_noisy_model_resolution_px": float(np.mean(list(epe_noisy_model.values()))),
                    "seconds_per_case": case_seconds,
                    "time_s": float(sum(case_seconds.values())),
                }
            )
    finally:
        cv2.setNumThreads(previous_threads)
    reference_row = rows[0]
    for row in rows:
        # Case by case against the reference: at or below its error (the criterion).
        row["cases_at_or_below_reference"] = {
            key: sum(row[key][c] <= reference_row[key][c] for c in row[key])
            for key in ("epe_px", "epe_model_resolution_px", "epe_noisy_px", "epe_noisy_model_resolution_px")
        }
    reference_time = rows[0]["time_s"]
    for row in rows:
        row["speedup_vs_reference"] = speedup(reference_time, row["time_s"])
    return {
        "description": (
            "Known warps of scikit-image's astronaut (grey, 320x320, 170x170 window around the face): Gaussian "
            f"bumps (sigma {FLOW_SIGMA:g} px) moving the brows up and the mouth down with peak 0.5/1/2 px, and "
            "uniform shifts of 0.3/0.72 px along (2, 1). EPE = mean endpoint error (px) against the exact forward "
            "flow, over |d| > 0.3 peak (bumps) or all pixels (shifts). Model resolution: flows and the exact flow "
            f"area-averaged by {MODEL_RESOLUTION_FACTOR} (the crop-to-input factor of the processor), in the model's "
            f"pixels. Noisy: the same warps with independent Gaussian noise (sigma {FLOW_NOISE_SIGMA:g} grey levels) "
            "on each frame."
        ),
        "time_basis": "total solver seconds over the 5 cases (median of repetitions per case), cv2.setNumThreads(1)",
        "repetitions": reps,
        "cases": [c[0] for c in FLOW_CASES],
        "reference_time_s": reference_time,
        "rows": rows,
    }


# --------------------------------------------------------------------------------------
# preprocessing
# --------------------------------------------------------------------------------------
def section_preprocessing(ctx: Context) -> dict[str, Any]:
    """Seconds and samples/s of each way to compute every sample's model input."""
    import reference_pipeline
    from fmanet_hf import FMANetImageProcessor
    from fmanet_hf.data.prepare import prepare_dataset
    from fmanet_hf.flow import OPENCV_TVL1_PARAMS

    dataset = ctx.dataset()
    n = len(dataset)
    every = 4 if ctx.quick and ctx.args.subset_every is None else (ctx.args.subset_every or 1)
    subset = dataset.select(range(0, n, every)) if every > 1 else dataset
    folder = ctx.run_dir / "preprocessing"
    cores = os.cpu_count() or 1

    def row(name: str, description: str, seconds: float, samples: int, **extra: Any) -> dict[str, Any]:
        log(f"preprocessing {name}: {samples} samples in {seconds:.2f} s")
        return {
            "name": name,
            "description": description,
            "seconds": seconds,
            "samples": samples,
            "samples_per_s": samples / seconds,
            "time_s": seconds / samples,  # the compared figure: seconds per sample
            **extra,
        }

    rows = []
    rows_for_reference, _, _, _ = reference_pipeline.dataset_rows(dataset)
    stats = reference_pipeline.ReferenceStats()
    inputs, seconds = timed(lambda: reference_pipeline.preprocess_all(rows_for_reference, stats))
    ctx.reference_inputs, ctx.reference_prep_seconds = inputs, seconds
    rows.append(row("reference", "reference pipeline, sequential, no cache", seconds, n, faces_not_found=stats.faces_not_found))

    def prepare(name: str, description: str, processor, data, num_proc: int | None, cache_root: Path) -> dict[str, Any]:
        prepared, seconds = timed(
            lambda: prepare_dataset(data, processor, cache_root / "prepared", num_proc=num_proc, progress=ctx.progress)
        )
        assert len(prepared) == len(data)
        return row(name, description, seconds, len(data), num_proc=num_proc or cores)

    default_root = folder / "default-all-cores"
    rows.append(prepare("package_cold_all_cores", "prepare_dataset, default processor, cold cache, all cores", FMANetImageProcessor(), dataset, None, default_root))
    ctx.default_cache_root, ctx.default_prep_seconds = default_root, rows[-1]["seconds"]
    rows.append(prepare("package_cold_1_core", "prepare_dataset, default processor, cold cache, 1 process", FMANetImageProcessor(), dataset, 1, folder / "default-1-core"))
    rows.append(prepare("package_cached", "prepare_dataset again on the all-cores cache (second pass)", FMANetImageProcessor(), dataset, None, default_root))
    subset_note = f"every {every}th sample ({len(subset)} of {n})" if every > 1 else "all samples"
    for name, processor in (
        ("package_dis", FMANetImageProcessor(flow_method="dis")),
        ("package_farneback", FMANetImageProcessor(flow_method="farneback")),
        ("package_tvl1_opencv_params", FMANetImageProcessor(flow_method="tvl1", flow_params=OPENCV_TVL1_PARAMS)),
    ):
        rows.append(prepare(name, f"prepare_dataset, {name[8:]}, cold cache, all cores, {subset_note}", processor, subset, None, folder / name))
    reference_time = rows[0]["time_s"]
    for entry in rows:
        entry["speedup_vs_reference"] = speedup(reference_time, entry["time_s"])
    return {
        "description": f"Model inputs of every sample of {ctx.args.data} ({n} clips) computed each way.",
        "time_basis": "seconds per sample (total seconds / samples)",
        "num_samples": n,
        "subset_every": every,
        "reference_time_s": reference_time,
        "rows": rows,
    }


# --------------------------------------------------------------------------------------
# latency
# --------------------------------------------------------------------------------------
def make_vga_clip(ctx: Context) -> list[str]:
    """The first SynthME clip's onset/apex/offset as 640 x 480 JPEG files (paths).

    Each 320 x 320 frame is scaled to 480 x 480 and padded left and right with its edge
    pixels, so the face keeps its proportions (a plain resize to 640 x 480 would stretch it).
    """
    import cv2

    sample = ctx.dataset()[0]
    folder = ctx.run_dir / "latency" / "clip_640x480"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for key in ("onset_path", "apex_path", "offset_path"):
        frame = cv2.imread(sample[key], cv2.IMREAD_COLOR)
        scaled = cv2.resize(frame, (480, 480), interpolation=cv2.INTER_CUBIC)
        padded = cv2.copyMakeBorder(scaled, 0, 0, 80, 80, cv2.BORDER_REPLICATE)
        path = folder / f"{key.split('_')[0]}.jpg"
        cv2.imwrite(str(path), padded, [cv2.IMWRITE_JPEG_QUALITY, 95])
        paths.append(str(path))
    return paths


class OneThread:
    """Context: torch and OpenCV limited to one thread (the clip figures' basis), restored after."""

    def __enter__(self):
        import cv2
        import torch

        self.previous = (torch.get_num_threads(), cv2.getNumThreads())
        torch.set_num_threads(1)
        cv2.setNumThreads(1)
        return self

    def __exit__(self, *exc_info):
        import cv2
        import torch

        torch.set_num_threads(self.previous[0])
        cv2.setNumThreads(self.previous[1])


def describe_processor(processor) -> str:
    """One line of what a processor runs, from its settings ("format 2: DIS flow, detection at 320 px, ECC 5 it.")."""
    detection = f"detection at {processor.face_detection_max_side} px" if processor.face_detection_max_side else "full-frame detection"
    ecc = f"ECC {processor.stabilization_iterations} it." if processor.stabilization != "none" else "no stabilisation"
    return f"format {processor.processor_format_version}: {processor.flow_method.upper()} flow, {detection}, {ecc}"


def clip_pipelines(ctx: Context, paths: list[str]) -> tuple[Any, list[tuple[str, str, Callable[[], str]]], bool]:
    """(model, [(row name, description, classify the clip -> label)], bundled model trained?).

    The rows: the reference pipeline, the bundled model's saved processor (the acceptance
    row: what ``predict`` and the demo run) and a processor created now (the current format's
    defaults), each followed by the bundled model's forward pass. The descriptions say which
    settings each processor holds (`describe_processor`).
    """
    import torch

    import reference_pipeline
    from fmanet_hf import FMANetImageProcessor
    from fmanet_hf.pretrained import load_default_model

    model, bundled_processor, trained = load_default_model()

    def classify_with(processor) -> Callable[[], str]:
        def run() -> str:
            inputs = processor(*paths, return_tensors="pt")
            with torch.no_grad():
                logits = model(**inputs).logits
            return model.config.id2label[int(logits.argmax(-1)[0])]

        return run

    def classify_reference() -> str:
        pixel_values = torch.from_numpy(reference_pipeline.preprocess_sample(*paths))[None]
        with torch.no_grad():
            logits = model(pixel_values=pixel_values).logits
        return model.config.id2label[int(logits.argmax(-1)[0])]

    return model, [
        ("reference", "reference pipeline + bundled model forward", classify_reference),
        ("package_bundled_processor", f"bundled checkpoint's saved processor ({describe_processor(bundled_processor)}) + bundled model", classify_with(bundled_processor)),
        ("package_default", f"FMANetImageProcessor() defaults ({describe_processor(FMANetImageProcessor())}) + bundled model", classify_with(FMANetImageProcessor())),
    ], trained


def section_latency(ctx: Context) -> dict[str, Any]:
    """End-to-end seconds from three 640 x 480 frame files to a label, p50/p95, one thread.

    The pipelines take turns repetition by repetition (reference, bundled, default,
    reference, ...), so a change of the machine's load hits all of them alike.
    """
    reps = 3 if ctx.quick and ctx.args.latency_reps is None else (ctx.args.latency_reps or 20)
    warmups = 1 if ctx.quick else 2
    paths = make_vga_clip(ctx)
    with OneThread():
        _, candidates, trained = clip_pipelines(ctx, paths)
        latencies: dict[str, list[float]] = {name: [] for name, _, _ in candidates}
        labels: dict[str, set[str]] = {name: set() for name, _, _ in candidates}
        loads = []
        for _ in range(warmups):
            for _, _, run in candidates:
                run()
        for _ in range(reps):
            loads.append(load_average()[:1])
            for name, _, run in candidates:
                label, seconds = timed(run)
                latencies[name].append(seconds)
                labels[name].add(label)
    rows = []
    for name, description, _ in candidates:
        p50 = percentile(latencies[name], 50)
        log(f"latency {name}: p50 {p50 * 1000:.0f} ms")
        rows.append(
            {
                "name": name,
                "description": description,
                "p50_s": p50,
                "p95_s": percentile(latencies[name], 95),
                "mean_s": statistics.fmean(latencies[name]),
                "latencies_s": latencies[name],
                "labels": sorted(labels[name]),
                "time_s": p50,
            }
        )
    reference_time = rows[0]["time_s"]
    for entry in rows:
        entry["speedup_vs_reference"] = speedup(reference_time, entry["time_s"])
    return {
        "description": (
            "One clip (3 JPEG frames, 640x480, given as file paths) -> label, torch.no_grad, ONE thread "
            "(torch.set_num_threads(1), cv2.setNumThreads(1)), the pipelines interleaved repetition by repetition."
        ),
        "time_basis": "p50 wall seconds per clip",
        "repetitions": reps,
        "warmups": warmups,
        "one_minute_load_per_round": [x[0] for x in loads if x],
        "bundled_model_trained": trained,
        "frames": [os.path.relpath(p, ctx.run_dir) for p in paths],
        "reference_time_s": reference_time,
        "rows": rows,
    }


# --------------------------------------------------------------------------------------
# clip_stages
# --------------------------------------------------------------------------------------
# The processor's building blocks, as image_processing_fmanet imports them, by stage.
CLIP_STAGES = (
    ("decode", "load_triplet"),
    ("face detection + landmarks", "detect_face"),
    ("ECC stabilisation (2 frames)", "stabilize_to_reference"),
    ("optical flow (2 pairs)", "compute_optical_flow"),
)


def section_clip_stages(ctx: Context) -> dict[str, Any]:
    """CPU milliseconds per stage of one 640 x 480 clip, bundled vs default processor, one thread.

    Each stage function the processor calls is wrapped with a CPU-time counter (so other
    processes on the machine barely move the figures); "crop, warps, MM-COF, rest" is the
    processor's remaining CPU time, "model" the bundled model's forward pass.
    """
    import torch

    import fmanet_hf.image_processing_fmanet as processing
    from fmanet_hf import FMANetImageProcessor
    from fmanet_hf.pretrained import load_default_model

    reps = 2 if ctx.quick else ctx.args.stage_reps
    paths = make_vga_clip(ctx)
    model, bundled_processor, _ = load_default_model()
    spent: dict[str, float] = {}
    originals = {function: getattr(processing, function) for _, function in CLIP_STAGES}

    def counting(stage: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args, **kwargs):
            started = time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                spent[stage] = spent.get(stage, 0.0) + time.process_time() - started

        return wrapper

    processors = [("package_bundled_processor", bundled_processor), ("package_default", FMANetImageProcessor())]
    per_run: dict[str, list[dict[str, float]]] = {name: [] for name, _ in processors}
    with OneThread():
        try:
            for stage, function in CLIP_STAGES:
                setattr(processing, function, counting(stage, originals[function]))
            for repetition in range(reps + 1):  # the first round warms up
                for name, processor in processors:
                    spent.clear()
                    started = time.process_time()
                    inputs = processor(*paths, return_tensors="pt")
                    total = time.process_time() - started
                    started = time.process_time()
                    with torch.no_grad():
                        model(**inputs)
                    forward = time.process_time() - started
                    if repetition:
                        stages = {stage: spent.get(stage, 0.0) for stage, _ in CLIP_STAGES}
                        stages["crop, warps, MM-COF, rest"] = total - sum(stages.values())
                        stages["model"] = forward
                        per_run[name].append(stages)
        finally:
            for function, original in originals.items():
                setattr(processing, function, original)
    rows = []
    for name, runs in per_run.items():
        medians = {stage: statistics.median(run[stage] for run in runs) for stage in runs[0]}
        rows.append({"name": name, "stage_cpu_s": medians, "time_s": sum(medians.values())})
    return {
        "description": (
            "CPU time (time.process_time, one thread) per stage of one 640x480 clip -> label, median over "
            f"{reps} interleaved runs after one warm-up."
        ),
        "time_basis": "CPU seconds per clip (sum of the stage medians)",
        "repetitions": reps,
        "stages": [stage for stage, _ in CLIP_STAGES] + ["crop, warps, MM-COF, rest", "model"],
        "rows": rows,
    }


# --------------------------------------------------------------------------------------
# per_clip (preprocessing, one process against one process)
# --------------------------------------------------------------------------------------
def section_per_clip(ctx: Context) -> dict[str, Any]:
    """Preprocessing seconds per sample, one process and one thread each, interleaved.

    For every sample in turn: the reference pipeline, the bundled model's saved processor
    and a processor created now (the current format's defaults) compute its model input
    one after another in this process. The same samples, the same load, the same thread
    count; no cache, no dataset machinery.
    """
    import reference_pipeline
    from fmanet_hf import FMANetImageProcessor
    from fmanet_hf.pretrained import load_default_model

    dataset = ctx.dataset()
    every = ctx.args.per_clip_every or (max(1, len(dataset) // 6) if ctx.quick else 1)
    rows_data = [dataset[i] for i in range(0, len(dataset), every)]
    _, bundled_processor, _ = load_default_model()
    default_processor = FMANetImageProcessor()

    def package(processor):
        return lambda s: processor(s["onset_path"], s["apex_path"], s["offset_path"])["pixel_values"]

    candidates = [
        ("reference", "reference pipeline (dlib crop, OpenCV default TV-L1 on uint8)", lambda s: reference_pipeline.preprocess_sample(s["onset_path"], s["apex_path"], s["offset_path"])),
        ("package_bundled_processor", f"bundled model's saved processor ({describe_processor(bundled_processor)})", package(bundled_processor)),
        ("package_default", f"FMANetImageProcessor() ({describe_processor(default_processor)})", package(default_processor)),
    ]
    seconds = {name: [] for name, _, _ in candidates}
    loads = []
    with OneThread():
        for _, _, run in candidates:  # warm-up: dlib models, OpenCV kernels
            run(rows_data[0])
        for index, sample in enumerate(rows_data):
            if index % 10 == 0:
                loads.append(load_average()[0] if load_average() else None)
            for name, _, run in candidates:
                _, elapsed = timed(lambda: run(sample))
                seconds[name].append(elapsed)
    rows = []
    for name, description, _ in candidates:
        total = sum(seconds[name])
        rows.append(
            {
                "name": name,
                "description": description,
                "samples": len(seconds[name]),
                "seconds": total,
                "time_s": total / len(seconds[name]),
                "p50_s": percentile(seconds[name], 50),
                "p95_s": percentile(seconds[name], 95),
            }
        )
    reference_time = rows[0]["time_s"]
    for entry in rows:
        entry["speedup_vs_reference"] = speedup(reference_time, entry["time_s"])
    return {
        "description": (
            f"Model inputs of {len(rows_data)} samples of {ctx.args.data} (every {every}th), one process, one thread "
            "(cv2.setNumThreads(1)), the three pipelines taking turns sample by sample."
        ),
        "time_basis": "mean wall seconds per sample",
        "num_samples": len(rows_data),
        "every": every,
        "one_minute_load_every_10_samples": loads,
        "reference_time_s": reference_time,
        "rows": rows,
    }


# --------------------------------------------------------------------------------------
# model
# --------------------------------------------------------------------------------------
def _throughput(step: Callable[[], Any], batch: int, min_seconds: float, min_iterations: int) -> dict[str, Any]:
    """samples/s of ``step`` (one batch), run until both minimums are reached."""
    iterations, started = 0, time.perf_counter()
    while True:
        step()
        iterations += 1
        elapsed = time.perf_counter() - started
        if elapsed >= min_seconds and iterations >= min_iterations:
            break
    return {"iterations": iterations, "seconds": elapsed, "samples_per_s": batch * iterations / elapsed}


def section_model(ctx: Context) -> dict[str, Any]:
    """Parameters, FLOPs, forward and training-step samples/s, eager vs torch.compile."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from fmanet_hf import FMANetConfig, FMANetForImageClassification

    compile_wanted = {"on": True, "off": False, "auto": not ctx.quick}[ctx.args.compile]
    min_seconds = 0.2 if ctx.quick else 3.0
    min_iterations = 2 if ctx.quick else 10
    warmups = 1 if ctx.quick else 3
    config = FMANetConfig()

    def fresh_model():
        torch.manual_seed(0)
        return FMANetForImageClassification(config)

    model = fresh_model().eval()
    sample_shape = (config.num_channels, config.image_size, config.image_size)
    parameters = sum(p.numel() for p in model.parameters())
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(pixel_values=torch.randn(1, *sample_shape))
    flops = int(counter.get_total_flops())

    def compiled(module):
        import torch._dynamo

        torch._dynamo.reset()
        return torch.compile(module)

    def measure(kind: str, batch: int, mode: str) -> dict[str, Any]:
        entry: dict[str, Any] = {"name": f"{kind}_batch{batch}_{mode}", "kind": kind, "batch": batch, "mode": mode}
        if mode == "compile" and not compile_wanted:
            return {**entry, "status": "skipped", "reason": "--quick (or --compile off): compilation takes minutes"}
        try:
            generator = torch.Generator().manual_seed(1)
            x = torch.randn(batch, *sample_shape, generator=generator)
            if kind == "forward":
                module = fresh_model().eval()
                runner = compiled(module) if mode == "compile" else module

                def step():
                    with torch.no_grad():
                        return runner(pixel_values=x).logits

            else:
                module = fresh_model().train()
                runner = compiled(module) if mode == "compile" else module
                labels = torch.randint(0, config.num_labels, (batch,), generator=generator)
                optimizer = torch.optim.AdamW(module.parameters(), lr=2e-3, weight_decay=1e-4)

                def step():
                    optimizer.zero_grad()
                    loss = runner(pixel_values=x, labels=labels).loss
                    loss.backward()
                    optimizer.step()
                    return loss

            warmup_seconds = timed(lambda: [step() for _ in range(warmups)])[1]  # includes compilation
            result = _throughput(step, batch, min_seconds, min_iterations)
        except Exception as error:  # a compiler missing or failing is a result, not a crash
            message = f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"
            log(f"model {entry['name']} failed: {message}")
            return {**entry, "status": "failed", "error": message[:500]}
        log(f"model {entry['name']}: {result['samples_per_s']:.1f} samples/s")
        return {**entry, "status": "ok", "warmup_seconds": warmup_seconds, **result, "time_s": 1.0 / result["samples_per_s"]}

    rows = [measure(kind, batch, mode) for kind, batch in (("forward", 1), ("forward", 64), ("train_step", 16)) for mode in ("eager", "compile")]
    by_name = {r["name"]: r for r in rows}
    for entry in rows:
        eager = by_name[entry["name"].rsplit("_", 1)[0] + "_eager"]
        if entry.get("status") == "ok" and eager.get("status") == "ok":
            entry["speedup_vs_eager"] = speedup(eager["time_s"], entry["time_s"])
    return {
        "description": "FMANetForImageClassification(FMANetConfig()) (64x64, 6 channels, 3 classes), CPU.",
        "time_basis": "seconds per sample (1 / samples_per_s); warm-ups (and compilation) excluded",
        "parameters": parameters,
        "flops_per_forward_batch1": flops,
        "flops_note": "torch.utils.flop_counter.FlopCounterMode: a multiply-add counts as 2 FLOPs",
        "torch_threads": torch.get_num_threads(),
        "compile_requested": compile_wanted,
        "rows": rows,
    }


# --------------------------------------------------------------------------------------
# loso
# --------------------------------------------------------------------------------------
def chosen_loso_subjects(subjects: list[str], count: int) -> list[str]:
    """``count`` subjects spread evenly over the natural order of ``subjects``: positions
    ``floor(i * S / count)`` for i = 0 .. count - 1 of the S sorted subjects (68 -> 17: every
    4th subject from the first, sub01, sub05, ..., sub65, the folds of
    ``loso_schedule_cost.py --every 4``)."""
    from fmanet_hf.data.cells import natural_key

    ordered = sorted(set(subjects), key=natural_key)
    if not 1 <= count <= len(ordered):
        raise ValueError(f"--loso-subjects {count}: the set has {len(ordered)} subjects; choose 1 to {len(ordered)}")
    return [ordered[(i * len(ordered)) // count] for i in range(count)]


def write_subset_sheet(data_root: Path, dataset: Any, subjects: list[str], target: Path) -> Path:
    """A copy of the set's CSV annotation sheet holding only the rows of ``subjects``
    (found through the dataset's ``sheet_row``), for ``fmanet-hf loso --sheet``."""
    import csv

    from fmanet_hf.data.sheets import find_sheet

    source = find_sheet(data_root, ("CASME2-coding-*.csv",), dataset_name="synthme")
    wanted = set(subjects)
    keep = {int(row) for row, subject in zip(dataset["sheet_row"], dataset["subject"]) if subject in wanted}
    with source.open(newline="", encoding="utf-8") as handle:
        table = list(csv.reader(handle))
    # Row 1 is the header (SynthME writes no intro rows); sheet row r is table[r - 1].
    kept = [table[0]] + [line for number, line in enumerate(table, start=1) if number in keep]
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(kept)
    return target


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def _opencv_threads() -> int:
    import cv2

    return cv2.getNumThreads()


def loso_scores_and_schedule(results: dict[str, Any]) -> dict[str, Any]:
    """Pooled scores and schedule of a `load_loso_results` dict, as the loso rows record them."""
    settings = results.get("settings", {})
    return {
        "accuracy": results["accuracy"],
        "uf1": results["uf1"],
        "uar": results["uar"],
        "epochs": settings.get("schedule", {}).get("epochs"),
        "epochs_rule": settings.get("epochs_rule"),
        "fold_workers": settings.get("fold_workers"),
    }


def section_loso_subset(ctx: Context) -> dict[str, Any]:
    """`fmanet-hf loso` with its defaults and the reference LOSO, both measured in full on
    ``--loso-subjects N`` subjects of ``--data`` (no extrapolation), each from cold inputs."""
    import reference_pipeline
    from fmanet_hf.cli import build_parser
    from fmanet_hf.data.registry import load_dataset_by_name
    from fmanet_hf.training.loso_results import load_loso_results
    from fmanet_hf.training.metrics import classification_metrics

    folder = ctx.run_dir / "loso"
    full = ctx.dataset()
    all_subjects = sorted(set(full["subject"]))
    chosen = chosen_loso_subjects(all_subjects, ctx.args.loso_subjects)
    sheet = write_subset_sheet(ctx.args.data, full, chosen, folder / "subset-sheet.csv")
    subset = load_dataset_by_name("synthme", str(ctx.args.data), None, sheet=str(sheet))
    expected = sum(subject in set(chosen) for subject in full["subject"])
    if sorted(set(subset["subject"])) != sorted(chosen) or len(subset) != expected:
        raise RuntimeError(f"the subset sheet {sheet} does not load as the {len(chosen)} chosen subjects ({expected} clips)")
    log(f"loso subset: {len(chosen)} of {len(all_subjects)} subjects, {len(subset)} clips: {', '.join(chosen)}")

    def package(name: str, extra: list[str], processes: str) -> dict[str, Any]:
        # A fresh cache folder per row: the inputs are computed cold inside the command.
        argv = [
            "loso", "--dataset", "synthme", "--root", str(ctx.args.data), "--sheet", str(sheet),
            "--out", str(folder / name / "run"), "--cache-dir", str(folder / name / "cache"),
        ]
        if ctx.quick:
            argv += ["--epochs", "1"]
        if not ctx.progress:
            argv += ["--quiet"]
        argv += shlex.split(ctx.args.loso_args or "") + extra
        args = build_parser().parse_args(argv)
        load_before = load_average()
        status, seconds = timed(lambda: args.handler(args))
        if status != 0:
            raise RuntimeError(f"fmanet-hf {shlex.join(argv)} exited with status {status}")
        results = load_loso_results(args.out)
        loso_seconds = float(results["wall_time_seconds"])
        log(f"loso {name}: {seconds:.1f} s (run_loso {loso_seconds:.1f} s), UF1 {results['uf1']:.4f}")
        return {
            "name": name,
            "description": "fmanet-hf loso with its defaults" + (" and " + " ".join(extra) if extra else "") + ", cold cache (the command prepares the inputs)",
            "measured": True,
            "extrapolated": False,
            "processes": processes,
            "torch_threads": _torch_threads(),
            "command": "fmanet-hf " + shlex.join(argv),
            "num_folds": int(results["num_folds"]),
            "num_samples": int(results["num_samples"]),
            "prep_seconds": seconds - loso_seconds,
            "prep_note": "the command's wall time minus run_loso's: cold prepare_dataset (+ loading the set and the model config)",
            "training_time_s": loso_seconds,
            "time_s": seconds,
            **loso_scores_and_schedule(results),
            "load_before": load_before,
            "load_after": load_average(),
        }

    def reference() -> dict[str, Any]:
        schedule = {"epochs": 1} if ctx.quick else None
        load_before = load_average()
        threads = {"torch_threads": _torch_threads(), "opencv_threads": _opencv_threads()}

        def on_fold(record: dict[str, Any]) -> None:
            log(f"loso reference fold {record['test_subject']}: inputs {record['prep_seconds']:.1f} s, training {record['seconds']:.1f} s")

        records, seconds = timed(lambda: reference_pipeline.run_reference_loso(subset, seed=0, schedule=schedule, on_fold=on_fold))
        _, labels, _, class_names = reference_pipeline.dataset_rows(subset)
        y_true = [y for r in records for y in r["y_true"]]
        y_pred = [y for r in records for y in r["y_pred"]]
        pooled = classification_metrics(y_true, y_pred, len(class_names), class_names)
        log(f"loso reference: {seconds:.1f} s, UF1 {pooled['uf1']:.4f}")
        return {
            "name": "reference",
            "description": "reference LOSO run in full: every input recomputed in every fold, FMANet trained per fold, one process",
            "measured": True,
            "extrapolated": False,
            "label": f"measured in full on {len(chosen)} of {len(all_subjects)} subjects",
            "processes": "1 (inputs and training; OpenCV's and torch's default threads)",
            **threads,
            "num_folds": len(records),
            "num_samples": len(subset),
            "prep_seconds": sum(r["prep_seconds"] for r in records),
            "fold_prep_seconds": [r["prep_seconds"] for r in records],
            "fold_seconds": [r["seconds"] for r in records],
            "training_time_s": sum(r["seconds"] for r in records),
            "time_s": seconds,
            "accuracy": pooled["accuracy"],
            "uf1": pooled["uf1"],
            "uar": pooled["uar"],
            "epochs": records[0]["epochs"],
            "y_true": y_true,
            "y_pred": y_pred,
            "load_before": load_before,
            "load_after": load_average(),
        }

    # The reference runs between the package's two rows, so a change of load during the long
    # reference run shows as a difference between them.
    package_row = package("package", [], "prepare: one per core (datasets.map, OpenCV 1 thread each); training: 1 (torch default threads)")
    reference_row = reference()
    one_process_row = package("package_1_process", ["--num-proc", "1"], "1 (inputs and training; torch default threads)")
    rows = [reference_row, package_row, one_process_row]
    for entry in rows:
        entry["speedup_vs_reference"] = speedup(reference_row["time_s"], entry["time_s"])
        entry["training_speedup_vs_reference"] = speedup(reference_row["training_time_s"], entry["training_time_s"])
    return {
        "description": (
            f"Leave-one-subject-out on {len(chosen)} of the {len(all_subjects)} subjects of {ctx.args.data} "
            f"({len(subset)} clips), every pipeline run in full on the same subset: subjects {', '.join(chosen)} "
            f"(positions floor(i * {len(all_subjects)} / {len(chosen)}) of the natural order)."
        ),
        "mode": "subset",
        "subjects": chosen,
        "num_subjects_in_set": len(all_subjects),
        "subset_sheet": os.path.relpath(sheet, ctx.run_dir),
        "time_basis": "total seconds (inputs + all folds); training_time_s: the folds only",
        "package_command": package_row["command"],
        "reference_time_s": reference_row["time_s"],
        "reference_label": reference_row["label"],
        "rows": rows,
    }


def section_loso(ctx: Context) -> dict[str, Any]:
    """`fmanet-hf loso` with its defaults vs the reference LOSO extrapolated from k folds."""
    if ctx.args.loso_subjects:
        return section_loso_subset(ctx)
    import reference_pipeline
    from fmanet_hf.cli import build_parser
    from fmanet_hf.training.loso_results import load_loso_results

    folder = ctx.run_dir / "loso"
    reused_cache = ctx.default_cache_root is not None
    cache_root = ctx.default_cache_root if reused_cache else folder / "cache"
    argv = ["loso", "--dataset", "synthme", "--root", str(ctx.args.data), "--out", str(folder / "run"), "--cache-dir", str(cache_root)]
    if ctx.quick:
        argv += ["--epochs", "1"]
    if not ctx.progress:
        argv += ["--quiet"]
    argv += shlex.split(ctx.args.loso_args or "")
    args = build_parser().parse_args(argv)
    # The command's own handler (fmanet_hf.commands.loso.run): prepare_from_args, then run_loso with
    # exactly the arguments `fmanet-hf loso` passes, whatever the CLI's defaults are now.
    status, command_seconds = timed(lambda: args.handler(args))
    if status != 0:
        raise RuntimeError(f"fmanet-hf {shlex.join(argv)} exited with status {status}")
    results = load_loso_results(args.out)
    loso_seconds = float(results["wall_time_seconds"])  # run_loso's own wall time (all folds)
    # With the preprocessing section's cache the command only loads the inputs; their cold
    # computation was measured there (same processor, all cores) and is added here.
    package_total = (ctx.default_prep_seconds if reused_cache else 0.0) + command_seconds
    log(f"loso package: {command_seconds:.1f} s, UF1 {results['uf1']:.4f}")

    k = 1 if ctx.quick and ctx.args.reference_folds is None else (ctx.args.reference_folds or 3)
    estimate = reference_pipeline.measure_reference_loso(
        ctx.dataset(),
        measured_folds=k,
        inputs=ctx.reference_inputs,
        prep_seconds=ctx.reference_prep_seconds,
        schedule={"epochs": args.epochs, "batch_size": args.batch_size, "learning_rate": args.lr, "weight_decay": args.weight_decay},
        seed=args.seed,
    )
    log(f"loso reference: {estimate.label}: {estimate.extrapolated_seconds:.1f} s")
    package_row = {
        "name": "package",
        "description": "fmanet-hf loso with its defaults (prepare_from_args + run_loso), inputs computed cold once",
        "measured": True,
        "prep_seconds": package_total - loso_seconds,
        "prep_source": (
            "cold prepare_dataset of the preprocessing section (default processor, all cores) + the command's cache load"
            if reused_cache
            else "the command's own cold prepare_dataset"
        ),
        "command_seconds": command_seconds,
        "loso_seconds": loso_seconds,
        "time_s": package_total,
        "training_time_s": loso_seconds,
        **loso_scores_and_schedule(results),
        "out_dir": os.path.relpath(args.out, ctx.run_dir),
    }
    reference_row = {
        "name": "reference",
        "description": "reference LOSO: every input recomputed in every fold, FMANet trained per fold",
        "measured": False,
        "extrapolated": True,
        "label": estimate.label,
        "formula": "num_folds * (prep_seconds + mean(measured fold_seconds))",
        "num_folds": estimate.num_folds,
        "measured_folds": len(estimate.fold_seconds),
        "prep_seconds": estimate.prep_seconds,
        "prep_source": "preprocessing section (reference row)" if ctx.reference_inputs is not None else "measured in this section",
        "fold_seconds": estimate.fold_seconds,
        "mean_fold_seconds": estimate.mean_fold_seconds,
        "time_s": estimate.extrapolated_seconds,
        "training_time_s": estimate.num_folds * estimate.mean_fold_seconds,
        "measured_fold_correct": [sum(int(a == b) for a, b in zip(r["y_true"], r["y_pred"])) for r in estimate.fold_records],
        "measured_fold_samples": [r["n_test"] for r in estimate.fold_records],
        "epochs": estimate.fold_records[0]["epochs"],
    }
    for entry in (reference_row, package_row):
        entry["speedup_vs_reference"] = speedup(reference_row["time_s"], entry["time_s"])
        entry["training_speedup_vs_reference"] = speedup(reference_row["training_time_s"], entry["training_time_s"])
    return {
        "description": f"Leave-one-subject-out on {ctx.args.data} ({len(ctx.dataset())} clips, {estimate.num_folds} subjects).",
        "time_basis": "total seconds (inputs + all folds); training_time_s: the folds only",
        "package_command": "fmanet-hf " + shlex.join(argv),
        "reference_time_s": reference_row["time_s"],
        "reference_label": estimate.label,
        "rows": [reference_row, package_row],
    }


SECTION_FUNCTIONS: dict[str, Callable[[Context], dict[str, Any]]] = {
    "flow_accuracy": section_flow_accuracy,
    "clip_stages": section_clip_stages,
    "per_clip": section_per_clip,
    "preprocessing": section_preprocessing,
    "latency": section_latency,
    "model": section_model,
    "loso": section_loso,
}


# --------------------------------------------------------------------------------------
# Markdown report
# --------------------------------------------------------------------------------------
def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value >= 100:
        return f"{value:.0f} s"
    if value >= 1:
        return f"{value:.2f} s"
    return f"{value * 1000:.1f} ms"


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def render_markdown(result: dict[str, Any]) -> str:
    """The report block written between the markers: machine, command, one table per section."""
    machine, soft, git = result["machine"], result["versions"], result["git"]
    lines = [
        "## Benchmark results",
        "",
        f"Produced by `{result['command']}` on {result['date']}, git commit `{(git.get('commit') or 'unknown')[:12]}`"
        + (" (working tree with uncommitted changes)" if git.get("dirty") else "")
        + ".",
        "",
        f"Machine: {machine['cpu_model']}, {machine['cores']} cores ({machine['cores_usable']} usable), "
        f"{machine['ram_gib']} GiB RAM. Python {soft['python']}, torch {soft['torch']} ({soft['torch_threads']} threads), "
        f"OpenCV {soft['opencv']}, transformers {soft['transformers']}, fmanet-hf {soft['fmanet_hf']}."
        + (f" Environment: {machine['thread_env']}." if machine.get("thread_env") else ""),
        "",
        "Speed-up = the reference's time / this row's time, both measured in this run (> 1: faster than the reference).",
    ]
    if result["options"]["quick"]:
        lines += ["", "**--quick run: shrunk settings on a tiny set; these figures are a smoke test, not benchmarks.**"]
    sections = result["sections"]

    def load_line(section: dict[str, Any]) -> str:
        return f"Load average (1, 5, 15 min) before: {section.get('load_before')}, after: {section.get('load_after')}; section wall time {_seconds(section.get('wall_seconds'))}."

    for name in SECTIONS:
        if name not in sections:
            continue
        section = sections[name]
        lines += ["", f"### {name}", ""]
        if section.get("status") != "ok":
            lines += [f"Failed: `{section.get('error', 'unknown error')}`", ""]
            continue
        lines += [section["description"], ""]
        if name == "flow_accuracy":
            cases = section["cases"]
            header = ["flow", *[c + " EPE (px)" for c in cases], "mean EPE (px)", "cases ≤ reference", "noisy: mean EPE", "solver time", "speed-up vs reference"]
            rows = [
                [
                    r["name"], *[f"{r['epe_px'][c]:.3f}" for c in cases], f"{r['mean_epe_px']:.3f}",
                    f"{r['cases_at_or_below_reference']['epe_px']} / {len(cases)}", f"{r['mean_epe_noisy_px']:.3f}",
                    _seconds(r["time_s"]), _ratio(r["speedup_vs_reference"]),
                ]
                for r in section["rows"]
            ]
            lines += ["At the crop's resolution (what the processor computes):", ""] + _table(header, rows)
            header = ["flow", *[c + " EPE" for c in cases], "mean EPE (px)", "cases ≤ reference", "noisy: mean EPE", "noisy: cases ≤ reference"]
            rows = [
                [
                    r["name"], *[f"{r['epe_model_resolution_px'][c]:.4f}" for c in cases], f"{r['mean_epe_model_resolution_px']:.4f}",
                    f"{r['cases_at_or_below_reference']['epe_model_resolution_px']} / {len(cases)}",
                    f"{r['mean_epe_noisy_model_resolution_px']:.4f}",
                    f"{r['cases_at_or_below_reference']['epe_noisy_model_resolution_px']} / {len(cases)}",
                ]
                for r in section["rows"]
            ]
            lines += ["", "At the model's resolution (flows and exact flow area-averaged by 2; px of the model input):", ""] + _table(header, rows)
            lines += ["", f"Solver time: {section['time_basis']}; {section['repetitions']} repetition(s) per case."]
        elif name == "clip_stages":
            header = ["stage", *[r["name"] for r in section["rows"]]]
            rows = [[stage, *[_seconds(r["stage_cpu_s"][stage]) for r in section["rows"]]] for stage in section["stages"]]
            rows.append(["**total**", *[f"**{_seconds(r['time_s'])}**" for r in section["rows"]]])
            lines += _table(header, rows)
        elif name == "per_clip":
            header = ["pipeline", "samples", "per sample (mean)", "p50", "p95", "speed-up vs reference (mean)"]
            rows = [
                [f"{r['name']}: {r['description']}", str(r["samples"]), _seconds(r["time_s"]), _seconds(r["p50_s"]), _seconds(r["p95_s"]), _ratio(r["speedup_vs_reference"])]
                for r in section["rows"]
            ]
            lines += _table(header, rows)
            lines += ["", f"One-minute load average every 10 samples: {section['one_minute_load_every_10_samples']}."]
        elif name == "preprocessing":
            header = ["pipeline", "samples", "seconds", "per sample", "samples/s", "speed-up vs reference (per sample)"]
            rows = [
                [f"{r['name']}: {r['description']}", str(r["samples"]), _seconds(r["seconds"]), _seconds(r["time_s"]), f"{r['samples_per_s']:.2f}", _ratio(r["speedup_vs_reference"])]
                for r in section["rows"]
            ]
            lines += _table(header, rows)
            lines += ["", f"Reference pipeline: dlib found no face in {section['rows'][0]['faces_not_found']} of {section['num_samples']} onset frames (whole frame used)."]
        elif name == "latency":
            header = ["pipeline", "p50", "p95", "mean", "speed-up vs reference (p50)"]
            rows = [[f"{r['name']}: {r['description']}", _seconds(r["p50_s"]), _seconds(r["p95_s"]), _seconds(r["mean_s"]), _ratio(r["speedup_vs_reference"])] for r in section["rows"]]
            lines += _table(header, rows)
            lines += ["", f"{section['repetitions']} repetitions after {section['warmups']} warm-up(s); one-minute load average at each round: {section.get('one_minute_load_per_round')}."]
        elif name == "model":
            lines += [
                f"Parameters: {section['parameters']:,}. FLOPs per forward at batch 1: {section['flops_per_forward_batch1'] / 1e6:.1f} M "
                f"({section['flops_note']}). torch threads: {section['torch_threads']}.",
                "",
            ]
            header = ["measurement", "mode", "samples/s", "speed-up vs eager", "note"]
            rows = []
            for r in section["rows"]:
                note = "" if r["status"] == "ok" else f"{r['status']}: {r.get('reason') or r.get('error')}"
                sps = f"{r['samples_per_s']:.1f}" if r["status"] == "ok" else "—"
                rows.append([f"{r['kind']} batch {r['batch']}", r["mode"], sps, _ratio(r.get("speedup_vs_eager")), note])
            lines += _table(header, rows)
        elif name == "loso" and section.get("mode") == "subset":
            header = ["pipeline", "processes", "inputs (all folds)", "training (all folds)", "total", "speed-up vs reference", "accuracy / UF1 / UAR"]
            rows = []
            for r in section["rows"]:
                what = (
                    f"reference ({r['label']}; {r['num_folds']} folds, {r['epochs']} epochs)"
                    if r["name"] == "reference"
                    else f"{r['name']} (run_loso, {r['epochs']} epochs, fold workers: {r['fold_workers']})"
                )
                rows.append([
                    what, r["processes"], _seconds(r["prep_seconds"]), _seconds(r["training_time_s"]), _seconds(r["time_s"]),
                    _ratio(r["speedup_vs_reference"]), f"{r['accuracy']:.4f} / {r['uf1']:.4f} / {r['uar']:.4f}",
                ])
            lines += _table(header, rows)
            reference = section["rows"][0]
            lines += [
                "",
                "Training only (folds): speed-up "
                + ", ".join(f"{r['name']} {_ratio(r['training_speedup_vs_reference'])}" for r in section["rows"][1:])
                + f". The reference recomputes all {reference['num_samples']} inputs in each fold "
                f"(per fold {_seconds(min(reference['fold_prep_seconds']))} to {_seconds(max(reference['fold_prep_seconds']))}); "
                f"threads: reference torch {reference['torch_threads']}, OpenCV {reference['opencv_threads']}. Load average (1, 5, 15 min) before → after each row: "
                + "; ".join(f"{r['name']} {r['load_before']} → {r['load_after']}" for r in section["rows"])
                + f". Package command: `{section['package_command']}` (and the same with `--num-proc 1`).",
            ]
        elif name == "loso":
            reference, package = section["rows"]
            header = ["pipeline", "inputs", "training (all folds)", "total", "speed-up vs reference", "accuracy / UF1 / UAR"]
            rows = [
                [
                    f"reference ({reference['label']}; {reference['num_folds']} folds)",
                    f"{reference['num_folds']} × {_seconds(reference['prep_seconds'])}",
                    f"{reference['num_folds']} × {_seconds(reference['mean_fold_seconds'])}",
                    _seconds(reference["time_s"]),
                    _ratio(reference["speedup_vs_reference"]),
                    "not measured",
                ],
                [
                    f"package (run_loso, {package['epochs']} epochs, fold workers: {package['fold_workers']})",
                    _seconds(package["prep_seconds"]),
                    _seconds(package["training_time_s"]),
                    _seconds(package["time_s"]),
                    _ratio(package["speedup_vs_reference"]),
                    f"{package['accuracy']:.4f} / {package['uf1']:.4f} / {package['uar']:.4f}",
                ],
            ]
            lines += _table(header, rows)
            lines += [
                "",
                f"Training only (folds): speed-up {_ratio(package['training_speedup_vs_reference'])}. The reference is "
                f"{reference['label']} ({', '.join(_seconds(s) for s in reference['fold_seconds'])}); formula: {reference['formula']}. "
                f"Package command: `{section['package_command']}`.",
            ]
        lines += ["", load_line(section)]
    return "\n".join(lines) + "\n"


def write_markdown(path: Path, block: str, rerun_command: str, block_name: str | None = None) -> None:
    """Put ``block`` between the markers of ``path`` (created when missing), atomically."""
    from fmanet_hf.atomic import atomic_write_text

    marker_start, marker_end = markers(block_name)
    wrapped = f"{marker_start}\n{block}{marker_end}"
    if path.is_file():
        text = path.read_text(encoding="utf-8")
    else:
        text = (
            "# Performance\n\n"
            "The figures below are written by `benchmarks/run_benchmarks.py`; rerun it to refresh them, e.g. "
            f"`{rerun_command}` (see the script's docstring for the sections and options).\n\n"
        )
    start, end = text.find(marker_start), text.find(marker_end)
    if start != -1 and end != -1 and end > start:
        text = text[:start] + wrapped + text[end + len(marker_end):]
    else:
        text = text.rstrip("\n") + "\n\n" + wrapped + "\n"
    atomic_write_text(path, text)


def write_json(path: Path, result: dict[str, Any]) -> None:
    """The result as JSON, atomically (strict: a NaN or infinity is a bug, not a figure)."""
    from fmanet_hf.atomic import atomic_write_text

    atomic_write_text(path, json.dumps(result, indent=2, sort_keys=False, allow_nan=False) + "\n")


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="a SynthME set (CASME II layout, e.g. from `fmanet-hf synth`); needed by every section but flow_accuracy and model")
    parser.add_argument("--work-dir", type=Path, required=True, help="scratch folder; each run writes a fresh run-<time>-<pid>/ in it")
    parser.add_argument("--json", type=Path, required=True, help="result file (written after every section)")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}")
    parser.add_argument("--quick", action="store_true", help="shrink everything for a smoke test (about a minute on a tiny set)")
    parser.add_argument("--markdown", type=Path, help="also write the report between the bench markers of this file")
    parser.add_argument("--markdown-block", help="write between the named markers <!-- bench:NAME:start/end --> instead of the default ones")
    parser.add_argument("--flow-reps", type=int, default=3, help="solver runs per flow case (median time)")
    parser.add_argument("--subset-every", type=int, help="alternative flows in `preprocessing` run on every Kth sample (default 1; 4 with --quick)")
    parser.add_argument("--latency-reps", type=int, help="timed clips per latency row (default 20; 3 with --quick)")
    parser.add_argument("--stage-reps", type=int, default=10, help="profiled clips per processor in clip_stages (2 with --quick)")
    parser.add_argument("--per-clip-every", type=int, help="per_clip times every Kth sample (default 1; about 6 samples with --quick)")
    parser.add_argument("--reference-folds", type=int, help="reference LOSO folds measured (default 3; 1 with --quick)")
    parser.add_argument(
        "--loso-subjects", type=int,
        help="loso: run the reference and the package in full on this many subjects (spread evenly in natural order) instead of extrapolating the reference",
    )
    parser.add_argument("--loso-args", help="extra `fmanet-hf loso` arguments for the loso section, e.g. \"--fold-workers 2\"")
    parser.add_argument("--compile", choices=("auto", "on", "off"), default="auto", help="torch.compile rows of `model` (auto: off with --quick)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    args.section_list = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = sorted(set(args.section_list) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {unknown}; choose from {list(SECTIONS)}")
    needs_data = set(args.section_list) & {"clip_stages", "per_clip", "preprocessing", "latency", "loso"}
    if needs_data and (args.data is None or not args.data.is_dir()):
        parser.error(f"sections {sorted(needs_data)} need --data, an existing SynthME folder")
    for name in ("flow_reps", "subset_every", "latency_reps", "stage_reps", "per_clip_every", "reference_folds", "loso_subjects"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run_dir = args.work_dir / f"run-{datetime.now().strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    run_dir.mkdir(parents=True, exist_ok=False)
    command = "python " + shlex.join(sys.argv if argv is None else [sys.argv[0], *argv])
    ctx = Context(args, run_dir)
    result: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "command": command,
        "argv": sys.argv if argv is None else [sys.argv[0], *argv],
        "python_executable": sys.executable,
        "cwd": os.getcwd(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git": git_info(),
        "machine": machine_info(),
        "versions": versions(),
        "options": {
            "quick": ctx.quick,
            "sections": args.section_list,
            "data": str(args.data) if args.data else None,
            "run_dir": str(run_dir),
        },
        "sections": {},
    }
    failed = []
    for name in [s for s in SECTIONS if s in args.section_list]:
        log(f"section {name} ...")
        entry: dict[str, Any] = {"load_before": load_average()}
        started = time.perf_counter()
        try:
            entry.update(SECTION_FUNCTIONS[name](ctx))
            entry["status"] = "ok"
        except Exception as error:  # one failed section must not lose the others' figures
            traceback.print_exc()
            entry.update({"status": "failed", "error": f"{type(error).__name__}: {error}"[:1000]})
            failed.append(name)
        entry["wall_seconds"] = time.perf_counter() - started
        entry["load_after"] = load_average()
        result["sections"][name] = entry
        result["date_finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        write_json(args.json, result)  # after every section: a killed long run keeps what it measured
        log(f"section {name}: {entry['status']} in {entry['wall_seconds']:.1f} s")
    if args.markdown:
        write_markdown(args.markdown, render_markdown(result), command, args.markdown_block)
    log(f"results: {args.json}" + (f", report: {args.markdown}" if args.markdown else ""))
    if failed:
        log(f"FAILED sections: {failed}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
