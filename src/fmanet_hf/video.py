"""Key frames from a video file, and an automatic apex estimate.

Frame indices are **0-based positions in the decoded stream** (the first frame is 0),
not the 1-based numbers of CASME II-style file names (``img46.jpg`` is index 45 if the
clip starts at ``img1.jpg``).

Reading is sequential: OpenCV's seek (``CAP_PROP_POS_FRAMES``) lands on the nearest key
frame for many codecs, so a seek could silently return a neighbouring frame, which for a
micro-expression (a few frames long at 30 fps) is a different sample. Frames before the
first wanted index are only grabbed (not converted), and at most ``max_frames`` frames are
decoded per call, so a wrong index into a long file fails fast instead of decoding
hours of video.

Apex estimate (`estimate_apex`), used when only onset and offset are known (SMIC has no
apex annotation; users' own clips rarely have one): every frame from onset to offset is
turned grey, aligned with ONE transform found on the onset frame (the processor's face
crop, or a plain resize without alignment), registered to the onset on the rigid face
regions (head motion removed, as the processor does for apex and offset; each fit starting
from the previous frame's), matched to the
onset's brightness, blurred (Gaussian, sigma 1 px) against sensor noise, and scored

    score(t) = mean |I_t - I_onset| + mean |I_t - I_offset|     (grey levels, 0..255)

The apex is the interior frame with the highest score (the earliest on ties). Summing
the distances to BOTH ends keeps what registration leaves of a slow drift from winning:
a drift raises one term as the other falls, while a real expression, present at the apex
and absent at both ends, raises both. Limits: a
blink or a head jerk inside the clip can win; check the returned scores (or pass the apex
yourself) when the clip has such events. ``apex_method="middle"`` takes the middle frame
instead, a common convention for SMIC.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from .errors import KeyFrameError, VideoReadError

logger = logging.getLogger(__name__)

#: Most frames one call decodes (a 200 fps camera gives 12,000 frames a minute).
DEFAULT_MAX_FRAMES = 20_000
#: Most frames kept in memory between onset and offset for the apex estimate
#: (5 s at 200 fps; micro-expressions last under 0.5 s).
DEFAULT_MAX_CLIP_FRAMES = 1_000
#: Video file name endings recognised as videos (anything OpenCV's FFmpeg backend reads works
#: when passed explicitly as a video).
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".mjpeg")
APEX_METHODS = ("max_difference", "middle")
#: Side (pixels) of the grey crop the apex is scored on when no processor is given.
APEX_CROP_SIZE = 128
APEX_BLUR_SIGMA = 1.0


def looks_like_video(path: Any) -> bool:
    """True for a str/PathLike whose name ends with one of `VIDEO_EXTENSIONS`."""
    return isinstance(path, (str, os.PathLike)) and os.fspath(path).lower().endswith(VIDEO_EXTENSIONS)


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video (``frame_count`` can be approximate or 0).

    Attributes:
        path: the file.
        frame_count: frames reported by the container (0 if unknown).
        fps: frames per second reported (0.0 if unknown).
        width, height: frame size in pixels.
    """

    path: str
    frame_count: int
    fps: float
    width: int
    height: int


