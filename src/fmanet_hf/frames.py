"""Turning anything a user calls a "frame" into a validated grey image.

Accepted inputs: a path (str / ``os.PathLike``), a ``PIL.Image.Image`` (any mode, EXIF
orientation honoured), or a numpy array of shape (H, W), (H, W, 1), (H, W, 3) RGB or
(H, W, 4) RGBA, with dtype uint8 ([0, 255]), uint16 ([0, 65535]), bool, or float ([0, 1]).
Ambiguous input is read under a stated assumption with an `AmbiguousInputWarning`: another
integer dtype with values in [0, 255] is read as 8-bit; an animated image gives its first
frame; identical frames in a triplet are flagged. A uint16 array whose values all lie in
[0, 255] is refused (8-bit data, or an almost black 16-bit image: the two readings differ
256-fold).
Output: ``np.float32`` array (H, W) of grey levels in [0, 255] (ITU-R 601 luma), the
intensity scale the TV-L1 defaults are tuned for.

Imported relatively by the remote-code image processor: standard library, numpy and
Pillow only.
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Sequence

import numpy as np

from .errors import AmbiguousInputWarning, FrameCountError, FrameSizeMismatchError, ImageLoadError, InvalidFrameError

PHASE_FRAME_NAMES = ("onset", "apex", "offset")

# ITU-R 601 luma weights, the same ones PIL and OpenCV use for RGB -> L.
_LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)

MIN_FRAME_SIDE = 16


def _describe(frame: Any) -> str:
    if isinstance(frame, np.ndarray):
        return f"array of shape {frame.shape} and dtype {frame.dtype}"
    if isinstance(frame, (str, os.PathLike)):
        return f"file {os.fspath(frame)!r}"
    return f"object of type {type(frame).__name__}"


def _warn_if_animated(image: Any, described: str) -> None:
    frames = int(getattr(image, "n_frames", 1) or 1)
    if frames > 1:
        warnings.warn(
            f"{described} is an animated image with {frames} frames; only its first frame was read. For a clip, pass "
            "a video with key-frame indices, or the onset, apex and offset frames as separate images.",
            AmbiguousInputWarning,
            stacklevel=4,
        )


def _pil_to_array(image: Any) -> np.ndarray:
    from PIL import ImageOps

    # Camera JPEGs often store rotation in EXIF only; apply it so all frames share one orientation.
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or array.max(initial=0) > 255 else 255.0
        return (np.clip(array, 0, top) / top).astype(np.float32)
    if image.mode == "F":
        return np.asarray(image, dtype=np.float32)
    if image.mode == "LA":
        # Grey with transparency: keep the grey channel as it is (no detour through RGB).
        return np.asarray(image.getchannel("L"))
    if image.mode not in ("L", "RGB"):
        # Palette, CMYK, RGBA...: PIL knows how to flatten them to RGB.
        image = image.convert("RGB")
    return np.asarray(image)


def _read_path(path: str | os.PathLike) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    path = os.fspath(path)
    if not os.path.exists(path):
        raise ImageLoadError(f"Frame file {path!r} does not exist. Check the path (and the frame index it came from).")
    if os.path.isdir(path):
        raise ImageLoadError(f"Frame path {path!r} is a folder, not an image file. Pass the path of one image.")
    if os.path.getsize(path) == 0:
        raise ImageLoadError(f"Frame file {path!r} is empty (0 bytes). Re-extract or re-download that frame.")
    try:
        with Image.open(path) as image:
            image.load()
            _warn_if_animated(image, f"Frame file {path!r}")
            return _pil_to_array(image)
    except Image.DecompressionBombError as error:
        # Raised from the header alone, before any pixel is decoded.
        raise ImageLoadError(
            f"{path!r} claims more pixels than fmanet-hf will decode ({error}). A face frame needs far fewer "
            "pixels: crop or scale the image down first."
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise ImageLoadError(
            f"Could not read {path!r} as an image ({type(error).__name__}: {error}). "
            "Pass a readable PNG/JPEG/BMP/TIFF file, a PIL image or a numpy array."
        ) from None


def to_gray_float(frame: Any, name: str = "frame") -> np.ndarray:
    """Convert one frame to a grey ``float32`` array (H, W) with values in [0, 255].

    Args:
        frame: path, PIL image or numpy array (see module docstring for accepted shapes/dtypes).
        name: what to call the frame in error messages (e.g. ``"apex"``).

    Raises:
        ImageLoadError: the path is missing, empty, or not an image.
        InvalidFrameError: empty array, unsupported shape/dtype, NaN/inf values, or too small.
    """
    try:
        from PIL import Image

        is_pil = isinstance(frame, Image.Image)
    except ImportError:  # pragma: no cover - Pillow is a hard dependency
        is_pil = False

    if isinstance(frame, (str, os.PathLike)):
        array = _read_path(frame)
    elif is_pil:
        _warn_if_animated(frame, f"The {name} frame (a PIL image)")
        array = _pil_to_array(frame)
    elif isinstance(frame, np.ndarray):
        array = frame
    elif hasattr(frame, "detach") and hasattr(frame, "cpu"):  # a torch tensor
        array = frame.detach().cpu().numpy()
    else:
        raise InvalidFrameError(
            f"The {name} frame is an {_describe(frame)}; expected a file path, a PIL image or a numpy array."
        )

    if array.size == 0:
        raise InvalidFrameError(f"The {name} frame is empty ({_describe(array)}). Pass a non-empty image.")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise InvalidFrameError(
            f"The {name} frame is an {_describe(array)}; expected (H, W) grey, (H, W, 3) RGB or (H, W, 4) RGBA."
        )

    if array.dtype == np.uint8 and array.ndim == 3:
        # The common case (a decoded RGB/RGBA frame): the luma sum below reads the uint8
        # channels directly. uint8 -> float32 is exact, so this equals converting the whole
        # (H, W, 3) array first, bit for bit, without its 3-channel float copy.
        pass
    elif array.dtype == np.bool_:
        array = array.astype(np.float32) * 255.0
    elif array.dtype == np.uint8:
        array = array.astype(np.float32)
    elif array.dtype == np.uint16:
        if 0 < array.max() <= 255:
            # 8-bit data in a 16-bit array, or a 16-bit image darker than 0.4 % of full scale?
            raise InvalidFrameError(
                f"The {name} frame is a uint16 array whose values all lie in [0, {array.max()}]: read on the 16-bit "
                "scale (0-65535) it would be almost black. If it holds 8-bit data, pass frame.astype(np.uint8); if it is "
                "a dark 16-bit image, scale it to [0, 1] floats (frame / 65535) and check it shows a face."
            )
        array = array.astype(np.float32) * (255.0 / 65535.0)
    elif np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float32)
        if not np.isfinite(array).all():
            raise InvalidFrameError(
                f"The {name} frame contains NaN or infinite values. Replace them (e.g. np.nan_to_num) first."
            )
        if array.min() < -1e-3 or array.max() > 1.0 + 1e-3:
            raise InvalidFrameError(
                f"The {name} frame is a float array with values in [{array.min():.6g}, {array.max():.6g}]; "
                "float frames must be scaled to [0, 1]. Divide 8-bit data by 255 or pass it as uint8."
            )
        array = np.clip(array, 0.0, 1.0) * 255.0
    elif np.issubdtype(array.dtype, np.integer):
        if array.min() < 0 or array.max() > 255:
            raise InvalidFrameError(
                f"The {name} frame is an integer array with values in [{array.min()}, {array.max()}]; "
                "pass uint8 ([0, 255]) or uint16 ([0, 65535]) data."
            )
        warnings.warn(
            f"The {name} frame is a {array.dtype} array with values in [{array.min()}, {array.max()}]; it was read as "
            "8-bit grey levels (0-255). Pass uint8 to say so, or uint16 for 16-bit data.",
            AmbiguousInputWarning,
            stacklevel=3,
        )
        array = array.astype(np.float32)
    else:
        raise InvalidFrameError(f"The {name} frame has unsupported dtype {array.dtype}; use uint8, uint16 or float.")

    if array.ndim == 3 and np.array_equal(array[:, :, 0], array[:, :, 1]) and np.array_equal(array[:, :, 1], array[:, :, 2]):
        # A grey image stored as RGB (video decoders, many JPEG writers): its grey levels
        # exactly. The weighted sum below gives them only to float rounding (the weights'
        # float32 sum is not exactly 1), and a flow solver that quantises its input to 8 bits
        # (DIS) would turn that last-bit difference into a different flow.
        array = np.ascontiguousarray(array[:, :, 0], dtype=np.float32)
    elif array.ndim == 3:
        # RGBA: transparency carries no motion; drop alpha rather than compositing on a colour.
        # Element-wise, not `@`: a matrix product picks its summation kernel by memory
        # layout, so RGB and the RGB channels of RGBA differed in the last float bit.
        weights = _LUMA_WEIGHTS
        array = array[:, :, 0] * weights[0] + array[:, :, 1] * weights[1] + array[:, :, 2] * weights[2]
    height, width = array.shape
    if min(height, width) < MIN_FRAME_SIDE:
        raise InvalidFrameError(
            f"The {name} frame is {height}x{width} pixels; at least {MIN_FRAME_SIDE}x{MIN_FRAME_SIDE} is needed "
            "for optical flow."
        )
    return np.ascontiguousarray(array, dtype=np.float32)


def load_triplet(frames: Sequence[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Load and validate one (onset, apex, offset) triplet.

    Args:
        frames: exactly three frames in the order onset, apex, offset.

    Returns:
        Three grey ``float32`` arrays (H, W) in [0, 255] of identical shape.

    Raises:
        FrameCountError: not exactly three frames.
        FrameSizeMismatchError: the frames differ in height/width.
    """
    if isinstance(frames, (str, bytes)) or not hasattr(frames, "__len__"):
        raise FrameCountError(
            f"A sample must be a sequence of three frames (onset, apex, offset); got {_describe(frames)}."
        )
    if len(frames) != 3:
        raise FrameCountError(
            f"A sample needs exactly 3 frames (onset, apex, offset) but got {len(frames)}. "
            "For a video, pick the key frames first (see fmanet_hf.video) or pass onset/apex/offset separately."
        )
    grey = tuple(to_gray_float(frame, name) for frame, name in zip(frames, PHASE_FRAME_NAMES))
    shapes = {name: g.shape for name, g in zip(PHASE_FRAME_NAMES, grey)}
    if len(set(shapes.values())) != 1:
        listed = ", ".join(f"{name} {h}x{w}" for name, (h, w) in shapes.items())
        raise FrameSizeMismatchError(
            f"The three frames of a sample must have the same size, got {listed} (height x width). "
            "Crop or resize them identically before calling the processor."
        )
    warn_about_identical_frames(grey)
    return grey  # type: ignore[return-value]


