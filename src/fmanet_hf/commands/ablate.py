"""``fmanet-hf ablate``: every ablation (and the baselines) under the same LOSO schedule, over seeds, one table.

    fmanet-hf ablate --dataset synthme --root synthme --out runs/synthme-ablation --epochs 20 --seeds 0,1,2 \
        --ablations full,single_phase,mmcof_cnn,mmcof_logreg
"""

from __future__ import annotations

import argparse
from typing import Any

from . import inputs
from .output import report, show_progress
from .common_flags import (
    seed_list_argument,
    add_init_argument,
    add_loso_arguments,
    add_recipe_arguments,
    add_schedule_arguments,
    add_training_data_arguments,
)


def run(args: argparse.Namespace) -> int:
    """Prepare the dataset and run the ablations (see `fmanet_hf.training.ablation.run_ablation`)."""
    from ..training.ablation import run_ablation

    inputs.check_out_from_args(args)
    model_config = inputs.model_config_from_args(args)  # a misspelt --set fails before any data is read
    accelerator = inputs.training_accelerator(args)
    prepared, _ = inputs.prepare_from_args(args, accelerator)
    names = [n.strip() for n in args.ablations.split(",") if n.strip()] if args.ablations else None
    summary = run_ablation(
        prepared,
        out_dir=args.out,
        schedule=inputs.schedule_from_args(args),
        seed=args.seed,
        seeds=args.seeds,
        base_config=model_config or None,
        ablations=names,
        progress=show_progress(args),
        accelerator=accelerator,
        record_leaky_best_epoch=args.record_leaky_best_epoch,
        fold_parallel=args.fold_parallel,
        fold_workers=args.fold_workers,
        folds_at_once=args.folds_at_once,
        init_from=args.init_from,
    )
    if accelerator.is_main_process:
        # with progress on, run_ablation has printed the table already
        report(args, summary, summary["markdown"] if args.quiet else ())
    return 0


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``ablate`` to the ``fmanet-hf`` subcommands; returns its parser."""
    ablate = subparsers.add_parser(
        "ablate", help="run every ablation under LOSO and write one comparison table",
        description="Run full, single_phase, fixed_fusion, no_modulation and no_attention (and, if named, the "
        "baselines mmcof_cnn and mmcof_logreg) under the same LOSO schedule, once per seed; writes ablation.md and "
        "ablation.json (mean ± std over seeds, seed-paired deltas vs full).",
    )
    add_training_data_arguments(ablate)
    add_schedule_arguments(ablate, out_help="folder: one LOSO run per ablation under it, plus the tables")
    add_loso_arguments(ablate)
    add_recipe_arguments(ablate)
    add_init_argument(ablate)
    ablate.add_argument(
        "--ablations",
        help="comma-separated variants (default: the FMANet ablations; full always runs); also the baselines "
        "mmcof_cnn (fixed MM-COF into the same network) and mmcof_logreg (logistic regression, inner-split settings)",
    )
    ablate.add_argument(
        "--seeds", type=seed_list_argument,
        help="comma-separated seeds, e.g. 0,1,2: every trained variant runs once per seed; the table gives mean "
        "and standard deviation (default: --seed alone)",
    )
    ablate.set_defaults(handler=run)
    return ablate


__all__ = ["register", "run"]
