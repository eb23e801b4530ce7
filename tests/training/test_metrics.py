"""Tests of fmanet_hf.training.metrics: accuracy / UF1 / UAR, LOSO pooling, Trainer glue,
the shipped ``evaluate`` module and the confusion-matrix plot.

Expected values come from the hand-worked example below, not from the code under test.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

import numpy as np
import pytest

from fmanet_hf.errors import FMANetError, FMANetInputError
from fmanet_hf.training.metrics import (
    UF1_UAR_METRIC_PATH,
    FoldPredictions,
    classification_metrics,
    compute_metrics_for_trainer,
    confusion_matrix,
    make_compute_metrics,
    metrics_from_confusion_matrix,
    plot_confusion_matrix,
    pooled_loso_metrics,
)

# --------------------------------------------------------------------------------------
# The hand-worked example: 3 classes, 12 samples, 3 LOSO folds.
#
# fold s1 (casme2): true [0, 0, 1, 2]  pred [0, 1, 1, 2]
# fold s2 (casme2): true [0, 0, 0, 1]  pred [0, 0, 2, 1]   class 2 never true, predicted once
# fold s3 (samm):   true [1, 1, 1, 0]  pred [1, 0, 1, 0]   class 2 neither true nor predicted
#
# Pooled confusion matrix (rows true, columns predicted):
#            p0 p1 p2 | support
#   t0    [  4, 1, 1 ] | 6
#   t1    [  1, 4, 0 ] | 5
#   t2    [  0, 0, 1 ] | 1
#   column sums 5, 5, 2
# class 0: TP 4, FP 1, FN 2 -> F1 = 8/(8+1+2) = 8/11, recall = 4/6 = 2/3
# class 1: TP 4, FP 1, FN 1 -> F1 = 8/10 = 4/5,      recall = 4/5
# class 2: TP 1, FP 1, FN 0 -> F1 = 2/3,             recall = 1
# accuracy = 9/12 = 3/4
# UF1 = (8/11 + 4/5 + 2/3) / 3 = (120 + 132 + 110) / 165 / 3 = 362/495
# UAR = (2/3 + 4/5 + 1) / 3 = (10 + 12 + 15) / 15 / 3 = 37/45
#
# Per fold:
# s1: cm [[1,1,0],[0,1,0],[0,0,1]]
#     F1: c0 TP1 FP0 FN1 -> 2/3; c1 TP1 FP1 FN0 -> 2/3; c2 -> 1       UF1 = 7/9
#     recall: c0 1/2, c1 1, c2 1                                         UAR = 5/6
# s2: cm [[2,0,1],[0,1,0],[0,0,0]]
#     F1: c0 TP2 FP0 FN1 -> 4/5; c1 -> 1; c2 TP0 FP1 FN0 -> 0 (counts)  UF1 = 3/5
#     recall: c0 2/3, c1 1, c2 undefined (left out)                     UAR = 5/6
# s3: cm [[1,0,0],[1,2,0],[0,0,0]]
#     F1: c0 TP1 FP1 FN0 -> 2/3; c1 TP2 FP0 FN1 -> 4/5; c2 0/0 (left out) UF1 = 11/15
#     recall: c0 1, c1 2/3                                               UAR = 5/6
#     accuracy 3/4 in every fold.
# mean of per-fold UF1 = (7/9 + 3/5 + 11/15) / 3 = (35 + 27 + 33) / 45 / 3 = 19/27  != 362/495
# mean of per-fold UAR = 5/6                                                          != 37/45
#
# by dataset: casme2 = folds s1 + s2:
#   cm [[3,1,1],[0,2,0],[0,0,1]], column sums 3, 3, 2
#   F1: c0 TP3 FP0 FN2 -> 6/8 = 3/4; c1 TP2 FP1 FN0 -> 4/5; c2 TP1 FP1 FN0 -> 2/3
#   UF1 = (3/4 + 4/5 + 2/3) / 3 = (45 + 48 + 40) / 60 / 3 = 133/180
#   recall: 3/5, 1, 1 -> UAR = 13/15; accuracy 6/8 = 3/4
# samm = fold s3: UF1 11/15, UAR 5/6, accuracy 3/4
# --------------------------------------------------------------------------------------
CLASS_NAMES = ["negative", "positive", "surprise"]
HAND_FOLDS = [
    {"subject": "s1", "y_true": [0, 0, 1, 2], "y_pred": [0, 1, 1, 2], "dataset": "casme2"},
    {"subject": "s2", "y_true": [0, 0, 0, 1], "y_pred": [0, 0, 2, 1], "dataset": "casme2"},
    {"subject": "s3", "y_true": [1, 1, 1, 0], "y_pred": [1, 0, 1, 0], "dataset": "samm"},
]
POOLED_UF1 = 362 / 495
POOLED_UAR = 37 / 45


def _pooled_labels(folds):
    y_true = [label for fold in folds for label in fold["y_true"]]
    y_pred = [label for fold in folds for label in fold["y_pred"]]
    return y_true, y_pred


# --------------------------------------------------------------------------------------
# The evaluate-module check runs in a fresh process (so HF_HOME and the offline switches are
# read by a clean `import evaluate`). Importing evaluate takes ~7 s (it imports transformers
# pipelines), so the process is started when the first test of this file runs and overlaps
# with the other tests; the test at the end of the file collects its result.
# --------------------------------------------------------------------------------------
_EVALUATE_SCRIPT = """
import json
from fmanet_hf.training.metrics import load_uf1_uar_metric
metric = load_uf1_uar_metric()
with_count = metric.compute(predictions=PREDICTIONS, references=REFERENCES, num_classes=3)
for prediction, reference in zip(PREDICTIONS, REFERENCES):
    metric.add(prediction=prediction, reference=reference)
