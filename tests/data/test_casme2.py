"""`fmanet_hf.data.casme2`: the CASME II loader (and SynthME through its layout) against tiny trees in the
owners' layout. The other loaders have their own test_<dataset>.py beside this one.

Expected values are worked out by hand from the fixture rows (see the comments
in tests/helpers/dataset_trees.py), never recomputed with the loader's own code.
"""

from __future__ import annotations

from collections import Counter
import logging
import os
from pathlib import Path

import pytest

from fmanet_hf.data import load_casme2
from fmanet_hf.errors import DatasetError

from tests.helpers import dataset_trees as fx
from tests.helpers.loader_checks import assert_sane, by_clip, label_counts


LOGGER = "fmanet_hf.data"


def test_casme2_5class_counts_fixes_and_logs(tmp_path, caplog):
    root = fx.build_casme2(tmp_path / "CASME2")
    with caplog.at_level(logging.INFO, logger=LOGGER):
        ds = load_casme2(root)
    assert_sane(ds)
    # Rows 2-12: duplicate row 6 dropped; fear, sadness outside 5class; xyz unknown.
    assert ds.num_rows == 7
    assert label_counts(ds) == {"happiness": 2, "surprise": 1, "disgust": 2, "repression": 1, "others": 1}
    assert ds.features["label_id"].names == ["happiness", "disgust", "repression", "surprise", "others"]
    rows = by_clip(ds)
    # Row 3: apex "/" -> middle of 5..15.
    assert rows["EP03_02"]["apex_index"] == 10
    assert rows["EP03_02"]["apex_method"] == "middle"
    assert rows["EP03_02"]["fixes"] == "apex_middle"
    assert rows["EP03_02"]["apex_path"].endswith(os.path.join("sub01", "EP03_02", "img10.jpg"))
    # Row 4: offset 0 -> last frame of the folder (frames 1..8).
    assert rows["EP01_01"]["offset_index"] == 8
    assert rows["EP01_01"]["fixes"] == "offset_last_frame"
    assert rows["EP01_01"]["apex_method"] == "annotated"
    # Rows 5 and 11: labels needing cleaning; row 12's "Happiness" is a usual spelling.
    assert rows["EP05_03"]["native_label"] == "repression"
    assert rows["EP05_03"]["fixes"] == "label_normalised"
    assert rows["EP11_01"]["label"] == "disgust" and rows["EP11_01"]["fixes"] == "label_normalised"
    assert rows["EP12_01"]["fixes"] == ""
    # Row 2 had an identical copy (row 6).
    assert rows["EP02_01f"]["fixes"] == "duplicate_rows_dropped"
    assert rows["EP02_01f"]["sample_id"] == "casme2/sub01/EP02_01f"
    assert rows["EP02_01f"]["subject"] == "sub01"
    assert rows["EP02_01f"]["sheet_row"] == 2
    assert rows["EP02_01f"]["action_units"] == "4"
    assert (rows["EP02_01f"]["onset_index"], rows["EP02_01f"]["apex_index"], rows["EP02_01f"]["offset_index"]) == (10, 14, 20)
    log = caplog.text
    assert "dropped 1 duplicated sheet rows (row 6 repeats row 2)" in log
    assert "dropped 2 samples whose label is not in class set '5class'" in log
    assert "fear 1, sadness 1" in log
    assert "dropped 1 samples with an unknown emotion label: xyz 1" in log


def test_casme2_megc3_and_all(tmp_path):
    root = fx.build_casme2(tmp_path / "CASME2")
    megc = load_casme2(root, class_set="megc3")
    assert megc.features["label_id"].names == ["negative", "positive", "surprise"]
    # negative: disgust 2 + repression 1 + fear 1 + sadness 1; others and xyz dropped.
    assert label_counts(megc) == {"negative": 5, "positive": 2, "surprise": 1}
    assert label_counts(load_casme2(root, class_set="3class")) == label_counts(megc)
    everything = load_casme2(root, class_set="all")
    assert everything.num_rows == 9
    assert Counter(everything["native_label"])["fear"] == 1


def test_casme2_cropped_layout_and_csv_sheet(tmp_path):
    root = fx.build_casme2(
        tmp_path / "CASME2", frames_dir="Cropped", name_format="reg_img{i}.jpg",
        sheet_name="CASME2-coding-updated.csv", csv_sheet=True,
    )
    ds = load_casme2(root)
    assert_sane(ds)
    assert ds.num_rows == 7
    row = by_clip(ds)["EP03_02"]
    assert row["apex_index"] == 10
    assert Path(row["apex_path"]).name == "reg_img10.jpg"
    assert Path(row["apex_path"]).parent.parent.parent.name == "Cropped"


