"""Starting a model from pretrained FMANet weights (``--init-from FOLDER``) instead of at random.

Used to fine-tune from a SynthME pretraining run (`fmanet-hf pretrain`): every LOSO fold, and
the final model, start from the same saved weights; each fold then trains on its own training
subjects only. The pretraining people must not be people of the LOSO run (SynthME 2.0 keeps
them in separate, listed groups), or the held-out subject was seen after all.

Only weights are taken from the folder; the architecture comes from the run's own config and
must match it tensor for tensor. The classifier is the exception: when the run has other
classes than the pretraining (a different number, names or order), it starts fresh, since a
row of the old classifier means another class.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CheckpointError

logger = logging.getLogger(__name__)

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
CLASSIFIER_PREFIX = "classifier."


def _weights_file(folder: str | os.PathLike) -> Path:
    path = Path(folder)
    if not path.is_dir():
        raise CheckpointError(
            f"--init-from {str(folder)!r} is not a folder; give the folder written by `fmanet-hf pretrain` "
            "(or by save_pretrained), holding model.safetensors and config.json."
        )
    weights = path / WEIGHTS_NAME
    if not weights.is_file() or not (path / CONFIG_NAME).is_file():
        raise CheckpointError(
            f"--init-from {str(folder)!r} holds no {WEIGHTS_NAME} and {CONFIG_NAME}; give the folder written by "
            "`fmanet-hf pretrain` (or by save_pretrained)."
        )
    return weights


def describe_initialization(folder: str | os.PathLike) -> dict[str, Any]:
    """What a run records about its starting weights: the folder and the weights' sha256.

    The digest enters the run's settings, so resuming a run with other starting weights is
    refused like any other change of settings.
    """
    weights = _weights_file(folder)
    digest = hashlib.sha256()
    with open(weights, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return {"path": str(Path(folder).resolve()), "sha256": digest.hexdigest()}


def load_initial_weights(model: Any, folder: str | os.PathLike) -> dict[str, Any]:
    """Copy the weights saved in ``folder`` into ``model`` (an `FMANetForImageClassification`).

    Args:
        model: the freshly built model of the run's config.
        folder: a folder with ``model.safetensors`` and ``config.json``.

    Returns:
        ``{"loaded": number of tensors copied, "classifier": "loaded" | "fresh"}``.

    Raises:
        CheckpointError: a missing file, or a tensor whose name or shape does not match the
            run's architecture (a different model size, phase mode or input resolution).
    """
    from safetensors.torch import load_file

    weights = _weights_file(folder)
    try:
        saved = load_file(str(weights))
        saved_config = json.loads((Path(folder) / CONFIG_NAME).read_text())
    except (OSError, ValueError) as error:
        raise CheckpointError(f"--init-from {str(folder)!r}: could not read the weights or config ({error}).") from error
    state = model.state_dict()
    same_classes = dict(saved_config.get("id2label", {})) == {str(k): v for k, v in model.config.id2label.items()}
    skipped_classifier = []
    problems = []
    for name, tensor in state.items():
        if name.startswith(CLASSIFIER_PREFIX) and not same_classes:
            skipped_classifier.append(name)
            continue
        if name not in saved:
            problems.append(f"{name} is missing")
        elif tuple(saved[name].shape) != tuple(tensor.shape):
            problems.append(f"{name} has shape {tuple(saved[name].shape)}, the run needs {tuple(tensor.shape)}")
    unexpected = [name for name in saved if name not in state]
    if problems or unexpected:
        listed = (problems + [f"{name} is not in the run's model" for name in unexpected])[:5]
        raise CheckpointError(
            f"--init-from {str(folder)!r} does not fit the run's model: {'; '.join(listed)}. Use the same model "
            "settings (--set ...) and input size as the pretraining run, or start without --init-from."
        )
    loadable = {name: saved[name] for name in state if name not in skipped_classifier}
    model.load_state_dict(loadable, strict=False)
    if skipped_classifier:
        logger.info("--init-from %s: other classes than the pretraining; the classifier starts fresh.", folder)
    return {"loaded": len(loadable), "classifier": "fresh" if skipped_classifier else "loaded"}


@dataclass(frozen=True)
class PretrainedInitialization:
    """A picklable ``config -> model`` factory: a fresh model, then the weights of ``folder``.

    Picklable (a plain path), so fold worker processes can use it too.
    """

    folder: str

    def __call__(self, config: Any) -> Any:
        from ..modeling_fmanet import FMANetForImageClassification

        model = FMANetForImageClassification(config)
        load_initial_weights(model, self.folder)
        return model


__all__ = ["PretrainedInitialization", "describe_initialization", "load_initial_weights"]
