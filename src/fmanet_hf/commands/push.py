"""``fmanet-hf push``: upload an exported folder to the Hugging Face Hub.

    fmanet-hf push OUT_DIR --repo-id user/name [--private] [--dry-run]
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from .output import report


def run(args: argparse.Namespace) -> int:
    """``fmanet-hf push``: see `fmanet_hf.hub.push.push_folder`."""
    from ..hub.push import format_plan, push_folder

    result = push_folder(
        args.folder,
        args.repo_id,
        private=args.private,
        dry_run=args.dry_run,
        token=args.token,
        commit_message=args.message,
        revision=args.revision,
    )
    if result.dry_run:
        line = f"Dry run: nothing was uploaded. Without --dry-run these files go to https://huggingface.co/{result.repo_id}."
    else:
        line = f"Uploaded to {result.repo_url or result.repo_id}" + (f" ({result.commit_url})" if result.commit_url else "") + "."
    report(args, dataclasses.asdict(result), line, details=[format_plan(result.items), ""])
    return 0


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``push`` to the ``fmanet-hf`` subcommands; returns its parser."""
    push = subparsers.add_parser(
        "push", help="upload an exported folder to the Hugging Face Hub",
        description="Create the model repo (if needed) and upload the folder in one commit. The token comes from "
        "--token, $HF_TOKEN or `hf auth login`.",
    )
    push.add_argument("folder", help="a folder written by `fmanet-hf export`")
    push.add_argument("--repo-id", required=True, help="user/name or org/name")
    push.add_argument("--private", action="store_true", help="create the repo private")
    push.add_argument("--dry-run", action="store_true", help="list what would be uploaded, with sizes; upload nothing")
    push.add_argument("--token", help="Hub token (default: $HF_TOKEN or the stored login)")
    push.add_argument("--message", help="commit message")
    push.add_argument("--revision", help="branch to commit to (default: main)")
    push.set_defaults(handler=run)
    return push


__all__ = ["register", "run"]
