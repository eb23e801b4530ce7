"""The deployable model of a LOSO run: trained on ALL subjects, saved with its processor.

After the folds, ``run_loso(train_final_model=True)`` trains one more model on every subject
with the run's schedule and saves it under ``final_model/`` with the processor the data was
prepared with (`find_prepared_processor`) and a ``training_info.json``. Its expected
performance on new subjects is the LOSO estimate; nothing is measured on this model itself.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..atomic import atomic_directory, atomic_write_json
from .collate import PreparedTensors
from .engine import TrainingObserver, seeded_torch, train_model, without_transformers_progress_bars
from .run_folder import FINAL_MODEL_DIR
from .schedule import TrainingSchedule
from .seeds import derive_seed

logger = logging.getLogger(__name__)


def find_prepared_processor(prepared_dataset: Any):
    """The `FMANetImageProcessor` a dataset was prepared with, from its cache manifest.

    `prepare_dataset` saves the processor's output settings next to the cached data; this
    reads them back so a deployable model ships with the exact preprocessing it was trained
    on. Returns None when the dataset did not come from that cache (e.g. built by hand).
    """
    from ..data.prepare import MANIFEST_NAME
    from ..image_processing_fmanet import FMANetImageProcessor

    for cache_file in getattr(prepared_dataset, "cache_files", None) or []:
        folder = Path(cache_file.get("filename", "")).parent
        for candidate in (folder, folder.parent, folder.parent.parent):
            manifest = candidate / MANIFEST_NAME
            if manifest.is_file():
                try:
                    settings = json.loads(manifest.read_text())["processor_settings"]
                    return FMANetImageProcessor(**settings)
                except (OSError, KeyError, TypeError, ValueError, json.JSONDecodeError) as error:
                    logger.warning("Could not rebuild the processor from %s: %s", manifest, error)
                    return None
    return None


def train_and_save_final_model(
    *,
    out: Path,
    data: PreparedTensors,
    config: Any,
    schedule: TrainingSchedule,
    seed: int,
    accelerator: Any,
    observer: TrainingObserver,
    model_factory: Callable[[Any], torch.nn.Module],
    processor: Any,
    run_digest: str,
    progress: bool,
) -> dict[str, Any]:
    """Train on every subject (data parallel over all processes) and save ``out/final_model/``.

    A ``final_model/`` already saved by a run with the same ``run_digest`` is kept as is.

    Returns:
        The ``training_info.json`` dict (on every process; only the main process writes).
    """
    target = out / FINAL_MODEL_DIR
    info_path = target / "training_info.json"
    if info_path.is_file():
        try:
            existing = json.loads(info_path.read_text())
            if existing.get("run_config_digest") == run_digest:
                return existing
        except (OSError, json.JSONDecodeError):
            pass
    all_indices = np.arange(len(data), dtype=np.int64)
    observer.on_fold_start("final_model", list(data.sample_ids), [])
    with seeded_torch(derive_seed(int(seed), "final_model"), accelerator.device):
        model = model_factory(config)
        model, log = train_model(
            model,
            data,
            all_indices,
            schedule,
            seed=derive_seed(int(seed), "final_model"),
            accelerator=accelerator,
            data_parallel=True,
            observer=observer,
            fold_name="final_model",
            progress=progress,
        )
    info = {
        "note": "trained on ALL subjects with the LOSO schedule; its expected performance on new "
        "subjects is the LOSO estimate in ../results.json, not a number measured on this model",
        "run_config_digest": run_digest,
        "schedule": schedule.to_dict(),
        "num_samples": len(data),
        "subjects": sorted(set(data.subjects)),
        "train_loss_per_epoch": log.epoch_losses,
        "processor_saved": processor is not None,
        "seconds": round(log.seconds, 3),
    }
    if accelerator.is_main_process:
        with atomic_directory(target) as staging, without_transformers_progress_bars():
            model.save_pretrained(staging)
            if processor is not None:
                processor.save_pretrained(staging)
            atomic_write_json(staging / "training_info.json", info)
    return info



__all__ = ["find_prepared_processor", "train_and_save_final_model"]
