"""``fmanet-hf export``: turn a LOSO run into a Hub-ready model folder with a model card.

    fmanet-hf export RUN_DIR OUT_DIR [--dataset casme2] [--include-folds] [--repo-id user/name]
"""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from .output import report


def run(args: argparse.Namespace) -> int:
    """``fmanet-hf export``: see `fmanet_hf.hub.export.export_run`."""
    from ..hub.cards import CARD_DATASETS
    from ..hub.export import export_run
    from ..hub.push import format_plan, plan_upload

    command = ["fmanet-hf export RUN_DIR OUT_DIR"]
    if args.dataset:
        command.append(f"--dataset {args.dataset}")
    if args.include_folds:
        command.append("--include-folds")
    if args.repo_id:
        command.append(f"--repo-id {shlex.quote(args.repo_id)}")
    if args.model_name:
        command.append(f"--model-name {shlex.quote(args.model_name)}")
    if args.data_root:
        command.append("--data-root DATA_DIR")
    if args.evidence:
        command.append(f"--evidence {shlex.quote(args.evidence)}")
    info = export_run(
        args.run_dir,
        args.out_dir,
        dataset=args.dataset,
        include_folds=args.include_folds,
        model_name=args.model_name,
        repo_id=args.repo_id,
        template_dir=args.template_dir,
        data_root=args.data_root,
        overwrite=args.overwrite,
        export_command=" ".join(command),
        evidence=args.evidence,
    )
    metrics = ", ".join(f"{k} {v:.4f}" for k, v in info.metrics.items())
    report(
        args,
        {"run_dir": str(args.run_dir), "out_dir": str(info.out_dir), "dataset": info.dataset, "files": info.files,
         "folds": info.folds, "metrics": info.metrics},
        f"Exported {args.run_dir} -> {info.out_dir} (card: {CARD_DATASETS[info.dataset]}; pooled LOSO {metrics}"
        + (f"; {len(info.folds)} fold models" if info.folds else "")
        + ").",
        details=[format_plan(plan_upload(info.out_dir)), ""],
    )
    return 0


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``export`` to the ``fmanet-hf`` subcommands; returns its parser."""
    from ..hub.cards import CARD_DATASETS, TEMPLATE_DIR_ENV

    export = subparsers.add_parser(
        "export", help="turn a LOSO run into a Hub-ready model folder with a model card",
        description="Build a Hub-ready folder from `fmanet-hf loso ... --train-final-model`: the final model "
        "(safetensors), config with id2label, processor, remote code, the LOSO results and a README model card "
        "whose model-index is read from results.json.",
    )
    export.add_argument("run_dir", help="the LOSO results folder (with final_model/)")
    export.add_argument("out_dir", help="the folder to create")
    export.add_argument("--dataset", choices=list(CARD_DATASETS), help="card template (default: detected from the run)")
    export.add_argument(
        "--evidence", metavar="FILE",
        help="a committed comparison (benchmarks/results/synthme2-evidence.json) shown in the card beside the run's "
        "own numbers: the baselines and ablations on the same data, over seeds",
    )
    export.add_argument("--include-folds", action="store_true", help="also export folds/<subject>/ (run made with --save-fold-models)")
    export.add_argument("--repo-id", help="the intended Hub repo, used in the card's examples")
    export.add_argument("--model-name", help="name in the card's model-index (default: the repo name)")
    export.add_argument("--data-root", help="the dataset folder (SynthME: its manifest gives the exact synth command)")
    export.add_argument("--template-dir", help=f"card templates (default: the source tree's hub_cards/ or ${TEMPLATE_DIR_ENV})")
    export.add_argument("--overwrite", action="store_true", help="replace an existing OUT_DIR")
    export.set_defaults(handler=run)
    return export


__all__ = ["register", "run"]
