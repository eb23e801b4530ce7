"""Training utilities: MER metrics (numpy only at import), Trainer glue and the LOSO runner."""

from .metrics import (
    FoldPredictions,
    classification_metrics,
    compute_metrics_for_trainer,
    confusion_matrix,
    load_uf1_uar_metric,
    make_compute_metrics,
    plot_confusion_matrix,
    pooled_loso_metrics,
)

__all__ = [
    "FoldPredictions",
    "classification_metrics",
    "compute_metrics_for_trainer",
    "confusion_matrix",
    "load_uf1_uar_metric",
    "make_compute_metrics",
    "plot_confusion_matrix",
    "pooled_loso_metrics",
]
