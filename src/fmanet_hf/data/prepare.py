"""Turn a loaded dataset into cached model inputs, once.

``prepare_dataset`` runs `FMANetImageProcessor` over every sample with ``datasets.map``
(several processes, progress bar) and saves the result with ``save_to_disk`` under

    <cache_dir>/<dataset fingerprint>-<processor settings fingerprint>/

The dataset fingerprint covers each sample's id, frame paths, indices, label and each
frame file's size and modification time; the processor fingerprint covers every setting
that changes its output (`FMANetImageProcessor.settings_fingerprint`). A second call
with the same data and settings loads the cache and computes nothing; any change gives a
new cache entry. An entry counts only once its ``fmanet_cache.json`` manifest exists and
matches, and the folder is renamed into place only when complete, so an interrupted run
never leaves an entry a later run trusts.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from ..atomic import atomic_directory, atomic_write_json, remove_stale_temporaries
from ..errors import CacheError, FMANetError

logger = logging.getLogger(__name__)

CACHE_FORMAT_VERSION = 1
MANIFEST_NAME = "fmanet_cache.json"
_FINGERPRINT_COLUMNS = ("sample_id", "onset_path", "apex_path", "offset_path", "onset_index", "apex_index", "offset_index", "label")


def dataset_fingerprint(dataset) -> str:
    """SHA-256 (16 hex chars) of the samples and of their frame files' size and mtime."""
    digest = hashlib.sha256()
    columns = [c for c in _FINGERPRINT_COLUMNS if c in dataset.column_names]
    for row in dataset.select_columns(columns):
        digest.update(json.dumps([row[c] for c in columns], default=str).encode("utf-8"))
        for key in ("onset_path", "apex_path", "offset_path"):
            if key in row:
                stat = os.stat(row[key])
                digest.update(f"{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def _process_example(example: dict[str, Any], processor) -> dict[str, Any]:
    import cv2

    # One OpenCV thread per worker process: the processes are the parallelism.
    cv2.setNumThreads(1)
    sample = processor.process_triplet(example["onset_path"], example["apex_path"], example["offset_path"])
    return {"pixel_values": sample.pixel_values, "mmcof_values": sample.mmcof}


def cache_path_for(dataset, processor, cache_dir: str | os.PathLike) -> Path:
    """Where `prepare_dataset` keeps the inputs of ``dataset`` under ``processor``."""
    return Path(cache_dir) / f"{dataset_fingerprint(dataset)}-{processor.settings_fingerprint()}"


def _load_valid_cache(path: Path, processor):
    from datasets import load_from_disk

    manifest_path = path / MANIFEST_NAME
    if not manifest_path.is_file():
        return None
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, json.JSONDecodeError):
        logger.warning("Cache manifest %s is unreadable; rebuilding.", manifest_path)
        return None
    if manifest.get("cache_format_version") != CACHE_FORMAT_VERSION or manifest.get("processor_settings") != processor.output_settings():
        logger.warning("Cache %s was written with other settings or format; rebuilding.", path)
        return None
    if manifest.get("entry", path.name) != path.name:
        logger.warning("Cache %s holds the entry %r (a copied or renamed folder); rebuilding.", path, manifest.get("entry"))
        return None
    try:
        loaded = load_from_disk(str(path / "data"))
    except Exception as error:  # a corrupt arrow file: rebuild rather than crash
        logger.warning("Cache %s could not be loaded (%s); rebuilding.", path, error)
        return None
    if len(loaded) != manifest.get("num_samples"):
        logger.warning("Cache %s has %d samples, its manifest %r; rebuilding.", path, len(loaded), manifest.get("num_samples"))
        return None
    return loaded


