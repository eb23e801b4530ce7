"""Exponential moving average (EMA) of a model's weights, for scoring the final epoch.

The leak-free protocol scores the model after the LAST optimiser step, never the best epoch
on held-out data. On small data that last step is noisy: the weights still jump from batch
to batch. An EMA of the weights over the last few hundred steps is a smoother estimate of
the same trajectory, chosen without looking at any held-out sample, so it keeps the
protocol leak-free. Each fold model has its own EMA (nothing is shared across folds).

The averaged copy follows the optimiser step by step:
``shadow <- d_t * shadow + (1 - d_t) * weights`` with ``d_t = min(decay, (1 + t) / (10 + t))``
at step t, so that the first steps (random initial weights) are forgotten quickly. Buffers
(none in FMANet, which uses GroupNorm) are copied, not averaged.
"""

from __future__ import annotations

import math

import torch

from ..errors import FMANetConfigError


class WeightEMA:
    """Keeps an exponential moving average of ``model``'s floating-point parameters.

    Args:
        model: the model being trained (its parameters are read, never changed, until
            :meth:`copy_to`).
        decay: the EMA decay in [0, 1); 0.999 averages over roughly the last 1,000 steps.
    """

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not (0.0 <= decay < 1.0) or not math.isfinite(decay):
            raise FMANetConfigError(f"EMA decay must be a number in [0, 1), got {decay!r} (0 turns weight averaging off).")
        self.decay = float(decay)
        self.steps = 0
        self.shadow = {
            name: parameter.detach().clone()
            for name, parameter in model.named_parameters()
            if parameter.dtype.is_floating_point
        }

    def decay_at(self, step: int) -> float:
        """The decay d_t used for the update after optimiser step ``step`` (0-based)."""
        return min(self.decay, (1.0 + step) / (10.0 + step))

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        """Fold the model's current weights into the average (call after each optimiser step)."""
        decay = self.decay_at(self.steps)
        for name, parameter in model.named_parameters():
            shadow = self.shadow.get(name)
            if shadow is not None:
                shadow.mul_(decay).add_(parameter.detach().to(shadow.dtype), alpha=1.0 - decay)
        self.steps += 1

    @torch.no_grad()
    def copy_to(self, model: torch.nn.Module) -> None:
        """Overwrite the model's parameters with the averaged ones (in place)."""
        for name, parameter in model.named_parameters():
            shadow = self.shadow.get(name)
            if shadow is not None:
                parameter.copy_(shadow.to(parameter.dtype))
