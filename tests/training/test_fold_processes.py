"""Schedules fixed from the data's size (epochs="auto") and folds trained in worker processes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch

from tests.helpers.tiny import make_prepared_dataset, tiny_config_kwargs  # noqa: E402

from fmanet_hf.errors import FMANetConfigError  # noqa: E402
from fmanet_hf.training.engine import TrainingObserver  # noqa: E402
from fmanet_hf.training.loso import run_loso  # noqa: E402
from fmanet_hf.training.schedule import TrainingSchedule, auto_epochs, resolve_epochs  # noqa: E402

SCHEDULE = dict(schedule=TrainingSchedule(epochs=2, batch_size=4, learning_rate=1e-2), seed=0)


# --------------------------------------------------------------------------------------
# epochs="auto"
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "train_size, batch_size, expected",
    [
        # 12-subject SynthME LOSO: 144 clips, 132 per fold: 120 * 16 / 132 = 14.5 -> 15 epochs.
        (144 - 144 / 12, 16, 15),
        # MEGC-size SynthME LOSO: 408 clips, 68 subjects, 402 per fold: 1920 / 402 = 4.8 -> 5.
        (408 - 408 / 68, 16, 5),
        # Composite MEGC2019 (442 clips, 68 subjects): 1920 / 435.5 = 4.4 -> 5.
        (442 - 442 / 68, 16, 5),
        # Huge sets stop at 3 epochs, tiny ones at 30.
        (100_000, 16, 3),
        (10, 16, 30),
        # Batch 64 on the MEGC-size set: 7680 / 402 = 19.1 -> 20.
        (402, 64, 20),
    ],
)
def test_auto_epochs_hand_computed(train_size, batch_size, expected):
    assert auto_epochs(train_size, batch_size) == expected


def test_resolve_epochs_passes_integers_and_refuses_other_words():
    assert resolve_epochs(7, 100, 16) == 7
    assert resolve_epochs("AUTO", 402, 16) == 5
    with pytest.raises(FMANetConfigError, match="integer >= 1 or 'auto'"):
        resolve_epochs("many", 100, 16)
    with pytest.raises(FMANetConfigError, match="positive training-set size"):
        auto_epochs(0, 16)


def test_schedule_epochs_auto_is_resolved_from_the_training_size(tmp_path):
    from fmanet_hf.training.engine import train_model

    schedule = TrainingSchedule(epochs="Auto", batch_size=16, learning_rate=1e-3)
    assert schedule.epochs == "auto" and schedule.epochs_rule == "auto"
    # MEGC-size LOSO fold: 402 training clips -> 5 epochs, as auto_epochs says.
    assert schedule.resolved(402).epochs == 5 and schedule.resolved(402).epochs_rule == "given"
    fixed = TrainingSchedule(epochs=7, batch_size=16, learning_rate=1e-3)
    assert fixed.resolved(402) is fixed and fixed.epochs_rule == "given"
    with pytest.raises(FMANetConfigError, match="integer >= 1 or 'auto'"):
        TrainingSchedule(epochs="many", batch_size=16, learning_rate=1e-3)
    with pytest.raises(FMANetConfigError, match="resolve epochs='auto'"):
        train_model(None, None, [0], schedule, seed=0, accelerator=None)
    with pytest.raises(FMANetConfigError, match="schedule must be a TrainingSchedule"):
        run_loso(None, out_dir=tmp_path, schedule={"epochs": 2, "batch_size": 4, "learning_rate": 1e-2})


def test_cli_epochs_and_fold_workers_arguments():
    from fmanet_hf.cli import register_training_commands

    parser = argparse.ArgumentParser()
    parsers = register_training_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["loso", "--out", "x"])
    assert args.epochs == "auto" and args.fold_workers == 1
    args = parser.parse_args(["loso", "--out", "x", "--epochs", "12", "--fold-workers", "3"])
    assert args.epochs == 12 and args.fold_workers == 3
    for bad in (["--epochs", "0"], ["--epochs", "lots"], ["--fold-workers", "0"]):
        with pytest.raises(SystemExit):
            parsers["loso"].parse_args(["--out", "x", *bad])


def test_auto_epochs_recorded_in_the_run(tmp_path):
    data = make_prepared_dataset(subjects=3, per_subject=2, image_size=32, seed=2)
    results = run_loso(
        data, model_config=tiny_config_kwargs(), out_dir=tmp_path / "auto", progress=False,
        schedule=TrainingSchedule(epochs="auto", batch_size=4, learning_rate=1e-2), seed=0,
    )
    # 6 samples, 3 subjects: 4 per fold; 120 * 4 / 4 = 120 -> clamped to 30.
    assert results["settings"]["schedule"]["epochs"] == 30
    assert results["settings"]["epochs_rule"] == "auto"
    assert all(len(r["train_loss_per_epoch"]) == 30 for r in map(json.loads, map(Path.read_text, (tmp_path / "auto" / "folds").glob("*.json"))))


# --------------------------------------------------------------------------------------
# Fold workers
# --------------------------------------------------------------------------------------
@pytest.mark.slow
def test_fold_workers_give_the_in_process_results(tmp_path):
    """Two worker processes (1 torch thread each, as OMP_NUM_THREADS=1 gives the test
    process) must reproduce the in-process run exactly: same predictions, probabilities,
    fold models; files written only by the parent (plus the fold models)."""
    assert torch.get_num_threads() == 1, "the test environment sets OMP_NUM_THREADS=1"
    data = make_prepared_dataset(subjects=4, per_subject=3, image_size=32, seed=1)
    kwargs = dict(model_config=tiny_config_kwargs(), progress=False, save_fold_models=True, **SCHEDULE)
    in_process = run_loso(data, out_dir=tmp_path / "one", **kwargs)
    import os

    cores = os.cpu_count() or 1
    workers = run_loso(data, out_dir=tmp_path / "two", fold_workers=2, **kwargs)
    assert workers["settings"]["fold_workers"] == 2
    for key in ("accuracy", "uf1", "uar", "confusion_matrix"):
        assert workers[key] == in_process[key]
    if cores // 2 == 1:  # same thread count per fold as the test process: bit-identical
        assert (tmp_path / "two" / "predictions.jsonl").read_text() == (tmp_path / "one" / "predictions.jsonl").read_text()
        for subject in ("s1", "s2", "s3", "s4"):
            one = (tmp_path / "one" / "folds" / subject / "model.safetensors").read_bytes()
            two = (tmp_path / "two" / "folds" / subject / "model.safetensors").read_bytes()
            assert one == two, subject
    record = json.loads((tmp_path / "two" / "folds" / "s1.json").read_text())
    assert record["fold_worker_threads"] == max(1, cores // 2)
    leftovers = [p.name for p in (tmp_path / "two").rglob("*") if p.name.endswith((".tmp", ".partial"))]
    assert leftovers == []


def test_fold_workers_refuse_observers_and_bad_counts(tmp_path):
    data = make_prepared_dataset(subjects=3, per_subject=2, image_size=32, seed=3)
    with pytest.raises(FMANetConfigError, match="no observer or model_factory"):
        run_loso(data, model_config=tiny_config_kwargs(), out_dir=tmp_path / "a", progress=False,
                 observer=TrainingObserver(), fold_workers=2, **SCHEDULE)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(FMANetConfigError, match="fold_workers must be an integer >= 1"):
            run_loso(data, model_config=tiny_config_kwargs(), out_dir=tmp_path / "b", progress=False,
                     fold_workers=bad, **SCHEDULE)
