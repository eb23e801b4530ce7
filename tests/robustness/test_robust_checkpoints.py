"""Untrusted checkpoints: a pickle that would run code is refused on every loading route, unexecuted."""

from __future__ import annotations

import importlib.util
import json
import pathlib
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.assertions import assert_error
from fmanet_hf import FMANetConfig, FMANetForImageClassification, FMANetImageProcessor
from fmanet_hf.errors import CheckpointError

REPO = Path(__file__).resolve().parents[2]


class _TouchOnUnpickle:
    """Unpickling this object calls pathlib.Path.touch(marker): proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def write_malicious_folder(folder: Path, marker: Path) -> Path:
    """A valid config.json + preprocessor_config.json and a pickle-only pytorch_model.bin with a payload."""
    folder.mkdir(parents=True, exist_ok=True)
    FMANetConfig().save_pretrained(folder)
    FMANetImageProcessor(flow_method="dis").save_pretrained(folder)
    with open(folder / "pytorch_model.bin", "wb") as handle:
        pickle.dump({"classifier.weight": _TouchOnUnpickle(marker)}, handle)
    # The payload really works: unpickling it (in a throw-away copy) creates the marker.
    probe = marker.with_name("probe-marker")
    pickle.loads(pickle.dumps(_TouchOnUnpickle(probe)))
    assert probe.exists()
    probe.unlink()
    return folder


@pytest.fixture
def malicious(tmp_path):
    marker = tmp_path / "PAYLOAD-RAN"
    return write_malicious_folder(tmp_path / "model", marker), marker


def test_model_class_refuses_the_pickle(malicious):
    folder, marker = malicious
    with pytest.raises(CheckpointError) as excinfo:
        FMANetForImageClassification.from_pretrained(folder)
    assert_error(excinfo, CheckpointError, "pytorch_model.bin", "pickle", "convert")
    with pytest.raises(CheckpointError) as excinfo:
        FMANetForImageClassification.from_pretrained(folder, use_safetensors=False)
    assert_error(excinfo, CheckpointError, "safetensors only", "use_safetensors=False")
    assert not marker.exists()


def test_auto_class_refuses_the_pickle(malicious):
    from transformers import AutoModelForImageClassification

    folder, marker = malicious
    with pytest.raises(CheckpointError) as excinfo:
        AutoModelForImageClassification.from_pretrained(folder)
    assert_error(excinfo, CheckpointError, "pytorch_model.bin", "pickle")
    assert not marker.exists()


def test_pipeline_refuses_the_pickle(malicious):
    from transformers import pipeline

    from fmanet_hf.pipeline import micro_expression_pipeline

    folder, marker = malicious
    with pytest.raises(CheckpointError) as excinfo:
        micro_expression_pipeline(model=str(folder))
    assert_error(excinfo, CheckpointError, "pytorch_model.bin", "pickle")
    # transformers' own pipeline() re-raises every load failure of a model class as one
    # ValueError; the CheckpointError is what it reports, and nothing was unpickled.
    with pytest.raises(ValueError) as excinfo:
        pipeline("micro-expression-recognition", model=str(folder))
    assert "CheckpointError" in str(excinfo.value) and "never loads pickles" in str(excinfo.value)
    assert not marker.exists()


def test_cli_predict_refuses_the_pickle(malicious, tmp_path):
    folder, marker = malicious
    frame = tmp_path / "frame.png"
    from PIL import Image

    Image.fromarray(np.full((64, 64), 100, np.uint8)).save(frame)
    env = {"PYTHONPATH": str(REPO / "src"), "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "fmanet_hf.cli", "predict", "--model", str(folder), str(frame), str(frame), str(frame)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=240,
    )
    # The CLI prints a package error as one line and exits with status 2.
    assert result.returncode == 2, result.stderr[-2000:]
    assert "holds pickle-based weights (pytorch_model.bin)" in result.stderr  # check_safe_checkpoint's CheckpointError
    assert "never loads pickles" in result.stderr
    assert "Traceback" not in result.stderr
    assert not marker.exists()


def test_conversion_script_refuses_the_pickle(malicious, tmp_path):
    folder, marker = malicious
    spec = importlib.util.spec_from_file_location("convert_state_dict", REPO / "conversion" / "convert_state_dict.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it executes
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(spec.name, None)
    with pytest.raises(CheckpointError) as excinfo:
        module.convert_state_dict(folder / "pytorch_model.bin", tmp_path / "out", REPO / "conversion" / "sample_key_map.json")
    assert_error(excinfo, CheckpointError, "pytorch_model.bin", "weights_only=True")
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_safetensors_is_used_and_a_pickle_beside_it_ignored(tmp_path):
    marker = tmp_path / "PAYLOAD-RAN"
    folder = write_malicious_folder(tmp_path / "model", marker)
    model = FMANetForImageClassification(FMANetConfig())
    model.save_pretrained(folder)
    loaded = FMANetForImageClassification.from_pretrained(folder)
    assert all(
        np.array_equal(a.detach().numpy(), b.detach().numpy())
        for a, b in zip(model.state_dict().values(), loaded.state_dict().values())
    )
    assert not marker.exists()


def test_truncated_safetensors_is_a_checkpoint_error(tmp_path):
    FMANetForImageClassification(FMANetConfig()).save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(CheckpointError) as excinfo:
        FMANetForImageClassification.from_pretrained(tmp_path)
    assert_error(excinfo, CheckpointError, "model.safetensors", "re-export or re-download")


def test_weights_that_do_not_fit_the_config(tmp_path):
    FMANetForImageClassification(FMANetConfig(hidden_sizes=[32, 64])).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["hidden_sizes"] = [64, 128]
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError) as excinfo:
        FMANetForImageClassification.from_pretrained(tmp_path)
    assert_error(excinfo, CheckpointError, "do not match", "config.json")
