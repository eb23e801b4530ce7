"""Tests of the LOSO runner: pooled metrics, leak-freedom, resumability, run folders, final model."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

REPO_ROOT = Path(__file__).resolve().parents[2]

from tests.helpers.tiny import CLASS_NAMES, make_prepared_dataset, tiny_config_kwargs  # noqa: E402

from fmanet_hf import FMANetForImageClassification  # noqa: E402
from fmanet_hf.errors import FMANetError, RunDirectoryError  # noqa: E402
from fmanet_hf.training.engine import TrainingObserver  # noqa: E402
from fmanet_hf.training.loso import run_loso  # noqa: E402
from fmanet_hf.training.loso_results import format_summary_table, load_loso_results  # noqa: E402
from fmanet_hf.training.run_folder import fold_file_stem  # noqa: E402
from fmanet_hf.training.schedule import TrainingSchedule  # noqa: E402
from fmanet_hf.training.seeds import fold_seed  # noqa: E402

SCHEDULE = dict(epochs=2, batch_size=4, learning_rate=1e-2, seed=0)


def schedule_args(**changes) -> dict:
    """`run_loso`'s ``schedule`` and ``seed`` arguments: SCHEDULE with ``changes``."""
    values = {**SCHEDULE, **changes}
    seed = values.pop("seed")
    return {"schedule": TrainingSchedule(**values), "seed": seed}


def read_predictions(out_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (out_dir / "predictions.jsonl").read_text().splitlines()]


class RecordingObserver(TrainingObserver):
    """Logs every optimiser step and every held-out prediction, in order."""

    def __init__(self):
        self.events: list[tuple] = []

    def on_fold_start(self, fold, train_sample_ids, test_sample_ids):
        self.events.append(("start", fold, tuple(train_sample_ids), tuple(test_sample_ids)))

    def on_optimizer_step(self, fold, epoch, step, sample_ids, global_sample_ids):
        self.events.append(("step", fold, epoch, tuple(global_sample_ids)))

    def on_predict(self, fold, epoch, sample_ids, purpose):
        self.events.append(("predict", fold, epoch, tuple(sample_ids), purpose))

    def folds_trained(self) -> list[str]:
        return [e[1] for e in self.events if e[0] == "start"]


# --------------------------------------------------------------------------------------
# Pooled metrics against hand-computed values (deterministic fake model)
# --------------------------------------------------------------------------------------
class PlantedPredictionModel(nn.Module):
    """Predicts the class index written in pixel_values[:, 0, 0, 0], whatever training does.

    Its one parameter gets a zero gradient (it is multiplied by 0), so training leaves the
    planted predictions alone and the LOSO bookkeeping alone is under test.
    """

    def __init__(self, config):
        super().__init__()
        self.num_labels = config.num_labels
        self.unused = nn.Parameter(torch.zeros(()))

    def forward(self, pixel_values, **kwargs):
        planted = pixel_values[:, 0, 0, 0].round().long()
        return SimpleNamespace(logits=5.0 * F.one_hot(planted, self.num_labels).float() + 0.0 * self.unused)


def planted_dataset(folds):
    """A prepared-like dataset whose sample k of subject s has label y_true and planted prediction y_pred."""
    import datasets

    rows = {"sample_id": [], "subject": [], "dataset": [], "label_id": [], "pixel_values": []}
    for subject, dataset_name, y_true, y_pred in folds:
        for k, (t, p) in enumerate(zip(y_true, y_pred)):
            pixels = np.zeros((6, 16, 16), dtype=np.float32)
            pixels[0, 0, 0] = p
            rows["sample_id"].append(f"{dataset_name}/{subject}/c{k}")
            rows["subject"].append(subject)
            rows["dataset"].append(dataset_name)
            rows["label_id"].append(t)
            rows["pixel_values"].append(pixels)
    features = datasets.Features(
        {
            "sample_id": datasets.Value("string"),
            "subject": datasets.Value("string"),
            "dataset": datasets.Value("string"),
            "label_id": datasets.ClassLabel(names=CLASS_NAMES),
            "pixel_values": datasets.Array3D(shape=(6, 16, 16), dtype="float32"),
        }
    )
    dataset = datasets.Dataset.from_dict(rows, features=features)
    dataset.set_format("torch", columns=["pixel_values", "label_id"], output_all_columns=True)
    return dataset


