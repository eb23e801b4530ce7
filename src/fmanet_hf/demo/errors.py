"""Errors the demo raises on purpose; their messages are shown to the visitor as they are.

All derive from the package's `FMANetError` family (and a built-in exception), so the app
can turn every deliberate error into an in-page message and keep stack traces for the log.
They are defined in `fmanet_hf.errors` with the rest of the family and re-exported here.
"""

from __future__ import annotations

from ..errors import (
    DemoDependencyError,
    FrameTooLargeError,
    MissingFrameError,
    ModelChoiceError,
    VideoTooLongError,
    VideoTooShortError,
)

__all__ = [
    "DemoDependencyError",
    "MissingFrameError",
    "FrameTooLargeError",
    "VideoTooShortError",
    "VideoTooLongError",
    "ModelChoiceError",
]
