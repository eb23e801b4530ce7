"""Tests of FMANetImageProcessor: the four acceptance checks of the processor (flow
accuracy on a known warp of a real face, static clips, head-motion removal, errors),
input types, batching, saving and loading.

Expected flows come from the warp the test itself applies (a known smooth field, or a
known rigid head motion), never from the processor's own output.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from fmanet_hf import (
    FaceNotFoundError,
    FMANetConfigError,
    FMANetError,
    FMANetImageProcessor,
    FrameCountError,
    FrameSizeMismatchError,
    ImageLoadError,
    InvalidFrameError,
)
from fmanet_hf.frames import load_triplet
from fmanet_hf.flow import OPENCV_TVL1_PARAMS, compute_optical_flow
from tests.helpers.tiny import tiny_model

# ------------------------------------------------------------------ a known warp of a real face
# Facial regions of skimage's astronaut (512x512), from dlib's 68 landmarks on that image:
# brow centres (200.6, 89.8) and (251.4, 92.6), mouth centre (223.2, 145.6) (x, y pixels).
BROWS = ((200.0, 90.0), (251.0, 93.0))
MOUTH = (223.0, 146.0)
SIGMA = 10.0  # px
PEAK = 1.0  # px: brows move up by 1 px, the mouth down by 1 px
FACE_WINDOW = (slice(20, 276), slice(96, 352))  # 256x256 around the face (y, x)
WINDOW_OFFSET = (96.0, 20.0)  # (x, y) of the window's origin in the full image


def displacement(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The motion field d = (du, dv) at window coordinates (x, y): Gaussian bumps."""
    fx, fy = x + WINDOW_OFFSET[0], y + WINDOW_OFFSET[1]

    def bump(cx, cy):
        return np.exp(-((fx - cx) ** 2 + (fy - cy) ** 2) / (2 * SIGMA**2))

    dv = PEAK * (-bump(*BROWS[0]) - bump(*BROWS[1]) + bump(*MOUTH))
    return np.zeros_like(dv), dv


