"""SynthME's output layout (CASME II style) and the small writers both generator versions share.

::

    <out>/CASME2_RAW_selected/sub01/EP01_01/img1.jpg ... imgN.jpg
    <out>/CASME2-coding-synthme.xlsx   (and a .csv twin)
    <out>/synthme_manifest.json        (version, seed, arguments, per-sample parameters)
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from pathlib import Path

import cv2
import numpy as np

from ...errors import DatasetError

DATASET_NAME = "synthme"
FRAME_RATE_FPS = 200
FRAMES_FOLDER = "CASME2_RAW_selected"
SHEET_STEM = "CASME2-coding-synthme"
MANIFEST_NAME = "synthme_manifest.json"
SHEET_COLUMNS = (
    "Subject",
    "Filename",
    "OnsetFrame",
    "ApexFrame",
    "OffsetFrame",
    "Action Units",
    "Estimated Emotion",
)
JPEG_QUALITY = 95


def file_sha256(path: str) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def package_version(distribution: str | None) -> str | None:
    """Installed version of a distribution, or None when it is not installed."""
    if not distribution:
        return None
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def write_jpeg(path: Path, image: np.ndarray) -> None:
    """Write an (H, W, 3) uint8 RGB or (H, W) uint8 grey frame as a JPEG of :data:`JPEG_QUALITY`."""
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:  # pragma: no cover - OpenCV only fails on impossible inputs
        raise DatasetError(f"OpenCV could not encode {path} as JPEG.")
    path.write_bytes(encoded.tobytes())


__all__ = [
    "DATASET_NAME",
    "FRAMES_FOLDER",
    "FRAME_RATE_FPS",
    "JPEG_QUALITY",
    "MANIFEST_NAME",
    "SHEET_COLUMNS",
    "SHEET_STEM",
    "file_sha256",
    "package_version",
    "write_jpeg",
]
