"""The "micro-expression-recognition" pipeline: registration, input forms, outputs, videos, errors."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from transformers import pipeline
from transformers.pipelines import PIPELINE_REGISTRY

import fmanet_hf
from fmanet_hf import (
    FMANetConfigError,
    FMANetForImageClassification,
    FMANetImageProcessor,
    FrameCountError,
    KeyFrameError,
)
from fmanet_hf.pipeline import TASK, MicroExpressionRecognitionPipeline, micro_expression_pipeline
from tests.helpers.tiny import tiny_config, tiny_model

LABELS = {0: "negative", 1: "positive", 2: "surprise"}


def _processor() -> FMANetImageProcessor:
    # Frames here are synthetic textures, not faces: no alignment; DIS flow for speed.
    return FMANetImageProcessor(align_faces=False, crop_size=64, size={"height": 32, "width": 32}, flow_method="dis")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    model = tiny_model(seed=11, id2label=LABELS)
    with torch.no_grad():
        model.classifier.weight.mul_(40.0)  # spread the scores so the ranking is not a near-tie
    folder = tmp_path_factory.mktemp("tiny-model")
    model.save_pretrained(folder)
    _processor().save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def frames():
    """Onset, apex, offset: a smooth random texture with a local bump that moves and relaxes."""
    rng = np.random.default_rng(3)
    base = cv2.GaussianBlur((rng.random((96, 96)) * 255).astype(np.float32), (0, 0), 2.0)
    ys, xs = np.mgrid[0:96, 0:96].astype(np.float32)
    bump = np.exp(-((xs - 40) ** 2 + (ys - 50) ** 2) / (2 * 10.0**2))

    def moved(amount):
        return np.clip(cv2.remap(base, xs - amount * bump, ys, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT), 0, 255).astype(np.uint8)

    return moved(0.0), moved(2.0), moved(0.4)


@pytest.fixture(scope="module")
def classify(model_dir):
    return pipeline(TASK, model=str(model_dir), device="cpu")


def _expected(model_dir, triplet):
    """Probabilities computed without the pipeline: processor + model by hand."""
    model = FMANetForImageClassification.from_pretrained(model_dir).eval()
    inputs = FMANetImageProcessor.from_pretrained(model_dir)(*triplet, return_tensors="pt")
    with torch.no_grad():
        outputs = model(**inputs)
    return outputs.logits.softmax(-1)[0].double().numpy(), outputs.attention_map[0, 0].numpy()


def test_task_is_registered_on_import():
    assert TASK in PIPELINE_REGISTRY.get_supported_tasks()
    assert PIPELINE_REGISTRY.supported_tasks[TASK]["impl"] is MicroExpressionRecognitionPipeline
    fmanet_hf.pipeline.register_pipeline()  # idempotent
    assert PIPELINE_REGISTRY.supported_tasks[TASK]["impl"] is MicroExpressionRecognitionPipeline


def test_triplet_scores_match_the_model(classify, model_dir, frames):
    expected, attention = _expected(model_dir, frames)
    result = classify(frames)
    assert [r["label"] for r in result] == [LABELS[i] for i in np.argsort(-expected)]
    assert [r["score"] for r in result] == pytest.approx(sorted(expected, reverse=True), abs=1e-6)
    assert sum(r["score"] for r in result) == pytest.approx(1.0, abs=1e-6)
    assert classify(frames, top_k=1) == result[:1]
    detailed = classify(frames, return_attention=True)
    assert detailed["predictions"] == result
    assert detailed["attention_map"].shape == (16, 16)  # image_size / 2
    np.testing.assert_allclose(detailed["attention_map"], attention, atol=1e-6)
    assert detailed["phase_fusion_weights"].shape == (2,)
    assert "key_frames" not in detailed


def test_input_forms_agree(classify, frames, tmp_path):
    from PIL import Image

    reference = classify(frames)
    paths = []
    for name, frame in zip(("onset", "apex", "offset"), frames):
        paths.append(str(tmp_path / f"{name}.png"))
        Image.fromarray(frame).save(paths[-1])
    assert classify({"onset": frames[0], "apex": frames[1], "offset": frames[2]}) == reference
    assert classify(onset=frames[0], apex=frames[1], offset=frames[2]) == reference
    assert classify(list(frames)) == reference  # one triplet given as a list
    assert classify(tuple(paths)) == reference  # PNG is lossless
    assert classify([frames, {"onset": paths[0], "apex": paths[1], "offset": paths[2]}]) == [reference, reference]
    assert classify({"frames": list(frames)}) == reference  # a 3-frame clip is a triplet


def test_clip_and_video_inputs(classify, frames, tmp_path):
    # A clip of 7 frames whose apex frames are at positions 2-4: the apex estimate lands there.
    onset, apex, offset = frames
    clip = [onset, onset, apex, apex, apex, offset, offset]
    result = classify({"frames": clip}, return_attention=True)
    assert result["key_frames"]["apex_estimated"] and 2 <= result["key_frames"]["apex"] <= 4
    assert result["predictions"] == classify(frames)

    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), 30.0, (96, 96))
    for frame in [onset, onset, apex, apex, offset, offset]:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    writer.release()
    given = classify(str(path), onset=1, apex=3, offset=5, return_attention=True)
    assert given["key_frames"] == {"onset": 1, "apex": 3, "offset": 5, "apex_estimated": False, "fps": pytest.approx(30.0)}
    assert given["predictions"] == classify(frames)  # lossless video: the same pixels
    estimated = classify({"video": str(path), "onset": 0, "offset": 5}, return_attention=True)
    assert estimated["key_frames"]["apex_estimated"] and estimated["key_frames"]["apex"] in (2, 3)
    assert classify(str(path), onset=1, apex=3, offset=5) == given["predictions"]


def test_input_errors(classify, frames):
    with pytest.raises(FrameCountError, match="no apex"):
        classify({"onset": frames[0], "offset": frames[2]})
    with pytest.raises(KeyFrameError, match="needs its key frames"):
        classify("clip.mp4")
    with pytest.raises(KeyFrameError, match="onset and offset frame indices"):
        classify({"video": "clip.mp4", "onset": 3})
    with pytest.raises(FrameCountError, match="positional"):
        classify(frames[0], frames[1], frames[2])
    with pytest.raises(FrameCountError, match="a triplet"):
        classify(42)
    with pytest.raises(FMANetConfigError, match="Unknown argument"):
        classify(frames, temperature=2)
    with pytest.raises(FMANetConfigError, match="top_k"):
        classify(frames, top_k=0)
    with pytest.raises(KeyFrameError, match="onset < apex < offset"):
        classify("missing.mp4", onset=5, apex=2, offset=9)


def test_model_object_and_processor_checks(model_dir, frames):
    model = FMANetForImageClassification.from_pretrained(model_dir)
    # A model object: the processor saved next to it is found.
    classify = pipeline(TASK, model=model, device="cpu")
    assert classify(frames) == pipeline(TASK, model=str(model_dir), device="cpu")(frames)
    wrong = FMANetImageProcessor(align_faces=False, crop_size=64, flow_method="dis")  # 64 x 64 output
    with pytest.raises(FMANetConfigError, match="32x32"):
        pipeline(TASK, model=model, image_processor=wrong, device="cpu")
    bare = FMANetForImageClassification(tiny_config())
    with pytest.raises(FMANetConfigError, match="No image processor"):
        MicroExpressionRecognitionPipeline(model=bare, task=TASK, device="cpu")
    helper = micro_expression_pipeline(model_dir)
    assert helper(frames) == classify(frames)


def test_default_model_is_the_bundled_checkpoint():
    from fmanet_hf.pretrained import bundled_model_path

    if bundled_model_path() is None:
        pytest.skip("this install has no bundled checkpoint")
    classify = micro_expression_pipeline()
    assert classify.model.config.id2label == {0: "negative", 1: "positive", 2: "surprise"}
    assert PIPELINE_REGISTRY.supported_tasks[TASK]["default"]["model"][0] == str(bundled_model_path())


# ------------------------------------------------------------------ what transformers pipelines accept
def _other_triplet(frames):
    """A second sample whose scores differ from ``frames``' (apex and offset swapped)."""
    return frames[0], frames[2], frames[1]