incremental = metric.compute()
print(json.dumps([with_count, incremental]))
"""


def _offline_env(hf_home):
    env = dict(os.environ)
    env.update(
        HF_HOME=str(hf_home),
        HF_HUB_OFFLINE="1",
        HF_EVALUATE_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        OMP_NUM_THREADS="1",
    )
    return env


@pytest.fixture(scope="module")
def evaluate_subprocess(tmp_path_factory):
    """A running ``python -c <load the evaluate module offline>`` and its work folder."""
    work_dir = tmp_path_factory.mktemp("evaluate_offline")
    y_true, y_pred = _pooled_labels(HAND_FOLDS)
    script = _EVALUATE_SCRIPT.replace("PREDICTIONS", repr(y_pred)).replace("REFERENCES", repr(y_true))
    # Output goes to files, not pipes, so a chatty child can never block on a full pipe.
    with open(work_dir / "stdout.txt", "w") as stdout, open(work_dir / "stderr.txt", "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-c", script],
            env=_offline_env(work_dir / "hf_home"),
            cwd=work_dir,
            stdout=stdout,
            stderr=stderr,
        )
    yield process, work_dir
    if process.poll() is None:  # the test was deselected or failed early
        process.kill()
    process.wait()


@pytest.fixture(scope="module", autouse=True)
def _start_evaluate_subprocess_early(evaluate_subprocess):
    yield


# --------------------------------------------------------------------------------------
# confusion matrix and single-set metrics
# --------------------------------------------------------------------------------------
def test_confusion_matrix_matches_hand_count():
    y_true, y_pred = _pooled_labels(HAND_FOLDS)
    cm = confusion_matrix(y_true, y_pred, 3)
    assert cm.dtype == np.int64 and cm.shape == (3, 3)
    np.testing.assert_array_equal(cm, [[4, 1, 1], [1, 4, 0], [0, 0, 1]])


def test_classification_metrics_on_hand_example():
    y_true, y_pred = _pooled_labels(HAND_FOLDS)
    metrics = classification_metrics(y_true, y_pred, 3, CLASS_NAMES)
    assert metrics["accuracy"] == pytest.approx(3 / 4)
    assert metrics["uf1"] == pytest.approx(POOLED_UF1)
    assert metrics["uar"] == pytest.approx(POOLED_UAR)
    assert metrics["per_class_f1"] == pytest.approx([8 / 11, 4 / 5, 2 / 3])
    assert metrics["per_class_recall"] == pytest.approx([2 / 3, 4 / 5, 1.0])
    assert metrics["support"] == [6, 5, 1]
    assert metrics["num_samples"] == 12
    assert metrics["class_names"] == CLASS_NAMES
    assert metrics["confusion_matrix"] == [[4, 1, 1], [1, 4, 0], [0, 0, 1]]
    # The result goes into JSON results files as is.
    assert json.loads(json.dumps(metrics)) == metrics


def test_class_predicted_but_never_true_counts_as_zero_f1():
    # Fold s2 of the hand example.
    metrics = classification_metrics([0, 0, 0, 1], [0, 0, 2, 1], 3)
    assert metrics["per_class_f1"] == pytest.approx([4 / 5, 1.0, 0.0])
    assert metrics["per_class_recall"][2] is None
    assert metrics["uf1"] == pytest.approx(3 / 5)
    assert metrics["uar"] == pytest.approx(5 / 6)
    assert metrics["uf1_classes"] == ["0", "1", "2"]
    assert metrics["uar_classes"] == ["0", "1"]


def test_class_neither_true_nor_predicted_is_left_out():
    # Fold s3 of the hand example.
    metrics = classification_metrics([1, 1, 1, 0], [1, 0, 1, 0], 3)
    assert metrics["per_class_f1"][2] is None and metrics["per_class_recall"][2] is None
    assert metrics["uf1"] == pytest.approx(11 / 15)
    assert metrics["uar"] == pytest.approx(5 / 6)
    # Adding classes that never occur changes no score.
    wider = classification_metrics([1, 1, 1, 0], [1, 0, 1, 0], 7)
    for name in ("accuracy", "uf1", "uar"):
        assert wider[name] == pytest.approx(metrics[name])


def test_perfect_prediction_scores_one():
    labels = [0, 1, 2, 2, 1, 0, 0]
    metrics = classification_metrics(labels, labels, 4)  # class 3 absent everywhere
    assert metrics["accuracy"] == metrics["uf1"] == metrics["uar"] == 1.0


def test_single_sample_never_nan():
    right = classification_metrics([2], [2], 3)
    wrong = classification_metrics([2], [0], 3)
    assert right["uf1"] == right["uar"] == 1.0
    assert wrong["uf1"] == wrong["uar"] == wrong["accuracy"] == 0.0


def _reference_scores(y_true, y_pred, num_classes):
    """An independent plain-Python implementation of the documented definitions."""
    f1_values, recall_values = [], []
    for c in range(num_classes):
        tp = sum(1 for t, p in zip(y_true, y_pred) if t == c and p == c)
        fp = sum(1 for t, p in zip(y_true, y_pred) if t != c and p == c)
        fn = sum(1 for t, p in zip(y_true, y_pred) if t == c and p != c)
        if tp + fp + fn > 0:
            f1_values.append(2 * tp / (2 * tp + fp + fn))
        if tp + fn > 0:
            recall_values.append(tp / (tp + fn))
    accuracy = sum(t == p for t, p in zip(y_true, y_pred)) / len(y_true)
    return accuracy, sum(f1_values) / len(f1_values), sum(recall_values) / len(recall_values)


def test_matches_plain_python_reference_on_random_data():
    rng = np.random.default_rng(7)
    for trial in range(50):
        num_classes = int(rng.integers(2, 6))
        size = int(rng.integers(1, 30))
        y_true = rng.integers(0, num_classes, size).tolist()
        y_pred = rng.integers(0, num_classes, size).tolist()
        metrics = classification_metrics(y_true, y_pred, num_classes)
        accuracy, uf1, uar = _reference_scores(y_true, y_pred, num_classes)
        assert metrics["accuracy"] == pytest.approx(accuracy)
        assert metrics["uf1"] == pytest.approx(uf1)
        assert metrics["uar"] == pytest.approx(uar)
        assert 0.0 <= metrics["uf1"] <= 1.0 and 0.0 <= metrics["uar"] <= 1.0


def test_metrics_from_confusion_matrix_agrees():
    cm = np.array([[4, 1, 1], [1, 4, 0], [0, 0, 1]])
    metrics = metrics_from_confusion_matrix(cm)
    assert metrics["uf1"] == pytest.approx(POOLED_UF1)
    assert metrics["uar"] == pytest.approx(POOLED_UAR)


# --------------------------------------------------------------------------------------
# LOSO pooling
# --------------------------------------------------------------------------------------
def test_pooled_loso_on_hand_example():
    result = pooled_loso_metrics(HAND_FOLDS, num_classes=3, class_names=CLASS_NAMES)
    assert result["accuracy"] == pytest.approx(3 / 4)
    assert result["uf1"] == pytest.approx(POOLED_UF1)
    assert result["uar"] == pytest.approx(POOLED_UAR)
    assert result["num_folds"] == 3 and result["num_samples"] == 12
    assert result["confusion_matrix"] == [[4, 1, 1], [1, 4, 0], [0, 0, 1]]

    per_fold = {fold["subject"]: fold for fold in result["per_fold"]}
    assert per_fold["s1"]["uf1"] == pytest.approx(7 / 9)
    assert per_fold["s2"]["uf1"] == pytest.approx(3 / 5)
    assert per_fold["s3"]["uf1"] == pytest.approx(11 / 15)
    assert [per_fold[s]["uar"] for s in ("s1", "s2", "s3")] == pytest.approx([5 / 6] * 3)
    assert per_fold["s3"]["datasets"] == ["samm"]

    assert result["per_fold_mean_uf1"] == pytest.approx(19 / 27)
    assert result["per_fold_mean_uar"] == pytest.approx(5 / 6)
    assert result["per_fold_mean_accuracy"] == pytest.approx(3 / 4)
    # The protocol's pooled numbers are not the mean of the folds.
    assert result["uf1"] != pytest.approx(result["per_fold_mean_uf1"], abs=1e-3)
    assert result["uar"] != pytest.approx(result["per_fold_mean_uar"], abs=1e-3)

    assert sorted(result["by_dataset"]) == ["casme2", "samm"]
    casme2 = result["by_dataset"]["casme2"]
    assert casme2["num_samples"] == 8
    assert casme2["confusion_matrix"] == [[3, 1, 1], [0, 2, 0], [0, 0, 1]]
    assert casme2["uf1"] == pytest.approx(133 / 180)
    assert casme2["uar"] == pytest.approx(13 / 15)
    assert result["by_dataset"]["samm"]["uf1"] == pytest.approx(11 / 15)
    assert result["by_dataset"]["samm"]["uar"] == pytest.approx(5 / 6)
    json.dumps(result)


def test_pooled_loso_accepts_dataclass_records_and_per_sample_datasets():
    folds = [
        FoldPredictions("s1", np.array([0, 0, 1, 2]), np.array([0, 1, 1, 2]), "casme2"),
        # One name per sample gives the same columns as one name per fold.
        FoldPredictions("s2", [0, 0, 0, 1], [0, 0, 2, 1], ["casme2"] * 4),
        {"test_subject": "s3", "y_true": (1, 1, 1, 0), "y_pred": (1, 0, 1, 0), "dataset": "samm"},
    ]
    result = pooled_loso_metrics(folds, num_classes=3)
    assert result["uf1"] == pytest.approx(POOLED_UF1)
    assert result["by_dataset"]["casme2"]["uf1"] == pytest.approx(133 / 180)


def test_pooled_loso_numpy_subject_ids_come_back_json_ready():
    folds = [
        FoldPredictions(np.int64(index + 1), fold["y_true"], fold["y_pred"], fold["dataset"])
        for index, fold in enumerate(HAND_FOLDS)
    ]
    result = pooled_loso_metrics(folds, num_classes=3)
    assert [fold["subject"] for fold in result["per_fold"]] == [1, 2, 3]
    assert type(result["per_fold"][0]["subject"]) is int
    json.dumps(result)
    assert isinstance(folds[0].subject, np.int64)  # the caller's records are left as they were


def test_pooled_loso_without_datasets_and_inferred_class_count():
    folds = [{key: value for key, value in fold.items() if key != "dataset"} for fold in HAND_FOLDS]
    result = pooled_loso_metrics(folds)
    assert result["by_dataset"] == {}
    assert result["num_classes"] == 3
    assert result["uf1"] == pytest.approx(POOLED_UF1)


def test_pooled_loso_is_invariant_to_sample_and_fold_order():
    reference = pooled_loso_metrics(HAND_FOLDS, num_classes=3)
    shuffler = random.Random(3)
    for _ in range(10):
        shuffled_folds = []
        for fold in HAND_FOLDS:
            order = list(range(len(fold["y_true"])))
            shuffler.shuffle(order)
            shuffled_folds.append(
                {
                    **fold,
                    "y_true": [fold["y_true"][i] for i in order],
                    "y_pred": [fold["y_pred"][i] for i in order],
                }
            )
        shuffler.shuffle(shuffled_folds)
        result = pooled_loso_metrics(shuffled_folds, num_classes=3)
        for name in ("accuracy", "uf1", "uar", "per_fold_mean_uf1", "per_fold_mean_uar"):
            assert result[name] == pytest.approx(reference[name])
        assert result["confusion_matrix"] == reference["confusion_matrix"]
        for dataset_name in ("casme2", "samm"):
            assert result["by_dataset"][dataset_name]["uf1"] == pytest.approx(
                reference["by_dataset"][dataset_name]["uf1"]
            )


def test_pooled_equals_metrics_on_concatenated_predictions():
    rng = np.random.default_rng(11)
    folds = [
        {"subject": f"sub{index:02d}", "y_true": rng.integers(0, 5, size), "y_pred": rng.integers(0, 5, size)}
        for index, size in enumerate(rng.integers(1, 6, 20))
    ]
    pooled = pooled_loso_metrics(folds, num_classes=5)
    concatenated = classification_metrics(
        np.concatenate([fold["y_true"] for fold in folds]), np.concatenate([fold["y_pred"] for fold in folds]), 5
    )
    for name in ("accuracy", "uf1", "uar"):
        assert pooled[name] == pytest.approx(concatenated[name])


# --------------------------------------------------------------------------------------
# Trainer glue
# --------------------------------------------------------------------------------------
def _hand_logits(predicted_classes, num_classes=3):
    logits = np.full((len(predicted_classes), num_classes), -1.0, dtype=np.float32)
    logits[np.arange(len(predicted_classes)), predicted_classes] = 2.0
    return logits


def test_trainer_compute_metrics_on_eval_prediction():
    from transformers.trainer_utils import EvalPrediction

    y_true, y_pred = _pooled_labels(HAND_FOLDS)
    eval_pred = EvalPrediction(predictions=_hand_logits(y_pred), label_ids=np.array(y_true))
    expected = {"accuracy": 3 / 4, "uf1": POOLED_UF1, "uar": POOLED_UAR}

    compute_metrics = make_compute_metrics(3)
    scores = compute_metrics(eval_pred)
    assert set(scores) == set(expected)
    assert all(type(value) is float for value in scores.values())
    assert scores == pytest.approx(expected)
    assert compute_metrics_for_trainer(eval_pred) == pytest.approx(expected)

    # A model returning (logits, attention map, phase weights) gives a tuple: logits first.
    attention = np.zeros((len(y_pred), 1, 4, 4), dtype=np.float32)
    tuple_pred = EvalPrediction(predictions=(_hand_logits(y_pred), attention), label_ids=np.array(y_true))
    assert compute_metrics(tuple_pred) == pytest.approx(expected)
    # preprocess_logits_for_metrics may have taken the argmax already.
    assert compute_metrics((np.array(y_pred), np.array(y_true))) == pytest.approx(expected)


def test_trainer_compute_metrics_rejects_wrong_logit_width():
    compute_metrics = make_compute_metrics(5)
    with pytest.raises(FMANetInputError, match="num_classes=5"):
        compute_metrics((_hand_logits([0, 1, 2]), np.array([0, 1, 2])))


# --------------------------------------------------------------------------------------
# Bad inputs
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("y_true", "y_pred", "num_classes", "message"),
    [
        ([0, 1], [0], 2, "same length"),
        ([0, 3], [0, 1], 3, "num_classes is 3"),
        ([0, -1], [0, 1], 3, "negative"),
        ([0.0, 1.0], [0, 1], 2, "integer class indices"),
        ([0, 1], np.zeros((2, 3), dtype=np.float32), 3, "logits"),
        (["a", "b"], [0, 1], 2, "integer class indices"),
        ([], [], 3, "zero samples"),
        ([0, 1], [0, 1], 0, "num_classes"),
        ([0, 1], [0, 1], 2.0, "num_classes"),
    ],
)
def test_bad_inputs_raise_package_error(y_true, y_pred, num_classes, message):
    with pytest.raises(FMANetInputError, match=message) as caught:
        classification_metrics(y_true, y_pred, num_classes)
    assert isinstance(caught.value, FMANetError) and isinstance(caught.value, ValueError)


def test_bad_class_names_and_matrices_raise():
    with pytest.raises(FMANetInputError, match="class_names"):
        classification_metrics([0, 1], [0, 1], 2, ["only one"])
    with pytest.raises(FMANetInputError, match="square"):
        metrics_from_confusion_matrix(np.ones((2, 3), dtype=int))
    with pytest.raises(FMANetInputError, match="zero samples"):
        metrics_from_confusion_matrix(np.zeros((3, 3), dtype=int))


@pytest.mark.parametrize(
    ("folds", "message"),
    [
        ([], "at least one fold"),
        ([{"subject": "s1", "y_true": [], "y_pred": []}], "no test samples"),
        ([{"subject": "s1", "y_true": [0]}], "y_pred"),
        ([{"y_true": [0], "y_pred": [0]}], "subject"),
        (
            [{"subject": "s1", "y_true": [0], "y_pred": [0]}, {"subject": "s1", "y_true": [1], "y_pred": [1]}],
            "more than one fold",
        ),
        (
            [
                {"subject": "s1", "y_true": [0], "y_pred": [0], "dataset": "samm"},
                {"subject": "s2", "y_true": [1], "y_pred": [1]},
            ],
            "all or none",
        ),
        ([{"subject": "s1", "y_true": [0, 1], "y_pred": [0, 1], "dataset": ["samm"]}], "one name per sample"),
        ([{"subject": "s9", "y_true": [0, 5], "y_pred": [0, 1]}], "s9"),
        (["not a record"], "FoldPredictions"),
    ],
)
def test_bad_folds_raise_package_error(folds, message):
    with pytest.raises(FMANetInputError, match=message):
        pooled_loso_metrics(folds, num_classes=3)


# --------------------------------------------------------------------------------------
# Plot
# --------------------------------------------------------------------------------------
def test_plot_confusion_matrix_writes_a_png(tmp_path):
    cm = np.array([[4, 1, 1], [1, 4, 0], [0, 0, 0]])  # a class without true samples must not break it
    target = tmp_path / "plots" / "cm.png"
    written = plot_confusion_matrix(cm, CLASS_NAMES, target, title="hand example")
    assert written == target and target.is_file()
    data = target.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width = int.from_bytes(data[16:20], "big")
    height = int.from_bytes(data[20:24], "big")
    assert 400 <= width <= 3000 and 400 <= height <= 3000
    assert 5_000 < len(data) < 2_000_000
    # Atomic write: no temporary file left beside the PNG.
    assert [path.name for path in target.parent.iterdir()] == ["cm.png"]

    plot_confusion_matrix(cm, CLASS_NAMES, target, normalize=False)  # overwrite in place
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(FMANetInputError, match="class_names"):
        plot_confusion_matrix(cm, ["a", "b"], tmp_path / "bad.png")


# --------------------------------------------------------------------------------------
# Cross-check against scikit-learn (an implementation written by other people)
#
# UF1 is sklearn's f1_score(average="macro") and UAR its balanced_accuracy_score, both over the
# classes that occur in y_true or y_pred (sklearn's default label set). They agree on every input,
# including classes predicted but never true (F1 = 0, no recall) and classes never predicted.
# The one edge case where the definitions differ: asked to score a class that occurs in neither
# array (f1_score(labels=range(C))), sklearn counts it with F1 = zero_division (0 by default)
# while the package leaves it out (0/0 is undefined); with zero_division=np.nan sklearn leaves it
# out too. Likewise recall_score(average="macro") counts a class predicted but never true as
# recall 0, which balanced_accuracy_score (and UAR) leave out.
# --------------------------------------------------------------------------------------
def _random_labels(rng, num_classes: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Random y_true / y_pred where each array draws from its own random subset of the classes,
    so that classes missing from the predictions, from the truth, or from both are common."""
    true_classes = rng.choice(num_classes, int(rng.integers(1, num_classes + 1)), replace=False)
    pred_classes = rng.choice(num_classes, int(rng.integers(1, num_classes + 1)), replace=False)
    return rng.choice(true_classes, size), rng.choice(pred_classes, size)


