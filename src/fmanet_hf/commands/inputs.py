"""What the shared flags build: the processor, the prepared dataset, the model config and the
accelerator of a command.

``prepare``, ``baseline``, ``train``, ``loso`` and ``ablate`` load a dataset by name
(`fmanet_hf.data.registry`) and prepare it once into the shared cache
(``<cache-dir>/prepared``). The training commands run under ``accelerate launch`` /
``torchrun`` too (docs/training.md): the main process prepares the data first, the others
then read the cache.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import FMANetConfigError, did_you_mean
from .common_flags import dataset_options, processor_overrides
from .output import show_progress


def schedule_from_args(args: argparse.Namespace):
    """The `TrainingSchedule` of ``--epochs``, ``--batch-size``, ``--lr``, ``--weight-decay``,
    ``--class-weighting``, (``loso``/``ablate``) ``--optimizer``, ``--lr-schedule`` and
    (``loso``/``ablate``/``pretrain``) ``--augment``, ``--ema-decay``, ``--precision``."""
    from ..training.schedule import TrainingSchedule

    return TrainingSchedule(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        weight_decay=args.weight_decay,
        optimizer=args.optimizer,
        lr_schedule=args.lr_schedule,
        class_weighting=args.class_weighting,
        augmentation=getattr(args, "augment", "none"),
        ema_decay=getattr(args, "ema_decay", 0.0),
        precision=getattr(args, "precision", "fp32"),
    )


def processor_from_args(args: argparse.Namespace):
    """The `FMANetImageProcessor` of ``--processor`` (a saved folder; ``--size`` and
    ``--face-backend`` still apply) or of ``--flow-method``, ``--flow-params``,
    ``--face-backend`` and ``--size`` (for the commands that have them)."""
    from ..image_processing_fmanet import FMANetImageProcessor

    size = getattr(args, "size", None)
    if getattr(args, "processor", None):
        processor = processor_from_folder(args.processor)
        if size:
            processor.size = {"height": size, "width": size}
        if getattr(args, "face_backend", None):
            processor.face_backend = args.face_backend
        processor.validate_settings()
        return processor
    overrides: dict[str, Any] = processor_overrides(args)
    if size:
        overrides["size"] = {"height": size, "width": size}
    return FMANetImageProcessor(**overrides)


def processor_from_folder(folder: str):
    """The `FMANetImageProcessor` saved in ``--processor FOLDER`` (or a preprocessor_config.json
    file), or `FMANetConfigError` naming the flag: transformers would take a missing folder for a
    Hub repo id and end in a traceback."""
    from ..image_processing_fmanet import FMANetImageProcessor

    path = Path(folder).expanduser()
    if not path.exists():
        raise FMANetConfigError(f"--processor {folder!r} does not exist; give the folder that holds preprocessor_config.json.")
    if path.is_dir() and not (path / "preprocessor_config.json").is_file():
        raise FMANetConfigError(f"--processor {folder!r} has no preprocessor_config.json; give a folder written by fmanet-hf.")
    try:
        return FMANetImageProcessor.from_pretrained(str(path))
    except OSError as error:
        raise FMANetConfigError(f"--processor {folder!r} cannot be read ({' '.join(str(error).split())}).") from None


def prepare_from_args(args: argparse.Namespace, accelerator: Any):
    """(prepared dataset, processor) for ``--dataset/--root/...``; main process first."""
    from ..data.prepare import prepare_dataset
    from ..data.registry import load_dataset_by_name

    processor = processor_from_args(args)  # settings are checked before the dataset is read
    dataset = load_dataset_by_name(args.dataset, args.root, args.class_set, **dataset_options(args))
    on_face_missing = getattr(args, "on_face_missing", "raise")
    # The main process computes (or finds) the cache; the others then only read it.
    with accelerator.main_process_first():
        prepared = prepare_dataset(
            dataset,
            processor,
            Path(args.cache_dir) / "prepared",
            num_proc=args.num_proc,
            progress=show_progress(args) and accelerator.is_main_process,
            on_face_missing=on_face_missing,
        )
    if accelerator.is_main_process:
        report_skipped_clips(dataset, prepared)
    return prepared, processor


def report_skipped_clips(dataset: Any, prepared: Any) -> list[str]:
    """Prints (stderr) which clips `prepare_dataset` skipped for want of a face; returns their ids."""
    from ..data.prepare import skipped_samples

    skipped = skipped_samples(dataset, prepared)
    if skipped:
        shown = ", ".join(skipped[:5]) + (" ..." if len(skipped) > 5 else "")
        print(
            f"warning: no face found in {len(skipped)} of {len(dataset)} clips; skipped (--on-face-missing skip): {shown}",
            file=sys.stderr,
        )
    return skipped


def model_config_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The model-config dict of ``--config`` (a JSON file, or a folder holding config.json),
    ``--ablation`` and ``--set KEY=VALUE`` (applied in that order)."""
    from ..configuration_fmanet import ABLATIONS, FMANET_SETTINGS, transformers_config_keys

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
        unknown = sorted(set(values) - set(FMANET_SETTINGS) - transformers_config_keys())
        if unknown:
            raise FMANetConfigError(
                f"--config {args.config}: unknown FMANetConfig setting "
                f"{', '.join(f'{key!r}{did_you_mean(key, FMANET_SETTINGS)}' for key in unknown)}."
            )
    ablation = getattr(args, "ablation", None)
    if ablation:
        if ablation not in ABLATIONS:
            raise FMANetConfigError(f"--ablation {ablation!r} is unknown; choose from {list(ABLATIONS)}.")
        values.update(ABLATIONS[ablation])
    for key, value in getattr(args, "set", None) or []:
        if key not in FMANET_SETTINGS:  # the dataset sets the classes; transformers' keys change nothing here
            raise FMANetConfigError(
                f"--set {key}=...: {key!r} is not an FMANetConfig setting{did_you_mean(key, FMANET_SETTINGS)}; "
                "FMANetConfig's docstring lists them."
            )
        values[key] = value
    return values