def test_pooled_metrics_match_hand_computed_values(tmp_path):
    # Class 2 (surprise) is absent from s2 (but predicted once there) and from s3 (never predicted).
    folds = [
        ("s1", "toy", [0, 0, 1, 2], [0, 1, 1, 2]),
        ("s2", "toy", [0, 0, 0, 1], [0, 0, 2, 1]),
        ("s3", "toy", [1, 1, 1, 0], [1, 0, 1, 0]),
        ("s4", "other", [2, 1], [2, 2]),
    ]
    out = tmp_path / "planted"
    results = run_loso(
        planted_dataset(folds),
        model_config={"image_size": 16, "encoder_hidden_size": 8, "hidden_sizes": [8], "depths": [1], "num_groups": 4},
        out_dir=out,
        progress=False,
        model_factory=PlantedPredictionModel,
        **schedule_args(),
    )
    # Pooled confusion matrix by hand (rows true, columns predicted):
    #   true 0: [4, 1, 1]   true 1: [1, 4, 1]   true 2: [0, 0, 2]; column sums 5, 5, 4.
    assert results["confusion_matrix"] == [[4, 1, 1], [1, 4, 1], [0, 0, 2]]
    f1 = [Fraction(8, 11), Fraction(8, 11), Fraction(2 * 2, 2 * 2 + 2 + 0)]
    recall = [Fraction(4, 6), Fraction(4, 6), Fraction(2, 2)]
    assert results["uf1"] == pytest.approx(float(sum(f1) / 3), abs=1e-12)  # 70/99
    assert results["uar"] == pytest.approx(float(sum(recall) / 3), abs=1e-12)  # 7/9
    assert results["accuracy"] == pytest.approx(10 / 14, abs=1e-12)
    # Per-dataset columns are subsets of the pooled run. "other": class 2 F1 = 2/3, class 1
    # F1 = 0, class 0 neither true nor predicted (left out); recalls 0 and 1.
    assert results["by_dataset"]["other"]["uf1"] == pytest.approx(1 / 3, abs=1e-12)
    assert results["by_dataset"]["other"]["uar"] == pytest.approx(1 / 2, abs=1e-12)
    assert results["by_dataset"]["toy"]["uf1"] == pytest.approx(362 / 495, abs=1e-12)
    assert results["by_dataset"]["toy"]["uar"] == pytest.approx(37 / 45, abs=1e-12)
    # Per-fold extras: s2 has surprise predicted but absent (F1 0, counted); s3 lacks it entirely.
    per_fold = {fold["subject"]: fold for fold in results["per_fold"]}
    assert per_fold["s2"]["uf1"] == pytest.approx((Fraction(4, 5) + 1 + 0) / 3, abs=1e-12)
    assert per_fold["s2"]["uar"] == pytest.approx((Fraction(2, 3) + 1) / 2, abs=1e-12)
    assert per_fold["s3"]["uf1_classes"] == ["negative", "positive"]
    assert results["per_fold_mean_uf1"] == pytest.approx(np.mean([f["uf1"] for f in results["per_fold"]]))

    # The files say the same.
    on_disk = load_loso_results(out)
    assert on_disk["uf1"] == results["uf1"] and on_disk["settings"]["seed"] == 0
    assert {"torch", "transformers", "fmanet_hf"} <= set(on_disk["versions"])
    lines = read_predictions(out)
    assert [(l["sample_id"], l["true_id"], l["predicted_id"]) for l in lines] == [
        (f"{d}/{s}/c{k}", t, p) for s, d, ts, ps in folds for k, (t, p) in enumerate(zip(ts, ps))
    ]
    assert lines[0]["true"] == "negative" and set(lines[0]["probabilities"]) == set(CLASS_NAMES)
    assert (out / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in (out / "folds").glob("*.json")) == ["s1.json", "s2.json", "s3.json", "s4.json"]
    assert "POOLED (protocol)" in format_summary_table(results)


# --------------------------------------------------------------------------------------
# Leak-freedom
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_dataset():
    return make_prepared_dataset(subjects=4, per_subject=3, image_size=32, seed=1)


