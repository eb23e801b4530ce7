"""Smoke test of the benchmark harness (benchmarks/run_benchmarks.py, issue 7).

Runs the runner with ``--quick`` on a tiny SynthME set and checks the shape and internal
consistency of what it writes: every section present, every time positive and finite,
every ratio equal to the quotient of the times it claims to compare, the reference LOSO
labelled as an extrapolation, the markdown block in place. Speed itself is never asserted
(CONTRIBUTING: speed targets belong in benchmarks/, not in timed tests).
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
RUNNER = REPO_ROOT / "benchmarks" / "run_benchmarks.py"
SECTIONS = ("flow_accuracy", "clip_stages", "per_clip", "preprocessing", "latency", "model", "loso")
START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def _load_runner():
    spec = importlib.util.spec_from_file_location("run_benchmarks", RUNNER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _is_time_key(key: str) -> bool:
    return key.endswith("_s") or "seconds" in key


def _time_values(node, key="", inside_time=False):
    """Every number stored under a key naming a time or rate (``*_s``, ``*seconds*``),
    including the numbers of lists and dicts held by such a key."""
    if isinstance(node, dict):
        for child_key, child in node.items():
            yield from _time_values(child, child_key if not inside_time else key, inside_time or _is_time_key(child_key))
    elif isinstance(node, list):
        for child in node:
            yield from _time_values(child, key, inside_time)
    elif inside_time:
        yield key, node


def _assert_ratio(ratio, numerator, denominator, what):
    assert ratio == pytest.approx(numerator / denominator, rel=1e-9), what


@pytest.mark.slow
def test_quick_benchmark_run_writes_consistent_json_and_markdown(tmp_path):
    from fmanet_hf.data.synthetic import generate_synthme

    data = tmp_path / "synthme"
    generate_synthme(data, subjects=3, samples_per_class=1, progress=False)
    result_path, markdown = tmp_path / "results" / "quick.json", tmp_path / "performance.md"
    markdown.write_text("# Performance\n\nProse that must survive.\n")
    command = [
        sys.executable, str(RUNNER), "--data", str(data), "--work-dir", str(tmp_path / "work"),
        "--json", str(result_path), "--quick", "--quiet", "--markdown", str(markdown),
    ]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=REPO_ROOT)
    assert completed.returncode == 0, completed.stderr[-4000:]

    result = json.loads(result_path.read_text())
    assert result["options"]["quick"] is True and "--quick" in result["command"]
    assert result["machine"]["cores"] >= 1 and result["machine"]["cpu_model"]
    assert {"python", "torch", "opencv", "transformers"} <= set(result["versions"])
    assert set(result["sections"]) == set(SECTIONS)
    for name, section in result["sections"].items():
        assert section["status"] == "ok", (name, section.get("error"))
        assert len(section["load_before"]) == 3 and len(section["load_after"]) == 3

    times = list(_time_values(result["sections"]))
    assert len(times) > 40
    for key, value in times:
        assert isinstance(value, (int, float)) and math.isfinite(value) and value > 0, (key, value)

    # Flow accuracy: finite EPEs for every case of every row.
    flow = result["sections"]["flow_accuracy"]
    assert [row["name"] for row in flow["rows"]][0] == "reference"
    assert len(flow["rows"]) == 8
    for row in flow["rows"]:
        for key in ("epe_px", "epe_model_resolution_px", "epe_noisy_px", "epe_noisy_model_resolution_px"):
            assert set(row[key]) == set(flow["cases"]) and len(flow["cases"]) == 5
            assert all(math.isfinite(v) and v >= 0 for v in row[key].values())
            assert row["mean_" + key] == pytest.approx(sum(row[key].values()) / 5)
            assert row["cases_at_or_below_reference"][key] == sum(row[key][c] <= flow["rows"][0][key][c] for c in flow["cases"])
        assert row["time_s"] == pytest.approx(sum(row["seconds_per_case"].values()))

    # Every "speed-up vs reference" is the reference's time over the row's, from the same run.
    for name in ("flow_accuracy", "per_clip", "preprocessing", "latency", "loso"):
        section = result["sections"][name]
        reference = next(row for row in section["rows"] if row["name"] == "reference")
        assert section["reference_time_s"] == reference["time_s"]
        assert reference["speedup_vs_reference"] == pytest.approx(1.0)
        for row in section["rows"]:
            _assert_ratio(row["speedup_vs_reference"], reference["time_s"], row["time_s"], (name, row["name"]))

    preprocessing = result["sections"]["preprocessing"]
    assert preprocessing["num_samples"] == 9
    for row in preprocessing["rows"]:
        _assert_ratio(row["time_s"], row["seconds"], row["samples"], row["name"])
        _assert_ratio(row["samples_per_s"], row["samples"], row["seconds"], row["name"])
    assert {r["name"] for r in preprocessing["rows"]} >= {"reference", "package_cold_all_cores", "package_cold_1_core", "package_cached"}

    stages = result["sections"]["clip_stages"]
    assert [r["name"] for r in stages["rows"]] == ["package_bundled_processor", "package_default"]
    for row in stages["rows"]:
        assert list(row["stage_cpu_s"]) == stages["stages"]
        assert row["time_s"] == pytest.approx(sum(row["stage_cpu_s"].values()))
    per_clip = result["sections"]["per_clip"]
    for row in per_clip["rows"]:
        assert row["samples"] == per_clip["num_samples"]
        _assert_ratio(row["time_s"], row["seconds"], row["samples"], row["name"])

    latency = result["sections"]["latency"]
    for row in latency["rows"]:
        assert len(row["latencies_s"]) == latency["repetitions"]
        assert min(row["latencies_s"]) <= row["p50_s"] <= row["p95_s"] <= max(row["latencies_s"])
        assert row["time_s"] == row["p50_s"]

    model = result["sections"]["model"]
    assert model["parameters"] > 0 and model["flops_per_forward_batch1"] > 0
    rows = {row["name"]: row for row in model["rows"]}
    for name, row in rows.items():
        assert row["status"] in ("ok", "skipped", "failed")
        if row["mode"] == "eager":
            assert row["status"] == "ok"
            _assert_ratio(row["samples_per_s"], row["batch"] * row["iterations"], row["seconds"], name)
        if row["status"] == "ok" and "speedup_vs_eager" in row:
            eager = rows[name.rsplit("_", 1)[0] + "_eager"]
            _assert_ratio(row["speedup_vs_eager"], eager["time_s"], row["time_s"], name)

    # LOSO: the reference is an extrapolation, labelled as such, by its stated formula.
    loso = result["sections"]["loso"]
    reference = next(row for row in loso["rows"] if row["name"] == "reference")
    package = next(row for row in loso["rows"] if row["name"] == "package")
    assert reference["extrapolated"] is True and reference["measured"] is False
    assert reference["label"] == "extrapolated from 1 measured fold" == loso["reference_label"]
    assert reference["num_folds"] == 3 and len(reference["fold_seconds"]) == reference["measured_folds"] == 1
    assert reference["time_s"] == pytest.approx(
        reference["num_folds"] * (reference["prep_seconds"] + sum(reference["fold_seconds"]) / len(reference["fold_seconds"]))
    )
    _assert_ratio(package["training_speedup_vs_reference"], reference["training_time_s"], package["training_time_s"], "training")
    assert package["measured"] is True and package["epochs"] == 1 == reference["epochs"]
    for metric in ("accuracy", "uf1", "uar"):
        assert 0.0 <= package[metric] <= 1.0

    # The markdown block: between the markers, prose outside them kept.
    text = markdown.read_text()
    assert text.startswith("# Performance\n\nProse that must survive.\n")
    assert text.count(START) == 1 and text.count(END) == 1
    block = text[text.index(START) : text.index(END)]
    for name in SECTIONS:
        assert f"### {name}" in block
    assert "extrapolated from 1 measured fold" in block and "--quick" in block


def test_markdown_block_is_replaced_between_the_markers_only(tmp_path):
    runner = _load_runner()
    path = tmp_path / "performance.md"
    path.write_text(f"# Title\n\nbefore\n\n{START}\nold figures\n{END}\n\nafter\n")
    runner.write_markdown(path, "new figures\n", "python benchmarks/run_benchmarks.py ...")
    assert path.read_text() == f"# Title\n\nbefore\n\n{START}\nnew figures\n{END}\n\nafter\n"

    missing = tmp_path / "docs" / "new.md"
    missing.parent.mkdir()
    runner.write_markdown(missing, "figures\n", "python benchmarks/run_benchmarks.py --json x.json")
    text = missing.read_text()
    assert text.startswith("# Performance\n") and "python benchmarks/run_benchmarks.py --json x.json" in text
    assert text.endswith(f"{START}\nfigures\n{END}\n")


def test_percentile_and_speedup_helpers():
    runner = _load_runner()
    values = [0.5, 0.1, 0.4, 0.2, 0.3]
    assert runner.percentile(values, 50) == 0.3
    assert runner.percentile(values, 95) == 0.5
    assert runner.percentile([2.0], 95) == 2.0
    assert runner.speedup(10.0, 2.0) == 5.0


LOSO_SPEED = REPO_ROOT / "benchmarks" / "loso_speed.py"


@pytest.mark.slow
def test_quick_loso_speed_benchmark_runs_every_mode_and_reports_consistent_ratios(tmp_path):
    """benchmarks/loso_speed.py --quick: every mode trains every fold of every seed, and each
    speed-up is the quotient of the totals it compares (the times themselves are not checked)."""
    from fmanet_hf.training.precision import precision_obstacle

    out = tmp_path / "loso-speed.json"
    modes = ["per_fold", "fold_workers_2", "batched_all", "batched_2"]
    if precision_obstacle("bf16", "cpu") is None:
        modes.append("per_fold_bf16")
    completed = subprocess.run(
        [sys.executable, str(LOSO_SPEED), "--quick", "--seeds", "0,1", "--modes", ",".join(modes), "--json", str(out)],
        capture_output=True, text=True, timeout=900,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["data"]["quick"] is True and result["data"]["subjects"] == 6
    assert sorted((run["mode"], run["seed"]) for run in result["runs"]) == sorted((m, s) for m in modes for s in (0, 1))
    for run in result["runs"]:
        assert run["folds"] == 6 and len(run["y_pred"]) == 18
        assert math.isfinite(run["seconds"]) and run["seconds"] > 0 and 0.0 <= run["uf1"] <= 1.0
    assert {run["folds_at_once"] for run in result["runs"] if run["mode"] == "batched_all"} == {6}
    summary = result["summary"]
    reference = result["fastest_reference"]
    assert reference in ("per_fold", "fold_workers_2")
    assert summary[reference]["seconds_total"] == min(summary[m]["seconds_total"] for m in ("per_fold", "fold_workers_2"))
    for mode in [m for m in modes if m not in ("per_fold", "fold_workers_2")]:
        expected = summary[reference]["seconds_total"] / summary[mode]["seconds_total"]
        assert summary[mode]["speedup_vs_fastest_reference"] == pytest.approx(expected, abs=1e-3), mode


def test_gpu_check_runs_on_the_cpu_and_finds_a_resumed_run_identical(tmp_path):
    """benchmarks/gpu_check.py's CPU smoke run (--device cpu --tiny): every section produces
    figures, and the resumed LOSO gives the uninterrupted run's predictions exactly."""
    out = tmp_path / "gpu-check"
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "gpu_check.py"), str(out), "--device", "cpu", "--tiny"],
        capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((out / "gpu_check.json").read_text())
    assert report["environment"]["device"] == "cpu" and report["environment"]["tiny"] is True
    sections = report["sections"]
    assert set(sections) == {"loso", "inference", "resume"}
    assert all("error" not in section for section in sections.values())
    loso = sections["loso"]["result"]["on_device"]
    assert loso["device"] == "cpu" and loso["folds"] == report["environment"]["subjects"] == 3
    inference = sections["inference"]["result"]
    for batch in inference["batch_sizes"]:
        seconds = inference[f"forward_b{batch}_eager_ms_per_batch"] / 1000
        assert math.isfinite(seconds) and seconds > 0
        assert inference[f"forward_b{batch}_eager_samples_per_s"] == pytest.approx(batch / seconds, rel=0.02)
    resume = sections["resume"]["result"]
    assert resume["identical"] is True and resume["max_probability_difference"] == 0.0
    assert resume["folds_retrained_on_resume"] >= 1
    assert resume["resumed_run_reported_resumed_folds"] == resume["folds_kept_from_the_interrupted_run"] >= 1


