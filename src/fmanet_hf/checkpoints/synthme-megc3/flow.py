"""Dense optical flow between two grey frames, and its colour visualisation.

Convention (OpenCV's): ``flow = compute_optical_flow(previous, following)`` is an
(H, W, 2) float32 array of (u, v) = (dx, dy) in PIXELS of the input frames, such that
``previous(x, y) ~ following(x + u, y + v)``. So a feature moving right by one pixel
between the two frames has u = +1 at its location.

Methods:
- ``"dis"``: Dense Inverse Search (OpenCV) run down to the FULL resolution
  (``finest_scale=0``; OpenCV's presets stop one or more pyramid levels above it and then
  only upsample), 8 px patches every 3 px, 12 + 12 iterations. The processor's default
  since format 2: on the known warps of docs/performance.md it is more accurate than
  OpenCV's TV-L1 defaults on the mean and on local 0.5-2 px motion, at a 3-4x smaller cost
  than the package's own TV-L1 budget below.
- ``"tvl1"``: Dual TV-L1 (OpenCV-contrib ``cv2.optflow``), the field's standard. The
  default budget (3 scales 0.65 apart, 3 warps, 3 inner x 2 outer iterations) is ~5.5x
  cheaper than OpenCV's own defaults (``OPENCV_TVL1_PARAMS``, what MER papers run) and, on
  float crops, as accurate (within 0.001 px, or better) on local 0.5-2 px warps of a real
  face and a 0.3 px shift; a
  global 0.72 px shift, which the processor's head-motion stabilisation removes before the
  flow, comes out less exact (docs/performance.md). Pass ``flow_params=OPENCV_TVL1_PARAMS`` to reproduce published
  pipelines exactly.
- ``"farneback"``: polynomial-expansion flow, fast, smoother and less precise.

Imported relatively by the remote-code image processor: numpy and OpenCV only.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import cv2
import numpy as np

from .errors import FMANetConfigError, OpticalFlowError, did_you_mean

FLOW_METHODS = ("tvl1", "dis", "farneback")

# OpenCV's own TV-L1 defaults (what MER research code runs), written out in full.
OPENCV_TVL1_PARAMS: dict[str, Any] = {
    "tau": 0.25,
    "lambda": 0.15,
    "theta": 0.3,
    "nscales": 5,
    "warps": 5,
    "epsilon": 0.01,
    "inner_iterations": 30,
    "outer_iterations": 10,
    "scale_step": 0.8,
    "gamma": 0.0,
    "median_filtering": 5,
}

# Written out in full so a saved processor records exactly what it ran with. TV-L1's
# budget was chosen on the known warps of benchmarks/run_benchmarks.py (flow accuracy):
# at a 160 px crop, five scales 0.8 apart and 10 x 30 iterations mostly refine motion far
# larger than a micro-expression's 0.2-2 px. 3 scales 0.65 apart, 3 warps and 3 x 2
# iterations match (within 0.001 px) or beat OpenCV's defaults on 8-bit frames for local
# 0.5-2 px motion and a 0.3 px shift (mean endpoint error over the five warps 0.071 vs
# 0.073 px) at about 1/5.5 of the solver time.
# No budget under a third of the time matched them on a 0.72 px global shift (head
# motion, which stabilisation removes before the flow).
DEFAULT_FLOW_PARAMS: dict[str, dict[str, Any]] = {
    "tvl1": {
        **OPENCV_TVL1_PARAMS,
        "nscales": 3,
        "scale_step": 0.65,
        "warps": 3,
        "inner_iterations": 3,
        "outer_iterations": 2,
    },
    # DIS: the medium preset's variational-refinement weights, but run to the full
    # resolution (finest_scale 0 instead of the preset's 1, whose last step is a plain
    # upsampling) with denser patches. Chosen on the known warps of
    # benchmarks/run_benchmarks.py (flow_accuracy; noisy copies checked too): mean endpoint
    # error 0.062 px against OpenCV's TV-L1 defaults' 0.073 px. ``None`` keeps the preset's
    # value (what a saved format-1 processor with flow_method "dis" holds).
    "dis": {
        "preset": "medium",
        "finest_scale": 0,
        "patch_size": 8,
        "patch_stride": 3,
        "gradient_descent_iterations": 12,
        "variational_refinement_iterations": 12,
    },
    "farneback": {
        "pyr_scale": 0.5,
        "levels": 3,
        "winsize": 15,
        "iterations": 3,
        "poly_n": 5,
        "poly_sigma": 1.2,
    },
}

_DIS_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


# Accepted ranges: (integer?, low, high). A preprocessor_config.json from a stranger could
# otherwise ask for a billion solver iterations (a hang) or a NaN step (garbage flow).
# The bounds are far outside any useful setting; None (DIS: keep the preset's) is allowed.
_PARAMETER_BOUNDS: dict[str, dict[str, tuple[bool, float, float]]] = {
    "tvl1": {
        "tau": (False, 1e-4, 1.0), "lambda": (False, 1e-4, 100.0), "theta": (False, 1e-4, 1.0),
        "nscales": (True, 1, 10), "warps": (True, 1, 50), "epsilon": (False, 1e-6, 1.0),
        "inner_iterations": (True, 1, 300), "outer_iterations": (True, 1, 300),
        "scale_step": (False, 0.05, 0.99), "gamma": (False, 0.0, 10.0), "median_filtering": (True, 1, 15),
    },
    "dis": {
        "finest_scale": (True, 0, 10), "patch_size": (True, 1, 64), "patch_stride": (True, 1, 64),
        "gradient_descent_iterations": (True, 1, 1000), "variational_refinement_iterations": (True, 0, 1000),
    },
    "farneback": {
        "pyr_scale": (False, 0.05, 0.99), "levels": (True, 1, 10), "winsize": (True, 3, 101),
        "iterations": (True, 1, 100), "poly_n": (True, 3, 11), "poly_sigma": (False, 0.1, 5.0),
    },
}


def resolve_flow_params(method: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Merge user overrides into a method's defaults, refusing unknown methods or keys.

    Returns:
        The full parameter dict for ``method`` (defaults updated with ``params``).

    Raises:
        FMANetConfigError: unknown method, unknown parameter name, or an invalid value.
    """
    if method not in FLOW_METHODS:
        raise FMANetConfigError(f"Unknown flow_method {method!r}; choose one of {list(FLOW_METHODS)}.")
    resolved = dict(DEFAULT_FLOW_PARAMS[method])
    for key, value in (params or {}).items():
        if key not in resolved:
            raise FMANetConfigError(
                f"Unknown parameter {key!r} for flow_method={method!r}{did_you_mean(key, resolved)}; valid names: "
                f"{sorted(resolved)}."
            )
        resolved[key] = value
    if method == "dis" and resolved["preset"] not in _DIS_PRESETS:
        raise FMANetConfigError(f"Unknown DIS preset {resolved['preset']!r}; choose one of {list(_DIS_PRESETS)}.")
    for key, (integer, low, high) in _PARAMETER_BOUNDS[method].items():
        value = resolved[key]
        if value is None and method == "dis":
            continue
        number_ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not number_ok or (integer and float(value) != int(value)) or not low <= value <= high:
            kind = "an integer" if integer else "a number"
            raise FMANetConfigError(
                f"{method} parameter {key} must be {kind} in [{low:g}, {high:g}], got {value!r}. "
                f"The package's default is {DEFAULT_FLOW_PARAMS[method][key]!r}."
            )
    return resolved


