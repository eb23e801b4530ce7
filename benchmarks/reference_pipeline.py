"""The "usual research pipeline" of micro-expression recognition, as a speed baseline.

This is what the benchmarks in ``run_benchmarks.py`` compare fmanet-hf against. It is
written the way MER research code usually is (one script, one sample after another, no
cache, the inputs recomputed inside the LOSO fold loop) and it is NOT used by the package.
It exists only so that the package's speed can be reported against a pipeline measured on
the same machine in the same run.

Per sample (``preprocess_sample``):

1. read onset, apex and offset with ``cv2.imread`` as grey uint8;
2. dlib's frontal face detector (upsampling 1) and 68-landmark shape predictor on the
   ONSET frame; the landmarks' bounding box plus a margin of ``CROP_MARGIN`` of its side
   on every side is cut out of all three frames and resized to 128 x 128 uint8;
3. ``cv2.optflow.DualTVL1OpticalFlow_create()`` with OpenCV's DEFAULT parameters (5
   scales, 5 warps, 30 x 10 iterations) on the uint8 crops, onset->apex and apex->offset,
   with OpenCV's default thread count;
4. numpy: per phase u, v and magnitude sqrt(u^2 + v^2) (pixels), each min-max normalised
   to [0, 1], resized to 64 x 64 -> a (6, 64, 64) float32 array
   [u1, v1, m1, u2, v2, m2].

Reference LOSO (``run_reference_loso``): for each left-out subject, every sample's input
is computed again, then a fresh `FMANetForImageClassification` (default config, the
dataset's classes) is trained with the ``fmanet-hf loso`` schedule constants (epochs,
batch size, learning rate, weight decay from ``fmanet_hf.commands.common_flags``; epochs
``"auto"`` resolved by the package's own rule, so both pipelines train equally long),
AdamW at a constant learning rate over all parameters, a shuffling torch ``DataLoader``,
and the test subject is predicted after the final epoch. A full run takes hours on a
MEGC-size set, so the benchmark runner either runs it in full on a subset of the subjects
(``--loso-subjects N``) or uses ``measure_reference_loso``: the preprocessing of all
samples timed once and the training of ``k`` folds, extrapolated to all folds.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import cv2
import numpy as np

CROP_SIZE = 128  # px: side of the face crop the flow is computed on
OUTPUT_SIZE = 64  # px: side of the model input
CROP_MARGIN = 0.1  # fraction of the landmark box's side added on each side
DETECTOR_UPSAMPLE = 1  # what most MER scripts pass to dlib's detector


def landmark_model_location() -> str:
    """Path of dlib's ``shape_predictor_68_face_landmarks.dat`` (face_recognition_models).

    Research scripts call ``face_recognition_models.pose_predictor_model_location()``.
    That package's ``__init__`` imports ``pkg_resources``, which recent setuptools no
    longer ship; then the same file is located inside the installed package directly.
    """
    try:
        import face_recognition_models

        return face_recognition_models.pose_predictor_model_location()
    except ImportError:
        import importlib.util

        spec = importlib.util.find_spec("face_recognition_models")
        if spec is None or not spec.submodule_search_locations:
            raise RuntimeError("the face_recognition_models package is not installed") from None
        for location in spec.submodule_search_locations:
            path = os.path.join(location, "models", "shape_predictor_68_face_landmarks.dat")
            if os.path.isfile(path):
                return path
        raise RuntimeError("face_recognition_models has no shape_predictor_68_face_landmarks.dat") from None


_DLIB_MODELS: tuple[Any, Any] | None = None


def dlib_models() -> tuple[Any, Any]:
    """(frontal face detector, 68-landmark predictor), loaded once per process as research
    scripts do at their top (loading the 100 MB predictor per sample would be unfair)."""
    global _DLIB_MODELS
    if _DLIB_MODELS is None:
        import dlib

        _DLIB_MODELS = (dlib.get_frontal_face_detector(), dlib.shape_predictor(landmark_model_location()))
    return _DLIB_MODELS


@dataclass
class ReferenceStats:
    """Counters of one reference preprocessing pass.

    Attributes:
        samples: samples processed.
        faces_not_found: samples where dlib found no face; their crop is the whole frame
            (research code would crash there; the benchmark keeps going and counts them).
    """

    samples: int = 0
    faces_not_found: int = 0


def face_box(onset: np.ndarray, stats: ReferenceStats | None = None) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) pixels of the 68-landmark bounding box plus margin, on the onset frame."""
    detector, predictor = dlib_models()
    faces = detector(onset, DETECTOR_UPSAMPLE)
    height, width = onset.shape
    if len(faces) == 0:
        if stats is not None:
            stats.faces_not_found += 1
        return 0, 0, width, height
    shape = predictor(onset, faces[0])
    points = np.array([[shape.part(i).x, shape.part(i).y] for i in range(68)])
    x0, y0 = points.min(axis=0)
    x1, y1 = points.max(axis=0)
    margin_x, margin_y = CROP_MARGIN * (x1 - x0), CROP_MARGIN * (y1 - y0)
    return (
        max(0, int(x0 - margin_x)),
        max(0, int(y0 - margin_y)),
        min(width, int(x1 + margin_x) + 1),
        min(height, int(y1 + margin_y) + 1),
    )


