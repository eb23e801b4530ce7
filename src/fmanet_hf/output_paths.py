"""Where a command may write, and what ``--overwrite`` may remove.

Every command that writes a folder or file (``--out`` of train / loso / ablate / pretrain /
synth / baseline, ``OUT_DIR`` of export) goes through three rules before it writes:

1. **No empty path.** ``--out ""`` (an unset shell variable: ``--out "$RUN"``) would mean the
   current folder; it is refused.
2. **Outputs and inputs stay apart.** An output may never be, contain, or sit inside one of the
   command's inputs (the dataset root, the run being exported, ``--init-from``...), compared
   after resolving symlinks: writing there could replace or, with ``--overwrite``, remove the
   input and its siblings.
3. **``--overwrite`` removes only what this package wrote.** Every output folder the package
   creates carries a marker file, `OUTPUT_MARKER_NAME`, naming the command that wrote it and,
   for folders written in one go (export, pretrain, synth), the files it wrote. ``--overwrite``
   replaces a folder only if it carries the marker of the same command and holds nothing
   besides the files that marker lists; otherwise it refuses and says why. A JSON file output
   (``baseline --out``) is replaced only if it carries `WRITTEN_BY_KEY` for the same command.

The marker is a hidden file, so ``push`` never uploads it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

from .atomic import atomic_write_json
from .errors import OutputPathError

#: The marker file in every output folder this package creates.
OUTPUT_MARKER_NAME = ".fmanet-hf-output"
#: Format of the marker's JSON.
OUTPUT_MARKER_FORMAT = 1
#: Top-level key of a JSON output file that says which command wrote it.
WRITTEN_BY_KEY = "written_by"


def _written_by(command: str) -> str:
    return f"fmanet-hf {command}"


def checked_output_path(
    path: str | os.PathLike | None,
    *,
    flag: str,
    inputs: Mapping[str, str | os.PathLike | None] | None = None,
) -> Path:
    """Refuse an empty output path and one that is, contains or sits inside an input.

    Args:
        path: the output folder or file as the user gave it.
        flag: how the user named it (``--out``, ``OUT_DIR``), for the message.
        inputs: the command's input paths by flag (``{"--root": ..., "RUN_DIR": ...}``); None
            values (flags not given) are skipped. Inputs need not exist.

    Returns:
        ``path`` as a `Path` (not resolved).

    Raises:
        OutputPathError: the path is empty, or overlaps an input.
    """
    if path is None or str(path).strip() == "":
        raise OutputPathError(
            f"{flag} is empty (an unset shell variable?); it would mean the current folder. Give a folder name."
        )
    out = Path(path).expanduser()
    resolved_out = out.resolve()
    for input_flag, input_path in (inputs or {}).items():
        if input_path is None or str(input_path).strip() == "":
            continue
        resolved_input = Path(input_path).expanduser().resolve()
        if resolved_out == resolved_input:
            relation = "is"
        elif resolved_input.is_relative_to(resolved_out):
            relation = "contains"
        elif resolved_out.is_relative_to(resolved_input):
            relation = "sits inside"
        else:
            continue
        raise OutputPathError(
            f"{flag} {str(path)!r} {relation} the input {input_flag} {str(input_path)!r}: writing there could replace or "
            f"remove it. Choose an output outside every input."
        )
    return out


def check_folder_path(path: str | os.PathLike | None, *, flag: str) -> Path:
    """Refuse a folder path (a cache, an output folder) that is empty, names an existing file, or
    lies under one: the folder could never be created there. The folder need not exist.

    Raises:
        OutputPathError: naming ``flag`` and the file in the way.
    """
    if path is None or str(path).strip() == "":
        raise OutputPathError(f"{flag} is empty (an unset shell variable?); give a folder name.")
    folder = Path(path).expanduser()
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            if not candidate.is_dir():
                where = "is a file" if candidate == folder else f"lies under {str(candidate)!r}, which is a file"
                raise OutputPathError(f"{flag} {str(path)!r} {where}; it must be a folder (or a path where one can be created).")
            break
    return folder


def _inventory(folder: Path) -> list[str]:
    """Every file and symlink under ``folder`` (not following links), as sorted POSIX paths."""
    found = []
    for directory, subdirectories, files in os.walk(folder, followlinks=False):
        here = Path(directory)
        links = [name for name in subdirectories if (here / name).is_symlink()]
        for name in [*files, *links]:
            relative = (here / name).relative_to(folder).as_posix()
            if relative != OUTPUT_MARKER_NAME:
                found.append(relative)
    return sorted(found)


def mark_output_folder(folder: str | os.PathLike, command: str, *, list_files: bool = True) -> Path:
    """Write the marker that says ``command`` of this package wrote ``folder``.

    Call it last, when the folder is complete (typically on the staging folder just before it
    is renamed into place): with ``list_files`` the marker lists every file present, and only
    those may ``--overwrite`` remove later. Folders that grow over several runs (a resumable
    LOSO run) are marked with ``list_files=False`` and can never be overwritten.

    Returns:
        The marker's path.
    """
    from .version import __version__

    folder = Path(folder)
    payload: dict[str, Any] = {
        "format": OUTPUT_MARKER_FORMAT,
        WRITTEN_BY_KEY: _written_by(command),
        "package_version": __version__,
        "files": _inventory(folder) if list_files else None,
    }
    return atomic_write_json(folder / OUTPUT_MARKER_NAME, payload)


def read_output_marker(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The marker of ``folder`` as a dict, or None if it has none (or an unreadable one)."""
    path = Path(folder) / OUTPUT_MARKER_NAME
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return payload if isinstance(payload, dict) else None


