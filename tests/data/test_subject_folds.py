"""Tests of the LOSO splits and the per-dataset subsets of composite results."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fmanet_hf.data import (
    LOSOFold,
    check_loso_folds,
    dataset_of,
    load_casme2,
    load_megc2019,
    loso_folds,
    per_dataset_subsets,
    subject_of,
    subjects_of,
)
from fmanet_hf.errors import DatasetError

from tests.helpers import dataset_trees as fx


def assert_valid_loso(folds, subjects):
    """Folds never share a subject and test every sample exactly once."""
    n = len(subjects)
    tested = np.zeros(n, dtype=int)
    for fold in folds:
        test_subjects = {subjects[i] for i in fold.test_indices}
        train_subjects = {subjects[i] for i in fold.train_indices}
        assert test_subjects == {fold.test_subject}
        assert not test_subjects & train_subjects
        assert len(fold.train_indices) + len(fold.test_indices) == n
        assert not set(fold.train_indices.tolist()) & set(fold.test_indices.tolist())
        tested[fold.test_indices] += 1
    assert np.all(tested == 1)


def test_folds_from_subject_list_are_sorted_and_disjoint():
    subjects = ["s10", "s2", "s1", "s2", "s10", "s10", "s1"]
    folds = loso_folds(subjects)
    assert [f.test_subject for f in folds] == ["s1", "s2", "s10"]  # natural order
    assert folds[0].test_indices.tolist() == [2, 6]
    assert folds[1].test_indices.tolist() == [1, 3]
    assert folds[2].test_indices.tolist() == [0, 4, 5]
    assert folds[2].train_indices.tolist() == [1, 2, 3, 6]
    assert folds[2].train_indices.dtype == np.int64
    assert (folds[2].n_train, folds[2].n_test) == (4, 3)
    assert_valid_loso(folds, subjects)
    check_loso_folds(folds, subjects)
    # Same input, same folds.
    again = loso_folds(list(subjects))
    assert all(
        a.test_subject == b.test_subject and np.array_equal(a.test_indices, b.test_indices)
        for a, b in zip(folds, again)
    )


def test_folds_accept_tables():
    rows = [{"subject": "b"}, {"subject": "a"}, {"subject": "b"}]
    for table in (rows, {"subject": ["b", "a", "b"]}, pd.DataFrame(rows), np.array(["b", "a", "b"])):
        folds = loso_folds(table)
        assert [f.test_subject for f in folds] == ["a", "b"]
        assert folds[1].test_indices.tolist() == [0, 2]
    assert subjects_of(pd.DataFrame({"who": ["x", "y"]}), subject_column="who") == ["x", "y"]


def test_folds_on_a_loaded_dataset(tmp_path):
    ds = load_casme2(fx.build_casme2(tmp_path / "CASME2"))
    folds = loso_folds(ds)
    # 5class samples: sub01 x2, sub02 x2, sub03 x1 (others), sub04 x2.
    assert [f.test_subject for f in folds] == ["sub01", "sub02", "sub03", "sub04"]
    assert [f.n_test for f in folds] == [2, 2, 1, 2]
    assert_valid_loso(folds, list(ds["subject"]))


def test_folds_on_the_composite_and_per_dataset_subsets(tmp_path):
    ds = load_megc2019(fx.build_megc_root(tmp_path / "MER"))
    subjects = list(ds["subject"])
    folds = loso_folds(ds)
    assert len(folds) == 10  # smic 3 + casme2 4 + samm 3 subjects
    assert folds[0].test_subject == "casme2/sub01"
    assert_valid_loso(folds, subjects)

    subsets = per_dataset_subsets(ds)
    assert list(subsets) == ["casme2", "samm", "smic"]
    assert [len(v) for v in subsets.values()] == [8, 6, 5]
    assert subsets["smic"].tolist() == [0, 1, 2, 3, 4]  # SMIC rows come first
    for name, indices in subsets.items():
        assert {ds["dataset"][i] for i in indices} == {name}
    # Predictions that only carry sample ids give the same subsets.
    from_ids = per_dataset_subsets({"sample_id": list(ds["sample_id"]), "prediction": [0] * ds.num_rows})
    assert {k: v.tolist() for k, v in from_ids.items()} == {k: v.tolist() for k, v in subsets.items()}


def test_sample_id_helpers():
    assert subject_of("casme2/sub01/EP02_01f") == "casme2/sub01"
    assert dataset_of("samm/006/006_1_2") == "samm"
    assert subject_of("casme3/spNO.1/a/123") == "casme3/spNO.1"
    with pytest.raises(DatasetError):
        subject_of("no-slashes")


def test_loso_errors():
    with pytest.raises(DatasetError, match="at least 2 subjects"):
        loso_folds(["a", "a"])
    with pytest.raises(DatasetError, match="empty"):
        loso_folds([])
    with pytest.raises(DatasetError, match="no 'subject'"):
        loso_folds({"speaker": ["a", "b"]})
    subjects = ["a", "b", "b"]
    leaky = [
        LOSOFold("a", np.array([0, 1, 2]), np.array([0])),  # trains on its own test subject
        LOSOFold("b", np.array([0]), np.array([1, 2])),
    ]
    with pytest.raises(DatasetError, match="trains on its own test subject"):
        check_loso_folds(leaky, subjects)
    missing = [LOSOFold("b", np.array([0]), np.array([1, 2]))]
    with pytest.raises(DatasetError, match="tested 0 times"):
        check_loso_folds(missing, subjects)
