"""Test-session settings: offline, one thread, a throw-away Hugging Face home.

These must be set before transformers / huggingface_hub / evaluate are imported, which is
why they live at module level here (pytest imports conftest.py before any test module).
"""

import os
import shutil
import tempfile

_HF_HOME = tempfile.mkdtemp(prefix="fmanet-hf-test-home-")
os.environ.update(
    {
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_EVALUATE_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HOME": _HF_HOME,
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "GRADIO_ANALYTICS_ENABLED": "False",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "MPLBACKEND": "Agg",
    }
)

import pytest  # noqa: E402


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_HF_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def astronaut_gray():
    """scikit-image's astronaut photo (512x512, a real face), as uint8 grey (H, W)."""
    skimage_data = pytest.importorskip("skimage.data")
    import numpy as np

    rgb = skimage_data.astronaut()
    return np.rint(rgb[..., :3] @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
