"""`fmanet_hf.data.samm`: the SAMM loader against a tiny tree in its owners' layout.

Expected values are worked out by hand from the fixture rows (see the comments
in tests/helpers/dataset_trees.py), never recomputed with the loader's own code.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from fmanet_hf.data import load_samm
from fmanet_hf.errors import DatasetError

from tests.helpers import dataset_trees as fx
from tests.helpers.loader_checks import assert_sane, by_clip, label_counts


LOGGER = "fmanet_hf.data"


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
