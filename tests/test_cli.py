"""Tests of the `fmanet-hf` command (`fmanet_hf.cli` and the subcommands it registers): synth, prepare,
predict, the shared flow flags, and the training commands train / loso / ablate on a tiny dataset.

`predict --figure` end to end is in test_visualization.py, `export` in tests/hub/test_export.py and
`demo` in tests/demo/test_app.py.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.helpers.tiny import make_prepared_dataset, tiny_config_kwargs

from fmanet_hf import ABLATIONS, FMANetImageProcessor
from fmanet_hf.cli import main as cli_main
from fmanet_hf.errors import FMANetConfigError, FMANetError
from fmanet_hf.cli import register_training_commands
from fmanet_hf.commands import inputs as commands


@pytest.fixture(scope="module")
def dataset():
    return make_prepared_dataset(subjects=4, per_subject=4, image_size=32, seed=3)


def test_cli_synth_prepare_and_second_prepare_uses_the_cache(tmp_path, capsys):
    root = tmp_path / "synthme"
    cache = tmp_path / "cache"
    assert cli_main(["synth", "--out", str(root), "--subjects", "1", "--samples-per-class", "1", "--frames-per-clip", "5", "--quiet"]) == 0
    assert "3 clips" in capsys.readouterr().out
    args = ["prepare", "--dataset", "synthme", "--root", str(root), "--flow-method", "dis", "--num-proc", "1", "--cache-dir", str(cache), "--quiet"]
    assert cli_main(args) == 0
    first = capsys.readouterr().out
    assert "3 samples of synthme prepared" in first
    assert cli_main(args) == 0
    second = capsys.readouterr().out
    # Same cache entry both times.
    assert first.split("cache: ")[1] == second.split("cache: ")[1]


def test_cli_prepare_on_face_missing_skip_names_the_skipped_clip(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    root = tmp_path / "synthme"
    assert cli_main(["synth", "--out", str(root), "--subjects", "1", "--samples-per-class", "1", "--frames-per-clip", "5", "--quiet"]) == 0
    capsys.readouterr()
    # Blank the first frame (the onset, where the face is detected) of one clip.
    clip = sorted(path for path in root.rglob("*") if path.is_dir() and any(path.glob("*.jpg")))[0]
    onset = sorted(clip.glob("*.jpg"), key=lambda path: int("".join(filter(str.isdigit, path.stem))))[0]
    size = Image.open(onset).size
    Image.fromarray(np.full((size[1], size[0], 3), 128, np.uint8)).save(onset)
    args = ["prepare", "--dataset", "synthme", "--root", str(root), "--flow-method", "dis", "--num-proc", "1",
            "--cache-dir", str(tmp_path / "cache"), "--quiet"]
    assert cli_main(args) == 2
    assert "No face" in capsys.readouterr().err
    assert cli_main([*args, "--on-face-missing", "skip"]) == 0
    captured = capsys.readouterr()
    assert "2 samples of synthme prepared" in captured.out
    assert "no face found in 1 of 3 clips" in captured.err and clip.name in captured.err


def test_cli_reports_package_errors_in_one_line(tmp_path, capsys):
    (tmp_path / "onset.txt").write_text("not an image")
    status = cli_main(["predict", str(tmp_path / "onset.txt"), str(tmp_path / "onset.txt"), str(tmp_path / "onset.txt")])
    err = capsys.readouterr().err
    assert status == 2
    last_line = err.strip().splitlines()[-1]
    assert last_line.startswith("error: ") and "onset.txt" in last_line and "Traceback" not in err


@pytest.mark.slow
def test_cli_predict_example_runs_as_the_readme_says(tmp_path):
    env = {**os.environ, "FMANET_CACHE": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "fmanet_hf.cli", "predict", "--example", "--json"],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    # The package ships its SynthME checkpoint, so the README's command uses trained weights...
    assert payload["trained_model"] is True
    assert "UNTRAINED" not in result.stderr
    # ...on the clips of the two people kept apart from every training set (one per class each),
    # rendered from the examples seed...
    from fmanet_hf.data.synthetic.examples import EXAMPLES_FOLDER, EXAMPLES_SEED

    manifest = json.loads((tmp_path / EXAMPLES_FOLDER / "synthme_manifest.json").read_text())
    assert [s["person"] for s in manifest["subjects"]] == ["eileen-collins", "grace-hopper"]
    assert {s["group"] for s in manifest["subjects"]} == {"examples"} and manifest["seed"] == EXAMPLES_SEED
    assert len(payload["results"]) == 6
    true_labels = sorted(r["sample"].split("true: ")[1].rstrip(")") for r in payload["results"])
    assert true_labels == sorted(["negative", "positive", "surprise"] * 2)
    # ...and gives the probabilities of the bundled model and processor called directly.
    import torch

    from fmanet_hf.data import load_casme2
    from fmanet_hf.pretrained import load_default_model

    model, processor, trained = load_default_model()
    assert trained
    clips = {row["sample_id"]: row for row in load_casme2(tmp_path / EXAMPLES_FOLDER, class_set="megc3", dataset_name="synthme")}
    for result_row in payload["results"]:
        row = clips[result_row["sample"].split(" (true")[0]]
        inputs = processor(row["onset_path"], row["apex_path"], row["offset_path"], return_tensors="pt")
        with torch.no_grad():
            expected = model(**inputs).logits.softmax(-1)[0].tolist()
        assert list(result_row["scores"]) == [model.config.id2label[i] for i in range(3)]
        assert list(result_row["scores"].values()) == pytest.approx(expected, abs=1e-5), row["sample_id"]
        assert result_row["label"] == max(result_row["scores"], key=result_row["scores"].get)


def test_flow_params_option_selects_opencv_tvl1_or_json(tmp_path):
    """--flow-params opencv reproduces runs made before the faster TV-L1 default."""
    import argparse

    from fmanet_hf.commands.common_flags import flow_params_argument, processor_overrides
    from fmanet_hf.errors import FMANetConfigError
    from fmanet_hf.flow import DEFAULT_FLOW_PARAMS, OPENCV_TVL1_PARAMS
    from fmanet_hf.image_processing_fmanet import FMANetImageProcessor

    assert flow_params_argument("opencv") == OPENCV_TVL1_PARAMS
    assert flow_params_argument('{"nscales": 4}') == {"nscales": 4}
    for bad in ("fast", "[1, 2]", "{nscales: 4}"):
        with pytest.raises(argparse.ArgumentTypeError, match="'opencv' or a JSON object"):
            flow_params_argument(bad)
    args = argparse.Namespace(flow_method=None, flow_params=flow_params_argument("opencv"))
    processor = FMANetImageProcessor(**processor_overrides(args))
    assert processor.flow_params == OPENCV_TVL1_PARAMS
    assert processor.flow_method == "tvl1"  # `--flow-params opencv` alone implies TV-L1
    assert FMANetImageProcessor(flow_method="tvl1").flow_params == DEFAULT_FLOW_PARAMS["tvl1"] != OPENCV_TVL1_PARAMS
    # OpenCV's defaults as written in its documentation of DualTVL1OpticalFlow_create.
    assert (OPENCV_TVL1_PARAMS["nscales"], OPENCV_TVL1_PARAMS["warps"], OPENCV_TVL1_PARAMS["inner_iterations"],
            OPENCV_TVL1_PARAMS["outer_iterations"], OPENCV_TVL1_PARAMS["epsilon"]) == (5, 5, 30, 10, 0.01)
    with pytest.raises(FMANetConfigError, match="Unknown parameter 'nscales' for flow_method='dis'"):
        FMANetImageProcessor(**processor_overrides(argparse.Namespace(flow_method="dis", flow_params={"nscales": 5})))


def test_face_backend_option_reaches_the_processor_of_every_command(tmp_path):
    """--face-backend builds the processor with that backend, also over a --processor folder,
    and predict and demo accept it (they apply it to the model's saved processor)."""
    from fmanet_hf.cli import build_parser

    parser = build_parser()
    for command in (["prepare"], ["baseline"], ["predict", "--example"], ["demo"]):
        assert parser.parse_args([*command, "--face-backend", "mediapipe"]).face_backend == "mediapipe"
        assert parser.parse_args(command).face_backend is None  # unset: the saved processor's (default dlib)
    args = parser.parse_args(["prepare", "--face-backend", "mediapipe"])
    assert commands.processor_from_args(args).face_backend == "mediapipe"
    assert commands.processor_from_args(parser.parse_args(["prepare"])).face_backend == "dlib"
    FMANetImageProcessor(flow_method="dis").save_pretrained(tmp_path)
    args = parser.parse_args(["prepare", "--processor", str(tmp_path), "--face-backend", "mediapipe"])
    processor = commands.processor_from_args(args)
    assert (processor.face_backend, processor.flow_method) == ("mediapipe", "dis")
    with pytest.raises(SystemExit):
        parser.parse_args(["prepare", "--face-backend", "haar"])


# ----------------------------------------------------------------------------- train / loso / ablate
def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fmanet-hf")
    registered = register_training_commands(parser.add_subparsers(dest="command", required=True))
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
    # --quiet: no table or progress, only the final result line
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"LOSO over 3 subjects, 12 samples: pooled accuracy {results['accuracy']:.4f}")


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


