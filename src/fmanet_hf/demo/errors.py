"""Errors the demo raises on purpose; their messages are shown to the visitor as they are.

All derive from the package's `FMANetError` family (and a built-in exception), so the app
can turn every deliberate error into an in-page message and keep stack traces for the log.
"""

from __future__ import annotations

from ..errors import CheckpointError, FMANetError, FMANetInputError, VideoReadError


class DemoDependencyError(FMANetError, ImportError):
    """Gradio (the demo's only extra dependency) is not installed."""


class MissingFrameError(FMANetInputError):
    """One of the onset, apex or offset images was not uploaded."""


class FrameTooLargeError(FMANetInputError):
    """An uploaded frame has more pixels than the demo accepts."""


class VideoTooShortError(VideoReadError):
    """A video has fewer frames than a sample needs (onset, apex, offset)."""


class VideoTooLongError(VideoReadError):
    """A video has more frames (or frame pixels) than the demo keeps in memory."""


class ModelChoiceError(CheckpointError):
    """The selected model is not one of the models the demo was started with."""


__all__ = [
    "DemoDependencyError",
    "MissingFrameError",
    "FrameTooLargeError",
    "VideoTooShortError",
    "VideoTooLongError",
    "ModelChoiceError",
]
