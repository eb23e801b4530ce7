"""``evaluate`` metric module: accuracy, UF1 and UAR as micro-expression recognition reports them.

Load it offline from the installed package (never from the Hub):

    from fmanet_hf.training.metrics import load_uf1_uar_metric
    metric = load_uf1_uar_metric()
    metric.compute(predictions=[0, 1, 2], references=[0, 1, 1], num_classes=3)

``evaluate`` copies this file into its modules cache, so it must not use relative imports;
it imports the installed ``fmanet_hf`` package, which holds the single implementation.
"""

import datasets
import evaluate

from fmanet_hf.training.metrics import classification_metrics

_DESCRIPTION = """
Accuracy, UF1 (unweighted F1: mean over classes of F1_c = 2TP/(2TP+FP+FN)) and UAR
(unweighted average recall: mean over classes of TP/(TP+FN)), the scores of micro-expression
recognition benchmarks (MEGC). Absent classes follow the MEGC convention: UAR averages over
classes with at least one reference sample; UF1 leaves out a class that has neither
references nor predictions, and counts a class predicted but never referenced with F1 = 0.
For leave-one-subject-out results, add the predictions of ALL folds (pooled) before computing.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int): predicted class indices, N values in [0, num_classes).
    references (list of int): ground-truth class indices, N values in [0, num_classes).
    num_classes (int, optional): number of classes C. Default: the largest index seen + 1,
        which gives the same UF1 and UAR (classes never seen are left out anyway).
Returns:
    accuracy (float), uf1 (float), uar (float), each in [0, 1].
Examples:
    >>> metric = load_uf1_uar_metric()
    >>> metric.compute(predictions=[0, 0, 1, 2], references=[0, 1, 1, 2], num_classes=3)
    {'accuracy': 0.75, 'uf1': 0.7777777777777778, 'uar': 0.8333333333333334}
"""

_CITATION = """
@inproceedings{see2019megc,
  title     = {MEGC 2019 -- The Second Facial Micro-Expressions Grand Challenge},
  author    = {See, John and Yap, Moi Hoon and Li, Jingting and Hong, Xiaopeng and Wang, Su-Jing},
  booktitle = {14th IEEE International Conference on Automatic Face and Gesture Recognition (FG 2019)},
  year      = {2019}
}
"""


class UF1UAR(evaluate.Metric):
    """Accuracy, UF1 and UAR computed by ``fmanet_hf.training.metrics.classification_metrics``."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Value("int32"),
                    "references": datasets.Value("int32"),
                }
            ),
        )

    def _compute(self, predictions, references, num_classes=None):
        """Score N predictions against N references; returns accuracy, uf1, uar as floats."""
        if num_classes is None:
            labels_seen = list(predictions) + list(references)
            # Negative labels are rejected by classification_metrics with a clear message.
            num_classes = max(labels_seen) + 1 if labels_seen and max(labels_seen) >= 0 else 1
        scores = classification_metrics(references, predictions, num_classes)
        return {"accuracy": scores["accuracy"], "uf1": scores["uf1"], "uar": scores["uar"]}
