"""Bad-input matrix: the demo's caps on uploads (file size, frame pixels, video length)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from tests.helpers.assertions import assert_error
from fmanet_hf.demo import app
from fmanet_hf.demo.errors import FrameTooLargeError, MissingFrameError, VideoTooLongError, VideoTooShortError


def write_mjpg(path, count: int, size=(32, 24)):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, size)
    for index in range(count):
        writer.write(np.full((size[1], size[0], 3), index % 256, np.uint8))
    writer.release()
    return str(path)


def test_uploads_are_capped_at_the_server(monkeypatch):
    seen = {}

    class FakeBlocks:
        def launch(self, **kwargs):
            seen.update(kwargs)

    monkeypatch.setattr(app, "_import_gradio", lambda: None)
    monkeypatch.setattr(app, "_theme", lambda gr: None)
    app.launch_blocks(FakeBlocks())
    assert seen["max_file_size"] == app.DEFAULT_MAX_FILE_SIZE == "20mb"
    assert seen["share"] is False


def test_frame_with_too_many_pixels():
    small = np.zeros((64, 64, 3), np.uint8)
    huge = Image.new("L", (8000, 6000))  # 48 megapixels; PIL allocates lazily enough for a test
    with pytest.raises(FrameTooLargeError) as excinfo:
        app.prepare_frames(small, huge, small)
    assert_error(excinfo, FrameTooLargeError, "apex frame is 8000x6000", "40 megapixels", "Crop")


def test_large_frames_are_scaled_down_alike():
    frames = [np.full((3200, 2400), level, np.uint8) for level in (10, 20, 30)]
    scaled, note = app.prepare_frames(*frames)
    assert [f.shape for f in scaled] == [(1600, 1200)] * 3
    assert [int(f[0, 0]) for f in scaled] == [10, 20, 30]
    assert "3200" in note and "1600" in note


def test_missing_frame():
    with pytest.raises(MissingFrameError) as excinfo:
        app.prepare_frames(np.zeros((64, 64), np.uint8), None, np.zeros((64, 64), np.uint8))
    assert_error(excinfo, MissingFrameError, "apex image is missing")


def test_video_with_too_many_frames(tmp_path):
    path = write_mjpg(tmp_path / "long.avi", app.MAX_VIDEO_FRAMES + 5)
    with pytest.raises(VideoTooLongError) as excinfo:
        app.scan_video(path, processor=None)
    assert_error(excinfo, VideoTooLongError, f"more than {app.MAX_VIDEO_FRAMES} frames", "trim")


def test_video_too_large_to_hold(tmp_path, monkeypatch):
    monkeypatch.setattr(app, "MAX_VIDEO_DECODED_BYTES", 100_000)
    path = write_mjpg(tmp_path / "wide.avi", 60, size=(160, 120))  # 60 x 160 x 120 x 3 = 3.5 MB decoded
    with pytest.raises(VideoTooLongError) as excinfo:
        app.scan_video(path, processor=None)
    assert_error(excinfo, VideoTooLongError, "60 frames of 160x120", "scale it down")


def test_video_with_too_few_frames(tmp_path):
    path = write_mjpg(tmp_path / "short.avi", 2)
    with pytest.raises(VideoTooShortError) as excinfo:
        app.scan_video(path, processor=None)
    assert_error(excinfo, VideoTooShortError, "2 decodable frames", "at least 3")
