"""What the shorter default schedule costs in UF1: the same LOSO folds at several epoch counts.

    python benchmarks/loso_schedule_cost.py --data SYNTHME_ROOT --epochs 5,15 --every 4 \
        --json benchmarks/results/schedule-cost.json

Trains every ``--every``-th LOSO fold of the prepared set (each on ALL other subjects, as the
full run does) once per epoch count, with the seeds, optimiser and cosine schedule of
`run_loso`, and pools each schedule's predictions into UF1/UAR over those folds. Only the
number of epochs differs between the rows. The pooled figures are those of the subset of
folds, not of the full LOSO; the full run's figure is in docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="SynthME root (CASME II layout), prepared with default settings")
    parser.add_argument("--cache-dir", default=os.path.expanduser("~/.cache/fmanet-hf/prepared"))
    parser.add_argument("--epochs", default="5,15", help="comma-separated epoch counts")
    parser.add_argument("--every", type=int, default=4, help="train every k-th fold (sorted subject order)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", required=True, type=Path)
    args = parser.parse_args()

    from types import SimpleNamespace

    import torch

    from fmanet_hf.data.registry import load_dataset_by_name
    from fmanet_hf.data.subject_folds import loso_folds
    from fmanet_hf.data.prepare import prepare_dataset
    from fmanet_hf.image_processing_fmanet import FMANetImageProcessor
    from fmanet_hf.training.collate import PreparedTensors
    from fmanet_hf.commands.common_flags import DEFAULT_BATCH_SIZE, DEFAULT_LEARNING_RATE, DEFAULT_WEIGHT_DECAY
    from fmanet_hf.training.engine import TrainingObserver, deterministic_torch, run_fold
    from fmanet_hf.training.model_config import build_model_config, default_model_factory
    from fmanet_hf.training.schedule import TrainingSchedule
    from fmanet_hf.training.metrics import pooled_loso_metrics

    prepared = prepare_dataset(load_dataset_by_name("synthme", args.data, None), FMANetImageProcessor(), args.cache_dir)
    data = PreparedTensors.from_prepared(prepared)
    config = build_model_config(None, data.class_names, data.image_size, int(data.pixel_values.shape[1]))
    folds = loso_folds(data.subjects)[:: args.every]
    accelerator = SimpleNamespace(device=torch.device("cpu"), is_main_process=True, num_processes=1, process_index=0)
    rows = []
    for epochs in [int(e) for e in args.epochs.split(",")]:
        schedule = TrainingSchedule(
            epochs=epochs, batch_size=DEFAULT_BATCH_SIZE, learning_rate=DEFAULT_LEARNING_RATE, weight_decay=DEFAULT_WEIGHT_DECAY
        )
        started = time.perf_counter()
        records = []
        with deterministic_torch():
            for index, fold in enumerate(folds):
                record, _ = run_fold(
                    subject=fold.test_subject, fold_index=index, train_indices=fold.train_indices,
                    test_indices=fold.test_indices, data=data, config=config, schedule=schedule, seed=args.seed,
                    run_digest="schedule-cost", accelerator=accelerator, data_parallel=False,
                    record_leaky_best_epoch=False, observer=TrainingObserver(), model_factory=default_model_factory,
                    eval_batch_size=64, progress=False,
                )
                records.append({"subject": record["subject"], "y_true": record["test"]["y_true"], "y_pred": record["test"]["y_pred"]})
        metrics = pooled_loso_metrics(records, class_names=data.class_names)
        rows.append(
            {
                "epochs": epochs,
                "folds": len(folds),
                "samples": sum(len(r["y_true"]) for r in records),
                "accuracy": metrics["accuracy"],
                "uf1": metrics["uf1"],
                "uar": metrics["uar"],
                "seconds": round(time.perf_counter() - started, 1),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    payload = {"command": " ".join(sys.argv), "torch_threads": torch.get_num_threads(), "rows": rows}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    temporary = args.json.with_name(args.json.name + ".tmp")
    temporary.write_text(json.dumps(payload, indent=1) + "\n")
    os.replace(temporary, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