def test_train_step_benchmark_times_every_variant_and_profiles_the_eager_steps(tmp_path):
    """benchmarks/train_step.py --quick: each variant trains (finite loss, positive times), its
    speed-up is fp32's median over its own, and the profiles name aten operators."""
    from fmanet_hf.training.precision import precision_obstacle

    target = tmp_path / "step.json"
    variants = ["fp32", "bf16", "bf16_channels_last"]
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "train_step.py"), "--quick", "--profile",
         "--variants", ",".join(variants), "--json", str(target)],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(target.read_text())
    bf16_runs = precision_obstacle("bf16", "cpu") is None
    measured = variants if bf16_runs else ["fp32"]
    assert sorted(figures["variants"]) == sorted(measured)
    assert sorted(figures["skipped"]) == ([] if bf16_runs else ["bf16", "bf16_channels_last"])
    assert figures["batch"] == [4, 6, 16, 16] and figures["model"]["parameters"] > 0
    fp32 = figures["variants"]["fp32"]["ms_per_step_median"]
    for name, row in figures["variants"].items():
        assert 0 < row["ms_per_step_min"] <= row["ms_per_step_median"], name
        assert row["speedup_vs_fp32"] == pytest.approx(fp32 / row["ms_per_step_median"], abs=2e-3), name
    assert any(entry["operator"].startswith("aten::") for entry in figures["profiles"]["fp32"])
    assert sum(entry["share"] for entry in figures["profiles"]["fp32"]) <= 1.0 + 1e-6


