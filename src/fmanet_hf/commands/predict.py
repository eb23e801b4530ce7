"""``fmanet-hf predict``: classify frame triplets, a video with key-frame indices, or the
built-in SynthME examples, with the bundled model or a saved one.

    fmanet-hf predict onset.jpg apex.jpg offset.jpg [--figure why.png] [--json]
    fmanet-hf predict --video clip.mp4 --onset 0 --offset 15 [--apex 9]
    fmanet-hf predict --example
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from ..errors import FrameCountError, KeyFrameError, OutputPathError
from . import ranges
from .common_flags import DEFAULT_CACHE, add_device_argument, add_face_backend_argument, folder_argument
from .output import report


def example_clips(cache_dir: Path) -> list[dict]:
    """The built-in example clips (`fmanet_hf.data.synthetic.examples`: one per class for each
    of the two people kept apart from training) as loader records."""
    from ..data.synthetic.examples import example_dataset

    dataset = example_dataset(cache_dir)
    return [dataset[i] for i in range(len(dataset))]


def predict_samples(args: argparse.Namespace) -> list[dict]:
    """The samples `predict` was asked for: {"name", "input" (pipeline sample), "true"}."""
    if args.example:
        if args.frames or args.video:
            raise FrameCountError("--example classifies the built-in clips; give no frame files or --video with it.")
        records = example_clips(Path(args.cache_dir))
        return [
            {
                "name": f"{r['sample_id']} (true: {r['label']})",
                "input": {"onset": r["onset_path"], "apex": r["apex_path"], "offset": r["offset_path"]},
                "true": r["label"],
            }
            for r in records
        ]
    if args.video:
        if args.frames:
            raise FrameCountError("Give either --video with --onset/--offset, or three frame files, not both.")
        if args.onset is None or args.offset is None:
            raise KeyFrameError("--video needs --onset and --offset (0-based frame indices; --apex is optional).")
        indices = f"onset {args.onset}, apex {args.apex if args.apex is not None else 'estimated'}, offset {args.offset}"
        return [
            {
                "name": f"{os.path.basename(args.video)} ({indices})",
                "input": {"video": args.video, "onset": args.onset, "apex": args.apex, "offset": args.offset},
                "true": None,
            }
        ]
    if any(v is not None for v in (args.onset, args.apex, args.offset)):
        raise KeyFrameError("--onset/--apex/--offset are frame indices of a --video; give the video too.")
    if len(args.frames) != 3:
        raise FrameCountError(
            f"predict needs 3 frame files (onset apex offset), --video FILE --onset I --offset K, or --example; "
            f"got {len(args.frames)} file(s)."
        )
    apex_name = os.path.join(os.path.basename(os.path.dirname(os.path.abspath(args.frames[1]))), os.path.basename(args.frames[1]))
    return [{"name": apex_name, "input": dict(zip(("onset", "apex", "offset"), args.frames)), "true": None}]


def format_table(rows: list[list[Any]], header: list[str]) -> list[str]:
    """The lines of ``rows`` under ``header`` in left-aligned columns."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths))
    return [line, "-" * len(line), *("  ".join(str(c).ljust(w) for c, w in zip(row, widths)) for row in rows)]


