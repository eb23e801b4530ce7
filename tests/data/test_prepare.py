"""End-to-end: SynthME -> loader -> cached `prepare_dataset` -> baseline, and the `fmanet-hf` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import datasets
import numpy as np
import pytest

from fmanet_hf import FMANetImageProcessor
from fmanet_hf.cli import main as cli_main
from fmanet_hf.data import load_casme2
from fmanet_hf.data.prepare import MANIFEST_NAME, cache_path_for, prepare_dataset
from fmanet_hf.data.synthetic import generate_synthme
from fmanet_hf.errors import FMANetError
from fmanet_hf.training.baselines import mmcof_logistic_regression_loso

def _stacked(dataset, column: str) -> np.ndarray:
    return np.stack([np.asarray(row[column]) for row in dataset])


TINY_SYNTH = dict(subjects=2, samples_per_class=1, frames_per_clip=7, image_size=160, progress=False, seed=5)


@pytest.fixture(scope="module")
def tiny_synthme(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "synthme"
    generate_synthme(root, **TINY_SYNTH)
    return root


@pytest.fixture(scope="module")
def fast_processor() -> FMANetImageProcessor:
    return FMANetImageProcessor(flow_method="dis", crop_size=64, size={"height": 32, "width": 32})


def test_prepare_computes_once_then_loads_the_cache(tiny_synthme, fast_processor, tmp_path, monkeypatch):
    dataset = load_casme2(tiny_synthme, class_set="megc3", dataset_name="synthme")
    first = prepare_dataset(dataset, fast_processor, tmp_path, num_proc=1, progress=False)
    assert len(first) == 6
    assert tuple(first[0]["pixel_values"].shape) == (6, 32, 32)
    assert tuple(first[0]["mmcof_values"].shape) == (3, 32, 32)
    # The cached inputs are exactly what the processor makes for that sample.
    row = dataset[0]
    direct = fast_processor.process_triplet(row["onset_path"], row["apex_path"], row["offset_path"])
    np.testing.assert_array_equal(first[0]["pixel_values"].numpy(), direct.pixel_values)

    entry = cache_path_for(dataset, fast_processor, tmp_path)
    manifest = json.loads((entry / MANIFEST_NAME).read_text())
    assert manifest["processor_settings"] == fast_processor.output_settings()

    # Second call: nothing may be computed.
    def refuse(*args, **kwargs):
        raise AssertionError("prepare_dataset recomputed a cached sample")

    monkeypatch.setattr("fmanet_hf.data.prepare._process_example", refuse)
    second = prepare_dataset(dataset, fast_processor, tmp_path, num_proc=1, progress=False)
    np.testing.assert_array_equal(_stacked(second, "pixel_values"), _stacked(first, "pixel_values"))


def test_multiprocess_prepare_after_opencv_was_used_does_not_hang(tiny_synthme, tmp_path):
    """Regression: forking after OpenCV's thread pool ran used to deadlock the workers."""
    script = f"""
import numpy as np, cv2
from fmanet_hf import FMANetImageProcessor
from fmanet_hf.data import load_casme2
from fmanet_hf.data.prepare import prepare_dataset
cv2.setNumThreads(2)
frame = np.random.default_rng(0).random((160, 160)).astype(np.float32)
cv2.optflow.DualTVL1OpticalFlow_create().calc(frame, frame, None)  # warm OpenCV's thread pool
dataset = load_casme2({str(tiny_synthme)!r}, class_set="megc3", dataset_name="synthme")
processor = FMANetImageProcessor(flow_method="dis", crop_size=64, size={{"height": 32, "width": 32}})
prepared = prepare_dataset(dataset, processor, {str(tmp_path)!r}, num_proc=2, progress=False)
assert cv2.getNumThreads() == 2, "the caller's OpenCV thread setting must be restored"
print(len(prepared))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("6")


def test_other_settings_get_another_cache_entry(tiny_synthme, fast_processor, tmp_path):
    dataset = load_casme2(tiny_synthme, class_set="megc3", dataset_name="synthme").select(range(2))
    other = FMANetImageProcessor.from_dict({**fast_processor.to_dict(), "flow_normalization": "joint_max"})
    assert cache_path_for(dataset, fast_processor, tmp_path) != cache_path_for(dataset, other, tmp_path)


def test_a_corrupt_manifest_is_rebuilt_not_trusted(tiny_synthme, fast_processor, tmp_path):
    dataset = load_casme2(tiny_synthme, class_set="megc3", dataset_name="synthme").select(range(2))
    prepared = prepare_dataset(dataset, fast_processor, tmp_path, num_proc=1, progress=False)
    entry = cache_path_for(dataset, fast_processor, tmp_path)
    (entry / MANIFEST_NAME).write_text("{ half written")
    rebuilt = prepare_dataset(dataset, fast_processor, tmp_path, num_proc=1, progress=False)
    np.testing.assert_array_equal(_stacked(rebuilt, "pixel_values"), _stacked(prepared, "pixel_values"))
    assert json.loads((entry / MANIFEST_NAME).read_text())["num_samples"] == 2


def test_prepare_refuses_data_without_frame_columns(fast_processor, tmp_path):
    with pytest.raises(FMANetError, match="onset_path"):
        prepare_dataset(datasets.Dataset.from_dict({"x": [1]}), fast_processor, tmp_path)


def test_a_sample_without_a_face_raises_the_package_error(tmp_path):
    from PIL import Image

    flat = tmp_path / "flat.png"
    Image.fromarray(np.full((64, 64), 128, np.uint8)).save(flat)
    dataset = datasets.Dataset.from_dict({"onset_path": [str(flat)], "apex_path": [str(flat)], "offset_path": [str(flat)]})
    with pytest.raises(FMANetError, match="No face"):
        prepare_dataset(dataset, FMANetImageProcessor(flow_method="dis"), tmp_path / "cache", num_proc=1, progress=False)
    assert not list((tmp_path / "cache").glob("*/" + MANIFEST_NAME))


def _prepared_toy(num_subjects: int, per_class: int, separable: bool, seed: int = 0):
    """Prepared-like dataset whose MM-COF carries the class (separable) or nothing (noise)."""
    rng = np.random.default_rng(seed)
    rows = {"subject": [], "dataset": [], "label_id": [], "mmcof_values": []}
    for subject in range(num_subjects):
        for label in range(3):
            for _ in range(per_class):
                maps = rng.normal(0, 1, (3, 8, 8)).astype(np.float32)
                if separable:
                    maps[label] += 3.0  # class k moves channel k
                rows["subject"].append(f"toy/s{subject}")
                rows["dataset"].append("toy")
                rows["label_id"].append(label)
                rows["mmcof_values"].append(maps)
    features = datasets.Features(
        {
            "subject": datasets.Value("string"),
            "dataset": datasets.Value("string"),
            "label_id": datasets.ClassLabel(names=["negative", "positive", "surprise"]),
            "mmcof_values": datasets.Array3D((3, 8, 8), "float32"),
        }
    )
    return datasets.Dataset.from_dict(rows, features=features)


def test_baseline_separates_a_separable_set_and_is_at_chance_on_noise():
    separable = mmcof_logistic_regression_loso(_prepared_toy(5, 4, True), pool=4)
    assert separable["uar"] == 1.0 and separable["num_folds"] == 5
    noise = mmcof_logistic_regression_loso(_prepared_toy(5, 4, False), pool=4)
    # 60 samples of pure noise: pooled UAR must stay near 1/3 (binomial sd ~0.06).
    assert abs(noise["uar"] - 1 / 3) < 0.2
    assert noise["chance_uar"] == pytest.approx(1 / 3)


# ----------------------------------------------------------------------------- CLI
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
    assert payload["trained_model"] in (True, False)
    assert len(payload["results"]) == 3
    true_labels = sorted(r["sample"].split("true: ")[1].rstrip(")") for r in payload["results"])
    assert true_labels == ["negative", "positive", "surprise"]
    for result_row in payload["results"]:
        assert sum(result_row["scores"].values()) == pytest.approx(1.0, abs=1e-5)
    if not payload["trained_model"]:
        assert "UNTRAINED" in result.stderr


def test_flow_params_option_selects_opencv_tvl1_or_json(tmp_path):
    """--flow-params opencv reproduces runs made before the faster TV-L1 default."""
    import argparse

    from fmanet_hf.cli import flow_params_argument, processor_overrides
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
    assert FMANetImageProcessor().flow_params == DEFAULT_FLOW_PARAMS["tvl1"] != OPENCV_TVL1_PARAMS
    # OpenCV's defaults as written in its documentation of DualTVL1OpticalFlow_create.
    assert (OPENCV_TVL1_PARAMS["nscales"], OPENCV_TVL1_PARAMS["warps"], OPENCV_TVL1_PARAMS["inner_iterations"],
            OPENCV_TVL1_PARAMS["outer_iterations"], OPENCV_TVL1_PARAMS["epsilon"]) == (5, 5, 30, 10, 0.01)
    with pytest.raises(FMANetConfigError, match="Unknown parameter 'nscales' for flow_method='dis'"):
        FMANetImageProcessor(**processor_overrides(argparse.Namespace(flow_method="dis", flow_params={"nscales": 5})))
