"""Bad-input matrix: impossible and absurd configurations, refused at construction."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.helpers.assertions import assert_error
from fmanet_hf import FMANetConfig, FMANetForImageClassification, FMANetImageProcessor
from fmanet_hf.configuration_fmanet import MAX_PARAMETERS
from fmanet_hf.errors import FMANetConfigError


@pytest.mark.parametrize(
    "settings, words",
    [
        ({"image_size": -64}, ["image_size", "-64"]),
        ({"image_size": 0}, ["image_size"]),
        ({"num_labels": 0}, ["num_labels", "0"]),
        ({"id2label": {}}, ["labels", "0"]),
        ({"encoder_hidden_size": -8}, ["encoder_hidden_size"]),
        ({"hidden_sizes": [64, 128], "depths": [1]}, ["equal length"]),
        ({"classifier_dropout": float("nan")}, ["classifier_dropout", "finite"]),
        ({"classifier_dropout": 1.0}, ["classifier_dropout", "[0, 1)"]),
        ({"fusion_init_theta": [-1.0, 2.0]}, ["fusion_init_theta", "non-negative"]),
        ({"phase_mode": "triple"}, ["phase_mode", "triple"]),
        ({"hidden_act": "tanhh"}, ["hidden_act", "tanhh"]),
        ({"attention_kernel_size": 4}, ["attention_kernel_size", "odd"]),
        ({"image_size": 64.0}, ["image_size", "integer"]),
    ],
    ids=[
        "negative-size", "zero-size", "zero-classes", "empty-id2label", "negative-width", "depths-length", "nan-dropout",
        "dropout-1", "negative-theta", "unknown-phase-mode", "unknown-activation", "even-kernel", "float-size",
    ],
)
def test_impossible_model_config(settings, words):
    with pytest.raises(FMANetConfigError) as excinfo:
        FMANetConfig(**settings)
    assert_error(excinfo, FMANetConfigError, "Invalid FMANetConfig", *words)


@pytest.mark.parametrize(
    "settings, words",
    [
        ({"flow_method": "raft"}, ["flow_method", "raft", "tvl1"]),
        ({"size": {"height": -4, "width": 64}}, ["size", "-4"]),
        ({"crop_size": 10**6}, ["crop_size", "2048"]),
        ({"stabilization": "affine"}, ["stabilization", "affine"]),
        ({"normalization_percentile": 0.0}, ["normalization_percentile"]),
        ({"processor_format_version": 99}, ["newer fmanet-hf", "upgrade"]),
        ({"flow_method": "tvl1", "flow_params": {"outer_iterations": 10**9}}, ["outer_iterations", "[1, 300]", "default is 2"]),
        ({"flow_method": "tvl1", "flow_params": {"tau": float("nan")}}, ["tau", "nan"]),
        ({"flow_method": "farneback", "flow_params": {"levels": "3"}}, ["levels", "integer"]),
        ({"flow_params": {"patch_stride": 10**6}}, ["patch_stride", "[1, 64]"]),
        ({"face_detection_max_side": 12}, ["face_detection_max_side", "[80, 8192]"]),
        ({"face_detection_max_side": 320.5}, ["face_detection_max_side", "integer"]),
        ({"stabilization_iterations": 0}, ["stabilization_iterations", "[1, 1000]"]),
        ({"stabilization_epsilon": float("nan")}, ["stabilization_epsilon", "nan"]),
        ({"processor_format_version": 0}, ["processor_format_version", "upgrade_checkpoint"]),
    ],
    ids=["unknown-flow-method", "negative-size", "huge-crop", "unknown-stabilization", "zero-percentile", "future-format",
         "billion-iterations", "nan-step", "text-levels", "huge-dis-stride", "tiny-detection-side", "float-detection-side",
         "zero-ecc-iterations", "nan-ecc-epsilon", "format-0"],
)
def test_impossible_processor_config(settings, words):
    with pytest.raises(FMANetConfigError) as excinfo:
        FMANetImageProcessor(**settings)
    assert_error(excinfo, FMANetConfigError, *words)


@pytest.fixture
def no_big_tensors(monkeypatch):
    """Fail the test if anything asks torch for a tensor of more than a million elements."""
    requested = []
    original = torch.empty

    def guarded_empty(*size, **kwargs):
        shape = size[0] if len(size) == 1 and isinstance(size[0], (tuple, list, torch.Size)) else size
        count = int(np.prod([int(s) for s in shape])) if shape else 1
        requested.append(count)
        assert count <= 10**6, f"a tensor of {count} elements was allocated"
        return original(*size, **kwargs)

    monkeypatch.setattr(torch, "empty", guarded_empty)
    return requested


ABSURD = [
    ({"hidden_sizes": [10**6, 10**6], "depths": [1, 1]}, ["hidden_sizes", "4096"]),
    ({"depths": [10**4, 1]}, ["depths", "64"]),
    ({"image_size": 10**6}, ["image_size", "1024"]),
    ({"num_labels": 10**9}, ["num_labels", "10000"]),
    # Each setting within its own bound, together about 39 billion weights (156 GB):
    ({"hidden_sizes": [4096, 4096], "depths": [64, 64]}, ["parameters", "hidden_sizes"]),
]


@pytest.mark.parametrize("settings, words", ABSURD, ids=["width-1e6", "depth-1e4", "image-1e6", "labels-1e9", "combined"])
def test_absurd_sizes_are_refused_before_allocating(no_big_tensors, settings, words):
    with pytest.raises(FMANetConfigError) as excinfo:
        FMANetConfig(**settings)
    assert_error(excinfo, FMANetConfigError, *words)
    assert no_big_tensors == []


@pytest.mark.parametrize("settings, words", ABSURD, ids=["width-1e6", "depth-1e4", "image-1e6", "labels-1e9", "combined"])
def test_from_pretrained_of_an_absurd_folder_fails_fast(tmp_path, no_big_tensors, settings, words):
    from transformers import AutoModelForImageClassification

    FMANetForImageClassification(FMANetConfig()).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config.update(settings)
    (tmp_path / "config.json").write_text(json.dumps(config))
    no_big_tensors.clear()  # the valid model saved above made its own tensors
    for load in (FMANetForImageClassification.from_pretrained, AutoModelForImageClassification.from_pretrained):
        with pytest.raises(FMANetConfigError) as excinfo:
            load(tmp_path)
        assert_error(excinfo, FMANetConfigError, *words)
    assert max(no_big_tensors, default=0) == 0  # refused before any parameter was made


def test_parameter_estimate_matches_the_built_model():
    for settings in ({}, {"hidden_sizes": [32, 64, 96], "depths": [2, 1, 1], "num_channels_per_phase": 4},
                     {"share_phase_encoder": True, "encoder_depth": 3, "num_labels": 7}):
        config = FMANetConfig(**settings)
        built = sum(p.numel() for p in FMANetForImageClassification(config).parameters())
        estimate = config.estimated_num_parameters()
        assert 0.99 * built <= estimate <= built, (settings, estimate, built)
    assert MAX_PARAMETERS >= 100 * FMANetConfig().estimated_num_parameters()


@pytest.mark.parametrize(
    "change, words",
    [
        ({"size": {"height": 10**6, "width": 10**6}}, ["size", "1024"]),
        ({"crop_size": 10**6}, ["crop_size", "2048"]),
        (
            {"flow_method": "tvl1", "flow_params": {**FMANetImageProcessor(flow_method="tvl1").flow_params, "nscales": 10**4}},
            ["nscales", "[1, 10]"],
        ),
        ({"flow_params": {**FMANetImageProcessor().flow_params, "gradient_descent_iterations": 10**6}}, ["gradient_descent_iterations", "[1, 1000]"]),
        ({"stabilization_iterations": 10**9}, ["stabilization_iterations", "[1, 1000]"]),
    ],
    ids=["huge-output", "huge-crop", "huge-pyramid", "huge-dis-descent", "billion-ecc-iterations"],
)
def test_a_strangers_processor_folder_with_absurd_settings(tmp_path, change, words):
    FMANetImageProcessor().save_pretrained(tmp_path)
    settings = json.loads((tmp_path / "preprocessor_config.json").read_text())
    settings.update(change)
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(settings))
    with pytest.raises(FMANetConfigError) as excinfo:
        FMANetImageProcessor.from_pretrained(tmp_path)
    assert_error(excinfo, FMANetConfigError, *words)
