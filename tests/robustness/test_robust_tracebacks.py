"""Raw tracebacks (issue 14, class 4): inputs that used to end in a torch, transformers or OS
traceback now get one `FMANetError` (one line and exit status 2 in the CLI), or are handled.
"""

from __future__ import annotations

import errno
import json

import numpy as np
import pytest
import torch
from PIL import Image

from fmanet_hf import FMANetConfig, FMANetForImageClassification, FMANetImageProcessor
from fmanet_hf.cli import main as cli_main
from fmanet_hf.errors import CheckpointError, FMANetConfigError, FMANetInputError
from tests.helpers.tiny import make_prepared_dataset, tiny_model, tiny_pixel_values


def one_line_cli_error(argv, capsys) -> tuple[str, str]:
    """(stdout, stderr) of a CLI run that must fail with one line and status 2."""
    with_exit = None
    try:
        status = cli_main(argv)
    except SystemExit as exit_info:  # argparse
        status, with_exit = exit_info.code, True
    assert status == 2, (status, with_exit)
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and captured.err.startswith("error: ") and "Traceback" not in captured.err, captured.err
    return captured.out, captured.err


# ----------------------------------------------------------------------------- train
def test_train_with_every_subject_held_out(tmp_path, monkeypatch, capsys):
    import fmanet_hf.commands.inputs as inputs

    dataset = make_prepared_dataset(subjects=2, per_subject=2, image_size=32)
    monkeypatch.setattr(inputs, "prepare_from_args", lambda args, accelerator: (dataset, None))
    _, err = one_line_cli_error(
        ["train", "--root", str(tmp_path / "data"), "--out", str(tmp_path / "out"), "--eval-subjects", "s1,s2", "--cpu"], capsys
    )
    assert "--eval-subjects holds every subject of the dataset (2), so none is left to train on" in err
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- predict --figure
@pytest.fixture
def model_folder(tmp_path):
    """A tiny saved model whose processor needs no face (frames are random texture)."""
    folder = tmp_path / "model"
    tiny_model().save_pretrained(folder)
    FMANetImageProcessor(align_faces=False, flow_method="dis", size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


@pytest.fixture
def frame_files(tmp_path, textured_gray):
    paths = []
    for name, shift in (("onset", 0), ("apex", 2), ("offset", 1)):
        path = tmp_path / f"{name}.png"
        Image.fromarray(np.roll(textured_gray, shift, axis=1)).save(path)
        paths.append(str(path))
    return paths


def test_predict_figure_pointing_at_a_folder_is_refused_before_the_work(model_folder, frame_files, tmp_path, capsys):
    _, err = one_line_cli_error(["predict", *frame_files, "--model", str(model_folder), "--figure", str(tmp_path)], capsys)
    assert f"--figure '{tmp_path}' is a folder; give a PNG file name, e.g. '{tmp_path / 'prediction.png'}'" in err


def test_predict_figure_under_a_file_is_refused(model_folder, frame_files, tmp_path, capsys):
    (tmp_path / "note.txt").write_text("a file")
    _, err = one_line_cli_error(["predict", *frame_files, "--model", str(model_folder), "--figure", str(tmp_path / "note.txt" / "why.png")], capsys)
    assert f"the folder of --figure {str(tmp_path / 'note.txt')!r} is a file; it must be a folder" in err


def test_a_figure_that_cannot_be_written_keeps_the_predictions(model_folder, frame_files, tmp_path, monkeypatch, capsys):
    import fmanet_hf.visualization as visualization

    def disk_full(path, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(visualization, "save_prediction_figure", disk_full)
    out, err = one_line_cli_error(
        ["predict", *frame_files, "--model", str(model_folder), "--figure", str(tmp_path / "why.png"), "--json"], capsys
    )
    payload = json.loads(out)  # the predictions were printed first
    (result,) = payload["results"]
    assert sum(result["scores"].values()) == pytest.approx(1.0, abs=1e-6) and payload["figures"] == []
    assert "No space left on device" in err and "the predictions above are complete" in err


# ----------------------------------------------------------------------------- --cache-dir
@pytest.mark.parametrize("command", [["prepare"], ["baseline"], ["loso", "--out", "OUT"], ["predict", "--example"], ["demo"]])
@pytest.mark.parametrize("where", ["file", "under-file", "empty"])
def test_cache_dir_that_cannot_be_a_folder(command, where, tmp_path, capsys):
    blocker = tmp_path / "cache.txt"
    blocker.write_text("not a folder")
    value = {"file": str(blocker), "under-file": str(blocker / "sub"), "empty": ""}[where]
    argv = [str(tmp_path / "out") if part == "OUT" else part for part in command]
    _, err = one_line_cli_error([*argv, "--cache-dir", value], capsys)
    words = {"file": "is a file; it must be a folder", "under-file": "which is a file; it must be a folder", "empty": "is empty"}[where]
    assert "argument --cache-dir" in err and words in err


@pytest.mark.parametrize("where", ["missing", "not-json", "no-config"])
def test_a_processor_flag_that_is_not_a_processor(where, tmp_path, capsys):
    path = {"missing": tmp_path / "none", "not-json": tmp_path / "notes.txt", "no-config": tmp_path / "empty"}[where]
    if where == "not-json":
        path.write_text("not json")
    if where == "no-config":
        path.mkdir()
    _, err = one_line_cli_error(["prepare", "--root", str(tmp_path / "data"), "--processor", str(path)], capsys)
    words = {"missing": "does not exist", "not-json": "cannot be read", "no-config": "has no preprocessor_config.json"}[where]
    assert f"--processor {str(path)!r} {words}" in err


# ----------------------------------------------------------------------------- export names
@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--model-name", ""], "--model-name is empty"),
        (["--model-name", "  "], "--model-name is empty"),
        (["--repo-id", "someone/"], "--repo-id must look like 'user/name', got 'someone/'"),
        (["--repo-id", ""], "--repo-id must look like 'user/name', got ''"),
    ],
)
def test_an_empty_export_name(flags, words, tmp_path, capsys):
    _, err = one_line_cli_error(["export", str(tmp_path / "run"), str(tmp_path / "out"), *flags], capsys)
    assert words in err
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- class labels
@pytest.mark.parametrize(
    ("labels", "words"),
    [
        ({"id2label": {"1": "a", "2": "b", "3": "c"}}, "id2label keys must be the class ids 0..2"),
        ({"id2label": {"0": "a", "2": "b"}}, "id2label keys must be the class ids 0..1"),
        ({"id2label": {"zero": "a"}}, "id2label keys must be the class ids 0..0"),
        ({"id2label": {"0": "happy", "1": "happy"}}, "['happy'] name several classes"),
        ({"id2label": {"0": "a", "1": ""}}, "names must be non-empty"),
        ({"id2label": {"0": "a", "1": "b"}, "label2id": {"a": 1, "b": 0}}, "does not invert id2label"),
    ],
    ids=["ids-from-1", "gap", "not-a-number", "repeated-name", "empty-name", "label2id-disagrees"],
)
def test_a_config_whose_classes_cannot_be_told_apart_is_refused_at_load(labels, words, tmp_path):
    with pytest.raises(FMANetConfigError, match="Invalid FMANetConfig") as python_error:
        FMANetConfig(**labels)
    assert words in str(python_error.value)
    tiny_model().save_pretrained(tmp_path)
    values = json.loads((tmp_path / "config.json").read_text())
    values.update(labels)
    values.pop("label2id") if "label2id" not in labels else None
    (tmp_path / "config.json").write_text(json.dumps(values))
    with pytest.raises(FMANetConfigError) as load_error:
        FMANetForImageClassification.from_pretrained(tmp_path, use_safetensors=True)
    assert words in str(load_error.value)


