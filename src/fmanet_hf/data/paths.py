"""Dataset paths: the root, the frames folder, clip folders found from sheet cells, safely.

A clip's frame folder is found under the frames folder from folder-name patterns such
as ``"{subject}/{filename}"`` (:func:`locate_clip_dir`), each component matched exactly
first, then ignoring case. Any path built from sheet cells that would escape the
dataset root is refused (:func:`path_inside`, :class:`PathEscape`).
"""

from __future__ import annotations

import os
import re
from itertools import product
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import DatasetError
from .cells import cell_text, parse_frame_index


def path_inside(base: str | os.PathLike, *parts: str) -> Path | None:
    """Join ``parts`` to ``base``; ``None`` if the result escapes ``base``.

    The check is lexical (``..`` and absolute parts are resolved without following
    symbolic links): sheet cells cannot lead outside the dataset root, while
    symbolic links the user made inside the root are still followed.
    """
    base_norm = os.path.normpath(os.path.abspath(os.fspath(base)))
    joined = os.path.normpath(os.path.join(base_norm, *[str(p) for p in parts]))
    try:
        if os.path.commonpath([joined, base_norm]) != base_norm:
            return None
    except ValueError:  # different drives on Windows
        return None
    return Path(joined)


def dataset_root(root: str | os.PathLike, dataset_name: str) -> Path:
    """Check and return the absolute dataset root.

    Raises:
        DatasetError: the folder does not exist.
    """
    root_path = Path(root).expanduser().absolute()
    if not root_path.is_dir():
        raise DatasetError(
            f"{dataset_name}: dataset root {root_path} is not a folder; pass the folder that "
            "holds the annotation sheet and the frames"
        )
    return root_path


def resolve_frames_dir(
    root: Path,
    frames_dir: str | os.PathLike | None,
    candidates: Sequence[str],
    *,
    dataset_name: str,
    subject_pattern: str | None = None,
) -> Path:
    """Pick the folder that holds the subject folders.

    Args:
        root: the dataset root.
        frames_dir: the user's choice: ``None`` to auto-detect; a relative path is
            taken under ``root`` (and may not escape it); an absolute path is used as is.
        candidates: relative folders tried in order when auto-detecting (``"."`` is the root).
        subject_pattern: regular expression a subject folder name must match for a
            candidate to be accepted (any sub-folder when ``None``).

    Raises:
        DatasetError: the folder given does not exist, escapes the root, or no candidate fits.
    """
    if frames_dir is not None:
        given = Path(frames_dir).expanduser()
        chosen = given if given.is_absolute() else path_inside(root, str(given))
        if chosen is None:
            raise DatasetError(
                f"{dataset_name}: frames_dir={str(frames_dir)!r} escapes the dataset root {root}; "
                "pass a folder inside the root or an absolute path"
            )
        if not chosen.is_dir():
            raise DatasetError(f"{dataset_name}: frames_dir {chosen} is not a folder")
        return chosen
    pattern = re.compile(subject_pattern, re.IGNORECASE) if subject_pattern else None
    for candidate in candidates:
        folder = path_inside(root, candidate)
        if folder is None or not folder.is_dir():
            continue
        try:
            names = [e.name for e in os.scandir(folder) if e.is_dir()]
        except OSError:
            continue
        if any(pattern.match(n) if pattern else True for n in names):
            return folder
    raise DatasetError(
        f"{dataset_name}: cannot find the frames folder under {root}; tried {list(candidates)} "
        f"(a frames folder holds subject folders"
        + (f" named like {subject_pattern!r}" if subject_pattern else "")
        + "). Pass frames_dir=<folder>"
    )


def find_child_dir(parent: Path, name: str) -> Path | None:
    """The sub-folder ``name`` of ``parent``: exact name first, then ignoring case."""
    exact = parent / name
    if exact.is_dir():
        return exact
    if not parent.is_dir():
        return None
    lowered = name.lower()
    try:
        for entry in sorted(os.scandir(parent), key=lambda e: e.name):
            if entry.name.lower() == lowered and entry.is_dir():
                return Path(entry.path)
    except OSError:
        return None
    return None


class PathEscape(Exception):
    """A path built from sheet cells leaves the dataset root (``path``: the refused path)."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def locate_clip_dir(
    frames_dir: Path,
    patterns: Sequence[str],
    fields: Mapping[str, Sequence[str]],
) -> tuple[Path | None, Path, dict[str, str]]:
    """Find a clip's frame folder from folder-name patterns.

    Args:
        frames_dir: the folder the patterns are relative to.
        patterns: e.g. ``["{subject}/{filename}"]``, tried in order.
        fields: placeholder -> candidate values, tried in order (e.g. subject
            ``["sub01", "sub1", "1"]``); each path component is matched exactly
            first, then ignoring case.

    Returns:
        ``(found, expected, chosen)``: the folder found (``None`` if none), the path
        of the first candidate (for error messages), and the field values used.

    Raises:
        PathEscape: a candidate path escapes ``frames_dir`` (a sheet cell holds
            ``..`` or an absolute path).
    """
    expected: Path | None = None
    expected_fields: dict[str, str] = {}
    for pattern in patterns:
        names = _PLACEHOLDER.findall(pattern)
        pools = [list(dict.fromkeys(fields.get(n, ()))) for n in names]
        for combo in product(*pools):
            chosen = dict(zip(names, combo))
            relative = pattern.format(**chosen)
            candidate = path_inside(frames_dir, relative)
            if candidate is None or any(_is_unsafe_cell_path(value) for value in combo):
                raise PathEscape(os.path.join(os.fspath(frames_dir), relative))
            if expected is None:
                expected, expected_fields = candidate, chosen
            found = _walk_case_insensitive(frames_dir, relative)
            if found is not None:
                return found, candidate, chosen
    if expected is None:  # no patterns or an empty field pool
        expected = frames_dir
    return None, expected, expected_fields


def _is_unsafe_cell_path(value: str) -> bool:
    """True for a cell that names an absolute path or climbs with ``..``.

    Joined into a pattern, ``"/etc"`` would still land inside the root (``sub01//etc``),
    but a cell like that was never meant as a clip name: refuse it rather than guess.
    """
    text = str(value)
    parts = re.split(r"[\\/]+", text)
    return text.startswith(("/", "\\")) or bool(re.match(r"^[A-Za-z]:", text)) or ".." in parts


def _walk_case_insensitive(base: Path, relative: str) -> Path | None:
    """Follow ``relative`` from ``base`` component by component, ignoring case where needed."""
    current = base
    for part in Path(relative).parts:
        nxt = find_child_dir(current, part)
        if nxt is None:
            return None
        current = nxt
    return current


def subject_folder_candidates(raw: Any, templates: Sequence[str]) -> list[str]:
    """Subject folder names to try for a sheet's subject cell.

    Args:
        raw: the cell (``1``, ``1.0``, ``"1"``, ``"sub01"``...).
        templates: format strings applied to the number when the cell is a number,
            e.g. ``["sub{n:02d}", "sub{n}", "{n}"]``.

    Returns:
        the cell text itself first when it is not a bare number, then the templates.
    """
    text = cell_text(raw)
    number = parse_frame_index(raw)
    names: list[str] = []
    if text and (number is None or not text.lstrip("+-").isdigit()):
        names.append(text)
    if number is not None and number >= 0:
        names.extend(t.format(n=number) for t in templates)
    return list(dict.fromkeys(names))


__all__ = [
    "PathEscape",
    "dataset_root",
    "find_child_dir",
    "locate_clip_dir",
    "path_inside",
    "resolve_frames_dir",
    "subject_folder_candidates",
]
