"""From prepared datasets to model batches.

Two consumers read the output of `fmanet_hf.data.prepare.prepare_dataset` (a
``datasets.Dataset`` whose ``pixel_values`` (2 * C, H, W) float32 and ``label_id`` columns
are in torch format, next to the loaders' string columns):

- `transformers.Trainer` through `FMANetDataCollator`, which keeps only what the model
  takes (``pixel_values`` and ``labels``);
- the LOSO runner's own loop through `PreparedTensors`: the whole set as one tensor in
  memory. MER datasets are small (a 144-clip SynthME set at 64 x 64 is 14 MB; the largest
  benchmark, CAS(ME)^3 part A, about 85 MB), so indexing one tensor is simpler and faster
  than a DataLoader, and which samples reach a batch is explicit (the leak checks of the
  LOSO runner read it).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from ..errors import DatasetError

LABEL_COLUMNS = ("labels", "label_id")


def class_names_of(dataset: Any, class_names: Sequence[str] | None = None) -> list[str]:
    """The class names of a prepared dataset, in ``label_id`` order.

    Taken from ``class_names`` when given; else from the ``label_id`` column's
    ``datasets.ClassLabel`` feature (what every loader writes); else, for hand-made
    datasets with a ``label`` text column, from the (label_id, label) pairs; else
    ``"0"``, ``"1"``... up to the largest ``label_id``.

    Raises:
        DatasetError: no ``label_id`` column, or a ``label_id`` outside the names.
    """
    column_names = list(getattr(dataset, "column_names", []) or [])
    if "label_id" not in column_names:
        raise DatasetError(
            f"the dataset has no 'label_id' column (columns: {column_names}); load it with a fmanet_hf.data "
            "loader and prepare it with fmanet_hf.data.prepare.prepare_dataset."
        )
    label_ids = [int(v) for v in _plain_column(dataset, "label_id")]
    if class_names is not None:
        names = [str(n) for n in class_names]
    else:
        feature = getattr(dataset, "features", {}).get("label_id")
        names = list(getattr(feature, "names", None) or [])
        if not names and "label" in column_names:
            pairs = dict(zip(label_ids, (str(v) for v in _plain_column(dataset, "label"))))
            if set(pairs) == set(range(len(pairs))):
                names = [pairs[i] for i in range(len(pairs))]
        if not names:
            names = [str(i) for i in range(max(label_ids) + 1)] if label_ids else []
    if label_ids and (min(label_ids) < 0 or max(label_ids) >= len(names)):
        raise DatasetError(
            f"label_id values run from {min(label_ids)} to {max(label_ids)} but there are {len(names)} class "
            f"names ({names}); pass class_names=[...] with one name per label_id."
        )
    if len(set(names)) != len(names):
        raise DatasetError(f"class names must be unique, got {names}.")
    return names


def _plain_column(dataset: Any, column: str) -> list[Any]:
    """A column as plain Python values, whatever the dataset's format."""
    if hasattr(dataset, "select_columns"):
        values = dataset.select_columns([column]).with_format(None)[:][column]
    else:
        values = dataset[column]
    return [v.item() if hasattr(v, "item") else v for v in values]


def _as_float_tensor(value: Any) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.to(torch.float32)
    return torch.as_tensor(np.asarray(value, dtype=np.float32))


