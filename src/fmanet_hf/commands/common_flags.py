"""The ``train``, ``loso`` and ``ablate`` subcommands of ``fmanet-hf``.

`register_training_commands` adds them to the command's subparsers. Each loads a dataset by
name (`fmanet_hf.cli.load_dataset_by_name`), prepares it once into the shared cache
(``<cache-dir>/prepared``, as ``fmanet-hf prepare`` does) and trains:

    fmanet-hf loso   --dataset synthme --root synthme --out runs/synthme-loso
    fmanet-hf ablate --dataset synthme --root synthme --out runs/synthme-ablation --epochs 15
    fmanet-hf train  --dataset synthme --root synthme --out runs/synthme-model --epochs 12

They run under ``accelerate launch`` / ``torchrun`` too (docs/training.md): the main process
prepares the data first, the others then read the cache; only the main process writes.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from ..errors import FMANetConfigError

#: Defaults of the schedule options (docs/training.md says where they come from). "auto":
#: about 120 optimiser steps per model (`fmanet_hf.training.loso.auto_epochs`): 15 epochs
#: on a 12-subject SynthME LOSO, 5 on a MEGC-size one.
DEFAULT_EPOCHS = "auto"
DEFAULT_BATCH_SIZE = 16
DEFAULT_LEARNING_RATE = 2e-3
DEFAULT_WEIGHT_DECAY = 1e-4


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def _epochs(text: str) -> int | str:
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1 or 'auto', got {text!r}") from None


def _parse_assignment(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw  # a bare word such as gelu
    return key.strip(), value


def model_config_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The model-config dict of ``--config`` (a JSON file, or a folder holding config.json),
    ``--ablation`` and ``--set KEY=VALUE`` (applied in that order)."""
    from ..configuration_fmanet import ABLATIONS

    values: dict[str, Any] = {}
    if getattr(args, "config", None):
        path = Path(args.config)
        if path.is_dir():
            path = path / "config.json"
        try:
            values = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise FMANetConfigError(f"--config {args.config}: cannot read a JSON config ({error}).") from None
        if not isinstance(values, dict):
            raise FMANetConfigError(f"--config {args.config} must hold a JSON object of FMANetConfig arguments.")
    ablation = getattr(args, "ablation", None)
    if ablation:
        if ablation not in ABLATIONS:
            raise FMANetConfigError(f"--ablation {ablation!r} is unknown; choose from {list(ABLATIONS)}.")
        values.update(ABLATIONS[ablation])
    for key, value in getattr(args, "set", None) or []:
        values[key] = value
    return values


def _add_data_arguments(parser: argparse.ArgumentParser) -> None:
    from ..cli import DEFAULT_CACHE, flow_params_argument
    from ..data.registry import DATASET_NAMES

    group = parser.add_argument_group("data")
    group.add_argument("--dataset", choices=DATASET_NAMES, default="synthme")
    group.add_argument("--root", default="synthme", help="the dataset folder")
    group.add_argument("--class-set", help="class set of the loader (e.g. 5class, megc3)")
    group.add_argument("--processor", help="folder with a preprocessor_config.json to prepare the inputs with")
    group.add_argument("--flow-method", choices=("tvl1", "dis", "farneback"), help="optical flow (default: tvl1)")
    group.add_argument(
        "--flow-params", type=flow_params_argument,
        help="'opencv' (OpenCV's own TV-L1 defaults, as in published pipelines) or a JSON object of flow-solver settings",
    )
    group.add_argument("--size", type=int, help="side of pixel_values in pixels (default: the processor's, 64)")
    group.add_argument("--num-proc", type=int, default=None, help="preparation worker processes (default: all cores)")
    group.add_argument("--cache-dir", default=str(DEFAULT_CACHE), help="prepared inputs go to <cache-dir>/prepared")


def _add_schedule_arguments(parser: argparse.ArgumentParser, *, out_help: str) -> None:
    group = parser.add_argument_group("training")
    group.add_argument("--out", required=True, help=out_help)
    group.add_argument(
        "--epochs", type=_epochs, default=DEFAULT_EPOCHS,
        help="training epochs, or 'auto' (default): about 120 optimiser steps per model, from the data's size",
    )
    group.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="global batch size")
    group.add_argument("--lr", type=float, default=DEFAULT_LEARNING_RATE, help="peak learning rate")
    group.add_argument("--weight-decay", type=float, default=DEFAULT_WEIGHT_DECAY)
    group.add_argument("--seed", type=int, default=0)
    group.add_argument("--class-weighting", choices=("none", "balanced"), default="none")
    group.add_argument("--config", help="FMANetConfig arguments: a JSON file, or a folder with config.json")
    group.add_argument(
        "--set", action="append", type=_parse_assignment, metavar="KEY=VALUE",
        help="override one FMANetConfig argument (JSON value), e.g. --set hidden_sizes=[32,64]; repeatable",
    )
    group.add_argument("--cpu", action="store_true", help="train on CPU even when a GPU is available")
    group.add_argument("--quiet", action="store_true", help="no progress bars or tables")


