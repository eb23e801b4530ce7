"""Metrics of the micro-expression recognition (MER) protocol: accuracy, UF1, UAR.

Definitions (``C`` classes; for class ``c``: ``TP_c`` samples of class ``c`` predicted as
``c``, ``FP_c`` samples of another class predicted as ``c``, ``FN_c`` samples of class ``c``
predicted as another class, ``support_c = TP_c + FN_c``):

- ``accuracy = sum_c TP_c / N``.
- ``F1_c = 2 TP_c / (2 TP_c + FP_c + FN_c)``; ``UF1`` (unweighted F1, "macro F1") is the
  mean of ``F1_c`` over the classes where it is defined.
- ``recall_c = TP_c / (TP_c + FN_c)``; ``UAR`` (unweighted average recall, "macro
  recall", "balanced accuracy") is the mean of ``recall_c`` over the classes where it is
  defined.

Classes absent from the ground truth (the MEGC convention, which is also what scikit-learn's
``f1_score(average="macro")`` and ``balanced_accuracy_score`` do):

- ``recall_c`` is undefined when ``support_c == 0``: the class is left out of UAR.
- ``F1_c`` is undefined only when ``2 TP_c + FP_c + FN_c == 0``, i.e. the class has no true
  sample AND was never predicted: the class is left out of UF1. A class with no true sample
  that *was* predicted has ``TP = FN = 0 < FP`` and counts in UF1 with ``F1_c = 0``: the
  false alarms are penalised.

Both rules only drop 0/0 terms, so adding a class that never occurs in the ground truth or
the predictions changes no score, and the scores are never NaN. Undefined per-class values
are reported as ``None`` (JSON ``null``).

The protocol (leave-one-subject-out, LOSO) POOLS the predictions of every fold and computes
the metrics once on the concatenation (:func:`pooled_loso_metrics`). Per-fold scores and their
mean are returned as a labelled extra only: folds of 1-2 samples make them unstable.

This module imports numpy only; matplotlib (plots) and evaluate (the ``evaluate`` metric
module) are imported inside the functions that need them.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from ..errors import FMANetInputError

#: Folder of the ``evaluate`` metric module shipped with the package (loadable offline).
UF1_UAR_METRIC_PATH = Path(__file__).resolve().parent / "uf1_uar"

#: The three headline scores, in the order papers report them.
HEADLINE_METRICS = ("accuracy", "uf1", "uar")


# --------------------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------------------
def _check_num_classes(num_classes: Any) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)):
        raise FMANetInputError(
            f"num_classes must be an int >= 1, got {num_classes!r} of type {type(num_classes).__name__}."
        )
    if num_classes < 1:
        raise FMANetInputError(f"num_classes must be >= 1, got {num_classes}.")
    return int(num_classes)


def _as_label_array(labels: Any, name: str, num_classes: int | None) -> np.ndarray:
    """Validate a 1-D sequence of class indices and return it as an int64 array (N,)."""
    try:
        array = np.asarray(labels)
    except (TypeError, ValueError) as error:
        raise FMANetInputError(f"{name} could not be read as an array of class indices: {error}.") from None
    if array.ndim == 2 and array.shape[1] > 1 and array.dtype.kind == "f":
        raise FMANetInputError(
            f"{name} has shape {array.shape}: it looks like logits or probabilities (N, C). "
            "Pass class indices instead, e.g. logits.argmax(-1)."
        )
    if array.ndim != 1:
        raise FMANetInputError(f"{name} must be a 1-D sequence of class indices, got shape {array.shape}.")
    if array.size == 0:
        # np.asarray([]) is float64; an empty sequence carries no dtype worth checking.
        return np.zeros(0, dtype=np.int64)
    if array.dtype.kind not in "iu":
        if array.dtype.kind == "f":
            hint = " (floats: pass integer class indices, e.g. logits.argmax(-1), not scores)"
        elif array.dtype.kind == "b":
            hint = " (booleans: pass integer class indices 0..C-1)"
        else:
            hint = " (map class names to indices 0..C-1 first)"
        raise FMANetInputError(f"{name} must hold integer class indices, got dtype {array.dtype}{hint}.")
    array = array.astype(np.int64, copy=False)
    if array.min() < 0:
        raise FMANetInputError(
            f"{name} holds a negative class index ({int(array.min())}); class indices run from 0 to C-1. "
            "Remove ignored samples (label -100) before computing metrics."
        )
    if num_classes is not None and array.max() >= num_classes:
        raise FMANetInputError(
            f"{name} holds class index {int(array.max())} but num_classes is {num_classes} "
            f"(valid indices 0..{num_classes - 1})."
        )
    return array


def _check_pair(y_true: Any, y_pred: Any, num_classes: int | None) -> tuple[np.ndarray, np.ndarray]:
    true_array = _as_label_array(y_true, "y_true", num_classes)
    pred_array = _as_label_array(y_pred, "y_pred", num_classes)
    if true_array.shape != pred_array.shape:
        raise FMANetInputError(
            f"y_true and y_pred must have the same length, got {true_array.size} and {pred_array.size}."
        )
    return true_array, pred_array


def _check_class_names(class_names: Sequence[str] | None, num_classes: int) -> list[str]:
    if class_names is None:
        return [str(index) for index in range(num_classes)]
    if isinstance(class_names, str):
        raise FMANetInputError(f"class_names must be a sequence of names, not the single string {class_names!r}.")
    names = [str(name) for name in class_names]
    if len(names) != num_classes:
        raise FMANetInputError(
            f"class_names has {len(names)} entries ({names}) but num_classes is {num_classes}."
        )
    if len(set(names)) != len(names):
        raise FMANetInputError(f"class_names must be unique, got {names}.")
    return names


# --------------------------------------------------------------------------------------
# Core metrics
# --------------------------------------------------------------------------------------
def confusion_matrix(y_true: Any, y_pred: Any, num_classes: int) -> np.ndarray:
    """Count (true class, predicted class) pairs.

    Args:
        y_true: ground-truth class indices, 1-D sequence of N ints in ``[0, num_classes)``.
        y_pred: predicted class indices, 1-D sequence of N ints in ``[0, num_classes)``.
        num_classes: number of classes C (>= 1).

    Returns:
        ``np.ndarray`` of shape (C, C), dtype int64: entry ``[i, j]`` counts samples of true
        class ``i`` predicted as class ``j`` (rows = true, columns = predicted). Empty inputs
        give an all-zero matrix.

    Raises:
        FMANetInputError: lengths differ, non-integer or out-of-range labels, 2-D input
            (logits), bad ``num_classes``.
    """
    num_classes = _check_num_classes(num_classes)
    true_array, pred_array = _check_pair(y_true, y_pred, num_classes)
    # Encode each pair as one flat index so a single bincount does the counting.
    flat_counts = np.bincount(true_array * num_classes + pred_array, minlength=num_classes * num_classes)
    return flat_counts.reshape(num_classes, num_classes).astype(np.int64, copy=False)


def metrics_from_confusion_matrix(cm: Any, class_names: Sequence[str] | None = None) -> dict[str, Any]:
    """Accuracy, UF1, UAR and per-class scores from a confusion matrix.

    Args:
        cm: (C, C) non-negative integer counts, rows = true class, columns = predicted class.
        class_names: optional C names used in the output (default ``"0"``, ``"1"``...).

    Returns:
        The dict described in :func:`classification_metrics`.

    Raises:
        FMANetInputError: ``cm`` is not square, has negative or non-integer counts, or sums to 0.
    """
    counts = np.asarray(cm)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.shape[0] == 0:
        raise FMANetInputError(f"A confusion matrix must be square (C, C) with C >= 1, got shape {counts.shape}.")
    if counts.dtype.kind not in "iu":
        if counts.dtype.kind == "f" and np.all(np.isfinite(counts)) and np.all(counts == np.round(counts)):
            counts = counts.astype(np.int64)
        else:
            raise FMANetInputError(f"A confusion matrix must hold integer counts, got dtype {counts.dtype}.")
    counts = counts.astype(np.int64, copy=False)
    if counts.min() < 0:
        raise FMANetInputError("A confusion matrix cannot hold negative counts.")
    num_samples = int(counts.sum())
    if num_samples == 0:
        raise FMANetInputError(
            "Cannot compute metrics on zero samples (empty y_true/y_pred or an all-zero confusion matrix): "
            "accuracy, UF1 and UAR are undefined. Check that the evaluation set is not empty."
        )
    num_classes = counts.shape[0]
    names = _check_class_names(class_names, num_classes)

    true_positives = np.diag(counts)
    support = counts.sum(axis=1)  # TP + FN: samples whose true class is c
    predicted = counts.sum(axis=0)  # TP + FP: samples predicted as c
    false_negatives = support - true_positives
    false_positives = predicted - true_positives

    per_class_f1: list[float | None] = []
    per_class_recall: list[float | None] = []
    for c in range(num_classes):
        f1_denominator = 2 * true_positives[c] + false_positives[c] + false_negatives[c]
        # 0/0 only when the class is absent from the truth AND never predicted: leave it out.
        per_class_f1.append(None if f1_denominator == 0 else float(2 * true_positives[c] / f1_denominator))
        per_class_recall.append(None if support[c] == 0 else float(true_positives[c] / support[c]))

    f1_defined = [value for value in per_class_f1 if value is not None]
    recall_defined = [value for value in per_class_recall if value is not None]
    # num_samples > 0 guarantees at least one class with support > 0, so both lists are non-empty.
    return {
        "accuracy": float(true_positives.sum() / num_samples),
        "uf1": float(sum(f1_defined) / len(f1_defined)),
        "uar": float(sum(recall_defined) / len(recall_defined)),
        "num_samples": num_samples,
        "num_classes": num_classes,
        "class_names": names,
        "per_class_f1": per_class_f1,
        "per_class_recall": per_class_recall,
        "support": [int(value) for value in support],
        "uf1_classes": [names[c] for c in range(num_classes) if per_class_f1[c] is not None],
        "uar_classes": [names[c] for c in range(num_classes) if per_class_recall[c] is not None],
        "confusion_matrix": counts.tolist(),
    }


def classification_metrics(
    y_true: Any,
    y_pred: Any,
    num_classes: int,
    class_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Accuracy, UF1 and UAR of one set of predictions (see the module docstring for definitions).

    Args:
        y_true: ground-truth class indices, 1-D sequence of N >= 1 ints in ``[0, num_classes)``.
        y_pred: predicted class indices, same length.
        num_classes: number of classes C.
        class_names: optional C names (default ``"0"``, ``"1"``...), echoed in the output.

    Returns:
        A JSON-serialisable dict:

        - ``accuracy``, ``uf1``, ``uar``: floats in [0, 1];
        - ``num_samples`` (N), ``num_classes`` (C), ``class_names`` (C names);
        - ``per_class_f1``, ``per_class_recall``: C floats, ``None`` where undefined (class
          left out of the mean, see the absent-class convention);
        - ``support``: C ints, true samples per class;
        - ``uf1_classes``, ``uar_classes``: names of the classes each mean was taken over;
        - ``confusion_matrix``: C lists of C ints, rows = true, columns = predicted.

    Raises:
        FMANetInputError: empty input, lengths differ, labels not ints in range.
    """
    num_classes = _check_num_classes(num_classes)
    true_array, pred_array = _check_pair(y_true, y_pred, num_classes)
    if true_array.size == 0:
        raise FMANetInputError(
            "Cannot compute metrics on zero samples: y_true and y_pred are empty. "
            "Check that the evaluation split is not empty."
        )
    return metrics_from_confusion_matrix(confusion_matrix(true_array, pred_array, num_classes), class_names)


