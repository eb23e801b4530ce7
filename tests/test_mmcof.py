"""Tests of the MM-COF building blocks (`fmanet_hf.mmcof`) against hand-computed values.

Every expected number below is worked out by hand (or from a closed form) in the test
itself; nothing is compared with the module's own output.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from fmanet_hf import FMANetConfigError, FMANetInputError, compute_mmcof
from fmanet_hf.mmcof import (
    magnitude_modulation,
    normalize_dual_phase,
    optical_strain,
    phase_channels,
    resize_channels,
)


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def constant_flow(u: float, v: float, height: int = 5, width: int = 6) -> np.ndarray:
    flow = np.empty((height, width, 2), np.float32)
    flow[..., 0], flow[..., 1] = u, v
    return flow


def grid(height: int = 9, width: int = 11) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates: x to the right (columns), y down (rows)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    return x, y


def flow_from(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.stack([u, v], axis=-1).astype(np.float32)


# ---------------------------------------------------------------------------- phase channels
def test_phase_channels_of_constant_3_4_flow_has_magnitude_5():
    channels = phase_channels(constant_flow(3.0, 4.0))
    assert channels.shape == (3, 5, 6) and channels.dtype == np.float32
    assert np.all(channels[0] == 3.0)
    assert np.all(channels[1] == 4.0)
    assert np.all(channels[2] == 5.0)  # 3-4-5 triangle


def test_phase_channels_with_strain_adds_a_zero_strain_channel_for_constant_flow():
    channels = phase_channels(constant_flow(-3.0, 4.0), include_strain=True)
    assert channels.shape == (4, 5, 6)
    assert np.all(channels[0] == -3.0) and np.all(channels[2] == 5.0)
    assert np.all(channels[3] == 0.0)  # a translation does not deform anything


@pytest.mark.parametrize(
    "bad",
    [np.zeros((5, 6)), np.zeros((5, 6, 3)), np.zeros((1, 6, 2)), np.zeros((5, 1, 2))],
    ids=["2d", "three-components", "one-row", "one-column"],
)
def test_phase_channels_rejects_non_flow_shapes(bad):
    with pytest.raises(FMANetInputError, match=r"\(H, W, 2\)"):
        phase_channels(bad)


def test_phase_channels_rejects_nan_flow():
    flow = constant_flow(1.0, 0.0)
    flow[2, 3, 1] = np.nan
    with pytest.raises(FMANetInputError, match="NaN"):
        phase_channels(flow)


# ---------------------------------------------------------------------------- optical strain
def test_strain_of_linear_stretch_is_sqrt_a2_plus_b2():
    a, b = 0.3, -0.2
    x, y = grid()
    strain = optical_strain(flow_from(a * x, b * y))
    assert strain.shape == x.shape and strain.dtype == np.float32
    # ux = a, vy = b, uy = vx = 0  ->  sqrt(a^2 + b^2) = sqrt(0.13)
    expected = math.sqrt(0.13)
    np.testing.assert_allclose(strain[1:-1, 1:-1], expected, rtol=1e-6)


def test_strain_of_pure_translation_is_zero():
    strain = optical_strain(constant_flow(2.5, -1.5, 8, 8))
    np.testing.assert_array_equal(strain, 0.0)


def test_strain_of_pure_rotation_is_zero():
    w = 0.05  # small rotation: u = -w y, v = w x; uy = -w, vx = w cancel, ux = vy = 0
    x, y = grid()
    strain = optical_strain(flow_from(-w * y, w * x))
    np.testing.assert_allclose(strain[1:-1, 1:-1], 0.0, atol=1e-7)


def test_strain_of_simple_shear_uses_the_half_factor():
    s = 0.4  # u = s y: uy = s, everything else 0  ->  sqrt(0.5 s^2) = s / sqrt(2)
    x, y = grid()
    strain = optical_strain(flow_from(s * y, np.zeros_like(x)))
    np.testing.assert_allclose(strain[1:-1, 1:-1], s / math.sqrt(2.0), rtol=1e-6)


# ---------------------------------------------------------------------------- normalisation
def ramp_phase(factor_u: float = 1.0, factor_v: float = 0.0) -> np.ndarray:
    """(3, 3, 3) phase whose magnitude is the ramp 0.5, 1.0, ..., 4.5 (times |factor|)."""
    ramp = np.arange(0.5, 4.51, 0.5).reshape(3, 3)
    u, v = factor_u * ramp, factor_v * ramp
    return np.stack([u, v, np.hypot(u, v)]).astype(np.float32)


def test_per_phase_minmax_on_a_known_ramp_at_percentile_100():
    phase1 = ramp_phase(1.0, 0.0)  # M from 0.5 to 4.5
    phase2 = ramp_phase(0.0, -2.0)  # M from 1 to 9, pointing up
    out1, out2 = normalize_dual_phase([phase1, phase2], "per_phase_minmax", percentile=100.0)
    ramp = np.arange(0.5, 4.51, 0.5).reshape(3, 3)
    # Phase 1: M' = (M - 0.5) / (4.5 - 0.5); u' = u / 4.5; v' = 0.
    np.testing.assert_allclose(out1[2], (ramp - 0.5) / 4.0, atol=1e-6)
    np.testing.assert_allclose(out1[2].ravel()[[0, 1, 8]], [0.0, 0.125, 1.0], atol=1e-6)
    np.testing.assert_allclose(out1[0], ramp / 4.5, atol=1e-6)
    np.testing.assert_array_equal(out1[1], 0.0)
    # Phase 2 on its own scale: M' = (2 r - 1) / (9 - 1); v' = -2 r / 9 (sign kept).
    np.testing.assert_allclose(out2[2], (2 * ramp - 1.0) / 8.0, atol=1e-6)
    np.testing.assert_allclose(out2[1], -2 * ramp / 9.0, atol=1e-6)
    np.testing.assert_array_equal(out2[0], 0.0)


def test_joint_max_divides_both_phases_by_the_same_maximum():
    phase1 = ramp_phase(1.0, 0.0)  # max M 4.5
    phase2 = ramp_phase(0.0, -2.0)  # max M 9
    out1, out2 = normalize_dual_phase([phase1, phase2], "joint_max", percentile=100.0)
    ramp = np.arange(0.5, 4.51, 0.5).reshape(3, 3)
    np.testing.assert_allclose(out1[2], ramp / 9.0, atol=1e-6)  # phase 1 stays half as strong
    np.testing.assert_allclose(out1[0], ramp / 9.0, atol=1e-6)
    np.testing.assert_allclose(out2[2], 2 * ramp / 9.0, atol=1e-6)
    np.testing.assert_allclose(out2[1], -2 * ramp / 9.0, atol=1e-6)


def test_single_outlier_does_not_squash_the_map_at_percentile_99_5():
    rng = np.random.default_rng(0)
    size = 40
    magnitude = np.linspace(0.0, 2.0, size * size).reshape(size, size)  # 0 to 2 px
    angle = rng.uniform(-np.pi, np.pi, magnitude.shape)
    u, v = magnitude * np.cos(angle), magnitude * np.sin(angle)
    u[5, 7], v[5, 7] = 600.0, -800.0  # one solver artefact of 1000 px
    phase = np.stack([u, v, np.hypot(u, v)]).astype(np.float32)

    squashed = normalize_dual_phase([phase], "per_phase_minmax", percentile=100.0)[0]
    robust = normalize_dual_phase([phase], "per_phase_minmax", percentile=99.5)[0]
    normal = np.ones(magnitude.shape, bool)
    normal[5, 7] = False
    # Plain max: everything but the outlier is below 2/1000.
    assert squashed[2][normal].max() < 0.0021
    # 99.5th percentile of the 1600 values (the outlier is only the largest one): the
    # ordinary ramp keeps its spread; values above the percentile are clipped to 1.
    p = np.percentile(phase[2], 99.5)
    assert 1.98 < p < 2.0
    expected = np.clip(phase[2] / p, 0.0, 1.0)  # min is 0 here
    np.testing.assert_allclose(robust[2], expected, atol=1e-5)
    assert np.median(robust[2][normal]) > 0.45
    # The outlier vector is clipped to unit length with its direction kept (0.6, -0.8).
    np.testing.assert_allclose(robust[:, 5, 7], [0.6, -0.8, 1.0], atol=1e-6)
    assert np.hypot(robust[0], robust[1]).max() <= 1.0 + 1e-6


@pytest.mark.parametrize("mode", ["per_phase_minmax", "joint_max"])
def test_scaling_the_whole_flow_does_not_change_normalised_maps(mode):
    rng = np.random.default_rng(1)
    flow1 = rng.normal(0.0, 2.0, (12, 10, 2)).astype(np.float32)
    flow2 = rng.normal(0.0, 1.0, (12, 10, 2)).astype(np.float32)
    base = normalize_dual_phase([phase_channels(flow1, True), phase_channels(flow2, True)], mode)
    c = 3.7
    scaled = normalize_dual_phase([phase_channels(c * flow1, True), phase_channels(c * flow2, True)], mode)
    for a, b in zip(base, scaled):
        # Strain is dimensionless but scales with c too; per-phase min-max removes that.
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_none_mode_returns_the_pixels_as_a_copy():
    phase = ramp_phase(1.0, 2.0)
    out = normalize_dual_phase([phase], "none")[0]
    np.testing.assert_array_equal(out, phase)
    out[0, 0, 0] = 99.0
    assert phase[0, 0, 0] == 0.5  # the caller's array is untouched


@pytest.mark.parametrize("mode", ["per_phase_minmax", "joint_max", "none"])
def test_static_flow_normalises_to_exact_zeros(mode):
    still = phase_channels(np.zeros((6, 7, 2), np.float32), include_strain=True)
    with np.errstate(all="raise"):  # no 0/0 anywhere
        out = normalize_dual_phase([still, still], mode)
    for phase in out:
        assert np.isfinite(phase).all()
        np.testing.assert_array_equal(phase, 0.0)


@pytest.mark.parametrize("mode", ["per_phase_minmax", "joint_max"])
def test_sub_noise_flow_stays_near_zero_thanks_to_the_floor(mode):
    x, _ = grid(6, 8)
    u = 1e-4 * x / x.max()  # 0 to 1e-4 px
    phase = phase_channels(flow_from(u, np.zeros_like(u)))
    out = normalize_dual_phase([phase, phase], mode, floor_px=0.05)
    for normalised in out:
        # Divided by the 0.05 px floor, not by its own 1e-4 px range: at most 1e-4 / 0.05.
        assert np.abs(normalised).max() <= 2e-3 + 1e-7
        np.testing.assert_allclose(normalised[0], u / 0.05, atol=1e-7)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"mode": "l2"}, "flow_normalization"),
        ({"floor_px": 0.0}, "normalization_floor_px"),
        ({"percentile": 20.0}, "normalization_percentile"),
        ({"percentile": 100.5}, "normalization_percentile"),
    ],
)
def test_normalize_rejects_bad_settings(kwargs, name):
    with pytest.raises(FMANetConfigError, match=name):
        normalize_dual_phase([ramp_phase()], **kwargs)


# ---------------------------------------------------------------------------- modulation
def test_magnitude_modulation_matches_the_sigmoid_formula():
    magnitude = np.array([[0.0, 0.15], [0.3, 1.0]])
    gate = magnitude_modulation(magnitude, threshold=0.15, sharpness=20.0)
    expected = [[sigmoid(-3.0), 0.5], [sigmoid(3.0), sigmoid(17.0)]]
    assert gate.shape == (2, 2) and gate.dtype == np.float32
    np.testing.assert_allclose(gate, expected, rtol=1e-6)
    np.testing.assert_allclose(gate[0, 0], 0.04742587317756678, rtol=1e-6)


def test_magnitude_modulation_with_a_huge_slope_is_a_finite_hard_threshold():
    with np.errstate(over="raise"):
        gate = magnitude_modulation(np.array([0.0, 0.1, 0.2, 1.0]), threshold=0.15, sharpness=1e6)
    assert np.isfinite(gate).all()
    np.testing.assert_allclose(gate, [0.0, 0.0, 1.0, 1.0], atol=1e-12)


# ---------------------------------------------------------------------------- compute_mmcof
def test_mmcof_of_opposite_constant_phases_reinforces_with_reverse_offset_phase():
    phase1 = constant_flow(1.0, 0.0, 8, 8)  # onset->apex: right
    phase2 = constant_flow(-1.0, 0.0, 8, 8)  # apex->offset: back to the left
    u_c, v_c, m_c = compute_mmcof(phase1, phase2)  # theta (0.6, 0.4), t 0.15, k 20
    # Per phase: M is constant (1 px), so min-max gives (1 - 1) / floor = 0 everywhere;
    # u is divided by the phase's max magnitude 1: u1' = 1, u2' = -1.
    # Combined: M_c = 0.6 * 0 + 0.4 * 0 = 0; u_c = 0.6 * 1 - 0.4 * (-1) = 1.0; v_c = 0.
    # Gate: sigmoid(20 * (0 - 0.15)) = sigmoid(-3).
    gate = sigmoid(20.0 * (0.0 - 0.15))
    np.testing.assert_allclose(u_c, gate * (0.6 * 1.0 + 0.4 * 1.0), rtol=1e-6)
    assert (u_c > 0).all()
    np.testing.assert_array_equal(v_c, 0.0)
    np.testing.assert_array_equal(m_c, 0.0)


def test_mmcof_on_a_two_level_field_by_hand():
    # Phase 1: u = 1 px on the left half, 2 px on the right; phase 2: u = -1 px everywhere.
    phase1 = constant_flow(1.0, 0.0, 8, 8)
    phase1[:, 4:, 0] = 2.0
    phase2 = constant_flow(-1.0, 0.0, 8, 8)
    # Phase 1: M' = (M - 1) / (2 - 1) -> 0 | 1; u1' = u / 2 -> 0.5 | 1.
    # (Half the pixels are 2 px, so the 99.5th percentile is exactly 2.)
    # Phase 2: M' = 0; u2' = -1.
    # u_c = 0.6 u1' + 0.4 * 1 -> 0.7 | 1.0; M_c = 0.6 M1' -> 0 | 0.6.
    gate_left, gate_right = sigmoid(20 * (0.0 - 0.15)), sigmoid(20 * (0.6 - 0.15))
    u_c, v_c, m_c = compute_mmcof(phase1, phase2)
    np.testing.assert_allclose(u_c[:, :4], 0.7 * gate_left, rtol=1e-6)
    np.testing.assert_allclose(u_c[:, 4:], 1.0 * gate_right, rtol=1e-6)
    np.testing.assert_allclose(m_c[:, :4], 0.0, atol=1e-7)
    np.testing.assert_allclose(m_c[:, 4:], 0.6 * gate_right, rtol=1e-6)
    np.testing.assert_array_equal(v_c, 0.0)

    # Without the reversal the two phases partly cancel: u_c = 0.6 u1' - 0.4 -> -0.1 | 0.2.
    u_c, _, m_c = compute_mmcof(phase1, phase2, reverse_offset_phase=False)
    np.testing.assert_allclose(u_c[:, :4], -0.1 * gate_left, rtol=1e-5)
    np.testing.assert_allclose(u_c[:, 4:], 0.2 * gate_right, rtol=1e-5)
    np.testing.assert_allclose(m_c[:, 4:], 0.6 * gate_right, rtol=1e-6)  # M_c has no sign

    # theta is normalised to sum 1: (3, 2) is (0.6, 0.4).
    np.testing.assert_allclose(compute_mmcof(phase1, phase2, theta=(3, 2)), compute_mmcof(phase1, phase2), rtol=1e-6)

    # Another threshold and slope: gate_right = sigmoid(5 * (0.6 - 0.5)).
    u_c, _, _ = compute_mmcof(phase1, phase2, modulation_threshold=0.5, modulation_sharpness=5.0)
    np.testing.assert_allclose(u_c[:, 4:], sigmoid(0.5), rtol=1e-6)


def test_mmcof_output_shape_dtype_and_size():
    rng = np.random.default_rng(2)
    phase1 = rng.normal(size=(16, 12, 2)).astype(np.float32)
    phase2 = rng.normal(size=(16, 12, 2)).astype(np.float32)
    out = compute_mmcof(phase1, phase2)
    assert out.shape == (3, 16, 12) and out.dtype == np.float32
    assert np.abs(out[:2]).max() <= 1.0 and 0.0 <= out[2].min() and out[2].max() <= 1.0
    assert compute_mmcof(phase1, phase2, size=(8, 6)).shape == (3, 8, 6)


def test_mmcof_of_static_clip_is_zero_and_finite():
    still = np.zeros((10, 10, 2), np.float32)
    out = compute_mmcof(still, still)
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out, 0.0)


@pytest.mark.parametrize(
    "theta", [(-0.1, 1.1), (0.0, 0.0), (0.5, 0.3, 0.2), (float("nan"), 0.4), (float("inf"), 1.0)]
)
def test_mmcof_rejects_bad_theta(theta):
    flow = constant_flow(1.0, 0.0)
    with pytest.raises(FMANetConfigError, match="theta"):
        compute_mmcof(flow, flow, theta=theta)


@pytest.mark.parametrize(
    "kwargs",
    [{"modulation_threshold": -0.1}, {"modulation_threshold": 1.5}, {"modulation_sharpness": 0.0}, {"modulation_sharpness": -3.0}],
)
def test_mmcof_rejects_bad_modulation(kwargs):
    flow = constant_flow(1.0, 0.0)
    with pytest.raises(FMANetConfigError, match="modulation"):
        compute_mmcof(flow, flow, **kwargs)


def test_mmcof_rejects_bad_shapes():
    flow = constant_flow(1.0, 0.0, 5, 6)
    with pytest.raises(FMANetInputError, match="differ in shape"):
        compute_mmcof(flow, constant_flow(1.0, 0.0, 6, 5))
    with pytest.raises(FMANetInputError, match="onset_apex_flow"):
        compute_mmcof(np.zeros((5, 6)), flow)
    with pytest.raises(FMANetInputError, match="apex_offset_flow"):
        compute_mmcof(flow, np.zeros((5, 6, 3)))


# ---------------------------------------------------------------------------- resizing
def test_resize_channels_area_averages_when_shrinking():
    channel = np.arange(16, dtype=np.float32).reshape(4, 4)
    channels = np.stack([channel, -2 * channel])
    out = resize_channels(channels, 2, 2)
    # Each output pixel is the mean of a 2x2 block: (0+1+4+5)/4 = 2.5, (2+3+6+7)/4 = 4.5, ...
    expected = np.array([[2.5, 4.5], [10.5, 12.5]])
    assert out.shape == (2, 2, 2) and out.dtype == np.float32
    np.testing.assert_allclose(out[0], expected, atol=1e-6)
    np.testing.assert_allclose(out[1], -2 * expected, atol=1e-6)  # values are not rescaled


def test_resize_channels_non_integer_factor_still_averages_areas():
    # A 6x6 checkerboard of 2x2 tiles (values 0 / 3) shrunk to 3x3: every output pixel
    # covers exactly one tile -> the tile's value.
    tiles = np.kron(np.array([[0, 3, 0], [3, 0, 3], [0, 3, 0]], np.float32), np.ones((2, 2), np.float32))
    np.testing.assert_allclose(resize_channels(tiles[None], 3, 3)[0], [[0, 3, 0], [3, 0, 3], [0, 3, 0]], atol=1e-6)
    # A constant map stays constant when enlarged (bilinear) and the same size is a copy.
    constant = np.full((1, 4, 4), 1.25, np.float32)
    np.testing.assert_allclose(resize_channels(constant, 9, 7), 1.25, atol=1e-6)
    same = resize_channels(constant, 4, 4)
    same[0, 0, 0] = 0.0
    assert constant[0, 0, 0] == 1.25
