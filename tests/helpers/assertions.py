"""Assertion helpers of the bad-input matrix (imported by its test modules)."""

from __future__ import annotations

from fmanet_hf.errors import FMANetError


def assert_error(excinfo, error_type, *words):
    """The raised error is exactly of ``error_type`` (or a subclass), an FMANetError, and names ``words``."""
    error = excinfo.value
    assert isinstance(error, FMANetError), type(error)
    assert isinstance(error, error_type), (type(error), error_type)
    message = str(error)
    for word in words:
        assert word.lower() in message.lower(), (word, message)
