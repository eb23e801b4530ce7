"""Training that would silently degrade: a diverging fold stops the run naming the fold, NaN
probabilities are never pooled, and a failed head-motion stabilisation says so."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from tests.helpers.tiny import make_prepared_dataset, tiny_config_kwargs

from fmanet_hf import FMANetImageProcessor
from fmanet_hf.errors import StabilizationWarning, TrainingDivergedError


class NaNWhenEvaluating(torch.nn.Module):
    """A tiny FMANet that trains normally but predicts NaN logits in eval mode: what a model
    whose weights overflowed at the end of training gives."""

    def __init__(self, config):
        super().__init__()
        from fmanet_hf.training.model_config import default_model_factory

        self.inner = default_model_factory(config)

    def forward(self, pixel_values, **kwargs):
        output = self.inner(pixel_values=pixel_values, **kwargs)
        if not self.training:
            output.logits = output.logits * float("nan")
        return output


def run_tiny_loso(dataset, out_dir, learning_rate=3e-3, model_factory=None):
    from accelerate import Accelerator

    from fmanet_hf.training.loso import run_loso
    from fmanet_hf.training.schedule import TrainingSchedule

    return run_loso(
        dataset,
        model_config=tiny_config_kwargs(16),
        out_dir=out_dir,
        schedule=TrainingSchedule(epochs=2, batch_size=4, learning_rate=learning_rate),
        progress=False,
        model_factory=model_factory,
        accelerator=Accelerator(cpu=True),
    )


def tiny_dataset():
    return make_prepared_dataset(subjects=3, per_subject=3, image_size=16, seed=2)


def test_a_fold_whose_loss_diverges_stops_the_run_naming_the_fold(tmp_path):
    # A learning rate of 1e30 overflows the weights in the first fold (s1) at once.
    with pytest.raises(TrainingDivergedError, match=r"Training fold 's1' \(test subject s1\) diverged: its loss was nan in epoch 1 of 2.*--lr, now 1e\+30"):
        run_tiny_loso(tiny_dataset(), tmp_path / "run", learning_rate=1e30)
    assert not (tmp_path / "run" / "results.json").exists()
    assert not (tmp_path / "run" / "folds" / "s1.json").exists()


def test_nan_test_probabilities_are_never_pooled(tmp_path):
    with pytest.raises(TrainingDivergedError, match=r"fold 's1'.*NaN or infinite probabilities for 3 of 3 test samples; they are not pooled"):
        run_tiny_loso(tiny_dataset(), tmp_path / "run", model_factory=NaNWhenEvaluating)
    assert not (tmp_path / "run" / "results.json").exists()


def test_a_nan_fold_record_on_disk_is_not_pooled_on_resume(tmp_path):
    out = tmp_path / "run"
    dataset = tiny_dataset()
    run_tiny_loso(dataset, out)
    record_path = out / "folds" / "s2.json"
    record = json.loads(record_path.read_text())
    record["test"]["probabilities"][0] = [float("nan")] * len(record["test"]["probabilities"][0])
    record_path.write_text(json.dumps(record))  # json writes NaN as the bare word NaN
    (out / "results.json").unlink()
    with pytest.raises(TrainingDivergedError, match="fold 's2'.*not pooled"):
        run_tiny_loso(dataset, out)


def test_cli_train_that_diverges_is_one_line_and_saves_nothing(tmp_path, capsys, monkeypatch):
    from fmanet_hf.cli import main as cli_main
    from fmanet_hf.commands import inputs

    processor = FMANetImageProcessor(align_faces=False, flow_method="dis", size={"height": 16, "width": 16})
    monkeypatch.setattr(inputs, "prepare_from_args", lambda args, accelerator: (tiny_dataset(), processor))
    options = ["--epochs", "1", "--batch-size", "4", "--lr", "1e30", "--quiet"]
    for key, value in tiny_config_kwargs(16).items():
        options += ["--set", f"{key}={json.dumps(value)}"]
    status = cli_main(["train", "--out", str(tmp_path / "model"), *options])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and "Training diverged" in err[-1] and "nothing was saved" in err[-1]
    assert not (tmp_path / "model" / "model.safetensors").exists()
    capsys.readouterr()
    status = cli_main(["loso", "--out", str(tmp_path / "run"), *options])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and err[0].startswith("error: Training fold 's1'"), err


def test_bf16_on_a_cpu_without_bfloat16_kernels_is_one_line_before_any_data_is_read(tmp_path, capsys, monkeypatch):
    from fmanet_hf.cli import main as cli_main
    from fmanet_hf.commands import inputs
    from fmanet_hf.training import precision

    monkeypatch.setattr(precision, "_cpu_has_fast_bfloat16", lambda: False)
    monkeypatch.setattr(inputs, "prepare_from_args", lambda args, accelerator: pytest.fail("the data was read"))
    for command in ("loso", "ablate", "pretrain"):
        status = cli_main([command, "--out", str(tmp_path / command), "--device", "cpu", "--precision", "bf16", "--quiet"])
        err = capsys.readouterr().err.strip().splitlines()
        assert status == 2 and len(err) == 1, (command, err)
        assert "--precision bf16 cannot train here: this CPU has no bfloat16 kernels" in err[0] and "--precision fp32" in err[0]
        assert not (tmp_path / command).exists()


# ----------------------------------------------------------------------------- head-motion stabilisation
def textured(shift: int = 0) -> np.ndarray:
    y, x = np.mgrid[0:64, 0:64].astype(np.float64)
    return np.clip(128 + 60 * np.sin((x + shift) / 5.0) * np.cos(y / 7.0), 0, 255).astype(np.uint8)


def caught_warnings(function, *args):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = function(*args)
    return result, [w for w in caught if issubclass(w.category, StabilizationWarning)]


def test_ecc_that_does_not_converge_is_reported(fast_processor):
    # A featureless apex: ECC's iterations diverge; the frame is used without stabilisation.
    processor = FMANetImageProcessor(align_faces=False, crop_size=None, flow_method="dis", size={"height": 16, "width": 16})
    flat = np.full((64, 64), 128, np.uint8)
    _, caught = caught_warnings(processor.process_triplet, textured(), flat, textured())
    assert len(caught) == 1 and "Head-motion stabilisation failed: ECC did not converge" in str(caught[0].message)
    assert "ecc.cpp" not in str(caught[0].message)  # OpenCV's source path is not the user's business
    _, caught = caught_warnings(processor.process_triplet, textured(), textured(1), textured(2))
    assert caught == []


@pytest.mark.parametrize("warp, words", [(np.full((2, 3), np.nan, np.float32), "non-finite"), (np.zeros((2, 3), np.float32), "singular")])
def test_a_non_finite_or_singular_ecc_estimate_is_reported(warp, words, monkeypatch):
    import cv2

    from fmanet_hf import face

    monkeypatch.setattr(face.cv2, "findTransformECC", lambda *args: (1.0, warp.copy()))
    onset = np.eye(2, 3)
    result, caught = caught_warnings(
        face.stabilize_to_reference, textured().astype(np.float32), textured(1).astype(np.float32), onset, "euclidean"
    )
    np.testing.assert_array_equal(result, onset)  # the onset transform, unchanged
    assert len(caught) == 1 and words in str(caught[0].message)
    assert cv2 is face.cv2


def test_the_pipeline_result_says_stabilisation_failed():
    from fmanet_hf.pipeline import TASK, MicroExpressionRecognitionPipeline

    from tests.helpers.tiny import tiny_model

    processor = FMANetImageProcessor(align_faces=False, crop_size=None, flow_method="dis", size={"height": 32, "width": 32})
    classify = MicroExpressionRecognitionPipeline(model=tiny_model(image_size=32).eval(), image_processor=processor, task=TASK, device="cpu")
    with pytest.warns(StabilizationWarning):
        result = classify((textured(), np.full((64, 64), 128, np.uint8), textured()))
    assert any("Head-motion stabilisation failed" in note for note in result.warnings)
