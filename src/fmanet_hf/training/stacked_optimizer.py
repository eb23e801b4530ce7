"""AdamW and SGD on stacked weights: K models' parameters in one tensor per name (K, ...),
one step count and learning rate per model, and models that have finished left alone.

The update is ``torch.optim``'s element-wise one (AdamW: decoupled weight decay, bias-corrected
moments; SGD: L2 added to the gradient, momentum buffer started with the first gradient), with
the same parameter groups as `fmanet_hf.training.engine` (no decay on norms, biases and the
modules' scalar-like parameters), applied to every model's slice at once, so that
`fmanet_hf.training.fold_batch` trains K fold models as per-fold training would, up to float
rounding.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from .schedule import TrainingSchedule

_ADAM_BETAS = (0.9, 0.999)
_ADAM_EPS = 1e-8


def _no_decay(name: str, parameter: torch.Tensor) -> bool:
    """The parameter groups of `fmanet_hf.training.engine`: no weight decay on this parameter."""
    from .engine import NO_DECAY_NAME_PARTS

    return parameter.ndim < 2 or any(part in name for part in NO_DECAY_NAME_PARTS)


def per_model_column(values: Sequence[float], like: torch.Tensor) -> torch.Tensor:
    """(K,) values as a (K, 1, ..., 1) float32 tensor that broadcasts against ``like`` (K, ...)."""
    return torch.tensor(values, dtype=torch.float32, device=like.device).view(-1, *([1] * (like.ndim - 1)))


class StackedOptimizer:
    """AdamW (decoupled decay) or SGD (L2, momentum) on stacked weights, one step count and
    learning rate per model; the element-wise update of ``torch.optim`` for each model."""

    def __init__(self, trainable: dict[str, torch.Tensor], parameters: dict[str, torch.Tensor], schedule: TrainingSchedule):
        self.schedule = schedule
        self.parameters = parameters
        self.decay = {
            name: 0.0 if _no_decay(name, tensor[0]) else float(schedule.weight_decay) for name, tensor in trainable.items()
        }
        self.first = {name: torch.zeros_like(tensor) for name, tensor in trainable.items()}
        self.second = (
            {name: torch.zeros_like(tensor) for name, tensor in trainable.items()} if schedule.optimizer == "adamw" else {}
        )
        self.momentum_started: set[str] = set()

    @torch.no_grad()
    def step(self, grads: dict[str, torch.Tensor], rows: torch.Tensor | None, learning_rates: list[float], steps: list[int]) -> None:
        """One update of the models ``rows`` (all when None), with their learning rates and
        1-based step counts (``learning_rates`` and ``steps`` are given for those rows)."""
        device = next(iter(self.parameters.values())).device
        # The per-model factors, sent to the device once per step (not once per tensor).
        factors = {"negative_lr": [-lr for lr in learning_rates]}
        for weight_decay in set(self.decay.values()):
            factors[f"decay {weight_decay}"] = [1.0 - lr * weight_decay for lr in learning_rates]
        if self.schedule.optimizer == "adamw":
            beta1, beta2 = _ADAM_BETAS
            factors["negative_step_size"] = [-lr / (1.0 - beta1**step) for lr, step in zip(learning_rates, steps)]
            factors["correction"] = [math.sqrt(1.0 - beta2**step) for step in steps]
        names = list(factors)
        table = torch.tensor([factors[name] for name in names], dtype=torch.float32).to(device)
        vectors = dict(zip(names, table))
        for name, grad in grads.items():
            parameter = self.parameters[name]
            first = self.first[name]
            if rows is not None:
                grad = grad.index_select(0, rows)
                parameter_rows, first_rows = parameter.index_select(0, rows), first.index_select(0, rows)
            else:
                parameter_rows, first_rows = parameter, first

            def column(key: str) -> torch.Tensor:
                return vectors[key].view(-1, *([1] * (parameter_rows.ndim - 1)))

            weight_decay = self.decay[name]
            if self.schedule.optimizer == "adamw":
                second = self.second[name]
                second_rows = second.index_select(0, rows) if rows is not None else second
                beta1, beta2 = _ADAM_BETAS
                if weight_decay:
                    parameter_rows.mul_(column(f"decay {weight_decay}"))
                first_rows.lerp_(grad, 1.0 - beta1)
                second_rows.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
                denominator = (second_rows.sqrt() / column("correction")).add_(_ADAM_EPS)
                parameter_rows.add_((first_rows / denominator) * column("negative_step_size"))
                if rows is not None:
                    second.index_copy_(0, rows, second_rows)
            else:
                if weight_decay:
                    grad = grad.add(parameter_rows, alpha=weight_decay)
                momentum = float(self.schedule.momentum)
                if momentum:
                    # torch's SGD starts the buffer with the first gradient; every model of a
                    # batch takes its first step together (they start together).
                    if name not in self.momentum_started:
                        first_rows.copy_(grad)
                        self.momentum_started.add(name)
                    else:
                        first_rows.mul_(momentum).add_(grad)
                    grad = first_rows
                parameter_rows.add_(grad * column("negative_lr"))
            if rows is not None:
                parameter.index_copy_(0, rows, parameter_rows)
                first.index_copy_(0, rows, first_rows)


__all__ = ["StackedOptimizer", "per_model_column"]