def test_loso_command_passes_the_recipe_and_init_from(tiny_cli_data, tmp_path, monkeypatch):
    import fmanet_hf.training.loso as loso_module

    seen = {}
    pooled = {"num_folds": 1, "num_samples": 1, "accuracy": 1.0, "uf1": 1.0, "uar": 1.0, "wall_time_seconds": 0.0}
    monkeypatch.setattr(loso_module, "run_loso", lambda prepared, **kwargs: seen.update(kwargs) or pooled)
    args = make_parser().parse_args(["loso", "--out", str(tmp_path / "x"), "--augment", "flow", "--ema-decay", "0.98",
                                     "--init-from", "pretrained", *tiny_cli_options()])
    assert args.handler(args) == 0
    assert seen["schedule"].augmentation == "flow" and seen["schedule"].ema_decay == 0.98
    assert seen["init_from"] == "pretrained"


@pytest.mark.parametrize(
    "command, module, function",
    [("loso", "loso", "run_loso"), ("ablate", "ablation", "run_ablation"), ("pretrain", "pretraining", "pretrain")],
)
def test_precision_flag_reaches_the_schedule_of_every_training_command(tiny_cli_data, tmp_path, monkeypatch, command, module, function):
    import importlib

    class Reached(Exception):
        """Raised by the stub: the command got as far as training, with ``seen`` its arguments."""

    def stub(prepared, **kwargs):
        seen.update(kwargs)
        raise Reached

    from fmanet_hf.cli import register_commands

    seen = {}
    monkeypatch.setattr(importlib.import_module(f"fmanet_hf.training.{module}"), function, stub)
    parser = argparse.ArgumentParser(prog="fmanet-hf")
    register_commands(parser.add_subparsers(dest="command", required=True), [command])
    for given, expected in (([], "fp32"), (["--precision", "bf16"], "bf16")):
        args = parser.parse_args([command, "--out", str(tmp_path / f"{command}-{expected}"), *given, *tiny_cli_options()])
        with pytest.raises(Reached):
            args.handler(args)
        assert seen["schedule"].precision == expected, (command, given)


