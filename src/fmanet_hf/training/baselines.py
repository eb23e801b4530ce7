"""A shallow reference: multinomial logistic regression on the fixed MM-COF descriptor.

It answers "is this dataset learnable, and how hard is it?" without any deep network: if
a linear model on the fixed descriptor is far above chance, the motion carries the label;
if it is at 100 %, the task is trivial. It runs the field's protocol: leave-one-subject-out,
predictions pooled over folds, standardisation fitted on the training subjects only.

Features: ``mmcof_values`` (3, H, W) average-pooled to (3, pool, pool), flattened.
Solver: full-batch L-BFGS on the L2-regularised cross-entropy (convex, so the result does
not depend on initialisation).
"""

from __future__ import annotations

import numpy as np

from .metrics import pooled_loso_metrics


def mmcof_features(mmcof_values: np.ndarray, pool: int = 8) -> np.ndarray:
    """(N, 3, H, W) MM-COF maps -> (N, 3 * pool * pool) float64 block-averaged features."""
    import torch
    import torch.nn.functional as F

    maps = torch.as_tensor(np.asarray(mmcof_values), dtype=torch.float64)
    return F.adaptive_avg_pool2d(maps, pool).flatten(1).numpy()


def fit_logistic_regression(features: np.ndarray, labels: np.ndarray, num_classes: int, l2: float) -> tuple[np.ndarray, np.ndarray]:
    """Fit softmax regression; returns (weights (D, C), bias (C,)). Deterministic (convex, zero init)."""
    import torch

    x = torch.as_tensor(features, dtype=torch.float64)
    y = torch.as_tensor(labels, dtype=torch.long)
    weights = torch.zeros(x.shape[1], num_classes, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([weights, bias], lr=1.0, max_iter=500, tolerance_grad=1e-9, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(x @ weights + bias, y) + l2 * (weights**2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return weights.detach().numpy(), bias.detach().numpy()


def mmcof_logistic_regression_loso(prepared, *, pool: int = 8, l2: float = 1e-2, class_names: list[str] | None = None) -> dict:
    """LOSO of the MM-COF logistic-regression baseline on a prepared dataset.

    Args:
        prepared: dataset from `fmanet_hf.data.prepare.prepare_dataset` (columns
            ``mmcof_values``, ``label_id``, ``subject``, ``dataset``).
        pool: side of the average-pooled MM-COF grid (features = 3 * pool^2).
        l2: weight of the squared-L2 penalty on the weights.

    Returns:
        `pooled_loso_metrics` output (pooled accuracy/UF1/UAR, per fold, per dataset) plus
        ``chance_uar`` (1 / number of classes) and the settings used.
    """
    from ..data.subject_folds import loso_folds

    columns = prepared.with_format("numpy", columns=["mmcof_values", "label_id"])
    features = mmcof_features(columns["mmcof_values"], pool)
    labels = np.asarray(columns["label_id"], dtype=np.int64)
    subjects = list(prepared["subject"])
    datasets_column = list(prepared["dataset"]) if "dataset" in prepared.column_names else None
    num_classes = prepared.features["label_id"].num_classes
    class_names = class_names or list(prepared.features["label_id"].names)
    fold_records = []
    for fold in loso_folds(subjects):
        train, test = np.asarray(fold.train_indices), np.asarray(fold.test_indices)
        # Standardise with the training subjects' statistics only: no test-fold information leaks.
        mean = features[train].mean(axis=0)
        std = features[train].std(axis=0) + 1e-8
        weights, bias = fit_logistic_regression((features[train] - mean) / std, labels[train], num_classes, l2)
        predicted = (((features[test] - mean) / std) @ weights + bias).argmax(axis=1)
        record = {"subject": fold.test_subject, "y_true": labels[test].tolist(), "y_pred": predicted.tolist()}
        if datasets_column is not None:
            record["dataset"] = [datasets_column[i] for i in test]
        fold_records.append(record)
    results = pooled_loso_metrics(fold_records, num_classes=num_classes, class_names=class_names)
    results["chance_uar"] = 1.0 / num_classes
    results["baseline"] = {"model": "logistic regression on MM-COF", "pool": pool, "l2": l2}
    return results
