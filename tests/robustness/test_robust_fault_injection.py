"""Fault injection: SIGKILL `fmanet-hf loso` (preparation + LOSO + final model) at random points, then finish.

One command runs the whole chain: prepare the SynthME inputs into the cache, train the
LOSO folds (each fold's model saved), train the final model, write the results. It is
killed five times at seeded random moments, each anchored on a different phase (start-up
and preparation, cache written, after the first and second fold, around the final model),
and after every kill the visible files are checked: each JSON parses and each
safetensors file opens. A last, uninterrupted run then completes the work and everything
it leaves must equal a run that was never interrupted: the metrics, every prediction,
every model's bytes and the cached inputs' bytes, with no temporary left anywhere.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
#: Keys whose values are wall-clock measurements or describe the resume itself.
VOLATILE = ("seconds", "created", "folds_resumed")
TEMPORARY_MARKERS = (".tmp", ".partial", ".retired")


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "fmanet_hf.cli", *args]


def loso_command(root: Path, work: Path) -> list[str]:
    return cli(
        "loso", "--dataset", "synthme", "--root", str(root), "--flow-method", "dis", "--size", "32",
        "--num-proc", "1", "--cache-dir", str(work / "cache"), "--out", str(work / "out"), "--epochs", "2",
        "--batch-size", "4", "--seed", "0", "--cpu", "--quiet", "--set", "hidden_sizes=[16,32]",
        "--set", "encoder_hidden_size=16", "--set", "image_size=32", "--save-fold-models", "--train-final-model",
    )


@pytest.fixture(scope="module")
def environment(tmp_path_factory):
    home = tmp_path_factory.mktemp("hf-home")
    return {
        **os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1", "HF_HOME": str(home),
        "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "MPLBACKEND": "Agg",
    }


@pytest.fixture(scope="module")
def synthme(tmp_path_factory, environment):
    root = tmp_path_factory.mktemp("synthme") / "data"
    subprocess.run(cli("synth", "--out", str(root), "--subjects", "3", "--samples-per-class", "1", "--quiet"),
                   env=environment, check=True, capture_output=True, timeout=300)
    return root


def strip_volatile(value):
    if isinstance(value, dict):
        return {k: strip_volatile(v) for k, v in value.items() if not any(word in k for word in VOLATILE)}
    if isinstance(value, list):
        return [strip_volatile(v) for v in value]
    return value


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def temporaries_under(*folders: Path) -> list[Path]:
    return [p for folder in folders for p in folder.rglob("*") if any(m in p.name for m in TEMPORARY_MARKERS)]


def assert_visible_files_are_whole(work: Path) -> None:
    """Every file a later run might read (not hidden, not inside a hidden folder) is complete."""
    from safetensors import safe_open

    for path in files_under(work):
        relative = path.relative_to(work)
        if any(part.startswith(".") for part in relative.parts):
            continue  # temporaries: never read
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".jsonl":
            [json.loads(line) for line in path.read_text().splitlines() if line]
        elif path.suffix == ".safetensors":
            with safe_open(str(path), "pt") as handle:
                assert list(handle.keys())


def wait_for(condition, process, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)


def test_killed_runs_resume_to_the_uninterrupted_results(tmp_path, synthme, environment):
    reference = tmp_path / "reference"
    started = time.monotonic()
    subprocess.run(loso_command(synthme, reference), env=environment, check=True, capture_output=True, timeout=300)
    reference_seconds = time.monotonic() - started

    work = tmp_path / "interrupted"
    out, cache = work / "out", work / "cache"
    rng = random.Random(8)

    def fold_records() -> int:
        return len(list((out / "folds").glob("sub*.json"))) if (out / "folds").is_dir() else 0

    # One anchor per phase; the kill lands a seeded random delay after it.
    anchors = [
        ("start-up or preparation", lambda: True, (0.3 * reference_seconds, 0.8 * reference_seconds)),
        ("cache written", lambda: any((cache / "prepared").glob("*/fmanet_cache.json")), (0.0, 0.4)),
        ("first fold done", lambda: fold_records() >= 1, (0.0, 0.4)),
        ("second fold done", lambda: fold_records() >= 2, (0.0, 0.4)),
        ("all folds done", lambda: fold_records() >= 3, (0.0, 0.3)),
    ]
    kills = []
    for name, condition, (low, high) in anchors:
        process = subprocess.Popen(loso_command(synthme, work), env=environment,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_for(condition, process, timeout=120)
            time.sleep(rng.uniform(low, high))
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
            process.wait(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        stderr = process.stderr.read().decode(errors="replace")
        process.stderr.close()
        assert process.returncode in (0, -signal.SIGKILL), stderr[-3000:]
        if process.returncode == -signal.SIGKILL:
            left = [p.name for p in temporaries_under(out, cache)] if work.exists() else []
            kills.append((name, fold_records(), (out / "results.json").exists(), left))
        assert_visible_files_are_whole(work)

    assert len(kills) >= 3, kills  # most attempts must really interrupt a running process
    assert any(not finished for _, _, finished, _ in kills)
    print("kills (anchor, fold records, results written, temporaries left):", *kills, sep="\n  ")

    subprocess.run(loso_command(synthme, work), env=environment, check=True, capture_output=True, timeout=300)

    # Same numbers and predictions as the run that was never interrupted.
    results = json.loads((out / "results.json").read_text())
    expected = json.loads((reference / "out" / "results.json").read_text())
    assert strip_volatile(results) == strip_volatile(expected)
    assert (out / "predictions.jsonl").read_text() == (reference / "out" / "predictions.jsonl").read_text()
    # Same bytes for every model, figure and cached input; the same set of files.
    produced = {p.relative_to(work).as_posix(): p for p in files_under(work)}
    reference_files = {p.relative_to(reference).as_posix(): p for p in files_under(reference)}
    assert sorted(produced) == sorted(reference_files)
    for name, path in produced.items():
        if path.suffix in (".safetensors", ".png", ".arrow", ".jsonl"):
            assert digest(path) == digest(reference_files[name]), name
        elif path.suffix == ".json":
            assert strip_volatile(json.loads(path.read_text())) == strip_volatile(
                json.loads(reference_files[name].read_text())
            ), name
    assert temporaries_under(out, cache) == []
    assert_visible_files_are_whole(work)
