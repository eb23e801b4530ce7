"""The model `predict` and the demo use when no model is given.

The package is meant to ship a small FMANet trained on SynthME under
``fmanet_hf/checkpoints/synthme-megc3/``. Until that checkpoint exists in the installed
package, `load_default_model` returns a freshly initialised FMANet (seeded, so every run
gives the same untrained weights) and says so: its predictions are meaningless.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from .configuration_fmanet import FMANetConfig
from .image_processing_fmanet import FMANetImageProcessor
from .modeling_fmanet import FMANetForImageClassification

logger = logging.getLogger(__name__)

BUNDLED_MODEL_DIR = Path(__file__).resolve().parent / "checkpoints" / "synthme-megc3"
UNTRAINED_SEED = 0


def bundled_model_path() -> Path | None:
    """Folder of the bundled SynthME checkpoint, or None if this install has none."""
    return BUNDLED_MODEL_DIR if (BUNDLED_MODEL_DIR / "model.safetensors").is_file() else None


def load_default_model() -> tuple[FMANetForImageClassification, FMANetImageProcessor, bool]:
    """(model in eval mode, its processor, whether the weights are trained).

    Loads the bundled checkpoint when present; otherwise an untrained FMANet with the
    default config, initialised under seed 0, and a warning.
    """
    path = bundled_model_path()
    if path is not None:
        model = FMANetForImageClassification.from_pretrained(path)
        return model.eval(), FMANetImageProcessor.from_pretrained(path), True
    logger.warning(
        "No bundled checkpoint in this install: using an UNTRAINED FMANet (random weights, seed %d). "
        "Its predictions are meaningless; pass --model with a trained folder.",
        UNTRAINED_SEED,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(UNTRAINED_SEED)
        model = FMANetForImageClassification(FMANetConfig())
    return model.eval(), FMANetImageProcessor(), False
