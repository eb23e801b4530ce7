"""Loading models safely, and the default model `predict`, the pipeline and the demo use.

The package ships a small FMANet trained on SynthME (the synthetic benchmark) under
``fmanet_hf/checkpoints/synthme-megc3/``: `load_default_model` loads it. It has never
seen a real micro-expression; its README (model card) gives its SynthME LOSO numbers and
the commands that produced it. An install without that folder falls back to a freshly
initialised FMANet (seeded, so every run gives the same untrained weights) and says so.

Only safetensors weights are ever loaded here. A pickle file (``pytorch_model.bin``,
``.pt``, ``.pth``) can execute code when unpickled, and even ``torch.load(weights_only=True)``
trusts a large part of the pickle machinery; the conversion scripts in ``conversion/``
turn a plain state dict into a safetensors folder once, after checking it.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import torch

from .configuration_fmanet import FMANetConfig
from .errors import CheckpointError
from .image_processing_fmanet import FMANetImageProcessor
from .modeling_fmanet import FMANetForImageClassification

logger = logging.getLogger(__name__)

BUNDLED_MODEL_NAME = "synthme-megc3"
BUNDLED_MODEL_DIR = Path(__file__).resolve().parent / "checkpoints" / BUNDLED_MODEL_NAME
UNTRAINED_SEED = 0

SAFETENSORS_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
#: File endings of pickle-based weights, which are never loaded outside ``conversion/``.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
_HUB_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")
CONVERSION_HINT = (
    "Convert a plain PyTorch state dict once with `python conversion/convert_state_dict.py WEIGHTS.pth OUT_DIR "
    "--key-map MAP.json` (from the fmanet-hf source tree); it loads with torch.load(weights_only=True), checks that "
    "the file holds only tensors and writes model.safetensors."
)


def bundled_model_path() -> Path | None:
    """Folder of the bundled SynthME checkpoint, or None if this install has none."""
    return BUNDLED_MODEL_DIR if (BUNDLED_MODEL_DIR / "model.safetensors").is_file() else None


def check_safe_checkpoint(path: str | os.PathLike, subfolder: str | None = None) -> Path | None:
    """Refuse a local model folder whose weights are not safetensors.

    Args:
        path: a local folder, or a Hub repo id (not checked here: the loaders pass
            ``use_safetensors=True``, so transformers refuses pickle weights there).
        subfolder: optional folder inside ``path`` (as in ``from_pretrained``).

    Returns:
        The local folder checked, or None when ``path`` is not a local folder.

    Raises:
        CheckpointError: the folder has no ``config.json``, or no ``model.safetensors``
            (e.g. only ``pytorch_model.bin``), with the fix.
    """
    text = os.fspath(path)
    folder = Path(text).expanduser()
    if folder.is_file():
        raise CheckpointError(
            f"{text!r} is a file; pass the FOLDER that holds config.json and model.safetensors. "
            + (CONVERSION_HINT if text.endswith(PICKLE_SUFFIXES) else "")
        )
    if not folder.is_dir():
        # A name on disk, or one starting with /, ./, ../ or ~, is a path; anything else a Hub id.
        if os.path.isabs(text) or text.startswith((".", "~")) or not _HUB_REPO_ID.fullmatch(text):
            reason = (
                f"it starts with {text[:3] if text.startswith('../') else text[:2] if text.startswith(('./', '~/')) else text[0]!r}"
                if os.path.isabs(text) or text.startswith((".", "~")) else "it cannot be a Hub repo id (user/name)"
            )
            raise CheckpointError(
                f"Model folder {text!r} does not exist (read as a local path because {reason}). Check the path."
            )
        return None  # a Hub repo id
    if subfolder:
        folder = folder / subfolder
    if not (folder / "config.json").is_file():
        raise CheckpointError(
            f"{folder} has no config.json, so it is not a saved FMANet folder. Point at the folder written by "
            "save_pretrained, `fmanet-hf export` or `fmanet-hf loso --train-final-model` (its final_model/)."
        )
    model_type = _model_type(folder / "config.json")
    if model_type != "fmanet":
        raise CheckpointError(
            f"{folder} holds a {model_type!r} model (model_type in its config.json), not an FMANet model (model_type "
            "'fmanet'). Point at a folder written by fmanet-hf (save_pretrained, `fmanet-hf export`, or a run's final_model/)."
        )
    if any((folder / name).is_file() for name in SAFETENSORS_WEIGHTS):
        return folder
    pickles = sorted(p.name for p in folder.iterdir() if p.is_file() and p.name.endswith(PICKLE_SUFFIXES))
    if pickles:
        raise CheckpointError(
            f"{folder} holds pickle-based weights ({', '.join(pickles)}) and no model.safetensors. fmanet-hf never "
            f"loads pickles: unpickling can run arbitrary code. {CONVERSION_HINT}"
        )
    raise CheckpointError(f"{folder} has no model.safetensors; the folder is incomplete (re-export or re-download it).")


def _model_type(config_path: Path) -> str | None:
    """``model_type`` of a config.json, or `CheckpointError` when the file is not a JSON object."""
    try:
        values = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{config_path} is not readable JSON ({error}); re-export or re-download the folder.") from None
    if not isinstance(values, dict):
        raise CheckpointError(f"{config_path} must hold a JSON object, got {type(values).__name__}.")
    return values.get("model_type")


def load_pretrained_model(
    path: str | os.PathLike, *, subfolder: str | None = None, **kwargs: Any
) -> FMANetForImageClassification:
    """`FMANetForImageClassification.from_pretrained` that accepts safetensors weights only.

    Args:
        path: local folder or Hub repo id.
        subfolder: e.g. ``"folds/sub01"`` of an exported folder.
        kwargs: passed to ``from_pretrained`` (``use_safetensors`` is forced to True).

    Raises:
        CheckpointError: pickle weights, a missing folder/config, or no safetensors on the Hub.
    """
    local_folder = check_safe_checkpoint(path, subfolder)
    kwargs["use_safetensors"] = True
    if subfolder:
        kwargs["subfolder"] = subfolder
    try:
        return FMANetForImageClassification.from_pretrained(os.fspath(path), **kwargs)
    except OSError as error:
        detail = " ".join(str(error).split())  # one line
        if local_folder is None and _is_network_failure(error):
            raise CheckpointError(hub_unreachable_message(os.fspath(path))) from None
        hint = CONVERSION_HINT if local_folder is not None or "safetensors" in detail else (
            "Check the repo id (and, for a private repo, your login: `hf auth login`)."
        )
        raise CheckpointError(
            f"Could not load an FMANet from {os.fspath(path)!r} ({detail}). Only safetensors weights are loaded. {hint}"
        ) from None


#: Exceptions (by class name, anywhere in the chain) meaning the Hub could not be reached.
_NETWORK_ERRORS = {"LocalEntryNotFoundError", "OfflineModeIsEnabled", "ConnectionError", "ConnectError", "ConnectTimeout", "Timeout"}


def _is_network_failure(error: BaseException) -> bool:
    """Whether ``error`` (a from_pretrained failure) comes from an unreachable Hub or offline mode."""
    seen: BaseException | None = error
    while seen is not None:
        if any(cls.__name__ in _NETWORK_ERRORS for cls in type(seen).__mro__):
            return True
        seen = seen.__cause__ or seen.__context__
    return "couldn't connect" in str(error) or "offline mode" in str(error).lower()


def hub_unreachable_message(repo_id: str) -> str:
    """The one-line error for a Hub repo id that cannot be fetched: offline mode or no network."""
    from huggingface_hub import constants

    fetch_elsewhere = (
        f"or download it where there is a network (`hf download {repo_id} --local-dir DIR`) and pass that folder."
    )
    if constants.HF_HUB_OFFLINE:
        return (
            f"{repo_id!r} is not a local folder, so it was read as a Hugging Face Hub repo id; it is not in the local "
            f"Hub cache and HF_HUB_OFFLINE=1 forbids downloading it. Unset HF_HUB_OFFLINE on a machine with a network, "
            + fetch_elsewhere
        )
    return (
        f"{repo_id!r} is not a local folder, so it was read as a Hugging Face Hub repo id; {constants.ENDPOINT} could "
        f"not be reached (no network connection?) and it is not in the local Hub cache. Check the connection, "
        + fetch_elsewhere
    )


def untrained_model(config: FMANetConfig | None = None) -> FMANetForImageClassification:
    """A freshly initialised FMANet under seed `UNTRAINED_SEED` (same weights every call), eval mode."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(UNTRAINED_SEED)
        model = FMANetForImageClassification(config or FMANetConfig())
    return model.eval()


