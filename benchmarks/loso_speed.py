"""LOSO training speed: fold-batched training against the per-fold loop and fold workers.

    # MEGC-size SynthME (68 subjects, 408 clips), prepared once (fmanet-hf prepare ... --cache-dir CACHE):
    python benchmarks/loso_speed.py --data synthme68 --cache-dir CACHE --seeds 0,1,2 \\
        --modes per_fold,fold_workers_2,batched_17 --json benchmarks/results/loso-speed-synthme68-2core.json
    # the same on a GPU machine (no OpenCV-contrib there: export the inputs first, see gpu_check.py):
    python benchmarks/loso_speed.py --npz .gpu/megc_size.npz --device cuda --modes per_fold,batched_auto
    # what CI runs (tiny, untimed):
    python benchmarks/loso_speed.py --quick --json /tmp/x.json

Each (seed, mode) trains the SAME folds with the same schedule (``--epochs``, default
``auto`` as `run_loso` resolves it for the whole set) and records its wall time, the load
average before and after, and the pooled accuracy / UF1 / UAR of those folds. Modes:

- ``per_fold``: the in-process loop of `run_loso` (`run_fold` one fold after another), with
  ``--threads`` torch threads (default: all cores, what ``fmanet-hf loso`` uses);
- ``fold_workers_N``: N spawned worker processes, one fold each at a time
  (`run_folds_in_workers`, ``cores // N`` threads each);
- ``batched_N``: N folds at a time as one vmapped computation (`run_folds_batched`),
  ``--threads`` threads; ``batched_auto``: N from `resolve_folds_at_once` (on CPU that is
  the per-fold loop; on CUDA as many as fit in memory), ``batched_all``: every fold at once;
- any mode with the suffix ``_bf16`` (``per_fold_bf16``, ``batched_4_bf16``...): the same with
  ``TrainingSchedule(precision="bf16")``, bfloat16 autocast of the forward passes
  (`fmanet_hf.training.precision`).

The references of the speed-up figures are the fp32 modes that train fold by fold
(``per_fold``, ``fold_workers_N``); every other mode gets its wall and CPU ratio against the
faster of them.

Modes run interleaved (seed by seed, the order rotated each seed), so a contended machine
slows each mode alike. Each run also records its CPU time (this process and its fold workers):
on a machine shared with other jobs the CPU seconds of one-thread modes say what the wall time
would be on a quiet one (``--threads 1``; two-thread torch under contention burns CPU waiting). ``--every K`` trains every K-th fold only (each still on all the other
subjects: the same shape of work per fold); the JSON says which folds. The default model has
dropout 0.3, so the batched folds draw other dropout masks than the per-fold loop: compare
their pooled metrics with the spread over the seeds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def _cpu_seconds() -> float:
    """CPU time (user + system) of this process and of its finished children (fold workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _tiny_dataset():
    """6 subjects x 3 clips of 16 x 16 random motion (what --quick trains; no preparation)."""
    import numpy as np
    from datasets import Array3D, ClassLabel, Dataset, Features, Value

    rng = np.random.default_rng(0)
    rows = {"pixel_values": [], "label_id": [], "subject": [], "sample_id": [], "dataset": []}
    for subject in range(6):
        for clip in range(3):
            label = (subject + clip) % 3
            pixels = rng.normal(0, 0.3, size=(6, 16, 16)).astype("float32")
            pixels[2, 4 * label : 4 * label + 4] += 1.5
            rows["pixel_values"].append(pixels)
            rows["label_id"].append(label)
            rows["subject"].append(f"s{subject}")
            rows["sample_id"].append(f"toy/s{subject}/c{clip}")
            rows["dataset"].append("toy")
    features = Features(
        {
            "pixel_values": Array3D(shape=(6, 16, 16), dtype="float32"),
            "label_id": ClassLabel(names=["negative", "positive", "surprise"]),
            "subject": Value("string"),
            "sample_id": Value("string"),
            "dataset": Value("string"),
        }
    )
    data = Dataset.from_dict(rows, features=features)
    return data.with_format("torch", columns=["pixel_values", "label_id"], output_all_columns=True)


def _prepared(args: argparse.Namespace):
    if args.quick:
        return _tiny_dataset()
    if args.npz:
        from gpu_check import load_dataset

        return load_dataset(args.npz, subjects=None, tiny=False)
    from fmanet_hf import FMANetImageProcessor
    from fmanet_hf.data.prepare import prepare_dataset
    from fmanet_hf.data.registry import load_dataset_by_name

    raw = load_dataset_by_name("synthme", str(args.data))
    return prepare_dataset(raw, FMANetImageProcessor(), Path(args.cache_dir) / "prepared", progress=False)


BF16_SUFFIX = "_bf16"


def _is_reference(mode: str) -> bool:
    """fp32, fold by fold: what issue 16's speed-ups are measured against."""
    return not mode.startswith("batched") and not mode.endswith(BF16_SUFFIX)


def _train(mode: str, folds, *, data, config, schedule, seed: int, device, threads: int) -> tuple[list[dict], int]:
    """Train ``folds`` ((index, LosoFold) pairs) in ``mode``; their records and the batch size used."""
    import dataclasses

    import torch

    if mode.endswith(BF16_SUFFIX):
        mode, schedule = mode[: -len(BF16_SUFFIX)], dataclasses.replace(schedule, precision="bf16")

    from fmanet_hf.training.engine import TrainingObserver, deterministic_torch, run_fold
    from fmanet_hf.training.fold_batch import FoldJob, resolve_folds_at_once, run_folds_batched
    from fmanet_hf.training.fold_processes import run_folds_in_workers
    from fmanet_hf.training.model_config import default_model_factory

    torch.set_num_threads(threads)
    records: list[dict] = []
    at_once = 1
    if mode == "batched_auto" and device.type != "cuda":
        # What run_loso does with folds_at_once="auto" here: resolve, and 1 means the per-fold loop.
        if resolve_folds_at_once(0, device=device, model=default_model_factory(config), sample=data.pixel_values[:1],
                                 batch_size=int(schedule.batch_size), folds=len(folds)) == 1:
            mode = "per_fold"
    with deterministic_torch():
        if mode == "per_fold":
            accelerator = SimpleNamespace(device=device, num_processes=1, process_index=0, is_main_process=True)
            for index, fold in folds:
                record, _ = run_fold(
                    subject=fold.test_subject, fold_index=index, train_indices=fold.train_indices,
                    test_indices=fold.test_indices, data=data, config=config, schedule=schedule, seed=seed,
                    run_digest="benchmark", accelerator=accelerator, data_parallel=False,
                    record_leaky_best_epoch=False, observer=TrainingObserver(), model_factory=default_model_factory,
                    eval_batch_size=64, progress=False,
                )
                records.append(record)
        elif mode.startswith("fold_workers_"):
            workers = int(mode.rsplit("_", 1)[1])
            at_once = workers
            for _, _, record in run_folds_in_workers(
                folds, workers=workers, data=data, config=config, schedule=schedule, seed=seed, run_digest="benchmark",
                record_leaky_best_epoch=False, eval_batch_size=64, folds_dir=None, device=str(device),
            ):
                records.append(record)
        elif mode.startswith("batched_"):
            size = mode.split("_", 1)[1]
            if size == "all":
                at_once = len(folds)
            else:
                at_once = resolve_folds_at_once(
                    0 if size == "auto" else int(size), device=device, model=default_model_factory(config),
                    sample=data.pixel_values[:1], batch_size=int(schedule.batch_size), folds=len(folds),
                )
            for start in range(0, len(folds), at_once):
                group = folds[start : start + at_once]
                jobs = [
                    FoldJob(
                        subject=fold.test_subject, fold_index=index, train_indices=fold.train_indices,
                        test_indices=fold.test_indices, seed=seed, run_digest="benchmark",
                    )
                    for index, fold in group
                ]
                records += [
                    record
                    for record, _ in run_folds_batched(
                        jobs, data=data, config=config, schedule=schedule, device=device, record_leaky_best_epoch=False,
                        model_factory=default_model_factory, eval_batch_size=64,
                    )
                ]
        else:
            raise SystemExit(f"unknown mode {mode!r}")
    if device.type == "cuda":
        torch.cuda.synchronize()
    return records, at_once


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data", type=Path, help="a SynthME folder (prepared with --cache-dir)")
    source.add_argument("--npz", type=Path, help="inputs exported by gpu_check.py --export-from")
    source.add_argument("--quick", action="store_true", help="tiny random set, 1 epoch, tiny model (CI smoke run)")
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "fmanet-hf")
    parser.add_argument("--modes", default="per_fold,fold_workers_2,batched_all")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--every", type=int, default=1, help="train every K-th fold only (default 1: all)")
    parser.add_argument("--epochs", default="auto")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads of the in-process modes")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    if not (args.quick or args.data or args.npz):
        parser.error("give --data, --npz or --quick")

    import torch

    from fmanet_hf.data.subject_folds import loso_folds
    from fmanet_hf.training.collate import PreparedTensors
    from fmanet_hf.training.metrics import pooled_loso_metrics
    from fmanet_hf.training.model_config import build_model_config
    from fmanet_hf.training.schedule import TrainingSchedule

    device = torch.device(args.device)
    prepared = _prepared(args)
    data = PreparedTensors.from_prepared(prepared)
    model_config = None
    if args.quick:
        model_config = {"image_size": 16, "encoder_hidden_size": 8, "encoder_depth": 1, "hidden_sizes": [8, 16],
                        "depths": [1, 1], "num_groups": 4}
    config = build_model_config(model_config, data.class_names, data.image_size, int(data.pixel_values.shape[1]))
    all_folds = loso_folds(data.subjects)
    epochs = 1 if args.quick else (args.epochs if args.epochs == "auto" else int(args.epochs))
    schedule = TrainingSchedule(epochs=epochs, batch_size=16, learning_rate=2e-3).resolved(
        len(data) - len(data) / len(all_folds)
    )
    folds = [(i, f) for i, f in enumerate(all_folds) if i % max(1, args.every) == 0]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    seeds = [int(s) for s in args.seeds.split(",")]
    result = {
        "format_version": 1,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git_commit": _git_commit(),
        "machine": {"platform": platform.platform(), "cores": os.cpu_count(), "device": str(device),
                    "torch": torch.__version__, "threads_in_process": args.threads,
                    "cuda": torch.cuda.get_device_name(device) if device.type == "cuda" else None},
        "data": {"samples": len(data), "subjects": len(all_folds), "folds_trained": [f.test_subject for _, f in folds],
                 "image_size": list(data.image_size), "quick": bool(args.quick)},
        "schedule": schedule.to_dict(),
        "modes": modes,
        "seeds": seeds,
        "runs": [],
    }

    def write() -> None:
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(result, indent=2) + "\n")

    for position, seed in enumerate(seeds):
        rotation = position % len(modes)
        for mode in modes[rotation:] + modes[:rotation]:
            load_before = _load()
            cpu_started = _cpu_seconds()
            started = time.perf_counter()
            records, at_once = _train(
                mode, folds, data=data, config=config, schedule=schedule, seed=seed, device=device, threads=args.threads
            )
            seconds = time.perf_counter() - started
            cpu_seconds = _cpu_seconds() - cpu_started
            records.sort(key=lambda r: r["fold_index"])
            pooled = pooled_loso_metrics(
                [{"subject": r["subject"], "y_true": r["test"]["y_true"], "y_pred": r["test"]["y_pred"]} for r in records],
                class_names=data.class_names,
            )
            run = {
                "mode": mode, "seed": seed, "folds_at_once": at_once, "seconds": round(seconds, 2),
                "cpu_seconds": round(cpu_seconds, 2), "load_before": load_before, "load_after": _load(), "folds": len(records),
                "accuracy": pooled["accuracy"], "uf1": pooled["uf1"], "uar": pooled["uar"],
                "y_pred": [p for r in records for p in r["test"]["y_pred"]],
            }
            result["runs"].append(run)
            print(f"seed {seed} {mode:>16}: {seconds:8.1f} s wall, {cpu_seconds:8.1f} s CPU  UF1 {run['uf1']:.4f}  load {load_before} -> {run['load_after']}",
                  flush=True)
            write()

    summary = {}
    for mode in modes:
        runs = [r for r in result["runs"] if r["mode"] == mode]
        summary[mode] = {
            "seconds_total": round(sum(r["seconds"] for r in runs), 2),
            "seconds_per_seed": [r["seconds"] for r in runs],
            "cpu_seconds_total": round(sum(r["cpu_seconds"] for r in runs), 2),
            "uf1_mean": statistics.fmean(r["uf1"] for r in runs),
            "uf1_std": statistics.stdev(r["uf1"] for r in runs) if len(runs) > 1 else 0.0,
            "uf1_per_seed": [r["uf1"] for r in runs],
        }
    fastest_reference = min(
        (m for m in modes if _is_reference(m)), key=lambda m: summary[m]["seconds_total"], default=None
    )
    for mode in modes:
        if fastest_reference and not _is_reference(mode):
            summary[mode]["speedup_vs_fastest_reference"] = round(
                summary[fastest_reference]["seconds_total"] / summary[mode]["seconds_total"], 3
            )
            summary[mode]["cpu_ratio_vs_fastest_reference"] = round(
                summary[fastest_reference]["cpu_seconds_total"] / max(summary[mode]["cpu_seconds_total"], 1e-9), 3
            )
    result["summary"] = summary
    result["fastest_reference"] = fastest_reference
    write()
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
