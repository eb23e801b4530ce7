"""The ``"micro-expression-recognition"`` pipeline: registration, safe loading, and its remote code in exported folders.

The pipeline class lives in `fmanet_hf.pipeline_fmanet` (remote code, copied into exported
folders); it is re-exported here. ``import fmanet_hf`` registers the task with transformers
(when transformers loads, see `fmanet_hf.registration`), so::

    from transformers import pipeline
    classify = pipeline("micro-expression-recognition", model="path/to/exported-folder")
    classify(("onset.png", "apex.png", "offset.png"))

works with the package; `add_pipeline_code` makes the same call work without it
(``trust_remote_code=True``). Every model load of `micro_expression_pipeline` and of the
registered task goes through safetensors only (pickle weights are refused with a
`CheckpointError`, see `fmanet_hf.pretrained`).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForImageClassification

from .errors import CheckpointError
from .pipeline_fmanet import TASK, MicroExpressionRecognitionPipeline, Predictions

logger = logging.getLogger(__name__)

#: ``config.json``'s ``custom_pipelines`` entry of an exported folder: the task, its class in
#: the folder's ``pipeline_fmanet.py``, and the Auto class that loads its model.
CUSTOM_PIPELINES = {
    TASK: {
        "impl": "pipeline_fmanet.MicroExpressionRecognitionPipeline",
        "pt": ["AutoModelForImageClassification"],
        "tf": [],
        "type": "image",
    }
}


class SafetensorsAutoModelForImageClassification(AutoModelForImageClassification):
    """``AutoModelForImageClassification`` that refuses pickle weights.

    `pipeline()` loads the model by calling ``from_pretrained`` of the task's model class;
    registering this class makes that path go through `check_safe_checkpoint` and
    ``use_safetensors=True``.
    """

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        from .pretrained import check_safe_checkpoint

        check_safe_checkpoint(pretrained_model_name_or_path, kwargs.get("subfolder"))
        kwargs["use_safetensors"] = True
        return AutoModelForImageClassification.from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)



def register_pipeline() -> None:
    """Register the task with transformers (idempotent; `fmanet_hf.registration` calls it).

    When the package carries its bundled checkpoint, it is the task's default model, so
    ``pipeline("micro-expression-recognition")`` works offline with no model argument.
    """
    from transformers.pipelines import PIPELINE_REGISTRY

    current = PIPELINE_REGISTRY.supported_tasks.get(TASK)
    if current is not None and current.get("impl") is MicroExpressionRecognitionPipeline:
        return
    from .pretrained import bundled_model_path

    bundled = bundled_model_path()
    PIPELINE_REGISTRY.register_pipeline(
        TASK,
        pipeline_class=MicroExpressionRecognitionPipeline,
        pt_model=SafetensorsAutoModelForImageClassification,
        default={"model": (str(bundled), None)} if bundled is not None else None,
        type="image",
    )


def micro_expression_pipeline(
    model: Any = None, image_processor: Any = None, *, device: Any = None, **kwargs: Any
) -> MicroExpressionRecognitionPipeline:
    """The pipeline, loading safely: ``model`` a folder / repo id / model object, or None for the bundled model.

    ``device``: as transformers pipelines take it (``"cuda"``, ``0``, a `torch.device`...), or
    ``"auto"`` (CUDA, else MPS, else CPU; `fmanet_hf.devices.resolve_device`); default: the
    CPU when no CUDA device is available.

    Raises `CheckpointError` directly (rather than transformers' generic load error) for
    pickle weights or incomplete folders.
    """
    from .pretrained import load_default_model, load_pretrained_model

    if model is None:
        model, default_processor, _ = load_default_model()
        image_processor = image_processor if image_processor is not None else default_processor
    elif isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        model = load_pretrained_model(path)
        if image_processor is None:
            from .image_processing_fmanet import FMANetImageProcessor

            try:
                image_processor = FMANetImageProcessor.from_pretrained(path)
            except OSError as error:
                raise CheckpointError(
                    f"{path} has no readable preprocessor_config.json ({error}); pass image_processor=... explicitly."
                ) from None
    if isinstance(device, str) and device.strip().lower() == "auto":
        from .devices import resolve_device

        device = resolve_device("auto")
    device = device if device is not None else ("cpu" if not torch.cuda.is_available() else None)
    return MicroExpressionRecognitionPipeline(
        model=model, image_processor=image_processor, task=TASK, device=device, **kwargs
    )


def add_pipeline_code(folder: str | os.PathLike) -> list[str]:
    """Make a saved model folder usable by ``pipeline(TASK, model=folder, trust_remote_code=True)``
    without the package: copy ``pipeline_fmanet.py`` (and the remote-code files it imports)
    and write `CUSTOM_PIPELINES` into its ``config.json``.

    With the package imported, the registered task is used instead (the package's
    `FMANetConfig` does not expose ``custom_pipelines``), so the folder needs no
    ``trust_remote_code`` there.

    Returns:
        the names of the files written or rewritten, sorted.
    """
    from transformers.dynamic_module_utils import custom_object_save

    from .atomic import atomic_write_json

    target = Path(folder)
    config_path = target / "config.json"
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{config_path} is not a readable model config ({error}); save the model there first.") from None
    copied = custom_object_save(MicroExpressionRecognitionPipeline, target)
    config["custom_pipelines"] = json.loads(json.dumps(CUSTOM_PIPELINES))
    atomic_write_json(config_path, config)
    return sorted({Path(p).name for p in copied} | {"config.json"})


__all__ = [
    "CUSTOM_PIPELINES",
    "TASK",
    "add_pipeline_code",
    "MicroExpressionRecognitionPipeline",
    "Predictions",
    "SafetensorsAutoModelForImageClassification",
    "micro_expression_pipeline",
    "register_pipeline",
]
