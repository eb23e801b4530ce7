"""Bad-input matrix: videos (short, corrupt frames, variable frame rate) and key-frame indices."""

from __future__ import annotations

import struct

import cv2
import numpy as np
import pytest

from tests.helpers.assertions import assert_error
from fmanet_hf.errors import KeyFrameError, VideoReadError
from fmanet_hf.video import check_key_frames, probe_video, read_frame_range, read_frames, read_key_frames

NUM_FRAMES = 12


def grey_level(index: int) -> int:
    """Frame ``index`` of the test videos is uniformly this grey (plus a dot grid)."""
    return 15 + 20 * index


def write_video(path, codec: str, fps: float = 25.0, count: int = NUM_FRAMES):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, (64, 48))
    assert writer.isOpened(), codec
    for index in range(count):
        frame = np.full((48, 64, 3), grey_level(index), np.uint8)
        frame[::4, ::4] = 255
        writer.write(frame)
    writer.release()
    return path


def which_frame(rgb: np.ndarray) -> int:
    """Index of the written frame whose grey level is nearest to this decoded frame's (dot grid excluded)."""
    mask = np.ones(rgb.shape[:2], bool)
    mask[::4, ::4] = False
    level = float(rgb[mask].mean())
    return int(np.argmin([abs(level - grey_level(i)) for i in range(NUM_FRAMES)]))


def avi_frame_chunks(data: bytes) -> list[tuple[int, int]]:
    """(offset of the payload, payload size) of every video chunk in an AVI's 'movi' list."""
    movi = data.index(b"movi") + 4
    chunks, position = [], movi
    while position + 8 <= len(data):
        kind, size = data[position : position + 4], struct.unpack("<I", data[position + 4 : position + 8])[0]
        if kind == b"idx1":
            break
        if kind.endswith(b"dc") or kind.endswith(b"db"):
            chunks.append((position + 8, size))
        position += 8 + size + (size & 1)
    return chunks


