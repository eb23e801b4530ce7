"""--init-from: weights copied exactly, classifier fresh for other classes, misfits refused."""

from __future__ import annotations

import json

import pytest
import torch

from fmanet_hf import FMANetConfig, FMANetForImageClassification
from fmanet_hf.errors import CheckpointError
from fmanet_hf.training.initialization import PretrainedInitialization, describe_initialization, load_initial_weights
from tests.helpers.tiny import tiny_config_kwargs


def saved_model(tmp_path, seed=1, **overrides):
    torch.manual_seed(seed)
    model = FMANetForImageClassification(FMANetConfig(**tiny_config_kwargs(image_size=16, **overrides)))
    model.save_pretrained(tmp_path / "pretrained")
    return model, tmp_path / "pretrained"


def test_every_tensor_is_copied_from_the_folder(tmp_path):
    source, folder = saved_model(tmp_path)
    torch.manual_seed(2)
    target = FMANetForImageClassification(FMANetConfig(**tiny_config_kwargs(image_size=16)))
    assert not torch.equal(target.classifier.weight, source.classifier.weight)
    report = load_initial_weights(target, folder)
    assert report["classifier"] == "loaded"
    for name, tensor in source.state_dict().items():
        assert torch.equal(target.state_dict()[name], tensor), name


def test_other_classes_get_a_fresh_classifier_and_keep_the_rest(tmp_path):
    source, folder = saved_model(tmp_path)
    torch.manual_seed(2)
    config = FMANetConfig(**tiny_config_kwargs(image_size=16), id2label={0: "a", 1: "b"}, label2id={"a": 0, "b": 1})
    target = FMANetForImageClassification(config)
    fresh_classifier = target.classifier.weight.clone()
    assert load_initial_weights(target, folder)["classifier"] == "fresh"
    assert torch.equal(target.classifier.weight, fresh_classifier)
    assert torch.equal(target.fmanet.stages[0].downsample.convolution.weight, source.fmanet.stages[0].downsample.convolution.weight)


def test_a_different_architecture_is_refused_with_the_tensor_named(tmp_path):
    _, folder = saved_model(tmp_path)
    target = FMANetForImageClassification(FMANetConfig(**tiny_config_kwargs(image_size=16, encoder_hidden_size=16)))
    with pytest.raises(CheckpointError, match="does not fit the run's model"):
        load_initial_weights(target, folder)


def test_a_folder_without_weights_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="fmanet-hf pretrain"):
        PretrainedInitialization(str(tmp_path / "empty"))(FMANetConfig(**tiny_config_kwargs(image_size=16)))
    with pytest.raises(CheckpointError, match="not a folder"):
        describe_initialization(tmp_path / "missing")


def test_the_description_digests_the_weights_file(tmp_path):
    import hashlib

    _, folder = saved_model(tmp_path)
    description = describe_initialization(folder)
    assert description["sha256"] == hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    assert json.loads((folder / "config.json").read_text())["model_type"] == "fmanet"
