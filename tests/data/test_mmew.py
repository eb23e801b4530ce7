"""`fmanet_hf.data.mmew`: the MMEW loader against a tiny tree in its owners' layout.

Expected values are worked out by hand from the fixture rows (see the comments
in tests/helpers/dataset_trees.py), never recomputed with the loader's own code.
"""

from __future__ import annotations

from pathlib import Path


from fmanet_hf.data import load_mmew

from tests.helpers import dataset_trees as fx
from tests.helpers.loader_checks import assert_sane, by_clip, label_counts


def test_mmew_emotion_folders_and_class_sets(tmp_path):
    root = fx.build_mmew(tmp_path / "MMEW")
    ds = load_mmew(root)
    assert_sane(ds)
    assert ds.features["label_id"].names == ["happiness", "surprise", "anger", "disgust", "fear", "sadness", "others"]
    assert ds.num_rows == 7
    rows = by_clip(ds)
    assert rows["S02-07-001"]["label"] == "others"
    assert Path(rows["S02-07-001"]["clip_dir"]).parent.name == "repression"
    assert rows["S02-03-001"]["apex_index"] == 4 and rows["S02-03-001"]["fixes"] == "apex_middle"
    assert rows["S01-01-001"]["sample_id"] == "mmew/S01/S01-01-001"
    assert label_counts(load_mmew(root, class_set="megc3")) == {"negative": 4, "positive": 1, "surprise": 1}
    assert label_counts(load_mmew(root, class_set="4class")) == {
        "negative": 4, "positive": 1, "surprise": 1, "others": 1,
    }
