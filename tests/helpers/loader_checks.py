"""Checks of a loader's output shared by the loader tests (tests/data/test_<dataset>.py)."""

from __future__ import annotations

import os
from collections import Counter

from fmanet_hf.data import SAMPLE_COLUMNS


def by_clip(dataset) -> dict[str, dict]:
    """Rows of a loaded dataset keyed by clip name."""
    return {row["clip"]: row for row in dataset}


def label_counts(dataset) -> dict[str, int]:
    return dict(Counter(dataset["label"]))


def assert_sane(dataset) -> None:
    """Checks every loader's output must pass."""
    assert tuple(dataset.column_names) == SAMPLE_COLUMNS
    assert len(set(dataset["sample_id"])) == dataset.num_rows
    names = dataset.features["label_id"].names
    for row in dataset:
        for key in ("onset_path", "apex_path", "offset_path"):
            assert os.path.isabs(row[key]) and os.path.isfile(row[key]), row[key]
        assert row["onset_index"] <= row["apex_index"] <= row["offset_index"]
        assert names[row["label_id"]] == row["label"]
        assert row["sample_id"].startswith(f"{row['dataset']}/")
        assert row["apex_method"] in ("annotated", "middle", "max_motion")
