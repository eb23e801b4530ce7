"""fmanet-hf: FMANet micro-expression recognition as a Hugging Face model.

Importing the package registers FMANet with the transformers Auto classes
(``AutoConfig``, ``AutoModel``, ``AutoModelForImageClassification``, ``AutoImageProcessor``).
"""

from .version import __version__

from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoModelForImageClassification

from .configuration_fmanet import ABLATIONS, BASELINE_CONFIGS, FMANetConfig
from .errors import *  # noqa: F401,F403
from .errors import __all__ as _error_names
from .flow import compute_optical_flow, flow_to_color
from .image_processing_fmanet import FMANetImageProcessor, MotionSample
from .mmcof import compute_mmcof
from .modeling_fmanet import (
    FMANetForImageClassification,
    FMANetImageClassifierOutput,
    FMANetModel,
    FMANetModelOutput,
    FMANetPreTrainedModel,
)

AutoConfig.register("fmanet", FMANetConfig, exist_ok=True)
AutoModel.register(FMANetConfig, FMANetModel, exist_ok=True)
AutoModelForImageClassification.register(FMANetConfig, FMANetForImageClassification, exist_ok=True)
AutoImageProcessor.register(FMANetConfig, image_processor_classes={"pil": FMANetImageProcessor}, exist_ok=True)

from .pipeline import register_pipeline as _register_pipeline  # the "micro-expression-recognition" task

_register_pipeline()

__all__ = [
    "__version__",
    "ABLATIONS",
    "BASELINE_CONFIGS",
    "FMANetConfig",
    "FMANetModel",
    "FMANetForImageClassification",
    "FMANetPreTrainedModel",
    "FMANetModelOutput",
    "FMANetImageClassifierOutput",
    "FMANetImageProcessor",
    "MotionSample",
    "compute_mmcof",
    "compute_optical_flow",
    "flow_to_color",
    *_error_names,
]
