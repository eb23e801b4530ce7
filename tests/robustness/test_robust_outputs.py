"""Outputs: nothing of the user's is ever destroyed, and written files are readable by others.

Every command with ``--out`` (train, loso, ablate, pretrain, baseline, synth) or ``OUT_DIR``
(export) refuses an empty output path and one that is, contains or sits inside an input, in
one line with exit status 2; ``--overwrite`` never removes a file the package did not write
(`fmanet_hf.output_paths`). ``push`` refuses a symbolic link that leads outside the folder,
and the folders the package writes get ordinary permissions (0777/0666 minus the umask).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.helpers.tiny import make_prepared_dataset, tiny_config_kwargs

from fmanet_hf import FMANetImageProcessor
from fmanet_hf.cli import main as cli_main
from fmanet_hf.commands import inputs as command_inputs
from fmanet_hf.errors import CheckpointError
from fmanet_hf.output_paths import OUTPUT_MARKER_NAME

REPO = Path(__file__).resolve().parents[2]
TINY_SYNTH = ["--subjects", "1", "--samples-per-class", "1", "--frames-per-clip", "5", "--quiet"]


def tiny_training_options() -> list[str]:
    options = ["--epochs", "1", "--batch-size", "4", "--lr", "0.01", "--quiet"]
    for key, value in tiny_config_kwargs().items():
        options += ["--set", f"{key}={json.dumps(value)}"]
    return options


@pytest.fixture(scope="module")
def tiny_dataset():
    return make_prepared_dataset(subjects=3, per_subject=3, image_size=32, seed=3, dataset_names=["synthme"] * 3)


@pytest.fixture
def tiny_data(monkeypatch, tiny_dataset):
    """The training commands train on a tiny prepared set instead of loading --root."""
    processor = FMANetImageProcessor(align_faces=False, flow_method="dis", size={"height": 32, "width": 32})
    monkeypatch.setattr(command_inputs, "prepare_from_args", lambda args, accelerator: (tiny_dataset, processor))


@pytest.fixture
def no_work(monkeypatch):
    """A refused command must refuse before preparing any data."""

    def fail(*args, **kwargs):
        raise AssertionError("the command started working before checking its output path")

    monkeypatch.setattr(command_inputs, "prepare_from_args", fail)
    from fmanet_hf.data import registry

    monkeypatch.setattr(registry, "load_dataset_by_name", fail)


def refused(argv: list[str], capsys, *words: str) -> str:
    """Run the CLI; assert exit 2 and one line on stderr holding ``words``; return that line."""
    capsys.readouterr()  # what earlier commands printed
    status = cli_main(argv)
    err = capsys.readouterr().err
    assert status == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, tiny_dataset):
    """A finished tiny LOSO run with a final model (what export reads)."""
    from accelerate import Accelerator

    from fmanet_hf.training.loso import run_loso
    from fmanet_hf.training.schedule import TrainingSchedule

    base = tmp_path_factory.mktemp("outputs")
    run_loso(
        tiny_dataset,
        model_config=tiny_config_kwargs(32),
        out_dir=base / "runs" / "run",
        schedule=TrainingSchedule(epochs=1, batch_size=4, learning_rate=3e-3),
        train_final_model=True,
        processor=FMANetImageProcessor(size={"height": 32, "width": 32}, flow_method="dis"),
        progress=False,
        accelerator=Accelerator(cpu=True),
    )
    (base / "runs" / "sibling-run").mkdir()
    (base / "runs" / "sibling-run" / "results.json").write_text("{}")
    return base / "runs" / "run"


# ----------------------------------------------------------------------------- class 1: empty paths
EMPTY_OUT = {
    "train": ["train", "--out", "", *tiny_training_options()],
    "loso": ["loso", "--out", "", *tiny_training_options()],
    "ablate": ["ablate", "--out", "", *tiny_training_options()],
    "pretrain": ["pretrain", "--out", "", "--overwrite", *tiny_training_options()],
    "baseline": ["baseline", "--out", ""],
    "synth": ["synth", "--out", "", "--overwrite", *TINY_SYNTH],
    "export": ["export", "RUN", "", "--overwrite"],
    "export (blank)": ["export", "RUN", "   ", "--overwrite"],
}


@pytest.mark.parametrize("case", list(EMPTY_OUT))
def test_an_empty_output_path_is_refused(case, tmp_path, monkeypatch, capsys, no_work):
    # An unset shell variable (`--out "$RUN"`) would otherwise mean the current folder.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "RUN").mkdir()
    (tmp_path / "precious.txt").write_text("keep")
    before = sorted(p.name for p in tmp_path.iterdir())
    flag = "OUT_DIR" if case.startswith("export") else "--out"
    refused(EMPTY_OUT[case], capsys, f"{flag} is empty", "Give a folder name")
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert (tmp_path / "precious.txt").read_text() == "keep"


# ----------------------------------------------------------------------------- class 1: outputs overlapping inputs
def overlap_cases(tmp: Path) -> dict[str, tuple[list[str], str]]:
    data, model = tmp / "data", tmp / "pretrained"
    return {
        "train --out = --root": (["train", "--root", str(data), "--out", str(data)], "is the input --root"),
        "loso --out contains --root": (["loso", "--root", str(data), "--out", str(tmp)], "contains the input --root"),
        "ablate --out inside --init-from": (["ablate", "--init-from", str(model), "--out", str(model / "ab")], "sits inside the input --init-from"),
        "pretrain --out = --processor": (["pretrain", "--processor", str(model), "--out", str(model), "--overwrite"], "is the input --processor"),
        "train --out through a symlink to --root": (["train", "--root", str(data), "--out", str(tmp / "link-to-data")], "is the input --root"),
        "baseline --out inside --root": (["baseline", "--root", str(data), "--out", str(data / "baseline.json")], "sits inside the input --root"),
        "export into the run's parent": (["export", str(data / "run"), str(data), "--overwrite"], "contains the input RUN_DIR"),
        "export into the run": (["export", str(data / "run"), str(data / "run"), "--overwrite"], "is the input RUN_DIR"),
        "export over --data-root": (["export", str(data / "run"), str(tmp / "ds"), "--data-root", str(tmp / "ds" / "x"), "--overwrite"], "contains the input --data-root"),
    }


CASE_NAMES = list(overlap_cases(Path("/x")))


@pytest.mark.parametrize("case", CASE_NAMES)
def test_an_output_that_is_contains_or_sits_inside_an_input_is_refused(case, tmp_path, capsys, no_work):
    data = tmp_path / "data"
    (data / "run").mkdir(parents=True)
    (data / "sub01.txt").write_text("frames")
    (tmp_path / "pretrained").mkdir()
    (tmp_path / "ds").mkdir()
    (tmp_path / "link-to-data").symlink_to(data, target_is_directory=True)
    before = tree(tmp_path)
    argv, words = overlap_cases(tmp_path)[case]
    refused(argv, capsys, words, "Choose an output outside every input")
    assert tree(tmp_path) == before


def test_exporting_a_finished_run_into_its_parent_keeps_the_run_and_its_siblings(finished_run, capsys):
    # The case that used to delete the run and everything beside it.
    parent = finished_run.parent
    before = tree(parent)
    refused(["export", str(finished_run), str(parent), "--overwrite"], capsys, "contains the input RUN_DIR")
    assert tree(parent) == before


# ----------------------------------------------------------------------------- class 1: --overwrite removes only its own
def test_synth_overwrite_replaces_only_its_own_set(tmp_path, capsys):
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"mine")
    refused(["synth", "--out", str(foreign), "--overwrite", *TINY_SYNTH], capsys, "not written by fmanet-hf", OUTPUT_MARKER_NAME)
    assert (foreign / "holiday.jpg").read_bytes() == b"mine"

    own = tmp_path / "synthme"
    assert cli_main(["synth", "--out", str(own), *TINY_SYNTH]) == 0
    (own / "CASME2_RAW_selected" / "my-notes.txt").write_text("added by hand")
    refused(["synth", "--out", str(own), "--overwrite", "--seed", "1", *TINY_SYNTH], capsys, "my-notes.txt", "Move it out")
    assert (own / "CASME2_RAW_selected" / "my-notes.txt").read_text() == "added by hand"
    (own / "CASME2_RAW_selected" / "my-notes.txt").unlink()
    first = tree(own)
    assert cli_main(["synth", "--out", str(own), "--overwrite", "--seed", "1", *TINY_SYNTH]) == 0
    assert tree(own) != first and json.loads((own / "synthme_manifest.json").read_text())["seed"] == 1


def test_pretrain_overwrite_replaces_only_its_own_model(tmp_path, capsys, tiny_data):
    out = tmp_path / "pretrained"
    argv = ["pretrain", "--out", str(out), *tiny_training_options()]
    assert cli_main(argv) == 0
    assert json.loads((out / OUTPUT_MARKER_NAME).read_text())["written_by"] == "fmanet-hf pretrain"
    (out / "notes.md").write_text("mine")
    refused([*argv, "--overwrite"], capsys, "notes.md", "not written by `fmanet-hf pretrain`")
    assert (out / "notes.md").read_text() == "mine"
    (out / "notes.md").unlink()
    assert cli_main([*argv, "--overwrite", "--seed", "1"]) == 0
    assert json.loads((out / "pretraining_info.json").read_text())["seed"] == 1
    # A folder another command wrote is not pretrain's to replace.
    synth = tmp_path / "synthme"
    assert cli_main(["synth", "--out", str(synth), *TINY_SYNTH]) == 0
    refused(["pretrain", "--out", str(synth), "--overwrite", *tiny_training_options()], capsys, "fmanet-hf synth")


def test_export_overwrite_replaces_only_its_own_export(finished_run, tmp_path, capsys):
    foreign = tmp_path / "website"
    foreign.mkdir()
    (foreign / "index.html").write_text("mine")
    refused(["export", str(finished_run), str(foreign), "--overwrite"], capsys, "not written by fmanet-hf")
    assert (foreign / "index.html").read_text() == "mine"

    out = tmp_path / "export"
    assert cli_main(["export", str(finished_run), str(out), "--dataset", "synthme"]) == 0
    (out / "folds").mkdir()
    (out / "folds" / "keep.txt").write_text("mine")
    refused(["export", str(finished_run), str(out), "--overwrite"], capsys, "export/folds was not written")
    assert (out / "folds" / "keep.txt").read_text() == "mine"
    (out / "folds" / "keep.txt").unlink()
    (out / "folds").rmdir()
    assert cli_main(["export", str(finished_run), str(out), "--dataset", "synthme", "--overwrite"]) == 0
    assert (out / "model.safetensors").is_file()
    # A LOSO run is not an export: export --overwrite never replaces one (here a copy of the run).
    import shutil

    other_run = tmp_path / "other-run"
    shutil.copytree(finished_run, other_run, symlinks=True)
    before = tree(other_run)
    refused(["export", str(finished_run), str(other_run), "--overwrite"], capsys, "`fmanet-hf loso`, not of `fmanet-hf export`")
    assert tree(other_run) == before


@pytest.mark.parametrize("command", ["train", "loso", "ablate"])
def test_rerunning_a_training_command_keeps_foreign_files(command, tmp_path, capsys, tiny_data):
    # These commands have no --overwrite: they write their own files and never remove one.
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    extra = ["--ablations", "full"] if command == "ablate" else []
    argv = [command, "--out", str(out), *extra, *tiny_training_options()]
    assert cli_main(argv) == 0
    assert cli_main(argv) == 0
    assert (out / "notes.txt").read_text() == "mine"


def test_training_commands_mark_the_folders_they_create(tmp_path, tiny_data):
    for command in ("train", "loso"):
        out = tmp_path / command
        assert cli_main([command, "--out", str(out), *tiny_training_options()]) == 0
        assert json.loads((out / OUTPUT_MARKER_NAME).read_text())["written_by"] == f"fmanet-hf {command}"


def test_baseline_out_replaces_only_an_earlier_baseline_result(tmp_path, capsys, monkeypatch):
    from fmanet_hf.data import prepare, registry
    from fmanet_hf.training import baselines

    monkeypatch.setattr(registry, "load_dataset_by_name", lambda *args: None)
    monkeypatch.setattr(prepare, "prepare_dataset", lambda *args, **kwargs: None)
    from fmanet_hf.commands import inputs as command_inputs

    monkeypatch.setattr(command_inputs, "report_skipped_clips", lambda *args: [])
    scores = {"num_folds": 3, "num_samples": 9, "accuracy": 0.5, "uf1": 0.4, "uar": 0.45, "chance_uar": 1 / 3}
    monkeypatch.setattr(baselines, "mmcof_logistic_regression_loso", lambda *args, **kwargs: dict(scores))
    foreign = tmp_path / "thesis.json"
    foreign.write_text('{"chapter": 1}')
    refused(["baseline", "--root", str(tmp_path / "data"), "--out", str(foreign)], capsys, "not written by `fmanet-hf baseline`")
    assert foreign.read_text() == '{"chapter": 1}'
    (tmp_path / "reports").mkdir()
    refused(["baseline", "--root", str(tmp_path / "data"), "--out", str(tmp_path / "reports")], capsys, "is a folder")

    out = tmp_path / "baseline.json"
    assert cli_main(["baseline", "--root", str(tmp_path / "data"), "--out", str(out)]) == 0
    assert json.loads(out.read_text()) == {**scores, "written_by": "fmanet-hf baseline"}
    scores["uf1"] = 0.9
    assert cli_main(["baseline", "--root", str(tmp_path / "data"), "--out", str(out)]) == 0  # its own file: replaced
    assert json.loads(out.read_text())["uf1"] == 0.9


# ----------------------------------------------------------------------------- class 6: push and symlinks
def fake_export(folder: Path) -> Path:
    folder.mkdir()
    for name in ("config.json", "model.safetensors", "preprocessor_config.json", "README.md"):
        (folder / name).write_text("{}")
    return folder


def test_push_refuses_a_symlink_that_leads_outside_the_folder(tmp_path, capsys):
    from fmanet_hf.hub.push import plan_upload

    secret = tmp_path / "home" / ".ssh" / "id_ed25519"
    secret.parent.mkdir(parents=True)
    secret.write_text("PRIVATE KEY")
    folder = fake_export(tmp_path / "export")
    (folder / "extra.txt").symlink_to(secret)
    with pytest.raises(CheckpointError, match="symbolic link .* outside"):
        plan_upload(folder)
    line = refused(["push", str(folder), "--repo-id", "me/model", "--dry-run"], capsys, "extra.txt", "symbolic link")
    assert "PRIVATE KEY" not in line
    # A link to a folder outside is refused the same way.
    (folder / "extra.txt").unlink()
    (folder / "data").symlink_to(secret.parent, target_is_directory=True)
    with pytest.raises(CheckpointError, match="data is a symbolic link"):
        plan_upload(folder)


def test_push_accepts_a_symlink_that_stays_inside_the_folder(tmp_path):
    from fmanet_hf.hub.push import plan_upload

    folder = fake_export(tmp_path / "export")
    (folder / "card.md").symlink_to(folder / "README.md")
    assert [item.path_in_repo for item in plan_upload(folder)] == [
        "README.md", "card.md", "config.json", "model.safetensors", "preprocessor_config.json",
    ]


# ----------------------------------------------------------------------------- class 6: permissions
def ordinary_modes() -> tuple[int, int]:
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o777 & ~mask, 0o666 & ~mask


def assert_ordinary_permissions(folder: Path) -> None:
    directory_mode, file_mode = ordinary_modes()
    assert stat.S_IMODE(folder.stat().st_mode) == directory_mode, folder
    for path in folder.rglob("*"):
        if path.is_symlink():
            continue
        expected = directory_mode if path.is_dir() else file_mode
        assert stat.S_IMODE(path.stat().st_mode) == expected, f"{path}: {oct(path.stat().st_mode)}"


def test_written_folders_get_ordinary_permissions(finished_run, tmp_path, tiny_data):
    synth = tmp_path / "synthme"
    assert cli_main(["synth", "--out", str(synth), *TINY_SYNTH]) == 0
    assert_ordinary_permissions(synth)
    pretrained = tmp_path / "pretrained"
    assert cli_main(["pretrain", "--out", str(pretrained), *tiny_training_options()]) == 0
    assert_ordinary_permissions(pretrained)
    assert_ordinary_permissions(finished_run / "final_model")
    trained = tmp_path / "trained"
    assert cli_main(["train", "--out", str(trained), *tiny_training_options()]) == 0
    assert_ordinary_permissions(trained)
    exported = tmp_path / "export"
    assert cli_main(["export", str(finished_run), str(exported), "--dataset", "synthme"]) == 0
    assert_ordinary_permissions(exported)


_UMASK_027_WRITER = textwrap.dedent(
    """
    import importlib.util, os, stat, sys
    os.umask(0o027)
    # atomic.py alone (standard library only), imported after the umask is set.
    spec = importlib.util.spec_from_file_location("atomic", sys.argv[1])
    atomic = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(atomic)
    with atomic.atomic_directory(sys.argv[2]) as staging:
        (staging / "sub").mkdir()
        atomic.atomic_write_bytes(staging / "sub" / "model.safetensors", b"weights")
    print(oct(stat.S_IMODE(os.stat(sys.argv[2]).st_mode)), oct(stat.S_IMODE(os.stat(os.path.join(sys.argv[2], "sub", "model.safetensors")).st_mode)))
    """
)


def test_atomic_folders_follow_the_umask(tmp_path):
    # Under umask 027 a folder is 0750 and a file 0640: what mkdir and open() give, not mkdtemp's 0700.
    module = REPO / "src" / "fmanet_hf" / "atomic.py"
    result = subprocess.run([sys.executable, "-c", _UMASK_027_WRITER, str(module), str(tmp_path / "model")],
                            capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["0o750", "0o640"]
