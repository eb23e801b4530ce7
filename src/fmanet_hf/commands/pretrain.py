"""``fmanet-hf pretrain``: train FMANet on every clip of a (large, synthetic) set, for --init-from.

    fmanet-hf synth --generator 2.0 --people pretrain --samples-per-class 150 --seed 1 --out synthme2-pretrain
    fmanet-hf pretrain --dataset synthme --root synthme2-pretrain --out runs/pretrained --epochs 20 --augment flow
    fmanet-hf loso --dataset synthme --root synthme2-loso --out runs/loso-init --init-from runs/pretrained
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from . import inputs
from .output import report, show_progress
from .common_flags import add_recipe_arguments, add_schedule_arguments, add_training_data_arguments


def run(args: argparse.Namespace) -> int:
    """Prepare the dataset and pretrain (see `fmanet_hf.training.pretraining.pretrain`)."""
    from ..training.pretraining import pretrain

    inputs.check_out_from_args(args)
    model_config = inputs.model_config_from_args(args)  # a misspelt --set fails before any data is read
    accelerator = inputs.training_accelerator(args)
    prepared, processor = inputs.prepare_from_args(args, accelerator)
    info = pretrain(
        prepared,
        out_dir=args.out,
        schedule=inputs.schedule_from_args(args),
        seed=args.seed,
        model_config=model_config or None,
        processor=processor,
        accelerator=accelerator,
        overwrite=args.overwrite,
        progress=show_progress(args),
    )
    if accelerator.is_main_process:
        report(
            args,
            {"out": os.path.abspath(args.out), **info},
            f"pretrained on {info['num_samples']} clips of {len(info['subjects'])} subjects in {info['seconds']:.0f} s; "
            f"saved to {os.path.abspath(args.out)} (use it with --init-from on other people)",
        )
    return 0


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``pretrain`` to the ``fmanet-hf`` subcommands; returns its parser."""
    pretrain = subparsers.add_parser(
        "pretrain", help="train one model on every clip of a large (synthetic) set, to fine-tune from with --init-from",
        description="Train FMANet on all subjects of a prepared dataset (e.g. SynthME 2.0's pretraining people) and "
        "save it with its processor. Nothing is held out: measure the benefit with `loso --init-from` on OTHER people.",
    )
    add_training_data_arguments(pretrain)
    add_schedule_arguments(pretrain, out_help="model folder to write (model.safetensors, config.json, processor)")
    pretrain.add_argument("--optimizer", choices=("adamw", "sgd"), default="adamw")
    pretrain.add_argument("--lr-schedule", choices=("cosine", "constant"), default="cosine")
    add_recipe_arguments(pretrain)
    pretrain.add_argument("--overwrite", action="store_true", help="replace an earlier pretraining in --out")
    pretrain.set_defaults(handler=run)
    return pretrain


__all__ = ["register", "run"]
