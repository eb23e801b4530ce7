"""Samples as records, and the ``datasets.Dataset`` every loader returns.

The dataset has a fixed schema shared by every loader (:data:`SAMPLE_COLUMNS`), so
datasets can be concatenated into composites such as MEGC2019. ``datasets`` is
imported inside the functions that need it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from ..errors import DatasetError

if TYPE_CHECKING:  # pragma: no cover - typing only
    import datasets


@dataclass
class SampleRecord:
    """One sample before it becomes a ``datasets.Dataset`` row (see :data:`SAMPLE_COLUMNS`)."""

    dataset: str
    subject: str
    clip: str
    sample_id: str
    clip_dir: str
    onset_path: str
    apex_path: str
    offset_path: str
    onset_index: int
    apex_index: int
    offset_index: int
    apex_method: str
    native_label: str
    label: str
    action_units: str
    fixes: list[str]
    sheet_row: int

    def as_row(self, class_names: Sequence[str]) -> dict[str, Any]:
        """The dataset row: the fields plus ``label_id``; ``fixes`` joined with commas."""
        row = {name: getattr(self, name) for name in SAMPLE_COLUMNS if name not in ("label_id", "fixes")}
        row["fixes"] = ",".join(dict.fromkeys(self.fixes))
        row["label_id"] = list(class_names).index(self.label)
        return row

    def same_content(self, other: "SampleRecord") -> bool:
        """Whether two records describe the same frames and label."""
        return (
            self.onset_index, self.apex_index, self.offset_index, self.label, self.clip_dir
        ) == (other.onset_index, other.apex_index, other.offset_index, other.label, other.clip_dir)


#: Columns of every loader's dataset, in order. ``label_id`` is a
#: ``datasets.ClassLabel`` with the class set's names; the ``*_index`` columns and
#: ``sheet_row`` are int32 (``sheet_row`` is 0 for samples found by walking folders,
#: as in SMIC); every other column is a string.
SAMPLE_COLUMNS: tuple[str, ...] = (
    "dataset",
    "subject",
    "clip",
    "sample_id",
    "clip_dir",
    "onset_path",
    "apex_path",
    "offset_path",
    "onset_index",
    "apex_index",
    "offset_index",
    "apex_method",
    "native_label",
    "label",
    "label_id",
    "action_units",
    "fixes",
    "sheet_row",
)

_INT_COLUMNS = frozenset({"onset_index", "apex_index", "offset_index", "sheet_row"})


def sample_features(class_names: Sequence[str]) -> "datasets.Features":
    """The ``datasets.Features`` of a loader's dataset for the given class names."""
    import datasets

    spec: dict[str, Any] = {}
    for name in SAMPLE_COLUMNS:
        if name == "label_id":
            spec[name] = datasets.ClassLabel(names=list(class_names))
        elif name in _INT_COLUMNS:
            spec[name] = datasets.Value("int32")
        else:
            spec[name] = datasets.Value("string")
    return datasets.Features(spec)


def records_to_dataset(records: Sequence[SampleRecord], class_names: Sequence[str]) -> "datasets.Dataset":
    """Build the in-memory ``datasets.Dataset`` of a loader.

    Args:
        records: the samples, in output order.
        class_names: the class set's names in ``label_id`` order.

    Returns:
        a dataset with the columns of :data:`SAMPLE_COLUMNS` (no cache files written).
    """
    import datasets

    columns: dict[str, list[Any]] = {name: [] for name in SAMPLE_COLUMNS}
    for record in records:
        for name, value in record.as_row(class_names).items():
            columns[name].append(value)
    return datasets.Dataset.from_dict(columns, features=sample_features(class_names))


def check_dataset_name(dataset_name: str) -> str:
    """Validate a ``dataset_name`` (it prefixes sample ids, so no slashes or blanks)."""
    name = str(dataset_name).strip()
    if not name or "/" in name or "\\" in name or any(c.isspace() for c in name):
        raise DatasetError(
            f"dataset_name {dataset_name!r} must be a non-empty word without slashes or spaces"
        )
    return name


__all__ = [
    "SAMPLE_COLUMNS",
    "SampleRecord",
    "check_dataset_name",
    "records_to_dataset",
    "sample_features",
]
