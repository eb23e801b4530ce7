"""A shallow reference: multinomial logistic regression on the fixed MM-COF descriptor.

It answers "is this dataset learnable, and how hard is it?" without any deep network: if
a linear model on the fixed descriptor is far above chance, the motion carries the label;
if it is at 100 %, the task is trivial. It runs the field's protocol: leave-one-subject-out,
predictions pooled over folds, standardisation fitted on the training subjects only.

Features: ``mmcof_values`` (3, H, W) average-pooled to (3, pool, pool), flattened.
Solver: full-batch L-BFGS on the L2-regularised cross-entropy (convex, so the result does
not depend on initialisation).

Settings: fixed (``pool=8, l2=1e-2``), or chosen per fold by an INNER leave-one-subject-out
split of that fold's training subjects (``pool="inner"`` / ``l2="inner"``): every setting of
the grid is scored by the pooled UF1 of the inner folds, the best one (ties: the simpler
model, i.e. smaller pool then larger L2) is refitted on all training subjects, and only then
is the held-out subject predicted. The held-out subject never takes part in the choice, so
the baseline is as leak-free as the network it is compared with.
"""

from __future__ import annotations

import numpy as np

from .metrics import pooled_loso_metrics

#: The grid an inner split chooses from (``pool`` side of the pooled grid; ``l2`` penalty).
INNER_POOL_GRID = (2, 4, 8, 16)
INNER_L2_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)


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


def _standardised_fit_predict(
    features: np.ndarray, labels: np.ndarray, train: np.ndarray, test: np.ndarray, num_classes: int, l2: float
) -> np.ndarray:
    # Standardise with the training rows' statistics only: nothing of the test rows leaks.
    mean = features[train].mean(axis=0)
    std = features[train].std(axis=0) + 1e-8
    weights, bias = fit_logistic_regression((features[train] - mean) / std, labels[train], num_classes, l2)
    return (((features[test] - mean) / std) @ weights + bias).argmax(axis=1)


def choose_settings_by_inner_split(
    features_by_pool: dict[int, np.ndarray],
    labels: np.ndarray,
    subjects: list[str],
    train_indices: np.ndarray,
    num_classes: int,
    l2_grid: tuple[float, ...],
) -> tuple[int, float, float]:
    """(pool, l2, inner UF1) that score best under LOSO over the subjects of ``train_indices``.

    Only the rows ``train_indices`` are read. The score is the pooled macro F1 over the
    inner folds. Ties go to the simpler model: the smaller pool, then the larger L2.
    """
    from ..data.subject_folds import loso_folds
    from .metrics import confusion_matrix, metrics_from_confusion_matrix

    train_indices = np.asarray(train_indices)
    inner_subjects = [subjects[i] for i in train_indices]
    inner_folds = loso_folds(inner_subjects)
    best: tuple[float, int, float] | None = None
    for pool in sorted(features_by_pool):
        features = features_by_pool[pool][train_indices]
        inner_labels = labels[train_indices]
        for l2 in sorted(l2_grid, reverse=True):
            predicted = np.empty_like(inner_labels)
            for fold in inner_folds:
                inner_train, inner_test = np.asarray(fold.train_indices), np.asarray(fold.test_indices)
                predicted[inner_test] = _standardised_fit_predict(
                    features, inner_labels, inner_train, inner_test, num_classes, l2
                )
            score = float(metrics_from_confusion_matrix(confusion_matrix(inner_labels, predicted, num_classes))["uf1"])
            if best is None or score > best[0] + 1e-12:
                best = (score, pool, l2)
    assert best is not None
    return best[1], best[2], best[0]


def mmcof_logistic_regression_loso(
    prepared,
    *,
    pool: int | str = 8,
    l2: float | str = 1e-2,
    class_names: list[str] | None = None,
    pool_grid: tuple[int, ...] = INNER_POOL_GRID,
    l2_grid: tuple[float, ...] = INNER_L2_GRID,
) -> dict:
    """LOSO of the MM-COF logistic-regression baseline on a prepared dataset.

    Args:
        prepared: dataset from `fmanet_hf.data.prepare.prepare_dataset` (columns
            ``mmcof_values``, ``label_id``, ``subject``, ``dataset``).
        pool: side of the average-pooled MM-COF grid (features = 3 * pool^2), or
            ``"inner"``: chosen per fold from ``pool_grid`` by an inner LOSO split of the
            fold's training subjects (together with ``l2`` when that is ``"inner"`` too).
        l2: weight of the squared-L2 penalty on the weights, or ``"inner"`` (from ``l2_grid``).
        pool_grid, l2_grid: the candidates of an inner choice.

    Returns:
        `pooled_loso_metrics` output (pooled accuracy/UF1/UAR, per fold, per dataset) plus
        ``chance_uar`` (1 / number of classes) and the settings used (with an inner choice,
        ``baseline["chosen"]`` lists each fold's pool, L2 and inner UF1).
    """
    from ..data.subject_folds import loso_folds
    from ..errors import FMANetConfigError

    inner_pool, inner_l2 = pool == "inner", l2 == "inner"
    if not inner_pool and (isinstance(pool, bool) or not isinstance(pool, (int, np.integer)) or pool < 1):
        raise FMANetConfigError(f"pool must be an integer >= 1 or 'inner', got {pool!r}.")
    if not inner_l2 and (isinstance(l2, bool) or not isinstance(l2, (int, float)) or not np.isfinite(l2) or l2 < 0):
        raise FMANetConfigError(f"l2 must be a finite number >= 0 or 'inner', got {l2!r}.")
    columns = prepared.with_format("numpy", columns=["mmcof_values", "label_id"])
    pools = tuple(pool_grid) if inner_pool else (int(pool),)
    features_by_pool = {p: mmcof_features(columns["mmcof_values"], p) for p in pools}
    l2_candidates = tuple(l2_grid) if inner_l2 else (float(l2),)
    labels = np.asarray(columns["label_id"], dtype=np.int64)
    subjects = list(prepared["subject"])
    datasets_column = list(prepared["dataset"]) if "dataset" in prepared.column_names else None
    num_classes = prepared.features["label_id"].num_classes
    class_names = class_names or list(prepared.features["label_id"].names)
    fold_records, chosen = [], []
    for fold in loso_folds(subjects):
        train, test = np.asarray(fold.train_indices), np.asarray(fold.test_indices)
        if inner_pool or inner_l2:
            fold_pool, fold_l2, inner_uf1 = choose_settings_by_inner_split(
                features_by_pool, labels, subjects, train, num_classes, l2_candidates
            )
            chosen.append({"subject": fold.test_subject, "pool": fold_pool, "l2": fold_l2, "inner_uf1": inner_uf1})
        else:
            fold_pool, fold_l2 = pools[0], l2_candidates[0]
        predicted = _standardised_fit_predict(features_by_pool[fold_pool], labels, train, test, num_classes, fold_l2)
        record = {"subject": fold.test_subject, "y_true": labels[test].tolist(), "y_pred": predicted.tolist()}
        if datasets_column is not None:
            record["dataset"] = [datasets_column[i] for i in test]
        fold_records.append(record)
    results = pooled_loso_metrics(fold_records, num_classes=num_classes, class_names=class_names)
    results["chance_uar"] = 1.0 / num_classes
    results["baseline"] = {"model": "logistic regression on MM-COF", "pool": pool, "l2": l2}
    if chosen:
        results["baseline"].update({"pool_grid": list(pools), "l2_grid": list(l2_candidates), "chosen": chosen})
    return results
