"""Tests of the dataset loaders against tiny trees in the owners' layouts.

Expected values are worked out by hand from the fixture rows (see the comments
in tests/helpers/dataset_trees.py), never recomputed with the loader's own code.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from fmanet_hf.data import (
    SAMPLE_COLUMNS,
    FrameFolder,
    frame_number,
    load_casme2,
    load_casme3,
    load_megc2019,
    load_mmew,
    load_samm,
    load_smic,
    megc3_label,
    normalise_column_name,
    normalise_label,
)
from fmanet_hf.errors import DatasetError

from tests.helpers import dataset_trees as fx

LOGGER = "fmanet_hf.data"


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


# ---------------------------------------------------------------------------
# Shared machinery
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("img46.jpg", 46),
        ("reg_img46.jpg", 46),
        ("006_05562.jpg", 5562),
        ("image000001.bmp", 1),
        ("0.jpg", 0),
        ("12.PNG", 12),
        ("frame7.jpeg", 7),
        ("._img1.jpg", None),
        ("notes.txt", None),
        ("cover.jpg", None),
    ],
)
def test_frame_number_reads_the_trailing_integer(name, expected):
    assert frame_number(name) == expected


def test_frame_folder_prefers_jpg_and_sorts(tmp_path):
    fx.write_frames(tmp_path, [3, 1, 2], "img{i}.png")
    fx.write_frames(tmp_path, [2], "img{i}.jpg")
    folder = FrameFolder.scan(tmp_path)
    assert folder.indices == [1, 2, 3]
    assert folder.path_for(2).name == "img2.jpg"
    assert folder.nearest_between(10, 1, 3) == 3


def test_column_names_and_labels_normalise():
    assert normalise_column_name("Onset Frame") == normalise_column_name("OnsetFrame") == "onsetframe"
    assert normalise_column_name("onset_frame") == "onsetframe"
    assert normalise_label("Happiness").canonical == "happiness"
    assert not normalise_label("Happiness").changed
    assert normalise_label(" Repression ").changed
    assert normalise_label("Other").canonical == "others"
    assert not normalise_label("xyz").known
    for native in ("anger", "contempt", "disgust", "fear", "sadness", "repression"):
        assert megc3_label(native) == "negative"
    assert megc3_label("happiness") == "positive"
    assert megc3_label("surprise") == "surprise"
    assert megc3_label("others") is None


def test_data_package_imports_no_torch():
    # Load fmanet_hf.data without running fmanet_hf/__init__ (which imports the
    # model), with torch blocked: the data layer must not need it.
    src = Path(__import__("fmanet_hf").__file__).parent
    code = f"""
import sys, types
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch blocked")
sys.meta_path.insert(0, Block())
package = types.ModuleType("fmanet_hf")
package.__path__ = [{str(src)!r}]
sys.modules["fmanet_hf"] = package
import fmanet_hf.data
assert "torch" not in sys.modules
"""
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# ---------------------------------------------------------------------------
# CASME II
# ---------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------
# SAMM
# ---------------------------------------------------------------------------
def test_samm_header_rows_5class_and_fixes(tmp_path, caplog):
    root = fx.build_samm(tmp_path / "SAMM_root")
    with caplog.at_level(logging.INFO, logger=LOGGER):
        ds = load_samm(root)
    assert_sane(ds)
    assert ds.features["label_id"].names == ["anger", "contempt", "happiness", "surprise", "others"]
    assert label_counts(ds) == {"happiness": 1, "anger": 1, "contempt": 1, "surprise": 1, "others": 1}
    rows = by_clip(ds)
    assert rows["006_1_2"]["sample_id"] == "samm/006/006_1_2"
    assert rows["006_1_2"]["subject"] == "006"
    assert Path(rows["006_1_2"]["onset_path"]).name == "006_05562.jpg"
    assert rows["006_1_2"]["sheet_row"] == 15  # 13 intro rows + header
    assert rows["006_1_2"]["fixes"] == ""  # "Happiness" is SAMM's usual spelling
    # Row 16: apex -1 -> middle of 5600..5610.
    assert rows["006_1_3"]["apex_index"] == 5605
    assert rows["006_1_3"]["fixes"] == "apex_middle"
    assert rows["011_2_1"]["native_label"] == "others"
    assert "disgust 1, fear 1" in caplog.text


def test_samm_megc3_counts(tmp_path):
    ds = load_samm(fx.build_samm(tmp_path / "SAMM_root"), class_set="megc3")
    # negative: anger, contempt, disgust, fear; Other dropped.
    assert label_counts(ds) == {"negative": 4, "positive": 1, "surprise": 1}


def test_samm_index_out_of_range_reports_spreadsheet_row(tmp_path):
    extra = ((11, "011_9_9", 80, 82, 99, None, "Anger", range(80, 85)),)  # row 22
    root = fx.build_samm(tmp_path / "SAMM_root", extra_rows=extra)
    with pytest.raises(DatasetError) as error:
        load_samm(root)
    message = str(error.value)
    assert "row 22 of sheet" in message and "'011_9_9'" in message
    assert "offset frame 99 is out of range" in message
    assert str(root / "SAMM" / "011" / "011_9_9") in message


# ---------------------------------------------------------------------------
# SMIC
# ---------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------
# MMEW
# ---------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------
# CAS(ME)^3
# ---------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------
# MEGC2019 composite
# ---------------------------------------------------------------------------
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
