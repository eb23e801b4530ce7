"""Shared machinery of the loaders (today `fmanet_hf/data/annotations.py`): frame numbers and folders,
column-name and label normalisation, the MEGC 3-class mapping, and a data layer that needs no torch.

Expected values are worked out by hand from the fixture rows (see the comments
in tests/helpers/dataset_trees.py), never recomputed with the loader's own code.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fmanet_hf.data import (
    FrameFolder,
    frame_number,
    megc3_label,
    normalise_column_name,
    normalise_label,
)

from tests.helpers import dataset_trees as fx


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
