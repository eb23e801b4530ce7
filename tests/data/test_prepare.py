"""`fmanet_hf.data.prepare`: SynthME -> loader -> cached `prepare_dataset` (computed once, then loaded).

The MM-COF baseline is tested in tests/training/test_baselines.py and the `fmanet-hf` command in
tests/test_cli.py."""

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


@pytest.fixture
def computations(monkeypatch):
    """Sample ids whose inputs the processor really computed (face + two flows), in call order."""
    calls: list[str] = []
    original = FMANetImageProcessor.process_triplet

    def counting(self, onset, apex, offset):
        calls.append(str(onset))
        return original(self, onset, apex, offset)

    monkeypatch.setattr(FMANetImageProcessor, "process_triplet", counting)
    return calls


def test_shuffled_and_selected_datasets_reuse_the_prepared_samples(tiny_synthme, fast_processor, tmp_path, computations):
    # A Hugging Face user shuffles, slices or splits the dataset before preparing it again.
    dataset = load_casme2(tiny_synthme, class_set="megc3", dataset_name="synthme")
    full = prepare_dataset(dataset, fast_processor, tmp_path, num_proc=1, progress=False)
    assert len(computations) == 6
    by_id = {row["sample_id"]: row["pixel_values"].numpy() for row in full}

    computations.clear()
    for variant in (dataset.shuffle(seed=3), dataset.select([4, 1]), dataset.train_test_split(test_size=2, seed=0)["test"]):
        prepared = prepare_dataset(variant, fast_processor, tmp_path, num_proc=1, progress=False)
        assert prepared["sample_id"] == variant["sample_id"]  # the variant's own order
        for row in prepared:
            np.testing.assert_array_equal(row["pixel_values"].numpy(), by_id[row["sample_id"]])
    assert computations == []  # every sample came from the per-sample store

    # A relabelled set (same frames) reuses them too; a sample with a changed frame file does not.
    relabelled = dataset.map(lambda row: {"label": "negative", "label_id": 0})
    prepare_dataset(relabelled, fast_processor, tmp_path, num_proc=1, progress=False)
    assert computations == []
    touched = dataset[0]["apex_path"]
    os.utime(touched, ns=(os.stat(touched).st_atime_ns, os.stat(touched).st_mtime_ns + 10**9))
    prepare_dataset(dataset, fast_processor, tmp_path, num_proc=1, progress=False)
    assert len(computations) == 1


def test_a_new_library_version_or_landmark_model_invalidates_the_cache(tiny_synthme, fast_processor, tmp_path, computations, monkeypatch):
    import cv2

    from fmanet_hf.data import prepare as prepare_module
    from fmanet_hf.face import find_landmark_model

    dataset = load_casme2(tiny_synthme, class_set="megc3", dataset_name="synthme").select([0, 1])
    prepare_dataset(dataset, fast_processor, tmp_path, num_proc=1, progress=False)
    before = cache_path_for(dataset, fast_processor, tmp_path)
    manifest = json.loads((before / MANIFEST_NAME).read_text())
    assert manifest["processing_environment"]["opencv"] == cv2.__version__
    assert len(manifest["processing_environment"]["landmark_model_sha256"]) == 64
    computations.clear()

    with monkeypatch.context() as patched:
        patched.setattr(cv2, "__version__", cv2.__version__ + "-other-build")  # another OpenCV
        assert cache_path_for(dataset, fast_processor, tmp_path) != before
        prepare_dataset(dataset, fast_processor, tmp_path, num_proc=1, progress=False)
        assert len(computations) == 2

    # Another landmark model file (same settings otherwise): a copy with one byte changed.
    computations.clear()
    other_model = tmp_path / "other_landmarks.dat"
    other_model.write_bytes(Path(find_landmark_model()).read_bytes()[:-1] + b"\0")
    assert prepare_module.processing_fingerprint(
        FMANetImageProcessor(**{**fast_processor.to_dict(), "landmark_model_path": str(other_model)})
    ) != prepare_module.processing_fingerprint(fast_processor)
    # And the dlib version (face detection, landmarks).
    import dlib

    with monkeypatch.context() as patched:
        patched.setattr(dlib, "__version__", "0.0-test", raising=False)
        assert cache_path_for(dataset, fast_processor, tmp_path) != before
    assert cache_path_for(dataset, fast_processor, tmp_path) == before
    prepare_dataset(dataset, fast_processor, tmp_path, num_proc=1, progress=False)
    assert computations == []


