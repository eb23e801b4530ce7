"""Publishing FMANet models: model cards from templates, export of LOSO runs, upload to the Hub.

- `fmanet_hf.hub.export.export_run`: a LOSO run folder -> a Hub-ready folder (``fmanet-hf export``).
- `fmanet_hf.hub.cards`: README rendering from ``hub_cards/<dataset>.md`` with a ``model-index``
  read from the run's results.json, and the check that the card matches it.
- `fmanet_hf.hub.push.push_folder`: create the repo and upload (``fmanet-hf push``).

Submodules are imported on use (huggingface_hub's card machinery is not needed to run a model).
"""

from __future__ import annotations

from typing import Any

__all__ = ["export_run", "push_folder", "plan_upload", "render_model_card", "check_model_card"]


def __getattr__(name: str) -> Any:
    if name == "export_run":
        from .export import export_run

        return export_run
    if name in ("push_folder", "plan_upload"):
        from . import push

        return getattr(push, name)
    if name in ("render_model_card", "check_model_card"):
        from . import cards

        return getattr(cards, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