def _open(path: str | os.PathLike):
    import cv2

    path = os.fspath(path)
    if not os.path.exists(path):
        raise VideoReadError(f"Video file {path!r} does not exist. Check the path.")
    if os.path.isdir(path):
        raise VideoReadError(
            f"{path!r} is a folder, not a video file. For a folder of frame images pass the onset, apex and "
            "offset image files instead."
        )
    if os.path.getsize(path) == 0:
        raise VideoReadError(f"Video file {path!r} is empty (0 bytes). Re-copy or re-export it.")
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        capture.release()
        raise VideoReadError(
            f"OpenCV could not open {path!r} as a video. Check that it is a video file OpenCV's FFmpeg backend "
            "decodes (e.g. H.264 .mp4 or MJPG .avi); re-encode others with `ffmpeg -i IN -c:v libx264 OUT.mp4`."
        )
    return capture


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Open ``path`` and report its `VideoInfo`.

    Raises:
        VideoReadError: missing, empty or undecodable file.
    """
    import cv2

    capture = _open(path)
    try:
        return VideoInfo(
            path=os.fspath(path),
            frame_count=max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0), 0),
            fps=float(capture.get(cv2.CAP_PROP_FPS) or 0.0),
            width=int(capture.get(cv2.CAP_PROP_FRAME_WIDTH) or 0),
            height=int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0),
        )
    finally:
        capture.release()


def _as_index(name: str, value: Any) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            return int(value)
        raise KeyFrameError(f"The {name} index must be an integer frame number, got {value!r}.")
    if value < 0:
        raise KeyFrameError(f"The {name} index is {int(value)}; frame indices are 0-based and must be >= 0.")
    return int(value)


def check_key_frames(onset: Any, apex: Any, offset: Any, frame_count: int | None = None) -> tuple[int, int | None, int]:
    """Validate key-frame indices: integers, ``onset < apex < offset``, inside the video.

    Args:
        onset, offset: 0-based frame indices.
        apex: 0-based index, or None (to be estimated; then ``offset - onset >= 2``).
        frame_count: frames in the video if known (> 0), to check the range early.

    Returns:
        (onset, apex or None, offset) as ints.

    Raises:
        KeyFrameError: wrong type, wrong order, too short a clip, or out of range.
    """
    onset_index = _as_index("onset", onset)
    offset_index = _as_index("offset", offset)
    apex_index = None if apex is None else _as_index("apex", apex)
    if apex_index is None:
        if offset_index - onset_index < 2:
            raise KeyFrameError(
                f"onset {onset_index} and offset {offset_index} leave no frame in between to be the apex; "
                "the offset must be at least onset + 2 (or give the apex)."
            )
    elif not onset_index < apex_index < offset_index:
        raise KeyFrameError(
            f"Key frames must satisfy onset < apex < offset; got onset {onset_index}, apex {apex_index}, "
            f"offset {offset_index}. Check their order (and whether the indices are 0-based)."
        )
    if frame_count and offset_index >= frame_count:
        raise KeyFrameError(
            f"The offset index {offset_index} is out of range: the video has {frame_count} frames "
            f"(indices 0..{frame_count - 1}). Indices are 0-based."
        )
    return onset_index, apex_index, offset_index


def read_frames(
    path: str | os.PathLike, indices: Sequence[int], *, max_frames: int = DEFAULT_MAX_FRAMES
) -> dict[int, np.ndarray]:
    """Decode the frames at ``indices`` (0-based) by reading the video sequentially.

    Args:
        path: the video file.
        indices: wanted frame indices (any order, repeats allowed).
        max_frames: most frames decoded; an index >= this raises instead of decoding on.

    Returns:
        ``{index: (H, W, 3) uint8 RGB frame}``.

    Raises:
        VideoReadError: the file cannot be opened, or decoding stops before an index the
            container says exists (a truncated or corrupt file).
        KeyFrameError: an index is negative, beyond the video's end, or beyond ``max_frames``.
    """
    import cv2

    wanted = sorted({_as_index("frame", i) for i in indices})
    if not wanted:
        return {}
    last = wanted[-1]
    if last >= max_frames:
        raise KeyFrameError(
            f"Frame {last} is beyond the read limit of {max_frames} frames (max_frames). Trim the video around the "
            "expression first (e.g. `ffmpeg -ss START -t SECONDS -i IN OUT.mp4`) or pass a larger max_frames."
        )
    capture = _open(path)
    frames: dict[int, np.ndarray] = {}
    try:
        reported = max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0), 0)
        if reported and last >= reported:
            raise KeyFrameError(
                f"Frame {last} is out of range: {os.fspath(path)!r} has {reported} frames (indices 0..{reported - 1}). "
                "Indices are 0-based."
            )
        wanted_set = set(wanted)
        for position in range(last + 1):
            if not capture.grab():
                if reported and position < reported:
                    raise VideoReadError(
                        f"Decoding {os.fspath(path)!r} stopped at frame {position} although the file reports {reported} "
                        "frames: the file is truncated or corrupt. Re-export it, or pick key frames before that point."
                    )
                raise KeyFrameError(
                    f"Frame {last} is out of range: {os.fspath(path)!r} ends after {position} frames "
                    f"(indices 0..{position - 1})."
                )
            if position in wanted_set:
                ok, bgr = capture.retrieve()
                if not ok or bgr is None:
                    raise VideoReadError(f"Frame {position} of {os.fspath(path)!r} could not be decoded (corrupt frame).")
                frames[position] = np.ascontiguousarray(bgr[:, :, ::-1] if bgr.ndim == 3 else np.stack([bgr] * 3, -1))
    finally:
        capture.release()
    return frames


def read_frame_range(
    path: str | os.PathLike,
    start: int,
    stop: int,
    *,
    max_frames: int = DEFAULT_MAX_FRAMES,
    max_clip_frames: int = DEFAULT_MAX_CLIP_FRAMES,
) -> list[np.ndarray]:
    """Frames ``start..stop`` (both included, 0-based) as (H, W, 3) uint8 RGB arrays.

    Raises:
        KeyFrameError: ``stop < start``, or more than ``max_clip_frames`` frames asked for.
        VideoReadError: as `read_frames`.
    """
    start, stop = _as_index("start", start), _as_index("stop", stop)
    if stop < start:
        raise KeyFrameError(f"The frame range {start}..{stop} is empty (stop < start).")
    count = stop - start + 1
    if count > max_clip_frames:
        raise KeyFrameError(
            f"The clip {start}..{stop} has {count} frames, more than max_clip_frames={max_clip_frames}. A "
            "micro-expression lasts under half a second: check the onset/offset indices, or give the apex "
            "so only three frames are read."
        )
    frames = read_frames(path, range(start, stop + 1), max_frames=max_frames)
    return [frames[i] for i in range(start, stop + 1)]


@dataclass
class ApexEstimate:
    """Result of `estimate_apex`.

    Attributes:
        index: position of the apex in the given frame sequence (0 = onset).
        scores: (N,) float64 score of every frame (grey levels; the ends are 0).
        method: ``"max_difference"`` or ``"middle"``.
    """

    index: int
    scores: np.ndarray = field(repr=False)
    method: str


def _scoring_crops(frames: Sequence[Any], processor: Any | None) -> list[np.ndarray]:
    """Grey, aligned, stabilised, blurred crops (float32) of ``frames``.

    One crop transform is found on the first (onset) frame: the processor's eye-based face
    crop, or a plain resize. Every later frame is then registered to the onset crop on the
    rigid face regions (ECC, the processor's ``stabilization`` mode; ``"translation"``
    without a processor) and given the onset's brightness statistics, exactly as the
    processor does for apex and offset, so head drift and lighting ramps do not score.
    """
    import cv2

    from .face import (
        detect_face,
        eye_similarity_transform,
        resize_transform,
        rigid_region_mask,
        stabilize_to_reference,
        transform_points,
        warp_frame,
    )
    from .frames import match_intensity, to_gray_float

    grey = [to_gray_float(frame, f"frame {i}") for i, frame in enumerate(frames)]
    shapes = {g.shape for g in grey}
    if len(shapes) != 1:
        raise KeyFrameError(f"The frames between onset and offset differ in size: {sorted(shapes)}.")
    height, width = grey[0].shape
    landmarks = None
    stabilization = getattr(processor, "stabilization", "translation") if processor is not None else "translation"
    if processor is not None and getattr(processor, "align_faces", False):
        crop = int(processor.crop_size)
        detection = detect_face(
            grey[0],
            upsample_schedule=tuple(processor.face_detector_upsample),
            landmark_model_path=processor.landmark_model_path,
            detection_max_side=getattr(processor, "face_detection_max_side", None),
            backend=getattr(processor, "face_backend", "dlib"),
        )
        transform = eye_similarity_transform(
            detection.landmarks, crop, processor.interocular_fraction, processor.eye_line_height
        )
        landmarks = transform_points(detection.landmarks, transform)
    else:
        crop = APEX_CROP_SIZE
        if processor is not None and getattr(processor, "crop_size", None) is not None:
            crop = int(processor.crop_size)
        transform = resize_transform(height, width, crop)
    # The processor's ECC budget (format 1's 60 iterations to 1e-5 without one).
    ecc_budget = {
        "iterations": getattr(processor, "stabilization_iterations", 60),
        "epsilon": getattr(processor, "stabilization_epsilon", 1e-5),
    }
    mask = rigid_region_mask(landmarks, crop, crop)
    onset_crop = warp_frame(grey[0], transform, crop, crop)
    crops = [onset_crop]
    # Each frame's fit starts from the previous frame's: head drift accumulates over a clip,
    # and a small ECC budget (format 2: 5 iterations) converges from a near start but not
    # from the onset's transform several pixels away.
    moving = transform
    for g in grey[1:]:
        moving = stabilize_to_reference(onset_crop, g, moving, stabilization, mask=mask, **ecc_budget)
        crops.append(match_intensity(warp_frame(g, moving, crop, crop), onset_crop, mask))
    # The ECC fit leaves replicated edge pixels at the border; score the interior only.
    border = max(2, crop // 16)
    return [cv2.GaussianBlur(c, (0, 0), APEX_BLUR_SIGMA)[border:-border, border:-border] for c in crops]


def estimate_apex(frames: Sequence[Any], *, processor: Any | None = None, method: str = "max_difference") -> ApexEstimate:
    """Estimate the apex among ``frames`` (onset first, offset last); see the module docstring.

    Args:
        frames: N >= 3 frames (paths, PIL images or arrays) from onset to offset.
        processor: an `FMANetImageProcessor` whose face alignment (``align_faces``,
            ``crop_size``...) defines the crop that is scored; None: the whole frame
            resized to 128 x 128.
        method: ``"max_difference"`` (default) or ``"middle"``.

    Returns:
        `ApexEstimate` with the apex position (1..N-2) and the per-frame scores.

    Raises:
        KeyFrameError: fewer than 3 frames or an unknown method.
        FaceNotFoundError: alignment is on and the onset frame shows no face.
    """
    if method not in APEX_METHODS:
        raise KeyFrameError(f"apex_method must be one of {list(APEX_METHODS)}, got {method!r}.")
    count = len(frames)
    if count < 3:
        raise KeyFrameError(f"Estimating an apex needs at least 3 frames (onset, one candidate, offset); got {count}.")
    if method == "middle":
        return ApexEstimate(index=count // 2, scores=np.zeros(count), method=method)
    crops = _scoring_crops(frames, processor)
    onset, offset = crops[0], crops[-1]
    scores = np.zeros(count, dtype=np.float64)
    for position in range(1, count - 1):
        scores[position] = float(np.abs(crops[position] - onset).mean()) + float(np.abs(crops[position] - offset).mean())
    index = int(np.argmax(scores[1:-1])) + 1
    return ApexEstimate(index=index, scores=scores, method=method)


@dataclass
class VideoKeyFrames:
    """The three frames of a sample taken from a video.

    Attributes:
        onset_frame, apex_frame, offset_frame: (H, W, 3) uint8 RGB frames.
        onset, apex, offset: their 0-based indices in the video.
        apex_estimated: True when the apex was estimated (`estimate_apex`).
        apex_scores: per-frame scores from onset to offset when estimated, else None.
        fps: the video's frame rate (0.0 if unknown).
    """

    onset_frame: np.ndarray = field(repr=False)
    apex_frame: np.ndarray = field(repr=False)
    offset_frame: np.ndarray = field(repr=False)
    onset: int
    apex: int
    offset: int
    apex_estimated: bool
    apex_scores: np.ndarray | None = field(default=None, repr=False)
    fps: float = 0.0

    @property
    def frames(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(onset, apex, offset) frames."""
        return self.onset_frame, self.apex_frame, self.offset_frame

    def indices(self) -> dict[str, Any]:
        """JSON-compatible ``{"onset", "apex", "offset", "apex_estimated"}``."""
        return {"onset": self.onset, "apex": self.apex, "offset": self.offset, "apex_estimated": self.apex_estimated}