def prepare_dataset(
    dataset,
    processor,
    cache_dir: str | os.PathLike,
    *,
    num_proc: int | None = None,
    progress: bool = True,
):
    """Model inputs for every sample of ``dataset``, computed once and cached.

    Args:
        dataset: a ``datasets.Dataset`` from one of the loaders (needs ``onset_path``,
            ``apex_path``, ``offset_path``).
        processor: an `FMANetImageProcessor`.
        cache_dir: folder holding cache entries.
        num_proc: worker processes (default: all cores, at most one per sample).
        progress: show a progress bar.

    Returns:
        The dataset with two more columns, ``pixel_values`` (float32 (2 * C, H, W)) and
        ``mmcof_values`` (float32 (3, H, W)), in torch format for those two plus ``label_id``.
    """
    from datasets import Array3D, Features
    from datasets.utils.logging import disable_progress_bar, enable_progress_bar

    missing = {"onset_path", "apex_path", "offset_path"} - set(dataset.column_names)
    if missing:
        raise FMANetError(f"prepare_dataset needs the columns {sorted(missing)}; load the data with a fmanet_hf.data loader.")
    if len(dataset) == 0:
        raise FMANetError("prepare_dataset got an empty dataset; check the loader's class set and on_invalid setting.")
    path = cache_path_for(dataset, processor, cache_dir)
    remove_stale_temporaries(cache_dir)  # half-written entries of a killed run (never trusted)
    cached = _load_valid_cache(path, processor)
    if cached is not None:
        logger.info("Loaded %d prepared samples from %s.", len(cached), path)
        return _with_format(cached)

    channels = 2 * processor.num_channels_per_phase
    height, width = processor.size["height"], processor.size["width"]
    features = Features(
        {
            **dataset.features,
            "pixel_values": Array3D(shape=(channels, height, width), dtype="float32"),
            "mmcof_values": Array3D(shape=(3, height, width), dtype="float32"),
        }
    )
    workers = num_proc if num_proc is not None else (os.cpu_count() or 1)
    workers = max(1, min(workers, len(dataset)))
    if not progress:
        disable_progress_bar()
    try:
        prepared, elapsed = _compute(dataset, processor, features, workers)
        _write_cache(path, prepared, processor, elapsed)
    finally:
        if not progress:
            enable_progress_bar()
    logger.info("Prepared %d samples in %.1f s; cached at %s.", len(prepared), elapsed, path)
    cached = _load_valid_cache(path, processor)
    if cached is None:
        raise CacheError(f"The cache just written at {path} cannot be read back; check the disk.")
    return _with_format(cached)


def _compute(dataset, processor, features, workers: int):
    import cv2

    started = time.perf_counter()
    # Forking a process whose OpenCV thread pool has already run deadlocks the children
    # (their copy of the pool's lock is held forever). A one-thread pool is torn down, so
    # the fork is safe; the caller's setting is restored afterwards.
    previous_threads = cv2.getNumThreads()
    if workers > 1:
        cv2.setNumThreads(1)
    try:
        prepared = dataset.map(
            _process_example,
            fn_kwargs={"processor": processor},
            features=features,
            num_proc=workers if workers > 1 else None,
            desc=f"Optical flow ({processor.flow_method}, {workers} proc)",
            load_from_cache_file=False,
        )
    except FMANetError:
        raise
    except Exception as error:
        # datasets wraps worker errors; surface ours when that is what it was.
        cause = error
        while cause is not None and not isinstance(cause, FMANetError):
            cause = cause.__cause__ or cause.__context__
        if cause is not None:
            raise cause from None
        raise
    finally:
        cv2.setNumThreads(previous_threads)
    return prepared, time.perf_counter() - started


def _write_cache(path: Path, prepared, processor, elapsed: float) -> None:
    try:
        with atomic_directory(path) as staging:
            prepared.save_to_disk(str(staging / "data"))
            atomic_write_json(
                staging / MANIFEST_NAME,
                {
                    "cache_format_version": CACHE_FORMAT_VERSION,
                    "entry": path.name,
                    "processor_settings": processor.output_settings(),
                    "num_samples": len(prepared),
                    "compute_seconds": round(elapsed, 3),
                },
            )
    except OSError as error:
        raise CacheError(f"Could not write the prepared-input cache at {path}: {error}") from None


def _with_format(dataset):
    columns = [c for c in ("pixel_values", "mmcof_values", "label_id") if c in dataset.column_names]
    dataset.set_format("torch", columns=columns, output_all_columns=True)
    return dataset
