"""The Gradio app: classify a micro-expression from three frames or a short video.

`build_demo` returns the `gradio.Blocks` (the Hugging Face Space runs the same object);
`launch` builds and serves it. Everything runs offline: analytics are off, no model or
font is fetched, the examples are rendered locally from SynthME at first launch.

Processing events share one queue (``concurrency_id``) limited to
``concurrency_limit`` jobs at a time: TV-L1 already keeps a CPU core busy, and dlib's
face detector object must not be used by two threads at once.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

# Gradio reads these when it is imported: no usage analytics, no version check, no telemetry.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import numpy as np

from ..errors import FMANetError, WebMWriteError
from .errors import DemoDependencyError, FrameTooLargeError, MissingFrameError, VideoTooLongError, VideoTooShortError
from .models import DEFAULT_MODEL_KEY, LoadedModel, ModelRegistry, discover_models
from .panels import aligned_crops_strip, attention_overlay, face_panel, flow_panel, mmcof_panel, shared_flow_scale

logger = logging.getLogger(__name__)

TITLE = "FMANet micro-expression recognition"
#: Upload limit per file (gradio refuses larger uploads before they reach Python).
DEFAULT_MAX_FILE_SIZE = "20mb"
#: Processing jobs run at once (see the module docstring); the rest wait in the queue.
DEFAULT_CONCURRENCY_LIMIT = 1
#: Visitors waiting beyond this get "queue full" instead of an endless wait.
DEFAULT_QUEUE_SIZE = 64
CONCURRENCY_ID = "fmanet-processing"
#: Frames above this many pixels are refused (a decoded 100-megapixel upload is 300 MB).
MAX_FRAME_PIXELS = 40_000_000
#: Frames whose long side exceeds this are scaled down (all three alike) before processing:
#: the face is cropped to 128 px anyway, and dlib's detector is slow on phone-camera photos.
MAX_FRAME_SIDE = 1600
#: Most frames a video may have: a micro-expression lasts under half a second.
MAX_VIDEO_FRAMES = 300
#: Most bytes of decoded RGB frames the apex estimate may hold for one video.
MAX_VIDEO_DECODED_BYTES = 600_000_000
MIN_VIDEO_FRAMES = 3
ACCEPTED_VIDEO_TYPES = [".mp4", ".webm", ".avi", ".mov", ".mkv", ".m4v"]

INTRO_MARKDOWN = f"""# {TITLE}
FMANet looks at the **motion** of a face between three moments of a micro-expression:
onset (neutral), apex (strongest) and offset (relaxed again). Upload three frames, or a
short video and pick the three frames, or click one of the synthetic examples below.
"""

LIMITS_MARKDOWN_TEMPLATE = """### What this can and cannot tell you
- **What it measures:** facial motion between the three frames (optical flow), after aligning
  the face and removing head motion, and which of the model's classes that motion pattern
  resembles most.
- **The model:** {model_sentence}
- **Not a lie detector.** A micro-expression class is not what someone truly feels, thinks or
  intends, and it says nothing about honesty, character or guilt. Do not use this to make
  decisions about people.
- **Other motion counts too:** blinks, speech, head turns the alignment could not remove, and
  lighting changes all show up as flow. Look at the flow maps to see what the model was given.
- **Faces:** one frontal face per frame (the largest is used), found by dlib on the onset
  frame; frames must come from one camera at one size. Frames with a long side over
  {max_side} px are scaled down first.
- Nothing you upload leaves this machine; the app makes no network requests.
"""

PANELS_MARKDOWN = """**Flow maps** (face crop, head motion removed): hue = direction of motion, brightness =
its size; both phases share one brightness scale (given above). **MM-COF**: the fixed combination of the two
phases after magnitude modulation (what a model without learnable fusion would see). **Motion attention**:
where the model's attention block looks (bright = more), over the onset face."""

