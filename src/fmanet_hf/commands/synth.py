"""``fmanet-hf synth``: generate the SynthME synthetic benchmark (CASME II layout).

    fmanet-hf synth --out synthme --subjects 12 --samples-per-class 4
"""

from __future__ import annotations

import argparse
from typing import Any


def run(args: argparse.Namespace) -> int:
    """Render the clips and print what was written."""
    from ..data.synthetic import generate_synthme

    info = generate_synthme(
        args.out,
        subjects=args.subjects,
        samples_per_class=args.samples_per_class,
        frames_per_clip=args.frames_per_clip,
        seed=args.seed,
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    print(f"SynthME: {info.num_clips} clips of {info.frames_per_clip} frames, {info.num_subjects} subjects -> {info.root}")
    print(f"classes: {info.class_counts}; faces: {', '.join(info.face_sources)}")
    return 0


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``synth`` to the ``fmanet-hf`` subcommands; returns its parser."""
    synth = subparsers.add_parser("synth", help="generate the SynthME synthetic benchmark")
    synth.add_argument("--out", default="synthme", help="output folder (CASME II layout)")
    synth.add_argument("--subjects", type=int, default=12)
    synth.add_argument("--samples-per-class", type=int, default=4, help="clips per class and subject")
    synth.add_argument("--frames-per-clip", type=int, default=11)
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--overwrite", action="store_true")
    synth.add_argument("--quiet", action="store_true", help="no progress bar")
    synth.set_defaults(handler=run)
    return synth


__all__ = ["register", "run"]
