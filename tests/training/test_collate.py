"""Tests of `fmanet_hf.training.collate`: batches of prepared rows and the in-memory `PreparedTensors`."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.helpers.tiny import CLASS_NAMES, make_prepared_dataset

from fmanet_hf.errors import DatasetError
from fmanet_hf.training.collate import (
    FMANetDataCollator,
    PreparedTensors,
    class_names_of,
    collate_prepared_batch,
)


@pytest.fixture(scope="module")
def dataset():
    return make_prepared_dataset(subjects=4, per_subject=4, image_size=32, seed=3)


def test_collator_keeps_model_inputs_only(dataset):
    rows = [dataset[i] for i in range(3)]
    batch = FMANetDataCollator()(rows)
    assert set(batch) == {"pixel_values", "labels"}
    assert batch["pixel_values"].shape == (3, 6, 32, 32) and batch["pixel_values"].dtype == torch.float32
    assert batch["labels"].dtype == torch.int64
    assert batch["labels"].tolist() == [int(r["label_id"]) for r in rows]
    from_lists = collate_prepared_batch([{"pixel_values": np.zeros((6, 8, 8)).tolist(), "labels": 2}])
    assert from_lists["pixel_values"].shape == (1, 6, 8, 8) and from_lists["labels"].tolist() == [2]
    assert "labels" not in collate_prepared_batch([{"pixel_values": np.zeros((6, 8, 8))}])
    with pytest.raises(DatasetError, match="empty batch"):
        collate_prepared_batch([])
    with pytest.raises(DatasetError, match="some rows"):
        collate_prepared_batch([{"pixel_values": np.zeros((6, 8, 8)), "labels": 1}, {"pixel_values": np.zeros((6, 8, 8))}])


def test_prepared_tensors_and_class_names(dataset):
    data = PreparedTensors.from_prepared(dataset)
    assert data.pixel_values.shape == (16, 6, 32, 32) and data.image_size == (32, 32)
    assert data.class_names == CLASS_NAMES
    assert data.subjects[:4] == ["s1"] * 4 and data.sample_ids[0] == "toy/s1/clip00" and data.datasets[0] == "toy"
    assert torch.equal(data.pixel_values[5], dataset[5]["pixel_values"])
    assert data.digest() == PreparedTensors.from_prepared(dataset).digest()
    assert data.digest() != PreparedTensors.from_prepared(make_prepared_dataset(subjects=4, per_subject=4, seed=4)).digest()
    # Without a ClassLabel feature the names come from the label column.
    plain = dataset.cast_column("label_id", __import__("datasets").Value("int64"))
    assert class_names_of(plain) == CLASS_NAMES
    assert class_names_of(plain.remove_columns(["label"])) == ["0", "1", "2"]
    with pytest.raises(DatasetError, match="class names"):
        class_names_of(dataset, class_names=["a", "b"])
    with pytest.raises(DatasetError, match="label_id"):
        class_names_of(dataset.remove_columns(["label_id"]))
