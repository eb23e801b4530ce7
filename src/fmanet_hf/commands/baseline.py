"""``fmanet-hf baseline``: a logistic regression on the fixed MM-COF under LOSO, the shallow
reference that says whether a dataset is learnable at all.

    fmanet-hf baseline --dataset synthme --root synthme [--out baseline.json]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from . import inputs
from . import ranges
from .output import report, show_progress
from .common_flags import DEFAULT_CACHE, add_dataset_arguments, add_face_missing_argument, add_flow_arguments, dataset_options, folder_argument


def run(args: argparse.Namespace) -> int:
    """Prepare the dataset, run the baseline's LOSO and print (and optionally write) its scores."""
    from ..atomic import atomic_write_json
    from ..data.prepare import prepare_dataset
    from ..data.registry import load_dataset_by_name
    from ..output_paths import check_replaceable_file, checked_output_path, stamped
    from ..training.baselines import mmcof_logistic_regression_loso

    if args.out is not None:
        # Checked before the work: the file may replace only an earlier baseline result.
        checked_output_path(args.out, flag="--out", inputs={"--root": args.root})
        check_replaceable_file(args.out, command="baseline", flag="--out")
    processor = inputs.processor_from_args(args)  # settings are checked before the dataset is read
    dataset = load_dataset_by_name(args.dataset, args.root, args.class_set, **dataset_options(args))
    prepared = prepare_dataset(
        dataset, processor, Path(args.cache_dir) / "prepared", num_proc=args.num_proc, progress=show_progress(args),
        on_face_missing=args.on_face_missing,
    )
    inputs.report_skipped_clips(dataset, prepared)
    results = mmcof_logistic_regression_loso(prepared, pool=args.pool, l2=args.l2)
    line = (
        f"MM-COF logistic regression, LOSO over {results['num_folds']} subjects, {results['num_samples']} samples: "
        f"accuracy {results['accuracy']:.3f}, UF1 {results['uf1']:.3f}, UAR {results['uar']:.3f} "
        f"(chance UAR {results['chance_uar']:.3f})"
    )
    if args.out:
        atomic_write_json(args.out, stamped(results, "baseline"))
    report(args, results, line)
    return 0


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``baseline`` to the ``fmanet-hf`` subcommands; returns its parser."""
    baseline = subparsers.add_parser("baseline", help="LOSO of a logistic regression on the fixed MM-COF (is the data learnable?)")
    add_dataset_arguments(baseline)
    baseline.add_argument("--processor", help="folder with a preprocessor_config.json to prepare the inputs with")
    add_flow_arguments(baseline)
    add_face_missing_argument(baseline)
    baseline.add_argument(
        "--pool", type=ranges.POOL, default=8,
        help="MM-COF is averaged to pool x pool cells, or 'inner': chosen per fold by an inner LOSO split of the "
        "training subjects (default 8)",
    )
    baseline.add_argument(
        "--l2", type=ranges.L2, default=1e-2,
        help="L2 penalty weight, or 'inner' (chosen per fold like --pool inner; default 0.01)",
    )
    baseline.add_argument("--num-proc", type=ranges.COUNT, default=None, help="worker processes (default: all cores)")
    baseline.add_argument("--cache-dir", type=folder_argument, default=str(DEFAULT_CACHE))
    baseline.add_argument(
        "--out", help="write the results JSON here (replaces only an earlier baseline result, never another file)"
    )
    baseline.set_defaults(handler=run)
    return baseline


__all__ = ["register", "run"]