def test_generators_datasets_and_key_datasets_stream_like_transformers_pipelines(classify, frames):
    # A Hugging Face user feeds a pipeline a datasets.Dataset, a KeyDataset, a streaming dataset or a
    # generator, with batch_size; results come back one per sample, in order, as an iterator.
    from datasets import Dataset, Features, Image, Sequence, Value
    from PIL import Image as PILImage
    from transformers.pipelines.pt_utils import KeyDataset

    samples = [frames, _other_triplet(frames), frames, _other_triplet(frames), frames]
    expected = [classify(sample) for sample in samples]  # one call per sample
    assert expected[0] != expected[1]  # so that an order mix-up would show

    def same(results):
        results = list(results)
        assert len(results) == len(expected)
        for got, want in zip(results, expected):
            assert [r["label"] for r in got] == [r["label"] for r in want]
            assert [r["score"] for r in got] == pytest.approx([r["score"] for r in want], abs=1e-6)

    columns = {name: [PILImage.fromarray(s[i]) for s in samples] for i, name in enumerate(("onset", "apex", "offset"))}
    dataset = Dataset.from_dict(columns, features=Features({name: Image() for name in columns}))  # PNG: lossless
    for batch_size in (1, 2):
        streamed = classify(dataset, batch_size=batch_size)
        assert not isinstance(streamed, list)  # lazy, as transformers streams datasets
        same(streamed)
        same(classify(dataset.to_iterable_dataset(), batch_size=batch_size))  # streaming
        same(classify((s for s in samples), batch_size=batch_size))  # a generator
        same(classify(list(samples), batch_size=batch_size))  # a list: a list back
    assert isinstance(classify(list(samples), batch_size=2), list)

    triplets = Dataset.from_dict(
        {"frames": [[PILImage.fromarray(f) for f in s] for s in samples], "subject": ["a"] * len(samples)},
        features=Features({"frames": Sequence(Image()), "subject": Value("string")}),
    )
    same(classify(KeyDataset(triplets, "frames"), batch_size=2))


