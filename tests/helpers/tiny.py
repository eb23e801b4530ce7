"""Tiny prepared datasets and model configs shared by the training tests and their subprocess scripts.

The datasets look like the output of `prepare_dataset` (``pixel_values`` (6, S, S) float32
in torch format, ``label_id`` as a ``ClassLabel``, ``subject``, ``sample_id``, ``dataset``)
but are made directly from a seeded RNG: no frames, no optical flow, milliseconds to build.
"""

from __future__ import annotations

import numpy as np

CLASS_NAMES = ["negative", "positive", "surprise"]


def tiny_config_kwargs(image_size: int = 32, **overrides) -> dict:
    """An FMANetConfig small enough for CI: 2 trunk stages of 8 and 16 channels, no dropout."""
    values = dict(
        image_size=image_size,
        encoder_hidden_size=8,
        encoder_depth=1,
        hidden_sizes=[8, 16],
        depths=[1, 1],
        num_groups=4,
        classifier_dropout=0.0,
    )
    values.update(overrides)
    return values


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