#: The flags whose paths a command reads, which its ``--out`` must stay clear of.
INPUT_PATH_FLAGS = ("root", "processor", "config", "init_from")


def check_out_from_args(args: argparse.Namespace) -> Path:
    """``--out`` checked against the command's input flags (``--root``, ``--processor``,
    ``--config``, ``--init-from``): not empty, not one of them, not inside or around one
    (see `fmanet_hf.output_paths.checked_output_path`). Call it before any work."""
    from ..output_paths import checked_output_path

    inputs = {f"--{name.replace('_', '-')}": getattr(args, name, None) for name in INPUT_PATH_FLAGS}
    return checked_output_path(args.out, flag="--out", inputs=inputs)


def training_device(args: argparse.Namespace):
    """The `torch.device` of ``--device`` (``--cpu`` is an alias of ``--device cpu``).

    Raises:
        FMANetConfigError: ``--cpu`` with another ``--device``.
        DeviceUnavailableError: the device asked for is not available.
    """
    from ..devices import resolve_device

    name = getattr(args, "device", None) or "auto"
    if getattr(args, "cpu", False):
        if name not in ("auto", "cpu"):
            raise FMANetConfigError(f"--cpu asks for the CPU and --device asks for {name}; give one of them.")
        name = "cpu"
    return resolve_device(name)


def training_accelerator(args: argparse.Namespace):
    """The `accelerate.Accelerator` of a training command on `training_device`. Accelerate
    takes the GPU or MPS device itself when not told ``cpu``; under ``accelerate launch``
    each process gets its own GPU. ``--precision bf16`` is refused here when that device cannot
    run it."""
    from accelerate import Accelerator

    device = training_device(args)
    accelerator = Accelerator(cpu=device.type == "cpu")
    if device.index is not None and device.index != (accelerator.device.index or 0):
        raise FMANetConfigError(
            f"--device {device}: training runs on the GPU Accelerate assigns (here {accelerator.device}); choose the "
            f"GPU with CUDA_VISIBLE_DEVICES={device.index} and --device cuda."
        )
    if accelerator.device.type != device.type:
        raise FMANetConfigError(f"--device {device} was asked for but Accelerate chose {accelerator.device}; check the launch configuration.")
    precision = getattr(args, "precision", "fp32")
    if precision != "fp32":
        from ..training.precision import check_precision

        check_precision(precision, accelerator.device)  # before any data is read (train_model checks again)
    return accelerator


__all__ = ["check_out_from_args", "model_config_from_args", "prepare_from_args", "processor_from_args", "report_skipped_clips", "training_accelerator", "training_device"]
