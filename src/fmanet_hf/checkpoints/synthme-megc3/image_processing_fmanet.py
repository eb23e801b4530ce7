"""FMANet image processor: (onset, apex, offset) frames -> dual-phase motion input.

Pipeline for one sample (every setting below is saved in ``preprocessor_config.json``):

1. frames -> grey float32 [0, 255] (``frames.py``): paths, PIL images or numpy arrays.
2. alignment (``face.py``): with ``align_faces``, the ``face_backend`` (dlib, or MediaPipe's
   face mesh) finds the face on the ONSET frame (dlib: first on a copy scaled to
   ``face_detection_max_side``) and its 68 landmarks at full resolution; one eye-based
   similarity transform crops all three frames to
   ``crop_size`` x ``crop_size``. Without it, frames are scaled to ``crop_size`` (or kept
   as they are when ``crop_size`` is None).
3. stabilisation: apex and offset are registered to the onset crop (``"euclidean"`` or
   ``"translation"`` ECC within ``stabilization_iterations`` / ``stabilization_epsilon``,
   or ``"none"``) to remove rigid head motion.
4. flow (``flow.py``): onset->apex and apex->offset with ``flow_method`` (full-resolution
   DIS default since format 2; TV-L1, the field's standard and format 1's default;
   Farneback), in pixels of the crop.

Settings a saved config of an older format lacks take that format's values
(``_FORMAT_DEFAULTS``), so a saved processor keeps computing what it computed.
5. channels (``mmcof.py``): per phase (u, v, M[, strain]), area-resized to ``size``, then
   normalised (``flow_normalization``).
6. ``pixel_values`` (B, 2 * C, H, W) float32 = [phase 1 channels, phase 2 channels];
   optionally ``mmcof_values`` (B, 3, H, W), the fixed MM-COF descriptor.

Remote-code file: imports transformers, numpy and relative modules only.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np
from transformers.image_processing_utils import BaseImageProcessor, BatchFeature

from .errors import FMANetConfigError, FrameCountError, did_you_mean
from .face import (
    FACE_BACKENDS,
    STABILIZATION_MODES,
    detect_face,
    eye_similarity_transform,
    resize_transform,
    rigid_region_mask,
    stabilize_to_reference,
    transform_points,
    warp_frame,
)
from .flow import FLOW_METHODS, compute_optical_flow, resolve_flow_params
from .frames import INTENSITY_MATCHING_MODES, load_triplet, match_intensity
from .mmcof import NORMALIZATION_MODES, compute_mmcof, normalize_dual_phase, phase_channels, resize_channels

PROCESSOR_FORMAT_VERSION = 2

# Settings whose default changed with the format version. A saved preprocessor_config.json
# of an older format that lacks one of them keeps the value that format always used, so a
# saved processor (the bundled model's included) computes exactly what it computed before;
# a processor created now gets the current defaults. Why each changed: docs/design-notes.md
# ("Preprocessing speed, format 2") and docs/performance.md.
_FORMAT_DEFAULTS: dict[int, dict[str, Any]] = {
    1: {
        "flow_method": "tvl1",
        "face_detection_max_side": None,
        "stabilization_iterations": 60,
        "stabilization_epsilon": 1e-5,
    },
    2: {
        "flow_method": "dis",
        "face_detection_max_side": 320,
        "stabilization_iterations": 5,
        "stabilization_epsilon": 1e-4,
    },
}

# Settings that change what the processor outputs; everything in a cache key comes from here.
_OUTPUT_SETTINGS = (
    "align_faces",
    "face_backend",
    "crop_size",
    "interocular_fraction",
    "eye_line_height",
    "face_detector_upsample",
    "face_detection_max_side",
    "stabilization",
    "stabilization_iterations",
    "stabilization_epsilon",
    "flow_margin_fraction",
    "intensity_matching",
    "flow_method",
    "flow_params",
    "size",
    "include_optical_strain",
    "flow_normalization",
    "normalization_floor_px",
    "normalization_percentile",
    "mmcof_theta",
    "mmcof_modulation_threshold",
    "mmcof_modulation_sharpness",
    "mmcof_reverse_offset_phase",
    "processor_format_version",
)


#: The ``return_tensors`` values `FMANetImageProcessor.preprocess` accepts (None too).
RETURN_TENSORS = ("pt", "np")
_RETURN_TENSORS_ALIASES = {"torch": " torch is spelt 'pt'.", "pytorch": " torch is spelt 'pt'.", "numpy": " numpy is spelt 'np'."}

#: What a preprocessor_config.json that lacks a setting was written with: the value the
#: processor used before that setting existed (not today's default), so a folder saved by an
#: earlier fmanet-hf is processed as it was when saved. Settings not listed here have kept
#: their default since the first release. The settings whose default changed with processor format 2
#: are handled by the format a config declares instead (`_FORMAT_DEFAULTS`).
LEGACY_DEFAULTS = {
    "flow_margin_fraction": 0.0,  # before the flow margin: flow on the crop itself
    "normalization_percentile": 100.0,  # before robust normalisation: the plain maximum
    "intensity_matching": "none",  # before intensity matching
}


#: preprocessor_config.json keys of the pre-release format 0, renamed since (conversion/upgrade_checkpoint.py).
FORMAT_0_PROCESSOR_KEYS = ("flow_algorithm", "output_size", "theta")


@functools.lru_cache(maxsize=1)
def transformers_processor_keys() -> frozenset[str]:
    """Keys of a preprocessor_config.json that belong to transformers, not to FMANet
    (``image_processor_type``, ``auto_map``, ``processor_class``, the generic image-processor
    arguments such as ``do_resize``): allowed in any FMANet processor config."""
    keys = {"image_processor_type", "auto_map", "processor_class", "_processor_class", "feature_extractor_type"}
    keys.update(getattr(getattr(BaseImageProcessor, "valid_kwargs", None), "__annotations__", {}))
    return frozenset(keys)


def _refuse_unknown_settings(names: Iterable[str], where: str) -> None:
    """`FMANetConfigError` naming each unknown setting and the closest valid one."""
    unknown = sorted(set(names) - set(PROCESSOR_SETTINGS) - transformers_processor_keys())
    if set(unknown) & set(FORMAT_0_PROCESSOR_KEYS):
        raise FMANetConfigError(
            f"Invalid FMANetImageProcessor setting: {where}{', '.join(map(repr, unknown))}: settings of the pre-release "
            "format 0 (renamed since); upgrade the folder with `python conversion/upgrade_checkpoint.py FOLDER` "
            "from the fmanet-hf source tree."
        )
    if unknown:
        named = ", ".join(f"{key!r}{did_you_mean(key, PROCESSOR_SETTINGS)}" for key in unknown)
        raise FMANetConfigError(
            f"Invalid FMANetImageProcessor setting: {where}unknown setting {named}. FMANetImageProcessor's "
            "docstring lists its settings; transformers' own keys (image_processor_type, auto_map, ...) are allowed too."
        )


@dataclass
class MotionSample:
    """Everything the processor computed for one triplet (for figures, debugging and tests).

    Attributes:
        aligned_frames: (3, h, w) float32 grey crops [0, 255] of onset, apex, offset.
        source_to_crop: (3, 2, 3) float64 transforms mapping each source frame to the crop.
        landmarks: (68, 2) float32 onset landmarks in crop pixels, or None without alignment.
        onset_apex_flow: (h, w, 2) float32 flow in crop pixels.
        apex_offset_flow: (h, w, 2) float32 flow in crop pixels.
        pixel_values: (2 * C, H, W) float32 normalised model input.
        mmcof: (3, H, W) float32 fixed MM-COF descriptor (u_c, v_c, M_c).
        num_faces: faces found in the onset frame (0 without alignment).
    """

    aligned_frames: np.ndarray
    source_to_crop: np.ndarray
    landmarks: np.ndarray | None
    onset_apex_flow: np.ndarray
    apex_offset_flow: np.ndarray
    pixel_values: np.ndarray
    mmcof: np.ndarray
    num_faces: int


def _is_frame(value: Any) -> bool:
    """True for one image (path, PIL image, array), False for a sequence of images."""
    if isinstance(value, (str, bytes, os.PathLike, np.ndarray)):
        return True
    if hasattr(value, "detach"):  # torch tensor
        return True
    return not isinstance(value, (list, tuple))


# Keywords users bring from other transformers processors (``processor(images=...)``) or
# guess from the frame names, and the keyword this processor takes instead.
_FRAME_KEYWORDS_HINT = (
    "FMANetImageProcessor takes frame triplets, not single images: pass processor(onset, apex, offset) "
    "for one sample or processor(frames=[(onset, apex, offset), ...]) for a batch"
)
_VIDEO_KEYWORDS_HINT = (
    "FMANetImageProcessor takes the three key frames of a clip, not a video: read them first "
    "(fmanet_hf.video.read_key_frames) or use the pipeline, pipe('clip.mp4', onset=I, offset=K)"
)
_KEYWORD_HINTS = {
    "images": _FRAME_KEYWORDS_HINT,
    "image": _FRAME_KEYWORDS_HINT,
    "pixel_values": _FRAME_KEYWORDS_HINT,
    "triplet": _FRAME_KEYWORDS_HINT,
    "triplets": _FRAME_KEYWORDS_HINT,
    "samples": _FRAME_KEYWORDS_HINT,
    "frame": _FRAME_KEYWORDS_HINT,
    "videos": _VIDEO_KEYWORDS_HINT,
    "video": _VIDEO_KEYWORDS_HINT,
    "onset_frame": "use onset=... (the onset frame)",
    "apex_frame": "use apex=... (the apex frame)",
    "offset_frame": "use offset=... (the offset frame)",
    "return_tensor": "use return_tensors=... (with an s), e.g. return_tensors='pt'",
    "tensor_type": "use return_tensors=..., e.g. return_tensors='pt'",
}


def _unknown_keywords_message(kwargs: dict[str, Any]) -> str:
    """The error for call keywords `preprocess` does not take: a hint per known mistake, else
    the note that settings are fixed at construction."""
    hints = [f"{name}=: {_KEYWORD_HINTS[name]}." for name in sorted(kwargs) if name in _KEYWORD_HINTS]
    others = sorted(name for name in kwargs if name not in _KEYWORD_HINTS)
    if others:
        hints.append(
            f"Unknown argument(s) {others} for FMANetImageProcessor: a call takes onset, apex, offset, frames, "
            "return_tensors, return_mmcof and num_workers; settings are fixed at construction (create a new processor, "
            "or use processor.from_dict({**processor.to_dict(), ...}))."
        )
    return " ".join(hints)


class FMANetImageProcessor(BaseImageProcessor):
    r"""Builds FMANet's dual-phase motion input from (onset, apex, offset) frames.

    Args:
        align_faces (`bool`, defaults to `True`):
            Detect the face and 68 landmarks on the onset frame and crop all three frames
            with one similarity transform. Turn off for frames already cropped/aligned.
        face_backend (`str`, defaults to `"dlib"`):
            What finds the face: `"dlib"` (HOG detector + 68-point model trained on iBUG 300-W,
            licensed for non-commercial use only) or `"mediapipe"` (Google's BlazeFace and face
            mesh, Apache-2.0, run by OpenCV; install its model files with
            `pip install --no-deps mediapipe==0.10.21`). A config saved without it is `"dlib"`.
        crop_size (`int` or `None`, defaults to 128):
            Side (pixels) of the square crop the flow is computed on. Without alignment,
            frames are scaled to it; `None` keeps unaligned frames at native size.
        interocular_fraction (`float`, defaults to 0.33):
            Eye-centre distance as a fraction of `crop_size` (sets the zoom of the crop).
        eye_line_height (`float`, defaults to 0.37):
            Height of the eye line from the top, as a fraction of `crop_size`.
        face_detector_upsample (`list[int]`, defaults to `[0, 1, 2]`):
            Search levels tried in turn before giving up: dlib's HOG upsampling, or for
            `"mediapipe"` the whole frame (0) then tiles of a 2^-level side (small faces).
        face_detection_max_side (`int` or `None`, defaults to 320):
            The onset frame is first searched for a face on a copy scaled down to this longer
            side (pixels); the 68 landmarks are then found on the full-resolution frame. Only
            if that finds nothing does the full-resolution search run. `None`: full resolution
            only (format 1's behaviour, the default of a saved format-1 config). dlib backend
            only: the MediaPipe detector always searches a 128 px copy.
        stabilization (`str`, defaults to `"euclidean"`):
            Head-motion removal for apex/offset: `"none"`, `"translation"` or `"euclidean"`.
        stabilization_iterations (`int`, defaults to 5):
            Most ECC iterations of the head-motion fit (format 1: 60).
        stabilization_epsilon (`float`, defaults to 1e-4):
            The ECC fit stops once an iteration raises the correlation coefficient by less
            than this (format 1: 1e-5).
        flow_margin_fraction (`float`, defaults to 0.125):
            Extra context around the crop (fraction of its side, each side) that the flow is
            computed on and then trimmed away, so solver border artefacts never reach the output.
        intensity_matching (`str`, defaults to `"mean_std"`):
            `"mean_std"`: give apex and offset the onset's mean and standard deviation over
            the rigid face regions before the flow (brightness drift otherwise becomes flow);
            `"none"`.
        flow_method (`str`, defaults to `"dis"`):
            `"dis"` (full-resolution DIS, the default since format 2), `"tvl1"` (the field's
            standard, format 1's default) or `"farneback"`.
        flow_params (`dict`, *optional*):
            Overrides of the method's parameters (see `fmanet_hf.flow.DEFAULT_FLOW_PARAMS`);
            the resolved full set is what gets saved.
        size (`dict`, defaults to `{"height": 64, "width": 64}`):
            Size of `pixel_values` (must match the model's `image_size`).
        include_optical_strain (`bool`, defaults to `False`):
            Add optical strain as a 4th channel per phase (then the model needs
            `num_channels_per_phase=4`).
        flow_normalization (`str`, defaults to `"per_phase_minmax"`):
            `"per_phase_minmax"`, `"joint_max"` or `"none"` (see `fmanet_hf.mmcof`).
        normalization_floor_px (`float`, defaults to 0.05):
            Smallest magnitude range (pixels) divided by, so static clips stay near zero.
        normalization_percentile (`float`, defaults to 99.5):
            The "max" of the normalisation is this percentile of the magnitude (100 = plain
            max, the paper's min-max); values above it are clipped, so a few outlier vectors
            cannot squash a whole map.
        return_mmcof (`bool`, defaults to `False`):
            Also return `mmcof_values` (B, 3, H, W), the fixed MM-COF descriptor.
        mmcof_theta (`list[float]`, defaults to `[0.6, 0.4]`):
            MM-COF phase weights (onset->apex, apex->offset).
        mmcof_modulation_threshold (`float`, defaults to 0.15):
            MM-COF soft threshold on the combined normalised magnitude, in [0, 1].
        mmcof_modulation_sharpness (`float`, defaults to 20.0):
            MM-COF threshold slope (> 0).
        mmcof_reverse_offset_phase (`bool`, defaults to `True`):
            Flip the apex->offset direction before combining (relaxation points back).
        landmark_model_path (`str`, *optional*):
            Path to `shape_predictor_68_face_landmarks.dat`; default: the file of the
            `face-recognition-models` package or `$FMANET_LANDMARK_MODEL`. Not part of the
            output-defining settings.
        processor_format_version (`int`, defaults to the current version):
            Version of the processing pipeline that wrote the config; a config from a newer
            fmanet-hf is refused rather than silently processed differently.
    """

    model_input_names = ["pixel_values"]

    def __init__(
        self,
        align_faces: bool = True,
        face_backend: str = "dlib",
        crop_size: int | None = 128,
        interocular_fraction: float = 0.33,
        eye_line_height: float = 0.37,
        face_detector_upsample: Sequence[int] = (0, 1, 2),
        face_detection_max_side: int | None | str = "format_default",
        stabilization: str = "euclidean",
        stabilization_iterations: int | None = None,
        stabilization_epsilon: float | None = None,
        flow_margin_fraction: float = 0.125,
        intensity_matching: str = "mean_std",
        flow_method: str | None = None,
        flow_params: dict[str, Any] | None = None,
        size: dict[str, int] | None = None,
        include_optical_strain: bool = False,
        flow_normalization: str = "per_phase_minmax",
        normalization_floor_px: float = 0.05,
        normalization_percentile: float = 99.5,
        return_mmcof: bool = False,
        mmcof_theta: Sequence[float] = (0.6, 0.4),
        mmcof_modulation_threshold: float = 0.15,
        mmcof_modulation_sharpness: float = 20.0,
        mmcof_reverse_offset_phase: bool = True,
        landmark_model_path: str | None = None,
        processor_format_version: int = PROCESSOR_FORMAT_VERSION,
        **kwargs,
    ):
        _refuse_unknown_settings(kwargs, "")
        super().__init__(**kwargs)
        self.processor_format_version = int(processor_format_version)
        # A setting left out takes the default of the format the config was written in.
        format_defaults = _FORMAT_DEFAULTS.get(self.processor_format_version, _FORMAT_DEFAULTS[PROCESSOR_FORMAT_VERSION])
        if face_detection_max_side == "format_default":
            face_detection_max_side = format_defaults["face_detection_max_side"]
        if stabilization_iterations is None:
            stabilization_iterations = format_defaults["stabilization_iterations"]
        if stabilization_epsilon is None:
            stabilization_epsilon = format_defaults["stabilization_epsilon"]
        method_given = flow_method is not None
        if flow_method is None:
            flow_method = format_defaults["flow_method"]
        self.align_faces = bool(align_faces)
        self.face_backend = face_backend
        self.crop_size = None if crop_size is None else crop_size
        self.interocular_fraction = float(interocular_fraction)
        self.eye_line_height = float(eye_line_height)
        self.face_detector_upsample = [int(u) for u in face_detector_upsample]
        self.face_detection_max_side = face_detection_max_side
        self.stabilization = stabilization
        self.stabilization_iterations = stabilization_iterations
        self.stabilization_epsilon = stabilization_epsilon
        self.flow_margin_fraction = float(flow_margin_fraction)
        self.intensity_matching = intensity_matching
        self.flow_method = flow_method
        try:
            self.flow_params = resolve_flow_params(flow_method, flow_params) if flow_method in FLOW_METHODS else flow_params
        except FMANetConfigError as error:
            if not method_given:
                raise FMANetConfigError(
                    f"{error} No flow_method was given, and the default is {flow_method!r} since processor format "
                    f"{self.processor_format_version}: pass flow_method='tvl1' with TV-L1 parameters."
                ) from None
            raise
        self.size = dict(size) if size is not None else {"height": 64, "width": 64}
        self.include_optical_strain = bool(include_optical_strain)
        self.flow_normalization = flow_normalization
        self.normalization_floor_px = float(normalization_floor_px)
        self.normalization_percentile = float(normalization_percentile)
        self.return_mmcof = bool(return_mmcof)
        self.mmcof_theta = [float(t) for t in mmcof_theta]
        self.mmcof_modulation_threshold = float(mmcof_modulation_threshold)
        self.mmcof_modulation_sharpness = float(mmcof_modulation_sharpness)
        self.mmcof_reverse_offset_phase = bool(mmcof_reverse_offset_phase)
        self.landmark_model_path = landmark_model_path
        self.validate_settings()

    @classmethod
    def from_dict(cls, image_processor_dict: dict[str, Any], **kwargs):
        """The processor of a saved preprocessor_config.json (``from_pretrained`` and the Auto
        class come here). A setting the file lacks takes the value the processor had before that
        setting existed (`LEGACY_DEFAULTS`), an unknown one is refused with the closest valid name."""
        _refuse_unknown_settings(image_processor_dict, "preprocessor_config.json has an ")
        settings = {key: value for key, value in LEGACY_DEFAULTS.items() if key not in image_processor_dict}
        settings.update(image_processor_dict)
        return super().from_dict(settings, **kwargs)

    # ------------------------------------------------------------------ settings
    def validate_settings(self) -> None:
        """Refuse impossible settings with an `FMANetConfigError` naming the setting."""

        def fail(message: str) -> None:
            raise FMANetConfigError(f"Invalid FMANetImageProcessor setting: {message}")

        if self.face_backend not in FACE_BACKENDS:
            fail(f"face_backend must be one of {list(FACE_BACKENDS)}, got {self.face_backend!r}.")
        if self.flow_method not in FLOW_METHODS:
            fail(f"flow_method must be one of {list(FLOW_METHODS)}, got {self.flow_method!r}.")
        if self.intensity_matching not in INTENSITY_MATCHING_MODES:
            fail(f"intensity_matching must be one of {list(INTENSITY_MATCHING_MODES)}, got {self.intensity_matching!r}.")
        if self.stabilization not in STABILIZATION_MODES:
            fail(f"stabilization must be one of {list(STABILIZATION_MODES)}, got {self.stabilization!r}.")
        if self.flow_normalization not in NORMALIZATION_MODES:
            fail(f"flow_normalization must be one of {list(NORMALIZATION_MODES)}, got {self.flow_normalization!r}.")
        if self.crop_size is not None and (
            isinstance(self.crop_size, bool) or not isinstance(self.crop_size, int) or not 32 <= self.crop_size <= 2048
        ):
            fail(f"crop_size must be an integer in [32, 2048] or None, got {self.crop_size!r}.")
        if self.align_faces and self.crop_size is None:
            fail("align_faces=True needs a crop_size (the side of the aligned crop, e.g. 128).")
        if set(self.size) != {"height", "width"} or not all(
            isinstance(v, int) and not isinstance(v, bool) and 8 <= v <= 1024 for v in self.size.values()
        ):
            fail(f"size must be {{'height': int, 'width': int}} with values in [8, 1024], got {self.size!r}.")
        if not 0.05 <= self.interocular_fraction <= 0.9 or not 0.05 <= self.eye_line_height <= 0.95:
            fail("interocular_fraction must be in [0.05, 0.9] and eye_line_height in [0.05, 0.95].")
        if not self.face_detector_upsample or any(u < 0 or u > 4 for u in self.face_detector_upsample):
            fail(f"face_detector_upsample must be a non-empty list of levels in [0, 4], got {self.face_detector_upsample}.")
        side = self.face_detection_max_side
        if side is not None and (isinstance(side, bool) or not isinstance(side, int) or not 80 <= side <= 8192):
            fail(f"face_detection_max_side must be None or an integer in [80, 8192] (pixels), got {side!r}.")
        iterations = self.stabilization_iterations
        if isinstance(iterations, bool) or not isinstance(iterations, int) or not 1 <= iterations <= 1000:
            fail(f"stabilization_iterations must be an integer in [1, 1000], got {iterations!r}.")
        epsilon = self.stabilization_epsilon
        if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not 0.0 <= epsilon <= 0.1:
            fail(f"stabilization_epsilon must be a number in [0, 0.1], got {epsilon!r}.")
        if not 0.0 <= self.flow_margin_fraction <= 0.5:
            fail(f"flow_margin_fraction must be in [0, 0.5], got {self.flow_margin_fraction}.")
        if not self.normalization_floor_px > 0:
            fail(f"normalization_floor_px must be > 0, got {self.normalization_floor_px}.")
        if not 50.0 <= self.normalization_percentile <= 100.0:
            fail(f"normalization_percentile must be in [50, 100], got {self.normalization_percentile}.")
        theta = self.mmcof_theta
        if len(theta) != 2 or min(theta) < 0 or sum(theta) <= 0:
            fail(f"mmcof_theta must be two non-negative weights, not both 0; got {theta}.")
        if not self.mmcof_modulation_sharpness > 0 or not 0 <= self.mmcof_modulation_threshold <= 1:
            fail("mmcof_modulation_sharpness must be > 0 and mmcof_modulation_threshold in [0, 1].")
        if self.processor_format_version < 1:
            fail(
                f"processor_format_version {self.processor_format_version} predates format 1; convert the folder with "
                "conversion/upgrade_checkpoint.py."
            )
        if self.processor_format_version > PROCESSOR_FORMAT_VERSION:
            fail(
                f"this preprocessor_config.json was written by a newer fmanet-hf (format "
                f"{self.processor_format_version} > {PROCESSOR_FORMAT_VERSION}); upgrade fmanet-hf."
            )

    @property
    def num_channels_per_phase(self) -> int:
        """3 (u, v, M) or 4 (+ optical strain)."""
        return 4 if self.include_optical_strain else 3

    def output_settings(self) -> dict[str, Any]:
        """The settings that determine the processor's output (JSON-compatible)."""
        return json.loads(json.dumps({key: getattr(self, key) for key in _OUTPUT_SETTINGS}))

    def settings_fingerprint(self) -> str:
        """SHA-256 (hex, 16 chars) of `output_settings()`: the cache key of prepared inputs."""
        canonical = json.dumps(self.output_settings(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        """Every setting, None values included.

        transformers drops None-valued attributes on save; ``crop_size=None`` (keep native
        size) would then come back as the default 128 and change the output.
        """
        output = super().to_dict()
        for key in (*_OUTPUT_SETTINGS, "return_mmcof", "landmark_model_path"):
            output[key] = getattr(self, key)
        return output

    # ------------------------------------------------------------------ one sample
    def process_triplet(self, onset: Any, apex: Any, offset: Any) -> MotionSample:
        """Run the whole pipeline on one (onset, apex, offset) triplet; see `MotionSample`."""
        onset_gray, apex_gray, offset_gray = load_triplet([onset, apex, offset])
        height, width = onset_gray.shape
        landmarks, num_faces = None, 0
        if self.align_faces:
            detection = detect_face(
                onset_gray,
                upsample_schedule=tuple(self.face_detector_upsample),
                landmark_model_path=self.landmark_model_path,
                detection_max_side=self.face_detection_max_side,
                backend=self.face_backend,
            )
            onset_transform = eye_similarity_transform(
                detection.landmarks, self.crop_size, self.interocular_fraction, self.eye_line_height
            )
            crop_height = crop_width = self.crop_size
            num_faces = detection.num_faces
            landmarks = transform_points(detection.landmarks, onset_transform)
        else:
            onset_transform = resize_transform(height, width, self.crop_size)
            crop_height, crop_width = (height, width) if self.crop_size is None else (self.crop_size, self.crop_size)

        # Flow is computed on a crop enlarged by a margin of real context, then trimmed:
        # TV-L1 produces large spurious vectors along an image's border rows/columns.
        margin = int(round(self.flow_margin_fraction * min(crop_height, crop_width)))
        padded_height, padded_width = crop_height + 2 * margin, crop_width + 2 * margin
        to_padded = np.array([[1.0, 0.0, margin], [0.0, 1.0, margin], [0.0, 0.0, 1.0]])

        def padded(transform: np.ndarray) -> np.ndarray:
            return (to_padded @ np.vstack([transform, [0.0, 0.0, 1.0]]))[:2]

        onset_crop = warp_frame(onset_gray, padded(onset_transform), padded_height, padded_width)
        stabilization_mask = rigid_region_mask(
            None if landmarks is None else landmarks + margin, padded_height, padded_width
        )
        padded_transforms = [padded(onset_transform)]
        crops = [onset_crop]
        for moving in (apex_gray, offset_gray):
            transform = stabilize_to_reference(
                onset_crop,
                moving,
                padded_transforms[0],
                self.stabilization,
                mask=stabilization_mask,
                iterations=self.stabilization_iterations,
                epsilon=self.stabilization_epsilon,
            )
            padded_transforms.append(transform)
            crops.append(warp_frame(moving, transform, padded_height, padded_width))
        if self.intensity_matching == "mean_std":
            crops[1:] = [match_intensity(crop, onset_crop, stabilization_mask) for crop in crops[1:]]
        inner = (slice(margin, margin + crop_height), slice(margin, margin + crop_width))
        transforms = [t - np.array([[0.0, 0.0, margin], [0.0, 0.0, margin]]) for t in padded_transforms]

        onset_apex_flow = compute_optical_flow(crops[0], crops[1], self.flow_method, self.flow_params)[inner]
        apex_offset_flow = compute_optical_flow(crops[1], crops[2], self.flow_method, self.flow_params)[inner]
        crops = [crop[inner] for crop in crops]

        out_height, out_width = self.size["height"], self.size["width"]
        phases = [
            resize_channels(phase_channels(flow, self.include_optical_strain), out_height, out_width)
            for flow in (onset_apex_flow, apex_offset_flow)
        ]
        phases = normalize_dual_phase(
            phases, self.flow_normalization, self.normalization_floor_px, self.normalization_percentile
        )
        mmcof = compute_mmcof(
            onset_apex_flow,
            apex_offset_flow,
            theta=self.mmcof_theta,
            modulation_threshold=self.mmcof_modulation_threshold,
            modulation_sharpness=self.mmcof_modulation_sharpness,
            reverse_offset_phase=self.mmcof_reverse_offset_phase,
            size=(out_height, out_width),
            floor_px=self.normalization_floor_px,
            percentile=self.normalization_percentile,
        )
        return MotionSample(
            aligned_frames=np.ascontiguousarray(np.stack(crops), dtype=np.float32),
            source_to_crop=np.stack(transforms),
            landmarks=landmarks,
            onset_apex_flow=np.ascontiguousarray(onset_apex_flow),
            apex_offset_flow=np.ascontiguousarray(apex_offset_flow),
            pixel_values=np.concatenate(phases).astype(np.float32),
            mmcof=mmcof,
            num_faces=num_faces,
        )

    # ------------------------------------------------------------------ batches
    @staticmethod
    def _collect_triplets(onset: Any, apex: Any, offset: Any, frames: Any) -> list[tuple[Any, Any, Any]]:
        given = [x is not None for x in (onset, apex, offset)]
        if frames is not None and any(given):
            raise FrameCountError("Pass either onset/apex/offset or frames=..., not both.")
        if frames is None and given == [True, False, False]:
            frames, onset = onset, None  # processor([onset, apex, offset]) or processor([triplet, ...])
        if frames is not None:
            if _is_frame(frames):
                raise FrameCountError(
                    "frames must be a sequence of 3 frames (onset, apex, offset) or a list of such triplets; "
                    "got a single frame."
                )
            frames = list(frames)
            if frames and all(not _is_frame(item) for item in frames):
                triplets = [tuple(item) for item in frames]
            else:
                triplets = [tuple(frames)]
            for index, triplet in enumerate(triplets):
                if len(triplet) != 3:
                    raise FrameCountError(
                        f"Sample {index} has {len(triplet)} frames; each sample needs exactly 3 (onset, apex, offset)."
                    )
            if not triplets:
                raise FrameCountError("No samples were given (empty frames list).")
            return triplets
        if not all(given):
            missing = [name for name, present in zip(("onset", "apex", "offset"), given) if not present]
            raise FrameCountError(
                f"Got {sum(given)} of the 3 frames; missing: {', '.join(missing)}. Pass onset, apex and offset."
            )
        if all(_is_frame(x) for x in (onset, apex, offset)):
            return [(onset, apex, offset)]
        if any(_is_frame(x) for x in (onset, apex, offset)):
            raise FrameCountError("onset, apex and offset must all be single frames or all be lists of frames.")
        lengths = {len(onset), len(apex), len(offset)}
        if len(lengths) != 1:
            raise FrameCountError(f"onset, apex and offset lists differ in length: {len(onset)}, {len(apex)}, {len(offset)}.")
        return list(zip(onset, apex, offset))

    def preprocess(
        self,
        onset: Any = None,
        apex: Any = None,
        offset: Any = None,
        *,
        frames: Iterable[Any] | None = None,
        return_tensors: str | None = None,
        return_mmcof: bool | None = None,
        num_workers: int = 1,
        **kwargs,
    ) -> BatchFeature:
        """Turn one or more (onset, apex, offset) triplets into model inputs.

        Call styles: ``processor(onset, apex, offset)``; ``processor(onsets, apexes, offsets)``
        with three equal-length lists; ``processor(frames=[(on, ap, off), ...])``;
        ``processor([on, ap, off])``.

        Args:
            return_tensors: ``"pt"`` (torch), ``"np"`` or None (numpy).
            return_mmcof: override of the saved `return_mmcof`.
            num_workers: threads for a batch (OpenCV and dlib release the GIL). The output
                does not depend on it.

        Returns:
            `BatchFeature` with ``pixel_values`` (B, 2 * C, H, W) float32 and, if asked,
            ``mmcof_values`` (B, 3, H, W).
        """
        if kwargs:
            raise FMANetConfigError(_unknown_keywords_message(kwargs))
        if return_tensors is not None and str(getattr(return_tensors, "value", return_tensors)) not in RETURN_TENSORS:
            # Checked before the (slow) flow, and in the package's words rather than transformers'.
            raise FMANetConfigError(
                f"return_tensors={return_tensors!r} is not supported; use 'pt' (torch tensors), 'np' (numpy arrays) "
                f"or None (numpy).{_RETURN_TENSORS_ALIASES.get(str(return_tensors).lower(), '')}"
            )
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 1:
            raise FMANetConfigError(f"num_workers must be an integer >= 1, got {num_workers!r}.")
        triplets = self._collect_triplets(onset, apex, offset, frames)
        if num_workers > 1 and len(triplets) > 1:
            with ThreadPoolExecutor(max_workers=num_workers) as pool:
                samples = list(pool.map(lambda t: self.process_triplet(*t), triplets))
        else:
            samples = [self.process_triplet(*t) for t in triplets]
        data = {"pixel_values": np.stack([s.pixel_values for s in samples])}
        if self.return_mmcof if return_mmcof is None else return_mmcof:
            data["mmcof_values"] = np.stack([s.mmcof for s in samples])
        return BatchFeature(data=data, tensor_type=return_tensors)

    def __call__(self, onset: Any = None, apex: Any = None, offset: Any = None, *extra_frames: Any, **kwargs) -> BatchFeature:
        """Same as `preprocess`."""
        if extra_frames:
            raise FrameCountError(
                f"Got {3 + len(extra_frames)} positional frames; a sample is exactly 3 (onset, apex, offset). "
                "Pass a batch as processor(frames=[(onset, apex, offset), ...])."
            )
        return self.preprocess(onset, apex, offset, **kwargs)


FMANetImageProcessor.register_for_auto_class("AutoImageProcessor")

#: FMANet's own processor settings: the arguments of `FMANetImageProcessor` (transformers' keys aside).
PROCESSOR_SETTINGS = tuple(
    name for name in inspect.signature(FMANetImageProcessor.__init__).parameters if name not in ("self", "kwargs")
)

__all__ = ["FMANetImageProcessor", "LEGACY_DEFAULTS", "MotionSample", "PROCESSOR_FORMAT_VERSION", "PROCESSOR_SETTINGS"]