def forward_flow(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The exact onset->apex flow of the warp: apex(p) = onset(p - d(p)), so the onset point x
    is found in the apex at p with p - d(p) = x, i.e. flow f(x) = d(x + f(x)). Fixed point
    (a contraction: |grad d| <= 0.07 here). First order it is d itself."""
    fu, fv = displacement(x, y)
    for _ in range(30):
        fu, fv = displacement(x + fu, y + fv)
    return fu, fv


@pytest.fixture(scope="module")
def warped_face(astronaut_gray):
    onset = np.ascontiguousarray(astronaut_gray[FACE_WINDOW])
    height, width = onset.shape
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    du, dv = displacement(x, y)
    apex = cv2.remap(
        onset.astype(np.float32),
        (x - du).astype(np.float32),
        (y - dv).astype(np.float32),
        cv2.INTER_CUBIC,
        borderMode=cv2.BORDER_REPLICATE,
    )
    apex = (np.clip(apex, 0.0, 255.0) / 255.0).astype(np.float32)  # float frame in [0, 1]
    return {"onset": onset, "apex": apex}


def epe_against_expectation(sample, aligned: bool):
    """Mean endpoint errors of both phases over the moving region, plus the mean dot product
    of the apex->offset flow with the motion (offset = onset: the motion relaxes)."""
    flow1, flow2 = sample.onset_apex_flow, sample.apex_offset_flow
    height, width = flow1.shape[:2]
    cy, cx = np.mgrid[0:height, 0:width].astype(np.float64)
    if aligned:
        transform = np.vstack([sample.source_to_crop[0], [0.0, 0.0, 1.0]])
        inverse = np.linalg.inv(transform)
        sx = inverse[0, 0] * cx + inverse[0, 1] * cy + inverse[0, 2]
        sy = inverse[1, 0] * cx + inverse[1, 1] * cy + inverse[1, 2]
        a = transform[:2, :2]
    else:
        sx, sy, a = cx, cy, np.eye(2)
    du, dv = displacement(sx, sy)
    fu, fv = forward_flow(sx, sy)
    region = np.hypot(du, dv) > 0.3 * PEAK
    # A vector field in source pixels becomes A @ vector in crop pixels.
    e1u, e1v = a[0, 0] * fu + a[0, 1] * fv, a[1, 0] * fu + a[1, 1] * fv
    mu, mv = a[0, 0] * du + a[0, 1] * dv, a[1, 0] * du + a[1, 1] * dv  # d in crop pixels
    epe1 = np.hypot(flow1[..., 0] - e1u, flow1[..., 1] - e1v)[region].mean()
    epe2 = np.hypot(flow2[..., 0] + mu, flow2[..., 1] + mv)[region].mean()  # expected -d
    dot2 = (flow2[..., 0] * mu + flow2[..., 1] * mv)[region].mean()
    still = np.hypot(du, dv) < 0.01 * PEAK
    return {
        "epe1": epe1,
        "epe2": epe2,
        "dot2": dot2,
        "region_pixels": int(region.sum()),
        "expected_mean": np.hypot(mu, mv)[region].mean(),
        "still_mean": np.hypot(flow1[..., 0], flow1[..., 1])[still].mean(),
    }


# ------------------------------------------------------------------ ACCEPTANCE 1
@pytest.mark.parametrize("aligned", [False, True], ids=["unaligned", "aligned"])
@pytest.mark.parametrize("method", ["dis", "tvl1"])
def test_acceptance_1_flow_recovers_a_known_warp_of_a_real_face(warped_face, method, aligned):
    settings = {"flow_method": method}
    if not aligned:
        settings.update(align_faces=False, crop_size=None, stabilization="none")
    processor = FMANetImageProcessor(**settings)
    onset = warped_face["onset"]
    sample = processor.process_triplet(onset, warped_face["apex"], onset)  # offset = onset
    if aligned:
        assert sample.landmarks is not None and sample.num_faces == 1
        assert sample.onset_apex_flow.shape == (128, 128, 2)
    else:
        assert sample.onset_apex_flow.shape == (256, 256, 2)
        np.testing.assert_array_equal(sample.source_to_crop[0], [[1, 0, 0], [0, 1, 0]])
    result = epe_against_expectation(sample, aligned)
    print(f"{method} {'aligned' if aligned else 'unaligned'}: {result}")
    assert result["region_pixels"] > 1500  # the three bumps, in crop pixels
    assert result["expected_mean"] > 0.5  # the region really moves (~0.6-0.7 px mean)
    # Phase 1 (onset -> apex) recovers the field.
    assert result["epe1"] < 0.25
    # Phase 2 (apex -> offset = onset) is the motion relaxing: opposite direction, -d.
    assert result["dot2"] < -0.15  # about -0.27 to -0.37 px^2 measured; -|d|^2 would be -0.37
    assert result["epe2"] < 0.25
    # And where nothing moves, the flow stays near zero.
    assert result["still_mean"] < 0.05


def test_tvl1_flow_with_opencv_params_equals_opencv_default_tvl1_on_8_bit_frames():
    """Regression: OpenCV's TV-L1 multiplies float input by 255; with OPENCV_TVL1_PARAMS the
    processor's flow must be OpenCV's own default TV-L1 (what MER papers run on 8-bit frames)."""
    onset, apex, _ = smooth_triplet(64, seed=4)
    processor = FMANetImageProcessor(
        align_faces=False,
        crop_size=None,
        stabilization="none",
        flow_margin_fraction=0.0,
        intensity_matching="none",
        flow_method="tvl1",
        flow_params=OPENCV_TVL1_PARAMS,
    )
    sample = processor.process_triplet(onset, apex, onset)
    reference = cv2.optflow.DualTVL1OpticalFlow_create().calc(onset, apex, None)
    np.testing.assert_allclose(sample.onset_apex_flow, reference, atol=2e-3)


@pytest.mark.parametrize("peak_px", [0.5, 1.0, 2.0])
def test_default_tvl1_budget_is_as_accurate_as_opencv_defaults_on_8_bit_frames(astronaut_gray, peak_px):
    """The package's cheaper TV-L1 budget (DEFAULT_FLOW_PARAMS) on float frames must not lose
    accuracy against what research code runs: OpenCV's default TV-L1 on 8-bit frames.
    Known warp: the module's brow/mouth bumps scaled to ``peak_px`` on the face window."""
    onset = np.ascontiguousarray(astronaut_gray[FACE_WINDOW]).astype(np.float32)
    height, width = onset.shape
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    du, dv = (peak_px * d for d in displacement(x, y))
    apex = cv2.remap(onset, (x - du).astype(np.float32), (y - dv).astype(np.float32), cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    fu, fv = du, dv
    for _ in range(30):  # exact forward flow, as in forward_flow()
        fu, fv = (peak_px * d for d in displacement(x + fu, y + fv))
    region = np.hypot(du, dv) > 0.3 * peak_px

    def epe(flow):
        return float(np.hypot(flow[..., 0] - fu, flow[..., 1] - fv)[region].mean())

    package_default = compute_optical_flow(onset, apex, "tvl1")
    research_code = cv2.optflow.DualTVL1OpticalFlow_create().calc(
        np.rint(onset).astype(np.uint8), np.rint(np.clip(apex, 0, 255)).astype(np.uint8), None
    )
    assert epe(package_default) <= epe(research_code) + 0.005, (epe(package_default), epe(research_code))
    assert epe(package_default) < 0.1 * max(1.0, peak_px)


@pytest.mark.parametrize("peak_px", [0.5, 1.0, 2.0])
def test_default_dis_is_as_accurate_as_opencv_default_tvl1_on_8_bit_frames(astronaut_gray, peak_px):
    """The processor's default flow since format 2 (full-resolution DIS) must not lose accuracy
    against what research code runs, OpenCV's default TV-L1 on 8-bit frames, on local motion
    of a real face: the module's brow/mouth bumps, exact forward flow by fixed point."""
    onset = np.ascontiguousarray(astronaut_gray[FACE_WINDOW]).astype(np.float32)
    height, width = onset.shape
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    du, dv = (peak_px * d for d in displacement(x, y))
    apex = cv2.remap(onset, (x - du).astype(np.float32), (y - dv).astype(np.float32), cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    fu, fv = du, dv
    for _ in range(30):
        fu, fv = (peak_px * d for d in displacement(x + fu, y + fv))
    region = np.hypot(du, dv) > 0.3 * peak_px

    def epe(flow):
        return float(np.hypot(flow[..., 0] - fu, flow[..., 1] - fv)[region].mean())

    assert FMANetImageProcessor().flow_method == "dis"
    package_default = compute_optical_flow(onset, apex, "dis")
    research_code = cv2.optflow.DualTVL1OpticalFlow_create().calc(
        np.rint(onset).astype(np.uint8), np.rint(np.clip(apex, 0, 255)).astype(np.uint8), None
    )
    assert epe(package_default) <= epe(research_code) + 0.005, (epe(package_default), epe(research_code))
    # OpenCV's medium preset stops a pyramid level above the full resolution: much coarser.
    medium_preset = compute_optical_flow(onset, apex, "dis", {"finest_scale": None, "patch_size": None, "patch_stride": None,
                                                              "gradient_descent_iterations": None, "variational_refinement_iterations": None})
    if peak_px >= 1.0:
        assert epe(medium_preset) > 1.5 * epe(package_default)


# ------------------------------------------------------------------ format versions
FORMAT_2_SETTINGS = ("flow_method", "face_detection_max_side", "stabilization_iterations", "stabilization_epsilon")


def test_a_format_1_config_keeps_format_1_settings_and_a_new_processor_gets_format_2():
    format_1 = FMANetImageProcessor.from_dict({"processor_format_version": 1, "align_faces": False, "crop_size": 48})
    assert [getattr(format_1, key) for key in FORMAT_2_SETTINGS] == ["tvl1", None, 60, 1e-5]
    assert format_1.flow_params["nscales"] == 3  # the package's TV-L1 budget, as format 1 saved it
    new = FMANetImageProcessor()
    assert new.processor_format_version == 2
    assert [getattr(new, key) for key in FORMAT_2_SETTINGS] == ["dis", 320, 5, 1e-4]
    assert new.flow_params["finest_scale"] == 0
    # Written out on save, None included, so the folder never depends on defaults again.
    saved = FMANetImageProcessor(face_detection_max_side=None).to_dict()
    assert saved["face_detection_max_side"] is None and saved["stabilization_iterations"] == 5


def test_a_saved_format_1_processor_gives_the_same_input_as_the_same_settings_written_out(tmp_path):
    """Upgrading a format-1 folder (conversion/upgrade_checkpoint.py writes format 1's values
    out) must not change a single output value. The format-1 config is the one the bundled
    model saved until 2026-12-07: benchmarks/processors/format1 without the settings that
    format 2 added (that folder writes them out)."""
    folder = Path(__file__).resolve().parent.parent / "benchmarks" / "processors" / "format1"
    settings = json.loads((folder / "preprocessor_config.json").read_text())
    settings = {key: value for key, value in settings.items() if key not in FORMAT_2_SETTINGS[1:]}
    assert settings["processor_format_version"] == 1 and settings["flow_method"] == "tvl1"
    written_out = {**settings, "face_detection_max_side": None, "stabilization_iterations": 60,
                   "stabilization_epsilon": 1e-5, "processor_format_version": 2}
    frames = smooth_triplet(size=64)
    as_saved, upgraded = (
        FMANetImageProcessor.from_dict({**s, "align_faces": False})(*frames)["pixel_values"] for s in (settings, written_out)
    )
    np.testing.assert_array_equal(as_saved, upgraded)


# ------------------------------------------------------------------ face detection on a downscaled copy
@pytest.fixture(scope="module")
def large_astronaut(astronaut_gray):
    """The astronaut at 768 x 768 (x 1.5): a frame bigger than the default detection side."""
    return cv2.resize(astronaut_gray, (768, 768), interpolation=cv2.INTER_CUBIC)


def test_detection_on_a_downscaled_copy_gives_full_resolution_landmarks(large_astronaut):
    from fmanet_hf.face import LEFT_EYE, RIGHT_EYE, detect_face

    full = detect_face(large_astronaut)
    fast = detect_face(large_astronaut, detection_max_side=320)
    # The box comes back in full-frame pixels (dlib boxes of one face differ by ~15 % between scales).
    assert abs((fast.box[2] - fast.box[0]) - (full.box[2] - full.box[0])) < 0.25 * (full.box[2] - full.box[0])
    # The landmarks are predicted at full resolution from that box: within a few pixels of
    # those of the full-resolution search, on a face about 300 px wide.
    assert float(np.abs(fast.landmarks - full.landmarks).mean()) < 3.0
    for eye in (LEFT_EYE, RIGHT_EYE):
        assert np.hypot(*(fast.landmarks[eye].mean(0) - full.landmarks[eye].mean(0))) < 4.0


def test_a_face_too_small_for_the_downscaled_copy_is_still_found(astronaut_gray):
    """A 1600 px frame with a ~100 px face: at 320 px the face is ~20 px, below dlib's
    80 px window, so the full-resolution search must run and find it, as without the option."""
    from fmanet_hf.face import detect_face

    face = cv2.resize(astronaut_gray[20:276, 96:352], (128, 128), interpolation=cv2.INTER_AREA)
    canvas = np.full((1200, 1600), 120, np.uint8)
    canvas[500:628, 700:828] = face
    full = detect_face(canvas)
    fallback = detect_face(canvas, detection_max_side=320)
    assert fallback.box == full.box
    np.testing.assert_array_equal(fallback.landmarks, full.landmarks)
    assert 700 <= fallback.landmarks[:, 0].min() and fallback.landmarks[:, 0].max() <= 828


# ------------------------------------------------------------------ ACCEPTANCE 2
@pytest.mark.parametrize("strain", [False, True], ids=["uvm", "strain"])
@pytest.mark.parametrize("mode", ["per_phase_minmax", "joint_max", "none"])
def test_acceptance_2_identical_face_frames_give_zero_motion(warped_face, mode, strain):
    face = warped_face["onset"]
    processor = FMANetImageProcessor(
        flow_method="dis", flow_normalization=mode, include_optical_strain=strain, return_mmcof=True
    )
    out = processor(face, face, face)
    pixel_values, mmcof = out["pixel_values"], out["mmcof_values"]
    assert pixel_values.shape == (1, 8 if strain else 6, 64, 64)
    assert mmcof.shape == (1, 3, 64, 64)
    assert np.isfinite(pixel_values).all() and np.isfinite(mmcof).all()
    assert np.abs(pixel_values).max() < 1e-3
    assert np.abs(mmcof).max() < 1e-3


def test_acceptance_2_identical_face_frames_with_default_tvl1(warped_face):
    face = warped_face["onset"]
    out = FMANetImageProcessor(return_mmcof=True)(face, face, face)
    assert np.isfinite(out["pixel_values"]).all()
    assert np.abs(out["pixel_values"]).max() < 1e-3 and np.abs(out["mmcof_values"]).max() < 1e-3


@pytest.mark.parametrize("method", ["dis", "tvl1", "farneback"])
@pytest.mark.parametrize("mode", ["per_phase_minmax", "joint_max", "none"])
def test_acceptance_2_constant_grey_frames_give_zeros(method, mode):
    flat = np.full((48, 48), 128, np.uint8)
    processor = FMANetImageProcessor(
        align_faces=False,
        crop_size=None,
        flow_method=method,
        flow_normalization=mode,
        include_optical_strain=True,
        return_mmcof=True,
        size={"height": 16, "width": 16},
    )
    out = processor(flat, flat, flat)
    for key in ("pixel_values", "mmcof_values"):
        assert np.isfinite(out[key]).all(), key
        assert np.abs(out[key]).max() < 1e-3, key


# ------------------------------------------------------------------ ACCEPTANCE 3
def rigid(image: np.ndarray, dx: float, dy: float, degrees: float = 0.0) -> np.ndarray:
    """Whole-image rotation about the centre, then a shift of (dx, dy) px."""
    height, width = image.shape
    matrix = cv2.getRotationMatrix2D((width / 2.0, height / 2.0), degrees, 1.0)
    matrix[:, 2] += (dx, dy)
    return cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


@pytest.fixture(scope="module")
def head_motion(astronaut_gray):
    onset = astronaut_gray
    return onset, rigid(onset, 3.0, -2.0), rigid(onset, -4.0, 3.0, 1.0)


def mean_magnitudes(sample) -> tuple[float, float]:
    return tuple(float(np.hypot(f[..., 0], f[..., 1]).mean()) for f in (sample.onset_apex_flow, sample.apex_offset_flow))


@pytest.mark.parametrize("method", ["dis", "tvl1"])
def test_acceptance_3_alignment_removes_head_motion(head_motion, method):
    sample = FMANetImageProcessor(flow_method=method).process_triplet(*head_motion)
    residual = mean_magnitudes(sample)
    print(f"{method} euclidean residual mean |flow| (phase 1, phase 2): {residual}")
    assert residual[0] < 0.1 and residual[1] < 0.1
    # The stabilised transforms differ from the onset's by the head motion itself: the apex
    # transform's shift is about (-3, +2) px times the crop scale.
    scale = np.sqrt(abs(np.linalg.det(sample.source_to_crop[0][:, :2])))
    shift = sample.source_to_crop[1][:, :2] @ np.array([3.0, -2.0]) + sample.source_to_crop[1][:, 2]
    np.testing.assert_allclose(shift, sample.source_to_crop[0][:, 2], atol=0.1 * scale)


def test_acceptance_3_without_stabilisation_head_motion_dominates(head_motion):
    sample = FMANetImageProcessor(flow_method="dis", stabilization="none").process_triplet(*head_motion)
    residual = mean_magnitudes(sample)
    print(f"dis no stabilisation mean |flow|: {residual}")
    assert residual[0] > 1.0 and residual[1] > 1.0
    # Translation-only stabilisation removes the shift but not the 1 degree roll.
    translated = mean_magnitudes(FMANetImageProcessor(flow_method="dis", stabilization="translation").process_triplet(*head_motion))
    print(f"dis translation-only mean |flow|: {translated}")
    assert translated[0] < 0.1 and translated[1] > 0.3


# ------------------------------------------------------------------ ACCEPTANCE 4
def smooth_triplet(size: int = 48, seed: int = 0, shift: tuple[float, float] = (1.0, 0.5)) -> tuple[np.ndarray, ...]:
    """(onset, apex, offset) uint8: a smooth random texture, shifted by ``shift`` px, then back."""
    rng = np.random.default_rng(seed)
    texture = cv2.GaussianBlur(rng.uniform(0, 255, (size, size)).astype(np.float32), (0, 0), 2.0)
    texture = cv2.normalize(texture, None, 10, 245, cv2.NORM_MINMAX)
    matrix = np.array([[1.0, 0.0, shift[0]], [0.0, 1.0, shift[1]]])
    apex = cv2.warpAffine(texture, matrix, (size, size), borderMode=cv2.BORDER_REFLECT)
    onset, apex = (np.rint(f).astype(np.uint8) for f in (texture, apex))
    return onset, apex, onset.copy()


@pytest.fixture
def fast_processor() -> FMANetImageProcessor:
    # No stabilisation: the test triplets move as a whole, which stabilisation would remove.
    return FMANetImageProcessor(
        align_faces=False, crop_size=None, stabilization="none", flow_method="dis", size={"height": 16, "width": 16}
    )


def assert_fmanet_error(excinfo, error_type, *words):
    assert isinstance(excinfo.value, FMANetError)
    assert isinstance(excinfo.value, error_type)
    message = str(excinfo.value)
    for word in words:
        assert word in message, (word, message)


def test_frames_of_different_sizes(fast_processor):
    onset, apex, offset = smooth_triplet()
    with pytest.raises(FrameSizeMismatchError) as excinfo:
        fast_processor(onset, apex[:40], offset)
    assert_fmanet_error(excinfo, FrameSizeMismatchError, "same size", "apex 40x48")


@pytest.mark.parametrize("count", [2, 4])
def test_wrong_number_of_frames(fast_processor, count):
    frames = list(smooth_triplet()) + [smooth_triplet()[0]]
    frames = frames[:count]
    with pytest.raises(FrameCountError) as excinfo:
        fast_processor(frames=frames)
    assert_fmanet_error(excinfo, FrameCountError, str(count), "3")
    with pytest.raises(FrameCountError):
        fast_processor(frames)  # the list as the single positional argument
    with pytest.raises(FrameCountError):
        fast_processor(frames=[tuple(smooth_triplet()), tuple(frames)])  # one bad sample in a batch


def test_two_positional_frames(fast_processor):
    onset, apex, _ = smooth_triplet()
    with pytest.raises(FrameCountError) as excinfo:
        fast_processor(onset, apex)
    assert_fmanet_error(excinfo, FrameCountError, "missing: offset")


def test_four_positional_frames(fast_processor):
    frames = smooth_triplet()
    with pytest.raises(FrameCountError):
        fast_processor(*frames, frames[0])


def test_frames_and_positional_together(fast_processor):
    frames = smooth_triplet()
    with pytest.raises(FrameCountError, match="either"):
        fast_processor(frames[0], frames=frames)


def test_not_an_image_file(fast_processor, tmp_path):
    onset, apex, offset = smooth_triplet()
    text = tmp_path / "apex.txt"
    text.write_text("these are not pixels\n")
    with pytest.raises(ImageLoadError) as excinfo:
        fast_processor(onset, str(text), offset)
    assert_fmanet_error(excinfo, ImageLoadError, "apex.txt", "image")


def test_zero_byte_and_truncated_png(fast_processor, tmp_path):
    onset, apex, offset = smooth_triplet()
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(ImageLoadError) as excinfo:
        fast_processor(onset, apex, empty)
    assert_fmanet_error(excinfo, ImageLoadError, "empty", "0 bytes")
    good = tmp_path / "good.png"
    Image.fromarray(apex).save(good)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ImageLoadError) as excinfo:
        fast_processor(onset, truncated, offset)
    assert_fmanet_error(excinfo, ImageLoadError, "truncated.png")


def test_missing_path(fast_processor, tmp_path):
    onset, apex, _ = smooth_triplet()
    with pytest.raises(ImageLoadError) as excinfo:
        fast_processor(onset, apex, tmp_path / "nowhere" / "offset.png")
    assert_fmanet_error(excinfo, ImageLoadError, "does not exist", "offset.png")


@pytest.mark.parametrize(
    "bad, words",
    [
        (np.zeros((0, 0), np.uint8), ["empty"]),
        (np.full((48, 48), np.nan, np.float32), ["NaN"]),
        (np.full((48, 48), 2.0, np.float32), ["[0, 1]", "2"]),
        (np.full((48, 48), -0.5, np.float64), ["[0, 1]", "-0.5"]),
        (np.zeros(48 * 48, np.uint8), ["(H, W)"]),
        (np.zeros((48, 48, 2), np.uint8), ["(H, W)"]),
        (np.zeros((8, 8), np.uint8), ["16x16"]),
        (np.full((48, 48), 300, np.int32), ["uint8"]),
        ("not a path to anything.png", ["does not exist"]),
        ({"pixels": 1}, ["dict"]),
    ],
    ids=["empty", "nan", "float-above-1", "float-below-0", "1d", "two-channels", "tiny", "int-300", "bad-path", "dict"],
)
def test_invalid_frame_values(fast_processor, bad, words):
    onset, apex, _ = smooth_triplet()
    with pytest.raises(FMANetError) as excinfo:
        fast_processor(onset, apex, bad)
    expected = ImageLoadError if isinstance(bad, str) else InvalidFrameError
    assert_fmanet_error(excinfo, expected, *words)
    if not isinstance(bad, str):
        assert "offset" in str(excinfo.value)


def test_slightly_out_of_range_float_message_shows_the_offending_value(fast_processor):
    onset, apex, _ = smooth_triplet()
    bad = np.full((48, 48), 0.5, np.float32)
    bad[0, 0] = 1.004
    with pytest.raises(InvalidFrameError, match="1.004"):
        fast_processor(onset, apex, bad)


@pytest.mark.parametrize("kind", ["noise", "flat"])
def test_no_face_found_with_alignment_on(kind):
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (96, 96), dtype=np.uint8) if kind == "noise" else np.full((96, 96), 90, np.uint8)
    processor = FMANetImageProcessor(flow_method="dis")
    with pytest.raises(FaceNotFoundError) as excinfo:
        processor(image, image, image)
    assert_fmanet_error(excinfo, FaceNotFoundError, "No face", "align_faces=False")


@pytest.mark.parametrize(
    "settings, name",
    [
        ({"flow_method": "foo"}, "flow_method"),
        ({"size": {"height": -64, "width": 64}}, "size"),
        ({"size": {"height": 64}}, "size"),
        ({"flow_method": "dis", "flow_params": {"finest_scal": 1}}, "finest_scal"),
        ({"flow_params": {"lambda_": 0.1}}, "lambda_"),
        ({"stabilization": "affine"}, "stabilization"),
        ({"intensity_matching": "histogram"}, "intensity_matching"),
        ({"flow_normalization": "zscore"}, "flow_normalization"),
        ({"crop_size": 8}, "crop_size"),
        ({"align_faces": True, "crop_size": None}, "crop_size"),
        ({"normalization_percentile": 10.0}, "normalization_percentile"),
        ({"mmcof_theta": [0.0, 0.0]}, "mmcof_theta"),
        ({"processor_format_version": 99}, "newer fmanet-hf"),
    ],
)
def test_impossible_processor_settings(settings, name):
    with pytest.raises(FMANetConfigError) as excinfo:
        FMANetImageProcessor(**settings)
    assert_fmanet_error(excinfo, FMANetConfigError, name)


def test_unknown_keyword_at_call_time(fast_processor):
    with pytest.raises(FMANetConfigError) as excinfo:
        fast_processor(*smooth_triplet(), flow_method="dis")
    assert_fmanet_error(excinfo, FMANetConfigError, "flow_method")
    with pytest.raises(FMANetConfigError, match="retrun_tensors"):
        fast_processor(*smooth_triplet(), retrun_tensors="pt")


@pytest.mark.parametrize(
    "keyword, right_keyword",
    [("images", "frames="), ("image", "frames="), ("videos", "read_key_frames"), ("onset_frame", "onset="), ("return_tensor", "return_tensors=")],
)
def test_keywords_of_other_processors_name_the_right_one(fast_processor, tmp_path, keyword, right_keyword):
    # A Hugging Face user loads the processor with the Auto class and calls it as image processors are called.
    from transformers import AutoImageProcessor

    fast_processor.save_pretrained(tmp_path)
    processor = AutoImageProcessor.from_pretrained(tmp_path)
    triplet = list(smooth_triplet())
    with pytest.raises(FMANetConfigError) as excinfo:
        processor(**{keyword: triplet}, return_tensors="pt")
    assert right_keyword in str(excinfo.value)
    assert "settings are fixed" not in str(excinfo.value)  # the hint, not the generic message
    # Following the hint works.
    assert processor(frames=[tuple(triplet)], return_tensors="pt")["pixel_values"].shape == (1, 6, 16, 16)


# ------------------------------------------------------------------ input types
def test_a_grey_frame_stored_as_rgb_gives_its_grey_levels_exactly():
    from fmanet_hf.frames import to_gray_float

    grey = np.arange(256, dtype=np.uint8).reshape(16, 16)
    np.testing.assert_array_equal(to_gray_float(np.dstack([grey, grey, grey])), grey.astype(np.float32))
    np.testing.assert_array_equal(to_gray_float(np.dstack([grey, grey, grey, np.full_like(grey, 7)])), grey.astype(np.float32))


def test_grey_conversion_uses_the_601_luma_weights():
    rng = np.random.default_rng(6)
    rgb = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
    expected = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    grey, _, _ = load_triplet([rgb, rgb, rgb])
    assert grey.dtype == np.float32 and grey.shape == (20, 24)
    np.testing.assert_allclose(grey, expected, atol=1e-3)
    rgba = np.concatenate([rgb, rng.integers(0, 256, (20, 24, 1), dtype=np.uint8)], axis=2)
    np.testing.assert_allclose(load_triplet([rgba] * 3)[0], expected, atol=1e-3)  # alpha ignored


def test_every_input_type_gives_the_same_pixel_values(fast_processor, tmp_path):
    frames = smooth_triplet()
    reference = fast_processor(*frames)["pixel_values"]
    assert reference.shape == (1, 6, 16, 16) and np.abs(reference).max() > 0.5

    paths = []
    for name, frame in zip(("onset", "apex", "offset"), frames):
        path = tmp_path / f"{name}.png"
        Image.fromarray(frame).save(path)
        paths.append(path)
    variants = {
        "pil-L": [Image.fromarray(f) for f in frames],
        "pil-RGB": [Image.fromarray(f).convert("RGB") for f in frames],
        "pil-RGBA": [Image.fromarray(f).convert("RGBA") for f in frames],
        "np-uint8-rgb": [np.repeat(f[..., None], 3, axis=2) for f in frames],
        "np-uint8-hw1": [f[..., None] for f in frames],
        "np-float01": [f.astype(np.float32) / 255.0 for f in frames],
        "np-float64": [f.astype(np.float64) / 255.0 for f in frames],
        "np-uint16": [f.astype(np.uint16) * 257 for f in frames],
        "path-str": [str(p) for p in paths],
        "path-pathlib": paths,
        "torch": [torch.from_numpy(f) for f in frames],
    }
    for name, variant in variants.items():
        np.testing.assert_allclose(fast_processor(*variant)["pixel_values"], reference, atol=1e-5, err_msg=name)


def test_batched_calls_equal_stacked_single_calls():
    processor = FMANetImageProcessor(align_faces=False, crop_size=None, stabilization="none", flow_method="dis")
    first, second = smooth_triplet(64, seed=1), smooth_triplet(64, seed=2, shift=(-0.7, 1.2))
    singles = np.concatenate([processor(*first)["pixel_values"], processor(*second)["pixel_values"]])
    assert singles.shape == (2, 6, 64, 64)
    assert not np.allclose(singles[0], singles[1])
    batched = processor(frames=[first, second])["pixel_values"]
    assert batched.shape == (2, 6, 64, 64)
    np.testing.assert_array_equal(batched, singles)
    lists = processor([first[0], second[0]], [first[1], second[1]], [first[2], second[2]])["pixel_values"]
    np.testing.assert_array_equal(lists, singles)
    as_one_list = processor([first, second])["pixel_values"]
    np.testing.assert_array_equal(as_one_list, singles)
    np.testing.assert_array_equal(processor(list(first))["pixel_values"], singles[:1])

    as_torch = processor(frames=[first, second], return_tensors="pt")["pixel_values"]
    assert isinstance(as_torch, torch.Tensor) and as_torch.dtype == torch.float32
    np.testing.assert_array_equal(as_torch.numpy(), singles)

    threaded = processor(frames=[first, second, first, second], num_workers=2)["pixel_values"]
    np.testing.assert_array_equal(threaded, np.concatenate([singles, singles]))
    np.testing.assert_array_equal(processor(frames=[first, second])["pixel_values"], batched)  # deterministic


def test_mismatched_list_lengths(fast_processor):
    first, second = smooth_triplet(seed=1), smooth_triplet(seed=2)
    with pytest.raises(FrameCountError, match="differ in length"):
        fast_processor([first[0], second[0]], [first[1]], [first[2], second[2]])


def test_pixel_values_of_a_known_uniform_shift(fast_processor):
    # The texture moves by (1, 0.5) px, then back. Per phase, u and v are divided by the
    # phase's robust max magnitude (about |(1, 0.5)| = 1.118 px plus solver noise): phase 1
    # points along (0.894, 0.447) with a length a bit under 1, phase 2 the opposite way.
    pixel_values = fast_processor(*smooth_triplet(shift=(1.0, 0.5)))["pixel_values"][0]
    inner = (slice(2, -2), slice(2, -2))
    unit = np.array([1.0, 0.5]) / np.hypot(1.0, 0.5)
    for first, sign in ((0, 1.0), (3, -1.0)):
        vector = np.array([np.median(pixel_values[first][inner]), np.median(pixel_values[first + 1][inner])])
        assert 0.7 < np.linalg.norm(vector) <= 1.0
        np.testing.assert_allclose(vector / np.linalg.norm(vector), sign * unit, atol=0.05)
        magnitude = pixel_values[first + 2]
        assert 0.0 <= magnitude.min() and magnitude.max() <= 1.0


def test_return_mmcof_values(fast_processor):
    frames = smooth_triplet(shift=(1.0, 0.5))
    out = fast_processor(*frames, return_mmcof=True)
    assert set(out.keys()) == {"pixel_values", "mmcof_values"}
    mmcof = out["mmcof_values"]
    assert mmcof.shape == (1, 3, 16, 16) and mmcof.dtype == np.float32
    # The texture moves by (1, 0.5) px and comes back: with the reversed offset phase both
    # phases vote for +(1, 0.5), so (u_c, v_c) points that way (u_c ~ 2 v_c) everywhere.
    u_c, v_c = mmcof[0, 0], mmcof[0, 1]
    assert (u_c > 0).all() and (v_c > 0).all()
    assert 1.6 < np.median(u_c / v_c) < 2.5
    assert "mmcof_values" not in fast_processor(*frames)
    # Without the reversal the two phases cancel: |u_c| much smaller.
    cancelling = FMANetImageProcessor(**{**fast_processor.to_dict(), "mmcof_reverse_offset_phase": False})
    assert np.abs(cancelling(*frames, return_mmcof=True)["mmcof_values"][0, 0]).mean() < 0.3 * np.abs(u_c).mean()


def test_include_optical_strain_gives_eight_channels_a_strain_model_accepts():
    processor = FMANetImageProcessor(
        align_faces=False,
        crop_size=None,
        stabilization="none",
        flow_method="dis",
        include_optical_strain=True,
        size={"height": 32, "width": 32},
    )
    assert processor.num_channels_per_phase == 4
    pixel_values = processor(*smooth_triplet(), return_tensors="pt")["pixel_values"]
    assert pixel_values.shape == (1, 8, 32, 32)
    # Strain channels (3 and 7) are min-max normalised to [0, 1].
    assert pixel_values[:, [3, 7]].min() >= 0 and pixel_values[:, [3, 7]].max() <= 1
    model = tiny_model(num_channels_per_phase=4)
    with torch.no_grad():
        logits = model(pixel_values).logits
    assert logits.shape == (1, 3) and torch.isfinite(logits).all()


# ------------------------------------------------------------------ save / load
def test_processor_save_and_load(tmp_path):
    from transformers import AutoImageProcessor

    processor = FMANetImageProcessor(
        align_faces=False,
        crop_size=48,
        flow_method="dis",
        flow_params={"preset": "fast"},
        size={"height": 16, "width": 24},
        normalization_percentile=98.0,
        mmcof_theta=[0.7, 0.3],
    )
    processor.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "preprocessor_config.json").read_text())
    missing = set(processor.output_settings()) - set(saved)
    assert not missing, f"preprocessor_config.json lacks {missing}"
    for key, value in processor.output_settings().items():
        assert saved[key] == value, key
    assert saved["auto_map"]["AutoImageProcessor"] == "image_processing_fmanet.FMANetImageProcessor"
    assert saved["flow_params"]["preset"] == "fast" and "finest_scale" in saved["flow_params"]  # resolved set
    assert {"image_processing_fmanet.py", "face.py", "flow.py", "frames.py", "mmcof.py", "errors.py"} <= set(
        os.listdir(tmp_path)
    )

    for loaded in (FMANetImageProcessor.from_pretrained(tmp_path), AutoImageProcessor.from_pretrained(tmp_path)):
        assert type(loaded) is FMANetImageProcessor
        assert loaded.settings_fingerprint() == processor.settings_fingerprint()
        frames = smooth_triplet()
        out, again = processor(*frames, return_mmcof=True), loaded(*frames, return_mmcof=True)
        assert out["pixel_values"].shape == (1, 6, 16, 24)
        np.testing.assert_array_equal(again["pixel_values"], out["pixel_values"])
        np.testing.assert_array_equal(again["mmcof_values"], out["mmcof_values"])


