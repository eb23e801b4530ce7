"""Ablation study: every `fmanet_hf.ABLATIONS` variant under the same LOSO run, one table.

Each variant (full, single_phase, fixed_fusion, no_modulation, no_attention) is the base
config with one block switched off (`FMANetConfig.for_ablation`), trained and scored with
`run_loso` on the same prepared data, schedule and seed, into ``<out_dir>/<variant>/``
(each resumable on its own). The comparison is written as ``ablation.md`` and
``ablation.json``: pooled accuracy, UF1 and UAR (final epoch, leak-free) and their
difference from ``full``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..atomic import atomic_write_json, atomic_write_text
from ..configuration_fmanet import ABLATIONS, FMANetConfig
from ..errors import FMANetConfigError
from .loso import run_loso
from .model_config import config_to_dict
from .schedule import TrainingSchedule

ABLATION_TABLE_MD = "ablation.md"
ABLATION_TABLE_JSON = "ablation.json"

#: What each variant removes, for the table.
ABLATION_DESCRIPTIONS = {
    "full": "FMANet: both phases, learnable modulation, learnable fusion, motion attention",
    "single_phase": "onset->apex flow only (no apex->offset phase)",
    "fixed_fusion": "phase weights fixed at the MM-COF theta (not learned)",
    "no_modulation": "no learnable magnitude modulation gate",
    "no_attention": "no motion attention",
}

_METRICS = ("accuracy", "uf1", "uar")


def _base_kwargs(base_config: Any) -> dict[str, Any]:
    if base_config is None:
        return {}
    if isinstance(base_config, FMANetConfig):
        values = config_to_dict(base_config)
    elif isinstance(base_config, Mapping):
        values = dict(base_config)
    else:
        raise FMANetConfigError(f"base_config must be an FMANetConfig, a dict or None, got {type(base_config).__name__}.")
    for key in ("id2label", "label2id", "num_labels", "model_type"):
        values.pop(key, None)
    return values


def run_ablation(
    prepared_dataset: Any,
    *,
    out_dir: str | os.PathLike,
    schedule: TrainingSchedule,
    seed: int = 0,
    base_config: Any = None,
    ablations: Sequence[str] | None = None,
    progress: bool = True,
    accelerator: Any = None,
    **loso_kwargs: Any,
) -> dict[str, Any]:
    """Run each ablation under LOSO and write the comparison table.

    Args:
        prepared_dataset: a prepared ``datasets.Dataset`` (see `run_loso`).
        out_dir: folder; variant ``v`` goes to ``<out_dir>/<v>/``, the tables to ``out_dir``.
        schedule, seed: the `TrainingSchedule` and master seed, the same for every variant
            (``epochs="auto"``: see `auto_epochs`).
        base_config: `FMANetConfig` or dict the variants start from (default: defaults).
        ablations: names from `fmanet_hf.ABLATIONS` (default: all). ``"full"`` is always
            run, first, because the deltas are taken against it.
        progress: progress bars and per-variant summaries.
        accelerator: an ``accelerate.Accelerator`` shared by all variants.
        **loso_kwargs: further `run_loso` arguments (record_leaky_best_epoch,
            fold_parallel, fold_workers...).

    Returns:
        The ``ablation.json`` dict: ``rows`` (one per variant: ``ablation``, ``description``,
        ``accuracy``, ``uf1``, ``uar``, ``delta_accuracy``, ``delta_uf1``, ``delta_uar``,
        ``wall_time_seconds``, ``results_dir``), ``schedule``, ``seed``, ``markdown``.

    Raises:
        FMANetConfigError: an unknown ablation name.
    """
    names = list(ABLATIONS) if ablations is None else [str(n) for n in ablations]
    unknown = [n for n in names if n not in ABLATIONS]
    if unknown:
        raise FMANetConfigError(f"Unknown ablation(s) {unknown}; choose from {list(ABLATIONS)}.")
    names = ["full"] + [n for n in dict.fromkeys(names) if n != "full"]
    if accelerator is None:
        from accelerate import Accelerator

        accelerator = Accelerator()
    out = Path(out_dir)
    base = _base_kwargs(base_config)
    results: dict[str, dict[str, Any]] = {}
    first = prepared_dataset[0]["pixel_values"]
    data_shape = {"image_size": int(first.shape[-1]), "num_channels_per_phase": int(first.shape[0]) // 2}
    # The data sets the input size unless the base config says otherwise (then run_loso
    # explains the mismatch); the variant's switches win over the base.
    configs = {name: {**data_shape, **base, **ABLATIONS[name]} for name in names}
    for config in configs.values():
        FMANetConfig.from_dict(dict(config))  # refuse a bad variant before hours of training
    for name in names:
        config = configs[name]
        if progress and accelerator.is_main_process:
            print(f"\n=== ablation {name}: {ABLATION_DESCRIPTIONS.get(name, '')} ===")
        results[name] = run_loso(
            prepared_dataset,
            model_config=config,
            out_dir=out / name,
            schedule=schedule,
            seed=seed,
            progress=progress,
            accelerator=accelerator,
            **loso_kwargs,
        )

    full = results["full"]
    rows = []
    for name in names:
        result = results[name]
        row: dict[str, Any] = {
            "ablation": name,
            "description": ABLATION_DESCRIPTIONS.get(name, ""),
            "changes": dict(ABLATIONS[name]),
        }
        for metric in _METRICS:
            row[metric] = float(result[metric])
            row[f"delta_{metric}"] = float(result[metric] - full[metric])
        if "leaky_best_epoch_uf1" in result:
            for metric in _METRICS:
                row[f"leaky_best_epoch_{metric}"] = float(result[f"leaky_best_epoch_{metric}"])
        row["wall_time_seconds"] = float(result["wall_time_seconds"])
        row["fold_seconds_total"] = float(result["fold_seconds_total"])
        row["results_dir"] = str(out / name)
        rows.append(row)
    summary = {
        "protocol": full["protocol"],
        "scored_epoch": full["scored_epoch"],
        "num_samples": full["num_samples"],
        "num_folds": full["num_folds"],
        "schedule": full["settings"]["schedule"],
        "seed": int(seed),
        "base_config": full["settings"]["model_config"],
        "rows": rows,
    }
    summary["markdown"] = format_ablation_markdown(summary)
    if accelerator.is_main_process:
        atomic_write_text(out / ABLATION_TABLE_MD, summary["markdown"])
        atomic_write_json(out / ABLATION_TABLE_JSON, summary)
        if progress:
            print("\n" + summary["markdown"])
    return summary


def format_ablation_markdown(summary: Mapping[str, Any]) -> str:
    """The comparison as a markdown table (values in %, deltas in percentage points)."""
    schedule = summary["schedule"]
    lines = [
        f"LOSO over {summary['num_folds']} subjects, {summary['num_samples']} samples; pooled metrics of the "
        f"final epoch (leak-free). Schedule: {schedule['epochs']} epochs, batch {schedule['batch_size']}, "
        f"{schedule['optimizer']} lr {schedule['learning_rate']:g} ({schedule['lr_schedule']}), weight decay "
        f"{schedule['weight_decay']:g}, class weighting {schedule['class_weighting']}; seed {summary['seed']}.",
        "",
        "| ablation | what changes | accuracy | UF1 | UAR | Δ accuracy | Δ UF1 | Δ UAR |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in summary["rows"]:
        deltas = (
            ["—", "—", "—"]
            if row["ablation"] == "full"
            else [f"{100 * row[f'delta_{m}']:+.1f}" for m in _METRICS]
        )
        lines.append(
            f"| {row['ablation']} | {row['description']} | "
            + " | ".join(f"{100 * row[m]:.1f}" for m in _METRICS)
            + " | "
            + " | ".join(deltas)
            + " |"
        )
    lines.append("")
    lines.append("Values in %; Δ in percentage points vs full (negative: the ablated block helps).")
    return "\n".join(lines) + "\n"


__all__ = ["ABLATION_DESCRIPTIONS", "format_ablation_markdown", "run_ablation"]
