"""Turn a loaded dataset into cached model inputs, once.

``prepare_dataset`` runs `FMANetImageProcessor` over every sample with ``datasets.map``
(several processes, progress bar) and saves the result with ``save_to_disk`` under

    <cache_dir>/<dataset fingerprint>-<processor settings fingerprint>/

The dataset fingerprint covers each sample's id, frame paths, indices, label and each
frame file's size and modification time; the processing fingerprint
(`processing_fingerprint`) covers every setting that changes the processor's output
(`FMANetImageProcessor.settings_fingerprint`) and what else does: the OpenCV version
(flow, warps, stabilisation) and, with face alignment, the dlib version and the SHA-256 of
the landmark model file (`processing_environment`). A second call with the same data and
settings loads the cache and computes nothing; any change gives a new cache entry.

Under the entries, a per-sample store keeps each sample's arrays on their own:

    <cache_dir>/samples/<processing fingerprint>/<key[:2]>/<key>.npz

keyed by the sample's three frame files (resolved path, size, modification time). A new
entry (another order, a subset, more samples, a relabelled set) is assembled from the
store, and only samples it lacks are computed: ``dataset.shuffle()``, ``dataset.select()``
or a LOSO split of a prepared set cost no flow. An entry counts only once its ``fmanet_cache.json`` manifest exists and
matches, and the folder is renamed into place only when complete, so an interrupted run
never leaves an entry a later run trusts.

``on_face_missing="skip"`` drops clips in which no face is found (a real dataset has a
few; SynthME 2.0's pretraining person is small and sometimes missed) instead of stopping.
The dropped sample ids are logged, kept in the cache manifest and returned by
`skipped_samples`, so a run can record exactly which clips it never saw. Such an entry
has its own cache name (``-skipfaceless``): a later ``"raise"`` call never reads it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import time
from pathlib import Path
from typing import Any

from ..atomic import atomic_directory, atomic_write_json, remove_stale_temporaries
from ..errors import CacheError, FaceNotFoundError, FMANetError

logger = logging.getLogger(__name__)
#: The process that imported this module; `datasets.map` workers are forked from it.
_MAIN_PROCESS_ID = os.getpid()

CACHE_FORMAT_VERSION = 2  # 2: the processing fingerprint covers library versions and the landmark model
MANIFEST_NAME = "fmanet_cache.json"
#: Folder of the per-sample store inside a cache folder.
SAMPLE_STORE_DIR = "samples"
_LANDMARK_DIGESTS: dict[tuple[str, int, int], str] = {}
#: Accepted values of ``prepare_dataset(on_face_missing=...)``.
FACE_MISSING_POLICIES = ("raise", "skip")
_FACE_FOUND_COLUMN = "_face_found"
_SKIP_SUFFIX = "-skipfaceless"
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


def _file_sha256(path: str) -> str:
    """SHA-256 of a file, remembered per (path, size, mtime) for this process (the landmark
    model is about 100 MB)."""
    stat = os.stat(path)
    key = (os.path.realpath(path), stat.st_size, stat.st_mtime_ns)
    if key not in _LANDMARK_DIGESTS:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _LANDMARK_DIGESTS[key] = digest.hexdigest()
    return _LANDMARK_DIGESTS[key]


def processing_environment(processor) -> dict[str, str]:
    """What changes the processor's output besides its settings: ``opencv`` (its version:
    optical flow, warps, stabilisation) and, with ``align_faces``, ``dlib`` (its version: face
    detection and landmarks) and ``landmark_model_sha256`` (the 68-point model file used);
    with ``face_backend="mediapipe"`` instead ``mediapipe_models_sha256`` (its two model files;
    OpenCV runs them)."""
    import cv2

    environment = {"opencv": str(cv2.__version__)}
    if getattr(processor, "align_faces", False) and getattr(processor, "face_backend", "dlib") == "mediapipe":
        from ..face_mediapipe import find_mediapipe_models

        try:
            environment["mediapipe_models_sha256"] = ",".join(_file_sha256(path) for path in find_mediapipe_models())
        except (FMANetError, OSError) as error:
            environment["mediapipe_models_sha256"] = f"unavailable: {type(error).__name__}"
    elif getattr(processor, "align_faces", False):
        from ..face import find_landmark_model

        try:
            import dlib

            environment["dlib"] = str(getattr(dlib, "__version__", "unknown"))
        except ImportError:
            environment["dlib"] = "not installed"
        try:
            environment["landmark_model_sha256"] = _file_sha256(find_landmark_model(processor.landmark_model_path))
        except (FMANetError, OSError) as error:
            # The processor will raise its own clear error when it needs the model.
            environment["landmark_model_sha256"] = f"unavailable: {type(error).__name__}"
    return environment


def processing_fingerprint(processor) -> str:
    """SHA-256 (16 hex chars) of the processor's output settings, `processing_environment` and
    the cache format: everything that changes a prepared sample besides its frames."""
    canonical = json.dumps(
        {"settings": processor.output_settings(), "environment": processing_environment(processor), "format": CACHE_FORMAT_VERSION},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def sample_key(example: dict[str, Any]) -> str:
    """SHA-256 (32 hex chars) of a sample's three frame files: resolved path, size, mtime."""
    digest = hashlib.sha256()
    for column in ("onset_path", "apex_path", "offset_path"):
        path = example[column]
        stat = os.stat(path)
        digest.update(f"{os.path.realpath(path)}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode("utf-8"))
    return digest.hexdigest()[:32]


def _stored_sample(store: Path, key: str):
    """The arrays stored for ``key`` (``pixel_values``, ``mmcof_values``, ``face_found``), or
    None when absent or unreadable (a damaged file is recomputed, never trusted)."""
    import numpy as np

    path = store / key[:2] / f"{key}.npz"
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in ("pixel_values", "mmcof_values", "face_found")}
    except Exception as error:  # truncated or foreign file
        logger.warning("Prepared sample %s is unreadable (%s); recomputing it.", path, error)
        return None