def test_synthme_loads_through_casme2_layout(tmp_path):
    root = fx.build_synthme(tmp_path / "SynthME")
    ds = load_casme2(root, class_set="megc3", dataset_name="synthme")
    assert_sane(ds)
    assert ds.num_rows == 8
    assert all(s.startswith("synthme/") for s in ds["sample_id"])
    assert set(ds["dataset"]) == {"synthme"}
    # negative: disgust, sadness, repression, anger, fear; positive: 2 happiness.
    assert label_counts(ds) == {"negative": 5, "positive": 2, "surprise": 1}
    assert sorted(set(ds["subject"])) == ["sub01", "sub02", "sub03"]


def test_casme2_missing_column_names_header_and_fix(tmp_path):
    header = tuple(h for h in fx.CASME2_HEADER if h != "ApexFrame")
    root = tmp_path / "CASME2"
    fx.write_xlsx(root / "CASME2-coding-x.xlsx", header, [(1, "EP02_01f", None, 10, 20, None, "4", "happiness")])
    (root / "CASME2_RAW_selected" / "sub01").mkdir(parents=True)
    with pytest.raises(DatasetError) as error:
        load_casme2(root)
    message = str(error.value)
    assert "CASME2-coding-x.xlsx" in message
    assert "'apex'" in message and "ApexFrame" in message
    assert "row 1" in message
    assert "columns=" in message


def test_casme2_columns_override_reads_renamed_column(tmp_path):
    header = tuple("Peak" if h == "ApexFrame" else h for h in fx.CASME2_HEADER)
    root = fx.build_casme2(tmp_path / "CASME2", header=header)
    ds = load_casme2(root, columns={"apex": "Peak"})
    assert ds.num_rows == 7


def test_casme2_index_out_of_range_names_row_and_folder(tmp_path):
    extra = ((5, "EP13_01", 10, 14, 25, None, "happiness", range(10, 21)),)  # row 13
    root = fx.build_casme2(tmp_path / "CASME2", extra_rows=extra)
    with pytest.raises(DatasetError) as error:
        load_casme2(root)
    message = str(error.value)
    assert "row 13 of sheet" in message
    assert "CASME2-coding-20140508.xlsx" in message
    assert "'EP13_01'" in message and "subject '5'" in message
    assert "offset frame 25 is out of range" in message
    assert str(root / "CASME2_RAW_selected" / "sub05" / "EP13_01") in message
    assert "10..20" in message
    assert "How to fix" in message


def test_casme2_missing_frame_folder_names_row_and_path(tmp_path):
    extra = ((5, "EP99_99", 1, 2, 3, None, "surprise", None),)  # row 13, no folder
    root = fx.build_casme2(tmp_path / "CASME2", extra_rows=extra)
    with pytest.raises(DatasetError) as error:
        load_casme2(root)
    message = str(error.value)
    assert "row 13 of sheet" in message and "'EP99_99'" in message
    assert "frame folder not found" in message
    assert str(root / "CASME2_RAW_selected" / "sub05" / "EP99_99") in message


def test_casme2_path_escape_is_refused(tmp_path):
    # A real frame folder outside the dataset root, reachable with "..".
    fx.write_frames(tmp_path / "outside", range(1, 6))
    extra = ((1, "../../../outside", 1, 2, 3, None, "surprise", None),)  # row 13
    root = fx.build_casme2(tmp_path / "CASME2", extra_rows=extra)
    with pytest.raises(DatasetError) as error:
        load_casme2(root)
    message = str(error.value)
    assert "row 13 of sheet" in message
    assert "escapes the dataset root" in message
    assert "outside" in message
    skipped = load_casme2(root, on_invalid="skip")
    assert not any("outside" in p for p in skipped["onset_path"])


def test_casme2_skip_drops_bad_rows_with_a_count(tmp_path, caplog):
    extra = (
        (5, "EP13_01", 10, 14, 25, None, "happiness", range(10, 21)),  # out of range
        (5, "EP99_99", 1, 2, 3, None, "surprise", None),               # no folder
        (5, "EP14_01", 1, 2, 3, None, "surprise", range(1, 4)),        # fine
    )
    root = fx.build_casme2(tmp_path / "CASME2", extra_rows=extra)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        ds = load_casme2(root, on_invalid="skip")
    assert ds.num_rows == 8
    assert "casme2/sub05/EP14_01" in ds["sample_id"]
    assert "skipped 2 invalid rows" in caplog.text


def test_casme2_argument_errors(tmp_path):
    root = fx.build_casme2(tmp_path / "CASME2")
    with pytest.raises(DatasetError, match="unknown class_set"):
        load_casme2(root, class_set="9class")
    with pytest.raises(DatasetError, match="on_invalid"):
        load_casme2(root, on_invalid="ignore")
    with pytest.raises(DatasetError, match="is not a folder"):
        load_casme2(tmp_path / "nowhere")
    with pytest.raises(DatasetError, match="escapes the dataset root"):
        load_casme2(root, frames_dir="../..")
    fx.write_xlsx(root / "CASME2-coding-copy.xlsx", fx.CASME2_HEADER, [])
    with pytest.raises(DatasetError, match="several annotation sheets"):
        load_casme2(root)
    assert load_casme2(root, sheet="CASME2-coding-20140508.xlsx").num_rows == 7
