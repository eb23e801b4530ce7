"""Hugging Face Space entry point: the same app as `fmanet-hf demo`.

The Space runs offline like the local demo: the default model ships inside the fmanet-hf
package, the examples are rendered from SynthME at start-up, nothing is fetched.
Exported model folders placed under ./models (config.json with model_type "fmanet")
appear in the model selector.
"""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from fmanet_hf.demo.app import build_demo, launch_blocks  # noqa: E402

MODELS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "models")

demo = build_demo([MODELS_DIR] if os.path.isdir(MODELS_DIR) else None, device="auto")  # a GPU Space uses its GPU

if __name__ == "__main__":
    # Spaces route traffic to port 7860 on all interfaces.
    launch_blocks(demo, host=os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0"), port=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
