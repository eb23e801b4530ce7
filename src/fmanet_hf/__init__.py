"""fmanet-hf: FMANet micro-expression recognition as a Hugging Face model.

``import fmanet_hf`` is cheap: the public names below load on first use (PEP 562), so the
``fmanet-hf`` command can print its help without importing torch or transformers. FMANet
is registered with the transformers Auto classes (``AutoConfig``, ``AutoModel``,
``AutoModelForImageClassification``, ``AutoImageProcessor``) and the
``"micro-expression-recognition"`` pipeline task as soon as transformers is in the process
(`fmanet_hf.registration`), so ``import fmanet_hf`` followed by the Auto classes works as before.
"""

from __future__ import annotations

import importlib
from typing import Any

from .version import __version__

from .errors import *  # noqa: F401,F403  (standard library only: cheap)
from .errors import __all__ as _error_names
from .registration import install as _install_registration

#: Public name -> the module that defines it; imported on first access.
_LAZY_NAMES = {
    "ABLATIONS": "configuration_fmanet",
    "BASELINE_CONFIGS": "configuration_fmanet",
    "FMANetConfig": "configuration_fmanet",
    "FMANetModel": "modeling_fmanet",
    "FMANetForImageClassification": "modeling_fmanet",
    "FMANetPreTrainedModel": "modeling_fmanet",
    "FMANetModelOutput": "modeling_fmanet",
    "FMANetImageClassifierOutput": "modeling_fmanet",
    "FMANetImageProcessor": "image_processing_fmanet",
    "MotionSample": "image_processing_fmanet",
    "compute_mmcof": "mmcof",
    "compute_optical_flow": "flow",
    "flow_to_color": "flow",
}

_install_registration()


def __getattr__(name: str) -> Any:
    module_name = _LAZY_NAMES.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module_name}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_NAMES))


__all__ = ["__version__", *_LAZY_NAMES, *_error_names]
