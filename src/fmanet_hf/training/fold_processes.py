"""Train several LOSO folds at once, each in its own spawned worker process (one machine).

This is what ``run_loso(fold_workers=N)`` / ``fmanet-hf loso --fold-workers N`` does, and it
is NOT ``fold_parallel`` (``--fold-parallel``). The two spread folds differently:

- ``fold_workers`` (this module): ONE ordinary (non-distributed) process starts N worker
  processes itself, with ``spawn``, and hands each a fold at a time. No Accelerate launcher,
  no communication between workers; the parent writes every fold record.
- ``fold_parallel``: the script is already running as W Accelerate processes (``accelerate
  launch`` / ``torchrun``, possibly on several machines); instead of splitting every batch
  over the W processes (data parallel, the default), process r trains the pending folds i
  with i % W == r alone and writes their files itself (see `fmanet_hf.training.loso`).

FMANet is small (about 0.5 M parameters on 64 x 64 inputs): one fold keeps a GPU mostly
idle, and several folds in separate processes sharing it finish sooner. On CPU, whole folds
in processes of ``cores // workers`` threads each trade torch's intra-op parallelism for
fold parallelism: on 2 cores, 2 workers trained a 68-fold LOSO 1.17x faster than one
2-thread process, with identical results (docs/performance.md). The folds are independent
(each has its own seed), so nothing but the thread count changes for a fold.

The parent process keeps every file write: a worker returns the fold's record and the parent
writes ``folds/<subject>.json`` atomically, as the in-process loop does; only the optional
fold model is saved by the worker, through an atomic directory. Workers are started with
``spawn`` (no fork of a process whose OpenCV or OpenMP pools have run) and exit on their own
within a second once the parent is gone, so a killed run leaves no orphan training on.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator, Sequence

import numpy as np

from ..atomic import atomic_directory
from ..errors import FMANetError
from .engine import TrainingObserver, deterministic_torch, run_fold, without_transformers_progress_bars
from .model_config import default_model_factory
from .run_folder import fold_file_stem

logger = logging.getLogger(__name__)

#: Seconds between a worker's checks that its parent is still alive.
_PARENT_CHECK_SECONDS = 1.0


@dataclass
class _WorkerSettings:
    data: Any
    config: Any
    schedule: Any
    seed: int
    run_digest: str
    record_leaky_best_epoch: bool
    eval_batch_size: int
    folds_dir: str | None
    threads: int
    device: str
    model_factory: Any = None


_SETTINGS: _WorkerSettings | None = None


def _exit_when_orphaned(parent_pid: int) -> None:
    while True:
        time.sleep(_PARENT_CHECK_SECONDS)
        if os.getppid() != parent_pid:
            os._exit(1)


def _initialize_worker(settings: _WorkerSettings, parent_pid: int) -> None:
    # Ctrl-C reaches the whole process group: the main process stops the workers (terminate,
    # below), so a worker need not print a KeyboardInterrupt traceback of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import torch

    global _SETTINGS
    _SETTINGS = settings
    torch.set_num_threads(settings.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set in this process
        pass
    threading.Thread(target=_exit_when_orphaned, args=(parent_pid,), daemon=True).start()


def _train_fold(fold_index: int, subject: str, train_indices: np.ndarray, test_indices: np.ndarray) -> dict[str, Any]:
    import torch

    settings = _SETTINGS
    assert settings is not None, "fold worker used before its initializer ran"
    # The in-process loop's accelerator is only asked for these in fold-parallel training.
    accelerator = SimpleNamespace(device=torch.device(settings.device), is_main_process=True, num_processes=1, process_index=0)
    with deterministic_torch():
        record, model = run_fold(
            subject=subject,
            fold_index=fold_index,
            train_indices=train_indices,
            test_indices=test_indices,
            data=settings.data,
            config=settings.config,
            schedule=settings.schedule,
            seed=settings.seed,
            run_digest=settings.run_digest,
            accelerator=accelerator,
            data_parallel=False,
            record_leaky_best_epoch=settings.record_leaky_best_epoch,
            observer=TrainingObserver(),
            model_factory=settings.model_factory or default_model_factory,
            eval_batch_size=settings.eval_batch_size,
            progress=False,
        )
    if settings.folds_dir is not None:
        with atomic_directory(Path(settings.folds_dir) / fold_file_stem(subject)) as staging, without_transformers_progress_bars():
            model.save_pretrained(staging)
    record["fold_worker_threads"] = settings.threads
    return record


def run_folds_in_workers(
    pending: Sequence[tuple[int, Any]],
    *,
    workers: int,
    data: Any,
    config: Any,
    schedule: Any,
    seed: int,
    run_digest: str,
    record_leaky_best_epoch: bool,
    eval_batch_size: int,
    folds_dir: Path | None,
    device: str = "cpu",
    model_factory: Any = None,
) -> Iterator[tuple[int, Any, dict[str, Any]]]:
    """Train the ``pending`` (fold index, `LosoFold`) pairs in ``workers`` processes.

    Yields ``(fold index, fold, record)`` as folds finish (any order); the caller writes the
    record. ``folds_dir``: where workers save fold models (None: not saved). ``device``:
    ``"cpu"`` or a CUDA device, which the workers then share (several small folds at once
    keep one GPU busier than one fold can). ``model_factory``: a picklable ``config -> model``
    (e.g. `PretrainedInitialization`); default: a fresh model.

    Raises:
        FMANetError: a worker failed (its own FMANetError is re-raised as is) or died.
    """
    import multiprocessing

    workers = max(1, min(int(workers), len(pending)))
    threads = max(1, (os.cpu_count() or 1) // workers) if device == "cpu" else 1
    settings = _WorkerSettings(
        data=data,
        config=config,
        schedule=schedule,
        seed=int(seed),
        run_digest=run_digest,
        record_leaky_best_epoch=bool(record_leaky_best_epoch),
        eval_batch_size=int(eval_batch_size),
        folds_dir=None if folds_dir is None else str(folds_dir),
        threads=threads,
        device=str(device),
        model_factory=model_factory,
    )
    logger.info("Training %d folds in %d worker processes, %d torch thread(s) each.", len(pending), workers, threads)
    executor = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_initialize_worker,
        initargs=(settings, os.getpid()),
    )
    futures: dict[Future, tuple[int, Any]] = {}
    queue = list(pending)
    finished = False
    try:
        # Keep at most `workers` folds submitted: the rest wait here, not in the pool, so an
        # error stops the run after the folds in flight instead of after every fold.
        while queue or futures:
            while queue and len(futures) < workers:
                fold_index, fold = queue.pop(0)
                future = executor.submit(_train_fold, fold_index, fold.test_subject, fold.train_indices, fold.test_indices)
                futures[future] = (fold_index, fold)
            done, _ = wait(futures, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=lambda f: futures[f][0]):
                fold_index, fold = futures.pop(future)
                try:
                    record = future.result()
                except FMANetError:
                    raise
                except BrokenProcessPool:
                    raise FMANetError(
                        f"A fold worker process died while training fold {fold.test_subject!r} (out of memory?). "
                        "Rerun the same command to resume, with --fold-workers 1 to train in one process."
                    ) from None
                yield fold_index, fold, record
        finished = True
    finally:
        if not finished:
            for process in list(getattr(executor, "_processes", {}).values()):
                process.terminate()
        executor.shutdown(wait=True, cancel_futures=True)


__all__ = ["run_folds_in_workers"]
