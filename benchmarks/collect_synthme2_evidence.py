"""Collect the SynthME 2.0 evidence runs (benchmarks/synthme2_evidence.sh) into one results file.

    python benchmarks/collect_synthme2_evidence.py WORK_DIR [--out benchmarks/results/synthme2-evidence.json]

Reads the ablation tables the runs wrote (``ablation.json``: per-seed pooled metrics of every
variant), the pretraining record and the logistic-regression baseline, and writes one JSON file
with the commands, the per-seed values, means, sample standard deviations and the seed-paired
differences the design notes quote. Prints the same as a markdown table. Nothing is recomputed
from predictions here: every number is one a command wrote.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
from pathlib import Path

METRICS = ("uf1", "uar", "accuracy")


def load(path: Path):
    return json.loads(path.read_text()) if path.is_file() else None


def spread(values):
    return statistics.stdev(values) if len(values) > 1 else 0.0


def summarise(rows_by_name, name):
    row = rows_by_name[name]
    return {m: {"mean": row[m], "std": row.get(f"{m}_std", 0.0), "per_seed": row.get(f"{m}_per_seed", [row[m]])} for m in METRICS}


def paired(a, b, metric="uf1"):
    """Mean and sample std of the seed-paired differences a - b (same seeds, same order)."""
    differences = [x - y for x, y in zip(a[metric]["per_seed"], b[metric]["per_seed"])]
    return {"mean": statistics.fmean(differences), "std": spread(differences), "per_seed": differences}


LABELS = {
    "full": "FMANet",
    "single_phase": "onset->apex only",
    "fixed_fusion": "fixed fusion",
    "no_modulation": "no modulation",
    "no_attention": "no attention",
    "mmcof_cnn": "MM-COF + same CNN",
    "mmcof_logreg": "MM-COF + log. regr.",
    "init_from_pretrained": "FMANet, pretrained",
    "plain_no_augmentation_no_ema": "FMANet, no aug/EMA",
}


def plot(result, path: Path) -> None:
    """One dot per seed and a bar at the mean, per variant; baselines in grey."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = {**result["variants"], **result["extra_runs"]}
    names = list(rows)
    figure, axis = plt.subplots(figsize=(8.5, 3.6), dpi=120)
    for position, name in enumerate(names):
        values = rows[name]["uf1"]
        baseline = name.startswith("mmcof")
        axis.bar(position, values["mean"], color="#b0b0b0" if baseline else "#6a74c9", width=0.65)
        axis.scatter([position] * len(values["per_seed"]), values["per_seed"], color="black", s=12, zorder=3)
        axis.text(position, values["mean"] + 0.012, f"{values['mean']:.3f}", ha="center", fontsize=8)
    axis.set_xticks(range(len(names)), [LABELS.get(n, n) for n in names], rotation=25, ha="right", fontsize=8)
    low = min(min(rows[n]["uf1"]["per_seed"]) for n in names)
    axis.set_ylim(max(0.0, low - 0.1), 1.0)
    axis.set_ylabel("pooled LOSO UF1")
    axis.set_title(
        f"SynthME 2.0, {result['data']['subjects']} subjects, {result['data']['clips']} clips; seeds "
        f"{', '.join(str(s) for s in result['seeds'])} (dots), mean (bar)", fontsize=9
    )
    axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)


def skipped_pretraining_clips(work: Path) -> list[str]:
    """The pretraining clips `prepare --on-face-missing skip` dropped (from its cache manifest)."""
    skipped: list[str] = []
    for manifest in sorted((work / "cache" / "prepared").glob("*-skipfaceless/fmanet_cache.json")):
        skipped += json.loads(manifest.read_text()).get("skipped_no_face", [])
    return skipped


def processor_of_the_runs(work: Path) -> dict | None:
    """Format and flow method of the processor that prepared the LOSO inputs (from the cache manifests).

    Every run of the script prepares with one saved processor folder; if the manifests disagree
    the runs were mixed and the evidence is refused.
    """
    settings = [json.loads(m.read_text())["processor_settings"] for m in sorted((work / "cache" / "prepared").glob("*/fmanet_cache.json"))]
    described = {(s.get("processor_format_version"), s.get("flow_method")) for s in settings}
    if len(described) > 1:
        raise SystemExit(f"the runs in {work} were prepared with different processors: {sorted(described)}")
    if not described:
        return None
    version, flow_method = described.pop()
    return {"processor_format_version": version, "flow_method": flow_method, "folder": f"benchmarks/processors/format{version}"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("work_dir", type=Path)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "synthme2-evidence.json")
    parser.add_argument("--figure", type=Path, default=Path(__file__).parent.parent / "docs" / "images" / "synthme2_evidence.png")
    args = parser.parse_args()
    work = args.work_dir
    ablation = load(work / "runs" / "ablation" / "ablation.json")
    if ablation is None:
        print(f"no {work}/runs/ablation/ablation.json: run benchmarks/synthme2_evidence.sh first", file=sys.stderr)
        return 2
    rows = {row["ablation"]: row for row in ablation["rows"]}
    variants = {name: summarise(rows, name) for name in rows}
    full = variants["full"]
    comparisons = {}
    for name in variants:
        if name != "full":
            comparisons[f"full - {name}"] = paired(full, variants[name])
    extra_runs = {}
    for label, folder in (("init_from_pretrained", "init-from"), ("plain_no_augmentation_no_ema", "plain")):
        table = load(work / "runs" / folder / "ablation.json")
        if table is not None:
            extra = summarise({row["ablation"]: row for row in table["rows"]}, "full")
            extra_runs[label] = extra
            comparisons[f"{label} - full"] = paired(extra, full)
    pretraining = load(work / "runs" / "pretrained-2100" / "pretraining_info.json")
    result = {
        "what": "SynthME 2.0 LOSO evidence: FMANet, its ablations and two fixed-MM-COF baselines, 3 seeds; "
        "pretraining on other people; the recipe's own effect",
        "protocol": "docs/design-notes.md, 'Evidence on SynthME 2.0'",
        "commands": "benchmarks/synthme2_evidence.sh (every command, in order)",
        "processor": processor_of_the_runs(work),
        "data": {"subjects": ablation["num_folds"], "clips": ablation["num_samples"], "real_people": 4, "morphs": 6},
        "schedule": ablation["schedule"],
        "seeds": ablation["seeds"],
        "variants": variants,
        "extra_runs": extra_runs,
        "comparisons_uf1": comparisons,
        "pretraining": None if pretraining is None else {
            **{k: pretraining[k] for k in ("num_samples", "subjects", "schedule", "seconds")},
            "skipped_no_face": skipped_pretraining_clips(work),
        },
        "wall_time_seconds": {row["ablation"]: row["wall_time_seconds"] for row in ablation["rows"]},
        "machine": f"{platform.machine()}, 2 CPU cores, OMP_NUM_THREADS=1, --fold-workers 2",
        "git_commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print("| variant | UF1 (mean ± std) | UAR | per-seed UF1 |")
    print("|---|---:|---:|---|")
    for name, values in {**variants, **extra_runs}.items():
        print(f"| {name} | {values['uf1']['mean']:.3f} ± {values['uf1']['std']:.3f} | {values['uar']['mean']:.3f} ± "
              f"{values['uar']['std']:.3f} | {', '.join(f'{v:.3f}' for v in values['uf1']['per_seed'])} |")
    print()
    for label, diff in comparisons.items():
        print(f"{label}: {100 * diff['mean']:+.1f} ± {100 * diff['std']:.1f} UF1 points (seed-paired)")
    plot(result, args.figure)
    print(f"\nwritten to {args.out} and {args.figure}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
