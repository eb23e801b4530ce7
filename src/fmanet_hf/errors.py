"""The single exception family of fmanet-hf.

Every error the package raises on purpose derives from :class:`FMANetError`, so a caller
can catch one class. Each subclass also derives from the closest built-in exception
(``ValueError``, ``FileNotFoundError``...), so generic ``except ValueError`` code keeps
working. Messages say what was wrong *and* how to fix it.

This module is imported relatively by the remote-code files (configuration, modeling,
image processing), so it imports nothing but the standard library.
"""

from __future__ import annotations

import difflib
from typing import Iterable


class FMANetError(Exception):
    """Base class of every error raised on purpose by fmanet-hf."""


class FMANetConfigError(FMANetError, ValueError):
    """A configuration or processor setting is impossible (negative size, unknown method...)."""


class FMANetInputError(FMANetError, ValueError):
    """Input frames or arrays cannot be used as given."""


class FrameCountError(FMANetInputError):
    """A sample does not consist of exactly three frames (onset, apex, offset)."""


class FrameSizeMismatchError(FMANetInputError):
    """The frames of one sample do not share the same height and width."""


class InvalidFrameError(FMANetInputError):
    """A frame is empty, has an unsupported shape or dtype, or holds NaN/inf values."""


class ImageLoadError(FMANetInputError):
    """A frame given as a path could not be read as an image (missing, truncated, not an image)."""


class KeyFrameError(FMANetInputError):
    """Onset/apex/offset indices are out of order or out of range for the clip."""


class VideoReadError(FMANetInputError):
    """A video file could not be opened or decoded far enough."""


class FaceNotFoundError(FMANetInputError):
    """Face alignment is on but no face was found in the onset frame."""


class LandmarkModelError(FMANetError, FileNotFoundError):
    """A face backend's landmark model or package (dlib's 68-point model, MediaPipe's models) is missing or unreadable."""


class OpticalFlowError(FMANetError, RuntimeError):
    """The optical-flow backend failed on frames that passed validation."""


class DatasetError(FMANetError, ValueError):
    """A dataset folder or its annotation sheet is malformed (missing column, bad row, missing file)."""


class CheckpointError(FMANetError, ValueError):
    """A checkpoint or exported folder is missing files, unsafe (pickle) or inconsistent."""


class CacheError(FMANetError, RuntimeError):
    """A cache entry is corrupt or was written by other settings."""


# Errors of the training, hub and demo parts (defined here so the whole family is in one
# place; their home modules re-export them under the old names).
class RunDirectoryError(FMANetError, ValueError):
    """A results folder holds a run with other settings, or files that do not belong to it."""


class OutputPathError(FMANetError, ValueError):
    """An output path is empty, overlaps an input, or ``--overwrite`` would remove files fmanet-hf did not write."""


class TrainingDivergedError(FMANetError, FloatingPointError):
    """A model's training loss, or its predicted probabilities, became NaN or infinite."""


class LeakageError(FMANetError, RuntimeError):
    """A held-out subject's sample reached the optimiser (a bug; never expected)."""


class ModelCardError(CheckpointError):
    """A card template is missing or broken, or a rendered card does not match its results."""


class HubUploadError(FMANetError, RuntimeError):
    """Creating the repo or uploading failed (network, token, permissions, offline mode)."""


class DemoDependencyError(FMANetError, ImportError):
    """Gradio (the demo's only extra dependency) is not installed."""


class MissingFrameError(FMANetInputError):
    """One of the onset, apex or offset images was not uploaded to the demo."""


class FrameTooLargeError(FMANetInputError):
    """An uploaded frame has more pixels than the demo accepts."""


class VideoTooShortError(VideoReadError):
    """A video has fewer frames than a sample needs (onset, apex, offset)."""


class VideoTooLongError(VideoReadError):
    """A video has more frames (or frame pixels) than the demo keeps in memory."""


class WebMWriteError(FMANetError, OSError):
    """A WebM video could not be written: no VP8 encoder in OpenCV, bad frames, or a malformed header."""


class SpaceBuildError(FMANetError, OSError):
    """The Space folder could not be built: no wheel to put in it, a wrong wheel, or a bad model folder."""


class ModelChoiceError(CheckpointError):
    """The selected model is not one of the models the demo was started with."""


class DeviceUnavailableError(FMANetError, RuntimeError):
    """The device asked for (``--device cuda``, ``device="mps"``) is not available in this process."""


def closest_name(name: str, valid_names: Iterable[str]) -> str | None:
    """The valid name most like ``name`` (difflib's ratio), for "did you mean" messages; None
    when there are no valid names."""
    names = sorted(set(valid_names))
    matches = difflib.get_close_matches(name, names, n=1, cutoff=0.0)
    return matches[0] if matches else None


def did_you_mean(name: str, valid_names: Iterable[str]) -> str:
    """`` (did you mean 'hidden_sizes'?)`` for a misspelt ``name``; empty when nothing is valid."""
    closest = closest_name(name, valid_names)
    return f" (did you mean {closest!r}?)" if closest else ""


class FMANetWarning(UserWarning):
    """Base class of the warnings fmanet-hf gives about input it accepted but could not judge unambiguously.

    The pipeline collects them into each result's ``warnings`` and the CLI prints each as one
    ``warning:`` line on stderr."""


class AmbiguousInputWarning(FMANetWarning):
    """An input was read under an assumption (a value scale, the first frame of an animation)
    or looks unlike a micro-expression sample (identical frames, another person's apex)."""


class StabilizationWarning(FMANetWarning):
    """Head-motion stabilisation failed numerically; the frame was used without it."""


__all__ = [
    "closest_name",
    "did_you_mean",
    "FMANetError",
    "FMANetConfigError",
    "FMANetInputError",
    "FrameCountError",
    "FrameSizeMismatchError",
    "InvalidFrameError",
    "ImageLoadError",
    "KeyFrameError",
    "VideoReadError",
    "FaceNotFoundError",
    "LandmarkModelError",
    "OpticalFlowError",
    "DatasetError",
    "CheckpointError",
    "CacheError",
    "RunDirectoryError",
    "OutputPathError",
    "TrainingDivergedError",
    "LeakageError",
    "ModelCardError",
    "HubUploadError",
    "DemoDependencyError",
    "MissingFrameError",
    "FrameTooLargeError",
    "VideoTooShortError",
    "VideoTooLongError",
    "ModelChoiceError",
    "WebMWriteError",
    "SpaceBuildError",
    "DeviceUnavailableError",
    "FMANetWarning",
    "AmbiguousInputWarning",
    "StabilizationWarning",
]
