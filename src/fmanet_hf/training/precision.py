"""Mixed precision of training: the ``precision`` a schedule trains in, the autocast context that
applies it on a device, and whether the device can run it.

``"fp32"`` (the default) trains in float32 throughout. ``"bf16"`` runs the model's forward
pass under ``torch.autocast(dtype=torch.bfloat16)``: convolutions and matrix products compute
in bfloat16 (their backward too), while the parameters, their gradients, the optimiser state
and the loss stay float32 (autocast only, no bfloat16 copy of the weights; the logits are cast
back to float32 before the cross-entropy). Predictions are made in float32 with the float32
weights, so a bf16-trained model is saved and used like any other.
"""

from __future__ import annotations

import contextlib
from typing import Any, ContextManager

import torch

from ..errors import FMANetConfigError
from .schedule import PRECISIONS


def _cpu_has_fast_bfloat16() -> bool:
    """Whether oneDNN has bfloat16 kernels for this CPU (AVX512 BW/VL/DQ and up: AVX512-BF16
    and AMX run them natively). Without them torch still runs bfloat16, through slow generic code."""
    check = getattr(getattr(torch.ops, "mkldnn", None), "_is_mkldnn_bf16_supported", None)
    if check is None:  # pragma: no cover - every torch the package supports has it
        return True
    return bool(check())


def precision_obstacle(precision: str, device: Any) -> str | None:
    """Why ``device`` cannot train in ``precision`` (None: it can).

    Args:
        precision: one of `PRECISIONS`.
        device: a `torch.device` or its name.
    """
    if precision == "fp32":
        return None
    device = torch.device(device)
    if device.type == "cuda":
        if not torch.cuda.is_bf16_supported(including_emulation=False):
            return f"{device} ({torch.cuda.get_device_name(device)}) has no bfloat16 arithmetic (it needs an Ampere GPU or newer)"
        return None
    if device.type == "cpu":
        if not _cpu_has_fast_bfloat16():
            return "this CPU has no bfloat16 kernels (oneDNN needs AVX512; AVX512-BF16 or AMX run them natively), so bf16 would be slower than fp32"
        return None
    if not torch.amp.is_autocast_available(device.type):
        return f"torch has no autocast for {device.type} devices"
    return None


def check_precision(precision: str, device: Any) -> None:
    """Raise `FMANetConfigError` when ``precision`` is unknown or ``device`` cannot train in it."""
    if precision not in PRECISIONS:
        raise FMANetConfigError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}.")
    reason = precision_obstacle(precision, device)
    if reason is not None:
        raise FMANetConfigError(f"--precision {precision} cannot train here: {reason}. Use --precision fp32 (the default).")


def training_autocast(precision: str, device: Any) -> ContextManager[Any]:
    """The context the forward pass of a training step runs in: nothing for ``"fp32"``,
    ``torch.autocast(device.type, dtype=torch.bfloat16)`` for ``"bf16"``."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)


__all__ = ["PRECISIONS", "check_precision", "precision_obstacle", "training_autocast"]
