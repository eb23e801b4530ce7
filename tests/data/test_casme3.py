"""`fmanet_hf.data.casme3`: the CAS(ME)^3 part A loader against a tiny tree in its owners' layout.

Expected values are worked out by hand from the fixture rows (see the comments
in tests/helpers/dataset_trees.py), never recomputed with the loader's own code.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fmanet_hf.data import load_casme3
from fmanet_hf.errors import DatasetError

from tests.helpers import dataset_trees as fx
from tests.helpers.loader_checks import assert_sane, label_counts


def test_casme3_part_a(tmp_path):
    root = fx.build_casme3(tmp_path / "CASME3")
    ds = load_casme3(root)
    assert_sane(ds)
    assert ds.num_rows == 6
    ids = ds["sample_id"]
    assert ids[:2] == ["casme3/spNO.1/a/3", "casme3/spNO.1/a/20"]  # two samples, one video
    rows = {row["sample_id"]: row for row in ds}
    assert rows["casme3/spNO.1/b/0"]["onset_index"] == 0
    assert Path(rows["casme3/spNO.1/b/0"]["onset_path"]).name == "0.jpg"
    assert Path(rows["casme3/spNO.1/b/0"]["clip_dir"]).name == "color"
    assert rows["casme3/spNO.2/c/30"]["apex_index"] == 33
    assert label_counts(load_casme3(root, class_set="megc3")) == {"negative": 3, "positive": 1, "surprise": 1}
    assert label_counts(load_casme3(root, class_set="4class")) == {
        "negative": 3, "positive": 1, "surprise": 1, "others": 1,
    }


def test_casme3_bad_offset_is_an_error_not_a_fix(tmp_path):
    root = fx.build_casme3(tmp_path / "CASME3", extra_rows=(("spNO.1", "a", 30, 32, 0, "happy"),))  # row 8
    with pytest.raises(DatasetError) as error:
        load_casme3(root)
    assert "row 8 of sheet" in str(error.value) and "offset '0' is not a frame number" in str(error.value)
