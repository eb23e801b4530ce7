"""Tests of FMANetConfig / FMANetModel / FMANetForImageClassification, in the style of
transformers' own model tests (a tiny config from a ``ModelTester``, then shape, loss,
ablation, initialisation, save/load, remote-code and export checks).

Expected values come from the documented design (parameter counts worked out by hand,
the sigmoid gate formula, softmax of log(theta)...), never from the model's own output.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import re
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import AutoConfig, AutoModel, AutoModelForImageClassification

import fmanet_hf
from fmanet_hf import (
    ABLATIONS,
    BASELINE_CONFIGS,
    FMANetConfig,
    FMANetConfigError,
    FMANetForImageClassification,
    FMANetImageProcessor,
    FMANetInputError,
    FMANetModel,
)
from fmanet_hf.modeling_fmanet import fixed_mmcof
from tests.helpers.tiny import tiny_config_kwargs, tiny_pixel_values


class FMANetModelTester:
    """Builds a tiny FMANet config and matching inputs (transformers' ModelTester pattern).

    The network is the shared tiny one of tests/helpers/tiny.py with two encoder convolutions
    per phase (the parameter counts below are worked out by hand for that) and the config's
    default dropout of 0.3 (the loss test runs in train mode with dropout on).
    """

    def __init__(self, batch_size: int = 3, num_labels: int = 3, seed: int = 0, **overrides):
        self.batch_size = batch_size
        self.num_labels = num_labels
        self.seed = seed
        self.settings = tiny_config_kwargs(
            **{"encoder_depth": 2, "classifier_dropout": 0.3, "attention_kernel_size": 7, **overrides}
        )
        self.image_size = self.settings["image_size"]
        self.encoder_hidden_size = self.settings["encoder_hidden_size"]
        self.encoder_depth = self.settings["encoder_depth"]

    def get_config(self, **overrides) -> FMANetConfig:
        return FMANetConfig(**{**self.settings, "num_labels": self.num_labels, **overrides})

    def pixel_values(self, config: FMANetConfig | None = None, batch_size: int | None = None, seed: int | None = None):
        """Processor-like input: per phase u, v in [-1, 1], M = |(u, v)| in [0, 1] (+ strain)."""
        return tiny_pixel_values(
            config or self.get_config(), batch_size or self.batch_size, self.seed if seed is None else seed
        )

    def labels(self, batch_size: int | None = None):
        return torch.arange(batch_size or self.batch_size) % self.num_labels

    def prepare_config_and_inputs(self):
        config = self.get_config()
        return config, self.pixel_values(config), self.labels()

    def encoder_parameter_count(self, channels_per_phase: int = 3) -> int:
        """One phase encoder by hand: a strided 3x3 conv (no bias) + GroupNorm, then
        (depth - 1) 3x3 convs + GroupNorm at the encoder width."""
        e = self.encoder_hidden_size
        first = e * channels_per_phase * 9 + 2 * e
        rest = (self.encoder_depth - 1) * (e * e * 9 + 2 * e)
        return first + rest


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def build(config: FMANetConfig, seed: int = 0) -> FMANetForImageClassification:
    torch.manual_seed(seed)
    return FMANetForImageClassification(config)


@pytest.fixture
def tester() -> FMANetModelTester:
    return FMANetModelTester()


# ---------------------------------------------------------------------------- outputs
def test_model_output_shapes(tester):
    config, pixel_values, _ = tester.prepare_config_and_inputs()
    model = FMANetModel(config).eval()
    with torch.no_grad():
        out = model(pixel_values, output_hidden_states=True)
    b = tester.batch_size
    # 32 -> encoder stride 2 -> 16 -> stage 1 -> 8 -> stage 2 -> 4.
    assert out.last_hidden_state.shape == (b, 16, 4, 4)
    assert out.pooler_output.shape == (b, 16)
    torch.testing.assert_close(out.pooler_output, out.last_hidden_state.mean(dim=(2, 3)))
    assert out.attention_map.shape == (b, 1, 16, 16)
    assert 0.0 <= out.attention_map.min() and out.attention_map.max() <= 1.0
    assert out.phase_fusion_weights.shape == (b, 2, 8)  # per sample, batch first
    torch.testing.assert_close(out.phase_fusion_weights.sum(dim=1), torch.ones(b, 8))
    assert torch.equal(out.phase_fusion_weights[0], out.phase_fusion_weights[-1])  # learned, not input-driven
    # fused, attended, then one per trunk stage
    assert [tuple(h.shape) for h in out.hidden_states] == [(b, 8, 16, 16), (b, 8, 16, 16), (b, 8, 8, 8), (b, 16, 4, 4)]
    with torch.no_grad():
        assert model(pixel_values).hidden_states is None


def test_classification_logits_and_loss(tester):
    config, pixel_values, labels = tester.prepare_config_and_inputs()
    model = build(config)
    model.train()  # dropout on: the loss must still match the logits of the same call
    out = model(pixel_values, labels=labels)
    assert out.logits.shape == (tester.batch_size, tester.num_labels)
    assert out.attention_map.shape == (tester.batch_size, 1, 16, 16)
    expected = F.cross_entropy(out.logits, labels)
    torch.testing.assert_close(out.loss, expected)
    # And by hand: mean over the batch of -log softmax at the true class.
    log_probs = out.logits - out.logits.exp().sum(dim=1, keepdim=True).log()
    by_hand = -log_probs[torch.arange(tester.batch_size), labels].mean()
    torch.testing.assert_close(out.loss, by_hand)
    assert model(pixel_values).loss is None


def test_return_dict_false_gives_tuples(tester):
    config, pixel_values, labels = tester.prepare_config_and_inputs()
    model = build(config).eval()
    with torch.no_grad():
        as_dict = model(pixel_values, labels=labels)
        as_tuple = model(pixel_values, labels=labels, return_dict=False)
        base_tuple = model.fmanet(pixel_values, return_dict=False)
    assert isinstance(as_tuple, tuple) and isinstance(base_tuple, tuple)
    # (loss, logits, attention_map, phase_fusion_weights); hidden_states None is dropped.
    assert len(as_tuple) == 4
    assert torch.equal(as_tuple[0], as_dict.loss)
    assert torch.equal(as_tuple[1], as_dict.logits)
    assert torch.equal(as_tuple[2], as_dict.attention_map)
    assert torch.equal(as_tuple[3], as_dict.phase_fusion_weights)
    assert base_tuple[0].shape == (tester.batch_size, 16, 4, 4) and base_tuple[1].shape == (tester.batch_size, 16)


@pytest.mark.parametrize(
    "shape",
    [(2, 5, 32, 32), (2, 8, 32, 32), (2, 6, 32), (6, 32, 32), (2, 6, 4, 4)],
    ids=["5-channels", "8-channels", "3d", "no-batch", "too-small"],
)
def test_wrong_pixel_values_raise_input_error(tester, shape):
    model = build(tester.get_config()).eval()
    with pytest.raises(FMANetInputError, match="pixel_values"):
        model(torch.zeros(shape))


def test_strain_model_needs_eight_channels(tester):
    model = build(tester.get_config(num_channels_per_phase=4)).eval()
    with pytest.raises(FMANetInputError, match=r"\(batch, 8, height, width\)"):
        model(torch.zeros(1, 6, 32, 32))


# ---------------------------------------------------------------------------- ablations
VARIANTS = {
    **{name: dict(overrides) for name, overrides in ABLATIONS.items()},
    "shared_encoder": {"share_phase_encoder": True},
    "global_fusion": {"fusion_granularity": "global"},
    "with_strain": {"num_channels_per_phase": 4},
}


def test_ablation_names_are_the_documented_ones():
    assert set(ABLATIONS) == {"full", "single_phase", "fixed_fusion", "no_modulation", "no_attention"}
    assert FMANetConfig.for_ablation("single_phase", image_size=32).phase_mode == "onset_apex"
    with pytest.raises(FMANetConfigError, match="ablation"):
        FMANetConfig.for_ablation("no_trunk")


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_variant_trains_with_finite_gradients(tester, variant):
    config = tester.get_config(**VARIANTS[variant])
    model = build(config)
    model.train()
    pixel_values = tester.pixel_values(config)
    out = model(pixel_values, labels=tester.labels(), output_hidden_states=True)
    assert out.logits.shape == (tester.batch_size, tester.num_labels)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, f"{variant}: {name} got no gradient (unused parameter)"
        assert torch.isfinite(parameter.grad).all(), f"{variant}: non-finite gradient in {name}"
    # At least the classifier and the first encoder layer really learn something.
    assert model.classifier.weight.grad.abs().sum() > 0
    assert model.fmanet.phase_encoders[0].layers[0].convolution.weight.grad.abs().sum() > 0


def test_single_phase_ignores_the_apex_offset_channels(tester):
    pixel_values = tester.pixel_values()
    changed = pixel_values.clone()
    changed[:, 3:6] = torch.rand_like(changed[:, 3:6])
    single = build(tester.get_config(**ABLATIONS["single_phase"])).eval()
    full = build(tester.get_config()).eval()
    with torch.no_grad():
        assert torch.equal(single(pixel_values).logits, single(changed).logits)
        assert not torch.allclose(full(pixel_values).logits, full(changed).logits, atol=1e-6)
        single_out = single(pixel_values)
    assert single_out.phase_fusion_weights.shape == (tester.batch_size, 1, 8)
    torch.testing.assert_close(single_out.phase_fusion_weights, torch.ones(tester.batch_size, 1, 8))
    # One encoder, one (slope, threshold) pair, one row of fusion logits fewer than "full".
    e = tester.encoder_hidden_size
    assert count_parameters(full) - count_parameters(single) == tester.encoder_parameter_count() + 2 + e


def test_fixed_fusion_keeps_the_mmcof_weights_through_an_optimiser_step(tester):
    fixed = build(tester.get_config(**ABLATIONS["fixed_fusion"]))
    learnable = build(tester.get_config())
    fixed_names = dict(fixed.named_parameters())
    assert "fmanet.phase_fusion.theta_logits" not in fixed_names
    assert "fmanet.phase_fusion.theta_logits" in dict(fixed.named_buffers())
    assert "fmanet.phase_fusion.theta_logits" in dict(learnable.named_parameters())
    e = tester.encoder_hidden_size
    assert count_parameters(learnable) - count_parameters(fixed) == 2 * e

    expected = torch.tensor([[0.6], [0.4]]).expand(2, e)
    pixel_values, labels = tester.pixel_values(), tester.labels()
    moved = {}
    for name, model in (("fixed", fixed), ("learnable", learnable)):
        model.train()
        before = model.fmanet.phase_fusion.weights().detach().clone()
        torch.testing.assert_close(before, expected, atol=1e-6, rtol=0)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
        model(pixel_values, labels=labels).loss.backward()
        optimizer.step()
        after = model.fmanet.phase_fusion.weights().detach()
        moved[name] = (after - before).abs().max().item()
        if name == "fixed":
            assert torch.equal(after, before)
            torch.testing.assert_close(after, expected, atol=1e-6, rtol=0)
    assert moved["fixed"] == 0.0
    assert moved["learnable"] > 1e-3  # Adam moves each learnable logit by ~lr


@pytest.mark.parametrize("kernel", [3, 7])
def test_no_attention_drops_exactly_the_attention_convolution(tester, kernel):
    full = build(tester.get_config(attention_kernel_size=kernel)).eval()
    ablated = build(tester.get_config(attention_kernel_size=kernel, **ABLATIONS["no_attention"])).eval()
    # A kernel x kernel conv from 3 descriptor maps to 1 map, with bias.
    assert count_parameters(full) - count_parameters(ablated) == 3 * kernel * kernel + 1
    with torch.no_grad():
        out = ablated(tester.pixel_values(), output_hidden_states=True)
    assert out.attention_map is None
    assert len(out.hidden_states) == 3  # fused + two stages (no "attended" map)


def test_no_modulation_has_two_parameters_fewer_per_phase(tester):
    full = build(tester.get_config())
    ablated = build(tester.get_config(**ABLATIONS["no_modulation"]))
    assert count_parameters(full) - count_parameters(ablated) == 2 * 2  # (slope, threshold) x 2 phases
    assert ablated.fmanet.magnitude_modulation is None


def test_no_modulation_changes_what_the_encoders_see(tester):
    # Left half: salient motion (M = 0.5, gate sigmoid(10 * 0.4) = 0.98); right half: noise
    # (M = 0.02, gate sigmoid(10 * -0.08) = 0.31). The gate changes the halves' relative
    # strength, which no later normalisation can undo; without it they pass unchanged.
    pixel_values = torch.zeros(1, 6, 32, 32)
    for first in (0, 3):
        pixel_values[:, first, :, :16] = 0.5
        pixel_values[:, first, :, 16:] = 0.02
        pixel_values[:, first + 2] = pixel_values[:, first]  # v = 0, so M = u
    full = build(tester.get_config()).eval()
    ablated = build(tester.get_config(**ABLATIONS["no_modulation"])).eval()
    missing, unexpected = ablated.load_state_dict(full.state_dict(), strict=False)  # same weights elsewhere
    assert not missing and sorted(unexpected) == ["fmanet.magnitude_modulation.log_slope", "fmanet.magnitude_modulation.threshold"]
    with torch.no_grad():
        gated = full.fmanet(pixel_values).pooler_output
        ungated = ablated.fmanet(pixel_values).pooler_output
        # Feeding the ablated model the gated input by hand reproduces the full model.
        gate = torch.sigmoid(10.0 * (pixel_values[:, [2, 2, 2, 5, 5, 5]] - 0.1))
        by_hand = ablated.fmanet(pixel_values * gate).pooler_output
    # GroupNorm absorbs much of the change of scale; ~1.5 % of the pooled features remain.
    assert (gated - ungated).norm() > 0.005 * gated.norm()
    torch.testing.assert_close(by_hand, gated, atol=1e-5, rtol=1e-5)


def test_shared_encoder_saves_exactly_one_encoder(tester):
    separate = build(tester.get_config())
    shared = build(tester.get_config(share_phase_encoder=True))
    assert len(separate.fmanet.phase_encoders) == 2 and len(shared.fmanet.phase_encoders) == 1
    # By hand: 8*3*9 + 16 + 8*8*9 + 16 = 824 for the tiny config.
    assert tester.encoder_parameter_count() == 824
    assert count_parameters(separate) - count_parameters(shared) == 824


def test_global_fusion_has_one_logit_per_phase(tester):
    model = build(tester.get_config(fusion_granularity="global")).eval()
    assert tuple(model.fmanet.phase_fusion.theta_logits.shape) == (2, 1)
    with torch.no_grad():
        weights = model(tester.pixel_values()).phase_fusion_weights[0]
    assert weights.shape == (2, 8)
    assert torch.equal(weights, weights[:, :1].expand(2, 8))  # same weight for every channel
    channel = build(tester.get_config())
    assert count_parameters(channel) - count_parameters(model) == 2 * (8 - 1)


def test_strain_variant_reads_four_channels_per_phase(tester):
    three = build(tester.get_config())
    four = build(tester.get_config(num_channels_per_phase=4))
    assert four.config.num_channels == 8
    # Each encoder's first conv gains one input channel: E * 9 weights, two encoders.
    assert count_parameters(four) - count_parameters(three) == 2 * 8 * 9
    config = four.config
    pixel_values = tester.pixel_values(config)
    changed = pixel_values.clone()
    changed[:, 3] = torch.rand(changed[:, 3].shape, generator=torch.Generator().manual_seed(9))  # phase 1 strain
    four.eval()
    with torch.no_grad():
        before, after = four.fmanet(pixel_values).pooler_output, four.fmanet(changed).pooler_output
    assert (before - after).norm() > 0.01 * before.norm()


# ---------------------------------------------------------------------------- initialisation
@pytest.mark.parametrize("theta", [(0.6, 0.4), (0.25, 0.75)])
@pytest.mark.parametrize("granularity", ["global", "channel"])
def test_initial_fusion_weights_equal_the_configured_theta(tester, theta, granularity):
    config = tester.get_config(fusion_init_theta=list(theta), fusion_granularity=granularity)
    model = build(config).eval()
    with torch.no_grad():
        weights = model(tester.pixel_values()).phase_fusion_weights[0]
    expected = torch.tensor([[theta[0]], [theta[1]]]).expand(2, 8)
    torch.testing.assert_close(weights, expected, atol=1e-6, rtol=0)


def test_fusion_theta_is_normalised_to_sum_one(tester):
    model = build(tester.get_config(fusion_init_theta=[3.0, 1.0])).eval()
    torch.testing.assert_close(
        model.fmanet.phase_fusion.weights().detach(), torch.tensor([[0.75], [0.25]]).expand(2, 8), atol=1e-6, rtol=0
    )


def test_fixed_fusion_may_switch_a_phase_off(tester):
    model = build(tester.get_config(fusion_mode="fixed", fusion_init_theta=[1.0, 0.0])).eval()
    weights = model.fmanet.phase_fusion.weights()
    assert torch.equal(weights, torch.tensor([[1.0], [0.0]]).expand(2, 8))
    assert torch.isfinite(model(tester.pixel_values()).logits).all()


@pytest.mark.parametrize(
    "slope, threshold, magnitude, expected",
    [
        (10.0, 0.1, 0.3, 1.0 / (1.0 + math.exp(-2.0))),  # default a, t: sigmoid(10 * 0.2)
        (10.0, 0.1, 0.1, 0.5),
        (4.0, 0.25, 0.5, 1.0 / (1.0 + math.exp(-1.0))),
        (4.0, 0.25, 0.0, 1.0 / (1.0 + math.exp(1.0))),
    ],
)
def test_initial_modulation_gate_is_the_configured_sigmoid(tester, slope, threshold, magnitude, expected):
    config = tester.get_config(modulation_init_slope=slope, modulation_init_threshold=threshold)
    model = build(config).eval()
    modulation = model.fmanet.magnitude_modulation
    for phase in range(2):
        gate = modulation(torch.full((1, 1, 2, 2), magnitude), phase)
        torch.testing.assert_close(gate, torch.full((1, 1, 2, 2), expected), atol=1e-6, rtol=0)


# ---------------------------------------------------------------------------- fusion and attention by hand
def test_fusion_outputs_the_theta_weighted_sum_of_the_phase_features(tester):
    # Phase features 1 and 2 everywhere: the fused map is theta_1 * 1 + theta_2 * 2 in every channel.
    fusion = build(tester.get_config(fusion_init_theta=[0.6, 0.4])).fmanet.phase_fusion
    ones = torch.ones(2, 8, 4, 4)
    fused, weights = fusion([ones, 2 * ones])
    torch.testing.assert_close(fused, torch.full((2, 8, 4, 4), 0.6 * 1 + 0.4 * 2), atol=1e-6, rtol=0)
    # Per-channel weights: channel c fuses with its own (w_1c, w_2c).
    with torch.no_grad():
        fusion.theta_logits.copy_(torch.log(torch.tensor([[0.9, 0.5, 0.2, 0.7, 0.1, 0.3, 0.6, 0.8],
                                                          [0.1, 0.5, 0.8, 0.3, 0.9, 0.7, 0.4, 0.2]])))
        features = [torch.randn(2, 8, 4, 4, generator=torch.Generator().manual_seed(k)) for k in (1, 2)]
        fused, weights = fusion(features)
    expected_weights = torch.tensor([[0.9, 0.5, 0.2, 0.7, 0.1, 0.3, 0.6, 0.8], [0.1, 0.5, 0.8, 0.3, 0.9, 0.7, 0.4, 0.2]])
    torch.testing.assert_close(weights, expected_weights, atol=1e-6, rtol=0)
    by_hand = expected_weights[0][None, :, None, None] * features[0] + expected_weights[1][None, :, None, None] * features[1]
    torch.testing.assert_close(fused, by_hand, atol=1e-6, rtol=1e-6)


def _gated_phases(model, pixel_values):
    """Per phase: (gated input, gated magnitude), recomputed from the documented gate sigmoid(a (M - t))."""
    modulation = model.fmanet.magnitude_modulation
    phases = []
    for k in range(model.config.num_phases):
        phase_input = pixel_values[:, 3 * k : 3 * k + 3]
        magnitude = phase_input[:, 2:3]
        gate = torch.sigmoid(modulation.log_slope[k].exp() * (magnitude - modulation.threshold[k]))
        phases.append((phase_input * gate, magnitude * gate))
    return phases


@pytest.mark.parametrize("variant", ["full", "global_fusion", "fixed_fusion"])
def test_forward_fuses_the_encoded_phases_with_the_reported_weights(tester, variant):
    model = perturbed(build(tester.get_config(**VARIANTS[variant]))).eval()
    pixel_values = tester.pixel_values()
    with torch.no_grad():
        out = model.fmanet(pixel_values, output_hidden_states=True)
        phases = _gated_phases(model, pixel_values)
        encoded = [model.fmanet.phase_encoders[k](gated) for k, (gated, _) in enumerate(phases)]
    weights = out.phase_fusion_weights[0]
    assert not torch.allclose(weights[0], weights[1])  # so that a swap of the phases would show
    by_hand = sum(weights[k][None, :, None, None] * encoded[k] for k in range(2))
    torch.testing.assert_close(out.hidden_states[0], by_hand, atol=1e-5, rtol=1e-5)


def test_attention_map_is_computed_from_the_fused_features_and_the_fused_magnitude(tester):
    # A = sigmoid(conv[mean_c(fused), max_c(fused), fused magnitude]), where the fused magnitude is
    # sum_k (mean over channels of w_k) * avgpool(gated M_k) at the feature resolution.
    model = perturbed(build(tester.get_config())).eval()
    pixel_values = tester.pixel_values()
    with torch.no_grad():
        out = model.fmanet(pixel_values, output_hidden_states=True)
        fused, attended = out.hidden_states[0], out.hidden_states[1]
        share = out.phase_fusion_weights[0].mean(dim=1)
        magnitude = sum(share[k] * F.avg_pool2d(gated_m, 2) for k, (_, gated_m) in enumerate(_gated_phases(model, pixel_values)))
        convolution = model.fmanet.motion_attention.convolution
        descriptor = torch.cat([fused.mean(1, keepdim=True), fused.amax(1, keepdim=True), magnitude], dim=1)
        by_hand = torch.sigmoid(F.conv2d(descriptor, convolution.weight, convolution.bias, padding=convolution.padding))
        # The magnitude really weighs in: without it the map is visibly different.
        without_magnitude = torch.sigmoid(
            F.conv2d(torch.cat([descriptor[:, :2], torch.zeros_like(magnitude)], dim=1), convolution.weight,
                     convolution.bias, padding=convolution.padding)
        )
    assert (by_hand - without_magnitude).abs().max() > 1e-2
    torch.testing.assert_close(out.attention_map, by_hand, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(attended, fused * by_hand, atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------------------- batch independence
def test_logits_do_not_depend_on_the_rest_of_the_batch(tester):
    config = tester.get_config()
    model = build(config).eval()
    pixel_values = tester.pixel_values(config, batch_size=4, seed=3)
    with torch.no_grad():
        together = model(pixel_values).logits
        alone = torch.cat([model(pixel_values[i : i + 1]).logits for i in range(4)])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=0)
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())


# ---------------------------------------------------------------------------- save / load
def perturbed(model: torch.nn.Module, seed: int = 7) -> torch.nn.Module:
    """Move every parameter and buffer off its initial value, so a reload that silently
    re-initialised anything would show."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            if tensor.is_floating_point():
                tensor.add_(0.05 * torch.randn(tensor.shape, generator=generator))
    return model


@pytest.mark.parametrize("variant", ["full", "fixed_fusion"])
def test_save_and_load_round_trip_is_bit_identical(tester, tmp_path, variant):
    config = tester.get_config(**VARIANTS[variant])
    model = perturbed(build(config)).eval()
    pixel_values = tester.pixel_values(config)
    model.save_pretrained(tmp_path)
    files = set(os.listdir(tmp_path))
    assert "model.safetensors" in files
    assert not [f for f in files if f.endswith((".bin", ".pt", ".pth", ".pkl"))]
    assert {"config.json", "configuration_fmanet.py", "modeling_fmanet.py", "errors.py"} <= files
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "fmanet"
    assert saved["auto_map"]["AutoConfig"] == "configuration_fmanet.FMANetConfig"
    assert saved["auto_map"]["AutoModelForImageClassification"] == "modeling_fmanet.FMANetForImageClassification"

    loaded = FMANetForImageClassification.from_pretrained(tmp_path).eval()
    original_state, loaded_state = model.state_dict(), loaded.state_dict()
    assert original_state.keys() == loaded_state.keys()
    for key in original_state:
        assert torch.equal(original_state[key], loaded_state[key]), key
    with torch.no_grad():
        assert torch.equal(model(pixel_values).logits, loaded(pixel_values).logits)

    # The Auto classes resolve to FMANet after `import fmanet_hf`.
    assert isinstance(AutoConfig.from_pretrained(tmp_path), FMANetConfig)
    auto_classifier = AutoModelForImageClassification.from_pretrained(tmp_path).eval()
    assert type(auto_classifier) is FMANetForImageClassification
    auto_base = AutoModel.from_pretrained(tmp_path).eval()
    assert type(auto_base) is FMANetModel
    with torch.no_grad():
        assert torch.equal(auto_classifier(pixel_values).logits, model(pixel_values).logits)
        # The bare model gets the classifier checkpoint's backbone weights.
        assert torch.equal(auto_base(pixel_values).pooler_output, model.fmanet(pixel_values).pooler_output)


def test_auto_classes_are_registered_for_the_model_type():
    assert fmanet_hf.FMANetConfig is type(AutoConfig.for_model("fmanet"))
    config = AutoConfig.for_model("fmanet", **tiny_config_kwargs())
    assert type(AutoModel.from_config(config)) is FMANetModel
    assert type(AutoModelForImageClassification.from_config(config)) is FMANetForImageClassification


REMOTE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    sys.modules["fmanet_hf"] = None  # the package is "not installed"
    try:
        import fmanet_hf  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("fmanet_hf was importable in the remote-code subprocess")
    import numpy as np
    import torch
    from transformers import AutoConfig, AutoImageProcessor, AutoModelForImageClassification

    folder, inputs = sys.argv[1], sys.argv[2]
    config = AutoConfig.from_pretrained(folder, trust_remote_code=True)
    model = AutoModelForImageClassification.from_pretrained(folder, trust_remote_code=True).eval()
    processor = AutoImageProcessor.from_pretrained(folder, trust_remote_code=True)
    with torch.no_grad():
        logits = model(torch.from_numpy(np.load(inputs + "/pixel_values.npy"))).logits
    np.save(inputs + "/remote_logits.npy", logits.numpy())
    triplet = np.load(inputs + "/triplet.npy")
    np.save(inputs + "/remote_processed.npy", processor(triplet[0], triplet[1], triplet[2])["pixel_values"])
    print(json.dumps({
        "config": type(config).__module__,
        "model": type(model).__module__,
        "processor": type(processor).__module__,
        "fmanet_hf_loaded": sys.modules.get("fmanet_hf") is not None,
    }))
    """
)


def smooth_triplet(size: int = 40, seed: int = 0) -> np.ndarray:
    """(3, size, size) uint8: a smooth random texture, the same shifted by ~1 px, then back."""
    import cv2

    rng = np.random.default_rng(seed)
    texture = cv2.GaussianBlur(rng.uniform(0, 255, (size, size)).astype(np.float32), (0, 0), 2.0)
    texture = cv2.normalize(texture, None, 0, 255, cv2.NORM_MINMAX)
    apex = cv2.warpAffine(texture, np.array([[1.0, 0, 1.0], [0, 1.0, 0.5]]), (size, size), borderMode=cv2.BORDER_REFLECT)
    return np.rint(np.stack([texture, apex, texture])).astype(np.uint8)


@pytest.mark.slow
def test_remote_code_loads_without_the_package(tester, tmp_path):
    config = tester.get_config()
    model = perturbed(build(config)).eval()
    folder = tmp_path / "checkpoint"
    model.save_pretrained(folder)
    # crop_size 40 = the triplet's own size (crop_size=None does not survive a save, see
    # test_image_processing_fmanet.py::test_crop_size_none_survives_save_and_load).
    processor = FMANetImageProcessor(
        align_faces=False, crop_size=40, stabilization="none", flow_method="dis", size={"height": 32, "width": 32}
    )
    processor.save_pretrained(folder)
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    pixel_values = tester.pixel_values(config)
    np.save(inputs / "pixel_values.npy", pixel_values.numpy())
    triplet = smooth_triplet()
    np.save(inputs / "triplet.npy", triplet)

    env = dict(os.environ, HF_HOME=str(tmp_path / "hf_home"), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    result = subprocess.run(
        [sys.executable, "-c", REMOTE_SCRIPT, str(folder), str(inputs)],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    modules = json.loads(result.stdout.strip().splitlines()[-1])
    for kind in ("config", "model", "processor"):
        assert modules[kind].startswith("transformers_modules"), modules
    assert modules["fmanet_hf_loaded"] is False

    with torch.no_grad():
        local_logits = model(pixel_values).logits.numpy()
    assert np.array_equal(np.load(inputs / "remote_logits.npy"), local_logits)
    local_processed = processor(triplet[0], triplet[1], triplet[2])["pixel_values"]
    remote_processed = np.load(inputs / "remote_processed.npy")
    assert remote_processed.shape == (1, 6, 32, 32)
    assert np.abs(local_processed).max() > 0.5  # the triplet really moves
    assert np.array_equal(remote_processed, local_processed)


# ---------------------------------------------------------------------------- compile / export
@pytest.mark.slow
def test_torch_compile_gives_the_same_logits(tester):
    config = tester.get_config()
    model = build(config).eval()
    pixel_values = tester.pixel_values(config)
    with torch.no_grad():
        expected = model(pixel_values).logits
        compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
        got = compiled(pixel_values).logits
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_torch_export_runs_and_matches(tester):
    config = tester.get_config()
    model = build(config).eval()
    pixel_values = tester.pixel_values(config)
    with torch.no_grad():
        expected = model(pixel_values)
    exported = torch.export.export(model, (pixel_values,))
    with torch.no_grad():
        got = exported.module()(pixel_values)
    torch.testing.assert_close(got.logits, expected.logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got.attention_map, expected.attention_map, atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------------------- config
BAD_CONFIGS = [
    ({"image_size": -32}, "image_size"),
    ({"image_size": 0}, "image_size"),
    ({"image_size": 32.0}, "image_size"),
    ({"num_labels": 0}, "labels"),
    ({"fusion_mode": "attention"}, "fusion_mode"),
    ({"phase_mode": "triple"}, "phase_mode"),
    ({"hidden_act": "tanh"}, "hidden_act"),
    ({"fusion_granularity": "pixel"}, "fusion_granularity"),
    ({"attention_kernel_size": 4}, "attention_kernel_size"),
    ({"attention_kernel_size": 0}, "attention_kernel_size"),
    ({"classifier_dropout": 1.0}, "classifier_dropout"),
    ({"classifier_dropout": -0.1}, "classifier_dropout"),
    ({"encoder_hidden_size": 10}, "num_groups"),
    ({"hidden_sizes": [8, 18]}, "num_groups"),
    ({"hidden_sizes": [8, 16], "depths": [1]}, "hidden_sizes and depths"),
    ({"hidden_sizes": [], "depths": []}, "hidden_sizes and depths"),
    ({"image_size": 4}, "image_size"),
    ({"image_size": 16, "hidden_sizes": [8, 8, 8, 8], "depths": [1, 1, 1, 1]}, "image_size"),
    ({"hidden_sizes": [10**6], "depths": [1]}, "hidden_sizes"),
    ({"encoder_hidden_size": 10**6}, "encoder_hidden_size"),
    ({"depths": [1, 10**6]}, "depths"),
    ({"image_size": 10**6}, "image_size"),
    ({"num_labels": 10001}, "labels"),
    ({"num_channels_per_phase": 5}, "num_channels_per_phase"),
    ({"num_groups": 0}, "num_groups"),
    ({"encoder_depth": 0}, "encoder_depth"),
    ({"fusion_init_theta": [0.6, 0.3, 0.1]}, "fusion_init_theta"),
    ({"fusion_init_theta": [-0.2, 1.2]}, "fusion_init_theta"),
    ({"fusion_init_theta": [1.0, 0.0]}, "log\\(theta\\)"),  # learnable logits need theta > 0
    ({"modulation_init_slope": 0.0}, "modulation_init_slope"),
    ({"modulation_init_slope": float("nan")}, "modulation_init_slope"),
]


@pytest.mark.parametrize("overrides, setting", BAD_CONFIGS, ids=[str(o) for o, _ in BAD_CONFIGS])
def test_impossible_config_values_raise_config_error_naming_the_setting(tester, overrides, setting):
    with pytest.raises(FMANetConfigError, match=setting):
        tester.get_config(**overrides)


# Impossible values the validation does not catch yet (found while writing these tests).
# Each one builds a config; the model then either fails with a raw torch error or
# silently computes NaN.
UNCAUGHT_CONFIGS = [
    ({"fusion_init_theta": [float("nan"), 0.4]}, "fusion_init_theta"),
    ({"modulation_init_threshold": float("nan")}, "modulation_init_threshold"),
    ({"attention_kernel_size": 7.0}, "attention_kernel_size"),
    ({"initializer_range": -1.0}, "initializer_range"),
]


@pytest.mark.parametrize("overrides, setting", UNCAUGHT_CONFIGS, ids=[str(o) for o, _ in UNCAUGHT_CONFIGS])
def test_uncaught_impossible_config_values(tester, overrides, setting):
    with pytest.raises(FMANetConfigError, match=setting):
        tester.get_config(**overrides)


def test_config_round_trip(tester):
    config = tester.get_config(
        phase_mode="onset_apex",
        fusion_mode="fixed",
        fusion_granularity="global",
        fusion_init_theta=[0.7, 0.3],
        use_motion_attention=False,
        hidden_act="silu",
        num_labels=5,
        classifier_dropout=0.1,
    )
    as_dict = config.to_dict()
    again = FMANetConfig.from_dict(as_dict)
    assert again.to_dict() == as_dict
    again_json = FMANetConfig.from_dict(json.loads(config.to_json_string()))
    assert again_json.to_dict() == as_dict
    for name in ("phase_mode", "fusion_mode", "fusion_granularity", "fusion_init_theta", "hidden_sizes", "hidden_act"):
        assert getattr(again, name) == getattr(config, name)
    assert again.num_labels == 5 and again.num_phases == 1 and again.num_channels == 6
    assert again.use_motion_attention is False


def test_config_defaults_label_the_megc_classes():
    config = FMANetConfig()
    assert config.num_labels == 3
    assert [config.id2label[i] for i in range(3)] == ["negative", "positive", "surprise"]


def test_config_docstring_documents_every_argument():
    signature = inspect.signature(FMANetConfig.__init__)
    names = [n for n, p in signature.parameters.items() if n != "self" and p.kind is not p.VAR_KEYWORD]
    assert len(names) >= 20
    missing = [n for n in names if f"{n} (" not in FMANetConfig.__doc__]
    assert not missing, f"FMANetConfig docstring does not document {missing}"
    # The default each entry states agrees with the signature (for the scalar settings).
    doc = FMANetConfig.__doc__
    for name in names:
        default = signature.parameters[name].default
        if isinstance(default, (bool, int, float, str)):
            shown = f'"{default}"' if isinstance(default, str) else repr(default)
            entry = doc[doc.index(f"{name} (") :][:120]
            assert re.search(rf"defaults to `?{re.escape(shown)}`?\)", entry), (name, entry)


# The fixed-MM-COF CNN baseline (phase_mode="mmcof").
def textured_triplet(size: int = 48, seed: int = 0) -> tuple[np.ndarray, ...]:
    """A smooth texture that moves by a local bump at the apex and half-way back at the offset."""
    rng = np.random.default_rng(seed)
    texture = cv2.GaussianBlur(rng.uniform(0, 255, (size, size)).astype(np.float32), (0, 0), 2.0)
    texture = cv2.normalize(texture, None, 10, 245, cv2.NORM_MINMAX)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    bump = np.exp(-((x - 20) ** 2 + (y - 26) ** 2) / (2 * 6.0**2)).astype(np.float32)
    apex = cv2.remap(texture, x - 1.5 * bump, y - 0.5 * bump, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    offset = cv2.remap(texture, x - 0.6 * bump, y - 0.2 * bump, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return tuple(np.rint(f).astype(np.uint8) for f in (texture, apex, offset))


def test_in_graph_mmcof_equals_the_processors_numpy_descriptor():
    processor = FMANetImageProcessor(
        align_faces=False, crop_size=None, stabilization="none", flow_method="dis", size={"height": 16, "width": 16}
    )
    out = processor(*textured_triplet(), return_mmcof=True)
    config = FMANetConfig(**BASELINE_CONFIGS["mmcof_cnn"], image_size=16)
    in_graph = fixed_mmcof(torch.as_tensor(out["pixel_values"]), config).numpy()
    np.testing.assert_allclose(in_graph, out["mmcof_values"], atol=1e-5)
    # Not trivially zero: the bump moved by about 1.5 px.
    assert np.abs(out["mmcof_values"][0, 0]).max() > 0.3


def test_the_baseline_reads_both_phases_but_has_none_of_fmanets_learnable_blocks():
    config = FMANetConfig(**BASELINE_CONFIGS["mmcof_cnn"], image_size=16, hidden_sizes=[16, 16], encoder_hidden_size=8)
    model = FMANetForImageClassification(config).eval()
    names = [name for name, _ in model.named_parameters()]
    assert not any("log_slope" in n or "threshold" in n or "theta_logits" in n or "motion_attention" in n for n in names)
    assert len(model.fmanet.phase_encoders) == 1
    assert model.fmanet.phase_encoders[0].layers[0].convolution.in_channels == 3
    pixel_values = torch.rand(2, 6, 16, 16)
    changed = pixel_values.clone()
    changed[:, 3:] = torch.rand(2, 3, 16, 16)  # only the apex->offset phase differs
    with torch.no_grad():
        assert not torch.allclose(model(changed).logits, model(pixel_values).logits)
        assert model(pixel_values).attention_map is None


def test_mmcof_mode_refuses_a_learnable_fusion():
    with pytest.raises(FMANetConfigError, match="fusion_mode"):
        FMANetConfig(phase_mode="mmcof", fusion_mode="learnable")