def tvl1_flow_uint8(previous: np.ndarray, following: np.ndarray) -> np.ndarray:
    """OpenCV's default Dual TV-L1 on two uint8 grey frames: (H, W, 2) float32 (u, v) in pixels."""
    optical_flow = cv2.optflow.DualTVL1OpticalFlow_create()
    return optical_flow.calc(previous, following, None)


def _minmax(channel: np.ndarray) -> np.ndarray:
    low, high = channel.min(), channel.max()
    return (channel - low) / (high - low + 1e-8)


def flow_channels(flow: np.ndarray) -> list[np.ndarray]:
    """u, v, magnitude of an (H, W, 2) flow, each min-max normalised to [0, 1], 64 x 64."""
    u, v = flow[..., 0], flow[..., 1]
    magnitude = np.sqrt(u**2 + v**2)
    return [cv2.resize(_minmax(c), (OUTPUT_SIZE, OUTPUT_SIZE)) for c in (u, v, magnitude)]


def preprocess_sample(onset_path: str, apex_path: str, offset_path: str, stats: ReferenceStats | None = None) -> np.ndarray:
    """One sample's model input, the research way: (6, 64, 64) float32 [u1, v1, m1, u2, v2, m2]."""
    onset = cv2.imread(onset_path, cv2.IMREAD_GRAYSCALE)
    apex = cv2.imread(apex_path, cv2.IMREAD_GRAYSCALE)
    offset = cv2.imread(offset_path, cv2.IMREAD_GRAYSCALE)
    x0, y0, x1, y1 = face_box(onset, stats)
    crops = [cv2.resize(frame[y0:y1, x0:x1], (CROP_SIZE, CROP_SIZE)) for frame in (onset, apex, offset)]
    onset_apex = tvl1_flow_uint8(crops[0], crops[1])
    apex_offset = tvl1_flow_uint8(crops[1], crops[2])
    if stats is not None:
        stats.samples += 1
    return np.stack(flow_channels(onset_apex) + flow_channels(apex_offset)).astype(np.float32)


def preprocess_all(samples: Sequence[dict[str, Any]], stats: ReferenceStats | None = None) -> np.ndarray:
    """Every sample's input, one after another: (N, 6, 64, 64) float32.

    Args:
        samples: rows with ``onset_path``, ``apex_path``, ``offset_path`` (a loader's dataset).
    """
    return np.stack([preprocess_sample(s["onset_path"], s["apex_path"], s["offset_path"], stats) for s in samples])


