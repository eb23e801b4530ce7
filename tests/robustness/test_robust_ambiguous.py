"""Ambiguous input: read under a stated assumption with a warning, or refused.

An `AmbiguousInputWarning` (an `FMANetWarning`) says what was assumed; the pipeline puts
each message in the result's ``warnings`` and ``fmanet-hf predict`` prints it as one
``warning:`` line on stderr. Sheets of two formats that disagree are refused.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image

from fmanet_hf.errors import AmbiguousInputWarning, DatasetError, FMANetWarning, InvalidFrameError
from fmanet_hf.frames import load_triplet, to_gray_float


def fmanet_warnings(function, *args):
    """(result, [messages of the FMANetWarnings raised])."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = function(*args)
    return result, [str(w.message) for w in caught if issubclass(w.category, FMANetWarning)]


# ----------------------------------------------------------------------------- value scales
@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.int64, np.uint32])
def test_an_integer_array_in_0_255_of_another_dtype_is_read_as_8_bit_with_a_warning(dtype, textured_gray):
    grey, messages = fmanet_warnings(to_gray_float, textured_gray.astype(dtype), "apex")
    np.testing.assert_array_equal(grey, textured_gray.astype(np.float32))  # the 8-bit reading
    assert len(messages) == 1 and "apex" in messages[0] and "read as 8-bit" in messages[0]
    assert np.dtype(dtype).name in messages[0]


def test_a_uint16_array_in_0_255_is_refused(textured_gray):
    # 8-bit data in a 16-bit array, or an almost black 16-bit image: the readings differ 256-fold.
    with pytest.raises(InvalidFrameError, match="almost black.*astype\\(np.uint8\\)"):
        to_gray_float(textured_gray.astype(np.uint16), "onset")


def test_unambiguous_frames_raise_no_warning(textured_gray):
    for frame in (textured_gray, textured_gray.astype(np.uint16) * 257, textured_gray / 255.0):
        _, messages = fmanet_warnings(to_gray_float, frame)
        assert messages == []


# ----------------------------------------------------------------------------- animated images
def test_an_animated_gif_gives_its_first_frame_with_a_warning(textured_gray, tmp_path):
    second = np.roll(textured_gray, 9, axis=1)
    path = tmp_path / "clip.gif"
    Image.fromarray(textured_gray).save(path, save_all=True, append_images=[Image.fromarray(second), Image.fromarray(second[::-1])])
    grey, messages = fmanet_warnings(to_gray_float, path)
    np.testing.assert_allclose(grey, textured_gray.astype(np.float32), atol=1e-3)  # GIF palette -> RGB -> luma
    assert len(messages) == 1 and "3 frames" in messages[0] and "only its first frame was read" in messages[0]
    with Image.open(path) as image:  # the same as a PIL image
        _, messages = fmanet_warnings(to_gray_float, image)
    assert len(messages) == 1 and "first frame" in messages[0]


# ----------------------------------------------------------------------------- identical frames
@pytest.mark.parametrize(
    "pattern, words",
    [("aaa", "onset, apex and offset frames are identical"), ("aab", "onset and apex frames are identical"),
     ("abb", "apex and offset frames are identical"), ("aba", None), ("abc", None)],
)
def test_identical_frames_in_a_triplet(pattern, words, textured_gray):
    frames = {"a": textured_gray, "b": np.roll(textured_gray, 3, axis=0), "c": np.roll(textured_gray, 5, axis=1)}
    _, messages = fmanet_warnings(load_triplet, [frames[key] for key in pattern])
    if words is None:  # onset = offset is an ordinary clip: the face returns to neutral
        assert messages == []
    else:
        assert len(messages) == 1 and words in messages[0]


