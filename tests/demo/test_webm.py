"""WebM videos for the demo's examples: a valid VP8 WebM file, written without any line on stderr."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from fmanet_hf.demo.webm import doctype_of, matroska_as_webm, write_webm
from fmanet_hf.errors import FMANetError, WebMWriteError

GREYS = (30, 90, 150, 210)


def grey_frames(size=(48, 64)) -> list[np.ndarray]:
    return [np.full((*size, 3), grey, np.uint8) for grey in GREYS]


def test_written_file_is_webm_that_opencv_reads_back_frame_for_frame(tmp_path, capfd):
    target = write_webm(grey_frames(), tmp_path / "clip.webm", fps=10.0)
    written = capfd.readouterr()
    # OpenCV's own WebM path prints its codec-tag warning with fprintf: capfd sees the file
    # descriptor itself, so any such line would show up here.
    assert written.err == "" and written.out == ""
    header = target.read_bytes()[:64]
    # EBML DocType element (id 0x4282), size 4, "webm"; no trace of the Matroska DocType.
    assert b"\x42\x82\x84webm" in header and b"matroska" not in header
    capture = cv2.VideoCapture(str(target))
    decoded = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        decoded.append(frame)
    capture.release()
    assert len(decoded) == len(GREYS)
    assert decoded[0].shape == (48, 64, 3)
    # VP8 is lossy: flat grey frames come back within a few grey levels.
    assert [round(float(frame.mean())) for frame in decoded] == pytest.approx(list(GREYS), abs=4)
    assert sorted(os.listdir(tmp_path)) == ["clip.webm"]  # no Matroska temporary left behind


def test_opencvs_direct_webm_path_prints_the_warning_this_module_avoids(tmp_path, capfd):
    # The reason the module exists: if OpenCV ever stops printing, this goes red and the
    # Matroska detour can be dropped.
    writer = cv2.VideoWriter(str(tmp_path / "direct.webm"), cv2.VideoWriter_fourcc(*"VP80"), 10.0, (64, 48))
    writer.release()
    assert "is not supported with codec id" in capfd.readouterr().err


def test_doctype_rewrite_on_a_hand_built_header():
    # EBML header: EBMLVersion 1, DocType "matroska", DocTypeVersion 4; then a stand-in segment.
    elements = b"\x42\x86\x81\x01" + b"\x42\x82\x88matroska" + b"\x42\x87\x81\x04"
    segment = b"\x18\x53\x80\x67\x84SEGM"
    matroska = b"\x1a\x45\xdf\xa3" + bytes([0x80 | len(elements)]) + elements + segment
    expected_elements = b"\x42\x86\x81\x01" + b"\x42\x82\x84webm" + b"\x42\x87\x81\x04"
    expected = b"\x1a\x45\xdf\xa3" + bytes([0x80 | len(expected_elements)]) + expected_elements + segment
    assert matroska_as_webm(matroska) == expected
    assert doctype_of(matroska) == "matroska" and doctype_of(expected) == "webm"


def test_a_two_byte_header_size_keeps_its_length():
    elements = b"\x42\x82\x88matroska"
    matroska = b"\x1a\x45\xdf\xa3" + (0x4000 | len(elements)).to_bytes(2, "big") + elements + b"rest"
    assert matroska_as_webm(matroska) == b"\x1a\x45\xdf\xa3" + (0x4000 | 7).to_bytes(2, "big") + b"\x42\x82\x84webm" + b"rest"


@pytest.mark.parametrize(
    "data, message",
    [
        (b"RIFF\x00\x00\x00\x00AVI ", "does not start with an EBML header"),
        (b"\x1a\x45\xdf\xa3\x85\x42\x86\x81\x01", "longer than the file"),
        (b"\x1a\x45\xdf\xa3\x84\x42\x86\x81\x01", "no DocType"),
        (b"\x1a\x45\xdf\xa3\x84\x42\x82\x85web", "runs past the header"),
    ],
)
def test_malformed_headers_are_refused_with_a_message(data, message):
    with pytest.raises(WebMWriteError, match=message) as raised:
        matroska_as_webm(data)
    assert isinstance(raised.value, FMANetError)


def test_bad_frames_are_refused_and_nothing_is_written(tmp_path):
    with pytest.raises(WebMWriteError, match="at least one frame"):
        write_webm([], tmp_path / "empty.webm")
    with pytest.raises(WebMWriteError, match="one size"):
        write_webm([np.zeros((48, 64, 3), np.uint8), np.zeros((40, 64, 3), np.uint8)], tmp_path / "mixed.webm")
    with pytest.raises(WebMWriteError, match="one size"):
        write_webm([np.zeros((48, 64, 3), np.float32)], tmp_path / "float.webm")
    assert os.listdir(tmp_path) == []


def test_an_opencv_without_vp8_gives_the_install_hint_and_leaves_no_file(tmp_path, monkeypatch):
    class ClosedWriter:
        def __init__(self, *args):
            pass

        def isOpened(self):
            return False

    monkeypatch.setattr(cv2, "VideoWriter", ClosedWriter)
    with pytest.raises(WebMWriteError, match="cannot encode VP8"):
        write_webm(grey_frames(), tmp_path / "clip.webm")
    assert os.listdir(tmp_path) == []