def test_crop_size_none_survives_save_and_load(tmp_path):
    processor = FMANetImageProcessor(align_faces=False, crop_size=None, flow_method="dis", size={"height": 16, "width": 16})
    processor.save_pretrained(tmp_path)
    loaded = FMANetImageProcessor.from_pretrained(tmp_path)
    assert loaded.crop_size is None
    assert loaded.settings_fingerprint() == processor.settings_fingerprint()


@pytest.mark.parametrize(
    "change",
    [
        {"flow_method": "tvl1"},
        {"flow_params": {"preset": "fast"}},
        {"size": {"height": 32, "width": 32}},
        {"crop_size": 64},
        {"stabilization": "translation"},
        {"flow_normalization": "joint_max"},
        {"normalization_percentile": 100.0},
        {"normalization_floor_px": 0.1},
        {"include_optical_strain": True},
        {"mmcof_theta": [0.5, 0.5]},
        {"flow_margin_fraction": 0.0},
        {"intensity_matching": "none"},
        {"face_detection_max_side": None},
        {"stabilization_iterations": 60},
        {"stabilization_epsilon": 1e-5},
    ],
    ids=lambda change: next(iter(change)),
)
def test_changed_setting_changes_the_fingerprint(change):
    base = {"align_faces": False, "crop_size": 48, "flow_method": "dis"}
    fingerprint = FMANetImageProcessor(**base).settings_fingerprint()
    assert FMANetImageProcessor(**base).settings_fingerprint() == fingerprint  # stable
    assert len(fingerprint) == 16 and int(fingerprint, 16) >= 0
    assert FMANetImageProcessor(**{**base, **change}).settings_fingerprint() != fingerprint


def test_settings_outside_the_output_do_not_change_the_fingerprint():
    base = {"align_faces": False, "crop_size": 48, "flow_method": "dis"}
    fingerprint = FMANetImageProcessor(**base).settings_fingerprint()
    assert FMANetImageProcessor(**base, return_mmcof=True).settings_fingerprint() == fingerprint
    assert FMANetImageProcessor(**base, landmark_model_path="/x.dat").settings_fingerprint() == fingerprint