def _tvl1(previous: np.ndarray, following: np.ndarray, params: Mapping[str, Any]) -> np.ndarray:
    solver = cv2.optflow.DualTVL1OpticalFlow_create(
        tau=float(params["tau"]),
        lambda_=float(params["lambda"]),
        theta=float(params["theta"]),
        nscales=int(params["nscales"]),
        warps=int(params["warps"]),
        epsilon=float(params["epsilon"]),
        innnerIterations=int(params["inner_iterations"]),  # sic: OpenCV's keyword has three n's
        outerIterations=int(params["outer_iterations"]),
        scaleStep=float(params["scale_step"]),
        gamma=float(params["gamma"]),
        medianFiltering=int(params["median_filtering"]),
    )
    # OpenCV's TV-L1 multiplies float input by 255 (it expects floats in [0, 1]); giving it
    # [0, 255] floats inflates the data term 255-fold: slow, noisy, full of outliers.
    return solver.calc(previous / 255.0, following / 255.0, None)


def _dis(previous: np.ndarray, following: np.ndarray, params: Mapping[str, Any]) -> np.ndarray:
    solver = cv2.DISOpticalFlow_create(_DIS_PRESETS[params["preset"]])
    setters = {
        "finest_scale": solver.setFinestScale,
        "patch_size": solver.setPatchSize,
        "patch_stride": solver.setPatchStride,
        "gradient_descent_iterations": solver.setGradientDescentIterations,
        "variational_refinement_iterations": solver.setVariationalRefinementIterations,
    }
    for key, setter in setters.items():
        if params.get(key) is not None:
            setter(int(params[key]))
    # DIS only takes 8-bit input.
    as_u8 = [np.clip(np.rint(frame), 0, 255).astype(np.uint8) for frame in (previous, following)]
    return solver.calc(as_u8[0], as_u8[1], None)