# --------------------------------------------------------------------------------------
# LOSO pooling
# --------------------------------------------------------------------------------------
@dataclass
class FoldPredictions:
    """Test-set predictions of one LOSO fold.

    Attributes:
        subject: the held-out test subject (its id, str or int), unique over the folds.
        y_true: ground-truth class indices of the fold's test samples, (N_fold,).
        y_pred: predicted class indices, (N_fold,).
        dataset: optional source dataset: one name for the whole fold, or one name per sample
            (N_fold,). Give it for every fold or for none.
    """

    subject: Any
    y_true: Any
    y_pred: Any
    dataset: str | Sequence[str] | None = None


def _plain_subject(subject: Any) -> Any:
    # numpy scalars (e.g. from a pandas column) are not JSON-serialisable.
    return subject.item() if isinstance(subject, np.generic) else subject


def _read_fold_record(record: Any, position: int) -> FoldPredictions:
    """A fresh FoldPredictions from a dataclass or a mapping (the caller's record is never modified)."""
    if isinstance(record, FoldPredictions):
        return FoldPredictions(_plain_subject(record.subject), record.y_true, record.y_pred, record.dataset)
    if isinstance(record, Mapping):
        if "subject" in record and "test_subject" in record and record["subject"] != record["test_subject"]:
            raise FMANetInputError(f"Fold record {position} has both 'subject' and 'test_subject', and they differ.")
        subject = record.get("subject", record.get("test_subject"))
        missing = [key for key in ("y_true", "y_pred") if key not in record]
        if subject is None:
            missing.insert(0, "subject")
        if missing:
            raise FMANetInputError(
                f"Fold record {position} lacks {missing}; each fold needs 'subject' (or 'test_subject'), "
                f"'y_true', 'y_pred' and optionally 'dataset'. Got keys {sorted(map(str, record))}."
            )
        return FoldPredictions(_plain_subject(subject), record["y_true"], record["y_pred"], record.get("dataset"))
    raise FMANetInputError(
        f"Fold record {position} is a {type(record).__name__}; pass a FoldPredictions or a mapping "
        "with keys 'subject', 'y_true', 'y_pred' (and optionally 'dataset')."
    )


