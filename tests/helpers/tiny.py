"""The one builder of tiny models and tiny prepared datasets for the tests and their subprocess scripts.

Every test that needs a small FMANet builds it here (`tiny_config_kwargs` / `tiny_config` /
`tiny_model`), overriding only what it is about (e.g. ``encoder_depth=2`` where parameter counts
are worked out by hand for two encoder convolutions), so that the network every test exercises is
the same one.

The datasets look like the output of `prepare_dataset` (``pixel_values`` (6, S, S) float32
in torch format, ``label_id`` as a ``ClassLabel``, ``subject``, ``sample_id``, ``dataset``)
but are made directly from a seeded RNG: no frames, no optical flow, milliseconds to build.

torch and fmanet_hf are imported inside the functions that need them, so that importing this
module stays cheap.
"""

from __future__ import annotations

import math

import numpy as np

CLASS_NAMES = ["negative", "positive", "surprise"]

#: The tiny network: one 8-channel encoder convolution per phase, then 2 trunk stages of 8 and 16 channels
#: (GroupNorm with 4 groups). ``tiny_config_kwargs`` adds the image size and switches dropout off.
TINY_ARCHITECTURE = {
    "encoder_hidden_size": 8,
    "encoder_depth": 1,
    "hidden_sizes": [8, 16],
    "depths": [1, 1],
    "num_groups": 4,
}


def tiny_config_kwargs(image_size: int = 32, **overrides) -> dict:
    """Keyword arguments of the tiny FMANetConfig: `TINY_ARCHITECTURE`, ``image_size``, no dropout, then ``overrides``.

    No dropout keeps training runs deterministic for a given seed; a test about dropout overrides it.
    """
    values = dict(image_size=image_size, **{key: list(v) if isinstance(v, list) else v for key, v in TINY_ARCHITECTURE.items()})
    values["classifier_dropout"] = 0.0
    values.update(overrides)
    return values


def tiny_config(image_size: int = 32, **overrides):
    """The tiny `FMANetConfig` (see `tiny_config_kwargs`)."""
    from fmanet_hf import FMANetConfig

    return FMANetConfig(**tiny_config_kwargs(image_size, **overrides))


def tiny_model(seed: int = 0, image_size: int = 32, **overrides):
    """A freshly initialised tiny `FMANetForImageClassification` in eval mode; ``torch.manual_seed(seed)`` first."""
    import torch

    from fmanet_hf import FMANetForImageClassification

    config = tiny_config(image_size, **overrides)
    torch.manual_seed(seed)
    return FMANetForImageClassification(config).eval()


def tiny_pixel_values(config, batch_size: int = 3, seed: int = 0):
    """Processor-like ``pixel_values`` (B, 2 * C, S, S) for ``config``, from a seeded generator.

    Per phase: u, v uniform in [-1, 1] / sqrt(2), M = |(u, v)| in [0, 1], and for a strain config
    a fourth channel uniform in [0, 1].
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    phases = []
    for _ in range(2):
        uv = torch.rand(batch_size, 2, config.image_size, config.image_size, generator=generator) * 2 - 1
        uv = uv / math.sqrt(2)
        channels = [uv, uv.norm(dim=1, keepdim=True)]
        if config.num_channels_per_phase == 4:
            channels.append(torch.rand(batch_size, 1, config.image_size, config.image_size, generator=generator))
        phases.extend(channels)
    return torch.cat(phases, dim=1)


def make_prepared_dataset(
    subjects: int = 4,
    per_subject: int = 3,
    image_size: int = 32,
    seed: int = 0,
    labels: list[list[int]] | None = None,
    dataset_names: list[str] | None = None,
):
    """A prepared-like ``datasets.Dataset``.

    Args:
        subjects: number of subjects ``s1``..``sN``.
        per_subject: samples per subject (ignored where ``labels`` is given).
        image_size: side of ``pixel_values``.
        seed: RNG seed of the pixel values.
        labels: optional per-subject class lists, e.g. ``[[0, 1], [2], ...]``; default cycles
            through the classes.
        dataset_names: optional per-subject dataset names (default all ``"toy"``).

    The pixel values are noise plus a class-dependent magnitude blob, so a model can learn.
    """
    import datasets

    rng = np.random.default_rng(seed)
    rows = {"sample_id": [], "subject": [], "dataset": [], "label": [], "label_id": [], "pixel_values": []}
    counter = 0
    for s in range(subjects):
        subject = f"s{s + 1}"
        name = dataset_names[s] if dataset_names else "toy"
        subject_labels = labels[s] if labels is not None else [(counter + k) % 3 for k in range(per_subject)]
        for k, label in enumerate(subject_labels):
            counter += 1
            pixels = rng.normal(0.0, 0.3, size=(6, image_size, image_size)).astype(np.float32)
            quarter = image_size // 4
            top = quarter * (label + 1) - quarter // 2
            pixels[2, top : top + quarter, quarter : 3 * quarter] += 1.5  # phase-1 magnitude blob
            pixels[5, top : top + quarter, quarter : 3 * quarter] += 0.8  # phase-2 magnitude blob
            rows["sample_id"].append(f"{name}/{subject}/clip{k:02d}")
            rows["subject"].append(subject)
            rows["dataset"].append(name)
            rows["label"].append(CLASS_NAMES[label])
            rows["label_id"].append(int(label))
            rows["pixel_values"].append(pixels)
    features = datasets.Features(
        {
            "sample_id": datasets.Value("string"),
            "subject": datasets.Value("string"),
            "dataset": datasets.Value("string"),
            "label": datasets.Value("string"),
            "label_id": datasets.ClassLabel(names=CLASS_NAMES),
            "pixel_values": datasets.Array3D(shape=(6, image_size, image_size), dtype="float32"),
        }
    )
    dataset = datasets.Dataset.from_dict(rows, features=features)
    dataset.set_format("torch", columns=["pixel_values", "label_id"], output_all_columns=True)
    return dataset
