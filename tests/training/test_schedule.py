"""Tests of the training schedule (`TrainingSchedule`: validation, learning-rate curve) and the class weights."""

from __future__ import annotations

import math

import pytest
import torch

from fmanet_hf.errors import FMANetConfigError
from fmanet_hf.training.engine import class_weights_for
from fmanet_hf.training.schedule import TrainingSchedule


def test_schedule_validation_and_cosine_learning_rate():
    schedule = TrainingSchedule(epochs=2, batch_size=4, learning_rate=0.1)
    assert schedule.learning_rate_at(0, 10) == pytest.approx(0.1)
    assert schedule.learning_rate_at(5, 10) == pytest.approx(0.05)
    assert schedule.learning_rate_at(9, 10) == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi * 0.9)))
    constant = TrainingSchedule(epochs=2, batch_size=4, learning_rate=0.1, lr_schedule="constant")
    assert constant.learning_rate_at(9, 10) == 0.1
    assert schedule.to_dict()["optimizer"] == "adamw"
    for bad in ({"epochs": 0}, {"learning_rate": -1.0}, {"optimizer": "lamb"}, {"lr_schedule": "step"}, {"momentum": 1.0}):
        with pytest.raises(FMANetConfigError):
            TrainingSchedule(**{"epochs": 1, "batch_size": 1, "learning_rate": 0.1, **bad})


def test_balanced_class_weights_by_hand():
    weights = class_weights_for(torch.tensor([0, 0, 0, 1]), 3, "balanced")
    # n / (K * n_c) with n = 4 and K = 2 classes present; class 2 has no sample.
    assert weights.tolist() == pytest.approx([4 / (2 * 3), 4 / (2 * 1), 0.0])
    assert class_weights_for(torch.tensor([0, 1]), 3, "none").tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(FMANetConfigError):
        class_weights_for(torch.tensor([0]), 2, "inverse")
