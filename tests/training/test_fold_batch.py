"""Fold batching (fmanet_hf.training.fold_batch): K fold models trained as one computation.

The reference is the per-fold loop (`run_loso(folds_at_once=1)`, i.e. `train_model` one fold
after another) and `torch.optim`'s own AdamW / SGD: with dropout 0 the batched folds must give
the same predictions and losses up to float rounding, each fold must see only its own training
subjects, and folds of unequal size must each follow their own schedule.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from fmanet_hf.errors import FMANetConfigError
from fmanet_hf.training.engine import TrainingObserver
from fmanet_hf.training.fold_batch import (
    CPU_AUTO_FOLDS_AT_ONCE,
    batching_obstacle,
    resolve_folds_at_once,
)
from fmanet_hf.training.loso import run_loso, run_loso_seeds
from fmanet_hf.training.schedule import TrainingSchedule
from tests.helpers.tiny import make_prepared_dataset, tiny_config_kwargs, tiny_model

#: Subjects of 5, 2, 7 and 3 clips: at batch 4 the folds train on 12, 15, 10 and 14 clips,
#: i.e. 3, 4, 3 and 4 optimiser steps per epoch, with short last batches of different lengths.
UNEQUAL_LABELS = [[0, 1, 2, 0, 1], [2, 1], [0, 2, 1, 1, 0, 2, 0], [1, 0, 2]]
SUBJECTS = ["s1", "s2", "s3", "s4"]


def _accelerator():
    from accelerate import Accelerator

    return Accelerator(cpu=True)


def _dataset():
    return make_prepared_dataset(labels=UNEQUAL_LABELS, image_size=16)


def _run(tmp_path: Path, name: str, schedule: TrainingSchedule, folds_at_once, **kwargs) -> tuple[dict, dict]:
    out = tmp_path / name
    results = run_loso(
        kwargs.pop("dataset", None) or _dataset(),
        model_config=kwargs.pop("model_config", tiny_config_kwargs(16)),
        out_dir=out,
        schedule=schedule,
        progress=False,
        accelerator=_accelerator(),
        folds_at_once=folds_at_once,
        **kwargs,
    )
    records = {s: json.loads((out / "folds" / f"{s}.json").read_text()) for s in SUBJECTS}
    return results, records


def _probabilities(records: dict) -> np.ndarray:
    return np.array([p for s in SUBJECTS for p in records[s]["test"]["probabilities"]])


def _losses(records: dict) -> np.ndarray:
    return np.array([loss for s in SUBJECTS for loss in records[s]["train_loss_per_epoch"]])


SCHEDULES = {
    "adamw_cosine": dict(),
    "balanced_ema": dict(class_weighting="balanced", ema_decay=0.9),
    "sgd_momentum_constant": dict(optimizer="sgd", momentum=0.9, lr_schedule="constant", weight_decay=1e-3),
    "flow_augmentation": dict(augmentation="flow"),
}


@pytest.mark.parametrize("recipe", sorted(SCHEDULES))
def test_batched_folds_equal_per_fold_training_without_dropout(tmp_path, recipe):
    schedule = TrainingSchedule(epochs=3, batch_size=4, learning_rate=3e-3, **SCHEDULES[recipe])
    _, per_fold = _run(tmp_path, "per-fold", schedule, 1)
    results, batched = _run(tmp_path, "batched", schedule, 4)
    # Training moved the weights: the predictions are not the untrained model's.
    assert np.abs(_probabilities(per_fold) - 1 / 3).max() > 1e-3
    np.testing.assert_allclose(_probabilities(batched), _probabilities(per_fold), atol=2e-5)
    np.testing.assert_allclose(_losses(batched), _losses(per_fold), rtol=1e-5)
    for subject in SUBJECTS:
        assert batched[subject]["optimizer_steps"] == per_fold[subject]["optimizer_steps"]
        assert batched[subject]["leak_check"] == per_fold[subject]["leak_check"]
        assert batched[subject]["folds_at_once"] == 4
    assert results["settings"]["folds_at_once"] == 4


def test_unequal_folds_each_follow_their_own_schedule_and_subjects(tmp_path):
    steps: dict[str, list[tuple[int, int, tuple[str, ...]]]] = {s: [] for s in SUBJECTS}

    class Recorder(TrainingObserver):
        def on_optimizer_step(self, fold, epoch, step, sample_ids, global_sample_ids):
            steps[fold].append((epoch, step, tuple(global_sample_ids)))

    dataset = _dataset()
    schedule = TrainingSchedule(epochs=2, batch_size=4, learning_rate=1e-3)
    _run(tmp_path, "observed", schedule, 4, dataset=dataset, observer=Recorder())
    ids_of = {}
    for sample_id, subject in zip(dataset["sample_id"], dataset["subject"]):
        ids_of.setdefault(subject, []).append(sample_id)
    for subject in SUBJECTS:
        train_ids = [i for other in SUBJECTS if other != subject for i in ids_of[other]]
        per_epoch = math.ceil(len(train_ids) / 4)
        assert [step for _, step, _ in steps[subject]] == list(range(2 * per_epoch))
        for epoch in (1, 2):
            seen = [i for e, _, batch in steps[subject] if e == epoch for i in batch]
            # Every training clip exactly once per epoch, and never a held-out one.
            assert Counter(seen) == Counter(train_ids)
            assert not set(seen) & set(ids_of[subject])


def test_dropout_masks_are_per_fold_and_do_not_depend_on_the_batch(tmp_path):
    schedule = TrainingSchedule(epochs=2, batch_size=4, learning_rate=3e-3)
    config = tiny_config_kwargs(16, classifier_dropout=0.5)
    _, two = _run(tmp_path, "two", schedule, 2, model_config=config)
    _, four = _run(tmp_path, "four", schedule, 4, model_config=config)
    _, without = _run(tmp_path, "without", schedule, 4, model_config=tiny_config_kwargs(16))
    np.testing.assert_allclose(_probabilities(two), _probabilities(four), atol=2e-5)
    # Dropout is on (the result differs from the same run without it).
    assert np.abs(_probabilities(four) - _probabilities(without)).max() > 1e-3


class _SeededNoiseDropout(torch.nn.Module):
    """Per-fold reference of the batched dropout: keep where uniform noise from the fold's own
    ``derive_seed(fold seed, "dropout")`` stream is >= p, one draw of the batch's shape per call."""

    def __init__(self, p: float, seed: int) -> None:
        super().__init__()
        self.p = p
        self.generator = torch.Generator().manual_seed(seed)

    def forward(self, hidden):
        if not self.training:
            return hidden
        noise = torch.rand(hidden.shape, generator=self.generator)
        return hidden * (noise >= self.p).to(hidden.dtype) * (1.0 / (1.0 - self.p))


