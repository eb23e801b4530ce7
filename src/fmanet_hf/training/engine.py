"""The training engine: one model trained with a fixed schedule, and one LOSO fold.

`train_model` is the training loop (seeded shuffles, global batches split over Accelerate
processes or run in this process alone, optional class weighting), `predict_probabilities`
the evaluation, and `run_fold` one leave-one-subject-out fold: a fresh model under the
fold's seed, trained on the other subjects, its held-out subject predicted once after the
final epoch, and the fold's record (with its leak check) returned for the run folder.

`TrainingObserver` sees every optimiser step and every held-out prediction, so a test can
prove that a subject's samples never reached the optimiser or any choice.
`deterministic_torch`, `seeded_torch` and `without_transformers_progress_bars` are the
context managers the callers of `run_fold` (the in-process LOSO loop and the fold worker
processes) run it under.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import FMANetConfigError, FMANetError, TrainingDivergedError
from .collate import PreparedTensors
from .augmentation import FlowAugmentation, transform_motion_channels
from .schedule import CLASS_WEIGHTINGS, TrainingSchedule
from .precision import check_precision, training_autocast
from .seeds import derive_seed, fold_seed
from .fold_records import fold_record, leaky_best_epoch
from .weight_averaging import WeightEMA

#: Parameters never weight-decayed: norms, biases and the modules' scalar-like parameters
#: (phase-fusion logits, modulation slope/threshold), whose "zero" is not a neutral value.
NO_DECAY_NAME_PARTS = ("theta_logits", "log_slope", "threshold")


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
        if parameter.ndim >= 2 and not any(part in name for part in NO_DECAY_NAME_PARTS):
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

    With ``schedule.augmentation="flow"`` each training batch is transformed by
    `FlowAugmentation` (vectors scaled with the zoom only when ``data.vectors_in_pixels``);
    with ``schedule.ema_decay > 0`` the returned model holds the averaged weights
    (``on_epoch_end`` sees the raw ones). With ``schedule.precision="bf16"`` each forward pass
    runs under bfloat16 autocast (`fmanet_hf.training.precision`); weights, gradients,
    optimiser state and loss stay float32.

    Returns:
        (the trained, unwrapped model on the accelerator's device, `TrainingLog`).
    """
    if schedule.epochs_rule == "auto":
        raise FMANetConfigError(
            "train_model needs a number of epochs; resolve epochs='auto' from the training set's size first "
            "(TrainingSchedule.resolved)."
        )
    observer = observer or TrainingObserver()
    train_indices = np.asarray(train_indices, dtype=np.int64)
    if train_indices.size == 0:
        raise FMANetError(f"fold {fold_name!r} has no training samples.")
    world = int(accelerator.num_processes) if data_parallel else 1
    rank = int(accelerator.process_index) if data_parallel else 0
    device = accelerator.device
    check_precision(schedule.precision, device)
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

    augmentation = None
    if schedule.augmentation == "flow":
        augmentation = FlowAugmentation(
            channels_per_phase=int(data.pixel_values.shape[1]) // 2, scale_vectors=bool(data.vectors_in_pixels)
        )
    unwrapped_for_average = accelerator.unwrap_model(trained) if data_parallel else trained
    weight_average = WeightEMA(unwrapped_for_average, schedule.ema_decay) if schedule.ema_decay > 0 else None

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
        # Its own stream: switching augmentation on or off leaves the shuffles unchanged.
        augment_stream = torch.Generator().manual_seed(derive_seed(int(seed), "augment", epoch))
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
            pixel_values = data.pixel_values[local_batch]
            if augmentation is not None:
                # Drawn for the GLOBAL batch and sliced, so every process applies the transform
                # the single-process run would apply to the same sample.
                mirror, angle, zoom = augmentation.draw(global_batch.size, augment_stream)
                positions = torch.arange(global_batch.size)[rank::world] if not empty_share else torch.arange(1)
                pixel_values = transform_motion_channels(
                    pixel_values, mirror=mirror[positions], angle=angle[positions], zoom=zoom[positions],
                    channels_per_phase=augmentation.channels_per_phase, scale_vectors=augmentation.scale_vectors,
                )
            pixel_values = pixel_values.to(device)
            labels = data.labels[local_batch].to(device)
            learning_rate = schedule.learning_rate_at(log.steps, total_steps)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate
            with training_autocast(schedule.precision, device):
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
            if weight_average is not None:
                weight_average.update(unwrapped_for_average)
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
        if weight_sum > 0 and not math.isfinite(epoch_loss):
            # The weights are NaN from here on; every prediction would be argmax(NaN) = class 0.
            # (The loss is reduced over processes, so every process stops here together.)
            epochs.close()
            raise TrainingDivergedError(
                f"Training {describe_training(fold_name)} diverged: its loss was {epoch_loss} in epoch {epoch} of "
                f"{schedule.epochs}. The run stops so that no NaN prediction is scored. Lower the learning rate "
                f"(--lr, now {schedule.learning_rate:g}), or check the prepared inputs for NaN or huge values."
            )
        epochs.set_postfix(loss=f"{epoch_loss:.4f}")
        if on_epoch_end is not None:
            on_epoch_end(epoch, accelerator.unwrap_model(trained) if data_parallel else trained)
    epochs.close()
    unwrapped = accelerator.unwrap_model(trained) if data_parallel else trained
    if weight_average is not None:
        weight_average.copy_to(unwrapped)
    if data_parallel:
        _release_from_accelerator(accelerator, trained, optimizer)
    log.seconds = time.perf_counter() - started
    return unwrapped, log


