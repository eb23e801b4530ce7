"""The Gradio demo of fmanet-hf (``fmanet-hf demo``; the Hugging Face Space runs the same app).

``build_demo(model_dirs=None)`` returns the `gradio.Blocks`; ``launch(...)`` builds and
serves it. Gradio is an optional dependency (``pip install 'fmanet-hf[demo]'``), so it is
imported only when one of these is used: ``import fmanet_hf.demo`` alone never needs it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["build_demo", "launch", "launch_blocks"]


def __getattr__(name: str) -> Any:
    if name in ("build_demo", "launch", "launch_blocks"):
        from . import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