def _fold_datasets(fold: FoldPredictions, num_samples: int) -> list[str] | None:
    if fold.dataset is None:
        return None
    if isinstance(fold.dataset, str):
        return [fold.dataset] * num_samples
    names = [str(name) for name in fold.dataset]
    if len(names) != num_samples:
        raise FMANetInputError(
            f"Fold of subject {fold.subject!r}: 'dataset' has {len(names)} entries but the fold has "
            f"{num_samples} samples. Give one name per sample, or one string for the whole fold."
        )
    return names


def pooled_loso_metrics(
    fold_predictions: Iterable[FoldPredictions | Mapping[str, Any]],
    num_classes: int | None = None,
    class_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """LOSO metrics the way the field reports them: pool every fold's predictions, then score.

    Args:
        fold_predictions: one record per fold, each a :class:`FoldPredictions` or a mapping
            with ``subject`` (or ``test_subject``), ``y_true`` (N_fold,), ``y_pred`` (N_fold,)
            and optionally ``dataset`` (one name, or N_fold names). Order does not matter.
        num_classes: number of classes C. Default: ``len(class_names)`` if given, else the
            largest label seen + 1 (UF1/UAR do not depend on classes that never occur, but
            the confusion matrix and per-class lists then lack trailing unseen classes).
        class_names: optional C names.

    Returns:
        The :func:`classification_metrics` dict of the POOLED predictions (``accuracy``,
        ``uf1``, ``uar``... at the top level: these are the protocol's numbers), plus:

        - ``protocol``: a one-line description of how the numbers were computed;
        - ``num_folds``;
        - ``per_fold``: one dict per fold, in input order: ``subject``, ``datasets`` (names
          present in that fold) and that fold's :func:`classification_metrics`;
        - ``per_fold_mean_accuracy``, ``per_fold_mean_uf1``, ``per_fold_mean_uar``:
          unweighted means over folds. NOT the protocol's metric; an unstable extra;
        - ``by_dataset``: ``{dataset name: classification_metrics}`` computed on the subset
          of the pooled predictions coming from that dataset (the MEGC2019 composite's
          per-dataset columns); ``{}`` when no dataset names were given.

    Raises:
        FMANetInputError: no folds, an empty fold, duplicate subjects, dataset names given for
            some folds only, or any invalid labels.
    """
    folds = [_read_fold_record(record, position) for position, record in enumerate(fold_predictions)]
    if not folds:
        raise FMANetInputError("pooled_loso_metrics needs at least one fold; got none.")

    if num_classes is None and class_names is not None:
        num_classes = len(class_names)
    if num_classes is not None:
        num_classes = _check_num_classes(num_classes)

    seen_subjects: set[Any] = set()
    fold_labels: list[tuple[np.ndarray, np.ndarray]] = []
    fold_dataset_names: list[list[str] | None] = []
    for fold in folds:
        try:
            hash(fold.subject)
        except TypeError:
            raise FMANetInputError(f"A fold's subject must be a str or int, got {fold.subject!r}.") from None
        if fold.subject in seen_subjects:
            raise FMANetInputError(
                f"Subject {fold.subject!r} appears in more than one fold; LOSO holds out each subject once. "
                "For a composite set, make subject ids unique per dataset (e.g. 'casme2/sub01')."
            )
        seen_subjects.add(fold.subject)
        try:
            true_array, pred_array = _check_pair(fold.y_true, fold.y_pred, num_classes)
        except FMANetInputError as error:
            raise FMANetInputError(f"Fold of subject {fold.subject!r}: {error}") from None
        if true_array.size == 0:
            raise FMANetInputError(
                f"Fold of subject {fold.subject!r} has no test samples; drop subjects without samples "
                "before running LOSO."
            )
        fold_labels.append((true_array, pred_array))
        fold_dataset_names.append(_fold_datasets(fold, true_array.size))

    has_datasets = [names is not None for names in fold_dataset_names]
    if any(has_datasets) and not all(has_datasets):
        lacking = [fold.subject for fold, given in zip(folds, has_datasets) if not given]
        raise FMANetInputError(
            f"Dataset names were given for some folds but not for subjects {lacking}; give them for all or none."
        )

    if num_classes is None:
        largest_label = max(int(max(true.max(), pred.max())) for true, pred in fold_labels)
        num_classes = largest_label + 1
    names = _check_class_names(class_names, num_classes)

    pooled_true = np.concatenate([true for true, _ in fold_labels])
    pooled_pred = np.concatenate([pred for _, pred in fold_labels])
    result = classification_metrics(pooled_true, pooled_pred, num_classes, names)
    result["protocol"] = (
        "leave-one-subject-out; predictions of all folds pooled, then metrics computed once "
        "(per_fold_mean_* are unweighted means of per-fold scores, an unstable extra)"
    )
    result["num_folds"] = len(folds)

    per_fold = []
    for fold, (true_array, pred_array), dataset_names in zip(folds, fold_labels, fold_dataset_names):
        fold_metrics = classification_metrics(true_array, pred_array, num_classes, names)
        per_fold.append(
            {
                "subject": fold.subject,
                "datasets": sorted(set(dataset_names)) if dataset_names is not None else [],
                **fold_metrics,
            }
        )
    result["per_fold"] = per_fold
    for metric_name in HEADLINE_METRICS:
        result[f"per_fold_mean_{metric_name}"] = float(np.mean([fold[metric_name] for fold in per_fold]))

    by_dataset: dict[str, dict[str, Any]] = {}
    if all(has_datasets):
        pooled_datasets = np.array([name for names_ in fold_dataset_names for name in names_], dtype=object)
        # Sorted so the columns come out in the same order whatever the fold order.
        for dataset_name in sorted(set(pooled_datasets.tolist())):
            in_dataset = pooled_datasets == dataset_name
            by_dataset[dataset_name] = classification_metrics(
                pooled_true[in_dataset], pooled_pred[in_dataset], num_classes, names
            )
    result["by_dataset"] = by_dataset
    return result


# --------------------------------------------------------------------------------------
# transformers Trainer glue
# --------------------------------------------------------------------------------------
def _split_eval_prediction(eval_pred: Any) -> tuple[Any, Any]:
    """Return (predictions, label_ids) from an ``EvalPrediction`` or a ``(predictions, labels)`` pair."""
    if hasattr(eval_pred, "predictions") and hasattr(eval_pred, "label_ids"):
        predictions, label_ids = eval_pred.predictions, eval_pred.label_ids
    else:
        try:
            predictions, label_ids = eval_pred
        except (TypeError, ValueError):
            raise FMANetInputError(
                f"Expected a transformers EvalPrediction or a (predictions, labels) pair, got {type(eval_pred).__name__}."
            ) from None
    # A model returning several tensors (logits, attention map, phase weights) gives a tuple;
    # transformers keeps ModelOutput field order with the loss removed, so logits come first.
    if isinstance(predictions, tuple):
        predictions = predictions[0]
    if isinstance(label_ids, tuple):
        label_ids = label_ids[0]
    if label_ids is None:
        raise FMANetInputError(
            "The evaluation batch has no labels (label_ids is None): the dataset needs a 'labels' column "
            "for compute_metrics."
        )
    return predictions, label_ids


def _predicted_classes(predictions: Any, num_classes: int | None) -> np.ndarray:
    """Class indices (N,) from logits (N, C) or from already-decoded class indices (N,)."""
    array = np.asarray(predictions)
    if array.ndim == 2:
        if num_classes is not None and array.shape[1] != num_classes:
            raise FMANetInputError(
                f"The model produced {array.shape[1]} logits per sample but the metrics expect "
                f"num_classes={num_classes}. Check config.num_labels."
            )
        return array.argmax(axis=-1)
    if array.ndim == 1:
        return array
    raise FMANetInputError(
        f"Predictions must be logits (N, C) or class indices (N,), got shape {array.shape}."
    )


def make_compute_metrics(num_classes: int) -> Callable[[Any], dict[str, float]]:
    """Build a ``compute_metrics`` function for ``transformers.Trainer``.

    Args:
        num_classes: number of classes C; logits of another width raise an error.

    Returns:
        A function ``compute_metrics(eval_pred) -> {"accuracy": float, "uf1": float, "uar": float}``.
        ``eval_pred`` is an ``EvalPrediction`` (or a ``(predictions, label_ids)`` pair) whose
        predictions are logits (N, C), a tuple whose first element is the logits, or class
        indices (N,) (when ``preprocess_logits_for_metrics`` already took the argmax). The
        Trainer prefixes the keys (``eval_uf1``...). Note that metrics on one evaluation set
        are "pooled" over that set; for LOSO use :func:`pooled_loso_metrics`.
    """
    num_classes = _check_num_classes(num_classes)

    def compute_metrics(eval_pred: Any) -> dict[str, float]:
        predictions, label_ids = _split_eval_prediction(eval_pred)
        predicted = _predicted_classes(predictions, num_classes)
        scores = classification_metrics(label_ids, predicted, num_classes)
        return {name: float(scores[name]) for name in HEADLINE_METRICS}

    return compute_metrics


def compute_metrics_for_trainer(eval_pred: Any) -> dict[str, float]:
    """``compute_metrics`` for ``transformers.Trainer`` with the class count taken from the logits.

    Args:
        eval_pred: ``EvalPrediction`` with logits (N, C) (or a tuple starting with them) as
            predictions and class indices (N,) as label_ids. With class indices (N,) as
            predictions, C is inferred as the largest label + 1 (UF1/UAR are unaffected).

    Returns:
        ``{"accuracy": float, "uf1": float, "uar": float}``.
    """
    predictions, label_ids = _split_eval_prediction(eval_pred)
    array = np.asarray(predictions)
    if array.ndim == 2:
        num_classes = int(array.shape[1])
    else:
        true_array = _as_label_array(label_ids, "label_ids", None)
        pred_array = _as_label_array(array, "predictions", None)
        if true_array.size == 0:
            raise FMANetInputError("Cannot compute metrics on zero samples: the evaluation set is empty.")
        num_classes = int(max(true_array.max(), pred_array.max())) + 1
    return make_compute_metrics(num_classes)((array, label_ids))


# --------------------------------------------------------------------------------------
# evaluate metric module
# --------------------------------------------------------------------------------------
def load_uf1_uar_metric(**load_kwargs: Any) -> Any:
    """Load the package's ``evaluate`` metric module (accuracy, UF1, UAR) from its local folder.

    Works offline (``HF_EVALUATE_OFFLINE=1``, ``HF_HUB_OFFLINE=1``): ``evaluate.load`` is
    given the folder path, never a Hub name. ``evaluate`` copies the script into its
    modules cache under ``HF_HOME``; the script itself imports ``fmanet_hf``.

    Args:
        **load_kwargs: passed to ``evaluate.load`` (e.g. ``experiment_id``, ``cache_dir``).

    Returns:
        An ``evaluate.EvaluationModule``; ``module.compute(predictions=[...], references=[...],
        num_classes=C)`` returns ``{"accuracy", "uf1", "uar"}`` floats.
    """
    import evaluate

    return evaluate.load(str(UF1_UAR_METRIC_PATH), **load_kwargs)


# --------------------------------------------------------------------------------------
# Plot
# --------------------------------------------------------------------------------------
def plot_confusion_matrix(
    cm: Any,
    class_names: Sequence[str],
    path: str | os.PathLike,
    title: str | None = None,
    normalize: bool = True,
) -> Path:
    """Write a confusion matrix as a PNG: colours per true-class row, counts annotated.

    Uses matplotlib's Agg canvas directly (no pyplot, so the caller's backend and figures
    are untouched). The file is written to a temporary file in the same folder and moved
    into place with ``os.replace``, so readers never see a half-written PNG.

    Args:
        cm: (C, C) non-negative integer counts, rows = true class, columns = predicted
            (e.g. ``metrics["confusion_matrix"]``).
        class_names: C names for the axes.
        path: output ``.png`` path; its folder is created if needed.
        title: optional title drawn above the matrix.
        normalize: if True, colours show each row divided by its support (the per-class
            recall on the diagonal) and cells read ``count`` over ``percent``; if False,
            colours show raw counts.

    Returns:
        The written path.

    Raises:
        FMANetInputError: bad matrix or names.
    """
    counts = np.asarray(cm)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.shape[0] == 0:
        raise FMANetInputError(f"A confusion matrix must be square (C, C) with C >= 1, got shape {counts.shape}.")
    if counts.dtype.kind not in "iu" or (counts.size and counts.min() < 0):
        raise FMANetInputError(f"A confusion matrix must hold non-negative integer counts, got dtype {counts.dtype}.")
    num_classes = counts.shape[0]
    names = _check_class_names(class_names, num_classes)
    path = Path(path)

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    support = counts.sum(axis=1)
    if normalize:
        # Rows without true samples stay 0 instead of 0/0.
        colour_values = np.divide(
            counts, support[:, None], out=np.zeros(counts.shape, dtype=float), where=support[:, None] > 0
        )
        colour_max = 1.0
        colour_label = "fraction of the true class"
    else:
        colour_values = counts.astype(float)
        colour_max = max(float(counts.max()), 1.0)
        colour_label = "samples"

    side = 2.6 + 0.95 * num_classes
    figure = Figure(figsize=(side + 1.3, side), dpi=150, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    image = axes.imshow(colour_values, cmap="Blues", vmin=0.0, vmax=colour_max, interpolation="nearest")
    colourbar = figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    colourbar.set_label(colour_label)

    font_size = 11 if num_classes <= 6 else max(6, 11 - (num_classes - 6))
    for true_index in range(num_classes):
        for pred_index in range(num_classes):
            count = int(counts[true_index, pred_index])
            text = str(count)
            if normalize and support[true_index] > 0:
                text += f"\n{100.0 * colour_values[true_index, pred_index]:.0f}%"
            # White text on dark cells, black on light ones.
            dark_cell = colour_values[true_index, pred_index] > 0.55 * colour_max
            axes.text(
                pred_index,
                true_index,
                text,
                ha="center",
                va="center",
                fontsize=font_size,
                color="white" if dark_cell else "black",
            )

    rotate_names = num_classes > 3 or max(len(name) for name in names) > 10
    axes.set_xticks(
        range(num_classes),
        labels=names,
        rotation=30 if rotate_names else 0,
        ha="right" if rotate_names else "center",
        rotation_mode="anchor",
    )
    axes.set_yticks(range(num_classes), labels=[f"{name}\n(n={int(n)})" for name, n in zip(names, support)])
    axes.set_xlabel("Predicted class")
    axes.set_ylabel("True class")
    # Thin white lines between cells keep neighbouring cells of similar colour apart.
    axes.set_xticks(np.arange(-0.5, num_classes, 1.0), minor=True)
    axes.set_yticks(np.arange(-0.5, num_classes, 1.0), minor=True)
    axes.grid(which="minor", color="white", linewidth=1.5)
    axes.tick_params(which="both", length=0)
    if title:
        axes.set_title(title)

    from ..atomic import atomic_write_bytes

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    atomic_write_bytes(path, buffer.getvalue())
    return path


__all__ = [
    "HEADLINE_METRICS",
    "UF1_UAR_METRIC_PATH",
    "FoldPredictions",
    "classification_metrics",
    "compute_metrics_for_trainer",
    "confusion_matrix",
    "load_uf1_uar_metric",
    "make_compute_metrics",
    "metrics_from_confusion_matrix",
    "plot_confusion_matrix",
    "pooled_loso_metrics",
]