# ----------------------------------------------------------------------------- the pipeline and the CLI
@pytest.fixture(scope="module")
def fast_pipeline():
    from fmanet_hf import FMANetImageProcessor
    from fmanet_hf.pipeline import TASK, MicroExpressionRecognitionPipeline

    from tests.helpers.tiny import tiny_model

    processor = FMANetImageProcessor(align_faces=False, crop_size=None, stabilization="none", flow_method="dis",
                                     size={"height": 32, "width": 32})
    return MicroExpressionRecognitionPipeline(model=tiny_model(image_size=32).eval(), image_processor=processor, task=TASK, device="cpu")


def test_the_pipeline_result_carries_the_warnings(fast_pipeline, textured_gray):
    apex = np.roll(textured_gray, 2, axis=1)
    plain = fast_pipeline((textured_gray, apex, textured_gray))
    assert plain.warnings == []
    with pytest.warns(AmbiguousInputWarning):
        result = fast_pipeline((textured_gray.astype(np.int32), apex, apex))
    assert len(result.warnings) == 2
    assert "read as 8-bit" in result.warnings[0] and "apex and offset frames are identical" in result.warnings[1]
    assert [p["label"] for p in result] == [p["label"] for p in fast_pipeline((textured_gray, apex, apex))]
    with pytest.warns(AmbiguousInputWarning):
        detailed = fast_pipeline((textured_gray,) * 3, return_attention=True)
    assert detailed["warnings"] == detailed["predictions"].warnings and "identical" in detailed["warnings"][0]


def test_cli_predict_prints_each_warning_on_one_stderr_line(tmp_path, capsys, monkeypatch, fast_pipeline, textured_gray):
    from fmanet_hf import pretrained
    from fmanet_hf.cli import main as cli_main

    monkeypatch.setattr(pretrained, "load_model", lambda name: (fast_pipeline.model, fast_pipeline.image_processor, True))
    path = tmp_path / "frame.png"
    Image.fromarray(textured_gray).save(path)
    assert cli_main(["predict", str(path), str(path), str(path)]) == 0
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("warning: ") and "identical" in lines[0], captured.err
    assert "Warning:" not in captured.err  # Python's own two-line display is not shown


# ----------------------------------------------------------------------------- sheets in two formats
def write_sheets(root, csv_apex: int):
    import pandas as pd

    header = ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units", "Estimated Emotion"]
    rows = [[1, "EP02_01f", 46, 59, 86, "12", "happiness"], [2, "EP03_02", 10, 20, 40, "4", "disgust"]]
    pd.DataFrame(rows, columns=header).to_excel(root / "CASME2-coding-20140508.xlsx", index=False)
    rows[1][3] = csv_apex
    pd.DataFrame(rows, columns=header).to_csv(root / "CASME2-coding-20140508.csv", index=False)


def test_an_xlsx_and_a_csv_sheet_that_disagree_are_refused(tmp_path):
    from fmanet_hf.data.casme2 import CASME2_SHEET_PATTERNS
    from fmanet_hf.data.sheets import find_sheet

    write_sheets(tmp_path, csv_apex=25)
    with pytest.raises(DatasetError, match=r"disagree: CASME2-coding-20140508.xlsx \(which would be read\) and CASME2-coding-20140508.csv differ from sheet row 3"):
        find_sheet(tmp_path, CASME2_SHEET_PATTERNS, dataset_name="CASME II")


def test_an_xlsx_and_a_csv_sheet_that_agree_are_read_once_and_named(tmp_path, caplog):
    import logging

    from fmanet_hf.data.casme2 import CASME2_SHEET_PATTERNS
    from fmanet_hf.data.sheets import find_sheet

    write_sheets(tmp_path, csv_apex=20)
    with caplog.at_level(logging.INFO, logger="fmanet_hf.data.sheets"):
        chosen = find_sheet(tmp_path, CASME2_SHEET_PATTERNS, dataset_name="CASME II")
    assert chosen.name == "CASME2-coding-20140508.xlsx"
    assert "read CASME2-coding-20140508.xlsx (CASME2-coding-20140508.csv beside it holds the same table)" in caplog.text
