"""Atomic file and folder writes: a crash leaves the old version or nothing, never half a file.

Every file the package writes for a later run to read (caches, fold records, results,
checkpoints, exports, figures) goes through here: the content is written to a hidden
temporary sibling, flushed to disk, then renamed over the target in one step
(``os.replace``), so a reader sees either the complete old file or the complete new one.

Temporaries are named ``.<target name>.<host>-<pid>.<random>.tmp`` (``.partial`` for
folders): hidden, never matching what readers look for, and tagged with the writer's
host and process so that `remove_stale_temporaries` can clear those a killed process
left behind without touching a live writer's.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import stat
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

logger = logging.getLogger(__name__)

#: Temporaries older than this are removed whoever wrote them (another host's crash).
STALE_AFTER_SECONDS = 24 * 3600

_TEMPORARY_NAME = re.compile(
    r"^\.(?P<target>.+)\.(?P<host>[0-9a-f]{6})-(?P<pid>\d+)\.(?:[A-Za-z0-9_]+\.(?:tmp|partial)|retired)$"
)


def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode("utf-8")).hexdigest()[:6]


def _writer_tag() -> str:
    """``<host>-<pid>`` of this process (computed per call: a forked worker has its own pid)."""
    return f"{_host_tag()}-{os.getpid()}"


def _umask() -> int:
    # Reading the umask means setting it; done once, at import, before any writer thread runs.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _umask()
#: What ``open()`` / ``mkdir()`` give under this process's umask (e.g. 0644 / 0755 under 022).
FILE_MODE = 0o666 & ~_UMASK
DIRECTORY_MODE = 0o777 & ~_UMASK
_FILE_MODE = FILE_MODE


def make_staging_directory(target: str | os.PathLike, *, suffix: str = ".partial") -> Path:
    """A new, empty, hidden sibling folder of ``target`` to build it in, with the permissions
    ``mkdir`` would give (not mkdtemp's private 0700: renamed into place, it becomes the
    output, and a 0700 model folder contradicts what the docs promise readers).

    Named ``.<target name>.<host>-<pid>.<random><suffix>`` (see `remove_stale_temporaries`).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.{_writer_tag()}.", suffix=suffix, dir=target.parent))
    os.chmod(staging, DIRECTORY_MODE)
    return staging


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder and ``os.replace``.

    The file gets the permissions a plain ``open(path, "wb")`` would give it (0666 minus
    the umask), not mkstemp's private 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.{_writer_tag()}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, _FILE_MODE)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """UTF-8 text version of `atomic_write_bytes`."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, payload: Any) -> Path:
    """Pretty, key-sorted JSON written atomically."""
    return atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


def give_ordinary_permissions(folder: str | os.PathLike) -> None:
    """Set ``folder`` and everything in it to what ``mkdir`` / ``open()`` give under the
    umask (0755 / 0644 under 022), keeping files executable that were (symlinks untouched).

    For a folder this package has just written, before it is renamed into place.
    """
    folder = Path(folder)
    for path in [folder, *folder.rglob("*")]:
        if path.is_symlink():
            continue
        if path.is_dir():
            os.chmod(path, DIRECTORY_MODE)
        else:
            executable = path.stat().st_mode & stat.S_IXUSR
            os.chmod(path, (0o777 if executable else 0o666) & ~_UMASK)


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike, *, overwrite: bool = True) -> Iterator[Path]:
    """Build a folder under a temporary sibling name, then rename it into place.

    Yields the temporary folder to fill. On success it replaces ``path`` (an existing
    folder is removed first when ``overwrite``); on any exception it is deleted and
    ``path`` is left untouched.
    """
    path = Path(path)
    temporary = make_staging_directory(path)
    try:
        yield temporary
        # What was written inside may come from writers with private temporaries
        # (transformers saves model.safetensors 0600): the folder is published as a whole.
        give_ordinary_permissions(temporary)
        if path.exists():
            if not overwrite:
                raise FileExistsError(f"{path} already exists.")
            retired = path.with_name(f".{path.name}.{_writer_tag()}.retired")
            shutil.rmtree(retired, ignore_errors=True)
            os.replace(path, retired)
            os.replace(temporary, path)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(temporary, path)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temporaries(folder: str | os.PathLike, *, stale_after: float = STALE_AFTER_SECONDS) -> list[Path]:
    """Delete the temporaries that crashed or killed writers left in ``folder`` (not recursive).

    A temporary is stale when this host wrote it and its process no longer runs, or when it
    is older than ``stale_after`` seconds (a writer on another host sharing the folder).
    Live writers' temporaries are left alone, so concurrent runs (fold-parallel LOSO) are safe.

    Returns:
        The paths removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    host, now, removed = _host_tag(), time.time(), []
    for entry in folder.iterdir():
        match = _TEMPORARY_NAME.match(entry.name)
        if match is None:
            continue
        try:
            age = now - entry.lstat().st_mtime
        except FileNotFoundError:
            continue
        dead_here = match["host"] == host and not _process_alive(int(match["pid"]))
        if not (dead_here or age > stale_after):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
        removed.append(entry)
    if removed:
        logger.info("Removed %d temporaries left by interrupted writes in %s.", len(removed), folder)
    return removed


__all__ = [
    "DIRECTORY_MODE",
    "FILE_MODE",
    "STALE_AFTER_SECONDS",
    "atomic_directory",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "give_ordinary_permissions",
    "make_staging_directory",
    "remove_stale_temporaries",
]
