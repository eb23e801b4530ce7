"""Leave-one-subject-out (LOSO) training and evaluation of FMANet, leak-free by default.

One model per left-out subject (`fmanet_hf.data.loso_folds`), each trained from scratch on
the other subjects with a FIXED schedule; the held-out subject is predicted once, after the
final epoch. Its samples never reach the optimiser and are never used to choose anything
(epoch, checkpoint, threshold). Optionally the runner also records the numbers most
published MER code reports, where the best epoch is chosen per fold on the TEST subject's
accuracy; these are written separately as ``leaky_best_epoch_*`` for comparison only.

Results folder (``out_dir``)::

    run_config.json          model config + schedule + data digest; a rerun with other
                             settings into the same folder is refused (RunDirectoryError)
    folds/<subject>.json     one per completed fold (atomic); a rerun skips these folds
    folds/<subject>/         the fold's final model (only with save_fold_models=True)
    predictions.jsonl        one line per sample: sample_id, subject, dataset, true,
                             predicted, probabilities
    results.json             pooled metrics (pooled_loso_metrics), per-fold extras,
                             per-dataset columns, leaky numbers if asked, settings,
                             versions, seed, wall time
    confusion_matrix.png     pooled confusion matrix
    final_model/             with train_final_model=True: a model trained on ALL subjects
                             (save_pretrained + the processor settings), for deployment

Reproducibility: each fold's seed is derived from (seed, test subject), each epoch's
shuffle from (fold seed, epoch), and torch runs with deterministic algorithms, so a fold's
result does not depend on which folds ran before it: a run killed and resumed gives the
same predictions and metrics as an uninterrupted one.

Distributed (Accelerate): under ``accelerate launch`` / ``torchrun`` every process takes
part in every fold by default (data parallel: each global batch is split across processes
and gradients are averaged so that the update equals a single-process step on the global
batch); with ``fold_parallel=True`` process ``r`` of ``W`` trains the pending folds
``i`` with ``i % W == r`` alone. Only the main process writes files, except that in
fold-parallel mode each process writes its own folds' files.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import platform
import re
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..atomic import atomic_directory, atomic_write_json, atomic_write_text, remove_stale_temporaries
from ..errors import FMANetConfigError, FMANetError, LeakageError, RunDirectoryError
from .collate import PreparedTensors

logger = logging.getLogger(__name__)

RESULTS_FORMAT_VERSION = 1
RUN_CONFIG_NAME = "run_config.json"
RESULTS_NAME = "results.json"
PREDICTIONS_NAME = "predictions.jsonl"
CONFUSION_MATRIX_NAME = "confusion_matrix.png"
FOLDS_DIR = "folds"
FINAL_MODEL_DIR = "final_model"

OPTIMIZERS = ("adamw", "sgd")
LR_SCHEDULES = ("cosine", "constant")
CLASS_WEIGHTINGS = ("none", "balanced")

#: Parameters never weight-decayed: norms, biases and the modules' scalar-like parameters
#: (phase-fusion logits, modulation slope/threshold), whose "zero" is not a neutral value.
_NO_DECAY_NAME_PARTS = ("theta_logits", "log_slope", "threshold")

#: Config keys that describe where a config came from, not the model.
_VOLATILE_CONFIG_KEYS = ("transformers_version", "_name_or_path", "architectures", "dtype", "torch_dtype")

LEAKY_NOTE = (
    "LEAKY: for each fold the epoch with the highest accuracy ON THE TEST SUBJECT was chosen "
    "(as much published MER code does). This uses test labels for model selection and "
    "overestimates performance; it is recorded only to compare with such papers. The "
    "protocol's numbers are the top-level accuracy/uf1/uar (final epoch, leak-free)."
)


# --------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainingSchedule:
    """A fixed training schedule (no early stopping: nothing is chosen on held-out data).

    Attributes:
        epochs: passes over the training samples (>= 1).
        batch_size: GLOBAL batch size (samples per optimiser step, summed over processes).
        learning_rate: peak learning rate.
        weight_decay: decoupled weight decay (AdamW) or L2 (SGD) on conv/linear weights only.
        optimizer: ``"adamw"`` or ``"sgd"``.
        momentum: SGD momentum (ignored by AdamW).
        lr_schedule: ``"cosine"`` (per step from the peak to 0 at the end) or ``"constant"``.
        class_weighting: ``"none"`` or ``"balanced"`` (cross-entropy weight of class c =
            n / (K * n_c) over the K classes present in the fold's TRAINING labels).
    """

    epochs: int
    batch_size: int
    learning_rate: float
    weight_decay: float = 1e-4
    optimizer: str = "adamw"
    momentum: float = 0.0
    lr_schedule: str = "cosine"
    class_weighting: str = "none"

    def __post_init__(self) -> None:
        def fail(message: str) -> None:
            raise FMANetConfigError(f"Invalid training schedule: {message}")

        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                fail(f"{name} must be an integer >= 1, got {value!r}.")
        if not (isinstance(self.learning_rate, (int, float)) and math.isfinite(self.learning_rate) and self.learning_rate > 0):
            fail(f"learning_rate must be a finite number > 0, got {self.learning_rate!r}.")
        if not (isinstance(self.weight_decay, (int, float)) and self.weight_decay >= 0):
            fail(f"weight_decay must be >= 0, got {self.weight_decay!r}.")
        if self.optimizer not in OPTIMIZERS:
            fail(f"optimizer must be one of {list(OPTIMIZERS)}, got {self.optimizer!r}.")
        if not 0.0 <= float(self.momentum) < 1.0:
            fail(f"momentum must be in [0, 1), got {self.momentum!r}.")
        if self.lr_schedule not in LR_SCHEDULES:
            fail(f"lr_schedule must be one of {list(LR_SCHEDULES)}, got {self.lr_schedule!r}.")
        if self.class_weighting not in CLASS_WEIGHTINGS:
            fail(f"class_weighting must be one of {list(CLASS_WEIGHTINGS)}, got {self.class_weighting!r}.")

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible dict of the schedule."""
        values = asdict(self)
        values["epochs"], values["batch_size"] = int(self.epochs), int(self.batch_size)
        for key in ("learning_rate", "weight_decay", "momentum"):
            values[key] = float(values[key])
        return values

    def learning_rate_at(self, step: int, total_steps: int) -> float:
        """Learning rate of optimiser step ``step`` (0-based) out of ``total_steps``."""
        if self.lr_schedule == "constant":
            return float(self.learning_rate)
        return float(self.learning_rate) * 0.5 * (1.0 + math.cos(math.pi * step / max(total_steps, 1)))


#: Optimiser steps per fold that ``epochs="auto"`` aims for. Measured on SynthME
#: (docs/performance.md): 12 subjects x 12 clips need 15 epochs of 132 training clips
#: (~124 steps at batch 16), and a MEGC-size set reaches the same accuracy plateau in
#: the same number of steps (5 epochs of ~400 clips), so the budget is set in steps.
AUTO_TARGET_STEPS = 120
AUTO_EPOCH_RANGE = (3, 30)


def auto_epochs(num_train_samples: float, batch_size: int, target_steps: int = AUTO_TARGET_STEPS) -> int:
    """Epochs giving about ``target_steps`` optimiser steps on ``num_train_samples``.

    ``ceil(target_steps * batch_size / num_train_samples)``, clamped to [3, 30]. It depends
    only on the data's size, never on any result, so a schedule chosen this way is still
    fixed in advance (leak-free). For LOSO, ``num_train_samples`` is the mean fold's
    training size, N - N / S for N samples and S subjects.
    """
    if not num_train_samples or num_train_samples <= 0:
        raise FMANetConfigError(f"auto epochs need a positive training-set size, got {num_train_samples!r}.")
    epochs = math.ceil(target_steps * int(batch_size) / float(num_train_samples))
    return int(min(max(epochs, AUTO_EPOCH_RANGE[0]), AUTO_EPOCH_RANGE[1]))


def resolve_epochs(epochs: int | str, num_train_samples: float, batch_size: int) -> int:
    """``epochs`` itself, or `auto_epochs` when it is ``"auto"``."""
    if isinstance(epochs, str):
        if epochs.strip().lower() != "auto":
            raise FMANetConfigError(f"epochs must be an integer >= 1 or 'auto', got {epochs!r}.")
        return auto_epochs(num_train_samples, batch_size)
    return epochs


def derive_seed(*parts: Any) -> int:
    """A 63-bit seed from any JSON-able parts, e.g. ``derive_seed(0, "fold", "sub01")``.

    Hash-based, so one fold's seed is independent of the other folds, of their order and
    of whether they ran in this process.
    """
    digest = hashlib.sha256(json.dumps(list(parts), sort_keys=True, default=str).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") & (2**63 - 1)


def fold_seed(seed: int, subject: str) -> int:
    """Seed of the fold holding out ``subject`` (model init, dropout, shuffles)."""
    return derive_seed(int(seed), "fold", str(subject))


def fold_file_stem(subject: str) -> str:
    """File-system-safe name of a fold: ``sub01`` -> ``sub01``; ``casme2/sub01`` ->
    ``casme2_sub01-<8 hex>`` (the hash keeps two subjects from sharing a name)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", str(subject)).strip(".") or "subject"
    if safe != str(subject):
        safe = f"{safe}-{hashlib.sha256(str(subject).encode('utf-8')).hexdigest()[:8]}"
    return safe


def class_weights_for(labels: torch.Tensor, num_classes: int, mode: str) -> torch.Tensor:
    """Per-class cross-entropy weights (C,) float32 from training labels (N,).

    ``"none"``: all ones. ``"balanced"``: n / (K * n_c) for the K classes present, 0 for
    absent classes (they have no training sample, so the weight is never used).
    """
    if mode == "none":
        return torch.ones(num_classes, dtype=torch.float32)
    if mode != "balanced":
        raise FMANetConfigError(f"class_weighting must be one of {list(CLASS_WEIGHTINGS)}, got {mode!r}.")
    counts = torch.bincount(labels.to(torch.int64).cpu(), minlength=num_classes).to(torch.float64)
    present = counts > 0
    weights = torch.zeros(num_classes, dtype=torch.float64)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights.to(torch.float32)


# --------------------------------------------------------------------------------------
# Model config
# --------------------------------------------------------------------------------------
def config_to_dict(config: Any) -> dict[str, Any]:
    """A model config as a JSON-compatible dict without provenance keys (versions, paths)."""
    values = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    values = json.loads(json.dumps(values, default=str))
    for key in _VOLATILE_CONFIG_KEYS:
        values.pop(key, None)
    return values


def build_model_config(
    model_config: Any,
    class_names: Sequence[str],
    image_size: tuple[int, int],
    num_channels: int,
):
    """The `FMANetConfig` to train: ``model_config`` with the dataset's classes and checks.

    Args:
        model_config: an `FMANetConfig`, a dict of its arguments, or None (defaults).
        class_names: the dataset's C classes: they become ``id2label``/``label2id``
            (the prepared data's ``label_id`` defines the classes, whatever the config said).
        image_size: (H, W) of the prepared ``pixel_values``.
        num_channels: channels of ``pixel_values`` (2 * channels per phase).

    Raises:
        FMANetConfigError: the config's image size or channels do not match the data.
    """
    from ..configuration_fmanet import FMANetConfig

    height, width = image_size
    if height != width:
        raise FMANetConfigError(f"FMANet needs square inputs; the prepared pixel_values are {height}x{width}.")
    if num_channels % 2:
        raise FMANetConfigError(f"pixel_values has {num_channels} channels; FMANet needs 2 phases x 3 or 4 channels.")
    if model_config is None:
        values: dict[str, Any] = {"image_size": height, "num_channels_per_phase": num_channels // 2}
    elif isinstance(model_config, FMANetConfig):
        values = config_to_dict(model_config)
    elif isinstance(model_config, Mapping):
        values = dict(model_config)
    else:
        raise FMANetConfigError(
            f"model_config must be an FMANetConfig, a dict of its arguments or None, got {type(model_config).__name__}."
        )
    for key in ("id2label", "label2id", "num_labels"):
        values.pop(key, None)
    values["id2label"] = {i: str(name) for i, name in enumerate(class_names)}
    values["label2id"] = {str(name): i for i, name in enumerate(class_names)}
    config = FMANetConfig.from_dict(values)
    if config.image_size != height:
        raise FMANetConfigError(
            f"model_config.image_size is {config.image_size} but the prepared pixel_values are {height}x{width}; "
            f"set image_size={height} (or prepare the data with size={{'height': {config.image_size}, "
            f"'width': {config.image_size}}})."
        )
    if config.num_channels != num_channels:
        raise FMANetConfigError(
            f"model_config expects {config.num_channels} input channels (num_channels_per_phase="
            f"{config.num_channels_per_phase}) but pixel_values has {num_channels}; set num_channels_per_phase="
            f"{num_channels // 2}."
        )
    return config


def default_model_factory(config):
    """A freshly initialised `FMANetForImageClassification` (under the caller's torch seed)."""
    from ..modeling_fmanet import FMANetForImageClassification

    return FMANetForImageClassification(config)


# --------------------------------------------------------------------------------------
# Observation hooks (tests and logging)
# --------------------------------------------------------------------------------------
class TrainingObserver:
    """Hooks the training loop calls; subclass and override what you need (all no-ops).

    Every sample that influences the weights passes through `on_optimizer_step`, and every
    prediction on held-out samples through `on_predict`, so a test can prove that a
    subject's samples never reached the optimiser or any choice.
    """

    def on_fold_start(self, fold: str, train_sample_ids: Sequence[str], test_sample_ids: Sequence[str]) -> None:
        """A fold (``fold`` = its test subject, or ``"final_model"``) is about to train."""

    def on_optimizer_step(
        self, fold: str, epoch: int, step: int, sample_ids: Sequence[str], global_sample_ids: Sequence[str]
    ) -> None:
        """An optimiser step was taken with the gradients of ``global_sample_ids`` (the
        global batch, all processes); this process computed those of ``sample_ids``."""

    def on_predict(self, fold: str, epoch: int, sample_ids: Sequence[str], purpose: str) -> None:
        """Held-out samples were predicted after ``epoch``. ``purpose`` is ``"final"`` (the
        scored prediction) or ``"leaky_epoch_selection"`` (only with record_leaky_best_epoch)."""

    def on_fold_end(self, fold: str, record: Mapping[str, Any]) -> None:
        """A fold finished; ``record`` is what is written to ``folds/<subject>.json``."""


@dataclass
class TrainingLog:
    """What `train_model` did.

    Attributes:
        epoch_losses: mean (class-weighted) training cross-entropy of each epoch, over the global batches.
        optimizer_sample_indices: dataset row indices of every sample whose gradient entered
            an optimiser step (global batches, all processes), in step order.
        steps: optimiser steps taken.
        seconds: wall time of the training loop.
    """

    epoch_losses: list[float] = field(default_factory=list)
    optimizer_sample_indices: list[int] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0


# --------------------------------------------------------------------------------------
# Training loop
# --------------------------------------------------------------------------------------
def _optimizer_for(model: torch.nn.Module, schedule: TrainingSchedule) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        if parameter.ndim >= 2 and not any(part in name for part in _NO_DECAY_NAME_PARTS):
            decay.append(parameter)
        else:
            no_decay.append(parameter)
    groups = [
        {"params": decay, "weight_decay": float(schedule.weight_decay)},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    groups = [group for group in groups if group["params"]]
    if schedule.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=float(schedule.learning_rate), momentum=float(schedule.momentum))
    return torch.optim.AdamW(groups, lr=float(schedule.learning_rate))


def _logits_of(outputs: Any) -> torch.Tensor:
    if hasattr(outputs, "logits"):
        return outputs.logits
    if isinstance(outputs, (tuple, list)):
        return outputs[0]
    return outputs


def _release_from_accelerator(accelerator: Any, *objects: Any) -> None:
    """Drop our prepared objects from the accelerator's registries (so 12 folds do not keep
    12 models alive) without touching objects the caller prepared on the same accelerator."""
    for attribute in ("_models", "_optimizers"):
        registry = getattr(accelerator, attribute, None)
        if isinstance(registry, list):
            registry[:] = [item for item in registry if all(item is not obj for obj in objects)]


def train_model(
    model: torch.nn.Module,
    data: PreparedTensors,
    train_indices: Sequence[int] | np.ndarray,
    schedule: TrainingSchedule,
    *,
    seed: int,
    accelerator: Any,
    data_parallel: bool = True,
    observer: TrainingObserver | None = None,
    fold_name: str = "",
    on_epoch_end: Callable[[int, torch.nn.Module], None] | None = None,
    progress: bool = False,
) -> tuple[torch.nn.Module, TrainingLog]:
    """Train ``model`` on the rows ``train_indices`` of ``data`` with a fixed schedule.

    Each epoch visits the training rows in an order drawn from ``derive_seed(seed, "epoch",
    epoch)``, in global batches of ``schedule.batch_size``. With ``data_parallel`` and W > 1
    processes, process r computes the gradients of batch positions r, r + W, ... and the
    loss is scaled so that the gradient DDP averages equals the gradient of the weighted
    mean loss over the WHOLE global batch: the update is the single-process one (up to
    float rounding) for any W and batch size. A process whose share of a short last batch is
    empty runs one sample with weight 0, because DDP needs every process in every step.

    Args:
        model: an unwrapped model taking ``pixel_values`` and returning ``.logits`` (B, C).
        data: the dataset in memory; only rows ``train_indices`` are ever read here.
        train_indices: row indices of the training samples.
        schedule: the fixed schedule.
        seed: seeds the shuffles (set torch's seed yourself for init and dropout).
        accelerator: an ``accelerate.Accelerator``.
        data_parallel: split batches across the accelerator's processes (DDP); False trains
            in this process alone (fold-parallel mode, or a single process).
        observer: `TrainingObserver` hooks.
        fold_name: name passed to the observer and the progress bar.
        on_epoch_end: called as ``on_epoch_end(epoch, unwrapped_model)`` after each epoch
            (used to record the leaky per-epoch test predictions).
        progress: show an epoch progress bar (main process only).

    Returns:
        (the trained, unwrapped model on the accelerator's device, `TrainingLog`).
    """
    observer = observer or TrainingObserver()
    train_indices = np.asarray(train_indices, dtype=np.int64)
    if train_indices.size == 0:
        raise FMANetError(f"fold {fold_name!r} has no training samples.")
    world = int(accelerator.num_processes) if data_parallel else 1
    rank = int(accelerator.process_index) if data_parallel else 0
    device = accelerator.device
    started = time.perf_counter()

    model = model.to(device)
    optimizer = _optimizer_for(model, schedule)
    if data_parallel:
        trained, optimizer = accelerator.prepare(model, optimizer)
    else:
        trained = model
    num_classes = len(data.class_names)
    class_weights = class_weights_for(data.labels[train_indices], num_classes, schedule.class_weighting)
    class_weights_device = class_weights.to(device)

    batch_size = int(schedule.batch_size)
    steps_per_epoch = math.ceil(train_indices.size / batch_size)
    total_steps = steps_per_epoch * int(schedule.epochs)
    log = TrainingLog()
    from tqdm.auto import tqdm

    epochs = tqdm(
        range(1, int(schedule.epochs) + 1),
        desc=f"{fold_name} epochs" if fold_name else "epochs",
        leave=False,
        disable=not (progress and accelerator.is_main_process),
        dynamic_ncols=True,
    )
    for epoch in epochs:
        trained.train()
        shuffle = torch.Generator().manual_seed(derive_seed(int(seed), "epoch", epoch))
        order = train_indices[torch.randperm(train_indices.size, generator=shuffle).numpy()]
        loss_sum = torch.zeros((), dtype=torch.float64)
        weight_sum = 0.0
        for start in range(0, order.size, batch_size):
            global_batch = order[start : start + batch_size]
            local_batch = global_batch[rank::world]
            global_weight = float(class_weights[data.labels[global_batch]].sum())
            empty_share = local_batch.size == 0
            if empty_share:
                local_batch = global_batch[:1]
            pixel_values = data.pixel_values[local_batch].to(device)
            labels = data.labels[local_batch].to(device)
            learning_rate = schedule.learning_rate_at(log.steps, total_steps)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate
            logits = _logits_of(trained(pixel_values=pixel_values))
            per_sample = F.cross_entropy(logits.float(), labels, reduction="none")
            weights = class_weights_device[labels] * (0.0 if empty_share else 1.0)
            weighted_sum = (weights * per_sample).sum()
            # DDP averages gradients over W processes; scaling by W / (global weight) makes the
            # average the gradient of the global batch's weighted mean loss.
            loss = weighted_sum * (world / global_weight) if global_weight > 0 else weighted_sum * 0.0
            optimizer.zero_grad(set_to_none=True)
            if data_parallel:
                accelerator.backward(loss)
            else:
                loss.backward()
            optimizer.step()
            batch_loss = weighted_sum.detach()
            if data_parallel and world > 1:
                batch_loss = accelerator.reduce(batch_loss, reduction="sum")
            loss_sum += batch_loss.double().cpu()
            weight_sum += global_weight
            global_list = global_batch.tolist()
            log.optimizer_sample_indices.extend(global_list)
            observer.on_optimizer_step(
                fold_name,
                epoch,
                log.steps,
                [] if empty_share else [data.sample_ids[i] for i in local_batch.tolist()],
                [data.sample_ids[i] for i in global_list],
            )
            log.steps += 1
        epoch_loss = float(loss_sum / weight_sum) if weight_sum > 0 else float("nan")
        log.epoch_losses.append(epoch_loss)
        epochs.set_postfix(loss=f"{epoch_loss:.4f}")
        if on_epoch_end is not None:
            on_epoch_end(epoch, accelerator.unwrap_model(trained) if data_parallel else trained)
    epochs.close()
    unwrapped = accelerator.unwrap_model(trained) if data_parallel else trained
    if data_parallel:
        _release_from_accelerator(accelerator, trained, optimizer)
    log.seconds = time.perf_counter() - started
    return unwrapped, log


@torch.no_grad()
def predict_probabilities(
    model: torch.nn.Module, pixel_values: torch.Tensor, *, batch_size: int = 64, device: Any = None
) -> np.ndarray:
    """Class probabilities (N, C) float64 of ``pixel_values`` (N, 2 * C_phase, H, W), in eval mode.

    The fixed batch size makes the floating-point result independent of who calls it.
    """
    was_training = model.training
    model.eval()
    device = device if device is not None else next(model.parameters()).device
    chunks = []
    for start in range(0, pixel_values.shape[0], batch_size):
        logits = _logits_of(model(pixel_values=pixel_values[start : start + batch_size].to(device)))
        chunks.append(torch.softmax(logits.float(), dim=-1).double().cpu())
    model.train(was_training)
    return torch.cat(chunks).numpy()


@contextlib.contextmanager
def deterministic_torch() -> Iterator[None]:
    """Deterministic torch kernels inside the block (restored afterwards).

    ``warn_only``: an op without a deterministic implementation warns instead of failing
    (none on CPU for FMANet; CUDA's adaptive pooling backward is one).
    """
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    previous = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.deterministic,
    )
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = previous[2], previous[3]


@contextlib.contextmanager
def _seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch's global RNG (init, dropout) inside the block; the caller's state is restored."""
    devices = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def _without_transformers_bars() -> Iterator[None]:
    """Silence the "Writing model shards" bar of save_pretrained (one per fold is noise)."""
    from transformers.utils import logging as transformers_logging

    was_enabled = transformers_logging.is_progress_bar_enabled()
    if was_enabled:
        transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            transformers_logging.enable_progress_bar()


# --------------------------------------------------------------------------------------
# Run folder
# --------------------------------------------------------------------------------------
def _canonical_digest(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()[:16]


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        found = []
        for key in sorted(set(old) | set(new), key=str):
            name = f"{prefix}.{key}" if prefix else str(key)
            if key not in old:
                found.append(f"{name}: absent in the folder, {new[key]!r} now")
            elif key not in new:
                found.append(f"{name}: {old[key]!r} in the folder, absent now")
            else:
                found.extend(_differences(old[key], new[key], name))
        return found
    return [] if old == new else [f"{prefix}: {old!r} in the folder, {new!r} now"]


def _check_run_config(out_dir: Path, checked: dict[str, Any], info: dict[str, Any]) -> None:
    """Write ``run_config.json``, or refuse when the folder holds a run with other settings."""
    path = out_dir / RUN_CONFIG_NAME
    if path.exists():
        try:
            existing = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise RunDirectoryError(
                f"{path} is unreadable ({error}); delete the folder {out_dir} or choose another --out."
            ) from None
        differences = _differences(existing.get("checked", {}), checked)
        if differences:
            shown = "; ".join(differences[:8]) + (f"; ... ({len(differences)} in all)" if len(differences) > 8 else "")
            raise RunDirectoryError(
                f"{out_dir} holds a LOSO run with other settings ({shown}). Resuming would mix two "
                f"experiments: use another output folder, or delete {out_dir} to start over."
            )
        return
    if (out_dir / FOLDS_DIR).is_dir() and any(_fold_files(out_dir)):
        raise RunDirectoryError(
            f"{out_dir / FOLDS_DIR} holds fold files but {RUN_CONFIG_NAME} is missing, so their settings are "
            f"unknown; delete {out_dir} or choose another output folder."
        )
    atomic_write_json(path, {"format_version": RESULTS_FORMAT_VERSION, "checked": checked, "info": info})


def _fold_files(out_dir: Path) -> list[Path]:
    folder = out_dir / FOLDS_DIR
    if not folder.is_dir():
        return []
    # Names starting with "." are temporary files of an interrupted atomic write.
    return sorted(p for p in folder.glob("*.json") if not p.name.startswith("."))


def _completed_folds(out_dir: Path, subjects: Sequence[str], run_digest: str) -> dict[str, dict[str, Any]]:
    """The fold records already on disk, keyed on subject; refuses foreign or corrupt ones."""
    expected = {fold_file_stem(s): s for s in subjects}
    completed: dict[str, dict[str, Any]] = {}
    for path in _fold_files(out_dir):
        subject = expected.get(path.stem)
        if subject is None:
            raise RunDirectoryError(
                f"{path} is not a fold of this dataset's subjects; the folder holds another run. "
                "Use another output folder or delete it."
            )
        try:
            record = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            # Written atomically, so this is outside damage: redo the fold rather than trust it.
            logger.warning("Fold file %s is unreadable; the fold will be trained again.", path)
            continue
        if record.get("run_config_digest") != run_digest or record.get("subject") != subject:
            raise RunDirectoryError(
                f"{path} was written by a run with other settings (digest {record.get('run_config_digest')} "
                f"vs {run_digest}); use another output folder or delete it."
            )
        completed[subject] = record
    return completed


def _broadcast(accelerator: Any, value: Any) -> Any:
    """``value`` of the main process, on every process."""
    if accelerator.num_processes <= 1:
        return value
    from accelerate.utils import broadcast_object_list

    holder = [value]
    broadcast_object_list(holder, from_process=0)
    return holder[0]


def _versions() -> dict[str, str]:
    import transformers

    from .. import __version__

    versions = {
        "fmanet_hf": __version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
    }
    try:
        import accelerate

        versions["accelerate"] = accelerate.__version__
    except ImportError:  # pragma: no cover - accelerate is a dependency
        pass
    return versions


def find_prepared_processor(prepared_dataset: Any):
    """The `FMANetImageProcessor` a dataset was prepared with, from its cache manifest.

    `prepare_dataset` saves the processor's output settings next to the cached data; this
    reads them back so a deployable model ships with the exact preprocessing it was trained
    on. Returns None when the dataset did not come from that cache (e.g. built by hand).
    """
    from ..data.prepare import MANIFEST_NAME
    from ..image_processing_fmanet import FMANetImageProcessor

    for cache_file in getattr(prepared_dataset, "cache_files", None) or []:
        folder = Path(cache_file.get("filename", "")).parent
        for candidate in (folder, folder.parent, folder.parent.parent):
            manifest = candidate / MANIFEST_NAME
            if manifest.is_file():
                try:
                    settings = json.loads(manifest.read_text())["processor_settings"]
                    return FMANetImageProcessor(**settings)
                except (OSError, KeyError, TypeError, ValueError, json.JSONDecodeError) as error:
                    logger.warning("Could not rebuild the processor from %s: %s", manifest, error)
                    return None
    return None


# --------------------------------------------------------------------------------------
# One fold
# --------------------------------------------------------------------------------------
def _fold_record(
    *,
    subject: str,
    fold_index: int,
    seed_of_fold: int,
    run_digest: str,
    data: PreparedTensors,
    train_indices: np.ndarray,
    test_indices: np.ndarray,
    final_probabilities: np.ndarray,
    log: TrainingLog,
    epochs: int,
    leaky: dict[str, Any] | None,
    seconds: float,
    world_size: int,
) -> dict[str, Any]:
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


def _run_fold(
    *,
    subject: str,
    fold_index: int,
    train_indices: np.ndarray,
    test_indices: np.ndarray,
    data: PreparedTensors,
    config: Any,
    schedule: TrainingSchedule,
    seed: int,
    run_digest: str,
    accelerator: Any,
    data_parallel: bool,
    record_leaky_best_epoch: bool,
    observer: TrainingObserver,
    model_factory: Callable[[Any], torch.nn.Module],
    eval_batch_size: int,
    progress: bool,
) -> tuple[dict[str, Any], torch.nn.Module]:
    started = time.perf_counter()
    seed_of_fold = fold_seed(seed, subject)
    observer.on_fold_start(
        subject, [data.sample_ids[i] for i in train_indices.tolist()], [data.sample_ids[i] for i in test_indices.tolist()]
    )
    # The held-out pixels are copied out once and touched only by prediction.
    test_pixels = data.pixel_values[test_indices]
    test_ids = [data.sample_ids[i] for i in test_indices.tolist()]
    test_labels = data.labels[test_indices].numpy()
    per_epoch_probabilities: list[np.ndarray] = []

    def record_epoch(epoch: int, model: torch.nn.Module) -> None:
        observer.on_predict(subject, epoch, test_ids, "leaky_epoch_selection")
        per_epoch_probabilities.append(
            predict_probabilities(model, test_pixels, batch_size=eval_batch_size, device=accelerator.device)
        )

    with _seeded(seed_of_fold, accelerator.device):
        model = model_factory(config)
        model, log = train_model(
            model,
            data,
            train_indices,
            schedule,
            seed=seed_of_fold,
            accelerator=accelerator,
            data_parallel=data_parallel,
            observer=observer,
            fold_name=subject,
            on_epoch_end=record_epoch if record_leaky_best_epoch else None,
            progress=progress,
        )
    observer.on_predict(subject, schedule.epochs, test_ids, "final")
    final_probabilities = predict_probabilities(model, test_pixels, batch_size=eval_batch_size, device=accelerator.device)

    leaky = None
    if record_leaky_best_epoch:
        correct = [int((p.argmax(axis=1) == test_labels).sum()) for p in per_epoch_probabilities]
        best_epoch = int(np.argmax(correct)) + 1  # earliest epoch among the best, as `if acc > best` code does
        best = per_epoch_probabilities[best_epoch - 1]
        leaky = {
            "note": "chosen on the TEST subject's accuracy: leaky, for comparison only",
            "epoch": best_epoch,
            "y_pred": [int(row.argmax()) for row in best],
            "probabilities": [[float(p) for p in row] for row in best],
            "test_accuracy_per_epoch": [c / len(test_ids) for c in correct],
        }
    record = _fold_record(
        subject=subject,
        fold_index=fold_index,
        seed_of_fold=seed_of_fold,
        run_digest=run_digest,
        data=data,
        train_indices=train_indices,
        test_indices=test_indices,
        final_probabilities=final_probabilities,
        log=log,
        epochs=schedule.epochs,
        leaky=leaky,
        seconds=time.perf_counter() - started,
        world_size=int(accelerator.num_processes) if data_parallel else 1,
    )
    return record, model


# --------------------------------------------------------------------------------------
# Aggregation
# --------------------------------------------------------------------------------------
def _aggregate(
    out_dir: Path,
    records: Sequence[Mapping[str, Any]],
    class_names: Sequence[str],
    extra: dict[str, Any],
    record_leaky_best_epoch: bool,
) -> dict[str, Any]:
    from .metrics import plot_confusion_matrix, pooled_loso_metrics

    num_classes = len(class_names)
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


# --------------------------------------------------------------------------------------
# The runner
# --------------------------------------------------------------------------------------
def run_loso(
    prepared_dataset: Any,
    *,
    model_config: Any = None,
    out_dir: str | os.PathLike,
    epochs: int | str,
    batch_size: int,
    learning_rate: float,
    seed: int = 0,
    weight_decay: float = 1e-4,
    optimizer: str = "adamw",
    momentum: float = 0.0,
    lr_schedule: str = "cosine",
    class_weighting: str = "none",
    record_leaky_best_epoch: bool = False,
    save_fold_models: bool = False,
    train_final_model: bool = False,
    processor: Any = None,
    fold_parallel: bool = False,
    progress: bool = True,
    print_summary: bool | None = None,
    accelerator: Any = None,
    observer: TrainingObserver | None = None,
    class_names: Sequence[str] | None = None,
    model_factory: Callable[[Any], torch.nn.Module] | None = None,
    eval_batch_size: int = 64,
    fold_workers: int = 1,
) -> dict[str, Any]:
    """Leave-one-subject-out training and evaluation; resumable; see the module docstring.

    Args:
        prepared_dataset: a prepared ``datasets.Dataset`` (`prepare_dataset`): columns
            ``pixel_values`` (2 * C, H, W), ``label_id``, ``subject`` and, optionally,
            ``sample_id`` and ``dataset``.
        model_config: `FMANetConfig` or dict of its arguments (default: the defaults at the
            data's image size); the classes are always the dataset's.
        out_dir: results folder (created; an existing one with the same settings resumes).
        epochs, batch_size, learning_rate, weight_decay, optimizer, momentum, lr_schedule,
            class_weighting: the fixed `TrainingSchedule` (batch_size is global). ``epochs``
            may be ``"auto"``: `auto_epochs` of the mean fold's training size (fixed before
            training, from the data's size alone).
        seed: master seed; each fold's is derived from (seed, test subject).
        record_leaky_best_epoch: also predict the test subject after every epoch and record
            the per-fold best epoch's numbers as ``leaky_best_epoch_*`` (not the protocol).
            The leak-free numbers are identical with and without it.
        save_fold_models: ``save_pretrained`` each fold's final model under ``folds/<subject>/``.
        train_final_model: after the folds, train one model on ALL subjects with the same
            schedule and save it with its processor under ``final_model/``.
        processor: the `FMANetImageProcessor` saved with the final model (default: rebuilt
            from the prepared data's cache manifest, when there is one).
        fold_parallel: with several processes, spread folds over them instead of splitting
            batches (process r trains pending folds i with i % W == r).
        progress: progress bars (folds and epochs, main process).
        print_summary: print the summary table at the end (default: ``progress``).
        accelerator: an ``accelerate.Accelerator`` (default: ``Accelerator()``).
        observer: `TrainingObserver` hooks (tests, logging).
        class_names: override the dataset's class names (label_id order).
        model_factory: ``config -> model`` (default: a fresh `FMANetForImageClassification`);
            called under the fold's seed.
        eval_batch_size: batch size of prediction.
        fold_workers: single-process runs only: train this many folds at once, each in its
            own worker process (`fold_workers.py`, started with ``spawn``: a calling script
            needs the usual ``if __name__ == "__main__":`` guard). On CPU each worker gets
            ``cores // fold_workers`` torch threads; on a GPU the workers share the device,
            which a single small fold leaves mostly idle. 1 (default): in this process.
            A fold's result depends only on its seed and thread count, so a run resumed
            with the same setting gives the same numbers.

    Returns:
        The ``results.json`` dict (on every process): pooled ``accuracy``, ``uf1``, ``uar``,
        ``confusion_matrix``, ``per_fold``, ``per_fold_mean_*``, ``by_dataset``,
        ``leaky_best_epoch_*`` (if asked), ``settings``, ``versions``, ``wall_time_seconds``...

    Raises:
        RunDirectoryError: ``out_dir`` holds a run with other settings.
        FMANetConfigError: impossible schedule or a config that does not fit the data.
        DatasetError: the dataset lacks columns or has fewer than 2 subjects.
    """
    from ..data.subject_folds import check_loso_folds, loso_folds

    started = time.perf_counter()
    if accelerator is None:
        from accelerate import Accelerator

        accelerator = Accelerator()
    custom_hooks = observer is not None or model_factory is not None
    observer = observer or TrainingObserver()
    model_factory = model_factory or default_model_factory
    print_summary = progress if print_summary is None else print_summary
    data = PreparedTensors.from_prepared(prepared_dataset, class_names)
    config = build_model_config(model_config, data.class_names, data.image_size, int(data.pixel_values.shape[1]))
    folds = loso_folds(data.subjects)
    check_loso_folds(folds, data.subjects)
    epochs_rule = "auto" if isinstance(epochs, str) else "given"
    epochs = resolve_epochs(epochs, len(data) - len(data) / len(folds), batch_size)
    schedule = TrainingSchedule(
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        optimizer=optimizer,
        momentum=momentum,
        lr_schedule=lr_schedule,
        class_weighting=class_weighting,
    )
    out = Path(out_dir)
    world = int(accelerator.num_processes)
    rank = int(accelerator.process_index)
    is_main = bool(accelerator.is_main_process)

    checked = {
        "model_config": config_to_dict(config),
        "schedule": schedule.to_dict(),
        "seed": int(seed),
        "data": {
            "num_samples": len(data),
            "subjects": sorted(set(data.subjects)),
            "class_names": data.class_names,
            "digest": data.digest(),
        },
        "record_leaky_best_epoch": bool(record_leaky_best_epoch),
        "save_fold_models": bool(save_fold_models),
    }
    run_digest = _canonical_digest(checked)
    info = {"versions": _versions(), "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}

    # The main process validates the folder and lists finished folds; the others follow its
    # verdict (an error raised on one process alone would leave the rest waiting forever).
    verdict: Any = None
    main_error: FMANetError | None = None
    if is_main:
        try:
            out.mkdir(parents=True, exist_ok=True)
            # Temporaries of a killed earlier run (never read; only litter).
            for folder in (out, out / FOLDS_DIR):
                remove_stale_temporaries(folder)
            _check_run_config(out, checked, info)
            completed = _completed_folds(out, [f.test_subject for f in folds], run_digest)
            verdict = ("ok", sorted(completed))
        except FMANetError as error:
            main_error = error
            verdict = ("error", f"{type(error).__name__}: {error}")
    verdict = _broadcast(accelerator, verdict)
    if verdict[0] == "error":
        if main_error is not None:
            raise main_error
        raise RunDirectoryError(f"the main process refused the run folder: {verdict[1]}")
    completed_subjects = set(verdict[1])
    pending = [(index, fold) for index, fold in enumerate(folds) if fold.test_subject not in completed_subjects]
    if completed_subjects and is_main:
        logger.info("Resuming %s: %d of %d folds already complete.", out, len(completed_subjects), len(folds))

    data_parallel = not (fold_parallel and world > 1)
    mine = pending[rank::world] if not data_parallel else pending
    writes_folds = is_main if data_parallel else True
    from tqdm.auto import tqdm

    fold_bar = tqdm(
        # In fold-parallel mode the main process's bar counts its own folds only.
        total=len(folds) if data_parallel else len(completed_subjects) + len(mine),
        initial=len(completed_subjects),
        desc=f"LOSO folds ({world} proc{', fold-parallel' if not data_parallel else ''})",
        disable=not (progress and is_main),
        dynamic_ncols=True,
    )
    from .fold_workers import run_folds_in_workers

    if isinstance(fold_workers, bool) or not isinstance(fold_workers, int) or fold_workers < 1:
        raise FMANetConfigError(f"fold_workers must be an integer >= 1, got {fold_workers!r}.")
    elif fold_workers > 1 and (world > 1 or custom_hooks):
        raise FMANetConfigError(
            "fold_workers > 1 trains folds in separate worker processes: it needs a single (non-distributed) "
            "process and no observer or model_factory (those live in this process). Under `accelerate launch`, "
            "use fold_parallel=True to spread folds over the processes instead."
        )

    def finish_fold(fold: Any, record: dict[str, Any]) -> None:
        observer.on_fold_end(fold.test_subject, record)
        correct = sum(int(a == b) for a, b in zip(record["test"]["y_true"], record["test"]["y_pred"]))
        fold_bar.update(1)
        fold_bar.set_postfix(last=f"{fold.test_subject} {correct}/{record['n_test']}")

    with deterministic_torch():
        if fold_workers > 1 and len(mine) > 1:
            fold_bar.set_description(f"LOSO folds ({min(fold_workers, len(mine))} fold workers)")
            for fold_index, fold, record in run_folds_in_workers(
                mine,
                workers=fold_workers,
                data=data,
                config=config,
                schedule=schedule,
                seed=seed,
                run_digest=run_digest,
                record_leaky_best_epoch=record_leaky_best_epoch,
                eval_batch_size=eval_batch_size,
                folds_dir=out / FOLDS_DIR if save_fold_models else None,
                device=str(accelerator.device),
            ):
                # Written last: its presence is what marks the fold complete.
                atomic_write_json(out / FOLDS_DIR / f"{fold_file_stem(fold.test_subject)}.json", record)
                finish_fold(fold, record)
            mine = []
        for fold_index, fold in mine:
            record, model = _run_fold(
                subject=fold.test_subject,
                fold_index=fold_index,
                train_indices=fold.train_indices,
                test_indices=fold.test_indices,
                data=data,
                config=config,
                schedule=schedule,
                seed=seed,
                run_digest=run_digest,
                accelerator=accelerator,
                data_parallel=data_parallel,
                record_leaky_best_epoch=record_leaky_best_epoch,
                observer=observer,
                model_factory=model_factory,
                eval_batch_size=eval_batch_size,
                progress=progress and is_main,
            )
            if writes_folds:
                stem = fold_file_stem(fold.test_subject)
                if save_fold_models:
                    with atomic_directory(out / FOLDS_DIR / stem) as staging, _without_transformers_bars():
                        model.save_pretrained(staging)
                # Written last: its presence is what marks the fold complete.
                atomic_write_json(out / FOLDS_DIR / f"{stem}.json", record)
            finish_fold(fold, record)
            del model
        fold_bar.close()
        accelerator.wait_for_everyone()

        final_model_info = None
        if train_final_model:
            final_model_info = _train_final_model(
                out=out,
                data=data,
                config=config,
                schedule=schedule,
                seed=seed,
                accelerator=accelerator,
                observer=observer,
                model_factory=model_factory,
                processor=processor if processor is not None else find_prepared_processor(prepared_dataset),
                run_digest=run_digest,
                progress=progress and is_main,
            )
            accelerator.wait_for_everyone()

    results: Any = None
    if is_main:
        records_by_subject = _completed_folds(out, [f.test_subject for f in folds], run_digest)
        missing = [f.test_subject for f in folds if f.test_subject not in records_by_subject]
        if missing:
            results = ("error", f"folds {missing} have no result file in {out / FOLDS_DIR}; in fold-parallel mode "
                       "across machines the output folder must be on a shared file system.")
        else:
            records = [records_by_subject[f.test_subject] for f in folds]
            extra = {
                "settings": {
                    **checked,
                    "run_config_digest": run_digest,
                    "world_size": world,
                    "fold_parallel": not data_parallel,
                    "fold_workers": int(fold_workers),
                    "epochs_rule": epochs_rule,
                    "device": str(accelerator.device),
                },
                "seed": int(seed),
                "versions": _versions(),
                "wall_time_seconds": round(time.perf_counter() - started, 3),
                "fold_seconds_total": round(sum(r["seconds"] for r in records), 3),
                "folds_resumed": len(completed_subjects),
                "final_model": final_model_info,
            }
            results = ("ok", _aggregate(out, records, data.class_names, extra, record_leaky_best_epoch))
    results = _broadcast(accelerator, results)
    if results[0] == "error":
        raise RunDirectoryError(results[1])
    results = results[1]
    if print_summary and is_main:
        print(format_summary_table(results))
        print(
            f"\nLOSO over {results['num_folds']} subjects, {results['num_samples']} samples: pooled "
            f"accuracy {results['accuracy']:.4f}, UF1 {results['uf1']:.4f}, UAR {results['uar']:.4f} "
            f"({results['wall_time_seconds']:.1f} s; results in {out})"
        )
    return results


def _train_final_model(
    *,
    out: Path,
    data: PreparedTensors,
    config: Any,
    schedule: TrainingSchedule,
    seed: int,
    accelerator: Any,
    observer: TrainingObserver,
    model_factory: Callable[[Any], torch.nn.Module],
    processor: Any,
    run_digest: str,
    progress: bool,
) -> dict[str, Any]:
    """Train on every subject (data parallel over all processes) and save ``final_model/``."""
    target = out / FINAL_MODEL_DIR
    info_path = target / "training_info.json"
    if info_path.is_file():
        try:
            existing = json.loads(info_path.read_text())
            if existing.get("run_config_digest") == run_digest:
                return existing
        except (OSError, json.JSONDecodeError):
            pass
    all_indices = np.arange(len(data), dtype=np.int64)
    observer.on_fold_start("final_model", list(data.sample_ids), [])
    with _seeded(derive_seed(int(seed), "final_model"), accelerator.device):
        model = model_factory(config)
        model, log = train_model(
            model,
            data,
            all_indices,
            schedule,
            seed=derive_seed(int(seed), "final_model"),
            accelerator=accelerator,
            data_parallel=True,
            observer=observer,
            fold_name="final_model",
            progress=progress,
        )
    info = {
        "note": "trained on ALL subjects with the LOSO schedule; its expected performance on new "
        "subjects is the LOSO estimate in ../results.json, not a number measured on this model",
        "run_config_digest": run_digest,
        "schedule": schedule.to_dict(),
        "num_samples": len(data),
        "subjects": sorted(set(data.subjects)),
        "train_loss_per_epoch": log.epoch_losses,
        "processor_saved": processor is not None,
        "seconds": round(log.seconds, 3),
    }
    if accelerator.is_main_process:
        with atomic_directory(target) as staging, _without_transformers_bars():
            model.save_pretrained(staging)
            if processor is not None:
                processor.save_pretrained(staging)
            atomic_write_json(staging / "training_info.json", info)
    return info


__all__ = [
    "LEAKY_NOTE",
    "LeakageError",
    "RunDirectoryError",
    "AUTO_TARGET_STEPS",
    "TrainingLog",
    "TrainingObserver",
    "TrainingSchedule",
    "auto_epochs",
    "build_model_config",
    "class_weights_for",
    "default_model_factory",
    "derive_seed",
    "deterministic_torch",
    "find_prepared_processor",
    "fold_file_stem",
    "fold_seed",
    "format_summary_table",
    "load_loso_results",
    "predict_probabilities",
    "resolve_epochs",
    "run_loso",
    "train_model",
]