def ensure_output_folder(folder: str | os.PathLike, command: str) -> Path:
    """Create ``folder`` if needed and mark it as ``command``'s, if this call created it.

    For folders that grow over runs (loso, ablate, train): a folder that already holds
    something is left unmarked (it was not created here), an existing marker is kept.
    """
    folder = Path(folder)
    created = not folder.exists() or (folder.is_dir() and not any(folder.iterdir()))
    folder.mkdir(parents=True, exist_ok=True)
    if created and read_output_marker(folder) is None:
        mark_output_folder(folder, command, list_files=False)
    return folder


def check_replaceable_folder(folder: str | os.PathLike, *, command: str, flag: str) -> None:
    """Raise unless ``--overwrite`` may remove ``folder``: absent, empty, or written by ``command``.

    Written by ``command`` means: it carries this package's marker for that command, the
    marker lists the files written, and the folder holds nothing else (a file added by
    hand would be lost).

    Raises:
        OutputPathError: ``folder`` is a file, carries no marker or another command's, or
            holds a file the marker does not list.
    """
    folder = Path(folder)
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise OutputPathError(f"{flag} {str(folder)!r} exists and is not a folder; --overwrite replaces only folders fmanet-hf wrote.")
    if not folder.exists() or not any(folder.iterdir()):
        return
    marker = read_output_marker(folder)
    if marker is None:
        raise OutputPathError(
            f"--overwrite refused: {folder} was not written by fmanet-hf (it has no {OUTPUT_MARKER_NAME} marker), so "
            f"replacing it could delete files of yours. Delete it yourself, or choose another {flag}."
        )
    if marker.get(WRITTEN_BY_KEY) != _written_by(command):
        raise OutputPathError(
            f"--overwrite refused: {folder} holds the output of `{marker.get(WRITTEN_BY_KEY)}`, not of "
            f"`{_written_by(command)}`. Choose another {flag}."
        )
    listed = marker.get("files")
    if not isinstance(listed, list):
        raise OutputPathError(
            f"--overwrite refused: {folder} grows over several runs, so what it holds is not known file by file. "
            f"Delete it yourself, or choose another {flag}."
        )
    allowed = set(listed)
    for name in listed:
        allowed.update(parent.as_posix() for parent in Path(name).parents if parent != Path("."))
    for directory, subdirectories, files in os.walk(folder, followlinks=False):
        here = Path(directory)
        for name in [*subdirectories, *files]:
            relative = (here / name).relative_to(folder).as_posix()
            if relative != OUTPUT_MARKER_NAME and relative not in allowed:
                raise OutputPathError(
                    f"--overwrite refused: {folder / relative} was not written by `{_written_by(command)}`, and replacing "
                    f"{folder} would delete it. Move it out, or choose another {flag}."
                )


def check_replaceable_file(path: str | os.PathLike, *, command: str, flag: str) -> None:
    """Raise unless ``path`` is absent or a JSON file ``command`` wrote (its `WRITTEN_BY_KEY`).

    Raises:
        OutputPathError: ``path`` is a folder, or a file this command did not write.
    """
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return
    if path.is_dir():
        raise OutputPathError(f"{flag} {str(path)!r} is a folder; give a file name, e.g. {path / 'results.json'}.")
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        payload = None
    if path.is_symlink() or not isinstance(payload, dict) or payload.get(WRITTEN_BY_KEY) != _written_by(command):
        raise OutputPathError(
            f"{flag} {str(path)!r} exists and was not written by `{_written_by(command)}`; replacing it could lose "
            f"data of yours. Choose another {flag}, or delete the file yourself."
        )


def stamped(payload: Mapping[str, Any], command: str) -> dict[str, Any]:
    """``payload`` with `WRITTEN_BY_KEY` set, so `check_replaceable_file` recognises it later."""
    return {**payload, WRITTEN_BY_KEY: _written_by(command)}


__all__ = [
    "OUTPUT_MARKER_NAME",
    "WRITTEN_BY_KEY",
    "check_folder_path",
    "check_replaceable_file",
    "check_replaceable_folder",
    "checked_output_path",
    "ensure_output_folder",
    "mark_output_folder",
    "read_output_marker",
    "stamped",
]
