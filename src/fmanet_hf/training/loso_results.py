"""The pooled results of a LOSO run: ``results.json``, ``predictions.jsonl``, the confusion
matrix and the summary table, from the run's fold records.

The protocol's numbers are pooled over all folds' final-epoch predictions
(`pooled_loso_metrics`); the leaky best-epoch numbers, when recorded, are written beside
them under ``leaky_best_epoch_*`` and labelled as such.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..atomic import atomic_write_json, atomic_write_text
from ..errors import RunDirectoryError
from .run_folder import CONFUSION_MATRIX_NAME, PREDICTIONS_NAME, RESULTS_FORMAT_VERSION, RESULTS_NAME

LEAKY_NOTE = (
    "LEAKY: for each fold the epoch with the highest accuracy ON THE TEST SUBJECT was chosen "
    "(as much published MER code does). This uses test labels for model selection and "
    "overestimates performance; it is recorded only to compare with such papers. The "
    "protocol's numbers are the top-level accuracy/uf1/uar (final epoch, leak-free)."
)


def write_loso_results(
    out_dir: Path,
    records: Sequence[Mapping[str, Any]],
    class_names: Sequence[str],
    extra: dict[str, Any],
    record_leaky_best_epoch: bool,
) -> dict[str, Any]:
    """Pool the fold ``records`` (in fold order) and write ``predictions.jsonl``,
    ``confusion_matrix.png`` and ``results.json`` (the pooled metrics plus ``extra``).

    Returns:
        The ``results.json`` dict.
    """
    from .metrics import plot_confusion_matrix, pooled_loso_metrics

    from .engine import check_finite_probabilities

    num_classes = len(class_names)
    for r in records:
        # A fold record read back from disk (a resumed run) is checked too: NaN is never pooled.
        check_finite_probabilities(np.asarray(r["test"]["probabilities"], dtype=np.float64), r["subject"])
    folds = [
        {"subject": r["subject"], "y_true": r["test"]["y_true"], "y_pred": r["test"]["y_pred"], "dataset": r["test"]["datasets"]}
        for r in records
    ]
    results: dict[str, Any] = {"format_version": RESULTS_FORMAT_VERSION}
    results.update(pooled_loso_metrics(folds, num_classes=num_classes, class_names=class_names))
    results["scored_epoch"] = "final epoch of a fixed schedule (no test-subject data used for any choice)"
    results["fold_details"] = [
        {
            "subject": r["subject"],
            "n_train": r["n_train"],
            "n_test": r["n_test"],
            "fold_seed": r["fold_seed"],
            "final_train_loss": r["train_loss_per_epoch"][-1] if r["train_loss_per_epoch"] else None,
            "seconds": r["seconds"],
        }
        for r in records
    ]
    if record_leaky_best_epoch:
        leaky_folds = [
            {"subject": r["subject"], "y_true": r["test"]["y_true"], "y_pred": r["leaky_best_epoch"]["y_pred"], "dataset": r["test"]["datasets"]}
            for r in records
        ]
        leaky = pooled_loso_metrics(leaky_folds, num_classes=num_classes, class_names=class_names)
        for name in ("accuracy", "uf1", "uar"):
            results[f"leaky_best_epoch_{name}"] = leaky[name]
        results["leaky_best_epoch"] = {
            "note": LEAKY_NOTE,
            "epochs_chosen": {r["subject"]: r["leaky_best_epoch"]["epoch"] for r in records},
            "metrics": leaky,
        }
    results.update(extra)

    lines = []
    for r in records:
        test = r["test"]
        for position, sample_id in enumerate(test["sample_ids"]):
            true_id, predicted_id = test["y_true"][position], test["y_pred"][position]
            line = {
                "sample_id": sample_id,
                "subject": r["subject"],
                "dataset": test["datasets"][position],
                "true": class_names[true_id],
                "predicted": class_names[predicted_id],
                "true_id": true_id,
                "predicted_id": predicted_id,
                "probabilities": dict(zip(class_names, test["probabilities"][position])),
            }
            if record_leaky_best_epoch:
                line["leaky_best_epoch_predicted"] = class_names[r["leaky_best_epoch"]["y_pred"][position]]
            lines.append(json.dumps(line, sort_keys=False))
    atomic_write_text(out_dir / PREDICTIONS_NAME, "\n".join(lines) + "\n")
    plot_confusion_matrix(
        results["confusion_matrix"],
        list(class_names),
        out_dir / CONFUSION_MATRIX_NAME,
        title=f"LOSO, {len(records)} folds: UF1 {results['uf1']:.3f}, UAR {results['uar']:.3f}",
    )
    atomic_write_json(out_dir / RESULTS_NAME, results)
    return results


def format_summary_table(results: Mapping[str, Any]) -> str:
    """A plain-text table of a LOSO result: one row per fold, then the pooled numbers."""
    header = ["fold", "n_test", "accuracy", "uf1", "uar"]
    rows = [
        [str(f["subject"]), str(f["num_samples"]), f"{f['accuracy']:.3f}", f"{f['uf1']:.3f}", f"{f['uar']:.3f}"]
        for f in results.get("per_fold", [])
    ]
    footer = [["POOLED (protocol)", str(results["num_samples"]), f"{results['accuracy']:.3f}", f"{results['uf1']:.3f}", f"{results['uar']:.3f}"]]
    for name, values in sorted(results.get("by_dataset", {}).items()):
        if len(results.get("by_dataset", {})) > 1:
            footer.append([f"  {name}", str(values["num_samples"]), f"{values['accuracy']:.3f}", f"{values['uf1']:.3f}", f"{values['uar']:.3f}"])
    if "leaky_best_epoch_uf1" in results:
        footer.append(
            [
                "leaky best epoch (NOT protocol)",
                str(results["num_samples"]),
                f"{results['leaky_best_epoch_accuracy']:.3f}",
                f"{results['leaky_best_epoch_uf1']:.3f}",
                f"{results['leaky_best_epoch_uar']:.3f}",
            ]
        )
    table = rows + footer
    widths = [max(len(r[i]) for r in [header, *table]) for i in range(len(header))]

    def render(row: list[str]) -> str:
        return "  ".join(cell.ljust(width) if i == 0 else cell.rjust(width) for i, (cell, width) in enumerate(zip(row, widths)))

    rule = "-" * len(render(header))
    return "\n".join([render(header), rule, *map(render, rows), rule, *map(render, footer)])


def load_loso_results(out_dir: str | os.PathLike) -> dict[str, Any]:
    """``results.json`` of a finished run folder.

    Raises:
        RunDirectoryError: the run is not finished (no results.json).
    """
    path = Path(out_dir) / RESULTS_NAME
    if not path.is_file():
        raise RunDirectoryError(f"{path} does not exist: the LOSO run in {out_dir} has not finished; rerun it to resume.")
    return json.loads(path.read_text())



__all__ = ["LEAKY_NOTE", "format_summary_table", "load_loso_results", "write_loso_results"]
