"""Bad-input matrix: annotation sheets (columns, cells, rows, labels, paths) with the CASME II loader."""

from __future__ import annotations

import logging

import pytest

from tests.helpers.dataset_trees import write_csv, write_frames, write_xlsx
from tests.helpers.assertions import assert_error
from fmanet_hf.data import load_casme2
from fmanet_hf.errors import DatasetError

HEADER = ("Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units", "Estimated Emotion")
SHEET = "CASME2-coding-test.xlsx"

#: (subject, filename, onset, apex, offset, AUs, emotion); folders hold frames 1..9.
GOOD_ROWS = (
    (1, "EP01_01", 1, 4, 8, "12", "happiness"),
    (1, "EP02_01", 2, 5, 9, "4", "disgust"),
    (2, "EP03_01", 1, 3, 7, "1+2", "surprise"),
)


def make_tree(root, rows=GOOD_ROWS, header=HEADER, *, csv=False):
    """A CASME II tree: CASME2_RAW_selected/subNN/<filename>/img1..9.jpg for every clip named in GOOD_ROWS."""
    for subject, filename, *_ in GOOD_ROWS:
        write_frames(root / "CASME2_RAW_selected" / f"sub{subject:02d}" / filename, range(1, 10))
    if csv:
        write_csv(root / SHEET.replace(".xlsx", ".csv"), header, rows)
    else:
        write_xlsx(root / SHEET, header, rows)
    return root


def ids_of(dataset):
    return sorted(dataset["sample_id"])


GOOD_IDS = ["casme2/sub01/EP01_01", "casme2/sub01/EP02_01", "casme2/sub02/EP03_01"]


# ----------------------------------------------------------------- columns
def test_extra_columns_are_ignored(tmp_path):
    header = ("Notes", *HEADER[:3], "Unnamed: 3", *HEADER[3:], "Coder")
    rows = [("n", *r[:3], "x", *r[3:], "AB") for r in GOOD_ROWS]
    dataset = load_casme2(make_tree(tmp_path, rows, header))
    assert ids_of(dataset) == GOOD_IDS
    assert sorted(dataset["apex_index"]) == [3, 4, 5]


def test_respelled_columns_are_matched(tmp_path):
    header = ("subject", "File Name", "Onset Frame", "apex_frame", "OFFSET-FRAME", "Action Units", "estimated emotion")
    dataset = load_casme2(make_tree(tmp_path, GOOD_ROWS, header))
    assert ids_of(dataset) == GOOD_IDS


def test_renamed_column_is_refused_then_mapped(tmp_path):
    header = ("Subject", "Filename", "Start", "ApexFrame", "OffsetFrame", "Action Units", "Estimated Emotion")
    root = make_tree(tmp_path, GOOD_ROWS, header)
    with pytest.raises(DatasetError) as excinfo:
        load_casme2(root)
    assert_error(excinfo, DatasetError, "missing required column", "'onset'", "Start", "columns=")
    assert sorted(load_casme2(root, columns={"onset": "Start"})["onset_index"]) == [1, 1, 2]


def test_merged_subject_cells_apply_to_every_row(tmp_path):
    import openpyxl

    rows = [GOOD_ROWS[0], (None, *GOOD_ROWS[1][1:]), GOOD_ROWS[2]]  # rows 2-3 share one merged "1"
    root = make_tree(tmp_path, rows)
    workbook = openpyxl.load_workbook(root / SHEET)
    workbook.active.merge_cells("A2:A3")
    workbook.save(root / SHEET)
    assert ids_of(load_casme2(root)) == GOOD_IDS