# --------------------------------------------------------------------------------------
# Reference LOSO
# --------------------------------------------------------------------------------------
def schedule_constants() -> dict[str, Any]:
    """The ``fmanet-hf loso`` schedule defaults (epochs, batch size, learning rate, weight decay)."""
    from fmanet_hf.commands import common_flags as commands

    return {
        "epochs": commands.DEFAULT_EPOCHS,
        "batch_size": commands.DEFAULT_BATCH_SIZE,
        "learning_rate": commands.DEFAULT_LEARNING_RATE,
        "weight_decay": commands.DEFAULT_WEIGHT_DECAY,
    }


def resolved_epochs(epochs: int | str, num_samples: int, num_subjects: int, batch_size: int) -> int:
    """``epochs``, or the package's ``"auto"`` rule (the CLI default) resolved as `run_loso`
    does it, on the mean fold's training size N - N / S, so both pipelines train alike."""
    if isinstance(epochs, str):
        from fmanet_hf.training.schedule import resolve_epochs

        return int(resolve_epochs(epochs, num_samples - num_samples / num_subjects, batch_size))
    return int(epochs)


def train_and_predict_fold(
    inputs: np.ndarray,
    labels: np.ndarray,
    subjects: np.ndarray,
    test_subject: str,
    class_names: Sequence[str],
    *,
    epochs: int | str,
    batch_size: int,
    learning_rate: float,
    weight_decay: float,
    seed: int = 0,
) -> dict[str, Any]:
    """Train a fresh FMANet on every subject but ``test_subject``; predict it after the last epoch.

    Args:
        inputs: (N, 6, 64, 64) float32 from `preprocess_all`.
        labels: (N,) int class indices; subjects: (N,) subject names.

    Returns:
        ``{"test_subject", "n_train", "n_test", "epochs", "y_true", "y_pred", "seconds"}``
        (``seconds``: wall time of training plus prediction).
    """
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from fmanet_hf import FMANetConfig, FMANetForImageClassification

    started = time.perf_counter()
    torch.manual_seed(seed)
    train = subjects != test_subject
    test = ~train
    x_train, y_train = torch.from_numpy(inputs[train]), torch.from_numpy(labels[train]).long()
    x_test, y_test = torch.from_numpy(inputs[test]), torch.from_numpy(labels[test]).long()
    epochs = resolved_epochs(epochs, len(labels), len(set(subjects.tolist())), batch_size)
    config = FMANetConfig(
        image_size=inputs.shape[-1],
        id2label={i: name for i, name in enumerate(class_names)},
        label2id={name: i for i, name in enumerate(class_names)},
    )
    model = FMANetForImageClassification(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=weight_decay)
    loader = DataLoader(TensorDataset(x_train, y_train), batch_size=batch_size, shuffle=True)
    for _ in range(epochs):
        model.train()
        for x, y in loader:
            optimizer.zero_grad()
            loss = model(pixel_values=x, labels=y).loss
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        predicted = model(pixel_values=x_test).logits.argmax(-1)
    return {
        "test_subject": str(test_subject),
        "n_train": int(train.sum()),
        "n_test": int(test.sum()),
        "epochs": epochs,
        "y_true": y_test.tolist(),
        "y_pred": predicted.tolist(),
        "seconds": time.perf_counter() - started,
    }


def _natural_key(text: str) -> list[Any]:
    import re

    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def dataset_rows(dataset: Any) -> tuple[list[dict[str, Any]], np.ndarray, np.ndarray, list[str]]:
    """(rows with frame paths, labels (N,), subjects (N,), class names) of a loader's dataset."""
    columns = ["onset_path", "apex_path", "offset_path", "label_id", "subject"]
    plain = dataset.select_columns(columns).with_format(None)
    rows = [dict(row) for row in plain]
    feature = dataset.features["label_id"]
    class_names = list(getattr(feature, "names", None) or [str(i) for i in range(max(r["label_id"] for r in rows) + 1)])
    labels = np.array([r["label_id"] for r in rows], dtype=np.int64)
    subjects = np.array([r["subject"] for r in rows])
    return rows, labels, subjects, class_names


