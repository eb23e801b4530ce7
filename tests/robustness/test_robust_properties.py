"""Property-based tests (hypothesis): MM-COF math and the LOSO metrics, for any input in their domain."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fmanet_hf.mmcof import (
    compute_mmcof,
    magnitude_modulation,
    normalize_dual_phase,
    optical_strain,
    phase_channels,
)
from fmanet_hf.training.metrics import FoldPredictions, classification_metrics, pooled_loso_metrics

# Modest example counts: these run in CI next to everything else.
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

finite = st.floats(min_value=-1e4, max_value=1e4, allow_nan=False, allow_infinity=False, width=32)


@st.composite
def flow_pairs(draw, min_side=2, max_side=12):
    """Two (H, W, 2) float32 flows of one shape, any finite values up to 1e4 px."""
    height = draw(st.integers(min_side, max_side))
    width = draw(st.integers(min_side, max_side))
    first = draw(arrays(np.float32, (height, width, 2), elements=finite))
    second = draw(arrays(np.float32, (height, width, 2), elements=finite))
    return first, second


mmcof_settings = st.fixed_dictionaries(
    {
        "theta": st.tuples(st.floats(0, 10), st.floats(0, 10)).filter(lambda t: sum(t) > 1e-3),
        "modulation_threshold": st.floats(0, 1),
        "modulation_sharpness": st.floats(0.01, 200),
        "reverse_offset_phase": st.booleans(),
        "percentile": st.floats(50, 100),
    }
)


@PROPERTY
@given(flow_pairs(), mmcof_settings)
def test_mmcof_is_finite_and_bounded_for_any_finite_flow(flows, options):
    out = compute_mmcof(*flows, **options)
    assert out.shape == (3, *flows[0].shape[:2]) and out.dtype == np.float32
    assert np.isfinite(out).all()
    assert np.abs(out[:2]).max() <= 1.0 + 1e-5
    assert out[2].min() >= 0.0 and out[2].max() <= 1.0 + 1e-5


@PROPERTY
@given(flow_pairs(min_side=3), st.floats(0.5, 200), st.sampled_from([100.0, 99.5, 90.0]))
def test_a_global_flow_scale_leaves_normalised_maps_unchanged(flows, factor, percentile):
    # Invariance holds while the floor (0.05 px) is not what sets the range, so each phase
    # is rescaled to span exactly 2 px of magnitude (at the chosen percentile) first.
    rescaled = []
    for flow in flows:
        flow = np.asarray(flow, np.float64)
        magnitude = np.hypot(flow[..., 0], flow[..., 1])
        span = np.percentile(magnitude, percentile) - magnitude.min()
        assume(span > 1e-3 * max(magnitude.max(), 1e-30))  # not a (nearly) uniform field
        rescaled.append(flow * (2.0 / span))
    first, second = rescaled
    scaled = [(f * factor).astype(np.float32) for f in (first, second)]
    original = [f.astype(np.float32) for f in (first, second)]
    expected = normalize_dual_phase([phase_channels(f) for f in original], percentile=percentile)
    result = normalize_dual_phase([phase_channels(f) for f in scaled], percentile=percentile)
    for a, b in zip(expected, result):
        np.testing.assert_allclose(a, b, atol=2e-4)
    np.testing.assert_allclose(
        compute_mmcof(*original, percentile=percentile), compute_mmcof(*scaled, percentile=percentile), atol=2e-4
    )


@PROPERTY
@given(flow_pairs(min_side=3))
def test_rotating_every_vector_rotates_the_direction_and_keeps_the_magnitude(flows):
    def rotate(flow):  # (u, v) -> (-v, u): 90 degrees, lengths unchanged
        return np.stack([-flow[..., 1], flow[..., 0]], axis=-1)

    out = compute_mmcof(*flows)
    turned = compute_mmcof(*(rotate(f) for f in flows))
    np.testing.assert_allclose(turned[2], out[2], atol=1e-5)
    np.testing.assert_allclose(turned[0], -out[1], atol=1e-5)
    np.testing.assert_allclose(turned[1], out[0], atol=1e-5)


@PROPERTY
@given(flow_pairs(min_side=3))
def test_mirroring_the_face_mirrors_the_descriptor(flows):
    def mirror(flow):  # left-right flip of the image: columns reversed, u changes sign
        flipped = flow[:, ::-1].copy()
        flipped[..., 0] *= -1
        return flipped

    out = compute_mmcof(*flows)
    mirrored = compute_mmcof(*(mirror(f) for f in flows))
    np.testing.assert_allclose(mirrored[2], out[2][:, ::-1], atol=1e-5)
    np.testing.assert_allclose(mirrored[0], -out[0][:, ::-1], atol=1e-5)


@PROPERTY
@given(flow_pairs(min_side=2).map(lambda pair: pair[0]))
def test_strain_is_finite_and_non_negative(flow):
    strain = optical_strain(flow)
    assert np.isfinite(strain).all() and strain.min() >= 0.0


@PROPERTY
@given(arrays(np.float64, st.integers(1, 50), elements=st.floats(-1e6, 1e6)), st.floats(0, 1), st.floats(1e-3, 1e3))
def test_modulation_gate_is_a_monotone_value_in_0_1(magnitude, threshold, sharpness):
    gate = magnitude_modulation(magnitude, threshold, sharpness)
    assert np.isfinite(gate).all() and gate.min() >= 0.0 and gate.max() <= 1.0
    order = np.argsort(magnitude, kind="stable")
    assert (np.diff(gate[order].astype(np.float64)) >= -1e-7).all()


# ----------------------------------------------------------------- metrics
@st.composite
def labelled_folds(draw):
    """(num_classes, folds): 1-8 folds of 1-6 samples each, labels in [0, C)."""
    num_classes = draw(st.integers(2, 5))
    label = st.integers(0, num_classes - 1)
    count = draw(st.integers(1, 8))
    folds = []
    for index in range(count):
        size = draw(st.integers(1, 6))
        y_true = draw(st.lists(label, min_size=size, max_size=size))
        y_pred = draw(st.lists(label, min_size=size, max_size=size))
        folds.append(FoldPredictions(subject=f"s{index}", y_true=y_true, y_pred=y_pred))
    return num_classes, folds


KEYS = ("accuracy", "uf1", "uar")


@PROPERTY
@given(labelled_folds(), st.randoms(use_true_random=False))
def test_pooled_metrics_ignore_fold_order_and_fold_boundaries(case, rng):
    num_classes, folds = case
    reference = pooled_loso_metrics(folds, num_classes=num_classes)
    for key in KEYS:
        assert np.isfinite(reference[key]) and 0.0 <= reference[key] <= 1.0
    shuffled = list(folds)
    rng.shuffle(shuffled)
    permuted = pooled_loso_metrics(shuffled, num_classes=num_classes)
    # Pooling means the fold split does not matter at all: one big "fold" gives the same numbers.
    y_true = [y for fold in folds for y in fold.y_true]
    y_pred = [y for fold in folds for y in fold.y_pred]
    pooled = classification_metrics(y_true, y_pred, num_classes)
    for key in KEYS:
        assert permuted[key] == reference[key]
        assert abs(pooled[key] - reference[key]) < 1e-12


@PROPERTY
@given(labelled_folds(), st.randoms(use_true_random=False))
def test_metrics_ignore_sample_order_and_class_names(case, rng):
    num_classes, folds = case
    y_true = np.array([y for fold in folds for y in fold.y_true])
    y_pred = np.array([y for fold in folds for y in fold.y_pred])
    reference = classification_metrics(y_true, y_pred, num_classes)
    order = list(range(len(y_true)))
    rng.shuffle(order)
    relabel = list(range(num_classes))
    rng.shuffle(relabel)  # a consistent renaming of the classes
    relabel = np.array(relabel)
    shuffled = classification_metrics(y_true[order], y_pred[order], num_classes)
    renamed = classification_metrics(relabel[y_true], relabel[y_pred], num_classes)
    for key in KEYS:
        assert abs(shuffled[key] - reference[key]) < 1e-12
        assert abs(renamed[key] - reference[key]) < 1e-12
    perfect = classification_metrics(y_true, y_true, num_classes)
    assert perfect["accuracy"] == perfect["uf1"] == perfect["uar"] == 1.0