def _add_loso_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("LOSO")
    group.add_argument("--optimizer", choices=("adamw", "sgd"), default="adamw")
    group.add_argument("--lr-schedule", choices=("cosine", "constant"), default="cosine")
    group.add_argument(
        "--record-leaky-best-epoch", action="store_true",
        help="also record the per-fold best epoch chosen ON THE TEST SUBJECT (leaky; labelled; for comparison only)",
    )
    group.add_argument(
        "--fold-parallel", action="store_true",
        help="with several processes, give each process whole folds instead of splitting batches",
    )
    group.add_argument(
        "--fold-workers", type=_positive_int, default=1,
        help="single process: train this many folds at once in worker processes (CPU: cores split between "
        "them, e.g. the number of cores; GPU: they share it). Default 1",
    )


def _accelerator(args: argparse.Namespace):
    from accelerate import Accelerator

    return Accelerator(cpu=bool(args.cpu))


def prepare_from_args(args: argparse.Namespace, accelerator: Any):
    """(prepared dataset, processor) for ``--dataset/--root/...``; main process first."""
    from ..cli import processor_overrides
    from ..data.registry import load_dataset_by_name
    from ..data.prepare import prepare_dataset
    from ..image_processing_fmanet import FMANetImageProcessor

    dataset = load_dataset_by_name(args.dataset, args.root, args.class_set)
    if args.processor:
        processor = FMANetImageProcessor.from_pretrained(args.processor)
    else:
        overrides: dict[str, Any] = processor_overrides(args)
        if args.size:
            overrides["size"] = {"height": args.size, "width": args.size}
        processor = FMANetImageProcessor(**overrides)
    if args.processor and args.size:
        processor.size = {"height": args.size, "width": args.size}
        processor.validate_settings()
    # The main process computes (or finds) the cache; the others then only read it.
    with accelerator.main_process_first():
        prepared = prepare_dataset(
            dataset,
            processor,
            Path(args.cache_dir) / "prepared",
            num_proc=args.num_proc,
            progress=not args.quiet and accelerator.is_main_process,
        )
    return prepared, processor


def cmd_loso(args: argparse.Namespace) -> int:
    """``fmanet-hf loso``: leave-one-subject-out training and evaluation (see `run_loso`)."""
    from ..training.loso import run_loso

    accelerator = _accelerator(args)
    prepared, processor = prepare_from_args(args, accelerator)
    run_loso(
        prepared,
        model_config=model_config_from_args(args),
        out_dir=args.out,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        weight_decay=args.weight_decay,
        seed=args.seed,
        optimizer=args.optimizer,
        lr_schedule=args.lr_schedule,
        class_weighting=args.class_weighting,
        record_leaky_best_epoch=args.record_leaky_best_epoch,
        save_fold_models=args.save_fold_models,
        train_final_model=args.train_final_model,
        processor=processor,
        fold_parallel=args.fold_parallel,
        progress=not args.quiet,
        accelerator=accelerator,
        fold_workers=args.fold_workers,
    )
    return 0