def _sklearn_scores(y_true, y_pred) -> dict[str, float]:
    import warnings

    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "y_pred contains classes not in y_true": the case under test
        return {
            "accuracy": accuracy_score(y_true, y_pred),
            "uf1": f1_score(y_true, y_pred, average="macro"),
            "uar": balanced_accuracy_score(y_true, y_pred),
        }


def test_uf1_and_uar_equal_sklearn_macro_f1_and_balanced_accuracy_on_random_labels():
    rng = np.random.default_rng(2024)
    seen = {"class never predicted": 0, "class predicted but never true": 0, "class in neither": 0}
    for _ in range(400):
        num_classes = int(rng.integers(2, 8))
        y_true, y_pred = _random_labels(rng, num_classes, int(rng.integers(1, 40)))
        ours = classification_metrics(y_true, y_pred, num_classes)
        theirs = _sklearn_scores(y_true, y_pred)
        for name in ("accuracy", "uf1", "uar"):
            assert ours[name] == pytest.approx(theirs[name], abs=1e-12), (name, y_true.tolist(), y_pred.tolist())
        true_set, pred_set = set(y_true.tolist()), set(y_pred.tolist())
        seen["class never predicted"] += bool(true_set - pred_set)
        seen["class predicted but never true"] += bool(pred_set - true_set)
        seen["class in neither"] += len(true_set | pred_set) < num_classes
    assert min(seen.values()) > 50, seen  # the edge cases really were exercised


