"""The ``"micro-expression-recognition"`` pipeline class (remote code, like ``modeling_fmanet.py``).

With the package, ``import fmanet_hf`` registers the task (`fmanet_hf.pipeline`); without
it, an exported folder carries this file and ``config.json``'s ``custom_pipelines``, so
``pipeline("micro-expression-recognition", model=folder, trust_remote_code=True)`` works::

    from transformers import pipeline
    classify = pipeline("micro-expression-recognition", model="path/to/exported-folder")
    classify(("onset.png", "apex.png", "offset.png"))          # a frame triplet
    classify({"onset": on, "apex": ap, "offset": off})           # the same, as a dict
    classify("clip.mp4", onset=12, apex=30, offset=55)           # a video + 0-based indices
    classify("clip.mp4", onset=12, offset=55)                    # apex estimated
    classify({"frames": [f0, f1, ..., fN]})                      # a whole clip; apex estimated
    classify([sample_1, sample_2], batch_size=8)                 # a list of samples -> list of results
    for result in classify(dataset, batch_size=8): ...           # a datasets.Dataset / KeyDataset /
                                                                 # generator -> results as they come

As in transformers, a list is consumed at once and gives a list; a generator, a
``datasets.Dataset`` (rows with onset/apex/offset, or the loaders' onset_path/apex_path/
offset_path columns), a ``datasets.IterableDataset`` (streaming), a ``KeyDataset`` or any
torch ``Dataset`` stream lazily and give an iterator of results. ``batch_size`` batches the
forward pass (preprocessing, face + two flows, is per sample; ``num_workers`` spreads it).

Each result is a list of ``{"label", "score"}`` (highest first; ``top_k`` of them, all
classes by default), a `Predictions` whose ``.warnings`` lists what was ambiguous about the
input (``[]`` normally; each is also issued as an `FMANetWarning`). With ``return_attention=True`` (or ``return_motion=True``) a result is
a dict instead: ``{"predictions": [...], "warnings": [...], "attention_map": (h, w) float32 in [0, 1] over
the aligned onset crop, "phase_fusion_weights": (phases,), "key_frames": {...} (video /
clip input)}`` and, with ``return_motion``, ``"motion"``: the processor's `MotionSample`
(aligned frames, both flows in crop pixels, MM-COF, landmarks) for figures.

Frames are preprocessed by the model's `FMANetImageProcessor` (face alignment on the
onset frame, head-motion removal, two optical flows); the apex estimate is documented in
`fmanet_hf.video`.

Remote-code file: imports only numpy, torch, transformers and relative modules that are
remote code themselves.
"""

from __future__ import annotations

import logging
import os
import types
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import Pipeline

from .errors import FMANetConfigError, FMANetWarning, FrameCountError, KeyFrameError
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



_KEY_FRAME_PATH_NAMES = ("onset_path", "apex_path", "offset_path")


def _is_row_dataset(value: Any) -> bool:
    """A ``datasets.Dataset`` (map-style: rows by index), recognised without importing datasets."""
    return (
        type(value).__module__.startswith("datasets.")
        and hasattr(value, "column_names")
        and hasattr(value, "__getitem__")
        and hasattr(value, "__len__")  # a streaming IterableDataset has no length: see _is_stream
    )


def _is_stream(value: Any) -> bool:
    """An iterable of samples that is not itself one sample: a generator or a streaming dataset."""
    if isinstance(value, types.GeneratorType):
        return True
    return type(value).__module__.startswith("datasets.") and hasattr(value, "__iter__") and not hasattr(value, "__len__")


class _DatasetRows(torch.utils.data.Dataset):
    """A ``datasets.Dataset`` seen as a torch ``Dataset`` of its rows (what `Pipeline` streams)."""

    def __init__(self, dataset: Any):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        return self.dataset[index]


