"""fmanet_hf.video: reading key frames from video files, index checks, and the apex estimate."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fmanet_hf import KeyFrameError, VideoReadError
from fmanet_hf.video import (
    check_key_frames,
    estimate_apex,
    looks_like_video,
    probe_video,
    read_frame_range,
    read_frames,
    read_key_frames,
)


def write_video(path, frames_rgb, fps=25.0, codec="FFV1"):
    """Write (H, W, 3) uint8 RGB frames; FFV1 is lossless, so decoding gives them back exactly."""
    height, width = frames_rgb[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, (width, height))
    assert writer.isOpened()
    for frame in frames_rgb:
        writer.write(np.ascontiguousarray(frame[:, :, ::-1]))
    writer.release()
    return path


@pytest.fixture
def numbered_video(tmp_path):
    """12 random RGB frames (48 x 64) in a lossless video; frame i is also returned."""
    rng = np.random.default_rng(7)
    frames = [(rng.random((48, 64, 3)) * 255).astype(np.uint8) for _ in range(12)]
    return write_video(tmp_path / "clip.avi", frames), frames


def test_probe_and_exact_frames(numbered_video):
    path, frames = numbered_video
    info = probe_video(path)
    assert (info.frame_count, info.width, info.height) == (12, 64, 48)
    assert info.fps == pytest.approx(25.0)
    read = read_frames(path, [9, 2, 2, 5])
    assert sorted(read) == [2, 5, 9]
    for index, frame in read.items():
        np.testing.assert_array_equal(frame, frames[index])  # RGB order, lossless codec
    clip = read_frame_range(path, 3, 6)
    assert len(clip) == 4 and all(np.array_equal(a, frames[i]) for a, i in zip(clip, range(3, 7)))


def test_key_frames_with_and_without_apex(numbered_video):
    path, frames = numbered_video
    given = read_key_frames(path, onset=1, apex=4, offset=8)
    assert (given.onset, given.apex, given.offset, given.apex_estimated) == (1, 4, 8, False)
    assert all(np.array_equal(a, frames[i]) for a, i in zip(given.frames, (1, 4, 8)))
    middle = read_key_frames(path, onset=2, offset=9, apex_method="middle")
    assert middle.apex == 5 and middle.apex_estimated
    estimated = read_key_frames(path, onset=0, offset=11)
    assert estimated.apex_estimated and 0 < estimated.apex < 11 and estimated.apex_scores.shape == (12,)
    np.testing.assert_array_equal(estimated.apex_frame, frames[estimated.apex])
    assert estimated.indices() == {"onset": 0, "apex": estimated.apex, "offset": 11, "apex_estimated": True}


@pytest.mark.parametrize(
    "onset, apex, offset, message",
    [
        (5, 3, 8, "onset < apex < offset"),
        (2, 8, 8, "onset < apex < offset"),
        (-1, 3, 8, "0-based and must be >= 0"),
        (1.5, 3, 8, "must be an integer"),
        (True, 3, 8, "must be an integer"),
        (4, None, 5, "no frame in between"),
        (0, 3, 12, "out of range: the video has 12 frames"),
    ],
)
def test_bad_key_frames(numbered_video, onset, apex, offset, message):
    path, _ = numbered_video
    with pytest.raises(KeyFrameError, match=message):
        read_key_frames(path, onset=onset, apex=apex, offset=offset)


def test_read_limits(numbered_video):
    path, _ = numbered_video
    with pytest.raises(KeyFrameError, match="beyond the read limit of 5 frames"):
        read_frames(path, [1, 6], max_frames=5)
    with pytest.raises(KeyFrameError, match="more than max_clip_frames=4"):
        read_frame_range(path, 0, 10, max_clip_frames=4)
    with pytest.raises(KeyFrameError, match="out of range"):
        read_frames(path, [12])
    assert check_key_frames(np.int64(1), None, 9.0, 12) == (1, None, 9)


def test_unreadable_videos(tmp_path, numbered_video):
    with pytest.raises(VideoReadError, match="does not exist"):
        probe_video(tmp_path / "missing.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(VideoReadError, match="empty"):
        probe_video(tmp_path / "empty.mp4")
    (tmp_path / "garbage.mp4").write_bytes(b"this is not a video" * 50)
    with pytest.raises(VideoReadError, match="could not open"):
        read_frames(tmp_path / "garbage.mp4", [0])
    with pytest.raises(VideoReadError, match="is a folder"):
        probe_video(tmp_path)
    # A file cut in half still reports 12 frames but decodes fewer: a clear error, not a wrong frame.
    path, _ = numbered_video
    data = path.read_bytes()
    truncated = tmp_path / "truncated.avi"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoReadError, match="truncated or corrupt"):
        read_frames(truncated, [11])


def test_looks_like_video():
    assert looks_like_video("a/b/Clip.MP4") and looks_like_video("x.avi")
    assert not looks_like_video("frame.png") and not looks_like_video(np.zeros((4, 4)))


def _expression_clip(base: np.ndarray, apex: int, count: int, drift_px: float, brightness_drift: float):
    """Frames of ``base`` (grey uint8) where a 1.5 px Gaussian bump (a 'brow raise') rises to
    ``apex`` and decays, on top of a steady rightward head drift and a brightness ramp."""
    height, width = base.shape
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    bump = np.exp(-(((xs - 0.5 * width) ** 2) + ((ys - 0.35 * height) ** 2)) / (2 * (0.08 * width) ** 2))
    frames = []
    for t in range(count):
        profile = t / apex if t <= apex else max(0.0, 1.0 - (t - apex) / (count - 1 - apex))
        shift = drift_px * t
        map_x = xs - shift
        map_y = ys + 1.5 * profile * bump  # content moves up by the bump
        frame = cv2.remap(base.astype(np.float32), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        frames.append(np.clip(frame + brightness_drift * t, 0, 255).astype(np.uint8))
    return frames


def test_apex_estimate_finds_the_peak_despite_drift(astronaut_gray):
    face = cv2.resize(astronaut_gray[30:290, 120:380], (160, 160), interpolation=cv2.INTER_AREA)
    frames = _expression_clip(face, apex=5, count=13, drift_px=0.35, brightness_drift=0.8)
    estimate = estimate_apex(frames)
    assert estimate.index == 5
    assert estimate.scores[0] == 0 and estimate.scores[-1] == 0 and estimate.scores.argmax() == 5
    # Without registration, the raw distance to the onset would be won by the drifting last frames.
    onset_only = [np.abs(f.astype(float) - frames[0].astype(float)).mean() for f in frames[1:-1]]
    assert int(np.argmax(onset_only)) + 1 > 8
    assert estimate_apex(frames, method="middle").index == 6
    with pytest.raises(KeyFrameError, match="at least 3 frames"):
        estimate_apex(frames[:2])
    with pytest.raises(KeyFrameError, match="apex_method"):
        estimate_apex(frames, method="peak")


def test_apex_estimate_on_aligned_face_crop(astronaut_gray):
    """With a processor that aligns faces, the score is taken on its face crop (dlib on the onset)."""
    from fmanet_hf import FMANetImageProcessor

    face = astronaut_gray[:320, 80:400]
    frames = _expression_clip(face, apex=4, count=9, drift_px=0.3, brightness_drift=0.5)
    estimate = estimate_apex(frames, processor=FMANetImageProcessor())
    assert estimate.index == 4


def test_apex_scoring_starts_each_frames_ecc_fit_from_the_previous_frames(astronaut_gray, monkeypatch):
    """Head drift accumulates over a clip: by the last frame it can be several pixels, beyond
    what format 2's ECC budget (5 iterations) covers from the onset's transform. Each frame's
    fit must start from the previous frame's result (tests/test_visualization.py's astronaut
    video misplaced its apex by 3 frames without this)."""
    import fmanet_hf.face as face_module
    from fmanet_hf import FMANetImageProcessor
    from fmanet_hf.video import _scoring_crops

    starts, results = [], []
    real_fit = face_module.stabilize_to_reference

    def recording_fit(reference_crop, moving_frame, source_to_crop, *args, **kwargs):
        starts.append(np.array(source_to_crop, copy=True))
        results.append(real_fit(reference_crop, moving_frame, source_to_crop, *args, **kwargs))
        return results[-1]

    monkeypatch.setattr(face_module, "stabilize_to_reference", recording_fit)
    face = astronaut_gray[:320, 80:400]
    ys, xs = np.mgrid[0 : face.shape[0], 0 : face.shape[1]].astype(np.float32)
    frames = [
        cv2.remap(face.astype(np.float32), xs - 0.6 * t, ys, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT).astype(np.uint8)
        for t in range(9)
    ]
    _scoring_crops(frames, FMANetImageProcessor())
    assert len(starts) == 8
    for previous_result, start in zip(results[:-1], starts[1:]):
        np.testing.assert_array_equal(start, previous_result)
    # The fits really moved: 8 frames of 0.6 px drift put the last transform's x shift more
    # than a crop pixel away from where the first fit started.
    assert abs(results[-1][0, 2] - starts[0][0, 2]) > 1.0
