"""Leave-one-subject-out (LOSO) training and evaluation of FMANet, leak-free by default.

One model per left-out subject (`fmanet_hf.data.loso_folds`), each trained from scratch on
the other subjects with a FIXED schedule (`TrainingSchedule`); the held-out subject is
predicted once, after the final epoch. Its samples never reach the optimiser and are never
used to choose anything (epoch, checkpoint, threshold). Optionally the runner also records
the numbers most published MER code reports, where the best epoch is chosen per fold on the
TEST subject's accuracy; these are written separately as ``leaky_best_epoch_*`` for
comparison only.

This module is the orchestration (`run_loso`): it checks the run folder and resumes it
(`fmanet_hf.training.run_folder`, which also describes the folder's files), trains the
pending folds (`fmanet_hf.training.engine.run_fold`, in this process or in worker processes,
`fmanet_hf.training.fold_processes`), pools the results (`fmanet_hf.training.loso_results`)
and optionally trains the deployable model (`fmanet_hf.training.final_model`).

Reproducibility: each fold's seed is derived from (seed, test subject), each epoch's
shuffle from (fold seed, epoch) (`fmanet_hf.training.seeds`), and torch runs with
deterministic algorithms, so a fold's result does not depend on which folds ran before it:
a run killed and resumed gives the same predictions and metrics as an uninterrupted one.

Several folds at once, two different mechanisms:

- Distributed (Accelerate): under ``accelerate launch`` / ``torchrun`` every process takes
  part in every fold by default (data parallel: each global batch is split across processes
  and gradients are averaged so that the update equals a single-process step on the global
  batch); with ``fold_parallel=True`` process ``r`` of ``W`` trains the pending folds ``i``
  with ``i % W == r`` alone. Only the main process writes files, except that in
  fold-parallel mode each process writes its own folds' files.
- Fold workers (one ordinary process): ``fold_workers=N`` makes this process spawn N worker
  processes on this machine and train one fold in each at a time
  (`fmanet_hf.training.fold_processes`); this process writes every file.

And several folds as ONE computation: ``folds_at_once=N`` stacks the weights of N fold models
and trains them together (`fmanet_hf.training.fold_batch`), each on its own training subjects
with its own shuffles, augmentation, dropout noise, optimiser state and schedule. A batch is a
fixed group of consecutive folds of the full fold list (of the run's seeds, in
`run_loso_seeds`), trained again as a whole when any of its folds is pending, so a resumed
run repeats the uninterrupted one. ``folds_at_once=0`` (auto): every fold that fits in
memory at once on a GPU; on CPU, per fold (`CPU_AUTO_FOLDS_AT_ONCE`, measured in
docs/performance.md). 1: the per-fold loop.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from ..atomic import atomic_directory, atomic_write_json, remove_stale_temporaries
from ..errors import FMANetConfigError, FMANetError, RunDirectoryError
from ..output_paths import checked_output_path, ensure_output_folder
from .collate import PreparedTensors
from .engine import TrainingObserver, deterministic_torch, run_fold, without_transformers_progress_bars
from .final_model import find_prepared_processor, train_and_save_final_model
from .initialization import PretrainedInitialization, describe_initialization
from .fold_batch import FoldJob, batching_obstacle, resolve_folds_at_once, run_folds_batched
from .fold_processes import run_folds_in_workers
from .loso_results import format_summary_table, write_loso_results
from .model_config import build_model_config, config_to_dict, default_model_factory
from .run_folder import FOLDS_DIR, check_run_config, completed_folds, fold_file_stem, run_config_digest, software_versions
from .schedule import TrainingSchedule

logger = logging.getLogger(__name__)


def _broadcast(accelerator: Any, value: Any) -> Any:
    """``value`` of the main process, on every process."""
    if accelerator.num_processes <= 1:
        return value
    from accelerate.utils import broadcast_object_list

    holder = [value]
    broadcast_object_list(holder, from_process=0)
    return holder[0]



def run_loso(
    prepared_dataset: Any,
    *,
    model_config: Any = None,
    out_dir: str | os.PathLike,
    schedule: TrainingSchedule,
    seed: int = 0,
    record_leaky_best_epoch: bool = False,
    save_fold_models: bool = False,
    train_final_model: bool = False,
    processor: Any = None,
    fold_parallel: bool = False,
    progress: bool = True,
    print_summary: bool | None = None,
    accelerator: Any = None,
    observer: TrainingObserver | None = None,
    class_names: Sequence[str] | None = None,
    model_factory: Callable[[Any], torch.nn.Module] | None = None,
    init_from: str | os.PathLike | None = None,
    eval_batch_size: int = 64,
    fold_workers: int = 1,
    folds_at_once: int | str | None = None,
) -> dict[str, Any]:
    """Leave-one-subject-out training and evaluation; resumable; see the module docstring.

    Args:
        prepared_dataset: a prepared ``datasets.Dataset`` (`prepare_dataset`): columns
            ``pixel_values`` (2 * C, H, W), ``label_id``, ``subject`` and, optionally,
            ``sample_id`` and ``dataset``.
        model_config: `FMANetConfig` or dict of its arguments (default: the defaults at the
            data's image size); the classes are always the dataset's.
        out_dir: results folder (created; an existing one with the same settings resumes).
        schedule: the fixed `TrainingSchedule` of every fold and of the final model
            (its batch_size is global). Its ``epochs`` may be ``"auto"``: `auto_epochs` of
            the mean fold's training size (fixed before training, from the data's size alone).
        seed: master seed; each fold's is derived from (seed, test subject).
        record_leaky_best_epoch: also predict the test subject after every epoch and record
            the per-fold best epoch's numbers as ``leaky_best_epoch_*`` (not the protocol).
            The leak-free numbers are identical with and without it.
        save_fold_models: ``save_pretrained`` each fold's final model under ``folds/<subject>/``.
        train_final_model: after the folds, train one model on ALL subjects with the same
            schedule and save it with its processor under ``final_model/``.
        processor: the `FMANetImageProcessor` saved with the final model (default: rebuilt
            from the prepared data's cache manifest, when there is one).
        fold_parallel: under ``accelerate launch`` / ``torchrun`` (W > 1 processes), spread
            the folds over the existing processes instead of splitting every batch over them
            (process r trains pending folds i with i % W == r alone). Not `fold_workers`,
            which starts worker processes itself from one ordinary process.
        progress: progress bars (folds and epochs, main process).
        print_summary: print the summary table at the end (default: ``progress``).
        accelerator: an ``accelerate.Accelerator`` (default: ``Accelerator()``).
        observer: `TrainingObserver` hooks (tests, logging).
        class_names: override the dataset's class names (label_id order).
        init_from: a folder of pretrained FMANet weights (`fmanet-hf pretrain`) that every fold
            and the final model start from (`fmanet_hf.training.initialization`); recorded
            with its sha256 in the run's settings.
        model_factory: ``config -> model`` (default: a fresh `FMANetForImageClassification`);
            called under the fold's seed.
        eval_batch_size: batch size of prediction.
        fold_workers: single-process runs only: this process spawns this many worker
            processes on this machine and trains one fold in each at a time
            (`fmanet_hf.training.fold_processes`, started with ``spawn``: a calling script
            needs the usual ``if __name__ == "__main__":`` guard). On CPU each worker gets
            ``cores // fold_workers`` torch threads; on a GPU the workers share the device,
            which a single small fold leaves mostly idle. 1 (default): in this process.
            A fold's result depends only on its seed and thread count, so a run resumed
            with the same setting gives the same numbers.
        folds_at_once: train this many folds as one batched computation
            (`fmanet_hf.training.fold_batch`); 1: one fold after another; 0, ``"auto"`` or
            None (default): `resolve_folds_at_once` (as many as fit in memory on a GPU, per
            fold on CPU). Models that cannot be batched (BatchNorm) train per fold. With
            dropout 0 and no augmentation the results equal per-fold training up to float
            rounding; with dropout each fold draws its own masks from its own seed.

    Returns:
        The ``results.json`` dict (on every process): pooled ``accuracy``, ``uf1``, ``uar``,
        ``confusion_matrix``, ``per_fold``, ``per_fold_mean_*``, ``by_dataset``,
        ``leaky_best_epoch_*`` (if asked), ``settings``, ``versions``, ``wall_time_seconds``...

    Raises:
        RunDirectoryError: ``out_dir`` holds a run with other settings.
        FMANetConfigError: impossible schedule or a config that does not fit the data.
        DatasetError: the dataset lacks columns or has fewer than 2 subjects.
    """
    return run_loso_seeds(
        prepared_dataset,
        seeds=[seed],
        out_dirs=[out_dir],
        model_config=model_config,
        schedule=schedule,
        record_leaky_best_epoch=record_leaky_best_epoch,
        save_fold_models=save_fold_models,
        train_final_model=train_final_model,
        processor=processor,
        fold_parallel=fold_parallel,
        progress=progress,
        print_summary=print_summary,
        accelerator=accelerator,
        observer=observer,
        class_names=class_names,
        model_factory=model_factory,
        init_from=init_from,
        eval_batch_size=eval_batch_size,
        fold_workers=fold_workers,
        folds_at_once=folds_at_once,
    )[0]


@dataclass
class _Run:
    """One seed's LOSO run inside `run_loso_seeds`: its folder, settings and pending folds."""

    seed: int
    out: Path
    checked: dict[str, Any]
    digest: str
    completed: set[str] = field(default_factory=set)
    pending: list[tuple[int, Any]] = field(default_factory=list)
    started: float = 0.0


def _open_run(accelerator: Any, out: Path, checked: dict[str, Any], folds: Sequence[Any]) -> set[str]:
    """Check (or create) the run folder ``out`` for the settings ``checked``; its completed folds.

    The main process validates the folder and lists finished folds; the others follow its
    verdict (an error raised on one process alone would leave the rest waiting forever).
    """
    run_digest = run_config_digest(checked)
    info = {"versions": software_versions(), "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    verdict: Any = None
    main_error: FMANetError | None = None
    if accelerator.is_main_process:
        try:
            ensure_output_folder(out, "loso")
            # Temporaries of a killed earlier run (never read; only litter).
            for folder in (out, out / FOLDS_DIR):
                remove_stale_temporaries(folder)
            check_run_config(out, checked, info)
            completed = completed_folds(out, [f.test_subject for f in folds], run_digest)
            verdict = ("ok", sorted(completed))
        except FMANetError as error:
            main_error = error
            verdict = ("error", f"{type(error).__name__}: {error}")
    verdict = _broadcast(accelerator, verdict)
    if verdict[0] == "error":
        if main_error is not None:
            raise main_error
        raise RunDirectoryError(f"the main process refused the run folder: {verdict[1]}")
    return set(verdict[1])


def run_loso_seeds(
    prepared_dataset: Any,
    *,
    seeds: Sequence[int],
    out_dirs: Sequence[str | os.PathLike],
    model_config: Any = None,
    schedule: TrainingSchedule,
    record_leaky_best_epoch: bool = False,
    save_fold_models: bool = False,
    train_final_model: bool = False,
    processor: Any = None,
    fold_parallel: bool = False,
    progress: bool = True,
    print_summary: bool | None = None,
    accelerator: Any = None,
    observer: TrainingObserver | None = None,
    class_names: Sequence[str] | None = None,
    model_factory: Callable[[Any], torch.nn.Module] | None = None,
    init_from: str | os.PathLike | None = None,
    eval_batch_size: int = 64,
    fold_workers: int = 1,
    folds_at_once: int | str | None = None,
) -> list[dict[str, Any]]:
    """`run_loso` for several seeds of the same settings, one run folder per seed.

    Each seed's run is exactly the run `run_loso` would make with that seed in that folder
    (same files, same resume rules). With fold batching (``folds_at_once`` > 1, or auto on a
    GPU) the (seed, fold) pairs of all the runs are batched together, so the seeds of one
    ablation variant train as one computation (`fmanet-hf ablate --seeds`).

    Args:
        seeds: the master seeds, distinct.
        out_dirs: one results folder per seed.
        The others: as in `run_loso`.

    Returns:
        One ``results.json`` dict per seed, in order.
    """
    from ..data.subject_folds import check_loso_folds, loso_folds

    if not isinstance(schedule, TrainingSchedule):
        raise FMANetConfigError(
            f"schedule must be a TrainingSchedule (fmanet_hf.training.schedule), got {type(schedule).__name__}."
        )
    if len(seeds) != len(out_dirs) or not seeds:
        raise FMANetConfigError(f"give one output folder per seed (got {len(seeds)} seeds, {len(out_dirs)} folders).")
    if len({int(s) for s in seeds}) != len(seeds):
        raise FMANetConfigError(f"seeds must differ from each other, got {list(seeds)}.")
    started = time.perf_counter()
    if accelerator is None:
        from accelerate import Accelerator

        accelerator = Accelerator()
    custom_hooks = observer is not None or model_factory is not None
    observer = observer or TrainingObserver()
    initialization = None
    if init_from is not None:
        if model_factory is not None:
            raise FMANetConfigError("Give init_from or model_factory, not both (init_from builds its own factory).")
        initialization = describe_initialization(init_from)
        model_factory = PretrainedInitialization(str(init_from))
    model_factory = model_factory or default_model_factory
    print_summary = progress if print_summary is None else print_summary
    data = PreparedTensors.from_prepared(prepared_dataset, class_names)
    if schedule.augmentation != "none":
        prepared_with = processor if processor is not None else find_prepared_processor(prepared_dataset)
        data.vectors_in_pixels = getattr(prepared_with, "flow_normalization", None) == "none"
    config = build_model_config(model_config, data.class_names, data.image_size, int(data.pixel_values.shape[1]))
    folds = loso_folds(data.subjects)
    check_loso_folds(folds, data.subjects)
    epochs_rule = schedule.epochs_rule
    schedule = schedule.resolved(len(data) - len(data) / len(folds))
    world = int(accelerator.num_processes)
    rank = int(accelerator.process_index)
    is_main = bool(accelerator.is_main_process)
    if isinstance(fold_workers, bool) or not isinstance(fold_workers, int) or fold_workers < 1:
        raise FMANetConfigError(f"fold_workers must be an integer >= 1, got {fold_workers!r}.")
    elif fold_workers > 1 and (world > 1 or custom_hooks):
        raise FMANetConfigError(
            "fold_workers > 1 trains folds in separate worker processes: it needs a single (non-distributed) "
            "process and no observer or model_factory (those live in this process). Under `accelerate launch`, "
            "use fold_parallel=True to spread folds over the processes instead."
        )
    requested_at_once = _check_folds_at_once(folds_at_once)
    if requested_at_once > 1 and fold_workers > 1:
        raise FMANetConfigError(
            "folds_at_once > 1 and fold_workers > 1 are two ways of training several folds at once; choose one "
            "(folds_at_once batches them in this process, fold_workers spreads them over worker processes)."
        )

    data_digest = data.digest()
    runs: list[_Run] = []
    for run_seed, run_out in zip(seeds, out_dirs):
        checked = {
            "model_config": config_to_dict(config),
            "schedule": schedule.to_dict(),
            "seed": int(run_seed),
            "data": {
                "num_samples": len(data),
                "subjects": sorted(set(data.subjects)),
                "class_names": data.class_names,
                "digest": data_digest,
            },
            "record_leaky_best_epoch": bool(record_leaky_best_epoch),
            "save_fold_models": bool(save_fold_models),
        }
        if initialization is not None:
            # Only when used: runs without it keep their digest (and stay resumable).
            checked["init_from"] = initialization
        run = _Run(
            seed=int(run_seed), out=checked_output_path(run_out, flag="--out"), checked=checked,
            digest=run_config_digest(checked),
        )
        run.completed = _open_run(accelerator, run.out, checked, folds)
        run.pending = [(index, fold) for index, fold in enumerate(folds) if fold.test_subject not in run.completed]
        if run.completed and is_main:
            logger.info("Resuming %s: %d of %d folds already complete.", run.out, len(run.completed), len(folds))
        runs.append(run)

    data_parallel = not (fold_parallel and world > 1)
    writes_folds = is_main if data_parallel else True
    # (run, fold index, fold) of every fold this process trains, seed by seed.
    mine = [(run, index, fold) for run in runs for index, fold in (run.pending[rank::world] if not data_parallel else run.pending)]
    at_once = 1
    # Batches are fixed groups of ALL the runs' folds (single process), so their size must not
    # depend on how many are pending: a resumed run then batches as the uninterrupted one did.
    batchable_folds = len(folds) * len(runs) if data_parallel else len(mine)
    if (world == 1 or not data_parallel) and fold_workers == 1 and mine and batchable_folds > 1:
        with torch.random.fork_rng(devices=[]):
            probe_model = model_factory(config)
        obstacle = batching_obstacle(probe_model)
        if obstacle and requested_at_once > 1:
            logger.warning("Training folds one by one: %s.", obstacle)
        if not obstacle:
            at_once = resolve_folds_at_once(
                requested_at_once, device=accelerator.device, model=probe_model,
                sample=data.pixel_values[:1], batch_size=int(schedule.batch_size), folds=batchable_folds,
            )
        del probe_model
    from tqdm.auto import tqdm

    total_completed = sum(len(run.completed) for run in runs)
    fold_bar = tqdm(
        # In fold-parallel mode the main process's bar counts its own folds only.
        total=len(folds) * len(runs) if data_parallel else total_completed + len(mine),
        initial=total_completed,
        desc=f"LOSO folds ({world} proc{', fold-parallel' if not data_parallel else ''}"
        f"{f', {at_once} at once' if at_once > 1 else ''})",
        disable=not (progress and is_main),
        dynamic_ncols=True,
    )

    def finish_fold(run: _Run, fold: Any, record: dict[str, Any], model: torch.nn.Module | None) -> None:
        if writes_folds:
            stem = fold_file_stem(fold.test_subject)
            if save_fold_models and model is not None:
                with atomic_directory(run.out / FOLDS_DIR / stem) as staging, without_transformers_progress_bars():
                    model.save_pretrained(staging)
            # Written last: its presence is what marks the fold complete.
            atomic_write_json(run.out / FOLDS_DIR / f"{stem}.json", record)
        observer.on_fold_end(fold.test_subject, record)
        correct = sum(int(a == b) for a, b in zip(record["test"]["y_true"], record["test"]["y_pred"]))
        fold_bar.update(1)
        fold_bar.set_postfix(last=f"{fold.test_subject} {correct}/{record['n_test']}")

    with deterministic_torch():
        if at_once > 1:
            _train_batched(
                runs, folds, mine, at_once, data_parallel=data_parallel, data=data, config=config, schedule=schedule,
                device=accelerator.device, record_leaky_best_epoch=record_leaky_best_epoch, observer=observer,
                model_factory=model_factory, eval_batch_size=eval_batch_size, progress=progress and is_main,
                finish_fold=finish_fold,
            )
        elif fold_workers > 1 and len(mine) > 1:
            fold_bar.set_description(f"LOSO folds ({min(fold_workers, len(mine))} fold workers)")
            for run in runs:
                run_mine = [(index, fold) for owner, index, fold in mine if owner is run]
                for fold_index, fold, record in run_folds_in_workers(
                    run_mine,
                    workers=fold_workers,
                    data=data,
                    config=config,
                    schedule=schedule,
                    seed=run.seed,
                    run_digest=run.digest,
                    record_leaky_best_epoch=record_leaky_best_epoch,
                    eval_batch_size=eval_batch_size,
                    folds_dir=run.out / FOLDS_DIR if save_fold_models else None,
                    device=str(accelerator.device),
                    model_factory=model_factory,
                ):
                    # The worker saved the fold model itself.
                    finish_fold(run, fold, record, None)
        else:
            for run, fold_index, fold in mine:
                record, model = run_fold(
                    subject=fold.test_subject,
                    fold_index=fold_index,
                    train_indices=fold.train_indices,
                    test_indices=fold.test_indices,
                    data=data,
                    config=config,
                    schedule=schedule,
                    seed=run.seed,
                    run_digest=run.digest,
                    accelerator=accelerator,
                    data_parallel=data_parallel,
                    record_leaky_best_epoch=record_leaky_best_epoch,
                    observer=observer,
                    model_factory=model_factory,
                    eval_batch_size=eval_batch_size,
                    progress=progress and is_main,
                )
                finish_fold(run, fold, record, model)
                del model
        fold_bar.close()
        accelerator.wait_for_everyone()

        final_models: dict[int, Any] = {}
        for run in runs:
            final_models[run.seed] = None
            if train_final_model:
                final_models[run.seed] = train_and_save_final_model(
                    out=run.out,
                    data=data,
                    config=config,
                    schedule=schedule,
                    seed=run.seed,
                    accelerator=accelerator,
                    observer=observer,
                    model_factory=model_factory,
                    processor=processor if processor is not None else find_prepared_processor(prepared_dataset),
                    run_digest=run.digest,
                    progress=progress and is_main,
                )
                accelerator.wait_for_everyone()

    all_results = []
    wall_time = time.perf_counter() - started
    for run in runs:
        results: Any = None
        if is_main:
            records_by_subject = completed_folds(run.out, [f.test_subject for f in folds], run.digest)
            missing = [f.test_subject for f in folds if f.test_subject not in records_by_subject]
            if missing:
                results = ("error", f"folds {missing} have no result file in {run.out / FOLDS_DIR}; in fold-parallel "
                           "mode across machines the output folder must be on a shared file system.")
            else:
                records = [records_by_subject[f.test_subject] for f in folds]
                extra = {
                    "settings": {
                        **run.checked,
                        "run_config_digest": run.digest,
                        "world_size": world,
                        "fold_parallel": not data_parallel,
                        "fold_workers": int(fold_workers),
                        "folds_at_once": int(at_once),
                        "seeds_trained_together": len(runs),
                        "epochs_rule": epochs_rule,
                        "device": str(accelerator.device),
                    },
                    "seed": int(run.seed),
                    "versions": software_versions(),
                    # Seeds trained together share one wall time: each run reports its share.
                    "wall_time_seconds": round(wall_time / len(runs), 3),
                    "fold_seconds_total": round(sum(r["seconds"] for r in records), 3),
                    "folds_resumed": len(run.completed),
                    "final_model": final_models[run.seed],
                }
                results = ("ok", write_loso_results(run.out, records, data.class_names, extra, record_leaky_best_epoch))
        results = _broadcast(accelerator, results)
        if results[0] == "error":
            raise RunDirectoryError(results[1])
        results = results[1]
        if print_summary and is_main:
            print(format_summary_table(results))
            print(
                f"\nLOSO over {results['num_folds']} subjects, {results['num_samples']} samples: pooled "
                f"accuracy {results['accuracy']:.4f}, UF1 {results['uf1']:.4f}, UAR {results['uar']:.4f} "
                f"({results['wall_time_seconds']:.1f} s; results in {run.out})"
            )
        all_results.append(results)
    return all_results


def _check_folds_at_once(value: Any) -> int:
    """``folds_at_once`` as an integer (0 = auto), or `FMANetConfigError`."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "auto"):
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise FMANetConfigError(f"folds_at_once must be an integer >= 0 (0 or 'auto': automatic), got {value!r}.")
    return value


def _train_batched(
    runs: Sequence[_Run],
    folds: Sequence[Any],
    mine: Sequence[tuple[_Run, int, Any]],
    at_once: int,
    *,
    data_parallel: bool,
    finish_fold: Callable[[_Run, Any, dict[str, Any], torch.nn.Module | None], None],
    **fold_settings: Any,
) -> None:
    """Train the folds ``mine`` in batches of ``at_once`` (see the module docstring).

    In a single process a batch is a fixed group of consecutive (seed, fold) pairs of ALL the
    runs' folds, trained whole when any of its folds is pending (only those are written), so a
    resumed run batches exactly as the uninterrupted one did. In fold-parallel mode the batches
    group this process's own folds.
    """
    pending = {(id(run), index) for run, index, _ in mine}
    everything = [(run, index, fold) for run in runs for index, fold in enumerate(folds)] if data_parallel else list(mine)
    groups = [everything[i : i + at_once] for i in range(0, len(everything), at_once)]
    for group in groups:
        if not any((id(run), index) in pending for run, index, _ in group):
            continue
        jobs = [
            FoldJob(
                subject=fold.test_subject, fold_index=index, train_indices=fold.train_indices,
                test_indices=fold.test_indices, seed=run.seed, run_digest=run.digest, observer=fold_settings["observer"],
            )
            for run, index, fold in group
        ]
        settings = {key: value for key, value in fold_settings.items() if key != "observer"}
        results = run_folds_batched(jobs, **settings)
        for (run, index, fold), (record, model) in zip(group, results):
            if (id(run), index) in pending:
                finish_fold(run, fold, record, model)


__all__ = ["run_loso", "run_loso_seeds"]