@pytest.fixture(scope="module")
def default_run(tiny_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("loso") / "default"
    observer = RecordingObserver()
    results = run_loso(
        tiny_dataset, model_config=tiny_config_kwargs(), out_dir=out, progress=False, observer=observer,
        save_fold_models=True, **schedule_args(),
    )
    return SimpleNamespace(out=out, observer=observer, results=results)


def test_default_run_never_lets_test_subject_reach_optimizer_or_choice(tiny_dataset, default_run):
    subjects = list(tiny_dataset.with_format(None)["subject"])
    sample_ids = list(tiny_dataset.with_format(None)["sample_id"])
    events = default_run.observer.events
    assert default_run.observer.folds_trained() == ["s1", "s2", "s3", "s4"]
    for subject in ["s1", "s2", "s3", "s4"]:
        test_ids = {i for i, s in zip(sample_ids, subjects) if s == subject}
        train_ids = set(sample_ids) - test_ids
        fold_events = [e for e in events if e[1] == subject]
        step_ids = [i for e in fold_events if e[0] == "step" for i in e[3]]
        assert step_ids, "the fold took optimiser steps"
        assert not set(step_ids) & test_ids, f"fold {subject}: test samples reached the optimiser"
        # Every training sample is used once per epoch.
        assert sorted(step_ids) == sorted(list(train_ids) * SCHEDULE["epochs"])
        predictions = [e for e in fold_events if e[0] == "predict"]
        # The default predicts the held-out subject exactly once, after the last optimiser step,
        # so no epoch or checkpoint can have been chosen with it.
        assert [(p[2], set(p[3]), p[4]) for p in predictions] == [(SCHEDULE["epochs"], test_ids, "final")]
        last_step = max(k for k, e in enumerate(events) if e[0] == "step" and e[1] == subject)
        assert events.index(predictions[0]) > last_step
        # The fold file records the same, checkable against an independent hash of the training ids.
        record = json.loads((default_run.out / "folds" / f"{subject}.json").read_text())
        expected_hash = hashlib.sha256("\n".join(sorted(train_ids)).encode()).hexdigest()[:16]
        assert record["leak_check"]["optimizer_sample_ids_sha256"] == expected_hash
        assert record["leak_check"]["test_samples_seen_by_optimizer"] == 0
        assert record["leak_check"]["test_predictions_used_for_choices"] is False
        assert record["leaky_best_epoch"] is None
        assert record["fold_seed"] == fold_seed(SCHEDULE["seed"], subject)


def test_test_subject_data_cannot_change_its_fold_model(tiny_dataset, default_run, tmp_path):
    """Black-box leak check: replace s1's pixels AND labels; fold s1's trained weights must not move."""
    import datasets
    from safetensors.torch import load_file

    plain = tiny_dataset.with_format(None)
    rng = np.random.default_rng(99)
    columns = plain.to_dict()
    columns["pixel_values"] = [np.asarray(p, dtype=np.float32) for p in columns["pixel_values"]]
    for k, subject in enumerate(columns["subject"]):
        if subject == "s1":
            shape = np.asarray(columns["pixel_values"][k]).shape
            columns["pixel_values"][k] = rng.normal(0, 5, size=shape).astype(np.float32)
            columns["label_id"][k] = (columns["label_id"][k] + 1) % 3
    scrambled = datasets.Dataset.from_dict(columns, features=plain.features)
    scrambled.set_format("torch", columns=["pixel_values", "label_id"], output_all_columns=True)
    out = tmp_path / "scrambled"
    run_loso(scrambled, model_config=tiny_config_kwargs(), out_dir=out, progress=False, save_fold_models=True, **schedule_args())

    def weights(run_dir, subject):
        return load_file(str(run_dir / "folds" / subject / "model.safetensors"))

    original, changed = weights(default_run.out, "s1"), weights(out, "s1")
    assert original.keys() == changed.keys()
    assert all(torch.equal(original[k], changed[k]) for k in original)
    # Sanity: the scrambled samples DO change the folds that train on them.
    other_a, other_b = weights(default_run.out, "s2"), weights(out, "s2")
    assert any(not torch.equal(other_a[k], other_b[k]) for k in other_a)
    # And the saved fold model is the one that made the fold's predictions.
    model = FMANetForImageClassification.from_pretrained(default_run.out / "folds" / "s1").eval()
    s1_rows = [i for i, s in enumerate(plain["subject"]) if s == "s1"]
    with torch.no_grad():
        probabilities = model(pixel_values=tiny_dataset.select(s1_rows)[:]["pixel_values"]).logits.softmax(-1)
    record = json.loads((default_run.out / "folds" / "s1.json").read_text())
    assert np.allclose(probabilities.numpy(), record["test"]["probabilities"], atol=1e-6)


def test_leaky_numbers_are_labelled_and_leave_the_protocol_numbers_alone(tiny_dataset, default_run, tmp_path):
    out = tmp_path / "leaky"
    observer = RecordingObserver()
    results = run_loso(
        tiny_dataset, model_config=tiny_config_kwargs(), out_dir=out, progress=False, observer=observer,
        record_leaky_best_epoch=True, **schedule_args(),
    )
    # Recording the leaky numbers changes nothing in the leak-free ones.
    assert read_predictions(out) == [
        {**line, "leaky_best_epoch_predicted": line_leaky["leaky_best_epoch_predicted"]}
        for line, line_leaky in zip(read_predictions(default_run.out), read_predictions(out))
    ]
    assert results["uf1"] == default_run.results["uf1"] and results["accuracy"] == default_run.results["accuracy"]
    assert "LEAKY" in results["leaky_best_epoch"]["note"]
    purposes = {e[4] for e in observer.events if e[0] == "predict"}
    assert purposes == {"leaky_epoch_selection", "final"}
    # Recompute the leaky choice from the per-epoch accuracies: earliest best epoch per fold.
    leaky_true, leaky_pred = [], []
    for subject in ["s1", "s2", "s3", "s4"]:
        record = json.loads((out / "folds" / f"{subject}.json").read_text())
        accuracies = record["leaky_best_epoch"]["test_accuracy_per_epoch"]
        assert len(accuracies) == SCHEDULE["epochs"]
        assert record["leaky_best_epoch"]["epoch"] == 1 + accuracies.index(max(accuracies))
        assert record["leak_check"]["test_predictions_used_for_choices"] is True
        leaky_true += record["test"]["y_true"]
        leaky_pred += record["leaky_best_epoch"]["y_pred"]
    assert results["leaky_best_epoch_accuracy"] == pytest.approx(np.mean(np.array(leaky_true) == np.array(leaky_pred)))
    assert results["leaky_best_epoch_accuracy"] >= results["accuracy"] - 1e-12  # chosen on the test set: never worse


# --------------------------------------------------------------------------------------
# Run folders
# --------------------------------------------------------------------------------------
def test_rerun_with_other_settings_is_refused(tiny_dataset, default_run):
    with pytest.raises(RunDirectoryError, match=r"schedule\.epochs: 2 in the folder, 3 now") as caught:
        run_loso(tiny_dataset, model_config=tiny_config_kwargs(), out_dir=default_run.out, progress=False,
                 save_fold_models=True, **schedule_args(epochs=3))
    assert isinstance(caught.value, FMANetError) and "another output folder" in str(caught.value)
    with pytest.raises(RunDirectoryError, match=r"model_config\.hidden_sizes"):
        run_loso(tiny_dataset, model_config=tiny_config_kwargs(hidden_sizes=[8, 8]), out_dir=default_run.out,
                 progress=False, save_fold_models=True, **schedule_args())
    other_data = make_prepared_dataset(subjects=4, per_subject=3, image_size=32, seed=2)
    with pytest.raises(RunDirectoryError, match=r"data\.digest"):
        run_loso(other_data, model_config=tiny_config_kwargs(), out_dir=default_run.out, progress=False,
                 save_fold_models=True, **schedule_args())


def test_rerun_of_a_finished_run_trains_nothing_and_repeats_results(tiny_dataset, default_run):
    observer = RecordingObserver()
    again = run_loso(tiny_dataset, model_config=tiny_config_kwargs(), out_dir=default_run.out, progress=False,
                     save_fold_models=True, observer=observer, **schedule_args())
    assert observer.folds_trained() == []
    assert again["folds_resumed"] == 4
    for key in ("accuracy", "uf1", "uar", "confusion_matrix", "per_fold", "by_dataset"):
        assert again[key] == default_run.results[key]


def test_bad_inputs_raise_clear_errors(tiny_dataset, tmp_path):
    with pytest.raises(FMANetError, match="image_size=32"):
        run_loso(tiny_dataset, model_config=tiny_config_kwargs(image_size=64), out_dir=tmp_path / "a", progress=False, **schedule_args())
    with pytest.raises(FMANetError, match="batch_size must be an integer >= 1"):
        run_loso(tiny_dataset, model_config=tiny_config_kwargs(), out_dir=tmp_path / "b", progress=False,
                 **schedule_args(batch_size=0))
    with pytest.raises(FMANetError, match="class_weighting"):
        run_loso(tiny_dataset, model_config=tiny_config_kwargs(), out_dir=tmp_path / "c", progress=False,
                 **schedule_args(class_weighting="inverse"))
    one_subject = tiny_dataset.filter(lambda row: row["subject"] == "s1")
    with pytest.raises(FMANetError, match="at least 2 subjects"):
        run_loso(one_subject, model_config=tiny_config_kwargs(), out_dir=tmp_path / "d", progress=False, **schedule_args())
    with pytest.raises(FMANetError, match="subject"):
        run_loso(tiny_dataset.remove_columns(["subject"]), model_config=tiny_config_kwargs(), out_dir=tmp_path / "e",
                 progress=False, **schedule_args())


def test_fold_file_names_are_safe_and_distinct():
    assert fold_file_stem("sub01") == "sub01"
    composite = fold_file_stem("casme2/sub01")
    assert "/" not in composite and composite.startswith("casme2_sub01-")
    assert fold_file_stem("casme2/sub01") != fold_file_stem("casme2_sub01")
    assert fold_seed(0, "s1") == fold_seed(0, "s1") != fold_seed(0, "s2") != fold_seed(1, "s2")


def test_final_model_and_balanced_weighting(tiny_dataset, tmp_path, capsys):
    from fmanet_hf import FMANetImageProcessor

    processor = FMANetImageProcessor(align_faces=False, flow_method="dis", size={"height": 32, "width": 32})
    out = tmp_path / "final"
    results = run_loso(
        tiny_dataset.select(range(9)),  # 3 subjects
        model_config=tiny_config_kwargs(), out_dir=out, progress=False, print_summary=True,
        train_final_model=True, processor=processor, **schedule_args(class_weighting="balanced"),
    )
    assert "POOLED (protocol)" in capsys.readouterr().out
    model = FMANetForImageClassification.from_pretrained(out / "final_model")
    assert model.config.id2label == dict(enumerate(CLASS_NAMES))
    saved = FMANetImageProcessor.from_pretrained(out / "final_model")
    assert saved.flow_method == "dis" and saved.size == {"height": 32, "width": 32}
    info = json.loads((out / "final_model" / "training_info.json").read_text())
    assert info["num_samples"] == 9 and info["subjects"] == ["s1", "s2", "s3"]
    assert results["final_model"]["num_samples"] == 9
    assert results["settings"]["schedule"]["class_weighting"] == "balanced"


# --------------------------------------------------------------------------------------
# Killed and resumed
# --------------------------------------------------------------------------------------
KILL_SETTINGS = dict(subjects=6, per_subject=3, epochs=2, seed=5)


def worker_command(out: Path, step_delay: float) -> list[str]:
    return [
        sys.executable, "-m", "tests.scripts.loso_worker", "--out", str(out), "--subjects", str(KILL_SETTINGS["subjects"]),
        "--per-subject", str(KILL_SETTINGS["per_subject"]), "--epochs", str(KILL_SETTINGS["epochs"]),
        "--seed", str(KILL_SETTINGS["seed"]), "--step-delay", str(step_delay),
    ]


def completed_fold_files(out: Path) -> list[str]:
    folder = out / "folds"
    return sorted(p.name for p in folder.glob("*.json") if not p.name.startswith(".")) if folder.is_dir() else []


def test_sigkill_then_rerun_gives_the_uninterrupted_results(tmp_path):
    interrupted = tmp_path / "interrupted"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(worker_command(interrupted, step_delay=0.05), env=env, cwd=REPO_ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 90
        while len(completed_fold_files(interrupted)) < 2:
            if process.poll() is not None:
                pytest.fail(f"worker exited early ({process.returncode}): {process.stderr.read().decode()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail("worker did not complete 2 folds in 90 s")
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL
    done_at_kill = completed_fold_files(interrupted)
    assert 2 <= len(done_at_kill) < KILL_SETTINGS["subjects"], "the kill must land mid-run"
    assert not (interrupted / "results.json").exists()
    mtimes = {name: (interrupted / "folds" / name).stat().st_mtime_ns for name in done_at_kill}

    # Rerun the same settings in this process (no delay): only unfinished folds train.
    from tests.scripts.loso_worker import run as run_worker

    observer = RecordingObserver()
    resumed = run_worker(interrupted, observer=observer, **KILL_SETTINGS)
    finished_before = {name[: -len(".json")] for name in done_at_kill}
    all_subjects = [f"s{k + 1}" for k in range(KILL_SETTINGS["subjects"])]
    assert observer.folds_trained() == [s for s in all_subjects if s not in finished_before]
    assert {name: (interrupted / "folds" / name).stat().st_mtime_ns for name in done_at_kill} == mtimes
    assert resumed["folds_resumed"] == len(done_at_kill)

    uninterrupted = tmp_path / "uninterrupted"
    reference = run_worker(uninterrupted, **KILL_SETTINGS)
    assert read_predictions(interrupted) == read_predictions(uninterrupted)
    for key in ("accuracy", "uf1", "uar", "confusion_matrix", "per_fold", "by_dataset"):
        assert resumed[key] == reference[key]