def warn_about_identical_frames(grey: Sequence[np.ndarray]) -> None:
    """An `AmbiguousInputWarning` when two or all three frames of a triplet are the same image.

    Identical frames carry no motion, so the flow of that phase is zero (all three: the
    classifier sees no motion at all and its answer says nothing about the face).
    """
    onset, apex, offset = grey
    same = [
        names
        for names, first, second in (("onset and apex", onset, apex), ("apex and offset", apex, offset), ("onset and offset", onset, offset))
        if np.array_equal(first, second)
    ]
    if len(same) == 3:
        message = (
            "The onset, apex and offset frames are identical: there is no motion to classify, so the prediction says "
            "nothing about the face. Check the key frames (or the file names)."
        )
    elif same and same[0] != "onset and offset":
        message = f"The {same[0]} frames are identical: that phase has no motion. Check the key frames."
    else:
        return
    warnings.warn(message, AmbiguousInputWarning, stacklevel=3)


INTENSITY_MATCHING_MODES = ("none", "mean_std")


def match_intensity(moving: np.ndarray, reference: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Global gain/offset that gives ``moving`` the mean and standard deviation of ``reference``.

    Optical flow assumes constant brightness; a lamp flicker or an exposure ramp of a few
    percent between onset and apex otherwise shows up as flow larger than a
    micro-expression. Statistics are taken over ``mask`` (e.g. the rigid face regions, so
    the expression itself does not set the gain).

    Args:
        moving, reference: (H, W) float32 grey frames, [0, 255].
        mask: optional (H, W) array, non-zero where statistics are taken.

    Returns:
        (H, W) float32 adjusted copy of ``moving`` (not clipped: the flow solvers take any float).
    """
    selection = np.ones(moving.shape, bool) if mask is None else np.asarray(mask) > 0
    if selection.sum() < 16:
        selection = np.ones(moving.shape, bool)
    moving_values, reference_values = moving[selection], reference[selection]
    moving_std = float(moving_values.std())
    # A flat frame has no contrast to match: only shift its mean.
    gain = float(reference_values.std()) / moving_std if moving_std > 1e-3 else 1.0
    return ((moving - float(moving_values.mean())) * gain + float(reference_values.mean())).astype(np.float32)
