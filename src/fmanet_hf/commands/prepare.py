"""``fmanet-hf prepare``: compute a dataset's model inputs once and cache them.

    fmanet-hf prepare --dataset synthme --root synthme [--flow-method dis] [--processor DIR]

The cache (``<cache-dir>/prepared``) is the one train, loso, ablate and baseline read.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from . import inputs, ranges
from .output import report, show_progress
from .common_flags import DEFAULT_CACHE, add_dataset_arguments, add_face_missing_argument, add_flow_arguments, dataset_options, folder_argument


def run(args: argparse.Namespace) -> int:
    """Load the dataset, prepare (or find) its cached inputs and print where they are."""
    from ..data.prepare import cache_path_for, prepare_dataset
    from ..data.registry import load_dataset_by_name

    processor = inputs.processor_from_args(args)  # settings are checked before the dataset is read
    dataset = load_dataset_by_name(args.dataset, args.root, args.class_set, **dataset_options(args))
    cache_dir = Path(args.cache_dir) / "prepared"
    started = time.perf_counter()
    prepared = prepare_dataset(
        dataset, processor, cache_dir, num_proc=args.num_proc, progress=show_progress(args), on_face_missing=args.on_face_missing
    )
    elapsed = time.perf_counter() - started
    inputs.report_skipped_clips(dataset, prepared)
    cache = cache_path_for(dataset, processor, cache_dir, on_face_missing=args.on_face_missing)
    shape = tuple(prepared[0]["pixel_values"].shape)
    report(
        args,
        {"dataset": args.dataset, "samples": len(prepared), "seconds": round(elapsed, 3), "flow_method": processor.flow_method,
         "input_shape": list(shape), "cache": str(cache)},
        f"{len(prepared)} samples of {args.dataset} prepared in {elapsed:.2f} s "
        f"(flow {processor.flow_method}, input {shape}); cache: {cache}",
    )
    return 0


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``prepare`` to the ``fmanet-hf`` subcommands; returns its parser."""
    prepare = subparsers.add_parser("prepare", help="compute and cache the model inputs of a dataset")
    add_dataset_arguments(prepare)
    prepare.add_argument("--processor", help="folder with a preprocessor_config.json to use")
    add_flow_arguments(prepare)
    prepare.add_argument("--num-proc", type=ranges.COUNT, default=None, help="worker processes (default: all cores)")
    prepare.add_argument("--cache-dir", type=folder_argument, default=str(DEFAULT_CACHE))
    add_face_missing_argument(prepare)
    prepare.set_defaults(handler=run)
    return prepare


__all__ = ["register", "run"]