def load_model(path: str | os.PathLike | None = None) -> tuple[FMANetForImageClassification, FMANetImageProcessor, bool]:
    """(model in eval mode, its processor, whether the weights are trained).

    Args:
        path: a saved FMANet folder (or Hub repo id) with ``preprocessor_config.json``;
            None: the bundled checkpoint (`load_default_model`).

    Raises:
        CheckpointError: pickle weights or an incomplete folder.
    """
    if path is None:
        return load_default_model()
    model = load_pretrained_model(path).eval()
    folder = Path(path)
    if folder.is_dir() and not (folder / "preprocessor_config.json").is_file():
        raise CheckpointError(
            f"{folder} has no preprocessor_config.json, so the preprocessing the model was trained with is unknown. "
            "Save the processor next to the model (processor.save_pretrained(folder)), as `fmanet-hf export` does."
        )
    return model, FMANetImageProcessor.from_pretrained(os.fspath(path)), True


def load_default_model() -> tuple[FMANetForImageClassification, FMANetImageProcessor, bool]:
    """(model in eval mode, its processor, whether the weights are trained).

    Loads the bundled SynthME checkpoint when present; otherwise an untrained FMANet with
    the default config, initialised under seed 0, and a warning.
    """
    path = bundled_model_path()
    if path is not None:
        model = load_pretrained_model(path).eval()
        return model, FMANetImageProcessor.from_pretrained(os.fspath(path)), True
    logger.warning(
        "No bundled checkpoint in this install: using an UNTRAINED FMANet (random weights, seed %d). "
        "Its predictions are meaningless; pass --model with a trained folder.",
        UNTRAINED_SEED,
    )
    return untrained_model(), FMANetImageProcessor(), False


__all__ = [
    "BUNDLED_MODEL_DIR",
    "BUNDLED_MODEL_NAME",
    "PICKLE_SUFFIXES",
    "bundled_model_path",
    "check_safe_checkpoint",
    "load_default_model",
    "load_model",
    "load_pretrained_model",
    "hub_unreachable_message",
    "untrained_model",
]