def run(args: argparse.Namespace) -> int:
    """Classify the samples, print a table (or JSON) and write the figures asked for."""
    from ..devices import resolve_device
    from ..errors import FMANetWarning
    from ..pipeline import TASK, MicroExpressionRecognitionPipeline
    from ..pretrained import load_model

    samples = predict_samples(args)
    device = resolve_device(args.device)  # before the model loads: an unavailable device fails fast
    if args.figure is not None:
        check_figure_path(args)  # before the work, so a bad path costs nothing
    model, processor, trained = load_model(args.model)
    if args.face_backend:
        processor.face_backend = args.face_backend  # the model's saved processor, another face backend
        processor.validate_settings()
    if not trained:
        print(
            "NOTE: no trained model given and none bundled with this install: this is an UNTRAINED FMANet "
            "(random weights, seed 0). Its scores mean nothing; they show that the pipeline runs.",
            file=sys.stderr,
        )
    classify = MicroExpressionRecognitionPipeline(model=model, image_processor=processor, task=TASK, device=device)
    started = time.perf_counter()
    with warnings.catch_warnings():
        # Each result carries its input's FMANetWarnings; printed below as one line each.
        warnings.simplefilter("ignore", FMANetWarning)
        outputs = [
            classify(sample["input"], return_motion=True, apex_method=args.apex_method) for sample in samples
        ]
    for sample, output in zip(samples, outputs):
        for note in output["warnings"]:
            print(f"warning: {sample['name']}: {note}", file=sys.stderr)
    elapsed = time.perf_counter() - started
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    results = []
    for sample, output in zip(samples, outputs):
        ranked = output["predictions"] if args.top_k is None else output["predictions"][: args.top_k]
        result = {
            "sample": sample["name"],
            "label": ranked[0]["label"],
            "score": ranked[0]["score"],
            "top_k": ranked,
            "scores": output["probabilities"],
            "warnings": output["warnings"],
        }
        if sample["true"] is not None:
            result["true"] = sample["true"]
        if "key_frames" in output:
            result["key_frames"] = output["key_frames"]
        results.append(result)

    # The figures come after the predictions: a figure that cannot be written must not lose them.
    figures, figure_error = [], None
    if args.figure:
        from ..visualization import numbered_paths, save_prediction_figure

        model_name = args.model or ("bundled synthme-megc3 (trained on SynthME only)" if trained else "untrained FMANet")
        note = None if args.model or not trained else "bundled model trained on synthetic SynthME only: it never saw a real micro-expression"
        for path, sample, output in zip(numbered_paths(args.figure, len(samples)), samples, outputs):
            try:
                save_prediction_figure(
                    path,
                    output["motion"],
                    output["probabilities"],
                    attention_map=output["attention_map"],
                    trained=trained,
                    model_name=model_name,
                    title_note=note,
                    sample_name=sample["name"],
                    key_frames=output.get("key_frames"),
                    true_label=sample["true"],
                    processor_settings=processor.output_settings(),
                )
            except OSError as error:
                figure_error = f"--figure: cannot write {str(path)!r} ({error.strerror or error}); the predictions above are complete."
                break
            figures.append(str(path))

    if args.top_k is None:
        header = ["sample", "predicted", *labels]
        rows = [[r["sample"], r["label"], *(f"{r['scores'][label]:.3f}" for label in labels)] for r in results]
    else:
        header = ["sample", "predicted", f"top {args.top_k}"]
        rows = [[r["sample"], r["label"], ", ".join(f"{p['label']} {p['score']:.3f}" for p in r["top_k"])] for r in results]
    details = format_table(rows, header)
    details += [
        f"{r['sample']}: apex estimated at frame {r['key_frames']['apex']} ({args.apex_method})."
        for r in results
        if r.get("key_frames", {}).get("apex_estimated")
    ]
    if args.quiet:  # one result line per sample
        lines = [f"{r['sample']}: {r['label']} {r['score']:.3f}" for r in results]
    else:
        lines = ["", f"{len(results)} sample(s) in {elapsed:.2f} s ({'trained' if trained else 'UNTRAINED'} model)."]
    lines += [f"figure: {path}" for path in figures]
    report(args, {"trained_model": trained, "results": results, "figures": figures}, lines, details=details)
    if figure_error:
        raise OutputPathError(figure_error)
    return 0


def check_figure_path(args: argparse.Namespace) -> None:
    """Refuse a ``--figure`` that is empty, a folder, under a file, or one of the inputs."""
    from ..output_paths import check_folder_path, checked_output_path

    inputs = {"--video": args.video, "--model": args.model, **{f"frame {i + 1}": f for i, f in enumerate(args.frames)}}
    figure = Path(args.figure).expanduser()
    if args.figure.strip() and figure.is_dir():
        raise OutputPathError(f"--figure {args.figure!r} is a folder; give a PNG file name, e.g. {str(figure / 'prediction.png')!r}.")
    checked_output_path(args.figure, flag="--figure", inputs=inputs)
    check_folder_path(figure.parent, flag="the folder of --figure")  # created when missing


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``predict`` to the ``fmanet-hf`` subcommands; returns its parser."""
    predict = subparsers.add_parser(
        "predict", help="classify an onset/apex/offset triplet, or a video with key-frame indices",
        description="Classify a micro-expression from three frame files (onset apex offset), from a video with "
        "0-based key-frame indices (--video FILE --onset I [--apex J] --offset K; without --apex it is estimated), "
        "or the built-in SynthME examples (--example). Default model: the bundled SynthME checkpoint.",
    )
    predict.add_argument("frames", nargs="*", help="onset, apex and offset image files")
    predict.add_argument("--example", action="store_true", help="classify one built-in SynthME clip per class")
    predict.add_argument("--video", help="a video file (mp4, avi...) instead of frame files")
    predict.add_argument("--onset", type=ranges.INDEX, help="onset frame index in --video (0-based)")
    predict.add_argument("--apex", type=ranges.INDEX, help="apex frame index in --video (0-based; default: estimated)")
    predict.add_argument("--offset", type=ranges.INDEX, help="offset frame index in --video (0-based)")
    predict.add_argument(
        "--apex-method", choices=("max_difference", "middle"), default="max_difference",
        help="apex estimate when --apex is not given (see docs/inference.md)",
    )
    predict.add_argument("--top-k", type=ranges.COUNT, help="show only the k most probable classes")
    predict.add_argument("--figure", help="write a PNG figure (frames, flows, MM-COF, attention, probabilities)")
    predict.add_argument(
        "--model", metavar="FOLDER_OR_HUB_ID",
        help="a saved FMANet folder, or a Hugging Face Hub repo id (user/name; downloaded once, then cached; "
        "offline: only if already cached). Default: the bundled model",
    )
    add_face_backend_argument(predict)
    predict.add_argument("--cache-dir", type=folder_argument, default=str(DEFAULT_CACHE), help="where the example clips are kept")
    add_device_argument(predict, help="where the model runs: auto (default: CUDA, else MPS, else CPU), cpu, cuda or mps")
    predict.set_defaults(handler=run)
    return predict


__all__ = ["example_clips", "format_table", "predict_samples", "register", "run"]