def test_a_damaged_stored_sample_is_recomputed(tiny_synthme, fast_processor, tmp_path, computations):
    from fmanet_hf.data.prepare import sample_key, sample_store_path

    dataset = load_casme2(tiny_synthme, class_set="megc3", dataset_name="synthme").select([0, 1])
    first = prepare_dataset(dataset, fast_processor, tmp_path, num_proc=1, progress=False)
    key = sample_key(dataset[1])
    stored = sample_store_path(fast_processor, tmp_path) / key[:2] / f"{key}.npz"
    stored.write_bytes(stored.read_bytes()[:50])
    computations.clear()
    again = prepare_dataset(dataset.select([1]), fast_processor, tmp_path, num_proc=1, progress=False)
    assert len(computations) == 1
    np.testing.assert_array_equal(again[0]["pixel_values"].numpy(), first[1]["pixel_values"].numpy())


def test_a_plain_transformers_trainer_trains_and_predicts_on_the_prepared_dataset(tiny_synthme, fast_processor, tmp_path):
    # A Hugging Face user: the prepared dataset straight into transformers.Trainer, default collator,
    # default remove_unused_columns, no package glue.
    import torch
    from transformers import AutoModelForImageClassification, Trainer, TrainingArguments

    from fmanet_hf import FMANetConfig

    dataset = load_casme2(tiny_synthme, class_set="megc3", dataset_name="synthme")
    prepared = prepare_dataset(dataset, fast_processor, tmp_path / "cache", num_proc=1, progress=False)
    assert prepared.features["labels"].names == ["negative", "positive", "surprise"]
    assert [int(v) for v in prepared["labels"]] == list(dataset["label_id"])  # the integer target, where transformers looks
    assert list(prepared["label_name"]) == list(dataset["label"])  # the class names, kept under another name
    config = FMANetConfig(image_size=32, encoder_hidden_size=8, hidden_sizes=[8, 16], num_groups=4,
                          id2label=dict(enumerate(prepared.features["labels"].names)))
    torch.manual_seed(0)
    model = AutoModelForImageClassification.from_config(config)
    args = TrainingArguments(output_dir=str(tmp_path / "run"), num_train_epochs=1, per_device_train_batch_size=4,
                             per_device_eval_batch_size=4, use_cpu=True, report_to="none", seed=0, disable_tqdm=True)
    trainer = Trainer(model=model, args=args, train_dataset=prepared, eval_dataset=prepared)
    trainer.train()
    assert "eval_loss" in trainer.evaluate()

    output = trainer.predict(prepared)  # batches of 4 and 2
    assert output.label_ids.tolist() == list(dataset["label_id"])
    logits, attention_map, fusion_weights = output.predictions  # every field per sample
    assert logits.shape == (6, 3) and attention_map.shape == (6, 1, 16, 16) and fusion_weights.shape == (6, 2, 8)
    model.eval()
    with torch.no_grad():
        by_hand = model(pixel_values=torch.stack([row["pixel_values"] for row in prepared])).logits.numpy()
    np.testing.assert_allclose(logits, by_hand, atol=1e-5)
    np.testing.assert_allclose(fusion_weights.sum(axis=1), 1.0, atol=1e-6)


def test_the_mediapipe_backend_keys_the_cache_on_its_model_files_not_on_dlib(tmp_path):
    """With face_backend="mediapipe" the processing environment names the SHA-256 of MediaPipe's
    two model files (computed here with hashlib) instead of dlib's version and model."""
    import hashlib

    from fmanet_hf.data.prepare import processing_environment, processing_fingerprint
    from fmanet_hf.errors import LandmarkModelError
    from fmanet_hf.face_mediapipe import find_mediapipe_models

    try:
        paths = find_mediapipe_models()
    except LandmarkModelError as error:
        if os.environ.get("CI"):
            pytest.fail(f"MediaPipe's model files are missing in CI: {error}")
        pytest.skip(str(error))
    processor = FMANetImageProcessor(face_backend="mediapipe")
    environment = processing_environment(processor)
    expected = ",".join(hashlib.sha256(Path(path).read_bytes()).hexdigest() for path in paths)
    assert environment["mediapipe_models_sha256"] == expected
    assert "dlib" not in environment and "landmark_model_sha256" not in environment
    assert processing_fingerprint(processor) != processing_fingerprint(FMANetImageProcessor())
