"""Leave-one-subject-out (LOSO) splits and per-dataset subsets of composite results.

LOSO is the field's protocol (field notes, section 4): one fold per subject; the
fold tests on every sample of that subject and trains on all the others. Scores
(UF1, UAR) are then computed once on the predictions of all folds pooled.

For a composite such as MEGC2019, LOSO runs over the composite's subjects (which
the loader prefixes with the dataset name, ``casme2/sub01``), and the
per-dataset columns of a results table are subsets of the pooled predictions:
:func:`per_dataset_subsets` gives the indices of each dataset.

Only numpy is needed here; no dataset is copied.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import DatasetError
from .cells import natural_key


@dataclass(frozen=True)
class LOSOFold:
    """One leave-one-subject-out fold.

    Attributes:
        test_subject: the subject held out.
        train_indices: int64 array (n_train,), ascending row indices of the other subjects.
        test_indices: int64 array (n_test,), ascending row indices of ``test_subject``.
    """

    test_subject: str
    train_indices: np.ndarray
    test_indices: np.ndarray

    @property
    def n_train(self) -> int:
        """Number of training samples."""
        return int(self.train_indices.size)

    @property
    def n_test(self) -> int:
        """Number of test samples."""
        return int(self.test_indices.size)


def _column(records: Any, column: str) -> list[Any]:
    """One column of a table-like object as a list.

    Accepts a ``datasets.Dataset``, a pandas ``DataFrame``, a mapping of columns
    (``{"subject": [...]}``) or a sequence of row mappings (``[{"subject": ...}]``).

    Raises:
        DatasetError: the column is absent or the object is not table-like.
    """
    column_names = getattr(records, "column_names", None)
    if column_names is not None and not isinstance(records, Mapping):  # datasets.Dataset
        if column not in column_names:
            raise DatasetError(f"the dataset has no {column!r} column; columns: {list(column_names)}")
        return list(records[column])
    if hasattr(records, "columns") and hasattr(records, "iloc"):  # pandas.DataFrame
        if column not in records.columns:
            raise DatasetError(f"the table has no {column!r} column; columns: {list(records.columns)}")
        return list(records[column])
    if isinstance(records, Mapping):
        if column not in records:
            raise DatasetError(f"the mapping has no {column!r} key; keys: {list(records)}")
        return list(records[column])
    if isinstance(records, Sequence) and not isinstance(records, (str, bytes)):
        values = []
        for position, row in enumerate(records):
            if not isinstance(row, Mapping) or column not in row:
                raise DatasetError(f"row {position} has no {column!r} field")
            values.append(row[column])
        return values
    raise DatasetError(
        f"cannot read a {column!r} column from {type(records).__name__}; pass a datasets.Dataset, "
        "a pandas DataFrame, a mapping of columns or a list of row dicts"
    )


def subjects_of(dataset_or_subjects: Any, *, subject_column: str = "subject") -> list[str]:
    """The subject of every sample, in row order.

    Args:
        dataset_or_subjects: a table with a ``subject_column`` (``datasets.Dataset``,
            DataFrame, mapping of columns, list of row dicts) or a plain sequence /
            1-D array of subject names, one per sample.
        subject_column: the column holding subjects.

    Returns:
        a list of ``str`` of length n_samples.
    """
    items = dataset_or_subjects
    if isinstance(items, np.ndarray):
        if items.ndim != 1:
            raise DatasetError(f"a subject array must be 1-D, got shape {items.shape}")
        return [str(s) for s in items.tolist()]
    if (
        isinstance(items, Sequence)
        and not isinstance(items, (str, bytes, Mapping))
        and all(isinstance(s, (str, int, np.integer)) for s in items)
    ):
        return [str(s) for s in items]
    return [str(s) for s in _column(items, subject_column)]


def loso_folds(dataset_or_subjects: Any, *, subject_column: str = "subject") -> list[LOSOFold]:
    """Leave-one-subject-out folds, one per subject, in sorted subject order.

    Subjects are sorted in natural order (``s2`` before ``s10``; ``casme2/sub01``
    before ``samm/006``), so fold ``k`` is the same on every run and machine. Every
    sample is in exactly one test set; a fold's training set is every sample of the
    other subjects; no subject is ever on both sides of a fold.

    Args:
        dataset_or_subjects: see :func:`subjects_of`.
        subject_column: the column holding subjects.

    Returns:
        ``n_subjects`` :class:`LOSOFold` objects.

    Raises:
        DatasetError: no samples, an empty subject name, or fewer than 2 subjects.
    """
    subjects = subjects_of(dataset_or_subjects, subject_column=subject_column)
    if not subjects:
        raise DatasetError("cannot make LOSO folds from an empty dataset")
    if any(not s.strip() for s in subjects):
        raise DatasetError("a sample has an empty subject; every sample needs a subject for LOSO")
    unique = sorted(set(subjects), key=natural_key)
    if len(unique) < 2:
        raise DatasetError(f"LOSO needs at least 2 subjects, got {unique}")
    subject_array = np.asarray(subjects, dtype=object)
    all_indices = np.arange(len(subjects), dtype=np.int64)
    folds = []
    for subject in unique:
        is_test = subject_array == subject
        folds.append(
            LOSOFold(
                test_subject=subject,
                train_indices=all_indices[~is_test],
                test_indices=all_indices[is_test],
            )
        )
    return folds


def check_loso_folds(folds: Sequence[LOSOFold], dataset_or_subjects: Any, *, subject_column: str = "subject") -> None:
    """Verify that folds are a valid LOSO split of a dataset.

    Checks: each fold's test set holds exactly the samples of its test subject; no
    subject appears on both sides of a fold; every sample is tested exactly once.

    Raises:
        DatasetError: naming the first violated rule.
    """
    subjects = subjects_of(dataset_or_subjects, subject_column=subject_column)
    n = len(subjects)
    tested = np.zeros(n, dtype=np.int64)
    for fold in folds:
        test = np.asarray(fold.test_indices, dtype=np.int64)
        train = np.asarray(fold.train_indices, dtype=np.int64)
        out_of_range = (test.size and (test.min() < 0 or test.max() >= n)) or (
            train.size and (train.min() < 0 or train.max() >= n)
        )
        if out_of_range:
            raise DatasetError(f"fold {fold.test_subject!r} has indices outside 0..{n - 1}")
        test_subjects = {subjects[i] for i in test}
        train_subjects = {subjects[i] for i in train}
        if test_subjects != {fold.test_subject}:
            raise DatasetError(f"fold {fold.test_subject!r} tests on subjects {sorted(test_subjects)}")
        if fold.test_subject in train_subjects:
            raise DatasetError(f"fold {fold.test_subject!r} trains on its own test subject")
        np.add.at(tested, test, 1)
    if not np.all(tested == 1):
        bad = int(np.flatnonzero(tested != 1)[0])
        raise DatasetError(f"sample {bad} is tested {int(tested[bad])} times (expected once)")


def sample_id_parts(sample_id: str) -> list[str]:
    """Split a sample id ``<dataset>/<subject>/<clip>[/<onset>]`` into its parts."""
    parts = str(sample_id).split("/")
    if len(parts) < 3 or not all(parts[:3]):
        raise DatasetError(
            f"sample id {sample_id!r} is not of the form <dataset>/<subject>/<clip>[/<onset>]"
        )
    return parts


def dataset_of(sample_id: str) -> str:
    """The dataset name of a sample id: ``casme2/sub01/EP02_01f`` -> ``casme2``."""
    return sample_id_parts(sample_id)[0]


def subject_of(sample_id: str) -> str:
    """The dataset-qualified subject of a sample id: ``casme2/sub01/EP02_01f`` -> ``casme2/sub01``.

    This is the key subjects have in a composite (where ``subject`` columns are
    prefixed with the dataset name); it is unique across datasets.
    """
    parts = sample_id_parts(sample_id)
    return f"{parts[0]}/{parts[1]}"


def per_dataset_subsets(records: Any, dataset_column: str = "dataset") -> dict[str, np.ndarray]:
    """Row indices of each dataset in a composite's samples or predictions.

    Args:
        records: a ``datasets.Dataset``, DataFrame, mapping of columns or list of row
            dicts with a ``dataset_column``; when that column is absent but a
            ``sample_id`` column is present, the dataset is read from the sample ids.
        dataset_column: the column naming each row's dataset.

    Returns:
        dataset name -> int64 array of ascending row indices; names in sorted order.
        Index the pooled predictions with them to score each dataset as a subset of
        the composite run.
    """
    try:
        names = [str(v) for v in _column(records, dataset_column)]
    except DatasetError:
        try:
            sample_ids = _column(records, "sample_id")
        except DatasetError:
            raise DatasetError(
                f"records have neither a {dataset_column!r} nor a 'sample_id' column"
            ) from None
        names = [dataset_of(s) for s in sample_ids]
    name_array = np.asarray(names, dtype=object)
    return {
        name: np.flatnonzero(name_array == name).astype(np.int64)
        for name in sorted(set(names), key=natural_key)
    }


__all__ = [
    "LOSOFold",
    "check_loso_folds",
    "dataset_of",
    "loso_folds",
    "per_dataset_subsets",
    "subject_of",
    "subjects_of",
]
