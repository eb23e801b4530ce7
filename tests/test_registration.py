"""FMANet is registered with transformers when transformers loads, whatever the import order,
so ``import fmanet_hf`` followed by the Auto classes and the pipeline works as a Hugging Face
user writes it, while ``import fmanet_hf`` alone stays free of torch and transformers."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from fmanet_hf.pretrained import BUNDLED_MODEL_DIR

USER_CODE = """
import json, sys
{first_import}
from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoModelForImageClassification, pipeline
folder = sys.argv[1]
config = AutoConfig.from_pretrained(folder)
model = AutoModelForImageClassification.from_pretrained(folder)
processor = AutoImageProcessor.from_pretrained(folder)
backbone = AutoModel.from_config(config)
classify = pipeline("micro-expression-recognition", model=folder)
print(json.dumps([type(x).__module__ + "." + type(x).__name__ for x in (config, model, processor, backbone, classify)]))
"""


def run_python(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-W", "error::RuntimeWarning", "-c", code, *args],
        capture_output=True, text=True, env={**os.environ}, timeout=600,
    )


@pytest.mark.parametrize(
    "first_import",
    ["import fmanet_hf", "import fmanet_hf.modeling_fmanet", "import transformers\nimport fmanet_hf"],
    ids=["package-then-transformers", "submodule-first", "transformers-first"],
)
def test_auto_classes_and_pipeline_know_fmanet_after_import(first_import):
    result = run_python(USER_CODE.format(first_import=first_import), str(BUNDLED_MODEL_DIR))
    assert result.returncode == 0, result.stderr[-3000:]
    kinds = json.loads(result.stdout.strip().splitlines()[-1])
    # The package's own classes, not remote code loaded from the folder (no trust_remote_code).
    assert kinds == [
        "fmanet_hf.configuration_fmanet.FMANetConfig",
        "fmanet_hf.modeling_fmanet.FMANetForImageClassification",
        "fmanet_hf.image_processing_fmanet.FMANetImageProcessor",
        "fmanet_hf.modeling_fmanet.FMANetModel",
        "fmanet_hf.pipeline_fmanet.MicroExpressionRecognitionPipeline",  # the remote-code module, re-exported by fmanet_hf.pipeline
    ]


def test_import_fmanet_hf_loads_neither_torch_nor_transformers_until_a_model_name_is_used():
    code = (
        "import sys, fmanet_hf\n"
        "before = [m for m in ('torch', 'transformers') if m in sys.modules]\n"
        "config = fmanet_hf.FMANetConfig(num_labels=3)\n"
        "from fmanet_hf.registration import is_registered\n"
        "print(before, type(config).__name__, config.num_labels, is_registered())\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["[]", "FMANetConfig", "3", "True"]
