"""WebM (VP8) videos written with OpenCV, without OpenCV's codec-tag warning.

Why not ``cv2.VideoWriter("x.webm", fourcc("VP80"), ...)``: OpenCV hands FFmpeg the FourCC as
the stream's codec tag, FFmpeg's WebM muxer has no tag table at all, and OpenCV prints
``OpenCV: FFMPEG: tag 0x30385056/'VP80' is not supported with codec id 139 and format
'webm / WebM'`` straight to the process's stderr (``fprintf``, so ``cv2.setLogLevel`` cannot
hide it) before falling back to a tag-less stream. No FourCC avoids it: every WebM write
through OpenCV prints it once.

WebM is Matroska restricted to VP8/VP9/AV1 video and Vorbis/Opus audio, told apart only by
the ``DocType`` string of the EBML header. FFmpeg's Matroska muxer does know the ``VP80`` tag,
so `write_webm` writes a Matroska file with one VP8 stream (silently) and rewrites its
``DocType`` from ``matroska`` to ``webm``. The segment after the header is left byte for byte:
its internal positions (seek head, cues) are relative to the segment's own start.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ..atomic import atomic_write_bytes
from ..errors import WebMWriteError

#: EBML element ids (RFC 8794 and the Matroska specification).
EBML_HEADER_ID = b"\x1a\x45\xdf\xa3"
DOCTYPE_ID = b"\x42\x82"


def _read_vint(data: bytes, position: int) -> tuple[int, int]:
    """An EBML variable-length size at ``position``: (value, its length in bytes)."""
    if position >= len(data) or data[position] == 0:
        raise WebMWriteError("the Matroska header holds an invalid size field")
    first = data[position]
    length = 8 - first.bit_length() + 1
    if position + length > len(data):
        raise WebMWriteError("the Matroska header ends inside a size field")
    value = first & ((1 << (8 - length)) - 1)
    for byte in data[position + 1 : position + length]:
        value = (value << 8) | byte
    return value, length


def _encode_vint(value: int, length: int) -> bytes:
    """``value`` as an EBML size of exactly ``length`` bytes (the all-ones value means "unknown")."""
    if not 0 <= value < (1 << (7 * length)) - 1:
        raise WebMWriteError(f"size {value} does not fit an EBML size of {length} bytes")
    return ((1 << (7 * length)) | value).to_bytes(length, "big")


def _element_id_length(first_byte: int) -> int:
    """Length (1-4 bytes) of an EBML element id from its first byte."""
    if first_byte == 0 or first_byte.bit_length() < 5:
        raise WebMWriteError("the Matroska header holds an invalid element id")
    return 8 - first_byte.bit_length() + 1


def doctype_of(data: bytes) -> str:
    """The ``DocType`` of an EBML file's header (``"webm"``, ``"matroska"``), read from its bytes."""
    return _header_elements(data)[2].get(DOCTYPE_ID, b"").decode("ascii", "replace")


def _header_elements(data: bytes) -> tuple[int, int, dict[bytes, bytes], list[tuple[bytes, bytes]]]:
    """(size field length, header end, {id: payload}, [(id, payload)] in order) of the EBML header."""
    if not data.startswith(EBML_HEADER_ID):
        raise WebMWriteError("the file does not start with an EBML header (not a Matroska/WebM file)")
    size, size_length = _read_vint(data, len(EBML_HEADER_ID))
    start = len(EBML_HEADER_ID) + size_length
    end = start + size
    if end > len(data):
        raise WebMWriteError("the EBML header is longer than the file")
    elements: list[tuple[bytes, bytes]] = []
    position = start
    while position < end:
        id_length = _element_id_length(data[position])
        element_id = data[position : position + id_length]
        payload_size, payload_size_length = _read_vint(data, position + id_length)
        payload_start = position + id_length + payload_size_length
        if payload_start + payload_size > end:
            raise WebMWriteError("an EBML header element runs past the header")
        elements.append((element_id, data[payload_start : payload_start + payload_size]))
        position = payload_start + payload_size
    return size_length, end, dict(elements), elements


def matroska_as_webm(data: bytes) -> bytes:
    """The Matroska file ``data`` with its header's ``DocType`` set to ``webm``, all else unchanged.

    Only valid for files whose streams WebM allows (VP8/VP9/AV1, Vorbis/Opus), which is the
    caller's to ensure. Raises `WebMWriteError` on anything but a well-formed EBML header.
    """
    size_length, end, by_id, elements = _header_elements(data)
    if DOCTYPE_ID not in by_id:
        raise WebMWriteError("the EBML header has no DocType")
    body = b""
    for element_id, payload in elements:
        if element_id == DOCTYPE_ID:
            payload = b"webm"
        body += element_id + _encode_vint(len(payload), 1 if len(payload) < 127 else 8) + payload
    return EBML_HEADER_ID + _encode_vint(len(body), size_length) + body + data[end:]


def write_webm(frames_bgr: Sequence[np.ndarray], path: str | os.PathLike, fps: float = 10.0) -> Path:
    """Write ``frames_bgr`` as a VP8 WebM video at ``path``, atomically, printing nothing.

    Args:
        frames_bgr: at least one frame, each (H, W, 3) uint8 in OpenCV's BGR order, all the
            same size (H and W in pixels).
        path: the ``.webm`` file to create or replace; a crash leaves the old file or none.
        fps: frames per second stored in the file.

    Returns:
        ``path`` as a `Path`.

    Raises:
        WebMWriteError: no frames, frames of different sizes, or an OpenCV build without a
            VP8 encoder.
    """
    import cv2

    target = Path(path)
    if not frames_bgr:
        raise WebMWriteError("write_webm needs at least one frame.")
    height, width = frames_bgr[0].shape[:2]
    if any(frame.shape != frames_bgr[0].shape or frame.dtype != np.uint8 for frame in frames_bgr):
        raise WebMWriteError("write_webm needs uint8 frames of one size; resize them to the first frame's size.")
    # A hidden sibling with the .mkv extension: FFmpeg picks its muxer from the extension.
    matroska = target.with_name(f".{target.name}.{os.getpid()}.partial.mkv")
    try:
        writer = cv2.VideoWriter(str(matroska), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*"VP80"), float(fps), (width, height))
        if not writer.isOpened():
            raise WebMWriteError(
                "this OpenCV build cannot encode VP8 video (its FFmpeg lacks libvpx); install opencv-contrib-python-headless "
                "from PyPI, whose wheels include it."
            )
        try:
            for frame in frames_bgr:
                writer.write(frame)
        finally:
            writer.release()
        atomic_write_bytes(target, matroska_as_webm(matroska.read_bytes()))
    finally:
        matroska.unlink(missing_ok=True)
    return target