def _farneback(previous: np.ndarray, following: np.ndarray, params: Mapping[str, Any]) -> np.ndarray:
    return cv2.calcOpticalFlowFarneback(
        previous,
        following,
        None,
        float(params["pyr_scale"]),
        int(params["levels"]),
        int(params["winsize"]),
        int(params["iterations"]),
        int(params["poly_n"]),
        float(params["poly_sigma"]),
        0,
    )


_SOLVERS = {"tvl1": _tvl1, "dis": _dis, "farneback": _farneback}


def compute_optical_flow(
    previous: np.ndarray,
    following: np.ndarray,
    method: str = "tvl1",
    params: Mapping[str, Any] | None = None,
) -> np.ndarray:
    """Dense optical flow from ``previous`` to ``following``.

    Args:
        previous: (H, W) grey frame, float32 (or uint8) with values in [0, 255].
        following: (H, W) grey frame of the same size and scale.
        method: ``"tvl1"`` (default), ``"dis"`` or ``"farneback"``.
        params: overrides of ``DEFAULT_FLOW_PARAMS[method]``.

    Returns:
        (H, W, 2) float32 flow (u, v) in pixels (see module docstring for the convention).

    Raises:
        FMANetConfigError: bad method/params. OpticalFlowError: OpenCV failed, or non-finite flow.
    """
    resolved = resolve_flow_params(method, params)
    previous = np.ascontiguousarray(previous, dtype=np.float32)
    following = np.ascontiguousarray(following, dtype=np.float32)
    if previous.shape != following.shape or previous.ndim != 2:
        raise OpticalFlowError(
            f"Optical flow needs two grey (H, W) frames of one size; got {previous.shape} and {following.shape}."
        )
    try:
        flow = _SOLVERS[method](previous, following, resolved)
    except cv2.error as error:
        raise OpticalFlowError(
            f"OpenCV's {method} optical flow failed on {previous.shape[0]}x{previous.shape[1]} frames: "
            f"{str(error).strip().splitlines()[-1]}. Try flow_method='dis' or larger frames."
        ) from None
    flow = np.asarray(flow, dtype=np.float32)
    if not np.isfinite(flow).all():
        raise OpticalFlowError(f"The {method} optical flow produced non-finite values; check the input frames.")
    return flow


def flow_to_color(flow: np.ndarray, max_magnitude: float | None = None) -> np.ndarray:
    """Colour-code a flow field: hue = direction, brightness = magnitude.

    Args:
        flow: (H, W, 2) flow (u, v) in pixels.
        max_magnitude: magnitude (pixels) shown at full brightness; defaults to the
            field's maximum (a static field renders black).

    Returns:
        (H, W, 3) uint8 RGB image.
    """
    flow = np.asarray(flow, dtype=np.float32)
    magnitude, angle = cv2.cartToPolar(flow[..., 0], flow[..., 1], angleInDegrees=True)
    scale = float(max_magnitude) if max_magnitude else float(magnitude.max())
    hsv = np.zeros(flow.shape[:2] + (3,), dtype=np.uint8)
    hsv[..., 0] = (angle / 2.0).astype(np.uint8)  # OpenCV hue range is [0, 180)
    hsv[..., 1] = 255
    hsv[..., 2] = np.clip(magnitude / scale * 255.0, 0, 255).astype(np.uint8) if scale > 0 else 0
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
