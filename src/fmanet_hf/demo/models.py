"""The models a demo visitor can pick: the default one and FMANet folders found locally.

A folder counts as an FMANet export when its ``config.json`` says ``"model_type": "fmanet"``.
Discovery only reads small JSON files; weights are loaded the first time a model is
picked and then kept (one copy per model for the life of the app).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from .errors import ModelChoiceError

logger = logging.getLogger(__name__)

#: Dropdown value of the default model (bundled SynthME checkpoint, or untrained fallback).
DEFAULT_MODEL_KEY = "default"
#: How deep below each given folder exports are searched (exports/<dataset>/final_model is 2).
SEARCH_DEPTH = 3
#: Most folders listed; a visitor cannot use a dropdown of thousands anyway.
MAX_LISTED_MODELS = 50


@dataclass(frozen=True)
class ModelChoice:
    """One entry of the model selector.

    Attributes:
        key: the dropdown value (``"default"`` or the folder's absolute path).
        label: what the visitor reads.
        path: the folder, or None for the default model.
    """

    key: str
    label: str
    path: Path | None


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to classify, with what the page must say about it.

    Attributes:
        model: `FMANetForImageClassification` in eval mode.
        processor: its `FMANetImageProcessor`.
        trained: False for the untrained fallback (random weights).
        description: one sentence on where the weights come from.
    """

    model: Any
    processor: Any
    trained: bool
    description: str


def is_fmanet_folder(folder: Path) -> bool:
    """True when ``folder/config.json`` exists and declares ``model_type`` "fmanet"."""
    config_path = folder / "config.json"
    if not config_path.is_file():
        return False
    try:
        with open(config_path, encoding="utf-8") as handle:
            return json.load(handle).get("model_type") == "fmanet"
    except (OSError, ValueError, AttributeError):
        return False


def _walk_folders(root: Path, depth: int) -> Iterable[Path]:
    yield root
    if depth <= 0:
        return
    try:
        children = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return
    for child in children:
        yield from _walk_folders(child, depth - 1)


def default_model_label() -> str:
    """Label of the default entry: says whether a trained checkpoint is bundled."""
    from ..pretrained import bundled_model_path

    if bundled_model_path() is not None:
        return "default: FMANet trained on SynthME (bundled, synthetic data only)"
    return "default: UNTRAINED FMANet (no bundled checkpoint; scores are meaningless)"


def discover_models(model_dirs: Iterable[str | os.PathLike] | None = None) -> list[ModelChoice]:
    """The default model, then every FMANet folder at or below each of ``model_dirs``.

    Args:
        model_dirs: folders that are exports themselves or contain exports (searched
            `SEARCH_DEPTH` levels down). Missing folders are skipped with a warning.
    """
    choices = [ModelChoice(DEFAULT_MODEL_KEY, default_model_label(), None)]
    seen: set[str] = set()
    for given in model_dirs or ():
        root = Path(given).expanduser().absolute()
        if not root.is_dir():
            logger.warning("Model folder %s does not exist; it is not listed in the demo.", root)
            continue
        for folder in _walk_folders(root, SEARCH_DEPTH):
            if len(choices) > MAX_LISTED_MODELS:
                logger.warning("More than %d FMANet folders found; listing the first ones only.", MAX_LISTED_MODELS)
                return choices
            key = str(folder)
            if key in seen or not is_fmanet_folder(folder):
                continue
            seen.add(key)
            relative = folder.relative_to(root) if folder != root else Path(folder.name)
            choices.append(ModelChoice(key, f"{root.name}/{relative}" if folder != root else folder.name, folder))
    return choices


def _load_folder(path: Path):
    """(model, processor, trained) from an exported folder, safetensors only."""
    try:
        # The package's safe loader (refuses pickle weights, needs preprocessor_config.json).
        from ..pretrained import load_model
    except ImportError:  # older fmanet_hf without it: the plain transformers loaders
        from ..image_processing_fmanet import FMANetImageProcessor
        from ..modeling_fmanet import FMANetForImageClassification

        model = FMANetForImageClassification.from_pretrained(path, use_safetensors=True).eval()
        return model, FMANetImageProcessor.from_pretrained(path), True
    return load_model(path)


class ModelRegistry:
    """Lazily loads and keeps the models of a list of `ModelChoice` (thread-safe)."""

    def __init__(self, choices: list[ModelChoice], *, device: Any = None, face_backend: str | None = None):
        """``device``: where every model is moved when it loads (a `torch.device` or a name of
        `fmanet_hf.devices.resolve_device`; default the CPU); checked here, before any load.
        ``face_backend``: when given, every model's processor finds faces with it (``"dlib"`` or
        ``"mediapipe"``) instead of the backend it was saved with."""
        from ..devices import resolve_device

        self.device = resolve_device(device or "cpu")
        self.choices = list(choices)
        self.face_backend = face_backend
        self._by_key = {choice.key: choice for choice in self.choices}
        self._loaded: dict[str, LoadedModel] = {}
        self._lock = threading.Lock()

    def dropdown_choices(self) -> list[tuple[str, str]]:
        """(label, key) pairs for a `gradio.Dropdown`."""
        return [(choice.label, choice.key) for choice in self.choices]

    def get(self, key: str | None) -> LoadedModel:
        """The loaded model for a dropdown value (None means the default).

        Raises:
            ModelChoiceError: ``key`` is not one of the listed models.
            CheckpointError: the folder cannot be loaded.
        """
        key = key or DEFAULT_MODEL_KEY
        choice = self._by_key.get(key)
        if choice is None:
            raise ModelChoiceError(
                f"Unknown model {key!r}. Pick one of the listed models: {', '.join(self._by_key)}."
            )
        with self._lock:  # one load per model even when several visitors pick it at once
            if key not in self._loaded:
                loaded = self._load(choice)
                if self.face_backend:
                    loaded.processor.face_backend = self.face_backend
                    loaded.processor.validate_settings()
                self._loaded[key] = LoadedModel(
                    model=loaded.model.to(self.device), processor=loaded.processor, trained=loaded.trained,
                    description=loaded.description,
                )
            return self._loaded[key]

    @staticmethod
    def _load(choice: ModelChoice) -> LoadedModel:
        from ..pretrained import load_default_model

        if choice.path is None:
            model, processor, trained = load_default_model()
            description = (
                "the default FMANet trained on SynthME, synthetic micro-expressions rendered on a few photographs"
                if trained
                else "an UNTRAINED FMANet (random weights, seed 0): no trained checkpoint is bundled with this install"
            )
        else:
            model, processor, trained = _load_folder(choice.path)
            description = f"the exported FMANet in {choice.path.name} (see its README for its training data)"
        return LoadedModel(model=model, processor=processor, trained=trained, description=description)