def test_batched_detailed_outputs_are_per_sample(classify, frames):
    samples = [frames, _other_triplet(frames), frames]
    one_by_one = [classify(s, return_attention=True) for s in samples]
    batched = list(classify((s for s in samples), batch_size=2, return_attention=True))
    for got, want in zip(batched, one_by_one):
        assert got["attention_map"].shape == want["attention_map"].shape == (16, 16)
        np.testing.assert_allclose(got["attention_map"], want["attention_map"], atol=1e-6)
        np.testing.assert_allclose(got["phase_fusion_weights"], want["phase_fusion_weights"], atol=1e-7)
        assert got["phase_fusion_weights"].shape == (2,)


def test_rows_of_the_package_datasets_are_samples(classify, frames, tmp_path):
    # A loader's dataset names frame files in onset_path / apex_path / offset_path.
    from datasets import Dataset
    from PIL import Image as PILImage

    paths = {}
    for name, frame in zip(("onset", "apex", "offset"), frames):
        paths[f"{name}_path"] = [str(tmp_path / f"{name}.png")]
        PILImage.fromarray(frame).save(paths[f"{name}_path"][0])
    rows = Dataset.from_dict({**paths, "label": ["positive"], "subject": ["s1"]})
    assert list(classify(rows)) == [classify(frames)]