def _store_sample(store: Path, key: str, pixel_values, mmcof_values, face_found: bool) -> None:
    import io

    import numpy as np

    from ..atomic import atomic_write_bytes

    buffer = io.BytesIO()
    np.savez(buffer, pixel_values=pixel_values, mmcof_values=mmcof_values, face_found=np.asarray(face_found))
    (store / key[:2]).mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(store / key[:2] / f"{key}.npz", buffer.getvalue())


def _ignore_ctrl_c_in_workers() -> None:
    # Ctrl-C reaches the whole process group. The main process turns it into one line and
    # stops the pool; a worker that raised KeyboardInterrupt too would print its own traceback.
    if os.getpid() != _MAIN_PROCESS_ID:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _process_example(example: dict[str, Any], processor, skip_faceless: bool = False, store: str | None = None) -> dict[str, Any]:
    import cv2
    import numpy as np

    _ignore_ctrl_c_in_workers()
    key = sample_key(example) if store is not None else None
    stored = _stored_sample(Path(store), key) if store is not None else None
    # A stored "no face" is recomputed under on_face_missing="raise", for the processor's own error.
    if stored is not None and (bool(stored["face_found"]) or skip_faceless):
        outputs = {"pixel_values": stored["pixel_values"], "mmcof_values": stored["mmcof_values"]}
        if skip_faceless:
            outputs[_FACE_FOUND_COLUMN] = bool(stored["face_found"])
        return outputs
    # One OpenCV thread per worker process: the processes are the parallelism.
    cv2.setNumThreads(1)
    try:
        sample = processor.process_triplet(example["onset_path"], example["apex_path"], example["offset_path"])
    except FaceNotFoundError:
        if not skip_faceless:
            raise
        height, width = processor.size["height"], processor.size["width"]
        # Placeholder rows of the right shape; they are filtered out before caching.
        outputs = {
            "pixel_values": np.zeros((2 * processor.num_channels_per_phase, height, width), np.float32),
            "mmcof_values": np.zeros((3, height, width), np.float32),
            _FACE_FOUND_COLUMN: False,
        }
    else:
        outputs = {"pixel_values": sample.pixel_values, "mmcof_values": sample.mmcof}
        if skip_faceless:
            outputs[_FACE_FOUND_COLUMN] = True
    if store is not None:
        try:
            _store_sample(Path(store), key, outputs["pixel_values"], outputs["mmcof_values"], outputs.get(_FACE_FOUND_COLUMN, True))
        except OSError as error:  # a full disk costs the reuse, not the run
            logger.warning("Could not store prepared sample %s (%s).", key, error)
    return outputs


