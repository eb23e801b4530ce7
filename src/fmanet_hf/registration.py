"""Registering FMANet with transformers (Auto classes, the pipeline task) without importing
transformers on ``import fmanet_hf``.

Importing torch and transformers costs seconds, and ``fmanet-hf --help`` must not pay it,
yet ``import fmanet_hf`` followed by ``AutoConfig`` / ``AutoModel`` /
``AutoModelForImageClassification`` / ``AutoImageProcessor`` /
``pipeline("micro-expression-recognition")`` must keep working. So `install` (called by
the package's ``__init__``) registers at the first moment transformers is in the process:

- at once, if transformers is already imported;
- right after ``transformers`` itself finishes importing (a one-shot finder on
  ``sys.meta_path`` wraps its loader), when that happens outside an import of one of this
  package's modules;
- otherwise (transformers was first imported *by* one of this package's modules, e.g.
  ``import fmanet_hf.modeling_fmanet``), when the outermost import of this package's
  modules finishes: registering earlier would import half-initialised modules. Each
  ``fmanet_hf.*`` submodule's loader is wrapped to count the nesting.

`register` does the registration itself and is idempotent; a failure is reported as a
warning rather than breaking the user's ``import transformers``.
"""

from __future__ import annotations

import importlib
import importlib.abc
import sys
import threading
import warnings
from typing import Any

_PACKAGE = __name__.rpartition(".")[0]
_lock = threading.RLock()
_state = threading.local()  # .depth: nesting of this package's module imports in this thread
_registered = False
_registering = False


def register() -> None:
    """Register FMANet with the transformers Auto classes and the ``"micro-expression-recognition"``
    pipeline task (imports torch and transformers; idempotent)."""
    global _registered, _registering
    with _lock:
        if _registered or _registering:
            return
        _registering = True
        try:
            from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoModelForImageClassification

            from .configuration_fmanet import FMANetConfig
            from .image_processing_fmanet import FMANetImageProcessor
            from .modeling_fmanet import FMANetForImageClassification, FMANetModel
            from .pipeline import register_pipeline

            AutoConfig.register("fmanet", FMANetConfig, exist_ok=True)
            AutoModel.register(FMANetConfig, FMANetModel, exist_ok=True)
            AutoModelForImageClassification.register(FMANetConfig, FMANetForImageClassification, exist_ok=True)
            AutoImageProcessor.register(FMANetConfig, image_processor_classes={"pil": FMANetImageProcessor}, exist_ok=True)
            register_pipeline()
            _registered = True
        finally:
            _registering = False


def is_registered() -> bool:
    """Whether `register` has completed in this process."""
    return _registered


def _register_or_warn() -> None:
    try:
        register()
    except Exception as error:  # never break the import that triggered us
        warnings.warn(
            f"fmanet-hf could not register FMANet with transformers ({type(error).__name__}: {error}); "
            "AutoConfig/AutoModel/pipeline will not know model_type 'fmanet'. Call fmanet_hf.registration.register() "
            "to see the full error.",
            RuntimeWarning,
            stacklevel=2,
        )


def _depth() -> int:
    return getattr(_state, "depth", 0)


def _wrap_exec(loader: Any, after: Any) -> None:
    """Make ``loader.exec_module`` call ``after(ok)`` once the module has executed."""
    original = loader.exec_module

    def exec_module(module: Any) -> None:
        _state.depth = _depth() + 1
        ok = False
        try:
            original(module)
            ok = True
        finally:
            _state.depth = _depth() - 1
            after(ok)

    loader.exec_module = exec_module


class _Finder(importlib.abc.MetaPathFinder):
    """Finds nothing itself: asks the other finders and wraps the loader of ``transformers``
    and of this package's submodules (see the module docstring)."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if _registered or not (fullname == "transformers" or fullname.startswith(_PACKAGE + ".")):
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        if fullname == "transformers":
            _wrap_exec(spec.loader, self._after_transformers)
        else:
            _wrap_exec(spec.loader, self._after_own_module)
        return spec

    def _after_transformers(self, ok: bool) -> None:
        # depth counts the transformers import too
        if ok and _depth() == 0 and not _registering:
            _register_or_warn()
            self._uninstall_if_done()

    def _after_own_module(self, ok: bool) -> None:
        if _depth() == 0 and not _registering and "transformers" in sys.modules and not _registered:
            _register_or_warn()
            self._uninstall_if_done()

    def _uninstall_if_done(self) -> None:
        if _registered and self in sys.meta_path:
            sys.meta_path.remove(self)


def install() -> None:
    """Register now if transformers is loaded, else when it loads (see the module docstring).
    Called once by ``import fmanet_hf``."""
    if "transformers" in sys.modules:
        _register_or_warn()
        return
    with _lock:
        if not any(isinstance(finder, _Finder) for finder in sys.meta_path):
            sys.meta_path.insert(0, _Finder())


__all__ = ["install", "is_registered", "register"]