def test_pooled_loso_uf1_and_uar_equal_sklearn_on_the_concatenated_folds():
    rng = np.random.default_rng(5)
    for _ in range(30):
        num_classes = int(rng.integers(2, 6))
        folds = []
        for index in range(int(rng.integers(2, 12))):
            y_true, y_pred = _random_labels(rng, num_classes, int(rng.integers(1, 6)))
            folds.append({"subject": f"sub{index:02d}", "y_true": y_true, "y_pred": y_pred})
        pooled = pooled_loso_metrics(folds, num_classes=num_classes)
        theirs = _sklearn_scores(np.concatenate([f["y_true"] for f in folds]), np.concatenate([f["y_pred"] for f in folds]))
        for name in ("accuracy", "uf1", "uar"):
            assert pooled[name] == pytest.approx(theirs[name], abs=1e-12), name


def test_the_one_edge_case_where_sklearn_differs_a_class_in_neither_array():
    from sklearn.metrics import f1_score

    # Fold s3 of the hand example: class 2 is neither true nor predicted.
    y_true, y_pred, labels = [1, 1, 1, 0], [1, 0, 1, 0], [0, 1, 2]
    ours = classification_metrics(y_true, y_pred, 3)["uf1"]
    assert ours == pytest.approx(11 / 15)  # (2/3 + 4/5) / 2: class 2 left out
    # sklearn, asked for all 3 classes, scores the 0/0 class as zero_division = 0: (2/3 + 4/5 + 0) / 3.
    assert f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0) == pytest.approx(ours * 2 / 3)
    # With zero_division=nan it leaves the class out, as the package does.
    assert f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=np.nan) == pytest.approx(ours)


