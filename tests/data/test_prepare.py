"""`fmanet_hf.data.prepare`: SynthME -> loader -> cached `prepare_dataset` (computed once, then loaded).

The MM-COF baseline is tested in tests/training/test_baselines.py and the `fmanet-hf` command in
tests/test_cli.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import datasets
import numpy as np
import pytest

from fmanet_hf import FMANetImageProcessor
from fmanet_hf.data import load_casme2
from fmanet_hf.data.prepare import MANIFEST_NAME, cache_path_for, prepare_dataset
from fmanet_hf.data.synthetic import generate_synthme
from fmanet_hf.errors import FMANetError

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


def test_skip_drops_exactly_the_faceless_clips_and_records_them(tiny_synthme, fast_processor, tmp_path):
    from PIL import Image

    from fmanet_hf.data.prepare import skipped_samples

    faces = load_casme2(tiny_synthme, class_set="megc3", dataset_name="synthme")
    flat = tmp_path / "flat.png"
    Image.fromarray(np.full((160, 160, 3), 128, np.uint8)).save(flat)
    # Clip 2 of 6 loses its face: a grey onset frame (the frame the face is detected in).
    faceless_id = faces[2]["sample_id"]
    dataset = faces.map(lambda row, i: {"onset_path": str(flat)} if i == 2 else {}, with_indices=True)

    with pytest.raises(FMANetError, match="No face"):
        prepare_dataset(dataset, fast_processor, tmp_path / "cache", num_proc=1, progress=False)

    prepared = prepare_dataset(dataset, fast_processor, tmp_path / "cache", num_proc=1, progress=False, on_face_missing="skip")
    assert len(prepared) == 5
    assert faceless_id not in prepared["sample_id"]
    assert skipped_samples(dataset, prepared) == [faceless_id]
    # The kept clips' inputs are those the processor makes for them alone.
    kept = prepared[3]
    direct = fast_processor.process_triplet(kept["onset_path"], kept["apex_path"], kept["offset_path"])
    np.testing.assert_array_equal(kept["pixel_values"].numpy(), direct.pixel_values)

    entry = cache_path_for(dataset, fast_processor, tmp_path / "cache", on_face_missing="skip")
    assert entry != cache_path_for(dataset, fast_processor, tmp_path / "cache")
    manifest = json.loads((entry / MANIFEST_NAME).read_text())
    assert manifest["skipped_no_face"] == [faceless_id]
    assert manifest["num_samples"] == 5
    # A later strict call never reads the entry that lacks a clip: it still raises.
    with pytest.raises(FMANetError, match="No face"):
        prepare_dataset(dataset, fast_processor, tmp_path / "cache", num_proc=1, progress=False)


def test_skip_refuses_a_dataset_without_any_face(tmp_path):
    from PIL import Image

    flat = tmp_path / "flat.png"
    Image.fromarray(np.full((64, 64), 128, np.uint8)).save(flat)
    dataset = datasets.Dataset.from_dict(
        {"sample_id": ["a"], "onset_path": [str(flat)], "apex_path": [str(flat)], "offset_path": [str(flat)]}
    )
    with pytest.raises(FMANetError, match="any of the 1 clips"):
        prepare_dataset(dataset, FMANetImageProcessor(flow_method="dis"), tmp_path / "cache", num_proc=1, progress=False, on_face_missing="skip")
    with pytest.raises(FMANetError, match="on_face_missing"):
        prepare_dataset(dataset, FMANetImageProcessor(flow_method="dis"), tmp_path / "cache", on_face_missing="ignore")