def _collate_samples(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Batch preprocessed samples: stack ``pixel_values`` (B, 2 * C, H, W), keep the rest as lists
    (transformers' loader un-batches lists item by item)."""
    return {
        "pixel_values": torch.cat([item["pixel_values"] for item in items], dim=0),
        "motion": [item["motion"] for item in items],
        "key_frames": [item["key_frames"] for item in items],
        "warnings": [item["warnings"] for item in items],
    }


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
        """One sample as a dict: {"onset","apex","offset"} frames, {"video", indices} or {"frames": [...]}.

        Also accepts a row of the package's datasets (``onset_path``, ``apex_path``, ``offset_path``)."""
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
            if all(sample.get(k) is None for k in _KEY_FRAME_NAMES) and all(sample.get(k) is not None for k in _KEY_FRAME_PATH_NAMES):
                # A row of the package's own datasets (fmanet_hf.data loaders): frame files by path.
                return {name: sample[path] for name, path in zip(_KEY_FRAME_NAMES, _KEY_FRAME_PATH_NAMES)}
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
        """Classify one sample, a list of samples, or a stream of them (a generator, a ``datasets.Dataset``
        or ``IterableDataset``, a ``KeyDataset``); see the module docstring for the accepted forms.

        ``batch_size`` and ``num_workers`` are transformers' own: samples per forward pass and
        DataLoader workers for preprocessing. A list gives a list of results; a stream gives an
        iterator of results, in input order."""
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
            # Checked at once, so a bad sample fails before any work; preprocess checks again (cheap).
            samples = [self._normalize_sample(item) for item in inputs]
        elif _is_row_dataset(inputs):
            samples = _DatasetRows(inputs)  # streams, as transformers streams a torch Dataset
        elif _is_stream(inputs):
            samples = (item for item in inputs)  # a generator: transformers streams it
        elif isinstance(inputs, torch.utils.data.Dataset):
            samples = inputs  # KeyDataset or any torch Dataset: transformers streams it
        else:
            samples = self._normalize_sample(inputs)
        return super().__call__(samples, **kwargs)

    def get_iterator(self, inputs, num_workers: int, batch_size: int, preprocess_params, forward_params, postprocess_params):
        """transformers' iterator, with a collate function for batches of motion samples.

        transformers' own batching pads tokenizer/feature-extractor outputs and cannot batch the
        `MotionSample` and key-frame fields; a batch here stacks ``pixel_values`` and keeps those
        as lists, which the loader un-batches per sample before `postprocess`.
        """
        if batch_size == 1:
            return super().get_iterator(inputs, num_workers, batch_size, preprocess_params, forward_params, postprocess_params)
        from torch.utils.data import DataLoader
        from transformers.pipelines.pt_utils import PipelineDataset, PipelineIterator

        if isinstance(inputs, (list, tuple, torch.utils.data.Dataset)) and hasattr(inputs, "__len__"):
            dataset = PipelineDataset(inputs, self.preprocess, preprocess_params)
        else:
            num_workers = min(num_workers, 1)  # an iterable cannot be split between workers
            dataset = PipelineIterator(inputs, self.preprocess, preprocess_params)
        dataloader = DataLoader(dataset, num_workers=num_workers, batch_size=batch_size, collate_fn=_collate_samples)
        model_iterator = PipelineIterator(dataloader, self.forward, forward_params, loader_batch_size=batch_size)
        return PipelineIterator(model_iterator, self.postprocess, postprocess_params)

    # ------------------------------------------------------------------ steps
    def preprocess(
        self,
        sample: dict[str, Any],
        apex_method: str = "max_difference",
        max_frames: int = DEFAULT_MAX_FRAMES,
        max_clip_frames: int = DEFAULT_MAX_CLIP_FRAMES,
    ) -> dict[str, Any]:
        sample = self._normalize_sample(sample)  # streamed samples arrive unchecked
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
        if getattr(self.image_processor, "align_faces", False):
            # Frames of faces: is the apex (and offset) the onset's person? (an AmbiguousInputWarning if not)
            from .frames import load_triplet
            from .identity import warn_if_not_the_same_person

            warn_if_not_the_same_person(load_triplet(frames), landmark_model_path=self.image_processor.landmark_model_path)
        return {
            "pixel_values": torch.from_numpy(np.ascontiguousarray(motion.pixel_values[None])),
            "motion": motion,
            "key_frames": key_frames,
        }

    def _forward(self, model_inputs: dict[str, Any]) -> dict[str, Any]:
        pixel_values = model_inputs["pixel_values"].to(dtype=self.model.dtype)
        outputs = self.model(pixel_values=pixel_values)
        # Per-sample fields only (B first): transformers un-batches every field along dim 0.
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
            "phase_fusion_weights": model_outputs["phase_fusion_weights"][0].float().mean(dim=1).cpu().numpy(),
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


__all__ = ["TASK", "MicroExpressionRecognitionPipeline", "Predictions"]
