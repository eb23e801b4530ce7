"""Bad-input matrix: damaged or foreign files in a LOSO results folder."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from tests.helpers.tiny import make_prepared_dataset, tiny_config_kwargs  # noqa: E402

from tests.helpers.assertions import assert_error  # noqa: E402
from fmanet_hf.errors import RunDirectoryError  # noqa: E402
from fmanet_hf.training.loso import run_loso  # noqa: E402
from fmanet_hf.training.schedule import TrainingSchedule  # noqa: E402


@pytest.fixture(scope="module")
def dataset():
    return make_prepared_dataset(subjects=3, per_subject=3, image_size=32, seed=0)


def run(dataset, out: Path) -> dict:
    return run_loso(dataset, model_config=tiny_config_kwargs(), out_dir=out,
                    schedule=TrainingSchedule(epochs=1, batch_size=4, learning_rate=1e-2), seed=0, progress=False)


@pytest.fixture(scope="module")
def finished(dataset, tmp_path_factory):
    """A finished run folder (copied by each test before damaging it) and its results."""
    out = tmp_path_factory.mktemp("loso") / "out"
    return out, run(dataset, out)


@pytest.fixture
def copy_of(finished, tmp_path):
    out, _ = finished
    target = tmp_path / "out"
    shutil.copytree(out, target)
    return target


def first_fold_file(out: Path) -> Path:
    return sorted((out / "folds").glob("*.json"))[0]


def test_a_truncated_fold_record_is_retrained_not_trusted(dataset, finished, copy_of, caplog):
    _, expected = finished
    record = first_fold_file(copy_of)
    record.write_text(record.read_text()[:40])
    (copy_of / "results.json").unlink()
    with caplog.at_level(logging.WARNING, logger="fmanet_hf.training.run_folder"):
        results = run(dataset, copy_of)
    assert any("unreadable; the fold will be trained again" in r.getMessage() for r in caplog.records)
    assert results["folds_resumed"] == 2
    for key in ("accuracy", "uf1", "uar", "confusion_matrix", "per_fold"):
        assert results[key] == expected[key]
    json.loads(record.read_text())  # rewritten whole


def test_an_unreadable_run_config(dataset, copy_of):
    (copy_of / "run_config.json").write_text('{"checked": {"epo')
    with pytest.raises(RunDirectoryError) as excinfo:
        run(dataset, copy_of)
    assert_error(excinfo, RunDirectoryError, "run_config.json", "unreadable", "delete the folder")


def test_fold_records_without_a_run_config(dataset, copy_of):
    (copy_of / "run_config.json").unlink()
    with pytest.raises(RunDirectoryError) as excinfo:
        run(dataset, copy_of)
    assert_error(excinfo, RunDirectoryError, "run_config.json is missing", "settings are unknown")


def test_a_fold_record_of_another_run(dataset, copy_of):
    record = first_fold_file(copy_of)
    content = json.loads(record.read_text())
    content["run_config_digest"] = "0123456789abcdef"
    record.write_text(json.dumps(content))
    with pytest.raises(RunDirectoryError) as excinfo:
        run(dataset, copy_of)
    assert_error(excinfo, RunDirectoryError, record.name, "other settings", "0123456789abcdef")


def test_a_fold_record_of_a_foreign_subject(dataset, copy_of):
    shutil.copy(first_fold_file(copy_of), copy_of / "folds" / "sub99.json")
    with pytest.raises(RunDirectoryError) as excinfo:
        run(dataset, copy_of)
    assert_error(excinfo, RunDirectoryError, "sub99.json", "not a fold of this dataset's subjects")
