"""The ``fmanet-hf`` command.

Subcommands: ``predict`` (classify frame triplets, or the built-in SynthME example),
``synth`` (generate the SynthME benchmark), ``prepare`` (cache a dataset's model inputs),
``baseline`` (a shallow MM-COF reference under LOSO), from ``training.commands``:
``train``, ``loso`` and ``ablate``, and from ``hub.commands``: ``export`` and ``push``.
Errors of the FMANetError family print one clear line and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .data.registry import DATASET_NAMES, get_dataset_loader, load_dataset_by_name
from .errors import FrameCountError, KeyFrameError

DEFAULT_CACHE = Path(os.environ.get("FMANET_CACHE", Path.home() / ".cache" / "fmanet-hf"))


def _load_model(model_path: str | None):
    """(model, processor, trained); safetensors only (`fmanet_hf.pretrained.load_model`)."""
    from .pretrained import load_model

    return load_model(model_path)


def _print_table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths))
    print(line)
    print("-" * len(line))
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))


def _example_clips(cache_dir: Path) -> list[dict]:
    """One SynthME clip per class (made once, then reused) as loader records."""
    from .data.synthetic import generate_synthme

    root = cache_dir / "example-synthme"
    generate_synthme(root, subjects=1, samples_per_class=1, seed=0, progress=False)
    dataset = get_dataset_loader("synthme").load(root)
    return [dataset[i] for i in range(len(dataset))]


def _predict_samples(args: argparse.Namespace) -> list[dict]:
    """The samples `predict` was asked for: {"name", "input" (pipeline sample), "true"}."""
    if args.example:
        if args.frames or args.video:
            raise FrameCountError("--example classifies the built-in clips; give no frame files or --video with it.")
        records = _example_clips(Path(args.cache_dir))
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


def cmd_predict(args: argparse.Namespace) -> int:
    from .pipeline import TASK, MicroExpressionRecognitionPipeline

    samples = _predict_samples(args)
    model, processor, trained = _load_model(args.model)
    if not trained:
        print(
            "NOTE: no trained model given and none bundled with this install: this is an UNTRAINED FMANet "
            "(random weights, seed 0). Its scores mean nothing; they show that the pipeline runs.",
            file=sys.stderr,
        )
    classify = MicroExpressionRecognitionPipeline(model=model, image_processor=processor, task=TASK, device="cpu")
    started = time.perf_counter()
    outputs = [
        classify(sample["input"], return_motion=True, apex_method=args.apex_method) for sample in samples
    ]
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
        }
        if sample["true"] is not None:
            result["true"] = sample["true"]
        if "key_frames" in output:
            result["key_frames"] = output["key_frames"]
        results.append(result)

    figures = []
    if args.figure:
        from .visualization import numbered_paths, save_prediction_figure

        model_name = args.model or ("bundled synthme-megc3 (trained on SynthME only)" if trained else "untrained FMANet")
        note = None if args.model or not trained else "bundled model trained on synthetic SynthME only: it never saw a real micro-expression"
        for path, sample, output in zip(numbered_paths(args.figure, len(samples)), samples, outputs):
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
            figures.append(str(path))

    if args.json:
        print(json.dumps({"trained_model": trained, "results": results, "figures": figures}, indent=2))
        return 0
    if args.top_k is None:
        header = ["sample", "predicted", *labels]
        rows = [[r["sample"], r["label"], *(f"{r['scores'][label]:.3f}" for label in labels)] for r in results]
    else:
        header = ["sample", "predicted", f"top {args.top_k}"]
        rows = [[r["sample"], r["label"], ", ".join(f"{p['label']} {p['score']:.3f}" for p in r["top_k"])] for r in results]
    _print_table(rows, header)
    for r in results:
        if r.get("key_frames", {}).get("apex_estimated"):
            print(f"{r['sample']}: apex estimated at frame {r['key_frames']['apex']} ({args.apex_method}).")
    print(f"\n{len(results)} sample(s) in {elapsed:.2f} s ({'trained' if trained else 'UNTRAINED'} model).")
    for path in figures:
        print(f"figure: {path}")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from .data.synthetic import generate_synthme

    info = generate_synthme(
        args.out,
        subjects=args.subjects,
        samples_per_class=args.samples_per_class,
        frames_per_clip=args.frames_per_clip,
        seed=args.seed,
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    print(f"SynthME: {info.num_clips} clips of {info.frames_per_clip} frames, {info.num_subjects} subjects -> {info.root}")
    print(f"classes: {info.class_counts}; faces: {', '.join(info.face_sources)}")
    return 0


def flow_params_argument(text: str) -> dict[str, Any]:
    """``--flow-params``: ``opencv`` (OpenCV's own TV-L1 defaults, what MER papers and runs
    recorded before the faster default ran with) or a JSON object of overrides."""
    from .flow import OPENCV_TVL1_PARAMS

    if text.strip().lower() == "opencv":
        return dict(OPENCV_TVL1_PARAMS)
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected 'opencv' or a JSON object such as '{{\"nscales\": 5}}', got {text!r}")
    return value


def processor_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """FMANetImageProcessor arguments of ``--flow-method`` and ``--flow-params``."""
    overrides: dict[str, Any] = {}
    if getattr(args, "flow_method", None):
        overrides["flow_method"] = args.flow_method
    if getattr(args, "flow_params", None):
        overrides["flow_params"] = args.flow_params
    return overrides


def cmd_prepare(args: argparse.Namespace) -> int:
    from .data.prepare import cache_path_for, prepare_dataset
    from .image_processing_fmanet import FMANetImageProcessor

    dataset = load_dataset_by_name(args.dataset, args.root, args.class_set)
    if args.processor:
        processor = FMANetImageProcessor.from_pretrained(args.processor)
    else:
        processor = FMANetImageProcessor(**processor_overrides(args))
    cache_dir = Path(args.cache_dir) / "prepared"
    started = time.perf_counter()
    prepared = prepare_dataset(dataset, processor, cache_dir, num_proc=args.num_proc, progress=not args.quiet)
    elapsed = time.perf_counter() - started
    print(
        f"{len(prepared)} samples of {args.dataset} prepared in {elapsed:.2f} s "
        f"(flow {processor.flow_method}, input {tuple(prepared[0]['pixel_values'].shape)}); "
        f"cache: {cache_path_for(dataset, processor, cache_dir)}"
    )
    return 0


def cmd_baseline(args: argparse.Namespace) -> int:
    from .atomic import atomic_write_json
    from .data.prepare import prepare_dataset
    from .image_processing_fmanet import FMANetImageProcessor
    from .training.baselines import mmcof_logistic_regression_loso

    dataset = load_dataset_by_name(args.dataset, args.root, args.class_set)
    processor = FMANetImageProcessor(**processor_overrides(args))
    prepared = prepare_dataset(dataset, processor, Path(args.cache_dir) / "prepared", num_proc=args.num_proc)
    results = mmcof_logistic_regression_loso(prepared, pool=args.pool, l2=args.l2)
    print(
        f"MM-COF logistic regression, LOSO over {results['num_folds']} subjects, {results['num_samples']} samples: "
        f"accuracy {results['accuracy']:.3f}, UF1 {results['uf1']:.3f}, UAR {results['uar']:.3f} "
        f"(chance UAR {results['chance_uar']:.3f})"
    )
    if args.out:
        atomic_write_json(args.out, results)
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="fmanet-hf", description="FMANet micro-expression recognition.")
    parser.add_argument("--version", action="version", version=f"fmanet-hf {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    commands = parser.add_subparsers(dest="command", required=True)

    predict = commands.add_parser(
        "predict", help="classify an onset/apex/offset triplet, or a video with key-frame indices",
        description="Classify a micro-expression from three frame files (onset apex offset), from a video with "
        "0-based key-frame indices (--video FILE --onset I [--apex J] --offset K; without --apex it is estimated), "
        "or the built-in SynthME examples (--example). Default model: the bundled SynthME checkpoint.",
    )
    predict.add_argument("frames", nargs="*", help="onset, apex and offset image files")
    predict.add_argument("--example", action="store_true", help="classify one built-in SynthME clip per class")
    predict.add_argument("--video", help="a video file (mp4, avi...) instead of frame files")
    predict.add_argument("--onset", type=int, help="onset frame index in --video (0-based)")
    predict.add_argument("--apex", type=int, help="apex frame index in --video (0-based; default: estimated)")
    predict.add_argument("--offset", type=int, help="offset frame index in --video (0-based)")
    predict.add_argument(
        "--apex-method", choices=("max_difference", "middle"), default="max_difference",
        help="apex estimate when --apex is not given (see docs/inference.md)",
    )
    predict.add_argument("--top-k", type=_positive_int, help="show only the k most probable classes")
    predict.add_argument("--figure", help="write a PNG figure (frames, flows, MM-COF, attention, probabilities)")
    predict.add_argument("--model", help="a saved FMANet folder (default: the bundled model)")
    predict.add_argument("--json", action="store_true", help="print JSON instead of a table")
    predict.add_argument("--cache-dir", default=str(DEFAULT_CACHE), help="where the example clips are kept")
    predict.set_defaults(handler=cmd_predict)

    synth = commands.add_parser("synth", help="generate the SynthME synthetic benchmark")
    synth.add_argument("--out", default="synthme", help="output folder (CASME II layout)")
    synth.add_argument("--subjects", type=int, default=12)
    synth.add_argument("--samples-per-class", type=int, default=4, help="clips per class and subject")
    synth.add_argument("--frames-per-clip", type=int, default=11)
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--overwrite", action="store_true")
    synth.add_argument("--quiet", action="store_true", help="no progress bar")
    synth.set_defaults(handler=cmd_synth)

    prepare = commands.add_parser("prepare", help="compute and cache the model inputs of a dataset")
    prepare.add_argument("--dataset", choices=DATASET_NAMES, default="synthme")
    prepare.add_argument("--root", default="synthme", help="the dataset folder")
    prepare.add_argument("--class-set", help="class set of the loader (e.g. 5class, megc3)")
    prepare.add_argument("--processor", help="folder with a preprocessor_config.json to use")
    prepare.add_argument("--flow-method", choices=("tvl1", "dis", "farneback"))
    prepare.add_argument("--flow-params", type=flow_params_argument, help="'opencv' (OpenCV's own TV-L1 defaults, as in published pipelines) or a JSON object of flow-solver settings")
    prepare.add_argument("--num-proc", type=int, default=None, help="worker processes (default: all cores)")
    prepare.add_argument("--cache-dir", default=str(DEFAULT_CACHE))
    prepare.add_argument("--quiet", action="store_true", help="no progress bar")
    prepare.set_defaults(handler=cmd_prepare)

    baseline = commands.add_parser("baseline", help="LOSO of a logistic regression on the fixed MM-COF (is the data learnable?)")
    baseline.add_argument("--dataset", choices=DATASET_NAMES, default="synthme")
    baseline.add_argument("--root", default="synthme", help="the dataset folder")
    baseline.add_argument("--class-set", help="class set of the loader (e.g. 5class, megc3)")
    baseline.add_argument("--flow-method", choices=("tvl1", "dis", "farneback"))
    baseline.add_argument("--flow-params", type=flow_params_argument, help="'opencv' (OpenCV's own TV-L1 defaults, as in published pipelines) or a JSON object of flow-solver settings")
    baseline.add_argument("--pool", type=int, default=8, help="MM-COF is averaged to pool x pool cells")
    baseline.add_argument("--l2", type=float, default=1e-2, help="L2 penalty weight")
    baseline.add_argument("--num-proc", type=int, default=None)
    baseline.add_argument("--cache-dir", default=str(DEFAULT_CACHE))
    baseline.add_argument("--out", help="write the results JSON here")
    baseline.set_defaults(handler=cmd_baseline)

    from .commands.common_flags import register_training_commands

    register_training_commands(commands)
    from .hub.commands import register_hub_commands

    register_hub_commands(commands)
    from .demo.commands import register_demo_command

    register_demo_command(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from .errors import FMANetError

    try:
        return args.handler(args)
    except FMANetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