@pytest.mark.slow
def test_device_checks_script_runs_every_check_on_the_cpu_and_leaves_five_files(tmp_path):
    """benchmarks/device_checks.sh run --device cpu --quick: the one command a lent GPU machine
    runs, wired end to end on the CPU: both benchmarks ran and their JSON came back."""
    out = tmp_path / "out"
    result = subprocess.run(
        ["bash", str(REPO_ROOT / "benchmarks" / "device_checks.sh"), "run", str(out), "--device", "cpu", "--quick"],
        capture_output=True, text=True, timeout=900, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == [
        "environment.txt", "gpu_check.json", "log.txt", "loso-speed-gpu-seeds-0.json", "loso-speed-gpu-seeds-1-2.json",
    ]
    log = (out / "log.txt").read_text()
    assert "gpu_check exit 0" in log and "loso_speed seeds 0 exit 0" in log and "loso_speed seeds 1,2 exit 0" in log
    check = json.loads((out / "gpu_check.json").read_text())
    assert set(check["sections"]) == {"loso", "inference", "resume"} and check["sections"]["resume"]["result"]["identical"] is True
    for name, seeds in (("loso-speed-gpu-seeds-0.json", [0]), ("loso-speed-gpu-seeds-1-2.json", [1, 2])):
        speed = json.loads((out / name).read_text())
        assert speed["seeds"] == seeds and sorted(speed["summary"]) == ["batched_all", "per_fold"]
    assert "fmanet_hf" in (out / "environment.txt").read_text()


def test_cli_startup_benchmark_writes_its_figures(tmp_path):
    """benchmarks/cli_startup.py with one round: the structure only (its speed is the benchmark's)."""
    target = tmp_path / "cli.json"
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "cli_startup.py"), "--repeats", "1", "--json", str(target)],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    seconds = json.loads(target.read_text())["seconds"]
    assert {"fmanet-hf --help", "fmanet-hf --version", "python -c pass (interpreter floor)"} <= set(seconds)
    for figures in seconds.values():
        assert 0 < figures["min"] <= figures["median"] <= figures["max"]


