"""``fmanet-hf synth``: generate the SynthME synthetic benchmark (CASME II layout).

    fmanet-hf synth --out synthme --subjects 12 --samples-per-class 4                  # SynthME 1.1
    fmanet-hf synth --generator 2.0 --people loso --samples-per-class 8 --out synthme2  # one subject = one person
"""

from __future__ import annotations

import argparse
from typing import Any

from . import ranges
from .output import report, show_progress


def people_argument(text: str) -> str | list[str]:
    """``--people``: a group name (loso, pretrain, examples) or comma-separated person ids."""
    from ..data.synthetic import PERSON_GROUPS

    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected a group name ({', '.join(PERSON_GROUPS)}) or comma-separated person ids")
    return names[0] if len(names) == 1 and names[0] in PERSON_GROUPS else names


def run(args: argparse.Namespace) -> int:
    """Render the clips and print what was written."""
    from ..data.synthetic import generate_synthme

    info = generate_synthme(
        args.out,
        generator_version=args.generator,
        people=args.people,
        subjects=args.subjects,
        masked_fraction=args.masked_fraction,
        samples_per_class=args.samples_per_class,
        frames_per_clip=args.frames_per_clip,
        seed=args.seed,
        overwrite=args.overwrite,
        progress=show_progress(args),
    )
    who = f"people: {', '.join(info.people)}" if info.people else f"faces: {', '.join(info.face_sources)}"
    report(
        args,
        {"generator_version": info.generator_version, "root": str(info.root), "clips": info.num_clips,
         "frames_per_clip": info.frames_per_clip, "subjects": info.num_subjects, "class_counts": info.class_counts,
         "people": list(info.people or []), "face_sources": list(info.face_sources or [])},
        [
            f"SynthME {info.generator_version}: {info.num_clips} clips of {info.frames_per_clip} frames, "
            f"{info.num_subjects} subjects -> {info.root}",
            f"classes: {info.class_counts}; {who}",
        ],
    )
    return 0


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``synth`` to the ``fmanet-hf`` subcommands; returns its parser."""
    synth = subparsers.add_parser(
        "synth", help="generate the SynthME synthetic benchmark",
        description="SynthME 1.1 (default): subjects are variants of two photographs. SynthME 2.0 (--generator 2.0): "
        "one subject = one person, from the licensed face photographs of installed packages (docs/synthme.md), "
        "in fixed groups: loso (10 people), pretrain (3), examples (2).",
    )
    synth.add_argument("--out", default="synthme", help="output folder (CASME II layout)")
    synth.add_argument("--generator", choices=("1.1", "2.0"), default="1.1", help="generator version (default 1.1)")
    synth.add_argument(
        "--people", type=people_argument,
        help="2.0 only (required there): a group (loso, pretrain, examples) or comma-separated person ids",
    )
    synth.add_argument("--subjects", type=ranges.COUNT, help="1.1 only: number of subjects (default 12)")
    synth.add_argument(
        "--masked-fraction", type=ranges.FRACTION,
        help="2.0 only: share of negative clips masked by a smile whose apex->offset phase shows the suppression "
        "(default 0.3)",
    )
    synth.add_argument("--samples-per-class", type=ranges.COUNT, default=4, help="clips per class and subject")
    synth.add_argument("--frames-per-clip", type=ranges.FRAMES_PER_CLIP, default=11)
    synth.add_argument("--seed", type=ranges.SEED, default=0)
    synth.add_argument("--overwrite", action="store_true")
    synth.set_defaults(handler=run)
    return synth


__all__ = ["register", "run"]
