"""``fmanet-hf train``: fine-tune one model with `transformers.Trainer` and save it with its processor.

    fmanet-hf train --dataset synthme --root synthme --out runs/synthme-model --epochs 12 [--eval-subjects sub01]
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from ..errors import FMANetConfigError
from . import inputs
from .output import report, show_progress
from .common_flags import add_init_argument, add_schedule_arguments, add_training_data_arguments
from .trainer_arguments import add_trainer_arguments_help, check_trainer_arguments, parse_trainer_arguments


def run(args: argparse.Namespace) -> int:
    """Prepare the dataset, split off ``--eval-subjects`` and train (see `train_with_trainer`)."""
    from ..training.schedule import resolve_epochs
    from ..training.trainer import train_with_trainer

    inputs.check_out_from_args(args)
    model_config = inputs.model_config_from_args(args)  # a misspelt --set fails before any data is read
    trainer_options = parse_trainer_arguments(getattr(args, "trainer_arguments", None) or [])
    use_cpu = inputs.training_device(args).type == "cpu"
    # before the Accelerator: building TrainingArguments resets Accelerate's shared state
    check_trainer_arguments(trainer_options, use_cpu=use_cpu)
    accelerator = inputs.training_accelerator(args)
    prepared, processor = inputs.prepare_from_args(args, accelerator)
    eval_subjects = {s.strip() for s in (args.eval_subjects or "").split(",") if s.strip()}
    subjects = set(prepared.select_columns(["subject"]).with_format(None)["subject"])
    unknown = sorted(eval_subjects - subjects)
    if unknown:
        raise FMANetConfigError(f"--eval-subjects {unknown} are not subjects of the dataset; it has {sorted(subjects)}.")
    if eval_subjects and eval_subjects == subjects:
        raise FMANetConfigError(
            f"--eval-subjects holds every subject of the dataset ({len(subjects)}), so none is left to train on; "
            "hold out fewer (or use `fmanet-hf loso` to score every subject in turn)."
        )
    if eval_subjects:
        is_eval = [s in eval_subjects for s in prepared.select_columns(["subject"]).with_format(None)["subject"]]
        train_rows = [i for i, flag in enumerate(is_eval) if not flag]
        eval_rows = [i for i, flag in enumerate(is_eval) if flag]
        train_set, eval_set = prepared.select(train_rows), prepared.select(eval_rows)
    else:
        train_set, eval_set = prepared, None

    trained = train_with_trainer(
        train_set,
        eval_set,
        model_config=model_config or None,
        output_dir=args.out,
        epochs=resolve_epochs(args.epochs, len(train_set), args.batch_size),
        batch_size=args.batch_size,
        learning_rate=args.lr,
        weight_decay=args.weight_decay,
        seed=args.seed,
        class_weighting=args.class_weighting,
        report_to=args.report_to,
        processor=processor,
        use_cpu=use_cpu,
        progress=show_progress(args),
        init_from=args.init_from,
        training_args=trainer_options,
    )
    if accelerator.is_main_process:
        lines = [f"model and processor saved to {os.path.abspath(args.out)}"]
        if trained.eval_metrics:
            scores = ", ".join(f"{k[5:]} {trained.eval_metrics[k]:.4f}" for k in ("eval_accuracy", "eval_uf1", "eval_uar"))
            lines.append(f"held-out subjects {sorted(eval_subjects)} (one split, not LOSO): {scores}")
        report(
            args,
            {"out": os.path.abspath(args.out), "eval_subjects": sorted(eval_subjects), "eval_metrics": trained.eval_metrics or {}},
            lines,
        )
    return 0


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``train`` to the ``fmanet-hf`` subcommands; returns its parser."""
    train = subparsers.add_parser(
        "train", help="fine-tune one model with transformers.Trainer and save it with its processor",
        description="Train FMANet on a prepared dataset with transformers.Trainer. --eval-subjects holds "
        "subjects out and scores them after every epoch (one split; use `loso` for the protocol).",
        epilog="Also takes transformers TrainingArguments options (HfArgumentParser), numeric ones within the "
        "ranges of fmanet_hf.commands.ranges, e.g. --gradient_accumulation_steps 2 --warmup_steps 0.1 "
        "--max_grad_norm 1 --label_smoothing_factor 0.1 --lr_scheduler_type linear --optim adafactor --bf16; "
        "--help-trainer lists them.",
        allow_abbrev=False,
    )
    add_training_data_arguments(train)
    add_schedule_arguments(train, out_help="output folder: model.safetensors, config.json, preprocessor_config.json")
    add_init_argument(train)
    train.add_argument("--eval-subjects", help="comma-separated subjects held out for evaluation")
    train.add_argument("--report-to", default="none", help='"none" or "tensorboard" (needs the tensorboard package)')
    add_trainer_arguments_help(train)
    train.set_defaults(handler=run, trainer_arguments=[])
    return train


__all__ = ["register", "run"]