def test_batched_dropout_is_per_fold_dropout_with_the_folds_own_noise(tmp_path):
    from fmanet_hf.training.model_config import default_model_factory
    from fmanet_hf.training.seeds import derive_seed

    def per_fold_reference(config):
        model = default_model_factory(config)
        # run_fold builds the model under torch.manual_seed(fold seed): that is the initial seed here.
        model.dropout = _SeededNoiseDropout(config.classifier_dropout, derive_seed(torch.initial_seed(), "dropout"))
        return model

    schedule = TrainingSchedule(epochs=3, batch_size=4, learning_rate=3e-3)
    config = tiny_config_kwargs(16, classifier_dropout=0.5)
    _, reference = _run(tmp_path, "reference", schedule, 1, model_config=config, model_factory=per_fold_reference)
    _, batched = _run(tmp_path, "batched", schedule, 4, model_config=config)
    _, without = _run(tmp_path, "without", schedule, 4, model_config=tiny_config_kwargs(16))
    np.testing.assert_allclose(_probabilities(batched), _probabilities(reference), atol=2e-5)
    np.testing.assert_allclose(_losses(batched), _losses(reference), rtol=1e-5)
    assert np.abs(_probabilities(batched) - _probabilities(without)).max() > 1e-3


def test_resumed_batched_run_repeats_the_uninterrupted_one(tmp_path):
    schedule = TrainingSchedule(epochs=2, batch_size=4, learning_rate=3e-3)
    config = tiny_config_kwargs(16, classifier_dropout=0.3)
    results, records = _run(tmp_path, "run", schedule, 2, model_config=config)
    (tmp_path / "run" / "folds" / "s3.json").unlink()
    resumed_results, resumed = _run(tmp_path, "run", schedule, 2, model_config=config)
    assert resumed_results["folds_resumed"] == 3
    assert resumed["s3"]["test"] == records["s3"]["test"]
    assert resumed_results["uf1"] == results["uf1"]


def test_seeds_trained_together_equal_separate_runs(tmp_path):
    schedule = TrainingSchedule(epochs=2, batch_size=4, learning_rate=3e-3)
    together = run_loso_seeds(
        _dataset(), seeds=[0, 5], out_dirs=[tmp_path / "a0", tmp_path / "a5"], model_config=tiny_config_kwargs(16),
        schedule=schedule, progress=False, accelerator=_accelerator(), folds_at_once=8,
    )
    for seed, results in zip((0, 5), together):
        assert results["settings"]["folds_at_once"] == 8 and results["settings"]["seeds_trained_together"] == 2
        _, alone = _run(tmp_path, f"alone{seed}", schedule, 1, seed=seed)
        batched = {s: json.loads((tmp_path / f"a{seed}" / "folds" / f"{s}.json").read_text()) for s in SUBJECTS}
        np.testing.assert_allclose(_probabilities(batched), _probabilities(alone), atol=2e-5)
    assert together[0]["seed"] == 0 and together[1]["seed"] == 5