def test_loso_subjects_are_spread_evenly_in_natural_order():
    runner = _load_runner()
    names = [f"sub{n:02d}" for n in range(68, 0, -1)]  # given in reverse: the choice sorts them itself
    assert runner.chosen_loso_subjects(names, 17) == [f"sub{n:02d}" for n in range(1, 69, 4)]
    assert runner.chosen_loso_subjects(["s10", "s2", "s1"], 2) == ["s1", "s2"]  # natural order: s2 before s10
    assert runner.chosen_loso_subjects(names, 68) == sorted(names)
    for count in (0, 69):
        with pytest.raises(ValueError, match="--loso-subjects"):
            runner.chosen_loso_subjects(names, count)


@pytest.mark.slow
def test_quick_loso_on_a_subject_subset_measures_every_pipeline_in_full(tmp_path):
    """--loso-subjects: the reference and both package rows run every fold of the chosen
    subjects (no extrapolation), and each reports pooled metrics of exactly those clips."""
    from fmanet_hf.data.synthetic import generate_synthme

    data = tmp_path / "synthme"
    generate_synthme(data, subjects=3, samples_per_class=1, progress=False)
    result_path = tmp_path / "loso.json"
    command = [
        sys.executable, str(RUNNER), "--data", str(data), "--work-dir", str(tmp_path / "work"), "--json", str(result_path),
        "--quick", "--quiet", "--sections", "loso", "--loso-subjects", "2",
    ]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=REPO_ROOT)
    assert completed.returncode == 0, completed.stderr[-4000:]
    loso = json.loads(result_path.read_text())["sections"]["loso"]
    assert loso["status"] == "ok" and loso["mode"] == "subset"
    assert loso["subjects"] == ["sub01", "sub02"] and loso["num_subjects_in_set"] == 3
    rows = {row["name"]: row for row in loso["rows"]}
    assert list(rows) == ["reference", "package", "package_1_process"]
    reference = rows["reference"]
    assert reference["label"] == "measured in full on 2 of 3 subjects" == loso["reference_label"]
    assert len(reference["fold_seconds"]) == len(reference["fold_prep_seconds"]) == 2
    assert len(reference["y_true"]) == 6  # 3 clips per subject (one per class), both folds pooled
    for row in rows.values():
        assert row["measured"] is True and row["extrapolated"] is False
        assert row["num_folds"] == 2 and row["num_samples"] == 6 and row["epochs"] == 1
        assert 0.0 <= row["accuracy"] <= 1.0 and 0.0 <= row["uf1"] <= 1.0 and 0.0 <= row["uar"] <= 1.0
        assert math.isfinite(row["time_s"]) and row["time_s"] > 0 and 0 < row["training_time_s"] <= row["time_s"]
        _assert_ratio(row["speedup_vs_reference"], reference["time_s"], row["time_s"], row["name"])
    # The reference's pooled accuracy is the share of its own pooled predictions that are right.
    correct = sum(a == b for a, b in zip(reference["y_true"], reference["y_pred"]))
    assert reference["accuracy"] == pytest.approx(correct / 6)
    assert "--num-proc" not in rows["package"]["command"] and rows["package_1_process"]["command"].endswith("--num-proc 1")