def mp4_with_variable_frame_rate(source, target) -> None:
    """Rewrite an MP4's time-to-sample table so frame durations alternate 20 ms / 60 ms.

    The total duration is unchanged, so only the timing pattern differs from the
    constant-rate original: a variable-frame-rate file like phone cameras write.
    """
    containers = {b"moov", b"trak", b"mdia", b"minf", b"stbl"}

    def rewrite(buffer: bytes) -> bytes:
        out, position = b"", 0
        while position < len(buffer):
            size, kind = struct.unpack(">I4s", buffer[position : position + 8])
            body = buffer[position + 8 : position + size]
            if kind in containers:
                body = rewrite(body)
            elif kind == b"stts":
                flags, count = struct.unpack(">II", body[:8])
                assert count == 1
                samples, delta = struct.unpack(">II", body[8:16])
                entries = [(1, delta // 2 if i % 2 == 0 else 3 * delta // 2) for i in range(samples)]
                body = struct.pack(">II", flags, len(entries)) + b"".join(struct.pack(">II", *e) for e in entries)
            out += struct.pack(">I4s", 8 + len(body), kind) + body
            position += size
        return out

    target.write_bytes(rewrite(source.read_bytes()))


@pytest.fixture
def mjpg_video(tmp_path):
    return write_video(tmp_path / "clip.avi", "MJPG")


# ----------------------------------------------------------------- length and indices
def test_video_shorter_than_its_indices(mjpg_video):
    with pytest.raises(KeyFrameError) as excinfo:
        read_key_frames(mjpg_video, 2, 20, apex=5)
    assert_error(excinfo, KeyFrameError, "offset index 20", "has 12 frames", "0-based")


def test_requested_frame_past_the_end(mjpg_video):
    with pytest.raises(KeyFrameError) as excinfo:
        read_frames(mjpg_video, [3, 30])
    assert_error(excinfo, KeyFrameError, "Frame 30", "out of range")


@pytest.mark.parametrize(
    "onset, apex, offset, words",
    [
        (6, 4, 9, ["onset < apex < offset", "onset 6, apex 4"]),
        (1, 9, 5, ["onset < apex < offset", "apex 9, offset 5"]),
        (3, 3, 8, ["onset < apex < offset"]),
        (4, None, 5, ["no frame in between"]),
        (-1, 2, 5, ["0-based", ">= 0"]),
        (1, 2.5, 5, ["integer frame number", "2.5"]),
        (1, "3", 5, ["integer frame number"]),
    ],
    ids=["onset-after-apex", "apex-after-offset", "apex-equals-onset", "no-room-for-apex", "negative", "fraction", "text"],
)
def test_key_frame_order_and_type(mjpg_video, onset, apex, offset, words):
    with pytest.raises(KeyFrameError) as excinfo:
        read_key_frames(mjpg_video, onset, offset, apex=apex)
    assert_error(excinfo, KeyFrameError, *words)


def test_overlong_clip_for_an_apex_estimate(mjpg_video):
    with pytest.raises(KeyFrameError) as excinfo:
        read_frame_range(mjpg_video, 0, 11, max_clip_frames=5)
    assert_error(excinfo, KeyFrameError, "12 frames", "max_clip_frames=5", "give the apex")


def test_index_beyond_the_read_cap(mjpg_video):
    with pytest.raises(KeyFrameError) as excinfo:
        read_frames(mjpg_video, [0, 9], max_frames=8)
    assert_error(excinfo, KeyFrameError, "read limit of 8 frames", "Trim the video")


# ----------------------------------------------------------------- broken files
def test_corrupt_frame_in_the_middle(tmp_path, mjpg_video):
    data = bytearray(mjpg_video.read_bytes())
    chunks = avi_frame_chunks(bytes(data))
    assert len(chunks) == NUM_FRAMES
    start, size = chunks[5]
    data[start + 20 : start + size - 2] = bytes(size - 22)  # frame 5's JPEG data wiped
    broken = tmp_path / "broken.avi"
    broken.write_bytes(bytes(data))
    # Frames before the damage still read back exactly as written ...
    frames = read_frames(broken, [1, 3, 4])
    assert {index: which_frame(frame) for index, frame in frames.items()} == {1: 1, 3: 3, 4: 4}
    # ... and asking past it is a clear error, never a silently shifted frame.
    with pytest.raises(VideoReadError) as excinfo:
        read_frames(broken, [2, 5, 8])
    assert_error(excinfo, VideoReadError, "stopped at frame 5", "12 frames", "truncated or corrupt")


def test_truncated_video(tmp_path, mjpg_video):
    data = mjpg_video.read_bytes()
    truncated = tmp_path / "truncated.avi"
    truncated.write_bytes(data[: avi_frame_chunks(data)[7][0]])
    with pytest.raises(VideoReadError) as excinfo:
        read_key_frames(truncated, 1, 10, apex=5)
    assert_error(excinfo, VideoReadError, "truncated or corrupt")


@pytest.mark.parametrize("content, words", [(b"", ["empty", "0 bytes"]), (b"RIFF" + bytes(500), ["could not open", "re-encode"])],
                         ids=["zero-byte", "garbage"])
def test_unopenable_video(tmp_path, content, words):
    path = tmp_path / "clip.mp4"
    path.write_bytes(content)
    with pytest.raises(VideoReadError) as excinfo:
        probe_video(path)
    assert_error(excinfo, VideoReadError, *words)


# ----------------------------------------------------------------- variable frame rate
def test_variable_frame_rate_indices_count_decoded_frames(tmp_path):
    constant = write_video(tmp_path / "constant.mp4", "mp4v")
    variable = tmp_path / "variable.mp4"
    mp4_with_variable_frame_rate(constant, variable)
    capture = cv2.VideoCapture(str(variable))
    stamps = []
    while capture.grab():
        stamps.append(capture.get(cv2.CAP_PROP_POS_MSEC))
    capture.release()
    gaps = np.diff(stamps)
    assert len(stamps) == NUM_FRAMES and gaps.min() < 0.5 * gaps.max()  # really variable
    # Documented: an index is the n-th decoded frame, whatever its timestamp.
    key_frames = read_key_frames(variable, 2, 9, apex=5)
    assert [which_frame(f) for f in key_frames.frames] == [2, 5, 9]
    assert check_key_frames(2, 5, 9, probe_video(variable).frame_count) == (2, 5, 9)
