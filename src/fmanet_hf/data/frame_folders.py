"""Frame folders: the frame files of one clip folder, indexed by frame number.

The frame index is the trailing integer of the file stem, so ``img46.jpg``,
``reg_img46.jpg``, ``006_05562.jpg``, ``image000001.bmp`` and ``0.jpg`` are frames 46,
46, 5562, 1 and 0. Extensions: jpg, jpeg, png, bmp (any case).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Mapping

#: File extensions accepted as frames (compared case-insensitively), in order of
#: preference when two files of one folder carry the same frame number.
FRAME_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp")

_TRAILING_NUMBER = re.compile(r"(\d+)$")


def frame_number(file_name: str) -> int | None:
    """The frame index of a frame file name, or ``None`` if it is not a frame.

    The index is the trailing integer of the stem: ``img46.jpg`` -> 46,
    ``reg_img46.jpg`` -> 46, ``006_05562.jpg`` -> 5562, ``image000001.bmp`` -> 1,
    ``0.jpg`` -> 0. Hidden files (``._img1.jpg`` from macOS) and other extensions
    give ``None``.
    """
    if file_name.startswith("."):
        return None
    stem, ext = os.path.splitext(file_name)
    if ext.lower() not in FRAME_EXTENSIONS:
        return None
    match = _TRAILING_NUMBER.search(stem)
    return int(match.group(1)) if match else None


class FrameFolder:
    """The frame files of one clip folder, indexed by frame number.

    Attributes:
        path: the folder.
        frames: frame index -> file path, sorted by index.
    """

    def __init__(self, path: Path, frames: Mapping[int, Path]) -> None:
        self.path = path
        self.frames: dict[int, Path] = dict(sorted(frames.items()))
        self._indices = list(self.frames)

    @classmethod
    def scan(cls, path: str | os.PathLike) -> "FrameFolder":
        """Index the frame files of ``path`` (not recursive).

        When two files carry the same number (``img46.jpg`` and ``img46.png``), the
        one with the preferred extension (:data:`FRAME_EXTENSIONS` order) wins.

        Raises:
            FileNotFoundError: the folder does not exist (loaders turn this into a
                :class:`DatasetError` that names the sheet row).
        """
        folder = Path(path)
        chosen: dict[int, tuple[int, str, Path]] = {}
        for entry in os.scandir(folder):
            index = frame_number(entry.name)
            if index is None or not entry.is_file():
                continue
            rank = FRAME_EXTENSIONS.index(os.path.splitext(entry.name)[1].lower())
            key = (rank, entry.name, Path(entry.path))
            if index not in chosen or key[:2] < chosen[index][:2]:
                chosen[index] = key
        return cls(folder, {index: item[2] for index, item in chosen.items()})

    def __len__(self) -> int:
        return len(self._indices)

    @property
    def indices(self) -> list[int]:
        """All frame indices, ascending."""
        return list(self._indices)

    @property
    def first_index(self) -> int:
        """The smallest frame index (the folder must not be empty)."""
        return self._indices[0]

    @property
    def last_index(self) -> int:
        """The largest frame index (the folder must not be empty)."""
        return self._indices[-1]

    def path_for(self, index: int) -> Path | None:
        """The file of frame ``index``, ``None`` if there is none."""
        return self.frames.get(index)

    def indices_between(self, start: int, stop: int) -> list[int]:
        """Existing frame indices ``i`` with ``start <= i <= stop``, ascending."""
        return [i for i in self._indices if start <= i <= stop]

    def nearest_between(self, target: int, start: int, stop: int) -> int | None:
        """The existing index in ``start..stop`` nearest to ``target`` (ties: the lower)."""
        inside = self.indices_between(start, stop)
        if not inside:
            return None
        return min(inside, key=lambda i: (abs(i - target), i))

    def describe_range(self) -> str:
        """Human text about the indices present, for error messages."""
        if not self._indices:
            return "the folder holds no frame files (jpg/jpeg/png/bmp named with a number)"
        example = self.frames[self._indices[0]].name
        return (
            f"frames there are numbered {self._indices[0]}..{self._indices[-1]} "
            f"({len(self._indices)} files, e.g. {example})"
        )


class FrameFolderCache:
    """Scans each clip folder once per loader call (CAS(ME)^3 rows share long-video folders)."""

    def __init__(self) -> None:
        self._folders: dict[Path, FrameFolder] = {}

    def get(self, path: Path) -> FrameFolder:
        """The :class:`FrameFolder` of ``path`` (``FileNotFoundError`` if it is missing)."""
        if path not in self._folders:
            self._folders[path] = FrameFolder.scan(path)
        return self._folders[path]


__all__ = ["FRAME_EXTENSIONS", "FrameFolder", "FrameFolderCache", "frame_number"]