def read_key_frames(
    path: str | os.PathLike,
    onset: int,
    offset: int,
    apex: int | None = None,
    *,
    processor: Any | None = None,
    apex_method: str = "max_difference",
    max_frames: int = DEFAULT_MAX_FRAMES,
    max_clip_frames: int = DEFAULT_MAX_CLIP_FRAMES,
) -> VideoKeyFrames:
    """Read onset/apex/offset from a video; estimate the apex when it is None.

    Args:
        path: video file.
        onset, offset: 0-based frame indices.
        apex: 0-based index, or None to estimate it (`estimate_apex`, which reads every
            frame from onset to offset, at most ``max_clip_frames``).
        processor: the processor whose alignment the apex estimate uses (see `estimate_apex`).
        apex_method: ``"max_difference"`` or ``"middle"``.
        max_frames: most frames decoded from the start of the file.

    Raises:
        VideoReadError, KeyFrameError: see `read_frames` and `check_key_frames`.
    """
    check_key_frames(onset, apex, offset)  # order and types first: no need to open the file for those
    info = probe_video(path)
    onset, apex, offset = check_key_frames(onset, apex, offset, info.frame_count)
    if apex is not None:
        frames = read_frames(path, [onset, apex, offset], max_frames=max_frames)
        return VideoKeyFrames(frames[onset], frames[apex], frames[offset], onset, apex, offset, False, None, info.fps)
    if apex_method == "middle":
        apex = (onset + offset) // 2
        frames = read_frames(path, [onset, apex, offset], max_frames=max_frames)
        return VideoKeyFrames(frames[onset], frames[apex], frames[offset], onset, apex, offset, True, None, info.fps)
    clip = read_frame_range(path, onset, offset, max_frames=max_frames, max_clip_frames=max_clip_frames)
    estimate = estimate_apex(clip, processor=processor, method=apex_method)
    apex = onset + estimate.index
    logger.info("Estimated apex of %s between %d and %d: frame %d.", os.fspath(path), onset, offset, apex)
    return VideoKeyFrames(clip[0], clip[estimate.index], clip[-1], onset, apex, offset, True, estimate.scores, info.fps)


__all__ = [
    "APEX_METHODS",
    "ApexEstimate",
    "DEFAULT_MAX_CLIP_FRAMES",
    "DEFAULT_MAX_FRAMES",
    "VIDEO_EXTENSIONS",
    "VideoInfo",
    "VideoKeyFrames",
    "check_key_frames",
    "estimate_apex",
    "looks_like_video",
    "probe_video",
    "read_frame_range",
    "read_frames",
    "read_key_frames",
]