TRAINED_DEFAULT_SENTENCE = (
    "the default FMANet was trained on **SynthME**, synthetic micro-expressions rendered on a few "
    "photographs. It has never seen a real micro-expression, so its scores on real faces are not validated."
)
UNTRAINED_DEFAULT_SENTENCE = (
    "no trained checkpoint is bundled with this install, so the default model is an **untrained** FMANet "
    "(random weights): its scores are meaningless and only show that the pipeline runs. "
    "Start the demo with `--model FOLDER` to use a trained export."
)


def _import_gradio():
    try:
        import gradio as gr
    except ImportError:
        raise DemoDependencyError(
            "The demo needs Gradio. Install it with `pip install 'fmanet-hf[demo]'` (or `pip install gradio`)."
        ) from None
    return gr


# --------------------------------------------------------------------------------------
# Processing (no gradio here, so tests and the load script can call it directly)
# --------------------------------------------------------------------------------------
@dataclass
class DemoResult:
    """Everything one classification shows.

    Attributes:
        probabilities: class name -> probability.
        crops, onset_apex_flow, apex_offset_flow, mmcof, attention: RGB uint8 panels.
        summary: Markdown describing the result and the model.
    """

    probabilities: dict[str, float]
    crops: np.ndarray
    onset_apex_flow: np.ndarray
    apex_offset_flow: np.ndarray
    mmcof: np.ndarray
    attention: np.ndarray
    summary: str


def _frame_size(frame: Any) -> tuple[int, int]:
    """(height, width) of a PIL image or numpy array."""
    if hasattr(frame, "size") and not isinstance(frame, np.ndarray):
        width, height = frame.size
        return height, width
    array = np.asarray(frame)
    return int(array.shape[0]), int(array.shape[1])


def _resize_frame(frame: Any, height: int, width: int) -> Any:
    import cv2
    from PIL import Image

    if isinstance(frame, Image.Image):
        return frame.resize((width, height), Image.Resampling.LANCZOS)
    return cv2.resize(np.asarray(frame), (width, height), interpolation=cv2.INTER_AREA)


def prepare_frames(onset: Any, apex: Any, offset: Any) -> tuple[list[Any], str | None]:
    """Check the uploaded frames and scale large ones down.

    Sizes must already match (mismatches are left to the processor, whose message names
    every size); scaling is done only when all three agree.

    Returns:
        (the three frames, a note on scaling or None).

    Raises:
        MissingFrameError: a frame is missing. FrameTooLargeError: too many pixels.
    """
    frames = [onset, apex, offset]
    missing = [name for name, frame in zip(("onset", "apex", "offset"), frames) if frame is None]
    if missing:
        raise MissingFrameError(
            f"Upload all three frames: the {', '.join(missing)} image is missing. "
            "Or click one of the examples below to fill all three."
        )
    sizes = [_frame_size(frame) for frame in frames]
    for name, (height, width) in zip(("onset", "apex", "offset"), sizes):
        if height * width > MAX_FRAME_PIXELS:
            raise FrameTooLargeError(
                f"The {name} frame is {width}x{height} pixels, more than the demo accepts "
                f"({MAX_FRAME_PIXELS / 1e6:.0f} megapixels). Crop it around the face or scale it down first."
            )
    height, width = sizes[0]
    if len(set(sizes)) == 1 and max(height, width) > MAX_FRAME_SIDE:
        scale = MAX_FRAME_SIDE / max(height, width)
        new_height, new_width = max(1, round(height * scale)), max(1, round(width * scale))
        frames = [_resize_frame(frame, new_height, new_width) for frame in frames]
        return frames, f"Frames were scaled from {width}x{height} to {new_width}x{new_height} pixels first."
    return frames, None


def _format_probabilities(probabilities: dict[str, float]) -> str:
    best = max(probabilities, key=probabilities.get)
    return f"**{best}** ({probabilities[best]:.0%})"


