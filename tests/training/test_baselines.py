"""Tests of `fmanet_hf.training.baselines`: the fixed MM-COF + logistic-regression LOSO baseline."""

from __future__ import annotations

import datasets
import numpy as np
import pytest

from fmanet_hf.training.baselines import choose_settings_by_inner_split, mmcof_features, mmcof_logistic_regression_loso


def _prepared_toy(num_subjects: int, per_class: int, separable: bool, seed: int = 0):
    """Prepared-like dataset whose MM-COF carries the class (separable) or nothing (noise)."""
    rng = np.random.default_rng(seed)
    rows = {"subject": [], "dataset": [], "label_id": [], "mmcof_values": []}
    for subject in range(num_subjects):
        for label in range(3):
            for _ in range(per_class):
                maps = rng.normal(0, 1, (3, 8, 8)).astype(np.float32)
                if separable:
                    maps[label] += 3.0  # class k moves channel k
                rows["subject"].append(f"toy/s{subject}")
                rows["dataset"].append("toy")
                rows["label_id"].append(label)
                rows["mmcof_values"].append(maps)
    features = datasets.Features(
        {
            "subject": datasets.Value("string"),
            "dataset": datasets.Value("string"),
            "label_id": datasets.ClassLabel(names=["negative", "positive", "surprise"]),
            "mmcof_values": datasets.Array3D((3, 8, 8), "float32"),
        }
    )
    return datasets.Dataset.from_dict(rows, features=features)


def test_baseline_separates_a_separable_set_and_is_at_chance_on_noise():
    separable = mmcof_logistic_regression_loso(_prepared_toy(5, 4, True), pool=4)
    assert separable["uar"] == 1.0 and separable["num_folds"] == 5
    noise = mmcof_logistic_regression_loso(_prepared_toy(5, 4, False), pool=4)
    # 60 samples of pure noise: pooled UAR must stay near 1/3 (binomial sd ~0.06).
    assert abs(noise["uar"] - 1 / 3) < 0.2
    assert noise["chance_uar"] == pytest.approx(1 / 3)


# Settings chosen by an inner split of the training subjects.
CLASSES = ["a", "b"]


def checker_dataset(subjects=5, per_class=3, size=16, seed=0):
    """Class a: +checkerboard of 1-px cells in u_c, class b: the negated board; plus noise.

    Averaging any 2x2 block cancels the board, so only a 16x16 pool (1 px per cell) sees the
    label; every coarser pool sees noise alone.
    """
    rng = np.random.default_rng(seed)
    board = np.indices((size, size)).sum(axis=0) % 2 * 2.0 - 1.0
    rows = {"subject": [], "label_id": [], "mmcof_values": [], "dataset": []}
    for s in range(subjects):
        for label in (0, 1):
            for _ in range(per_class):
                maps = rng.normal(0.0, 0.5, (3, size, size)).astype(np.float32)
                maps[0] += (1.0 if label == 0 else -1.0) * board
                rows["subject"].append(f"s{s}")
                rows["label_id"].append(label)
                rows["mmcof_values"].append(maps)
                rows["dataset"].append("toy")
    features = datasets.Features({
        "subject": datasets.Value("string"), "label_id": datasets.ClassLabel(names=CLASSES),
        "mmcof_values": datasets.Array3D(shape=(3, size, size), dtype="float32"), "dataset": datasets.Value("string"),
    })
    return datasets.Dataset.from_dict(rows, features=features)


def test_the_inner_split_picks_the_only_pool_that_sees_the_label():
    data = checker_dataset()
    values = np.stack(data.with_format("numpy")["mmcof_values"])
    labels = np.asarray(data["label_id"])
    subjects = list(data["subject"])
    features = {pool: mmcof_features(values, pool) for pool in (2, 4, 8, 16)}
    train = np.flatnonzero(np.asarray(subjects) != "s0")
    pool, l2, score = choose_settings_by_inner_split(features, labels, subjects, train, 2, (1e-3, 1e-1))
    assert pool == 16 and score > 0.9


def test_inner_choice_beats_a_fixed_coarse_pool_and_records_each_folds_choice():
    data = checker_dataset()
    fixed = mmcof_logistic_regression_loso(data, pool=8, l2=1e-2)
    inner = mmcof_logistic_regression_loso(data, pool="inner", l2="inner")
    assert fixed["uf1"] < 0.75 and inner["uf1"] > 0.9
    chosen = inner["baseline"]["chosen"]
    assert [c["subject"] for c in chosen] == [f"s{i}" for i in range(5)]
    assert all(c["pool"] == 16 for c in chosen)


def test_the_held_out_subject_never_enters_the_inner_choice(monkeypatch):
    import fmanet_hf.training.baselines as baselines

    data = checker_dataset(subjects=4)
    subjects = list(data["subject"])
    seen = []
    original = baselines.choose_settings_by_inner_split

    def spy(features_by_pool, labels, subject_names, train_indices, *args):
        seen.append(({subject_names[i] for i in train_indices}))
        return original(features_by_pool, labels, subject_names, train_indices, *args)

    monkeypatch.setattr(baselines, "choose_settings_by_inner_split", spy)
    result = baselines.mmcof_logistic_regression_loso(data, pool="inner", l2="inner")
    for held_out, inner_subjects in zip([c["subject"] for c in result["baseline"]["chosen"]], seen):
        assert held_out not in inner_subjects and len(inner_subjects) == 3