def test_batchnorm_models_fall_back_to_per_fold_training(tmp_path):
    def with_batchnorm(config):
        model = tiny_model(0, 16)
        model.fmanet.stages[0].downsample.normalization = torch.nn.BatchNorm2d(8)
        return model

    assert "BatchNorm2d" in batching_obstacle(with_batchnorm(None))
    assert batching_obstacle(tiny_model(0, 16)) is None
    schedule = TrainingSchedule(epochs=1, batch_size=4, learning_rate=1e-3)
    results, records = _run(tmp_path, "bn", schedule, 4, model_factory=with_batchnorm)
    assert results["settings"]["folds_at_once"] == 1
    assert all("folds_at_once" not in record for record in records.values())


def test_folds_at_once_resolution():
    model, sample = tiny_model(0, 16), torch.zeros(1, 6, 16, 16)
    assert resolve_folds_at_once(0, device="cpu", model=model, sample=sample, batch_size=4, folds=10) == min(
        CPU_AUTO_FOLDS_AT_ONCE, 10
    )
    assert resolve_folds_at_once(32, device="cpu", model=model, sample=sample, batch_size=4, folds=10) == 10
    assert resolve_folds_at_once(3, device="cpu", model=model, sample=sample, batch_size=4, folds=10) == 3


@pytest.mark.parametrize("value", [-1, 1.5, "many", True])
def test_bad_folds_at_once_is_refused(tmp_path, value):
    with pytest.raises(FMANetConfigError, match="folds_at_once"):
        _run(tmp_path, "bad", TrainingSchedule(epochs=1, batch_size=4, learning_rate=1e-3), value)


def test_folds_at_once_and_fold_workers_together_are_refused(tmp_path):
    with pytest.raises(FMANetConfigError, match="choose one"):
        _run(tmp_path, "both", TrainingSchedule(epochs=1, batch_size=4, learning_rate=1e-3), 2, fold_workers=2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_batched_folds_train_on_cuda(tmp_path):
    from accelerate import Accelerator

    schedule = TrainingSchedule(epochs=2, batch_size=4, learning_rate=3e-3)
    _, cpu = _run(tmp_path, "cpu", schedule, 4)
    out = tmp_path / "cuda"
    results = run_loso(
        _dataset(), model_config=tiny_config_kwargs(16), out_dir=out, schedule=schedule, progress=False,
        accelerator=Accelerator(), folds_at_once=4,
    )
    assert results["settings"]["device"].startswith("cuda") and results["settings"]["folds_at_once"] == 4
    cuda = {s: json.loads((out / "folds" / f"{s}.json").read_text()) for s in SUBJECTS}
    np.testing.assert_allclose(_probabilities(cuda), _probabilities(cpu), atol=1e-3)


@pytest.mark.skipif(
    __import__("fmanet_hf.training.precision", fromlist=["x"]).precision_obstacle("bf16", "cpu") is not None,
    reason="this CPU has no bfloat16 kernels",
)
def test_batched_bf16_autocasts_every_fold_and_stays_close_to_per_fold_bf16(tmp_path):
    """bf16 reaches the vmapped forward pass; batched and per-fold bf16 round differently (grouped
    vs single convolutions in bfloat16), so they agree to bfloat16's precision, not to 2e-5."""
    schedule = TrainingSchedule(epochs=3, batch_size=4, learning_rate=3e-3, precision="bf16")
    _, per_fold = _run(tmp_path, "per-fold", schedule, 1)
    seen: list[torch.dtype] = []

    def hook(module, inputs, output):
        # Training steps only: not the no-grad shape probe of the dropout noise.
        if isinstance(module, torch.nn.Conv2d) and module.training and torch.is_grad_enabled():
            seen.append(output.dtype)

    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    try:
        results, batched = _run(tmp_path, "batched", schedule, 4)
    finally:
        handle.remove()
    assert seen and set(seen) == {torch.bfloat16}
    assert results["settings"]["folds_at_once"] == 4
    assert np.isfinite(_losses(batched)).all()
    # The tolerances of tests/training/test_precision.py (bf16 against fp32).
    np.testing.assert_allclose(_losses(batched), _losses(per_fold), rtol=0.01)
    assert np.abs(_probabilities(batched) - _probabilities(per_fold)).max() < 0.02
