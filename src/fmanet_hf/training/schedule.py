"""The fixed training schedule of every model the package trains, and ``epochs="auto"``.

A schedule is fixed before training (no early stopping, nothing chosen on held-out data):
epochs, global batch size, optimiser, learning-rate curve and class weighting. ``epochs``
may be ``"auto"``: a number of epochs chosen from the training set's size alone
(`auto_epochs`), so the schedule is still fixed in advance; `TrainingSchedule.resolved`
turns it into a number once the data is known.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from ..errors import FMANetConfigError

OPTIMIZERS = ("adamw", "sgd")
LR_SCHEDULES = ("cosine", "constant")
CLASS_WEIGHTINGS = ("none", "balanced")
AUGMENTATIONS = ("none", "flow")
#: Arithmetic of the training steps (`fmanet_hf.training.precision`): float32, or bfloat16 autocast.
PRECISIONS = ("fp32", "bf16")

#: Recipe fields added after results were first recorded: left out of `to_dict` while at
#: these values, so a run folder written before they existed still resumes and its
#: run_config digest is unchanged.
RECIPE_DEFAULTS = {"augmentation": "none", "ema_decay": 0.0, "precision": "fp32"}

#: Optimiser steps per fold that ``epochs="auto"`` aims for. Measured on SynthME
#: (docs/performance.md): 12 subjects x 12 clips need 15 epochs of 132 training clips
#: (~124 steps at batch 16), and a MEGC-size set reaches the same accuracy plateau in
#: the same number of steps (5 epochs of ~400 clips), so the budget is set in steps.
AUTO_TARGET_STEPS = 120
AUTO_EPOCH_RANGE = (3, 30)


def _is_auto(epochs: Any) -> bool:
    return isinstance(epochs, str) and epochs.strip().lower() == "auto"


@dataclass(frozen=True)
class TrainingSchedule:
    """A fixed training schedule (no early stopping: nothing is chosen on held-out data).

    Attributes:
        epochs: passes over the training samples (>= 1), or ``"auto"``: `auto_epochs` of
            the training set's size, fixed by `resolved` before training (`train_model`
            needs a number).
        batch_size: GLOBAL batch size (samples per optimiser step, summed over processes).
        learning_rate: peak learning rate.
        weight_decay: decoupled weight decay (AdamW) or L2 (SGD) on conv/linear weights only.
        optimizer: ``"adamw"`` or ``"sgd"``.
        momentum: SGD momentum (ignored by AdamW).
        lr_schedule: ``"cosine"`` (per step from the peak to 0 at the end) or ``"constant"``.
        class_weighting: ``"none"`` or ``"balanced"`` (cross-entropy weight of class c =
            n / (K * n_c) over the K classes present in the fold's TRAINING labels).
        augmentation: ``"none"`` or ``"flow"``: flow-consistent mirror / rotation / zoom of
            each training batch (`fmanet_hf.training.augmentation.FlowAugmentation` with its
            defaults), the same transform for both phases; drawn from the fold's seed.
        ema_decay: 0 (off) or the decay in (0, 1) of an exponential moving average of the
            weights (`fmanet_hf.training.weight_averaging.WeightEMA`); the averaged weights
            replace the final ones after the last epoch, so the scored model is the average.
        precision: ``"fp32"`` (default) or ``"bf16"``: the forward pass of every training step
            under bfloat16 autocast; weights, gradients, optimiser state and loss stay float32
            (`fmanet_hf.training.precision`).
    """

    epochs: int | str
    batch_size: int
    learning_rate: float
    weight_decay: float = 1e-4
    optimizer: str = "adamw"
    momentum: float = 0.0
    lr_schedule: str = "cosine"
    class_weighting: str = "none"
    augmentation: str = "none"
    ema_decay: float = 0.0
    precision: str = "fp32"

    def __post_init__(self) -> None:
        def fail(message: str) -> None:
            raise FMANetConfigError(f"Invalid training schedule: {message}")

        if isinstance(self.epochs, str):
            if not _is_auto(self.epochs):
                fail(f"epochs must be an integer >= 1 or 'auto', got {self.epochs!r}.")
            object.__setattr__(self, "epochs", "auto")
        for name in ("batch_size",) if self.epochs_rule == "auto" else ("epochs", "batch_size"):
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
        if self.augmentation not in AUGMENTATIONS:
            fail(f"augmentation must be one of {list(AUGMENTATIONS)}, got {self.augmentation!r}.")
        if (
            isinstance(self.ema_decay, bool)
            or not isinstance(self.ema_decay, (int, float))
            or not math.isfinite(self.ema_decay)
            or not 0.0 <= self.ema_decay < 1.0
        ):
            fail(f"ema_decay must be in [0, 1) (0 = no weight averaging), got {self.ema_decay!r}.")
        if self.precision not in PRECISIONS:
            fail(f"precision must be one of {list(PRECISIONS)}, got {self.precision!r}.")

    @property
    def epochs_rule(self) -> str:
        """``"auto"`` (epochs from the data's size) or ``"given"`` (a number was given)."""
        return "auto" if isinstance(self.epochs, str) else "given"

    def resolved(self, num_train_samples: float) -> "TrainingSchedule":
        """This schedule with ``epochs="auto"`` replaced by `auto_epochs` of ``num_train_samples``
        (itself when the epochs are already a number)."""
        if self.epochs_rule == "given":
            return self
        return replace(self, epochs=auto_epochs(num_train_samples, self.batch_size))

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible dict of the schedule."""
        values = asdict(self)
        values["epochs"] = self.epochs if self.epochs_rule == "auto" else int(self.epochs)
        values["batch_size"] = int(self.batch_size)
        for key in ("learning_rate", "weight_decay", "momentum", "ema_decay"):
            values[key] = float(values[key])
        for key, default in RECIPE_DEFAULTS.items():
            if values[key] == default:
                del values[key]
        return values

    def learning_rate_at(self, step: int, total_steps: int) -> float:
        """Learning rate of optimiser step ``step`` (0-based) out of ``total_steps``."""
        if self.lr_schedule == "constant":
            return float(self.learning_rate)
        return float(self.learning_rate) * 0.5 * (1.0 + math.cos(math.pi * step / max(total_steps, 1)))


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
        if not _is_auto(epochs):
            raise FMANetConfigError(f"epochs must be an integer >= 1 or 'auto', got {epochs!r}.")
        return auto_epochs(num_train_samples, batch_size)
    return epochs


__all__ = [
    "AUGMENTATIONS",
    "AUTO_EPOCH_RANGE",
    "AUTO_TARGET_STEPS",
    "CLASS_WEIGHTINGS",
    "LR_SCHEDULES",
    "OPTIMIZERS",
    "PRECISIONS",
    "TrainingSchedule",
    "auto_epochs",
    "resolve_epochs",
]
