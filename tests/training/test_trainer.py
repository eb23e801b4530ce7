"""Tests of the Trainer recipe, batching, schedules, class weighting, the ablation table and the
``train`` / ``loso`` / ``ablate`` subcommands."""

from __future__ import annotations

import argparse
import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from tests.helpers.tiny import CLASS_NAMES, make_prepared_dataset, tiny_config_kwargs  # noqa: E402

from fmanet_hf import ABLATIONS, FMANetForImageClassification, FMANetImageProcessor  # noqa: E402
from fmanet_hf.errors import DatasetError, FMANetConfigError, FMANetError  # noqa: E402
from fmanet_hf.training import commands  # noqa: E402
from fmanet_hf.training.collate import (  # noqa: E402
    FMANetDataCollator,
    PreparedTensors,
    class_names_of,
    collate_prepared_batch,
)
from fmanet_hf.training.loso import TrainingSchedule, class_weights_for  # noqa: E402
from fmanet_hf.training.trainer import FMANetTrainer, train_with_trainer  # noqa: E402


def macro_scores(y_true, y_pred, num_classes):
    """Accuracy, UF1 and UAR written out independently of fmanet_hf.training.metrics."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    f1s, recalls = [], []
    for c in range(num_classes):
        tp = np.sum((y_true == c) & (y_pred == c))
        fp = np.sum((y_true != c) & (y_pred == c))
        fn = np.sum((y_true == c) & (y_pred != c))
        if 2 * tp + fp + fn:
            f1s.append(2 * tp / (2 * tp + fp + fn))
        if tp + fn:
            recalls.append(tp / (tp + fn))
    return float(np.mean(y_true == y_pred)), float(np.mean(f1s)), float(np.mean(recalls))


@pytest.fixture(scope="module")
def dataset():
    return make_prepared_dataset(subjects=4, per_subject=4, image_size=32, seed=3)


# --------------------------------------------------------------------------------------
# Batching
# --------------------------------------------------------------------------------------
def test_collator_keeps_model_inputs_only(dataset):
    rows = [dataset[i] for i in range(3)]
    batch = FMANetDataCollator()(rows)
    assert set(batch) == {"pixel_values", "labels"}
    assert batch["pixel_values"].shape == (3, 6, 32, 32) and batch["pixel_values"].dtype == torch.float32
    assert batch["labels"].dtype == torch.int64
    assert batch["labels"].tolist() == [int(r["label_id"]) for r in rows]
    from_lists = collate_prepared_batch([{"pixel_values": np.zeros((6, 8, 8)).tolist(), "labels": 2}])
    assert from_lists["pixel_values"].shape == (1, 6, 8, 8) and from_lists["labels"].tolist() == [2]
    assert "labels" not in collate_prepared_batch([{"pixel_values": np.zeros((6, 8, 8))}])
    with pytest.raises(DatasetError, match="empty batch"):
        collate_prepared_batch([])
    with pytest.raises(DatasetError, match="some rows"):
        collate_prepared_batch([{"pixel_values": np.zeros((6, 8, 8)), "labels": 1}, {"pixel_values": np.zeros((6, 8, 8))}])


def test_prepared_tensors_and_class_names(dataset):
    data = PreparedTensors.from_prepared(dataset)
    assert data.pixel_values.shape == (16, 6, 32, 32) and data.image_size == (32, 32)
    assert data.class_names == CLASS_NAMES
    assert data.subjects[:4] == ["s1"] * 4 and data.sample_ids[0] == "toy/s1/clip00" and data.datasets[0] == "toy"
    assert torch.equal(data.pixel_values[5], dataset[5]["pixel_values"])
    assert data.digest() == PreparedTensors.from_prepared(dataset).digest()
    assert data.digest() != PreparedTensors.from_prepared(make_prepared_dataset(subjects=4, per_subject=4, seed=4)).digest()
    # Without a ClassLabel feature the names come from the label column.
    plain = dataset.cast_column("label_id", __import__("datasets").Value("int64"))
    assert class_names_of(plain) == CLASS_NAMES
    assert class_names_of(plain.remove_columns(["label"])) == ["0", "1", "2"]
    with pytest.raises(DatasetError, match="class names"):
        class_names_of(dataset, class_names=["a", "b"])
    with pytest.raises(DatasetError, match="label_id"):
        class_names_of(dataset.remove_columns(["label_id"]))


# --------------------------------------------------------------------------------------
# Schedule and class weights
# --------------------------------------------------------------------------------------
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


def test_trainer_loss_is_the_class_weighted_mean_cross_entropy():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0], [-1.0, 1.0, 3.0], [0.0, 0.0, 0.0]])
    labels = torch.tensor([0, 1, 2, 0])
    weights = [0.5, 2.0, 1.0]

    class FixedLogits(torch.nn.Module):
        def forward(self, pixel_values):
            return SimpleNamespace(logits=logits)

    trainer = SimpleNamespace(class_weights=torch.tensor(weights))
    loss = FMANetTrainer.compute_loss(trainer, FixedLogits(), {"pixel_values": torch.zeros(4, 6, 8, 8), "labels": labels})
    log_probabilities = logits.numpy() - np.log(np.exp(logits.numpy()).sum(axis=1, keepdims=True))
    per_sample = -log_probabilities[np.arange(4), labels.numpy()]
    sample_weights = np.array(weights)[labels.numpy()]
    assert float(loss) == pytest.approx(float((sample_weights * per_sample).sum() / sample_weights.sum()), rel=1e-6)
    trainer.class_weights = None
    assert float(FMANetTrainer.compute_loss(trainer, FixedLogits(), {"pixel_values": None, "labels": labels})) == pytest.approx(
        float(per_sample.mean()), rel=1e-6
    )


# --------------------------------------------------------------------------------------
# Trainer recipe
# --------------------------------------------------------------------------------------
def test_train_with_trainer_reports_scores_of_its_own_predictions(dataset, tmp_path):
    train = dataset.filter(lambda row: row["subject"] != "s4")
    held_out = dataset.filter(lambda row: row["subject"] == "s4")
    processor = FMANetImageProcessor(align_faces=False, flow_method="dis", size={"height": 32, "width": 32})
    run = train_with_trainer(
        train, held_out, model_config=tiny_config_kwargs(), output_dir=tmp_path / "model", epochs=2, batch_size=4,
        learning_rate=1e-2, seed=0, class_weighting="balanced", report_to="none", processor=processor, progress=False,
    )
    assert {"eval_accuracy", "eval_uf1", "eval_uar", "eval_loss"} <= set(run.eval_metrics)
    assert run.train_metrics["epoch"] == pytest.approx(2.0)
    assert run.class_weights == pytest.approx(class_weights_for(train[:]["label_id"], 3, "balanced").tolist())
    # The reported scores are those of the final model's predictions, recomputed by hand.
    saved = FMANetForImageClassification.from_pretrained(tmp_path / "model").eval()
    with torch.no_grad():
        predicted = saved(pixel_values=held_out[:]["pixel_values"]).logits.argmax(-1).numpy()
    accuracy, uf1, uar = macro_scores(held_out[:]["label_id"].numpy(), predicted, 3)
    assert run.eval_metrics["eval_accuracy"] == pytest.approx(accuracy)
    assert run.eval_metrics["eval_uf1"] == pytest.approx(uf1)
    assert run.eval_metrics["eval_uar"] == pytest.approx(uar)
    assert saved.config.id2label == dict(enumerate(CLASS_NAMES)) and saved.config.image_size == 32
    assert FMANetImageProcessor.from_pretrained(tmp_path / "model").flow_method == "dis"
    # Same seed, same model.
    again = train_with_trainer(
        train, held_out, model_config=tiny_config_kwargs(), output_dir=tmp_path / "again", epochs=2, batch_size=4,
        learning_rate=1e-2, seed=0, class_weighting="balanced", progress=False, save_model=False,
    )
    assert again.eval_metrics["eval_loss"] == pytest.approx(run.eval_metrics["eval_loss"], abs=1e-6)


def test_train_with_trainer_rejects_removed_and_unknown_settings(dataset, tmp_path):
    # transformers 5 removed evaluation_strategy: passing it must fail loudly, not be ignored.
    with pytest.raises(TypeError):
        train_with_trainer(dataset, None, model_config=tiny_config_kwargs(), output_dir=tmp_path, epochs=1, batch_size=4,
                           learning_rate=1e-2, training_args={"evaluation_strategy": "epoch"}, progress=False)
    with pytest.raises(FMANetConfigError, match="class_weighting"):
        train_with_trainer(dataset, None, model_config=tiny_config_kwargs(), output_dir=tmp_path, epochs=1, batch_size=4,
                           learning_rate=1e-2, class_weighting="inverse")
    with pytest.raises(FMANetConfigError, match="image_size=32"):
        train_with_trainer(dataset, None, model_config=tiny_config_kwargs(image_size=64), output_dir=tmp_path, epochs=1,
                           batch_size=4, learning_rate=1e-2)


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------
def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fmanet-hf")
    registered = commands.register_training_commands(parser.add_subparsers(dest="command", required=True))
    assert set(registered) == {"train", "loso", "ablate"}
    return parser


def test_model_config_options():
    parser = make_parser()
    args = parser.parse_args(
        ["loso", "--out", "x", "--ablation", "no_attention", "--set", "hidden_sizes=[8,16]", "--set", "hidden_act=relu"]
    )
    assert commands.model_config_from_args(args) == {"use_motion_attention": False, "hidden_sizes": [8, 16], "hidden_act": "relu"}
    with pytest.raises(SystemExit):
        parser.parse_args(["loso", "--out", "x", "--set", "no-equals-sign"])
    with pytest.raises(FMANetConfigError, match="unknown"):
        commands.model_config_from_args(parser.parse_args(["loso", "--out", "x", "--ablation", "no_trunk"]))


@pytest.fixture
def tiny_cli_data(monkeypatch, dataset):
    """Let the commands run on the tiny dataset instead of loading and preparing a real one."""
    small = dataset.filter(lambda row: row["subject"] != "s4")  # 3 subjects
    processor = FMANetImageProcessor(align_faces=False, flow_method="dis", size={"height": 32, "width": 32})
    calls = []

    def fake_prepare(args, accelerator):
        calls.append((args.dataset, args.root))
        return small, processor

    monkeypatch.setattr(commands, "prepare_from_args", fake_prepare)
    return SimpleNamespace(dataset=small, calls=calls)


def tiny_cli_options() -> list[str]:
    options = ["--epochs", "1", "--batch-size", "4", "--lr", "0.01", "--quiet"]
    for key, value in tiny_config_kwargs().items():
        options += ["--set", f"{key}={json.dumps(value)}"]
    return options


def test_loso_command(tiny_cli_data, tmp_path, capsys):
    out = tmp_path / "loso"
    args = make_parser().parse_args(["loso", "--dataset", "synthme", "--root", "somewhere", "--out", str(out),
                                     "--train-final-model", "--record-leaky-best-epoch", *tiny_cli_options()])
    assert args.handler(args) == 0
    assert tiny_cli_data.calls == [("synthme", "somewhere")]
    results = json.loads((out / "results.json").read_text())
    assert results["num_folds"] == 3 and "leaky_best_epoch_uf1" in results
    assert results["settings"]["schedule"]["epochs"] == 1
    assert (out / "final_model" / "preprocessor_config.json").is_file()
    assert capsys.readouterr().out == ""  # --quiet


def test_ablate_command_writes_one_table_with_deltas_vs_full(tiny_cli_data, tmp_path, capsys):
    out = tmp_path / "ablation"
    args = make_parser().parse_args(["ablate", "--out", str(out), *tiny_cli_options()])
    assert args.handler(args) == 0
    table = json.loads((out / "ablation.json").read_text())
    assert [row["ablation"] for row in table["rows"]] == list(ABLATIONS)
    per_variant = {name: json.loads((out / name / "results.json").read_text()) for name in ABLATIONS}
    for row in table["rows"]:
        variant = per_variant[row["ablation"]]
        for metric in ("accuracy", "uf1", "uar"):
            assert row[metric] == variant[metric]
            assert row[f"delta_{metric}"] == pytest.approx(variant[metric] - per_variant["full"][metric])
        # The variant really ran with its switch.
        model_config = variant["settings"]["model_config"]
        for key, value in ABLATIONS[row["ablation"]].items():
            assert model_config[key] == value
    markdown = (out / "ablation.md").read_text()
    assert markdown.count("\n| ") == 1 + len(ABLATIONS)  # header row + one per variant
    assert "| single_phase |" in markdown and "Δ UF1" in markdown
    assert markdown in capsys.readouterr().out


def test_train_command_with_held_out_subjects(tiny_cli_data, tmp_path, capsys):
    out = tmp_path / "model"
    args = make_parser().parse_args(["train", "--out", str(out), "--eval-subjects", "s3", *tiny_cli_options()])
    assert args.handler(args) == 0
    assert "not LOSO" in capsys.readouterr().out
    assert (out / "model.safetensors").is_file() and (out / "preprocessor_config.json").is_file()
    bad = make_parser().parse_args(["train", "--out", str(out), "--eval-subjects", "s9", *tiny_cli_options()])
    with pytest.raises(FMANetError, match="s9"):
        bad.handler(bad)


@pytest.mark.slow
def test_loso_command_end_to_end_on_synthme(tmp_path):
    """Real frames: SynthME (3 subjects x 3 classes) -> DIS flow -> cache -> LOSO -> final model."""
    from fmanet_hf.data.synthetic import generate_synthme
    from fmanet_hf.training.loso import find_prepared_processor

    root = tmp_path / "synthme"
    generate_synthme(root, subjects=3, samples_per_class=1, seed=0, progress=False)
    out = tmp_path / "run"
    argv = ["loso", "--dataset", "synthme", "--root", str(root), "--out", str(out), "--cache-dir", str(tmp_path / "cache"),
            "--flow-method", "dis", "--size", "32", "--num-proc", "1", "--train-final-model", *tiny_cli_options()]
    args = make_parser().parse_args(argv)
    assert args.handler(args) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["num_samples"] == 9 and results["num_folds"] == 3
    assert results["class_names"] == ["negative", "positive", "surprise"]
    lines = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert sorted(line["subject"] for line in lines) == sorted(["sub01", "sub02", "sub03"] * 3)
    assert all(line["sample_id"].startswith("synthme/") for line in lines)
    saved = FMANetImageProcessor.from_pretrained(out / "final_model")
    assert saved.flow_method == "dis" and saved.size == {"height": 32, "width": 32}
    # The second run finds the cached inputs and the finished folds; nothing is recomputed.
    args = make_parser().parse_args(argv)
    assert args.handler(args) == 0
    assert json.loads((out / "results.json").read_text())["folds_resumed"] == 3
    # The processor a cached dataset was prepared with can be recovered from the cache alone.
    from fmanet_hf.data.prepare import prepare_dataset
    from fmanet_hf.cli import load_dataset_by_name

    prepared = prepare_dataset(load_dataset_by_name("synthme", str(root), None), saved, tmp_path / "cache" / "prepared", progress=False)
    assert find_prepared_processor(prepared).output_settings() == saved.output_settings()