def test_label_ids_written_as_json_strings_are_fine():
    config = FMANetConfig(id2label={"0": "neg", "1": "pos"}, label2id={"neg": "0", "pos": 1})
    assert config.id2label == {0: "neg", 1: "pos"} and config.num_labels == 2


# ----------------------------------------------------------------------------- return_tensors
@pytest.mark.parametrize(("value", "hint"), [("tf", ""), ("jax", ""), ("mlx", ""), ("torch", "torch is spelt 'pt'"), ("numpy", "numpy is spelt 'np'"), (5, "")])
def test_return_tensors_values_the_processor_cannot_give(fast_processor, textured_gray, value, hint):
    with pytest.raises(FMANetConfigError, match="is not supported; use 'pt'") as error:
        fast_processor(textured_gray, textured_gray, textured_gray, return_tensors=value)
    assert hint in str(error.value)


def test_return_tensors_values_it_can_give(fast_processor, textured_gray):
    from transformers.utils import TensorType

    assert isinstance(fast_processor(textured_gray, textured_gray, textured_gray, return_tensors=TensorType.PYTORCH)["pixel_values"], torch.Tensor)
    assert isinstance(fast_processor(textured_gray, textured_gray, textured_gray, return_tensors="np")["pixel_values"], np.ndarray)


