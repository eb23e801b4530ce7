"""One LOSO fold's record: what ``folds/<subject>.json`` holds, with its leak check and the
(leaky, labelled) best-epoch entry.

`fold_record` is called by every way of training a fold (`fmanet_hf.training.engine.run_fold`,
the fold workers, fold batching); it refuses to write a record whose optimiser saw a held-out
sample (`LeakageError`). `leaky_best_epoch` is the entry ``record_leaky_best_epoch`` adds.
"""

from __future__ import annotations

import hashlib
from typing import Any, Sequence

import numpy as np

from ..errors import LeakageError
from .collate import PreparedTensors
from .run_folder import RESULTS_FORMAT_VERSION


def fold_record(
    *,
    subject: str,
    fold_index: int,
    seed_of_fold: int,
    run_digest: str,
    data: PreparedTensors,
    train_indices: np.ndarray,
    test_indices: np.ndarray,
    final_probabilities: np.ndarray,
    log: Any,  # an engine.TrainingLog
    epochs: int,
    leaky: dict[str, Any] | None,
    seconds: float,
    world_size: int,
) -> dict[str, Any]:
    """The fold's record, as written to ``folds/<subject>.json``; raises `LeakageError` when a
    held-out sample reached the optimiser (``log.optimizer_sample_indices``)."""
    seen = set(log.optimizer_sample_indices)
    test_set = set(test_indices.tolist())
    leaked = sorted(seen & test_set)
    if leaked:
        raise LeakageError(
            f"fold {subject!r}: test samples {[data.sample_ids[i] for i in leaked[:5]]} reached the optimiser. "
            "This is a bug in the LOSO runner; please report it."
        )
    seen_ids = sorted(data.sample_ids[i] for i in seen)
    return {
        "format_version": RESULTS_FORMAT_VERSION,
        "subject": subject,
        "fold_index": fold_index,
        "fold_seed": seed_of_fold,
        "run_config_digest": run_digest,
        "n_train": int(train_indices.size),
        "n_test": int(test_indices.size),
        "scored_epoch": epochs,
        "test": {
            "sample_ids": [data.sample_ids[i] for i in test_indices.tolist()],
            "datasets": [data.datasets[i] for i in test_indices.tolist()],
            "y_true": [int(data.labels[i]) for i in test_indices.tolist()],
            "y_pred": [int(row.argmax()) for row in final_probabilities],
            "probabilities": [[float(p) for p in row] for row in final_probabilities],
        },
        "train_loss_per_epoch": [float(v) for v in log.epoch_losses],
        "optimizer_steps": log.steps,
        "leak_check": {
            "optimizer_samples": len(log.optimizer_sample_indices),
            "optimizer_unique_samples": len(seen),
            "optimizer_sample_ids_sha256": hashlib.sha256("\n".join(seen_ids).encode("utf-8")).hexdigest()[:16],
            "test_samples_seen_by_optimizer": 0,
            "test_predictions_used_for_choices": bool(leaky),
        },
        "leaky_best_epoch": leaky,
        "seconds": round(float(seconds), 3),
        "world_size": world_size,
    }


def leaky_best_epoch(per_epoch_probabilities: Sequence[np.ndarray], test_labels: np.ndarray) -> dict[str, Any]:
    """The ``leaky_best_epoch`` entry of a fold record: the epoch with the best TEST accuracy
    (the earliest among equals, as ``if acc > best`` code picks it) and its predictions.

    Args:
        per_epoch_probabilities: E arrays (n_test, C), the held-out predictions after each epoch.
        test_labels: (n_test,) true classes.
    """
    correct = [int((p.argmax(axis=1) == test_labels).sum()) for p in per_epoch_probabilities]
    best_epoch = int(np.argmax(correct)) + 1
    best = per_epoch_probabilities[best_epoch - 1]
    return {
        "note": "chosen on the TEST subject's accuracy: leaky, for comparison only",
        "epoch": best_epoch,
        "y_pred": [int(row.argmax()) for row in best],
        "probabilities": [[float(p) for p in row] for row in best],
        "test_accuracy_per_epoch": [c / len(test_labels) for c in correct],
    }


__all__ = ["fold_record", "leaky_best_epoch"]
