"""The model config a run trains, built from the user's config and the prepared data.

The dataset defines the classes (``id2label``/``label2id``) and the input shape, whatever
the given config said; a config that does not fit the data is refused with the setting to
change. `config_to_dict` is the config as recorded in a run folder (without provenance keys).
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

from ..errors import FMANetConfigError

#: Config keys that describe where a config came from, not the model.
_VOLATILE_CONFIG_KEYS = ("transformers_version", "_name_or_path", "architectures", "dtype", "torch_dtype")

#: Settings read only by ``phase_mode="mmcof"`` (the fixed-MM-COF baseline). Recorded only
#: for such runs, so the records, and the digests, of other runs are as before they existed.
_MMCOF_ONLY_KEYS = ("mmcof_modulation_threshold", "mmcof_modulation_sharpness")


def config_to_dict(config: Any) -> dict[str, Any]:
    """A model config as a JSON-compatible dict without provenance keys (versions, paths)."""
    values = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    values = json.loads(json.dumps(values, default=str))
    for key in _VOLATILE_CONFIG_KEYS:
        values.pop(key, None)
    if values.get("phase_mode") != "mmcof":
        for key in _MMCOF_ONLY_KEYS:
            values.pop(key, None)
    return values


def build_model_config(
    model_config: Any,
    class_names: Sequence[str],
    image_size: tuple[int, int],
    num_channels: int,
):
    """The `FMANetConfig` to train: ``model_config`` with the dataset's classes and checks.

    Args:
        model_config: an `FMANetConfig`, a dict of its arguments, or None (defaults).
        class_names: the dataset's C classes: they become ``id2label``/``label2id``
            (the prepared data's ``label_id`` defines the classes, whatever the config said).
        image_size: (H, W) of the prepared ``pixel_values``.
        num_channels: channels of ``pixel_values`` (2 * channels per phase).

    Raises:
        FMANetConfigError: the config's image size or channels do not match the data.
    """
    from ..configuration_fmanet import FMANetConfig

    height, width = image_size
    if height != width:
        raise FMANetConfigError(f"FMANet needs square inputs; the prepared pixel_values are {height}x{width}.")
    if num_channels % 2:
        raise FMANetConfigError(f"pixel_values has {num_channels} channels; FMANet needs 2 phases x 3 or 4 channels.")
    if model_config is None:
        values: dict[str, Any] = {"image_size": height, "num_channels_per_phase": num_channels // 2}
    elif isinstance(model_config, FMANetConfig):
        values = config_to_dict(model_config)
    elif isinstance(model_config, Mapping):
        values = dict(model_config)
    else:
        raise FMANetConfigError(
            f"model_config must be an FMANetConfig, a dict of its arguments or None, got {type(model_config).__name__}."
        )
    for key in ("id2label", "label2id", "num_labels"):
        values.pop(key, None)
    values["id2label"] = {i: str(name) for i, name in enumerate(class_names)}
    values["label2id"] = {str(name): i for i, name in enumerate(class_names)}
    config = FMANetConfig.from_dict(values)
    if config.image_size != height:
        raise FMANetConfigError(
            f"model_config.image_size is {config.image_size} but the prepared pixel_values are {height}x{width}; "
            f"set image_size={height} (or prepare the data with size={{'height': {config.image_size}, "
            f"'width': {config.image_size}}})."
        )
    if config.num_channels != num_channels:
        raise FMANetConfigError(
            f"model_config expects {config.num_channels} input channels (num_channels_per_phase="
            f"{config.num_channels_per_phase}) but pixel_values has {num_channels}; set num_channels_per_phase="
            f"{num_channels // 2}."
        )
    return config


def default_model_factory(config):
    """A freshly initialised `FMANetForImageClassification` (under the caller's torch seed)."""
    from ..modeling_fmanet import FMANetForImageClassification

    return FMANetForImageClassification(config)


__all__ = ["build_model_config", "config_to_dict", "default_model_factory"]