def describe_training(fold_name: str) -> str:
    """How messages name what ``train_model`` trained: ``fold 's3' (test subject s3)``, ``the final model``..."""
    named = {"final_model": "the final model (all subjects)", "pretrain": "the pretraining model", "": "the model"}
    return named.get(fold_name, f"fold {fold_name!r} (test subject {fold_name})")


def check_finite_probabilities(probabilities: np.ndarray, fold_name: str) -> np.ndarray:
    """``probabilities`` (N, C) if all finite, else `TrainingDivergedError` (NaN's argmax is class 0)."""
    bad = ~np.isfinite(np.asarray(probabilities, dtype=np.float64)).all(axis=-1)
    if bad.any():
        raise TrainingDivergedError(
            f"The model of {describe_training(fold_name)} predicts NaN or infinite probabilities for "
            f"{int(bad.sum())} of {len(bad)} test samples; they are not pooled. Its training diverged or its inputs "
            "hold NaN: lower the learning rate (--lr), or rebuild the prepared inputs."
        )
    return probabilities


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
def seeded_torch(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch's global RNG (init, dropout) inside the block; the caller's state is restored."""
    devices = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def without_transformers_progress_bars() -> Iterator[None]:
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
# One fold
# --------------------------------------------------------------------------------------
def run_fold(
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
    """Train and score the LOSO fold that holds out ``subject``.

    A fresh model (``model_factory(config)`` under `fold_seed` of ``seed`` and ``subject``)
    is trained on the rows ``train_indices`` with `train_model`; the rows ``test_indices``
    are predicted once, after the final epoch, and never reach the optimiser or any choice.
    With ``record_leaky_best_epoch`` they are also predicted after every epoch, and the
    best epoch on the TEST subject is recorded apart (leaky, for comparison with papers).
    Run it under `deterministic_torch` for results that repeat across runs and processes.

    Args:
        subject, fold_index: the held-out subject and the fold's position in the run.
        train_indices, test_indices: row indices of ``data``.
        data: the prepared dataset in memory.
        config: the model config (`build_model_config`).
        schedule: the fixed schedule, with its epochs resolved (`TrainingSchedule.resolved`).
        seed: the run's master seed.
        run_digest: the run's settings digest, written into the record.
        accelerator: an ``accelerate.Accelerator``, or any object with ``device``,
            ``num_processes``, ``process_index`` and ``is_main_process`` when
            ``data_parallel`` is False.
        data_parallel: split batches over the accelerator's processes; False trains in
            this process alone.
        record_leaky_best_epoch: also record the leaky best-epoch numbers.
        observer: `TrainingObserver` hooks.
        model_factory: ``config -> model``.
        eval_batch_size: batch size of prediction.
        progress: show the epoch progress bar.

    Returns:
        (the fold's record, as written to ``folds/<subject>.json``; the trained model).

    Raises:
        LeakageError: a held-out sample reached the optimiser (a bug; never expected).
    """
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

    with seeded_torch(seed_of_fold, accelerator.device):
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
    final_probabilities = check_finite_probabilities(
        predict_probabilities(model, test_pixels, batch_size=eval_batch_size, device=accelerator.device), subject
    )

    leaky = leaky_best_epoch(per_epoch_probabilities, test_labels) if record_leaky_best_epoch else None
    record = fold_record(
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


__all__ = [
    "TrainingLog",
    "TrainingObserver",
    "class_weights_for",
    "deterministic_torch",
    "check_finite_probabilities",
    "describe_training",
    "predict_probabilities",
    "run_fold",
    "seeded_torch",
    "train_model",
    "without_transformers_progress_bars",
]