@pytest.mark.parametrize(
    "argv, words",
    [
        (["ablate", "--out", "x", "--seeds", "0,0"], "distinct integers"),
        (["ablate", "--out", "x", "--seeds", "a"], "distinct integers"),
        (["loso", "--out", "x", "--ema-decay", "1"], "[0, 1)"),
        (["loso", "--out", "x", "--augment", "mixup"], "invalid choice"),
        (["loso", "--out", "x", "--precision", "fp16"], "invalid choice"),
        (["pretrain", "--out", "x", "--precision", "bfloat16"], "invalid choice"),
        (["baseline", "--pool", "0"], "integer >= 1 or 'inner'"),
        (["baseline", "--l2", "-1"], "number >= 0 or 'inner'"),
        (["synth", "--masked-fraction", "2"], "[0, 1]"),
    ],
)
def test_recipe_and_evidence_flags_refuse_bad_values_at_parsing(argv, words, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main(argv)
    assert exit_info.value.code == 2
    assert words in capsys.readouterr().err


def test_ablate_seeds_and_baselines_reach_run_ablation(tiny_cli_data, tmp_path, monkeypatch):
    import fmanet_hf.training.ablation as ablation_module

    seen = {}
    monkeypatch.setattr(ablation_module, "run_ablation", lambda prepared, **kwargs: seen.update(kwargs) or {"markdown": ""})
    args = make_parser().parse_args(["ablate", "--out", str(tmp_path / "x"), "--seeds", "0,1,2",
                                     "--ablations", "mmcof_cnn,mmcof_logreg", *tiny_cli_options()])
    assert args.handler(args) == 0
    assert seen["seeds"] == [0, 1, 2] and seen["ablations"] == ["mmcof_cnn", "mmcof_logreg"]


def test_pretrain_command_writes_a_model_that_loso_init_from_starts_from(tiny_cli_data, tmp_path, capsys):
    from fmanet_hf.cli import register_commands
    from fmanet_hf.training.pretraining import PRETRAINING_INFO_NAME

    parser = argparse.ArgumentParser(prog="fmanet-hf")
    register_commands(parser.add_subparsers(dest="command", required=True), ["pretrain", "loso"])
    pretrained = tmp_path / "pretrained"
    args = parser.parse_args(["pretrain", "--out", str(pretrained), "--augment", "flow", "--ema-decay", "0.9", *tiny_cli_options()])
    assert args.handler(args) == 0
    info = json.loads((pretrained / PRETRAINING_INFO_NAME).read_text())
    assert info["schedule"]["augmentation"] == "flow" and info["schedule"]["ema_decay"] == 0.9
    assert info["num_samples"] == len(tiny_cli_data.dataset)
    assert (pretrained / "preprocessor_config.json").is_file()
    args = parser.parse_args(["loso", "--out", str(tmp_path / "run"), "--init-from", str(pretrained), *tiny_cli_options()])
    assert args.handler(args) == 0
    run_config = json.loads((tmp_path / "run" / "run_config.json").read_text())
    assert run_config["checked"]["init_from"]["path"] == str(pretrained.resolve())


def test_synth_command_generates_people_of_synthme_2(tmp_path, capsys):
    out = tmp_path / "people"
    assert cli_main(["synth", "--generator", "2.0", "--people", "takeo", "--samples-per-class", "1",
                     "--frames-per-clip", "7", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "SynthME 2.0.0: 3 clips" in printed and "people: takeo" in printed
    manifest = json.loads((out / "synthme_manifest.json").read_text())
    assert manifest["generator_version"] == "2.0.0"


def test_train_command_with_held_out_subjects(tiny_cli_data, tmp_path, capsys, monkeypatch):
    import re

    import torch
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

    from fmanet_hf import FMANetForImageClassification
    from fmanet_hf.training import trainer

    # Record which subjects the command trains and evaluates on.
    seen = {}
    original = trainer.train_with_trainer

    def recording(train_set, eval_set, **kwargs):
        seen["train"] = sorted(set(train_set.with_format(None)["subject"]))
        seen["eval"] = sorted(set(eval_set.with_format(None)["subject"]))
        return original(train_set, eval_set, **kwargs)

    monkeypatch.setattr(trainer, "train_with_trainer", recording)
    out = tmp_path / "model"
    args = make_parser().parse_args(["train", "--out", str(out), "--eval-subjects", "s3", *tiny_cli_options()])
    assert args.handler(args) == 0
    printed = capsys.readouterr().out
    assert "not LOSO" in printed
    assert seen == {"train": ["s1", "s2"], "eval": ["s3"]}
    assert (out / "model.safetensors").is_file() and (out / "preprocessor_config.json").is_file()
    # The printed scores are those of the saved model on s3's samples, recomputed here.
    held_out = tiny_cli_data.dataset.filter(lambda row: row["subject"] == "s3")
    model = FMANetForImageClassification.from_pretrained(out).eval()
    with torch.no_grad():
        predicted = model(pixel_values=held_out[:]["pixel_values"]).logits.argmax(-1).numpy()
    truth = held_out[:]["label_id"].numpy()
    line = re.search(r"accuracy ([0-9.]+), uf1 ([0-9.]+), uar ([0-9.]+)", printed)
    assert line, printed
    expected = (accuracy_score(truth, predicted), f1_score(truth, predicted, average="macro"), balanced_accuracy_score(truth, predicted))
    assert [float(value) for value in line.groups()] == pytest.approx(expected, abs=5e-5)  # printed with 4 decimals
    bad = make_parser().parse_args(["train", "--out", str(out), "--eval-subjects", "s9", *tiny_cli_options()])
    with pytest.raises(FMANetError, match="s9"):
        bad.handler(bad)


@pytest.mark.slow
def test_loso_command_end_to_end_on_synthme(tmp_path):
    """Real frames: SynthME (3 subjects x 3 classes) -> DIS flow -> cache -> LOSO -> final model."""
    from fmanet_hf.data.synthetic import generate_synthme
    from fmanet_hf.training.final_model import find_prepared_processor

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
    from fmanet_hf.data.registry import load_dataset_by_name

    prepared = prepare_dataset(load_dataset_by_name("synthme", str(root), None), saved, tmp_path / "cache" / "prepared", progress=False)
    assert find_prepared_processor(prepared).output_settings() == saved.output_settings()


HELP_IMPORTS = """
import sys
from fmanet_hf.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
heavy = [m for m in ("torch", "transformers", "datasets", "accelerate", "gradio", "cv2") if m in sys.modules]
print("HEAVY", heavy, file=sys.stderr)
"""


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["train", "--help"], ["predict", "--help"]])
def test_help_and_version_import_no_heavy_library(argv):
    """Building the parser stays cheap: torch/transformers load only when a command runs
    (its speed is measured in benchmarks/cli_startup.py, not here)."""
    result = subprocess.run([sys.executable, "-c", HELP_IMPORTS, *argv], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip(), result.stderr  # help or version text was printed
    assert "HEAVY []" in result.stderr, result.stderr[-2000:]


def test_train_passes_training_arguments_options_to_the_trainer(tiny_cli_data, tmp_path, capsys, monkeypatch):
    from fmanet_hf.training import trainer

    runs = []
    original = trainer.train_with_trainer
    monkeypatch.setattr(trainer, "train_with_trainer", lambda *a, **k: runs.append(original(*a, **k)) or runs[-1])
    argv = ["train", "--out", str(tmp_path / "model"), *tiny_cli_options(), "--gradient_accumulation_steps", "2",
            "--lr-scheduler-type", "linear", "--max_grad_norm", "0.5", "--adam_beta2=0.99"]
    assert cli_main(argv) == 0
    used = runs[0].trainer.args
    assert (used.gradient_accumulation_steps, used.lr_scheduler_type, used.max_grad_norm, used.adam_beta2) == (
        2, "linear", 0.5, 0.99)
    assert used.learning_rate == 0.01  # train's own --lr still applies
    # out of range, or a typo: one line, exit 2, nothing trained
    assert cli_main([*argv[:-1], "--adam_beta2=1"]) == 2
    assert "expected a number in [0, 1)" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:  # argparse's own error: other commands take no extra options
        cli_main(["loso", "--out", str(tmp_path / "x"), "--gradient_accumulation_steps", "2"])
    assert exit_info.value.code == 2
    assert "unrecognized arguments: --gradient_accumulation_steps 2" in capsys.readouterr().err
    assert len(runs) == 1


def test_baseline_prepares_with_the_processor_folder_it_is_given(tmp_path):
    from fmanet_hf import FMANetImageProcessor
    from fmanet_hf.cli import build_parser
    from fmanet_hf.commands import inputs

    FMANetImageProcessor(flow_method="farneback", crop_size=96).save_pretrained(tmp_path / "processor")
    args = build_parser().parse_args(["baseline", "--processor", str(tmp_path / "processor"), "--on-face-missing", "skip"])
    processor = inputs.processor_from_args(args)
    assert (processor.flow_method, processor.crop_size) == ("farneback", 96)
    assert args.on_face_missing == "skip"


def test_train_json_prints_only_the_json_result(tiny_cli_data, tmp_path, capsys):
    """--json: stdout is one JSON object (the Trainer's per-epoch log dicts stay off it)."""
    out = tmp_path / "model"
    options = [o for o in tiny_cli_options() if o != "--quiet"]
    assert cli_main(["train", "--out", str(out), "--eval-subjects", "s3", *options, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)  # fails on anything else printed
    assert printed["out"] == str(out.resolve()) and printed["eval_subjects"] == ["s3"]
    assert set(printed["eval_metrics"]) >= {"eval_accuracy", "eval_uf1", "eval_uar"}
