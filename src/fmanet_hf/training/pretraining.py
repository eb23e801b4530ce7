"""Pretraining FMANet on a large synthetic set, to fine-tune from (``--init-from``).

`pretrain` trains one model on EVERY subject of a prepared dataset (a SynthME 2.0 set of the
"pretrain" people: thousands of clips, its own seed) and saves it as a model folder with its
processor, ready for ``loso --init-from`` / ``train --init-from`` and ``from_pretrained``.
Nothing is held out, so there is no score here: whether pretraining helps is measured by
LOSO runs on OTHER people with and without ``--init-from`` (docs/training.md).

Folder written (atomically)::

    model.safetensors, config.json        the pretrained FMANet
    preprocessor_config.json              the processor the data was prepared with (if known)
    pretraining_info.json                 subjects, sample count, schedule, seed, data digest,
                                          training loss per epoch, seconds
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_directory, atomic_write_json
from ..errors import RunDirectoryError
from ..output_paths import WRITTEN_BY_KEY, check_replaceable_folder, checked_output_path, mark_output_folder, read_output_marker
from .collate import PreparedTensors
from .engine import deterministic_torch, seeded_torch, train_model, without_transformers_progress_bars
from .final_model import find_prepared_processor
from .model_config import build_model_config, config_to_dict, default_model_factory
from .schedule import TrainingSchedule
from .seeds import derive_seed

PRETRAINING_INFO_NAME = "pretraining_info.json"


def pretrain(
    prepared_dataset: Any,
    *,
    out_dir: str | os.PathLike,
    schedule: TrainingSchedule,
    seed: int = 0,
    model_config: Any = None,
    processor: Any = None,
    accelerator: Any = None,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Train FMANet on all samples of ``prepared_dataset`` and save it to ``out_dir``.

    Args:
        prepared_dataset: a prepared ``datasets.Dataset`` (see `run_loso`).
        out_dir: the model folder to write. An existing folder is refused unless it holds an
            earlier pretraining written by this package (its ``.fmanet-hf-output`` marker lists
            every file in it) and ``overwrite`` is True.
        schedule: the `TrainingSchedule` (``epochs="auto"`` resolves on the whole set).
        seed: seeds initialisation, dropout, shuffles and augmentation.
        model_config: `FMANetConfig`, dict or None (defaults); its size must be the one the
            fine-tuning runs will use.
        processor: saved with the model (default: rebuilt from the prepared cache).
        accelerator: an ``accelerate.Accelerator`` (default: a new one).
        overwrite: replace an earlier pretraining folder.
        progress: an epoch progress bar.

    Returns:
        The ``pretraining_info.json`` dict.

    Raises:
        RunDirectoryError: ``out_dir`` exists and is not a pretraining folder, or is one and
            ``overwrite`` is False.
        OutputPathError: ``out_dir`` is empty, or ``overwrite`` would remove a folder (or a
            file in it) that this command did not write.
    """
    out = checked_output_path(out_dir, flag="--out")
    if out.exists() and not (out.is_dir() and not any(out.iterdir())):
        marker = read_output_marker(out) or {}
        if not overwrite:
            if marker.get(WRITTEN_BY_KEY) == "fmanet-hf pretrain" or (out / PRETRAINING_INFO_NAME).is_file():
                raise RunDirectoryError(f"{out} already holds a pretrained model; pass --overwrite to replace it.")
            raise RunDirectoryError(
                f"{out} exists and is not a pretraining folder written by fmanet-hf; choose a new --out folder."
            )
        # Only a folder this command wrote, holding nothing else, may be replaced.
        check_replaceable_folder(out, command="pretrain", flag="--out")
    if accelerator is None:
        from accelerate import Accelerator

        accelerator = Accelerator()
    data = PreparedTensors.from_prepared(prepared_dataset)
    if processor is None:
        processor = find_prepared_processor(prepared_dataset)
    if processor is not None and schedule.augmentation != "none":
        data.vectors_in_pixels = getattr(processor, "flow_normalization", None) == "none"
    config = build_model_config(model_config, data.class_names, data.image_size, int(data.pixel_values.shape[1]))
    schedule = schedule.resolved(len(data))
    pretrain_seed = derive_seed(int(seed), "pretrain")
    with deterministic_torch(), seeded_torch(pretrain_seed, accelerator.device):
        model = default_model_factory(config)
        model, log = train_model(
            model,
            data,
            np.arange(len(data), dtype=np.int64),
            schedule,
            seed=pretrain_seed,
            accelerator=accelerator,
            data_parallel=True,
            fold_name="pretrain",
            progress=progress,
        )
    info = {
        "note": "pretrained on every subject listed here; fine-tune with --init-from on OTHER people only",
        "subjects": sorted(set(data.subjects)),
        "num_samples": len(data),
        "class_names": list(data.class_names),
        "data_digest": data.digest(),
        "schedule": schedule.to_dict(),
        "seed": int(seed),
        "model_config": config_to_dict(config),
        "train_loss_per_epoch": log.epoch_losses,
        "seconds": round(log.seconds, 3),
        "processor_saved": processor is not None,
    }
    if accelerator.is_main_process:
        with atomic_directory(out, overwrite=True) as staging, without_transformers_progress_bars():
            model.save_pretrained(staging)
            if processor is not None:
                processor.save_pretrained(staging)
            atomic_write_json(staging / PRETRAINING_INFO_NAME, info)
            mark_output_folder(staging, "pretrain")
    return info


__all__ = ["PRETRAINING_INFO_NAME", "pretrain"]
