"""Ablation study: FMANet's variants and its baselines under the same LOSO runs, one table.

Each FMANet variant (full, single_phase, fixed_fusion, no_modulation, no_attention) is the
base config with one block switched off (`FMANetConfig.for_ablation`). Two baselines can sit
beside them on the same data:

- ``mmcof_cnn``: the fixed MM-COF descriptor into the same encoder + trunk
  (`fmanet_hf.BASELINE_CONFIGS`), trained by the same code, schedule and recipe;
- ``mmcof_logreg``: logistic regression on the pooled fixed MM-COF with its pool size and
  L2 chosen by an inner LOSO split of each fold's training subjects
  (`mmcof_logistic_regression_loso`); deterministic, so it runs once whatever the seeds.

Every trained variant runs once per seed. With one seed the run folder of variant ``v`` is
``<out_dir>/<v>/`` (as before seeds existed); with several it is ``<out_dir>/<v>/seed-<s>/``.
Each run is resumable on its own. ``ablation.md`` / ``ablation.json`` give pooled accuracy,
UF1 and UAR (final epoch, leak-free) as mean and sample standard deviation over the seeds,
the per-seed values, and the difference from ``full`` with the spread of the seed-paired
differences (the same seed trains both, so the pairing removes the shared part of the noise).
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..atomic import atomic_write_json, atomic_write_text
from ..configuration_fmanet import ABLATIONS, BASELINE_CONFIGS, FMANetConfig
from ..errors import FMANetConfigError
from ..output_paths import checked_output_path, ensure_output_folder
from .loso import run_loso_seeds
from .model_config import config_to_dict
from .schedule import TrainingSchedule

ABLATION_TABLE_MD = "ablation.md"
ABLATION_TABLE_JSON = "ablation.json"
LOGISTIC_REGRESSION_BASELINE = "mmcof_logreg"

#: What each variant removes, for the table.
ABLATION_DESCRIPTIONS = {
    "full": "FMANet: both phases, learnable modulation, learnable fusion, motion attention",
    "single_phase": "onset->apex flow only (no apex->offset phase)",
    "fixed_fusion": "phase weights fixed at the MM-COF theta (not learned)",
    "no_modulation": "no learnable magnitude modulation gate",
    "no_attention": "no motion attention",
    "mmcof_cnn": "baseline: fixed MM-COF into the same encoder + trunk (no FMANet block)",
    LOGISTIC_REGRESSION_BASELINE: "baseline: logistic regression on pooled fixed MM-COF (pool, L2 by inner split)",
}

#: Every name `run_ablation` accepts.
VARIANTS = (*ABLATIONS, *BASELINE_CONFIGS, LOGISTIC_REGRESSION_BASELINE)

_METRICS = ("accuracy", "uf1", "uar")


def _spread(values: Sequence[float]) -> float:
    """Sample standard deviation (0 for fewer than two values)."""
    return float(statistics.stdev(values)) if len(values) > 1 else 0.0


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


def _check_seeds(seed: int, seeds: Sequence[int] | None) -> list[int]:
    values = [seed] if seeds is None else list(seeds)
    if not values:
        raise FMANetConfigError("seeds must hold at least one seed.")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise FMANetConfigError(f"every seed must be an integer >= 0, got {value!r}.")
    if len(set(values)) != len(values):
        raise FMANetConfigError(f"seeds must differ from each other, got {values}.")
    return values


def run_ablation(
    prepared_dataset: Any,
    *,
    out_dir: str | os.PathLike,
    schedule: TrainingSchedule,
    seed: int = 0,
    seeds: Sequence[int] | None = None,
    base_config: Any = None,
    ablations: Sequence[str] | None = None,
    progress: bool = True,
    accelerator: Any = None,
    **loso_kwargs: Any,
) -> dict[str, Any]:
    """Run each variant under LOSO (once per seed) and write the comparison table.

    Args:
        prepared_dataset: a prepared ``datasets.Dataset`` (see `run_loso`); the
            ``mmcof_logreg`` baseline also needs its ``mmcof_values`` column.
        out_dir: folder of the runs (see the module docstring) and of the tables.
        schedule: the `TrainingSchedule`, the same for every trained variant and seed
            (``epochs="auto"``: see `auto_epochs`).
        seed: the master seed when ``seeds`` is not given.
        seeds: several master seeds; every trained variant runs once per seed.
        base_config: `FMANetConfig` or dict the variants start from (default: defaults).
        ablations: names from `VARIANTS` (default: the FMANet ablations, `ABLATIONS`).
            ``"full"`` is always run, first, because the deltas are taken against it.
        progress: progress bars and per-variant summaries.
        accelerator: an ``accelerate.Accelerator`` shared by all variants.
        **loso_kwargs: further `run_loso` arguments (record_leaky_best_epoch,
            fold_parallel, fold_workers, folds_at_once: with fold batching the seeds of a
            variant are batched together, `run_loso_seeds`).

    Returns:
        The ``ablation.json`` dict: ``rows``, one per variant, with ``ablation``,
        ``description``, ``seeds``, for each metric m (accuracy, uf1, uar): ``m`` (mean over
        seeds), ``m_std``, ``m_per_seed``, ``delta_m`` (mean of the seed-paired differences
        from full) and ``delta_m_std``, plus ``wall_time_seconds`` and ``results_dirs``; and
        ``schedule``, ``seeds``, ``markdown``.

    Raises:
        FMANetConfigError: an unknown variant name, or bad seeds.
    """
    names = list(ABLATIONS) if ablations is None else [str(n) for n in ablations]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise FMANetConfigError(f"Unknown ablation(s) {unknown}; choose from {list(VARIANTS)}.")
    names = ["full"] + [n for n in dict.fromkeys(names) if n != "full"]
    seed_list = _check_seeds(seed, seeds)
    if accelerator is None:
        from accelerate import Accelerator

        accelerator = Accelerator()
    out = checked_output_path(out_dir, flag="--out")
    if accelerator.is_main_process:
        ensure_output_folder(out, "ablate")
    base = _base_kwargs(base_config)
    first = prepared_dataset[0]["pixel_values"]
    data_shape = {"image_size": int(first.shape[-1]), "num_channels_per_phase": int(first.shape[0]) // 2}
    # The data sets the input size unless the base config says otherwise (then run_loso
    # explains the mismatch); the variant's switches win over the base.
    switches = {**ABLATIONS, **BASELINE_CONFIGS}
    configs = {name: {**data_shape, **base, **switches[name]} for name in names if name in switches}
    for config in configs.values():
        FMANetConfig.from_dict(dict(config))  # refuse a bad variant before hours of training

    def run_dir(name: str, run_seed: int) -> Path:
        return out / name if len(seed_list) == 1 else out / name / f"seed-{run_seed}"

    per_seed: dict[str, dict[int, dict[str, Any]]] = {}
    for name in names:
        if progress and accelerator.is_main_process:
            print(f"\n=== ablation {name}: {ABLATION_DESCRIPTIONS.get(name, '')} ===")
        if name == LOGISTIC_REGRESSION_BASELINE:
            from .baselines import mmcof_logistic_regression_loso

            started = time.perf_counter()
            result = mmcof_logistic_regression_loso(prepared_dataset, pool="inner", l2="inner")
            result["wall_time_seconds"] = result["fold_seconds_total"] = time.perf_counter() - started
            per_seed[name] = {s: result for s in seed_list}  # deterministic: one fit serves every seed
            if accelerator.is_main_process:
                atomic_write_json(out / name / "results.json", result)
            continue
        # All seeds of a variant in one call: with fold batching their (seed, fold) pairs train together.
        runs = run_loso_seeds(
            prepared_dataset,
            seeds=seed_list,
            out_dirs=[run_dir(name, run_seed) for run_seed in seed_list],
            model_config=configs[name],
            schedule=schedule,
            progress=progress,
            accelerator=accelerator,
            **loso_kwargs,
        )
        per_seed[name] = dict(zip(seed_list, runs))

    full = per_seed["full"]
    rows = []
    for name in names:
        runs = per_seed[name]
        row: dict[str, Any] = {
            "ablation": name,
            "description": ABLATION_DESCRIPTIONS.get(name, ""),
            "changes": dict(switches.get(name, {})),
            "seeds": list(seed_list) if name != LOGISTIC_REGRESSION_BASELINE else [],
        }
        for metric in _METRICS:
            values = [float(runs[s][metric]) for s in seed_list]
            differences = [float(runs[s][metric]) - float(full[s][metric]) for s in seed_list]
            row[metric] = float(statistics.fmean(values))
            row[f"{metric}_std"] = _spread(values)
            row[f"{metric}_per_seed"] = values
            row[f"delta_{metric}"] = float(statistics.fmean(differences))
            row[f"delta_{metric}_std"] = _spread(differences)
        first_run = runs[seed_list[0]]
        if "leaky_best_epoch_uf1" in first_run:
            for metric in _METRICS:
                row[f"leaky_best_epoch_{metric}"] = float(
                    statistics.fmean(float(runs[s][f"leaky_best_epoch_{metric}"]) for s in seed_list)
                )
        distinct_runs = list({id(run): run for run in runs.values()}.values())
        row["wall_time_seconds"] = float(sum(float(run["wall_time_seconds"]) for run in distinct_runs))
        row["fold_seconds_total"] = float(sum(float(run["fold_seconds_total"]) for run in distinct_runs))
        if name == LOGISTIC_REGRESSION_BASELINE:
            row["results_dir"] = str(out / name)
            row["baseline_settings"] = first_run.get("baseline", {})
        else:
            row["results_dir"] = str(run_dir(name, seed_list[0]))
            row["results_dirs"] = [str(run_dir(name, s)) for s in seed_list]
        rows.append(row)
    first_full = full[seed_list[0]]
    summary = {
        "protocol": first_full["protocol"],
        "scored_epoch": first_full["scored_epoch"],
        "num_samples": first_full["num_samples"],
        "num_folds": first_full["num_folds"],
        "schedule": first_full["settings"]["schedule"],
        "seed": int(seed_list[0]),
        "seeds": list(seed_list),
        "base_config": first_full["settings"]["model_config"],
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
    """The comparison as a markdown table (values in %, deltas in percentage points).

    With several seeds each cell is "mean ± sample std" over the seeds; a delta's spread is
    that of the seed-paired differences from ``full``.
    """
    schedule = summary["schedule"]
    seeds = list(summary.get("seeds", [summary["seed"]]))
    several = len(seeds) > 1
    recipe = ""
    if schedule.get("augmentation", "none") != "none" or float(schedule.get("ema_decay", 0.0)) > 0:
        recipe = f", augmentation {schedule.get('augmentation', 'none')}, EMA decay {float(schedule.get('ema_decay', 0.0)):g}"
    if schedule.get("precision", "fp32") != "fp32":
        recipe += f", precision {schedule['precision']}"
    seed_text = f"seeds {', '.join(str(s) for s in seeds)} (mean ± std)" if several else f"seed {seeds[0]}"
    lines = [
        f"LOSO over {summary['num_folds']} subjects, {summary['num_samples']} samples; pooled metrics of the "
        f"final epoch (leak-free). Schedule: {schedule['epochs']} epochs, batch {schedule['batch_size']}, "
        f"{schedule['optimizer']} lr {schedule['learning_rate']:g} ({schedule['lr_schedule']}), weight decay "
        f"{schedule['weight_decay']:g}, class weighting {schedule['class_weighting']}{recipe}; {seed_text}.",
        "",
        "| ablation | what changes | accuracy | UF1 | UAR | Δ accuracy | Δ UF1 | Δ UAR |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]

    def cell(row: Mapping[str, Any], key: str, signed: bool = False) -> str:
        value = f"{100 * row[key]:+.1f}" if signed else f"{100 * row[key]:.1f}"
        if several and not (row["ablation"] == LOGISTIC_REGRESSION_BASELINE and not key.startswith("delta")):
            value += f" ± {100 * row.get(key + '_std', 0.0):.1f}"
        return value

    for row in summary["rows"]:
        deltas = (
            ["—", "—", "—"] if row["ablation"] == "full" else [cell(row, f"delta_{m}", signed=True) for m in _METRICS]
        )
        lines.append(
            f"| {row['ablation']} | {row['description']} | "
            + " | ".join(cell(row, m) for m in _METRICS)
            + " | "
            + " | ".join(deltas)
            + " |"
        )
    lines.append("")
    lines.append("Values in %; Δ in percentage points vs full (negative: the variant is worse than full).")
    if any(row["ablation"] == LOGISTIC_REGRESSION_BASELINE for row in summary["rows"]):
        lines.append(f"{LOGISTIC_REGRESSION_BASELINE} is deterministic: one fit, the same for every seed.")
    return "\n".join(lines) + "\n"


__all__ = ["ABLATION_DESCRIPTIONS", "LOGISTIC_REGRESSION_BASELINE", "VARIANTS", "format_ablation_markdown", "run_ablation"]