# --------------------------------------------------------------------------------------
# Import weight and the evaluate module (fresh processes, offline)
# --------------------------------------------------------------------------------------
def test_metrics_module_imports_only_numpy_at_top_level():
    # matplotlib and evaluate are slow to import and optional for most callers: metrics.py
    # must import them inside the functions that need them. Checked on the source because
    # the package __init__ itself already imports transformers/torch.
    import ast

    import fmanet_hf.training.metrics as metrics_module

    tree = ast.parse(open(metrics_module.__file__, encoding="utf-8").read())
    top_level_modules = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            top_level_modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            top_level_modules.add(node.module.split(".")[0])
    third_party = top_level_modules - set(sys.stdlib_module_names) - {"__future__"}
    assert third_party == {"numpy"}


def test_uf1_uar_folder_is_a_loadable_evaluate_script():
    # evaluate.load(<folder>) looks for <folder>/<folder name>.py and copies that ONE file into its
    # modules cache: so the script must be named after its folder, import nothing relatively (the
    # copy has no package around it) and define one evaluate.Metric whose _compute delegates to
    # classification_metrics, the single implementation. (The offline test below really loads it.)
    import ast

    script = UF1_UAR_METRIC_PATH / f"{UF1_UAR_METRIC_PATH.name}.py"
    assert script.is_file(), script
    tree = ast.parse(script.read_text(encoding="utf-8"))
    relative = [ast.unparse(node) for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level > 0]
    assert relative == [], f"relative imports break in evaluate's copy: {relative}"
    metrics = [
        node for node in tree.body
        if isinstance(node, ast.ClassDef) and [ast.unparse(base) for base in node.bases] == ["evaluate.Metric"]
    ]
    assert len(metrics) == 1, "exactly one evaluate.Metric subclass"
    methods = {node.name: node for node in metrics[0].body if isinstance(node, ast.FunctionDef)}
    assert {"_info", "_compute"} <= set(methods)
    called = {node.func.id for node in ast.walk(methods["_compute"]) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    assert "classification_metrics" in called


def test_evaluate_module_loads_offline_and_agrees(evaluate_subprocess):
    process, work_dir = evaluate_subprocess
    return_code = process.wait(timeout=180)
    stdout = (work_dir / "stdout.txt").read_text()
    stderr = (work_dir / "stderr.txt").read_text()
    assert return_code == 0, stderr[-3000:]
    with_count, incremental = json.loads(stdout.strip().splitlines()[-1])
    expected = {"accuracy": 3 / 4, "uf1": POOLED_UF1, "uar": POOLED_UAR}
    assert with_count == pytest.approx(expected)
    assert incremental == pytest.approx(expected)
    # The module was cached under the temporary HF_HOME, not the user's.
    assert any((work_dir / "hf_home").rglob("uf1_uar.py"))
