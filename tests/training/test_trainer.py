"""Tests of the Trainer recipe (`fmanet_hf.training.trainer`): its class-weighted loss and `train_with_trainer`.

Batching is tested in test_collate.py, the schedule and class weights in test_schedule.py and the
``train`` / ``loso`` / ``ablate`` subcommands in tests/test_cli.py."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from tests.helpers.tiny import CLASS_NAMES, make_prepared_dataset, tiny_config_kwargs  # noqa: E402

from fmanet_hf import FMANetForImageClassification, FMANetImageProcessor  # noqa: E402
from fmanet_hf.errors import FMANetConfigError  # noqa: E402
from fmanet_hf.training.engine import class_weights_for  # noqa: E402
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


def test_train_with_trainer_passes_bf16_to_the_trainer_which_autocasts_the_convolutions(dataset, tmp_path):
    """``fmanet-hf train --bf16`` becomes ``training_args={"bf16": True}``: the Trainer then runs the
    forward pass under bfloat16 autocast, and the saved weights stay float32."""
    from fmanet_hf.training.precision import precision_obstacle

    if precision_obstacle("bf16", "cpu") is not None:
        pytest.skip("this CPU has no bfloat16 kernels")
    seen = []

    def hook(module, inputs, output):
        if isinstance(module, torch.nn.Conv2d) and module.training:
            seen.append(output.dtype)

    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    try:
        run = train_with_trainer(
            dataset, None, model_config=tiny_config_kwargs(), output_dir=tmp_path / "model", epochs=1, batch_size=4,
            learning_rate=1e-2, seed=0, progress=False, use_cpu=True, training_args={"bf16": True},
        )
    finally:
        handle.remove()
    assert run.trainer.args.bf16 is True
    assert seen and set(seen) == {torch.bfloat16}
    saved = FMANetForImageClassification.from_pretrained(tmp_path / "model")
    assert all(p.dtype == torch.float32 for p in saved.parameters())