def sample_store_path(processor, cache_dir: str | os.PathLike) -> Path:
    """The per-sample store `prepare_dataset` uses for ``processor`` (see the module docstring)."""
    return Path(cache_dir) / SAMPLE_STORE_DIR / processing_fingerprint(processor)


def cache_path_for(dataset, processor, cache_dir: str | os.PathLike, *, on_face_missing: str = "raise") -> Path:
    """Where `prepare_dataset` keeps the inputs of ``dataset`` under ``processor``."""
    suffix = _SKIP_SUFFIX if on_face_missing == "skip" else ""
    return Path(cache_dir) / f"{dataset_fingerprint(dataset)}-{processing_fingerprint(processor)}{suffix}"


def skipped_samples(dataset, prepared) -> list[str]:
    """Sample ids of ``dataset`` missing from ``prepared`` (those `prepare_dataset` dropped
    because no face was found), in the dataset's order."""
    kept = set(prepared["sample_id"])
    return [sample_id for sample_id in dataset["sample_id"] if sample_id not in kept]


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
    on_face_missing: str = "raise",
):
    """Model inputs for every sample of ``dataset``, computed once and cached.

    Args:
        dataset: a ``datasets.Dataset`` from one of the loaders (needs ``onset_path``,
            ``apex_path``, ``offset_path``).
        processor: an `FMANetImageProcessor`.
        cache_dir: folder holding cache entries.
        num_proc: worker processes (default: all cores, at most one per sample).
        progress: show a progress bar.
        on_face_missing: ``"raise"`` (default) stops with `FaceNotFoundError` at the first
            clip without a detectable face; ``"skip"`` drops such clips, logs their ids and
            records them in the cache manifest (``skipped_no_face``).

    Returns:
        The dataset with its columns plus ``pixel_values`` (float32 (2 * C, H, W)),
        ``mmcof_values`` (float32 (3, H, W)) and ``labels`` (the integer class, as
        transformers' ``Trainer`` reads it; ``label_id`` holds the same values), and with the
        class name renamed from ``label`` to ``label_name``; torch format for the arrays and
        both integer columns.
    """
    from datasets import Array3D, Features, Value
    from datasets.utils.logging import disable_progress_bar, enable_progress_bar

    missing = {"onset_path", "apex_path", "offset_path"} - set(dataset.column_names)
    if missing:
        raise FMANetError(f"prepare_dataset needs the columns {sorted(missing)}; load the data with a fmanet_hf.data loader.")
    if len(dataset) == 0:
        raise FMANetError("prepare_dataset got an empty dataset; check the loader's class set and on_invalid setting.")
    if on_face_missing not in FACE_MISSING_POLICIES:
        raise FMANetError(f"on_face_missing must be one of {list(FACE_MISSING_POLICIES)}, not {on_face_missing!r}.")
    path = cache_path_for(dataset, processor, cache_dir, on_face_missing=on_face_missing)
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
        skip_faceless = on_face_missing == "skip"
        if skip_faceless:
            features[_FACE_FOUND_COLUMN] = Value("bool")
        store = sample_store_path(processor, cache_dir)
        prepared, elapsed = _compute(dataset, processor, features, workers, skip_faceless, store)
        skipped: list[str] = []
        if skip_faceless:
            skipped = [sid for sid, found in zip(prepared["sample_id"], prepared[_FACE_FOUND_COLUMN]) if not found]
            prepared = prepared.filter(lambda found: found, input_columns=_FACE_FOUND_COLUMN).remove_columns(_FACE_FOUND_COLUMN)
            if skipped:
                logger.warning(
                    "No face found in %d of %d clips; skipped (on_face_missing='skip'): %s%s",
                    len(skipped), len(dataset), ", ".join(skipped[:10]), " ..." if len(skipped) > 10 else "",
                )
            if len(prepared) == 0:
                raise FaceNotFoundError(
                    f"No face was found in any of the {len(dataset)} clips; check that the frames show frontal faces."
                )
        _write_cache(path, prepared, processor, elapsed, skipped)
    finally:
        if not progress:
            enable_progress_bar()
    logger.info("Prepared %d samples in %.1f s; cached at %s.", len(prepared), elapsed, path)
    cached = _load_valid_cache(path, processor)
    if cached is None:
        raise CacheError(f"The cache just written at {path} cannot be read back; check the disk.")
    return _with_format(cached)