@pytest.mark.parametrize("version", [1, 2])
def test_saved_processor_folders_hold_their_formats_settings(version):
    """benchmarks/processors/formatN (what the evidence script passes) is format N as the
    processor defines it, so a run named "format N" really prepared format-N inputs."""
    from fmanet_hf import FMANetImageProcessor

    saved = FMANetImageProcessor.from_pretrained(REPO_ROOT / "benchmarks" / "processors" / f"format{version}")
    declared = FMANetImageProcessor(processor_format_version=version)
    assert saved.processor_format_version == version
    volatile = {"auto_map", "image_processor_type", "_processor_class"}
    assert {k: v for k, v in saved.to_dict().items() if k not in volatile} == {
        k: v for k, v in declared.to_dict().items() if k not in volatile
    }
    assert saved.flow_method == {1: "tvl1", 2: "dis"}[version]


def test_evidence_collector_names_the_processor_and_refuses_mixed_runs(tmp_path):
    spec = importlib.util.spec_from_file_location("collect", REPO_ROOT / "benchmarks" / "collect_synthme2_evidence.py")
    collect = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(collect)
    prepared = tmp_path / "cache" / "prepared"
    for entry, version, flow in (("a", 2, "dis"), ("b-skipfaceless", 2, "dis")):
        (prepared / entry).mkdir(parents=True)
        settings = {"processor_format_version": version, "flow_method": flow}
        (prepared / entry / "fmanet_cache.json").write_text(json.dumps({"processor_settings": settings}))
    assert collect.processor_of_the_runs(tmp_path) == {
        "processor_format_version": 2, "flow_method": "dis", "folder": "benchmarks/processors/format2"}
    (prepared / "c").mkdir()
    (prepared / "c" / "fmanet_cache.json").write_text(json.dumps({"processor_settings": {"processor_format_version": 1, "flow_method": "tvl1"}}))
    with pytest.raises(SystemExit, match="different processors"):
        collect.processor_of_the_runs(tmp_path)
