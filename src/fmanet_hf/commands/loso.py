"""``fmanet-hf loso``: leave-one-subject-out training and evaluation (resumable).

    fmanet-hf loso --dataset synthme --root synthme --out runs/synthme-loso [--train-final-model]

Runs under ``accelerate launch`` / ``torchrun`` too (docs/training.md); only the main
process writes.
"""

from __future__ import annotations

import argparse
from typing import Any

from . import inputs
from .output import report, show_progress
from .common_flags import (
    add_init_argument,
    add_loso_arguments,
    add_recipe_arguments,
    add_schedule_arguments,
    add_training_data_arguments,
)


def run(args: argparse.Namespace) -> int:
    """Prepare the dataset and train/score every fold (see `fmanet_hf.training.loso.run_loso`)."""
    from ..training.loso import run_loso
    from ..training.loso_results import format_summary_table

    inputs.check_out_from_args(args)
    model_config = inputs.model_config_from_args(args)  # a misspelt --set fails before any data is read
    accelerator = inputs.training_accelerator(args)
    prepared, processor = inputs.prepare_from_args(args, accelerator)
    results = run_loso(
        prepared,
        model_config=model_config,
        out_dir=args.out,
        schedule=inputs.schedule_from_args(args),
        seed=args.seed,
        record_leaky_best_epoch=args.record_leaky_best_epoch,
        save_fold_models=args.save_fold_models,
        train_final_model=args.train_final_model,
        processor=processor,
        fold_parallel=args.fold_parallel,
        progress=show_progress(args),
        print_summary=False,
        accelerator=accelerator,
        fold_workers=args.fold_workers,
        folds_at_once=args.folds_at_once,
        init_from=args.init_from,
    )
    if accelerator.is_main_process:
        report(
            args,
            {"out": str(args.out), **results},
            f"LOSO over {results['num_folds']} subjects, {results['num_samples']} samples: pooled "
            f"accuracy {results['accuracy']:.4f}, UF1 {results['uf1']:.4f}, UAR {results['uar']:.4f} "
            f"({results['wall_time_seconds']:.1f} s; results in {args.out})",
            details=[format_summary_table(results), ""],
        )
    return 0


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``loso`` to the ``fmanet-hf`` subcommands; returns its parser."""
    loso = subparsers.add_parser(
        "loso", help="leave-one-subject-out training and evaluation (resumable)",
        description="Train one FMANet per left-out subject with a fixed schedule and score the final epoch, "
        "pooled over folds (UF1/UAR). Rerun the same command to resume an interrupted run.",
    )
    add_training_data_arguments(loso)
    add_schedule_arguments(loso, out_help="results folder (rerun with the same settings to resume)")
    add_loso_arguments(loso)
    add_recipe_arguments(loso)
    add_init_argument(loso)
    loso.add_argument("--ablation", help="train an ablation variant (full, single_phase, fixed_fusion, no_modulation, no_attention)")
    loso.add_argument("--save-fold-models", action="store_true", help="save each fold's final model under folds/<subject>/")
    loso.add_argument("--train-final-model", action="store_true", help="also train on ALL subjects and save final_model/")
    loso.set_defaults(handler=run)
    return loso


__all__ = ["register", "run"]