def classify_frames(loaded: LoadedModel, frames: Sequence[Any], notes: Iterable[str] = ()) -> DemoResult:
    """Run the processor and the model on one (onset, apex, offset) triplet and draw the panels.

    Raises:
        FMANetError: the processor's input errors (no face, mismatched sizes...).
    """
    import torch

    sample = loaded.processor.process_triplet(*frames)
    pixel_values = torch.from_numpy(sample.pixel_values).unsqueeze(0).to(loaded.model.device, loaded.model.dtype)
    with torch.no_grad():
        outputs = loaded.model(pixel_values=pixel_values)
    scores = outputs.logits.float().softmax(-1)[0].cpu().tolist()
    id2label = loaded.model.config.id2label
    probabilities = {str(id2label[index]): float(score) for index, score in enumerate(scores)}

    scale_px = shared_flow_scale(sample.onset_apex_flow, sample.apex_offset_flow)
    attention = outputs.attention_map[0, 0].float().cpu().numpy() if outputs.attention_map is not None else None
    if attention is not None:
        attention_image, low, high = attention_overlay(attention, sample.aligned_frames[0])
        attention_note = f"attention colours stretched from {low:.2f} (dark) to {high:.2f} (bright) on a 0-1 scale"
    else:
        attention_image = face_panel(sample.aligned_frames[0])
        attention_note = "this model has no motion-attention block (ablation), so the onset crop is shown"

    peak_onset_apex = float(np.percentile(np.linalg.norm(sample.onset_apex_flow, axis=-1), 99))
    peak_apex_offset = float(np.percentile(np.linalg.norm(sample.apex_offset_flow, axis=-1), 99))
    lines = [
        f"Prediction: {_format_probabilities(probabilities)} from {loaded.description}.",
    ]
    if not loaded.trained:
        lines.append("**These scores are meaningless: the model is untrained.**")
    face_line = (
        f"Face: found in the onset frame ({sample.num_faces} face{'s' if sample.num_faces != 1 else ''}; "
        "the largest was used)."
        if sample.num_faces
        else "Face: alignment is off for this model; the whole frame was used."
    )
    lines += [
        face_line,
        f"Motion (99th percentile, pixels of the {sample.aligned_frames.shape[1]}-px crop): "
        f"onset→apex {peak_onset_apex:.2f}, apex→offset {peak_apex_offset:.2f}. "
        f"Flow maps: hue = direction, full brightness = {scale_px:.2f} px; {attention_note}.",
        *notes,
    ]
    return DemoResult(
        probabilities=probabilities,
        crops=aligned_crops_strip(sample.aligned_frames),
        onset_apex_flow=flow_panel(sample.onset_apex_flow, scale_px),
        apex_offset_flow=flow_panel(sample.apex_offset_flow, scale_px),
        mmcof=mmcof_panel(sample.mmcof),
        attention=attention_image,
        summary="\n\n".join(lines),
    )


@dataclass(frozen=True)
class VideoScan:
    """What reading a video found: its length and an apex estimate.

    Attributes:
        num_frames: decoded frames.
        onset, apex, offset: suggested 0-based key frames (first, estimated apex, last).
        fps: frames per second from the container (0.0 if unknown).
    """

    num_frames: int
    onset: int
    apex: int
    offset: int
    fps: float


def _count_frames(path: str, limit: int) -> int:
    """Frames decodable from ``path``, counting at most ``limit + 1`` (container counts lie)."""
    import cv2

    capture = cv2.VideoCapture(path)
    count = 0
    try:
        while count <= limit and capture.grab():
            count += 1
    finally:
        capture.release()
    return count


