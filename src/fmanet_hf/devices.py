"""Choosing the torch device a command runs on: ``--device auto|cpu|cuda|mps``.

``auto`` takes the best device this process can use: CUDA, then Apple's MPS, then the CPU.
Asking for a device that is not there is an error that says why in one line (a CPU-only
torch build, no visible GPU, an index past the last GPU) rather than a crash deep inside
torch. torch is imported inside the functions, so the command-line parser can import
`DEVICE_CHOICES` cheaply.
"""

from __future__ import annotations

from typing import Any

from .errors import DeviceUnavailableError, FMANetConfigError

#: What ``--device`` accepts (``cuda:N`` is accepted too where a single process runs).
DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def cuda_available() -> bool:
    """Whether torch can use a CUDA GPU here."""
    import torch

    return bool(torch.cuda.is_available())


def mps_available() -> bool:
    """Whether torch can use Apple's MPS backend here."""
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def _cuda_missing_reason() -> str:
    import torch

    if not torch.backends.cuda.is_built():
        return f"this torch build ({torch.__version__}) has no CUDA support; install a CUDA build of torch"
    return "no CUDA GPU is visible to this process (check the driver, nvidia-smi and CUDA_VISIBLE_DEVICES)"


def resolve_device(name: Any = "auto") -> Any:
    """The `torch.device` for ``name``.

    Args:
        name: ``"auto"`` (or None): CUDA if available, else MPS, else CPU; ``"cpu"``;
            ``"cuda"`` or ``"cuda:N"``; ``"mps"``; or a `torch.device`.

    Returns:
        A `torch.device` that this process can use.

    Raises:
        DeviceUnavailableError: the device is not available (the message says why).
        FMANetConfigError: ``name`` is not a device name.
    """
    import torch

    text = "auto" if name is None else str(name).strip().lower()
    kind, _, index = text.partition(":")
    if kind == "auto" and not index:
        if cuda_available():
            return torch.device("cuda")
        return torch.device("mps") if mps_available() else torch.device("cpu")
    if kind == "cpu" and not index:
        return torch.device("cpu")
    if kind == "cuda":
        if not cuda_available():
            raise DeviceUnavailableError(f"device {text!r} is not available: {_cuda_missing_reason()}. Use cpu, or auto.")
        if index:
            count = torch.cuda.device_count()
            if not index.isdigit() or int(index) >= count:
                raise DeviceUnavailableError(
                    f"device {text!r} is not available: this process sees {count} CUDA GPU(s), numbered 0 to {count - 1}."
                )
        return torch.device(text)
    if kind == "mps" and not index:
        if not mps_available():
            raise DeviceUnavailableError(
                f"device {text!r} is not available: Apple's MPS backend needs an Apple-silicon Mac with a torch build "
                "that supports it. Use cpu, or auto."
            )
        return torch.device("mps")
    raise FMANetConfigError(f"unknown device {name!r}: choose one of {', '.join(DEVICE_CHOICES)} (or cuda:N).")


def device_argument(text: str) -> str:
    """argparse ``type=`` of ``--device``: checks the spelling (availability is checked when the command runs)."""
    import argparse

    value = text.strip().lower()
    kind, _, index = value.partition(":")
    if kind not in DEVICE_CHOICES or (index and (kind != "cuda" or not index.isdigit())):
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(DEVICE_CHOICES)} (or cuda:N), got {text!r}")
    return value


__all__ = ["DEVICE_CHOICES", "cuda_available", "device_argument", "mps_available", "resolve_device"]
