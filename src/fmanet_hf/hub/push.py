"""``fmanet-hf push OUT_DIR --repo-id USER/NAME``: upload an exported folder to the Hub.

Creates the model repo (``exist_ok``) and uploads the folder in one commit with
``huggingface_hub.HfApi``. The token comes from where huggingface_hub looks for it
(``--token``, ``$HF_TOKEN``, or the file ``hf auth login`` writes). ``--dry-run`` only lists
what would be uploaded, with sizes.

Before anything is sent, the folder is checked: it must be an export (config.json,
model.safetensors, preprocessor_config.json, README.md), must hold no pickle-based file, and
no symbolic link that points outside it (its target would be uploaded).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CheckpointError, FMANetError, HubUploadError
from ..pretrained import PICKLE_SUFFIXES

REQUIRED_FILES = ("config.json", "model.safetensors", "preprocessor_config.json", "README.md")
#: Never uploaded: editor/OS debris and interrupted atomic writes (``.name.*.tmp``).
IGNORED_PREFIXES = (".",)
IGNORED_NAMES = ("__pycache__",)


@dataclass(frozen=True)
class UploadItem:
    """One file to upload: its path in the repo and its size in bytes."""

    path_in_repo: str
    size: int


def plan_upload(folder: str | os.PathLike) -> list[UploadItem]:
    """The files `push_folder` would upload (sorted), after checking the folder.

    Raises:
        CheckpointError: not a folder, a required file missing, a pickle file present, or a
            symbolic link pointing outside the folder.
    """
    root = Path(folder)
    if not root.is_dir():
        raise CheckpointError(f"{root} is not a folder; pass the folder `fmanet-hf export` wrote.")
    missing = [name for name in REQUIRED_FILES if not (root / name).is_file()]
    if missing:
        raise CheckpointError(
            f"{root} lacks {', '.join(missing)}: it is not an exported model folder. Make one with "
            "`fmanet-hf export RUN_DIR OUT_DIR`."
        )
    items = []
    inside = root.resolve()
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if any(part.startswith(IGNORED_PREFIXES) or part in IGNORED_NAMES for part in relative.parts):
            continue
        if path.is_symlink() and not path.resolve().is_relative_to(inside):
            # huggingface_hub would upload the link's target: a file from outside the folder.
            raise CheckpointError(
                f"{relative} is a symbolic link to {os.readlink(path)}, outside {root}; push uploads only files inside "
                "the folder. Replace the link with a copy of what should be published, or remove it."
            )
        if not path.is_file():
            continue
        if path.name.endswith(PICKLE_SUFFIXES):
            raise CheckpointError(
                f"{relative} is a pickle-based file; fmanet-hf never publishes pickles (they can run code when loaded). "
                "Remove it: the weights are in model.safetensors."
            )
        items.append(UploadItem(relative.as_posix(), path.stat().st_size))
    return items


def format_size(size: int) -> str:
    """Human-readable size: ``1.9 MB``, ``734 B``."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000.0
    return f"{size} B"  # pragma: no cover


def format_plan(items: list[UploadItem]) -> str:
    """A table of the files and their sizes, with the total."""
    width = max(len(item.path_in_repo) for item in items)
    lines = [f"{item.path_in_repo.ljust(width)}  {format_size(item.size):>9}" for item in items]
    lines.append(f"{'total'.ljust(width)}  {format_size(sum(i.size for i in items)):>9}  ({len(items)} files)")
    return "\n".join(lines)


@dataclass
class PushResult:
    """What `push_folder` did (or, in a dry run, would do)."""

    repo_id: str
    items: list[UploadItem]
    dry_run: bool
    repo_url: str | None = None
    commit_url: str | None = None


def push_folder(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    private: bool = False,
    dry_run: bool = False,
    token: str | None = None,
    commit_message: str | None = None,
    revision: str | None = None,
    api: Any = None,
) -> PushResult:
    """Create ``repo_id`` (a model repo) if needed and upload ``folder`` in one commit.

    Args:
        folder: an exported folder (`plan_upload` checks it).
        repo_id: ``user/name`` or ``org/name``.
        private: create the repo private (an existing repo's visibility is not changed).
        dry_run: only plan; nothing is contacted.
        token: Hub token (default: huggingface_hub's usual lookup).
        commit_message: default ``"Upload FMANet model exported by fmanet-hf"``.
        revision: branch to commit to (default: main).
        api: an ``HfApi``-like object (tests); default ``HfApi(token=token)``.

    Raises:
        CheckpointError: the folder is not an export or holds pickles.
        HubUploadError: the Hub call failed (offline mode, bad token, no permission...).
    """
    if not isinstance(repo_id, str) or repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise CheckpointError(f"--repo-id must look like 'user/name', got {repo_id!r}.")
    items = plan_upload(folder)
    result = PushResult(repo_id=repo_id, items=items, dry_run=dry_run)
    if dry_run:
        return result
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
    message = commit_message or "Upload FMANet model exported by fmanet-hf"
    try:
        repo_url = api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        commit = api.upload_folder(
            repo_id=repo_id,
            folder_path=str(folder),
            repo_type="model",
            commit_message=message,
            revision=revision,
            allow_patterns=[item.path_in_repo for item in items],
        )
    except FMANetError:
        raise
    except Exception as error:  # huggingface_hub's HTTP/offline/auth errors have no common base we can rely on
        name = type(error).__name__
        hint = ""
        if "Offline" in name or os.environ.get("HF_HUB_OFFLINE") in ("1", "true", "True"):
            hint = " HF_HUB_OFFLINE is set: unset it to upload."
        elif "401" in str(error) or "Unauthorized" in str(error) or "token" in str(error).lower():
            hint = " Log in with `hf auth login` or pass --token / set HF_TOKEN (a token with write access)."
        raise HubUploadError(f"Uploading {folder} to {repo_id} failed ({name}: {error}).{hint}") from None
    result.repo_url = str(repo_url) if repo_url is not None else None
    result.commit_url = getattr(commit, "commit_url", None) or (str(commit) if commit is not None else None)
    return result


__all__ = ["HubUploadError", "PushResult", "UploadItem", "format_plan", "format_size", "plan_upload", "push_folder"]
