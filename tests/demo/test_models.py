"""The demo's model registry (``fmanet_hf.demo.models``): ``fmanet-hf demo --face-backend``."""

from __future__ import annotations

from fmanet_hf.demo.models import DEFAULT_MODEL_KEY, ModelRegistry, discover_models


def test_registry_applies_the_face_backend_to_every_loaded_processor():
    """``demo --face-backend mediapipe`` swaps the backend of each model's saved processor; without
    it the processor keeps the backend it was saved with (the bundled model's: dlib)."""
    assert ModelRegistry(discover_models(None)).get(DEFAULT_MODEL_KEY).processor.face_backend == "dlib"
    chosen = ModelRegistry(discover_models(None), face_backend="mediapipe").get(DEFAULT_MODEL_KEY)
    assert chosen.processor.face_backend == "mediapipe"
    assert chosen.processor.output_settings()["face_backend"] == "mediapipe"
