"""The ``"micro-expression-recognition"`` pipeline.

``import fmanet_hf`` registers it with transformers (when transformers loads, see
`fmanet_hf.registration`), so::

    from transformers import pipeline
    classify = pipeline("micro-expression-recognition", model="path/to/exported-folder")
    classify(("onset.png", "apex.png", "offset.png"))          # a frame triplet
    classify({"onset": on, "apex": ap, "offset": off})           # the same, as a dict
    classify("clip.mp4", onset=12, apex=30, offset=55)           # a video + 0-based indices
    classify("clip.mp4", onset=12, offset=55)                    # apex estimated
    classify({"frames": [f0, f1, ..., fN]})                      # a whole clip; apex estimated
    classify([sample_1, sample_2])                               # several samples -> list of results

Each result is a list of ``{"label", "score"}`` (highest first; ``top_k`` of them, all
classes by default), a `Predictions` whose ``.warnings`` lists what was ambiguous about the
input (``[]`` normally; each is also issued as an `FMANetWarning`). With ``return_attention=True`` (or ``return_motion=True``) a result is
a dict instead: ``{"predictions": [...], "warnings": [...], "attention_map": (h, w) float32 in [0, 1] over
the aligned onset crop, "phase_fusion_weights": (phases,), "key_frames": {...} (video /
clip input)}`` and, with ``return_motion``, ``"motion"``: the processor's `MotionSample`
(aligned frames, both flows in crop pixels, MM-COF, landmarks) for figures.

Frames are preprocessed by the model's `FMANetImageProcessor` (face alignment on the
onset frame, head-motion removal, two optical flows); the apex estimate is documented in
`fmanet_hf.video`. Every model load goes through safetensors only (pickle weights are
refused with a `CheckpointError`, see `fmanet_hf.pretrained`).
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoModelForImageClassification, Pipeline

from .errors import CheckpointError, FMANetConfigError, FMANetWarning, FrameCountError, KeyFrameError
from .video import APEX_METHODS, DEFAULT_MAX_CLIP_FRAMES, DEFAULT_MAX_FRAMES, estimate_apex, looks_like_video, read_key_frames

logger = logging.getLogger(__name__)

TASK = "micro-expression-recognition"
_KEY_FRAME_NAMES = ("onset", "apex", "offset")


def _is_single_frame(value: Any) -> bool:
    """A path, PIL image, array or tensor: one frame (not a sequence of frames)."""
    if isinstance(value, (str, bytes, os.PathLike, np.ndarray)):
        return True
    if hasattr(value, "detach"):
        return True
    return not isinstance(value, (list, tuple, dict))


class SafetensorsAutoModelForImageClassification(AutoModelForImageClassification):
    """``AutoModelForImageClassification`` that refuses pickle weights.

    `pipeline()` loads the model by calling ``from_pretrained`` of the task's model class;
    registering this class makes that path go through `check_safe_checkpoint` and
    ``use_safetensors=True``.
    """

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        from .pretrained import check_safe_checkpoint

        check_safe_checkpoint(pretrained_model_name_or_path, kwargs.get("subfolder"))
        kwargs["use_safetensors"] = True
        return AutoModelForImageClassification.from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)


class MicroExpressionRecognitionPipeline(Pipeline):
    """Classify micro-expressions from (onset, apex, offset) frames or a video; see the module docstring.

    Call arguments (also accepted at construction as defaults):
        top_k (`int`, *optional*): number of classes returned (default: all).
        return_attention (`bool`, defaults to False): return a dict with the attention map.
        return_motion (`bool`, defaults to False): also return the `MotionSample`.
        onset / apex / offset: with a video path as input, its 0-based key-frame indices
            (apex optional: estimated); without an input, the three frames themselves.
        apex_method (`str`, defaults to `"max_difference"`): apex estimate (`fmanet_hf.video`).
        max_frames (`int`): most frames decoded from a video (default 20,000).
        max_clip_frames (`int`): most frames read between onset and offset to estimate an apex (default 1,000).
    """

    _load_processor = False
    # Optional for transformers: a model passed as an object has no path to load one from;
    # __init__ then looks next to the model or asks for it with a clear error.
    _load_image_processor = None
    _load_feature_extractor = False
    _load_tokenizer = False
    _load_video_processor = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.image_processor is None:
            self.image_processor = self._processor_next_to_model()
        processor, config = self.image_processor, self.model.config
        if not hasattr(processor, "process_triplet"):
            raise FMANetConfigError(
                f"The micro-expression-recognition pipeline needs an FMANetImageProcessor, got {type(processor).__name__}. "
                "Pass image_processor=FMANetImageProcessor.from_pretrained(model_folder)."
            )
        size = processor.size
        channels = 2 * (4 if processor.include_optical_strain else 3)
        if (size["height"], size["width"]) != (config.image_size, config.image_size) or channels != 2 * config.num_channels_per_phase:
            raise FMANetConfigError(
                f"The image processor makes {channels}-channel {size['height']}x{size['width']} inputs but the model expects "
                f"{2 * config.num_channels_per_phase} channels at {config.image_size}x{config.image_size}. Use the "
                "processor saved with the model (FMANetImageProcessor.from_pretrained(model_folder))."
            )
        self.model.eval()

    def _processor_next_to_model(self):
        """The processor saved next to a model passed as an object, or an error saying what to pass."""
        source = getattr(self.model.config, "_name_or_path", "") or getattr(self.model, "name_or_path", "")
        if source and Path(source).is_dir() and (Path(source) / "preprocessor_config.json").is_file():
            from .image_processing_fmanet import FMANetImageProcessor

            return FMANetImageProcessor.from_pretrained(source)
        raise FMANetConfigError(
            "No image processor: the micro-expression-recognition pipeline needs the FMANetImageProcessor the model was "
            "trained with. Pass image_processor=FMANetImageProcessor.from_pretrained(model_folder) (or "
            "fmanet_hf.FMANetImageProcessor() for the defaults)."
        )

    # ------------------------------------------------------------------ parameters
    def _sanitize_parameters(
        self,
        top_k: int | None = None,
        return_attention: bool | None = None,
        return_motion: bool | None = None,
        apex_method: str | None = None,
        max_frames: int | None = None,
        max_clip_frames: int | None = None,
        **unknown: Any,
    ):
        if unknown:
            raise FMANetConfigError(
                f"Unknown argument(s) {sorted(unknown)} for the micro-expression-recognition pipeline; it takes top_k, "
                "return_attention, return_motion, apex_method, max_frames, max_clip_frames (and onset/apex/offset)."
            )
        preprocess: dict[str, Any] = {}
        postprocess: dict[str, Any] = {}
        if apex_method is not None:
            if apex_method not in APEX_METHODS:
                raise FMANetConfigError(f"apex_method must be one of {list(APEX_METHODS)}, got {apex_method!r}.")
            preprocess["apex_method"] = apex_method
        for name, value in (("max_frames", max_frames), ("max_clip_frames", max_clip_frames)):
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, int) or value < 3:
                    raise FMANetConfigError(f"{name} must be an integer >= 3, got {value!r}.")
                preprocess[name] = value
        if top_k is not None:
            if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
                raise FMANetConfigError(f"top_k must be a positive integer, got {top_k!r}.")
            postprocess["top_k"] = top_k
        if return_attention is not None:
            postprocess["return_attention"] = bool(return_attention)
        if return_motion is not None:
            postprocess["return_motion"] = bool(return_motion)
        return preprocess, {}, postprocess

    # ------------------------------------------------------------------ inputs
    @staticmethod
    def _normalize_sample(sample: Any) -> dict[str, Any]:
        """One sample as a dict: {"onset","apex","offset"} frames, {"video", indices} or {"frames": [...]}."""
        if isinstance(sample, dict):
            if "video" in sample:
                missing = [k for k in ("onset", "offset") if sample.get(k) is None]
                if missing:
                    raise KeyFrameError(
                        f"A video input needs the onset and offset frame indices (0-based); missing: {', '.join(missing)}."
                    )
                return dict(sample)
            if "frames" in sample:
                frames = sample["frames"]
                if _is_single_frame(frames) or len(frames) < 3:
                    raise FrameCountError(
                        "'frames' must be a sequence of at least 3 frames from onset to offset (3 = a triplet)."
                    )
                return {"frames": list(frames)}
            missing = [k for k in _KEY_FRAME_NAMES if sample.get(k) is None]
            if missing == ["apex"]:
                raise FrameCountError(
                    "Got onset and offset frames but no apex. Give the apex frame, or pass the whole clip as "
                    "{'frames': [onset, ..., offset]} (or a video with indices) to have the apex estimated."
                )
            if missing:
                raise FrameCountError(f"A sample needs onset, apex and offset frames; missing: {', '.join(missing)}.")
            return {k: sample[k] for k in _KEY_FRAME_NAMES}
        if isinstance(sample, (tuple, list)) and len(sample) == 3 and all(_is_single_frame(f) for f in sample):
            return dict(zip(_KEY_FRAME_NAMES, sample))
        if looks_like_video(sample):
            raise KeyFrameError(
                f"A video ({os.fspath(sample)!r}) needs its key frames: call pipe(video, onset=I, offset=K[, apex=J]) "
                "or pass {'video': path, 'onset': I, 'offset': K}."
            )
        raise FrameCountError(
            "A sample is a triplet (onset, apex, offset) of frames (paths, PIL images or arrays), a dict with "
            "onset/apex/offset, {'frames': [...]}, or {'video': path, 'onset': I, 'offset': K}; "
            f"got {type(sample).__name__}."
        )

    def __call__(self, inputs: Any = None, *args: Any, onset: Any = None, apex: Any = None, offset: Any = None, **kwargs: Any):
        """Classify one sample or a list of samples (see the module docstring for the accepted forms)."""
        if args:
            raise FrameCountError(
                f"Got {1 + len(args)} positional inputs. Pass one sample, e.g. pipe((onset, apex, offset)) "
                "or pipe(onset=..., apex=..., offset=...), or a list of samples."
            )
        key_frames = {"onset": onset, "apex": apex, "offset": offset}
        given_key_frames = any(v is not None for v in key_frames.values())
        if inputs is None:
            samples: Any = self._normalize_sample(key_frames)
        elif isinstance(inputs, (str, os.PathLike)) and given_key_frames:
            samples = self._normalize_sample({"video": inputs, **key_frames})
        elif given_key_frames:
            raise FrameCountError(
                "onset/apex/offset keywords go with a video path as the input (indices) or with no input (frames)."
            )
        elif isinstance(inputs, dict) or (
            isinstance(inputs, (tuple, list)) and len(inputs) == 3 and all(_is_single_frame(f) for f in inputs)
        ):
            samples = self._normalize_sample(inputs)
        elif isinstance(inputs, (tuple, list)):
            if not inputs:
                raise FrameCountError("Got an empty list of samples.")
            samples = [self._normalize_sample(item) for item in inputs]
        else:
            samples = self._normalize_sample(inputs)
        # One sample per forward: preprocessing (face + two flows) dominates, and the extra
        # outputs (MotionSample) do not collate.
        kwargs["batch_size"] = 1
        return super().__call__(samples, **kwargs)

    # ------------------------------------------------------------------ steps
    def preprocess(
        self,
        sample: dict[str, Any],
        apex_method: str = "max_difference",
        max_frames: int = DEFAULT_MAX_FRAMES,
        max_clip_frames: int = DEFAULT_MAX_CLIP_FRAMES,
    ) -> dict[str, Any]:
        # What the input raised as FMANetWarning (an assumed scale, identical frames, a failed
        # stabilisation...) travels with the sample into its result's `warnings`.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", FMANetWarning)
            model_inputs = self._preprocess_sample(sample, apex_method, max_frames, max_clip_frames)
        notes: list[str] = []
        for record in caught:
            if issubclass(record.category, FMANetWarning):
                if str(record.message) not in notes:
                    notes.append(str(record.message))
                    warnings.warn(str(record.message), record.category, stacklevel=2)
            else:
                warnings.warn_explicit(record.message, record.category, record.filename, record.lineno)
        model_inputs["warnings"] = notes
        return model_inputs

    def _preprocess_sample(self, sample: dict[str, Any], apex_method: str, max_frames: int, max_clip_frames: int) -> dict[str, Any]:
        key_frames = None
        if "video" in sample:
            read = read_key_frames(
                sample["video"],
                sample["onset"],
                sample["offset"],
                sample.get("apex"),
                processor=self.image_processor,
                apex_method=apex_method,
                max_frames=max_frames,
                max_clip_frames=max_clip_frames,
            )
            frames = read.frames
            key_frames = {**read.indices(), "fps": read.fps}
        elif "frames" in sample:
            clip = sample["frames"]
            if len(clip) == 3:
                frames = tuple(clip)
            else:
                if len(clip) > max_clip_frames:
                    raise KeyFrameError(f"The clip has {len(clip)} frames, more than max_clip_frames={max_clip_frames}.")
                estimate = estimate_apex(clip, processor=self.image_processor, method=apex_method)
                frames = (clip[0], clip[estimate.index], clip[-1])
                key_frames = {"onset": 0, "apex": estimate.index, "offset": len(clip) - 1, "apex_estimated": True}
        else:
            frames = (sample["onset"], sample["apex"], sample["offset"])
        motion = self.image_processor.process_triplet(*frames)
        return {
            "pixel_values": torch.from_numpy(np.ascontiguousarray(motion.pixel_values[None])),
            "motion": motion,
            "key_frames": key_frames,
        }

    def _forward(self, model_inputs: dict[str, Any]) -> dict[str, Any]:
        pixel_values = model_inputs["pixel_values"].to(dtype=self.model.dtype)
        outputs = self.model(pixel_values=pixel_values)
        return {
            "logits": outputs.logits,
            "attention_map": outputs.attention_map,
            "phase_fusion_weights": outputs.phase_fusion_weights,
            "motion": model_inputs["motion"],
            "key_frames": model_inputs["key_frames"],
            "warnings": model_inputs.get("warnings", []),
        }

    def postprocess(
        self, model_outputs: dict[str, Any], top_k: int | None = None, return_attention: bool = False, return_motion: bool = False
    ):
        probabilities = torch.softmax(model_outputs["logits"].float(), dim=-1)[0].cpu().numpy().astype(np.float64)
        id2label = self.model.config.id2label
        order = np.argsort(-probabilities, kind="stable")
        count = len(order) if top_k is None else min(int(top_k), len(order))
        notes = list(model_outputs.get("warnings", []))
        predictions = Predictions(({"label": id2label[int(i)], "score": float(probabilities[i])} for i in order[:count]), notes)
        if not (return_attention or return_motion):
            return predictions
        attention = model_outputs["attention_map"]
        result: dict[str, Any] = {
            "predictions": predictions,
            "warnings": notes,
            "attention_map": None if attention is None else attention[0, 0].float().cpu().numpy(),
            # Each phase's share, averaged over feature channels (a global fusion has one column).
            "phase_fusion_weights": model_outputs["phase_fusion_weights"].float().mean(dim=1).cpu().numpy(),
        }
        if model_outputs["key_frames"] is not None:
            result["key_frames"] = model_outputs["key_frames"]
        if return_motion:
            result["motion"] = model_outputs["motion"]
            result["probabilities"] = {id2label[i]: float(p) for i, p in enumerate(probabilities)}
        return result


class Predictions(list):
    """One sample's ``[{"label", "score"}, ...]`` (a plain list to compare, index and
    serialise), plus ``.warnings``: the messages of the `FMANetWarning` its input raised
    (an assumed value scale, an animated image's first frame, identical frames, a different
    person's apex, a failed stabilisation), empty when the input raised none."""

    def __init__(self, items: Any = (), warnings: list[str] | None = None):
        super().__init__(items)
        self.warnings: list[str] = list(warnings or [])


def register_pipeline() -> None:
    """Register the task with transformers (idempotent; `fmanet_hf.registration` calls it).

    When the package carries its bundled checkpoint, it is the task's default model, so
    ``pipeline("micro-expression-recognition")`` works offline with no model argument.
    """
    from transformers.pipelines import PIPELINE_REGISTRY

    current = PIPELINE_REGISTRY.supported_tasks.get(TASK)
    if current is not None and current.get("impl") is MicroExpressionRecognitionPipeline:
        return
    from .pretrained import bundled_model_path

    bundled = bundled_model_path()
    PIPELINE_REGISTRY.register_pipeline(
        TASK,
        pipeline_class=MicroExpressionRecognitionPipeline,
        pt_model=SafetensorsAutoModelForImageClassification,
        default={"model": (str(bundled), None)} if bundled is not None else None,
        type="image",
    )


def micro_expression_pipeline(
    model: Any = None, image_processor: Any = None, *, device: Any = None, **kwargs: Any
) -> MicroExpressionRecognitionPipeline:
    """The pipeline, loading safely: ``model`` a folder / repo id / model object, or None for the bundled model.

    ``device``: as transformers pipelines take it (``"cuda"``, ``0``, a `torch.device`...), or
    ``"auto"`` (CUDA, else MPS, else CPU; `fmanet_hf.devices.resolve_device`); default: the
    CPU when no CUDA device is available.

    Raises `CheckpointError` directly (rather than transformers' generic load error) for
    pickle weights or incomplete folders.
    """
    from .pretrained import load_default_model, load_pretrained_model

    if model is None:
        model, default_processor, _ = load_default_model()
        image_processor = image_processor if image_processor is not None else default_processor
    elif isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        model = load_pretrained_model(path)
        if image_processor is None:
            from .image_processing_fmanet import FMANetImageProcessor

            try:
                image_processor = FMANetImageProcessor.from_pretrained(path)
            except OSError as error:
                raise CheckpointError(
                    f"{path} has no readable preprocessor_config.json ({error}); pass image_processor=... explicitly."
                ) from None
    if isinstance(device, str) and device.strip().lower() == "auto":
        from .devices import resolve_device

        device = resolve_device("auto")
    device = device if device is not None else ("cpu" if not torch.cuda.is_available() else None)
    return MicroExpressionRecognitionPipeline(
        model=model, image_processor=image_processor, task=TASK, device=device, **kwargs
    )


__all__ = [
    "TASK",
    "MicroExpressionRecognitionPipeline",
    "Predictions",
    "SafetensorsAutoModelForImageClassification",
    "micro_expression_pipeline",
    "register_pipeline",
]
