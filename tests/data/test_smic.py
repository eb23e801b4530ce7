"""`fmanet_hf.data.smic`: the SMIC loader (folder tree, apex estimates, variants) against tiny trees.

Expected values are worked out by hand from the fixture rows (see the comments
in tests/helpers/dataset_trees.py), never recomputed with the loader's own code.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from fmanet_hf.data import load_smic
from fmanet_hf.errors import DatasetError

from tests.helpers import dataset_trees as fx
from tests.helpers.loader_checks import assert_sane, by_clip, label_counts


LOGGER = "fmanet_hf.data"


def test_smic_folder_tree_middle_apex(tmp_path, caplog):
    root = fx.build_smic(tmp_path / "SMIC")
    with caplog.at_level(logging.INFO, logger=LOGGER):
        ds = load_smic(root)
    assert_sane(ds)
    assert ds.features["label_id"].names == ["negative", "positive", "surprise"]
    assert label_counts(ds) == {"negative": 2, "positive": 2, "surprise": 1}
    # Natural subject order: s1, s2, s10.
    assert ds["sample_id"] == [
        "smic/s1/s1_ne_01", "smic/s1/s1_po_01", "smic/s2/s2_ne_02", "smic/s2/s2_sur_01",
        "smic/s10/s10_po_02",
    ]
    row = by_clip(ds)["s1_ne_01"]
    assert (row["onset_index"], row["apex_index"], row["offset_index"]) == (101, 104, 107)
    assert row["apex_method"] == "middle" and row["fixes"] == ""
    assert Path(row["onset_path"]).name == "image000101.bmp"
    # s2_ne_02 frames 400..403: middle (400 + 403) // 2 = 401.
    assert by_clip(ds)["s2_ne_02"]["apex_index"] == 401
    assert "unknown emotion label: neutral 1" in caplog.text
    assert "s3" in caplog.text  # subject without a micro folder is reported


def test_smic_max_motion_apex(tmp_path):
    root = fx.build_smic(tmp_path / "SMIC")
    ds = load_smic(root, apex_method="max_motion")
    row = by_clip(ds)["s1_ne_01"]
    # Grey levels 100,110,120,130,140,170,105 on frames 101..107: frame 106 differs most.
    assert row["apex_index"] == 106
    assert row["apex_method"] == "max_motion"
    assert set(ds["apex_method"]) == {"max_motion"}


def test_smic_variants_and_errors(tmp_path):
    root = fx.build_smic(tmp_path / "SMIC", variant="VIS")
    ds = load_smic(root, variant="vis")
    assert ds["sample_id"][0] == "smic-vis/s1/s1_ne_01"
    with pytest.raises(DatasetError, match="cannot find the frames folder"):
        load_smic(root, variant="NIR")
    with pytest.raises(DatasetError, match="unknown SMIC variant"):
        load_smic(root, variant="UV")
    with pytest.raises(DatasetError, match="apex_method"):
        load_smic(root, variant="VIS", apex_method="annotated")


def test_smic_empty_clip_folder_raises_or_skips(tmp_path):
    root = fx.build_smic(tmp_path / "SMIC")
    empty = root / "SMIC_all_raw" / "HS" / "s2" / "micro" / "surprise" / "s2_sur_02"
    empty.mkdir()
    with pytest.raises(DatasetError) as error:
        load_smic(root)
    assert "holds no frame files" in str(error.value) and str(empty) in str(error.value)
    assert load_smic(root, on_invalid="skip").num_rows == 5


def test_smic_with_sheet(tmp_path):
    root = fx.build_smic(tmp_path / "SMIC")
    fx.write_csv(
        root / "smic_labels.csv",
        ("Subject", "Filename", "Emotion", "OnsetFrame", "OffsetFrame"),
        [("s1", "s1_po_01", "positive", 202, 207), (2, "s2_sur_01", "surprise", None, None)],
    )
    ds = load_smic(root, sheet="smic_labels.csv")
    rows = by_clip(ds)
    assert (rows["s1_po_01"]["onset_index"], rows["s1_po_01"]["apex_index"], rows["s1_po_01"]["offset_index"]) == (202, 204, 207)
    assert (rows["s2_sur_01"]["onset_index"], rows["s2_sur_01"]["offset_index"]) == (300, 304)
    assert rows["s2_sur_01"]["sheet_row"] == 3