def _compute(dataset, processor, features, workers: int, skip_faceless: bool, store: Path):
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
            fn_kwargs={"processor": processor, "skip_faceless": skip_faceless, "store": str(store)},
            # datasets would hash fn_kwargs, store path included; the result depends on the data and
            # the processing only, so the saved entry is the same wherever the cache folder lives.
            new_fingerprint=hashlib.sha256(
                f"{dataset._fingerprint}:{store.name}:{skip_faceless}".encode("utf-8")
            ).hexdigest()[:16],
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
        while cause is not None and not isinstance(cause, (FMANetError, KeyboardInterrupt)):
            cause = cause.__cause__ or cause.__context__
        if isinstance(cause, KeyboardInterrupt):
            # Ctrl-C while datasets waited on its workers; its clean-up then timed out on them.
            raise KeyboardInterrupt from None
        if cause is not None:
            raise cause from None
        raise
    finally:
        cv2.setNumThreads(previous_threads)
    return prepared, time.perf_counter() - started


def _write_cache(path: Path, prepared, processor, elapsed: float, skipped: list[str]) -> None:
    try:
        with atomic_directory(path) as staging:
            prepared.save_to_disk(str(staging / "data"))
            atomic_write_json(
                staging / MANIFEST_NAME,
                {
                    "cache_format_version": CACHE_FORMAT_VERSION,
                    "entry": path.name,
                    "processor_settings": processor.output_settings(),
                    "processing_environment": processing_environment(processor),
                    "num_samples": len(prepared),
                    "compute_seconds": round(elapsed, 3),
                    "skipped_no_face": skipped,
                },
            )
    except OSError as error:
        raise CacheError(f"Could not write the prepared-input cache at {path}: {error}") from None


def _with_format(dataset):
    """The prepared dataset as transformers expects it: the integer target in ``labels`` (a
    ``ClassLabel``, the same values as ``label_id``, which stays), and the class name moved from
    ``label`` to ``label_name`` (a text column called ``label`` breaks `transformers.Trainer`'s
    default collator, which reads ``label`` as the target)."""
    if "label" in dataset.column_names and "label_name" not in dataset.column_names:
        dataset = dataset.rename_column("label", "label_name")
    if "label_id" in dataset.column_names and "labels" not in dataset.column_names:
        dataset = dataset.add_column(
            "labels", dataset.data.column("label_id").to_pylist(), feature=dataset.features["label_id"]
        )
    columns = [c for c in ("pixel_values", "mmcof_values", "label_id", "labels") if c in dataset.column_names]
    dataset.set_format("torch", columns=columns, output_all_columns=True)
    return dataset