def scan_video(path: str, processor: Any) -> VideoScan:
    """Count a video's frames and estimate its apex between the first and last frame.

    The apex estimate is `fmanet_hf.video.read_key_frames` (the frame farthest from both
    onset and offset in grey level, on the face crop of ``processor``).

    Raises:
        VideoReadError: undecodable file. VideoTooShortError / VideoTooLongError: length
        limits. FaceNotFoundError: no face in the first frame.
    """
    from ..video import probe_video, read_key_frames

    info = probe_video(path)
    num_frames = _count_frames(path, MAX_VIDEO_FRAMES)
    if num_frames < MIN_VIDEO_FRAMES:
        raise VideoTooShortError(
            f"The video has {num_frames} decodable frame{'s' if num_frames != 1 else ''}; a sample needs at least "
            f"{MIN_VIDEO_FRAMES} (onset, apex, offset). Upload a longer clip, or three frames in the other tab."
        )
    if num_frames > MAX_VIDEO_FRAMES:
        raise VideoTooLongError(
            f"The video has more than {MAX_VIDEO_FRAMES} frames. A micro-expression lasts under half a second: "
            "trim the clip around it (e.g. `ffmpeg -ss START -t 1 -i IN.mp4 OUT.mp4`) and upload that."
        )
    if num_frames * max(info.width, 1) * max(info.height, 1) * 3 > MAX_VIDEO_DECODED_BYTES:
        raise VideoTooLongError(
            f"{num_frames} frames of {info.width}x{info.height} pixels are too much to hold for the apex estimate. "
            "Trim the clip or scale it down (e.g. to 640 px wide) and upload it again."
        )
    key_frames = read_key_frames(
        path, 0, num_frames - 1, apex=None, processor=processor, max_clip_frames=MAX_VIDEO_FRAMES
    )
    return VideoScan(num_frames, key_frames.onset, key_frames.apex, key_frames.offset, info.fps)


def read_video_triplet(path: str, onset: int, apex: int, offset: int) -> list[np.ndarray]:
    """The onset, apex and offset frames (RGB) at the given 0-based indices.

    Raises:
        KeyFrameError: indices out of order or out of range. VideoReadError: bad file.
    """
    from ..video import read_key_frames

    key_frames = read_key_frames(path, int(onset), int(offset), apex=int(apex), max_frames=MAX_VIDEO_FRAMES + 1)
    return list(key_frames.frames)


# --------------------------------------------------------------------------------------
# Examples
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Example:
    """One SynthME clip offered as an example.

    Attributes:
        label: its true class. onset, apex, offset: frame files. video: the clip as a
        video file, or None.
    """

    label: str
    onset: str
    apex: str
    offset: str
    video: str | None


def default_cache_dir() -> Path:
    """``$FMANET_CACHE`` or ``~/.cache/fmanet-hf`` (the same folder `fmanet-hf predict` uses)."""
    return Path(os.environ.get("FMANET_CACHE", Path.home() / ".cache" / "fmanet-hf"))


def _write_example_video(clip_dir: Path, frame_paths: list[str], fps: float = 10.0) -> str | None:
    """The clip's frames as a WebM (VP8) video next to them; None (logged) if OpenCV cannot write one."""
    import cv2

    from .webm import write_webm

    target = clip_dir / "clip.webm"
    if target.is_file() and target.stat().st_size > 0:
        return str(target)
    try:
        write_webm([cv2.imread(frame_path) for frame_path in frame_paths], target, fps=fps)
    except WebMWriteError as error:
        logger.warning("The example %s is offered without a video: %s", clip_dir.name, error)
        return None
    return str(target)


def prepare_examples(cache_dir: str | os.PathLike | None = None) -> list[Example]:
    """The built-in example clips (rendered once into ``cache_dir``, then reused), with a video each.

    The same clips as `fmanet-hf predict --example` (`fmanet_hf.data.synthetic.examples`: the two
    people kept apart from training, a seed no training set uses), sharing one copy.
    """
    from ..data.synthetic.examples import example_dataset

    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    dataset = example_dataset(root)
    examples = []
    for index in range(len(dataset)):
        record = dataset[index]
        clip_dir = Path(record["clip_dir"])
        frame_paths = sorted(
            (str(p) for p in clip_dir.glob("img*.jpg")), key=lambda p: int(Path(p).stem[3:])
        )
        video = _write_example_video(clip_dir, frame_paths) if len(frame_paths) >= MIN_VIDEO_FRAMES else None
        examples.append(Example(record["label"], record["onset_path"], record["apex_path"], record["offset_path"], video))
    return sorted(examples, key=lambda example: example.label)


