"""Golden test of the bundled checkpoint (``fmanet_hf/checkpoints/synthme-megc3``).

The bundled model is loaded exactly as `fmanet_hf.pretrained.load_default_model` loads it (the
package's own classes, not the remote-code copies beside the weights) and run on fixed inputs:

1. a seeded, processor-like ``pixel_values`` tensor (4 samples) straight through the model;
2. the three SynthME clips of ``fmanet-hf predict --example`` (generated with the same seed),
   through the processor and then the model, end to end.

Its probabilities (and, for 2., a fingerprint of the processor's output, so that a failure says
which half changed) are compared with the values stored in ``tests/golden/bundled_synthme_megc3.json``
to 1e-5 absolute.

Why: the weights file is trained data, not code. A change to the forward pass (or to the
processor) plus a re-copy of the remote-code files passes every other test, while the shipped
weights silently stop meaning what their model card says. This test is the one that notices.

Rule for later work: update the golden values ONLY in the commit that retrains the bundled model
or deliberately changes the processor (or bumps a pinned dependency that changes these numbers,
e.g. OpenCV's optical flow or dlib's landmarks), and say why in that commit's message. Rewrite them
with ``python -m tests.test_bundled_model_golden --write`` from the repository root. A refactor
must never need to touch this file: if it fails after one, the refactor changed the model's
behaviour.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

GOLDEN_PATH = Path(__file__).resolve().parent / "golden" / "bundled_synthme_megc3.json"
TOLERANCE = 1e-5

#: The seeded input: per phase u, v uniform in [-1, 1] / sqrt(2) and M = |(u, v)|, like the processor's output.
SEEDED_INPUT = {"seed": 20240607, "batch_size": 4}
#: The clips of ``fmanet-hf predict --example`` (see fmanet_hf.cli), from the astronaut photograph.
EXAMPLE_CLIPS = {"subjects": 1, "samples_per_class": 1, "seed": 0, "face_sources": ["scikit-image/astronaut"]}


def seeded_pixel_values(config, seed: int, batch_size: int) -> torch.Tensor:
    """(batch_size, 6, S, S) float32 from a seeded generator (S = config.image_size)."""
    generator = torch.Generator().manual_seed(seed)
    size = config.image_size
    phases = []
    for _ in range(2):
        uv = (torch.rand(batch_size, 2, size, size, generator=generator) * 2 - 1) / math.sqrt(2)
        phases += [uv, uv.norm(dim=1, keepdim=True)]
    return torch.cat(phases, dim=1).float()


def load_bundled():
    """(model, processor) as `load_default_model` gives them; fails (never falls back) without the checkpoint."""
    from fmanet_hf.pretrained import BUNDLED_MODEL_DIR, bundled_model_path, load_default_model

    assert bundled_model_path() == BUNDLED_MODEL_DIR, f"the bundled checkpoint is missing: {BUNDLED_MODEL_DIR}"
    model, processor, trained = load_default_model()
    assert trained, "load_default_model fell back to an untrained model"
    return model, processor


def probabilities(model, pixel_values: torch.Tensor) -> list[list[float]]:
    with torch.no_grad():
        return model(pixel_values=pixel_values).logits.softmax(-1).tolist()


def example_clip_outputs(model, processor, folder: Path) -> list[dict]:
    """Per example clip: its id, true label, processor-output fingerprint and probabilities."""
    from fmanet_hf.data import load_casme2
    from fmanet_hf.data.synthetic import generate_synthme

    generate_synthme(folder, progress=False, **EXAMPLE_CLIPS)
    outputs = []
    for row in load_casme2(folder, class_set="megc3", dataset_name="synthme"):
        pixel_values = processor(row["onset_path"], row["apex_path"], row["offset_path"], return_tensors="pt")["pixel_values"]
        channels = pixel_values[0].double()
        outputs.append(
            {
                "sample_id": row["sample_id"],
                "label": row["label"],
                "pixel_values_shape": list(pixel_values.shape),
                "pixel_values_channel_mean": channels.mean(dim=(1, 2)).tolist(),
                "pixel_values_channel_mean_abs": channels.abs().mean(dim=(1, 2)).tolist(),
                "probabilities": probabilities(model, pixel_values)[0],
            }
        )
    return outputs


def compute_golden(work_dir: Path) -> dict:
    model, processor = load_bundled()
    pixel_values = seeded_pixel_values(model.config, **SEEDED_INPUT)
    return {
        "checkpoint": "src/fmanet_hf/checkpoints/synthme-megc3 (loaded by fmanet_hf.pretrained.load_default_model)",
        "class_names": [model.config.id2label[i] for i in range(model.config.num_labels)],
        "seeded_input": {**SEEDED_INPUT, "shape": list(pixel_values.shape), "probabilities": probabilities(model, pixel_values)},
        "example_clips": {"generate_synthme": EXAMPLE_CLIPS, "samples": example_clip_outputs(model, processor, work_dir / "synthme")},
    }


@pytest.fixture(scope="module")
def golden() -> dict:
    return json.loads(GOLDEN_PATH.read_text())


@pytest.fixture(scope="module")
def bundled():
    return load_bundled()


def assert_close(got, expected, what: str) -> None:
    got, expected = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    assert got.shape == expected.shape, (what, got.shape, expected.shape)
    worst = float(np.max(np.abs(got - expected)))
    assert worst <= TOLERANCE, (
        f"{what} differ from tests/golden/bundled_synthme_megc3.json by up to {worst:.3g} (> {TOLERANCE}). "
        "The bundled model's outputs changed: see this module's docstring before touching the golden values."
    )


def test_bundled_model_on_a_seeded_input_matches_the_golden_probabilities(bundled, golden):
    model, _ = bundled
    expected = golden["seeded_input"]
    assert [model.config.id2label[i] for i in range(model.config.num_labels)] == golden["class_names"]
    pixel_values = seeded_pixel_values(model.config, expected["seed"], expected["batch_size"])
    assert list(pixel_values.shape) == expected["shape"]
    got = probabilities(model, pixel_values)
    assert_close(got, expected["probabilities"], "probabilities on the seeded input")


@pytest.mark.slow
def test_bundled_processor_and_model_on_the_example_clips_match_the_golden_values(bundled, golden, tmp_path):
    model, processor = bundled
    expected = golden["example_clips"]
    assert expected["generate_synthme"] == EXAMPLE_CLIPS
    got = example_clip_outputs(model, processor, tmp_path / "synthme")
    assert [(g["sample_id"], g["label"]) for g in got] == [(e["sample_id"], e["label"]) for e in expected["samples"]]
    for g, e in zip(got, expected["samples"]):
        assert g["pixel_values_shape"] == e["pixel_values_shape"]
        # The processor's half first, so that a failure says which half changed.
        assert_close(g["pixel_values_channel_mean"], e["pixel_values_channel_mean"], f"{g['sample_id']}: processor channel means")
        assert_close(g["pixel_values_channel_mean_abs"], e["pixel_values_channel_mean_abs"], f"{g['sample_id']}: processor channel |means|")
        assert_close(g["probabilities"], e["probabilities"], f"{g['sample_id']}: probabilities")


if __name__ == "__main__":
    # Only in the commit that retrains the bundled model or changes the processor (see the docstring).
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python -m tests.test_bundled_model_golden --write   (read the module docstring first)")
    import re
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        values = compute_golden(Path(scratch))
    GOLDEN_PATH.parent.mkdir(exist_ok=True)
    text = json.dumps(values, indent=1)
    # One line per list of numbers or names, so that a diff of the golden values reads as a table.
    text = re.sub(r"\[[^\[\]{}]*\]", lambda match: json.dumps(json.loads(match.group(0))), text)
    GOLDEN_PATH.write_text(text + "\n")
    print(f"wrote {GOLDEN_PATH}")