def cmd_ablate(args: argparse.Namespace) -> int:
    """``fmanet-hf ablate``: every ablation under LOSO, one comparison table (see `run_ablation`)."""
    from ..training.ablation import run_ablation

    accelerator = _accelerator(args)
    prepared, _ = prepare_from_args(args, accelerator)
    names = [n.strip() for n in args.ablations.split(",") if n.strip()] if args.ablations else None
    summary = run_ablation(
        prepared,
        out_dir=args.out,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        seed=args.seed,
        base_config=model_config_from_args(args) or None,
        ablations=names,
        progress=not args.quiet,
        accelerator=accelerator,
        weight_decay=args.weight_decay,
        optimizer=args.optimizer,
        lr_schedule=args.lr_schedule,
        class_weighting=args.class_weighting,
        record_leaky_best_epoch=args.record_leaky_best_epoch,
        fold_parallel=args.fold_parallel,
        fold_workers=args.fold_workers,
    )
    if args.quiet and accelerator.is_main_process:
        print(summary["markdown"])
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """``fmanet-hf train``: fine-tune one model with `transformers.Trainer` (see `train_with_trainer`)."""
    from ..training.trainer import train_with_trainer

    accelerator = _accelerator(args)
    prepared, processor = prepare_from_args(args, accelerator)
    eval_subjects = {s.strip() for s in (args.eval_subjects or "").split(",") if s.strip()}
    subjects = set(prepared.select_columns(["subject"]).with_format(None)["subject"])
    unknown = sorted(eval_subjects - subjects)
    if unknown:
        raise FMANetConfigError(f"--eval-subjects {unknown} are not subjects of the dataset; it has {sorted(subjects)}.")
    if eval_subjects:
        is_eval = [s in eval_subjects for s in prepared.select_columns(["subject"]).with_format(None)["subject"]]
        train_rows = [i for i, flag in enumerate(is_eval) if not flag]
        eval_rows = [i for i, flag in enumerate(is_eval) if flag]
        train_set, eval_set = prepared.select(train_rows), prepared.select(eval_rows)
    else:
        train_set, eval_set = prepared, None
    from ..training.loso import resolve_epochs

    run = train_with_trainer(
        train_set,
        eval_set,
        model_config=model_config_from_args(args) or None,
        output_dir=args.out,
        epochs=resolve_epochs(args.epochs, len(train_set), args.batch_size),
        batch_size=args.batch_size,
        learning_rate=args.lr,
        weight_decay=args.weight_decay,
        seed=args.seed,
        class_weighting=args.class_weighting,
        report_to=args.report_to,
        processor=processor,
        use_cpu=True if args.cpu else None,
        progress=not args.quiet,
    )
    if accelerator.is_main_process:
        print(f"model and processor saved to {os.path.abspath(args.out)}")
        if run.eval_metrics:
            scores = ", ".join(f"{k[5:]} {run.eval_metrics[k]:.4f}" for k in ("eval_accuracy", "eval_uf1", "eval_uar"))
            print(f"held-out subjects {sorted(eval_subjects)} (one split, not LOSO): {scores}")
    return 0


def register_training_commands(subparsers: Any) -> dict[str, argparse.ArgumentParser]:
    """Add ``train``, ``loso`` and ``ablate`` to an ``argparse`` subparsers object.

    Each parser gets ``handler=<function(args) -> exit status>`` as its default, like the
    other ``fmanet-hf`` commands. Returns the three parsers by name.
    """
    loso = subparsers.add_parser(
        "loso", help="leave-one-subject-out training and evaluation (resumable)",
        description="Train one FMANet per left-out subject with a fixed schedule and score the final epoch, "
        "pooled over folds (UF1/UAR). Rerun the same command to resume an interrupted run.",
    )
    _add_data_arguments(loso)
    _add_schedule_arguments(loso, out_help="results folder (rerun with the same settings to resume)")
    _add_loso_arguments(loso)
    loso.add_argument("--ablation", help="train an ablation variant (full, single_phase, fixed_fusion, no_modulation, no_attention)")
    loso.add_argument("--save-fold-models", action="store_true", help="save each fold's final model under folds/<subject>/")
    loso.add_argument("--train-final-model", action="store_true", help="also train on ALL subjects and save final_model/")
    loso.set_defaults(handler=cmd_loso)

    ablate = subparsers.add_parser(
        "ablate", help="run every ablation under LOSO and write one comparison table",
        description="Run full, single_phase, fixed_fusion, no_modulation and no_attention under the same LOSO "
        "schedule; writes ablation.md and ablation.json (deltas vs full).",
    )
    _add_data_arguments(ablate)
    _add_schedule_arguments(ablate, out_help="folder: one LOSO run per ablation under it, plus the tables")
    _add_loso_arguments(ablate)
    ablate.add_argument("--ablations", help="comma-separated subset (default: all; full always runs)")
    ablate.set_defaults(handler=cmd_ablate)

    train = subparsers.add_parser(
        "train", help="fine-tune one model with transformers.Trainer and save it with its processor",
        description="Train FMANet on a prepared dataset with transformers.Trainer. --eval-subjects holds "
        "subjects out and scores them after every epoch (one split; use `loso` for the protocol).",
    )
    _add_data_arguments(train)
    _add_schedule_arguments(train, out_help="output folder: model.safetensors, config.json, preprocessor_config.json")
    train.add_argument("--eval-subjects", help="comma-separated subjects held out for evaluation")
    train.add_argument("--report-to", default="none", help='"none" or "tensorboard" (needs the tensorboard package)')
    train.set_defaults(handler=cmd_train)
    return {"loso": loso, "ablate": ablate, "train": train}


__all__ = ["cmd_ablate", "cmd_loso", "cmd_train", "model_config_from_args", "prepare_from_args", "register_training_commands"]
