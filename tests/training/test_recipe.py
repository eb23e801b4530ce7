"""The small-data recipe inside the training loop: flow augmentation and weight averaging."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from accelerate import Accelerator

from fmanet_hf import FMANetConfig, FMANetForImageClassification
from fmanet_hf.errors import FMANetConfigError
from fmanet_hf.training.collate import PreparedTensors
from fmanet_hf.training.engine import train_model
from fmanet_hf.training.schedule import TrainingSchedule
from tests.helpers.tiny import make_prepared_dataset, tiny_config_kwargs


@pytest.fixture(scope="module")
def data() -> PreparedTensors:
    return PreparedTensors.from_prepared(make_prepared_dataset(subjects=3, per_subject=4, image_size=16))


def train(data, seed=0, **recipe):
    schedule = TrainingSchedule(epochs=3, batch_size=4, learning_rate=1e-2, **recipe)
    torch.manual_seed(0)
    model = FMANetForImageClassification(FMANetConfig(**tiny_config_kwargs(image_size=16)))
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    snapshots = []
    trained, log = train_model(
        model, data, np.arange(len(data)), schedule, seed=seed, accelerator=Accelerator(cpu=True),
        data_parallel=False, on_epoch_end=lambda epoch, m: snapshots.append({k: v.clone() for k, v in m.state_dict().items()}),
    )
    return trained, log, initial, snapshots


def test_augmentation_changes_the_update_but_not_the_sample_order(data):
    plain, plain_log, _, _ = train(data)
    augmented, augmented_log, _, _ = train(data, augmentation="flow")
    again, _, _, _ = train(data, augmentation="flow")
    assert plain_log.optimizer_sample_indices == augmented_log.optimizer_sample_indices
    weight = "classifier.weight"
    assert not torch.allclose(plain.state_dict()[weight], augmented.state_dict()[weight])
    assert torch.equal(augmented.state_dict()[weight], again.state_dict()[weight])  # seeded: repeatable


def test_weight_average_is_the_ema_of_the_per_step_weights(data):
    # 12 samples in batches of 12: one optimiser step per epoch, so the weights recorded at each
    # epoch's end are the weights after each step; the EMA is then computed here by hand.
    schedule_data = data
    decay = 0.5
    schedule = TrainingSchedule(epochs=3, batch_size=12, learning_rate=1e-2, ema_decay=decay)
    torch.manual_seed(0)
    model = FMANetForImageClassification(FMANetConfig(**tiny_config_kwargs(image_size=16)))
    average = {k: v.clone() for k, v in model.named_parameters()}
    raw = []
    trained, log = train_model(
        model, schedule_data, np.arange(len(schedule_data)), schedule, seed=0, accelerator=Accelerator(cpu=True),
        data_parallel=False, on_epoch_end=lambda e, m: raw.append({k: v.detach().clone() for k, v in m.named_parameters()}),
    )
    assert log.steps == 3
    for step, weights in enumerate(raw):
        d = min(decay, (1 + step) / (10 + step))
        average = {k: d * average[k] + (1 - d) * weights[k] for k in average}
    for name, parameter in trained.named_parameters():
        assert torch.allclose(parameter, average[name], atol=1e-6), name
    assert not torch.allclose(trained.classifier.weight, raw[-1]["classifier.weight"])


def test_recipe_fields_stay_out_of_the_schedule_record_at_their_defaults():
    plain = TrainingSchedule(epochs=2, batch_size=4, learning_rate=1e-3)
    assert "augmentation" not in plain.to_dict() and "ema_decay" not in plain.to_dict()
    recipe = TrainingSchedule(epochs=2, batch_size=4, learning_rate=1e-3, augmentation="flow", ema_decay=0.99)
    assert recipe.to_dict()["augmentation"] == "flow" and recipe.to_dict()["ema_decay"] == 0.99


@pytest.mark.parametrize("field, value", [("augmentation", "mixup"), ("ema_decay", 1.0), ("ema_decay", -0.5)])
def test_bad_recipe_values_are_refused(field, value):
    with pytest.raises(FMANetConfigError, match=field):
        TrainingSchedule(epochs=2, batch_size=4, learning_rate=1e-3, **{field: value})