# --------------------------------------------------------------------------------------
# The Blocks
# --------------------------------------------------------------------------------------
def _theme(gr):
    """Gradio's default look with system fonts only: nothing is fetched from a font CDN."""
    system_sans = ["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "Arial", "sans-serif"]
    system_mono = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]
    return gr.themes.Default(primary_hue="indigo", font=system_sans, font_mono=system_mono)


CSS = """
.gradio-container {max-width: 1180px !important; margin: auto;}
#crops img, #crops {max-height: 280px;}
footer {display: none !important;}
"""


def build_demo(
    model_dirs: Iterable[str | os.PathLike] | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    examples: bool = True,
    concurrency_limit: int = DEFAULT_CONCURRENCY_LIMIT,
    queue_size: int = DEFAULT_QUEUE_SIZE,
    device: Any = None,
    face_backend: str | None = None,
):
    """Build the demo (a `gradio.Blocks`, queue configured; serve it with `launch_blocks`).

    Args:
        model_dirs: folders holding exported FMANet models (each listed in the selector).
        face_backend: ``"dlib"`` or ``"mediapipe"`` for every model's processor (default: the
            one each model was saved with).
        cache_dir: where the SynthME examples are rendered (default `default_cache_dir()`).
        examples: render and offer the SynthME examples (about 10-20 s on the first launch).
        concurrency_limit: processing jobs at once; the others wait in the queue.
        queue_size: most waiting jobs.
        device: where the models run (a `torch.device` or a name of `fmanet_hf.devices.resolve_device`;
            default: the CPU).

    Raises:
        DemoDependencyError: gradio is not installed.
        DeviceUnavailableError: ``device`` is not available.
    """
    gr = _import_gradio()
    registry = ModelRegistry(discover_models(model_dirs), device=device, face_backend=face_backend)
    default_model = registry.get(DEFAULT_MODEL_KEY)  # loaded now, so the first visitor does not wait
    model_sentence = TRAINED_DEFAULT_SENTENCE if default_model.trained else UNTRAINED_DEFAULT_SENTENCE
    example_clips = prepare_examples(cache_dir) if examples else []
    error_lock = threading.Lock()  # keeps log lines of simultaneous failures apart

    def run_safely(action, *args):
        """Turn deliberate errors into an in-page message; log the rest without showing a trace."""
        try:
            return action(*args)
        except FMANetError as error:
            logger.info("Refused input: %s", error)
            raise gr.Error(str(error), title="Cannot use this input", print_exception=False) from None
        except gr.Error:
            raise
        except Exception:
            with error_lock:
                logger.exception("Unexpected failure in the demo")
            raise gr.Error(
                "Something unexpected went wrong while processing this input (details are in the server log). "
                "Try other frames; if it keeps happening, please report it.",
                title="Internal error",
                print_exception=False,
            ) from None

    def result_outputs(result: DemoResult):
        return (
            result.probabilities,
            result.crops,
            result.onset_apex_flow,
            result.apex_offset_flow,
            result.mmcof,
            result.attention,
            result.summary,
        )

    def classify_frames_event(model_key, onset, apex, offset):
        def action():
            frames, note = prepare_frames(onset, apex, offset)
            return result_outputs(classify_frames(registry.get(model_key), frames, [note] if note else []))

        return run_safely(action)

    def read_video_event(model_key, video_path):
        def action():
            if not video_path:
                raise MissingFrameError("Upload a video first (mp4, webm, avi, mov or mkv).")
            scan = scan_video(video_path, registry.get(model_key).processor)
            last = scan.num_frames - 1
            fps = f" at {scan.fps:.0f} fps" if scan.fps > 0 else ""
            status = (
                f"{scan.num_frames} frames{fps}. Suggested key frames: onset {scan.onset}, apex {scan.apex} "
                f"(estimated: the frame that differs most from both ends), offset {scan.offset}. "
                "Adjust the sliders if needed, then press **Classify video**."
            )
            return (
                gr.Slider(minimum=0, maximum=last, value=scan.onset, step=1),
                gr.Slider(minimum=0, maximum=last, value=scan.apex, step=1),
                gr.Slider(minimum=0, maximum=last, value=scan.offset, step=1),
                status,
            )

        return run_safely(action)

    def classify_video_event(model_key, video_path, onset, apex, offset):
        def action():
            if not video_path:
                raise MissingFrameError("Upload a video first, then press **Read video** to pick the key frames.")
            frames = read_video_triplet(video_path, onset, apex, offset)
            note = f"Video frames used: onset {int(onset)}, apex {int(apex)}, offset {int(offset)} (0-based)."
            frames, scale_note = prepare_frames(*frames)
            notes = [note] + ([scale_note] if scale_note else [])
            return result_outputs(classify_frames(registry.get(model_key), frames, notes))

        return run_safely(action)

    with gr.Blocks(title=TITLE, analytics_enabled=False) as demo:
        gr.Markdown(INTRO_MARKDOWN)
        model_selector = gr.Dropdown(
            choices=registry.dropdown_choices(),
            value=DEFAULT_MODEL_KEY,
            label="Model",
            info="The default model, and any exported FMANet folders this app was started with (--model).",
            elem_id="model-selector",
        )
        with gr.Tabs():
            with gr.Tab("Three frames", id="frames-tab"):
                with gr.Row():
                    image_options = dict(
                        type="pil", image_mode=None, sources=["upload", "clipboard"], height=240, buttons=["fullscreen"]
                    )
                    onset_image = gr.Image(label="Onset (neutral)", elem_id="onset-input", **image_options)
                    apex_image = gr.Image(label="Apex (strongest)", elem_id="apex-input", **image_options)
                    offset_image = gr.Image(label="Offset (relaxed)", elem_id="offset-input", **image_options)
                classify_frames_button = gr.Button("Classify frames", variant="primary", elem_id="classify-frames")
                if example_clips:
                    gr.Examples(
                        examples=[[e.onset, e.apex, e.offset] for e in example_clips],
                        inputs=[onset_image, apex_image, offset_image],
                        example_labels=[f"SynthME example: {e.label}" for e in example_clips],
                        label="Synthetic examples (SynthME, rendered on this machine); click one, then Classify",
                    )
            with gr.Tab("Video", id="video-tab"):
                with gr.Row():
                    video_input = gr.Video(
                        label="Short video of one face", sources=["upload"], format=None, height=300, elem_id="video-input"
                    )
                    with gr.Column():
                        read_video_button = gr.Button("Read video (estimate the apex)", elem_id="read-video")
                        onset_slider = gr.Slider(0, 10, value=0, step=1, label="Onset frame (0-based)")
                        apex_slider = gr.Slider(0, 10, value=5, step=1, label="Apex frame")
                        offset_slider = gr.Slider(0, 10, value=10, step=1, label="Offset frame")
                        video_status = gr.Markdown("Upload a video, then press **Read video**.", elem_id="video-status")
                classify_video_button = gr.Button("Classify video", variant="primary", elem_id="classify-video")
                video_examples = [[e.video] for e in example_clips if e.video]
                if video_examples:
                    gr.Examples(
                        examples=video_examples,
                        inputs=[video_input],
                        example_labels=[f"SynthME clip: {e.label}" for e in example_clips if e.video],
                        label="Synthetic example videos (11 frames each)",
                    )

        with gr.Row(equal_height=False):
            probabilities = gr.Label(label="Class probabilities", num_top_classes=10, elem_id="probabilities", scale=1)
            summary = gr.Markdown("Results appear here.", elem_id="summary")
        crops = gr.Image(
            label="Aligned face crops: onset | apex | offset", format="png", interactive=False, elem_id="crops",
            height=280, buttons=["download", "fullscreen"],
        )
        with gr.Row():
            panel_options = dict(format="png", interactive=False, height=256, buttons=["download", "fullscreen"])
            onset_apex_flow = gr.Image(label="Flow onset→apex", elem_id="flow-onset-apex", **panel_options)
            apex_offset_flow = gr.Image(label="Flow apex→offset", elem_id="flow-apex-offset", **panel_options)
            mmcof = gr.Image(label="MM-COF map", elem_id="mmcof", **panel_options)
            attention = gr.Image(label="Motion attention", elem_id="attention", **panel_options)
        gr.Markdown(PANELS_MARKDOWN, elem_id="panels-legend")
        gr.Markdown(LIMITS_MARKDOWN_TEMPLATE.format(model_sentence=model_sentence, max_side=MAX_FRAME_SIDE), elem_id="limits")

        outputs = [probabilities, crops, onset_apex_flow, apex_offset_flow, mmcof, attention, summary]
        event_options = dict(concurrency_id=CONCURRENCY_ID, concurrency_limit=concurrency_limit)
        classify_frames_button.click(
            classify_frames_event,
            inputs=[model_selector, onset_image, apex_image, offset_image],
            outputs=outputs,
            api_name="classify_frames",
            **event_options,
        )
        read_video_button.click(
            read_video_event,
            inputs=[model_selector, video_input],
            outputs=[onset_slider, apex_slider, offset_slider, video_status],
            api_name="read_video",
            **event_options,
        )
        classify_video_button.click(
            classify_video_event,
            inputs=[model_selector, video_input, onset_slider, apex_slider, offset_slider],
            outputs=outputs,
            api_name="classify_video",
            **event_options,
        )
    demo.queue(default_concurrency_limit=concurrency_limit, max_size=queue_size)
    return demo