# ----------------------------------------------------------------- cells
@pytest.mark.parametrize("apex", ["/", "peak", "", 2.5, -3], ids=["slash", "text", "blank", "fraction", "negative"])
def test_unusable_apex_becomes_the_middle_frame(tmp_path, apex):
    rows = [GOOD_ROWS[0][:3] + (apex,) + GOOD_ROWS[0][4:], *GOOD_ROWS[1:]]
    dataset = load_casme2(make_tree(tmp_path, rows)).sort("sample_id")
    first = dataset[0]
    assert (first["onset_index"], first["apex_index"], first["offset_index"]) == (1, (1 + 8) // 2, 8)
    assert first["apex_method"] == "middle" and "apex_middle" in first["fixes"]
    assert dataset[1]["apex_method"] == "annotated"


def test_apex_outside_the_clip_becomes_the_middle_frame(tmp_path):
    rows = [GOOD_ROWS[0][:3] + (9,) + (6,) + GOOD_ROWS[0][5:], *GOOD_ROWS[1:]]  # onset 1, apex 9 > offset 6
    first = load_casme2(make_tree(tmp_path, rows)).sort("sample_id")[0]
    assert (first["apex_index"], first["apex_method"]) == (3, "middle")
    assert "apex_outside_clip_middle" in first["fixes"]


def test_offset_before_onset_becomes_the_last_frame(tmp_path):
    rows = [GOOD_ROWS[0][:2] + (5, 6, 2) + GOOD_ROWS[0][5:], *GOOD_ROWS[1:]]  # onset 5 > offset 2
    first = load_casme2(make_tree(tmp_path, rows)).sort("sample_id")[0]
    assert (first["onset_index"], first["apex_index"], first["offset_index"]) == (5, 6, 9)  # folder ends at 9
    assert "offset_before_onset_last_frame" in first["fixes"]


def test_non_numeric_onset_names_the_row(tmp_path):
    rows = [*GOOD_ROWS[:2], GOOD_ROWS[2][:2] + ("start",) + GOOD_ROWS[2][3:]]
    with pytest.raises(DatasetError) as excinfo:
        load_casme2(make_tree(tmp_path, rows))
    assert_error(excinfo, DatasetError, "row 4", "onset 'start' is not a frame number", "OnsetFrame", "on_invalid='skip'")
    assert ids_of(load_casme2(tmp_path, on_invalid="skip")) == GOOD_IDS[:2]


def test_onset_after_the_last_frame_names_the_row(tmp_path):
    rows = [*GOOD_ROWS[:2], GOOD_ROWS[2][:2] + (40, 42, 45) + GOOD_ROWS[2][5:]]
    with pytest.raises(DatasetError) as excinfo:
        load_casme2(make_tree(tmp_path, rows))
    assert_error(excinfo, DatasetError, "row 4", "40")


def test_empty_subject_cell_names_the_row(tmp_path):
    rows = [*GOOD_ROWS[:2], (None, *GOOD_ROWS[2][1:])]
    with pytest.raises(DatasetError) as excinfo:
        load_casme2(make_tree(tmp_path, rows))
    assert_error(excinfo, DatasetError, "row 4", "Subject cell is empty")


# ----------------------------------------------------------------- rows and labels
def test_duplicated_rows_are_dropped_and_logged(tmp_path, caplog):
    rows = [*GOOD_ROWS, GOOD_ROWS[0], GOOD_ROWS[0]]
    with caplog.at_level(logging.INFO, logger="fmanet_hf.data"):
        dataset = load_casme2(make_tree(tmp_path, rows))
    assert ids_of(dataset) == GOOD_IDS
    assert "duplicate_rows_dropped" in dataset.sort("sample_id")[0]["fixes"]
    assert any("dropped 2 duplicated sheet rows" in r.getMessage() for r in caplog.records)


def test_same_clip_twice_with_different_frames_is_refused(tmp_path):
    rows = [*GOOD_ROWS, GOOD_ROWS[0][:3] + (5,) + GOOD_ROWS[0][4:]]
    with pytest.raises(DatasetError) as excinfo:
        load_casme2(make_tree(tmp_path, rows))
    assert_error(excinfo, DatasetError, "row 5", "already used by row 2", "different frames")


def test_labels_outside_the_class_map_are_dropped_and_counted(tmp_path, caplog):
    rows = [*GOOD_ROWS, (2, "EP03_01", 1, 3, 7, "", "bewilderment"), (2, "EP03_01", 1, 3, 7, "", "fear")]
    with caplog.at_level(logging.INFO, logger="fmanet_hf.data"):
        dataset = load_casme2(make_tree(tmp_path, rows), class_set="5class")
    assert ids_of(dataset) == GOOD_IDS
    text = " ".join(r.getMessage() for r in caplog.records)
    assert "bewilderment" in text and "fear" in text


# ----------------------------------------------------------------- paths
@pytest.mark.parametrize(
    "subject, filename",
    [("../..", "EP01_01"), ("sub01", "../../../outside"), ("sub01", "/etc"), ("/tmp", "EP01_01")],
    ids=["subject-dotdot", "filename-dotdot", "filename-absolute", "subject-absolute"],
)
def test_paths_escaping_the_dataset_root_name_the_row(tmp_path, subject, filename):
    (tmp_path / "outside").mkdir()
    write_frames(tmp_path / "outside", range(1, 10))  # a real folder the escape would reach
    rows = [*GOOD_ROWS, (subject, filename, 1, 3, 7, "", "happiness")]
    with pytest.raises(DatasetError) as excinfo:
        load_casme2(make_tree(tmp_path / "data", rows))
    assert_error(excinfo, DatasetError, "row 5", "escapes the dataset root", "no '..' or absolute paths")


def test_missing_clip_folder_names_the_row(tmp_path):
    rows = [*GOOD_ROWS, (2, "EP99_01", 1, 3, 7, "", "happiness")]
    with pytest.raises(DatasetError) as excinfo:
        load_casme2(make_tree(tmp_path, rows))
    assert_error(excinfo, DatasetError, "row 5", "frame folder not found", "EP99_01")


# ----------------------------------------------------------------- files
def test_corrupt_xlsx_file(tmp_path):
    make_tree(tmp_path)
    (tmp_path / SHEET).write_bytes(b"PK\x03\x04 this zip ends here")
    with pytest.raises(DatasetError) as excinfo:
        load_casme2(tmp_path)
    assert_error(excinfo, DatasetError, SHEET, "cannot read annotation sheet", "save it again")


def test_csv_sheet_with_bom_and_blank_lines(tmp_path):
    root = make_tree(tmp_path, [*GOOD_ROWS[:2], (None,) * 7, GOOD_ROWS[2]], csv=True)
    path = root / SHEET.replace(".xlsx", ".csv")
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())  # Excel's UTF-8 byte-order mark
    assert ids_of(load_casme2(root, sheet=path.name)) == GOOD_IDS
