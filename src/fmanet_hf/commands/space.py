"""``fmanet-hf space``: write the Gradio Space folder, with the wheel it installs, ready to upload.

    fmanet-hf space OUT_DIR [--wheel fmanet_hf-<version>-py3-none-any.whl] [--model EXPORT_DIR ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
from typing import Any

from .output import report


def run(args: argparse.Namespace) -> int:
    """``fmanet-hf space``: see `fmanet_hf.hub.space.build_space`."""
    from ..hub.space import build_space

    info = build_space(args.out_dir, wheel=args.wheel, model_dirs=args.model or (), overwrite=args.overwrite)
    upload = f"hf upload USER/SPACE {shlex.quote(str(info.out_dir))} . --repo-type space --exclude .fmanet-hf-output"
    report(
        args,
        {**dataclasses.asdict(info), "out_dir": str(info.out_dir)},
        [f"Wrote the Space folder {info.out_dir} ({len(info.files)} files: {info.wheel}"
         + (f", models {', '.join(info.models)}" if info.models else "") + ").",
         f"Upload it (create the Space first, docs/demo.md): {upload}"],
        details=[*(f"  {name}" for name in info.files), ""],
    )
    return 0


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``space`` to the ``fmanet-hf`` subcommands; returns its parser."""
    space = subparsers.add_parser(
        "space", help="write the Gradio Space folder (app, requirements, the package wheel) ready to upload",
        description="Copy the Space files (README.md with its front matter, app.py, requirements.txt) into OUT_DIR and "
        "put beside them the fmanet-hf wheel their requirements install: built from this source tree with "
        "`pip wheel --no-deps` (on a copy of the tree; offline when setuptools >= 70.1 is installed), or the one given by --wheel. "
        "Exported models given with --model appear in the Space's model selector.",
    )
    space.add_argument("out_dir", help="the folder to create")
    space.add_argument("--wheel", help="an fmanet-hf wheel of this version (default: build it from the source tree)")
    space.add_argument("--model", action="append", metavar="EXPORT_DIR", help="an `fmanet-hf export` folder to include (repeatable)")
    space.add_argument("--overwrite", action="store_true", help="replace an OUT_DIR this command wrote")
    space.set_defaults(handler=run)
    return space


__all__ = ["register", "run"]
