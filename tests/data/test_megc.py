"""`fmanet_hf.data.megc`: the MEGC2019 composite (SMIC + CASME II + SAMM) against tiny trees.

Expected values are worked out by hand from the fixture rows (see the comments
in tests/helpers/dataset_trees.py), never recomputed with the loader's own code.
"""

from __future__ import annotations

from collections import Counter

import pytest

from fmanet_hf.data import load_megc2019
from fmanet_hf.errors import DatasetError

from tests.helpers import dataset_trees as fx
from tests.helpers.loader_checks import assert_sane, label_counts


def test_megc2019_composite(tmp_path):
    root = fx.build_megc_root(tmp_path / "MER")
    ds = load_megc2019(root)
    assert_sane(ds)
    assert ds.features["label_id"].names == ["negative", "positive", "surprise"]
    # SMIC 2/2/1 + CASME II 5/2/1 + SAMM 4/1/1.
    assert label_counts(ds) == {"negative": 11, "positive": 5, "surprise": 3}
    assert Counter(ds["dataset"]) == {"smic": 5, "casme2": 8, "samm": 6}
    assert sorted(set(ds["subject"])) == sorted(
        ["smic/s1", "smic/s2", "smic/s10", "casme2/sub01", "casme2/sub02", "casme2/sub03",
         "casme2/sub04", "samm/006", "samm/007", "samm/011"]
    )
    assert ds["dataset"][0] == "smic" and ds["dataset"][-1] == "samm"
    assert "casme2/sub01/EP02_01f" in ds["sample_id"]

    only_two = load_megc2019(casme2_root=root / "CASME2", samm_root=root / "SAMM")
    assert only_two.num_rows == 14
    chosen = load_megc2019(root, include_sample_ids=["smic/s1/s1_ne_01", "samm/006/006_1_2"])
    assert chosen["sample_id"] == ["smic/s1/s1_ne_01", "samm/006/006_1_2"]
    with pytest.raises(DatasetError, match="none of SMIC"):
        load_megc2019(tmp_path)
    with pytest.raises(DatasetError, match="may not set"):
        load_megc2019(root, casme2_kwargs={"class_set": "5class"})
