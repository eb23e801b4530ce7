"""Messages (issue 14, class 8): CLI errors name CLI flags, never Python parameters; a folder of
another model type says so; a missing model path says it is missing and why it was read as a
path; Ctrl-C ends any command with one line and exit status 130, worker processes included.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fmanet_hf import FMANetConfig, FMANetForImageClassification
from fmanet_hf.cli import build_parser, main as cli_main
from fmanet_hf.commands.messages import in_cli_words
from fmanet_hf.errors import CheckpointError, FMANetConfigError
from fmanet_hf.pipeline import micro_expression_pipeline


@pytest.fixture(scope="module")
def synthme_root(tmp_path_factory):
    """A small SynthME set: 1 subject, 3 clips of 5 frames."""
    from fmanet_hf.data.synthetic import generate_synthme

    root = tmp_path_factory.mktemp("messages") / "data"
    generate_synthme(root, subjects=1, samples_per_class=1, frames_per_clip=5, seed=2, progress=False)
    return root


def one_line_cli_error(argv, capsys) -> str:
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err, err
    return err


# ----------------------------------------------------------------------------- flags, not parameters
def test_a_missing_sheet_names_the_sheet_flag(synthme_root, tmp_path, capsys):
    data = tmp_path / "data"
    data.symlink_to(synthme_root / "CASME2_RAW_selected", target_is_directory=True)  # frames, no sheet
    err = one_line_cli_error(["prepare", "--root", str(tmp_path), "--cache-dir", str(tmp_path / "cache")], capsys)
    assert "no annotation sheet" in err and "pass --sheet PATH" in err and "sheet=" not in err


def test_an_invalid_row_names_the_on_invalid_flag_and_the_flag_works(synthme_root, tmp_path, capsys):
    sheet = tmp_path / "sheet.csv"
    rows = (synthme_root / "CASME2-coding-synthme.csv").read_text().splitlines()
    first = rows[1].split(",")
    first[4] = "500"  # an offset frame the clip does not have
    sheet.write_text("\n".join([rows[0], ",".join(first), *rows[2:]]) + "\n")
    argv = ["prepare", "--root", str(synthme_root), "--sheet", str(sheet), "--cache-dir", str(tmp_path / "cache"), "--flow-method", "dis", "--quiet"]
    err = one_line_cli_error(argv, capsys)
    assert "offset frame 500 is out of range" in err and "or pass --on-invalid skip to drop such rows" in err
    assert "on_invalid" not in err
    assert cli_main([*argv, "--on-invalid", "skip"]) == 0
    assert "2 samples of synthme prepared" in capsys.readouterr().out


def test_a_missing_frames_folder_names_the_frames_dir_flag(synthme_root, tmp_path, capsys):
    root = tmp_path / "data"
    root.mkdir()
    (root / "CASME2-coding-synthme.csv").write_text((synthme_root / "CASME2-coding-synthme.csv").read_text())
    argv = ["prepare", "--root", str(root), "--cache-dir", str(tmp_path / "cache"), "--flow-method", "dis", "--quiet"]
    err = one_line_cli_error(argv, capsys)
    assert "cannot find the frames folder" in err and "Pass --frames-dir FOLDER" in err and "frames_dir" not in err
    assert cli_main([*argv, "--frames-dir", str(synthme_root / "CASME2_RAW_selected")]) == 0


def test_a_loader_option_the_dataset_does_not_take(tmp_path, capsys):
    err = one_line_cli_error(["prepare", "--dataset", "megc2019", "--root", str(tmp_path), "--sheet", "x.csv"], capsys)
    assert "megc2019 does not take --sheet" in err


def test_parameters_are_rewritten_only_where_the_command_has_the_flag():
    parsers = {name: parser for name, parser in build_parser()._subparsers._group_actions[0].choices.items()}
    text = "pass sheet=<path> or on_invalid='skip'; generator_version='2.0' needs people=; size={'height': 8}; a_b=1"
    assert in_cli_words(text, parsers["prepare"]) == "pass --sheet PATH or --on-invalid skip; generator_version='2.0' needs people=; size={'height': 8}; a_b=1"
    assert in_cli_words(text, parsers["synth"]) == "pass sheet=<path> or on_invalid='skip'; --generator 2.0 needs --people; size={'height': 8}; a_b=1"


def test_synth_errors_name_synth_flags(tmp_path, capsys):
    err = one_line_cli_error(["synth", "--out", str(tmp_path / "s"), "--masked-fraction", "0.5"], capsys)
    assert "--masked-fraction" in err and "masked_fraction" not in err and "generator_version" not in err


# ----------------------------------------------------------------------------- another model's folder
@pytest.fixture
def bert_folder(tmp_path):
    folder = tmp_path / "bert"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 32, "num_hidden_layers": 1}))
    (folder / "model.safetensors").write_bytes(b"")  # never opened
    return folder


def test_a_folder_of_another_model_type_says_so(bert_folder, capsys):
    with pytest.raises(CheckpointError, match=r"holds a 'bert' model \(model_type in its config.json\), not an FMANet model"):
        micro_expression_pipeline(model=str(bert_folder))
    err = one_line_cli_error(["predict", "--example", "--model", str(bert_folder)], capsys)
    assert "holds a 'bert' model" in err and "hidden_size" not in err


def test_the_config_class_says_so_too(bert_folder):
    with pytest.raises(FMANetConfigError, match=r"describes a 'bert' model \(model_type\), not FMANet"):
        FMANetConfig.from_pretrained(bert_folder)
    with pytest.raises(FMANetConfigError, match="describes a 'bert' model"):
        FMANetForImageClassification.from_pretrained(bert_folder, use_safetensors=True)


# ----------------------------------------------------------------------------- missing model paths
@pytest.mark.parametrize(
    ("name", "reason"),
    [("/nowhere/model", "it starts with '/'"), ("./model", "it starts with './'"), ("../model", "it starts with '../'"), ("~/model", "it starts with '~/'")],
)
def test_a_missing_local_path_says_it_is_missing_and_why_it_is_a_path(name, reason, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointError) as error:
        micro_expression_pipeline(model=name)
    assert f"Model folder {name!r} does not exist (read as a local path because {reason})" in str(error.value)


def test_a_name_that_is_not_on_disk_is_read_as_a_hub_id(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointError, match=r"'someone/fmanet' is not a local folder, so it was read as a Hugging Face Hub repo id"):
        micro_expression_pipeline(model="someone/fmanet")


# ----------------------------------------------------------------------------- Ctrl-C
def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs /proc to see the worker processes")
def test_ctrl_c_during_prepare_with_workers_is_one_line_and_130(tmp_path):
    from fmanet_hf.data.synthetic import generate_synthme

    root = tmp_path / "data"
    generate_synthme(root, subjects=2, samples_per_class=3, frames_per_clip=5, seed=4, progress=False)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    process = subprocess.Popen(
        [sys.executable, "-m", "fmanet_hf.cli", "prepare", "--root", str(root), "--cache-dir", str(tmp_path / "cache"),
         "--num-proc", "2", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, env=env,
    )
    deadline = time.monotonic() + 120
    while len(_children(process.pid)) < 3 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # the pool's manager and its two workers
    assert process.poll() is None, "prepare finished before its workers could be interrupted"
    time.sleep(0.5)
    os.killpg(process.pid, signal.SIGINT)  # as a terminal does: the whole process group
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert err == "interrupted\n"
    time.sleep(0.5)
    with pytest.raises(ProcessLookupError):
        os.killpg(process.pid, 0)  # no worker left behind