# ----------------------------------------------------------------------------- the model's forward
def test_float64_and_half_inputs_give_the_float32_result():
    model = tiny_model()
    pixels = tiny_pixel_values(model.config)
    with torch.no_grad():
        reference = model(pixel_values=pixels).logits
        assert torch.equal(model(pixel_values=pixels.double()).logits, reference)  # float32 values, exactly
        half = pixels.half()
        assert torch.equal(model(pixel_values=half).logits, model(pixel_values=half.float()).logits)  # cast up, not refused


@pytest.mark.parametrize(
    ("pixels", "words"),
    [
        (lambda x: x.numpy(), "must be a torch.Tensor, got ndarray"),
        (lambda x: (x * 100).to(torch.int32), "must be floating point"),
        (lambda x: x.bool(), "must be floating point"),
    ],
    ids=["numpy", "int32", "bool"],
)
def test_pixel_values_the_model_cannot_use(pixels, words):
    model = tiny_model()
    with pytest.raises(FMANetInputError, match=words):
        model(pixel_values=pixels(tiny_pixel_values(model.config)))


@pytest.mark.parametrize(
    ("labels", "words"),
    [
        ([0, 1, 3], r"class ids in \[0, 2\] .* got \[3\]"),
        ([0, -1, 1], r"got \[-1\]"),
        ([0, 1], "holds 2 values for a batch of 3"),
        ([0.0, 0.5, 1.0], "fractional"),
    ],
    ids=["too-large", "negative", "too-few", "fractional"],
)
def test_labels_outside_the_models_classes(labels, words):
    model = tiny_model()
    with pytest.raises(FMANetInputError, match=words):
        model(pixel_values=tiny_pixel_values(model.config), labels=torch.tensor(labels))


def test_whole_float_labels_give_the_integer_loss():
    model = tiny_model()
    pixels = tiny_pixel_values(model.config)
    with torch.no_grad():
        logits = model(pixel_values=pixels).logits
        loss = model(pixel_values=pixels, labels=torch.tensor([0.0, 2.0, 1.0])).loss
    expected = -torch.log_softmax(logits, -1)[torch.arange(3), torch.tensor([0, 2, 1])].mean()
    assert loss.item() == pytest.approx(expected.item(), abs=1e-6)


def test_export_names_are_checked_in_python_too(tmp_path):
    from fmanet_hf.hub.export import export_run

    with pytest.raises(CheckpointError, match="--model-name is empty"):
        export_run(tmp_path / "run", tmp_path / "out", model_name="")