@dataclass
class PreparedTensors:
    """A prepared dataset held as tensors, one row per sample.

    Attributes:
        pixel_values: float32 (N, 2 * C, H, W), the model inputs.
        labels: int64 (N,), class indices into ``class_names``.
        sample_ids: N sample ids (``<dataset>/<subject>/<clip>``; the row number as text
            when the dataset has no ``sample_id`` column).
        subjects: N subject names (the LOSO unit).
        datasets: N source dataset names (for the per-dataset columns of composites).
        class_names: C class names in label order.
        vectors_in_pixels: the (u, v) channels are in pixels (the processor's
            ``flow_normalization="none"``) rather than divided by each sample's own maximum;
            flow-consistent augmentation then scales them with the zoom.
    """

    pixel_values: torch.Tensor
    labels: torch.Tensor
    sample_ids: list[str]
    subjects: list[str]
    datasets: list[str]
    class_names: list[str]
    vectors_in_pixels: bool = False

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def image_size(self) -> tuple[int, int]:
        """(H, W) of ``pixel_values``."""
        return int(self.pixel_values.shape[2]), int(self.pixel_values.shape[3])

    @classmethod
    def from_prepared(cls, dataset: Any, class_names: Sequence[str] | None = None) -> "PreparedTensors":
        """Read ``pixel_values``, ``label_id``, ``subject`` (required) and ``sample_id``,
        ``dataset`` (optional) from a prepared ``datasets.Dataset``.

        Raises:
            DatasetError: a required column is missing, or ``pixel_values`` is not (N, C, H, W).
        """
        column_names = list(getattr(dataset, "column_names", []) or [])
        missing = [c for c in ("pixel_values", "label_id", "subject") if c not in column_names]
        if missing:
            raise DatasetError(
                f"the dataset lacks the columns {missing} (has {column_names}); prepare it with "
                "fmanet_hf.data.prepare.prepare_dataset (it adds pixel_values to a loader's dataset)."
            )
        if len(dataset) == 0:
            raise DatasetError("the prepared dataset is empty; check the loader's class set.")
        names = class_names_of(dataset, class_names)
        # Slicing rows gives one batched tensor (column access gives a lazy Column in datasets 5).
        pixel_values = dataset.select_columns(["pixel_values"]).with_format("torch")[:]["pixel_values"]
        if isinstance(pixel_values, (list, tuple)):
            pixel_values = torch.stack([_as_float_tensor(p) for p in pixel_values])
        pixel_values = _as_float_tensor(pixel_values).contiguous()
        if pixel_values.dim() != 4:
            raise DatasetError(
                f"pixel_values must be (N, channels, height, width), got {tuple(pixel_values.shape)}."
            )
        labels = torch.as_tensor(_plain_column(dataset, "label_id"), dtype=torch.int64)
        subjects = [str(s) for s in _plain_column(dataset, "subject")]
        if "sample_id" in column_names:
            sample_ids = [str(s) for s in _plain_column(dataset, "sample_id")]
        else:
            sample_ids = [str(i) for i in range(len(subjects))]
        if len(set(sample_ids)) != len(sample_ids):
            raise DatasetError("sample_id values must be unique; the predictions file is keyed on them.")
        if "dataset" in column_names:
            dataset_names = [str(s) for s in _plain_column(dataset, "dataset")]
        else:
            dataset_names = [s.split("/")[0] if s.count("/") >= 2 else "dataset" for s in sample_ids]
        if not torch.isfinite(pixel_values).all():
            raise DatasetError("pixel_values holds NaN or inf; re-prepare the dataset (the cache may be corrupt).")
        return cls(pixel_values, labels, sample_ids, subjects, dataset_names, names)

    def digest(self) -> str:
        """SHA-256 (hex, 16 chars) of the inputs, labels, ids and subjects: what a LOSO result depends on."""
        hasher = hashlib.sha256()
        hasher.update(str(tuple(self.pixel_values.shape)).encode())
        hasher.update(self.pixel_values.detach().cpu().contiguous().numpy().tobytes())
        hasher.update(self.labels.cpu().numpy().astype("<i8").tobytes())
        for values in (self.sample_ids, self.subjects, self.datasets, self.class_names):
            hasher.update("\x1f".join(values).encode("utf-8") + b"\x1e")
        return hasher.hexdigest()[:16]


def collate_prepared_batch(rows: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
    """Stack rows of a prepared dataset into the model's keyword arguments.

    Args:
        rows: B mappings, each with ``pixel_values`` ((2 * C, H, W) tensor, array or nested
            list) and a class index under ``labels`` or ``label_id`` (optional: rows without
            any give no ``labels``). Every other key (paths, subject...) is ignored.

    Returns:
        ``{"pixel_values": float32 (B, 2 * C, H, W), "labels": int64 (B,)}``.

    Raises:
        DatasetError: no rows, a row without ``pixel_values``, or labels on some rows only.
    """
    if not rows:
        raise DatasetError("cannot collate an empty batch.")
    if any("pixel_values" not in row for row in rows):
        raise DatasetError("every row needs 'pixel_values'; pass a dataset made by prepare_dataset.")
    batch = {"pixel_values": torch.stack([_as_float_tensor(row["pixel_values"]) for row in rows])}
    label_key = next((key for key in LABEL_COLUMNS if key in rows[0]), None)
    if label_key is not None:
        if any(label_key not in row for row in rows):
            raise DatasetError(f"some rows have {label_key!r} and others not.")
        batch["labels"] = torch.as_tensor([int(row[label_key]) for row in rows], dtype=torch.int64)
    return batch


class FMANetDataCollator:
    """``data_collator`` for `transformers.Trainer` on prepared datasets: see `collate_prepared_batch`.

    Use it with ``TrainingArguments(remove_unused_columns=False)``: the Trainer's column
    filter would otherwise drop ``label_id`` (the model's argument is called ``labels``).
    """

    def __call__(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        return collate_prepared_batch(rows)


__all__ = [
    "FMANetDataCollator",
    "PreparedTensors",
    "class_names_of",
    "collate_prepared_batch",
]