def launch_blocks(
    demo,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    max_file_size: str | int = DEFAULT_MAX_FILE_SIZE,
    prevent_thread_lock: bool = False,
    quiet: bool = False,
):
    """Serve an already built demo offline (no share link, no SSR node server, system fonts)."""
    gr = _import_gradio()
    demo.launch(
        server_name=host,
        server_port=port,
        share=False,
        max_file_size=max_file_size,
        ssr_mode=False,
        mcp_server=False,
        prevent_thread_lock=prevent_thread_lock,
        quiet=quiet,
        show_error=True,
        footer_links=[],
        theme=_theme(gr),
        css=CSS,
    )
    return demo


def launch(
    model_dirs: Iterable[str | os.PathLike] | None = None,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    cache_dir: str | os.PathLike | None = None,
    examples: bool = True,
    concurrency_limit: int = DEFAULT_CONCURRENCY_LIMIT,
    max_file_size: str | int = DEFAULT_MAX_FILE_SIZE,
    prevent_thread_lock: bool = False,
    quiet: bool = False,
    device: Any = None,
    face_backend: str | None = None,
):
    """Build the demo and serve it on ``host:port`` (blocks unless ``prevent_thread_lock``);
    the models run on ``device`` (see `build_demo`).

    Returns:
        The running `gradio.Blocks` (``demo.local_url`` is its address; ``demo.close()`` stops it).
    """
    demo = build_demo(
        model_dirs, cache_dir=cache_dir, examples=examples, concurrency_limit=concurrency_limit, device=device,
        face_backend=face_backend,
    )
    return launch_blocks(
        demo, host=host, port=port, max_file_size=max_file_size, prevent_thread_lock=prevent_thread_lock, quiet=quiet
    )