def run_reference_loso(
    dataset: Any,
    *,
    max_folds: int | None = None,
    seed: int = 0,
    schedule: dict[str, Any] | None = None,
    on_fold: Any = None,
) -> list[dict[str, Any]]:
    """The literal research LOSO: for each subject, recompute every input, train, predict.

    Hours on a MEGC-size set; the benchmark runs it in full on a subset of subjects
    (``run_benchmarks.py --loso-subjects N``) or extrapolates with `measure_reference_loso`.

    Args:
        schedule: overrides of `schedule_constants` (``--quick`` trains 1 epoch).
        on_fold: called with each fold's record when it is done (progress).

    Returns:
        One `train_and_predict_fold` record per fold (subjects in natural order), plus
        ``prep_seconds``: that fold's recomputation of every input (s).
    """
    rows, labels, subjects, class_names = dataset_rows(dataset)
    settings = {**schedule_constants(), **(schedule or {})}
    records = []
    for test_subject in sorted(set(subjects.tolist()), key=_natural_key)[:max_folds]:
        started = time.perf_counter()
        inputs = preprocess_all(rows)  # research scripts load and preprocess inside the fold loop
        prep_seconds = time.perf_counter() - started
        record = train_and_predict_fold(inputs, labels, subjects, test_subject, class_names, seed=seed, **settings)
        records.append({**record, "prep_seconds": prep_seconds})
        if on_fold is not None:
            on_fold(records[-1])
    return records


@dataclass
class ReferenceLosoEstimate:
    """Measured pieces of the reference LOSO and its extrapolation to all folds.

    Attributes:
        num_folds: folds of a full run (one per subject).
        prep_seconds: reference preprocessing of ALL samples, once (s).
        fold_seconds: training + prediction time of each measured fold (s).
        extrapolated_seconds: ``num_folds * (prep_seconds + mean(fold_seconds))`` (s): a
            full reference LOSO recomputes every input in every fold.
    """

    num_folds: int
    prep_seconds: float
    fold_seconds: list[float]
    fold_records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def mean_fold_seconds(self) -> float:
        return float(np.mean(self.fold_seconds))

    @property
    def extrapolated_seconds(self) -> float:
        return self.num_folds * (self.prep_seconds + self.mean_fold_seconds)

    @property
    def label(self) -> str:
        count = len(self.fold_seconds)
        return f"extrapolated from {count} measured fold{'' if count == 1 else 's'}"


def measure_reference_loso(
    dataset: Any,
    *,
    measured_folds: int = 3,
    inputs: np.ndarray | None = None,
    prep_seconds: float | None = None,
    schedule: dict[str, Any] | None = None,
    seed: int = 0,
) -> ReferenceLosoEstimate:
    """Time the reference preprocessing of all samples once and the training of the first
    ``measured_folds`` folds (subjects in natural order); see `ReferenceLosoEstimate`.

    Args:
        inputs, prep_seconds: reference inputs already computed (and their time) in this
            run, e.g. by the preprocessing benchmark; computed here when None.
        schedule: overrides of `schedule_constants` (``--quick`` trains 1 epoch).
    """
    rows, labels, subjects, class_names = dataset_rows(dataset)
    if inputs is None or prep_seconds is None:
        started = time.perf_counter()
        inputs = preprocess_all(rows)
        prep_seconds = time.perf_counter() - started
    order = sorted(set(subjects.tolist()), key=_natural_key)
    settings = {**schedule_constants(), **(schedule or {})}
    records = [
        train_and_predict_fold(inputs, labels, subjects, subject, class_names, seed=seed, **settings)
        for subject in order[: max(1, measured_folds)]
    ]
    return ReferenceLosoEstimate(
        num_folds=len(order),
        prep_seconds=float(prep_seconds),
        fold_seconds=[r["seconds"] for r in records],
        fold_records=records,
    )
