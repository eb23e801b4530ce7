"""Tests of `fmanet_hf.training.baselines`: the fixed MM-COF + logistic-regression LOSO baseline."""

from __future__ import annotations

import datasets
import numpy as np
import pytest

from fmanet_hf.training.baselines import mmcof_logistic_regression_loso


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
