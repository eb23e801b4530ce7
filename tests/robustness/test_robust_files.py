"""Files: atomic writes under SIGKILL, sweeping of dead writers' temporaries, stale caches rebuilt."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fmanet_hf.atomic import atomic_directory, atomic_write_json, remove_stale_temporaries
from fmanet_hf.data import prepare as prepare_module
from fmanet_hf.data.prepare import MANIFEST_NAME, SAMPLE_STORE_DIR, cache_path_for, prepare_dataset

REPO = Path(__file__).resolve().parents[2]

# A writer that stops for good just before its rename: the moment a crash would hit.
_STALLED_WRITER = textwrap.dedent(
    """
    import importlib.util, os, sys, time
    # atomic.py alone (standard library only): no need to import torch for this.
    spec = importlib.util.spec_from_file_location("atomic", sys.argv[4])
    atomic = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(atomic)
    def stall(*args, **kwargs):
        open(sys.argv[3], "w").close()  # tell the test we are inside the write
        time.sleep(600)
    atomic.os.replace = stall
    if sys.argv[1] == "file":
        atomic.atomic_write_json(sys.argv[2], {"version": "new"})
    else:
        with atomic.atomic_directory(sys.argv[2]) as staging:
            (staging / "weights.bin").write_bytes(b"new" * 1000)
    """
)


def kill_writer_mid_write(kind: str, target: Path, tmp_path: Path) -> None:
    ready = tmp_path / f"ready-{kind}"
    module = REPO / "src" / "fmanet_hf" / "atomic.py"
    process = subprocess.Popen([sys.executable, "-c", _STALLED_WRITER, kind, str(target), str(ready), str(module)])
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert process.poll() is None and time.monotonic() < deadline, "writer never reached the rename"
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL


def test_killed_file_write_leaves_the_old_file_and_a_sweepable_temporary(tmp_path):
    target = tmp_path / "results.json"
    atomic_write_json(target, {"version": "old"})
    kill_writer_mid_write("file", target, tmp_path)
    assert json.loads(target.read_text()) == {"version": "old"}
    leftovers = [p for p in tmp_path.iterdir() if p.name.startswith(".results.json.")]
    assert len(leftovers) == 1 and json.loads(leftovers[0].read_text()) == {"version": "new"}  # complete, never renamed
    assert remove_stale_temporaries(tmp_path) == leftovers
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ready-file", "results.json"]


def test_killed_folder_write_leaves_the_old_folder(tmp_path):
    target = tmp_path / "final_model"
    with atomic_directory(target) as staging:
        (staging / "weights.bin").write_bytes(b"old")
    kill_writer_mid_write("folder", target, tmp_path)
    assert (target / "weights.bin").read_bytes() == b"old"
    assert len(remove_stale_temporaries(tmp_path)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["final_model", "ready-folder"]


def test_a_live_writers_temporary_is_left_alone(tmp_path):
    with atomic_directory(tmp_path / "entry") as staging:
        (staging / "part").write_text("in progress")
        assert remove_stale_temporaries(tmp_path) == []  # this process is alive
        assert (staging / "part").exists()
    assert (tmp_path / "entry" / "part").read_text() == "in progress"


def test_atomic_files_get_ordinary_permissions(tmp_path):
    atomic_write_json(tmp_path / "atomic.json", {})
    (tmp_path / "plain.json").write_text("{}")
    assert (tmp_path / "atomic.json").stat().st_mode & 0o777 == (tmp_path / "plain.json").stat().st_mode & 0o777


# ----------------------------------------------------------------- the prepared-input cache
@pytest.fixture
def tiny_dataset(tmp_path):
    import datasets

    rng = np.random.default_rng(3)
    base = (rng.random((40, 40)) * 255).astype(np.uint8)
    rows = []
    for index in range(2):
        paths = []
        for phase, shift in zip(("onset", "apex", "offset"), (0, 1 + index, 0)):
            path = tmp_path / "frames" / f"s{index}_{phase}.png"
            path.parent.mkdir(exist_ok=True)
            Image.fromarray(np.roll(base, shift, axis=1)).save(path)
            paths.append(str(path))
        rows.append({"sample_id": f"s{index}", "onset_path": paths[0], "apex_path": paths[1], "offset_path": paths[2],
                     "label": "x", "label_id": 0})
    return datasets.Dataset.from_list(rows)


@pytest.fixture
def processor():
    from fmanet_hf import FMANetImageProcessor

    return FMANetImageProcessor(align_faces=False, crop_size=None, stabilization="none", flow_method="dis",
                                size={"height": 16, "width": 16})


@pytest.fixture
def counted(monkeypatch):
    calls = []
    original = prepare_module._process_example

    def counting(example, processor, **options):
        calls.append(example["sample_id"])
        return original(example, processor, **options)

    monkeypatch.setattr(prepare_module, "_process_example", counting)
    return calls


def _edit_manifest(folder: Path, **changes) -> None:
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    manifest.update(changes)
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))


def _truncate_arrow(entry: Path) -> None:
    arrow = next((entry / "data").glob("*.arrow"))
    arrow.write_bytes(arrow.read_bytes()[:100])


STALE_CASES = {
    "format-version": lambda entry: _edit_manifest(entry, cache_format_version=0),
    "other-settings": lambda entry: _edit_manifest(entry, processor_settings={"flow_method": "tvl1"}),
    "sample-count": lambda entry: _edit_manifest(entry, num_samples=5),
    "copied-entry": lambda entry: _edit_manifest(entry, entry="0000000000000000-0000000000000000"),
    "no-manifest": lambda entry: (entry / MANIFEST_NAME).unlink(),
    "truncated-arrow": _truncate_arrow,
}


@pytest.mark.parametrize("damage", list(STALE_CASES))
def test_a_stale_or_damaged_cache_is_rebuilt(tiny_dataset, processor, counted, tmp_path, caplog, damage):
    cache = tmp_path / "cache"
    first = prepare_dataset(tiny_dataset, processor, cache, num_proc=1, progress=False)
    expected = np.stack([np.asarray(row["pixel_values"]) for row in first])
    entry = cache_path_for(tiny_dataset, processor, cache)
    STALE_CASES[damage](entry)
    counted.clear()
    with caplog.at_level(logging.WARNING, logger="fmanet_hf.data.prepare"):
        rebuilt = prepare_dataset(tiny_dataset, processor, cache, num_proc=1, progress=False)
    assert sorted(counted) == ["s0", "s1"]  # really recomputed, not trusted
    np.testing.assert_array_equal(np.stack([np.asarray(row["pixel_values"]) for row in rebuilt]), expected)
    if damage != "no-manifest":
        assert any("rebuilding" in r.getMessage() for r in caplog.records)
    assert json.loads((entry / MANIFEST_NAME).read_text())["num_samples"] == 2
    assert sorted(p.name for p in cache.iterdir()) == sorted([entry.name, SAMPLE_STORE_DIR])  # no temporaries beside the entry


def test_a_dead_preparations_partial_entry_is_swept(tiny_dataset, processor, tmp_path):
    cache = tmp_path / "cache"
    entry = cache_path_for(tiny_dataset, processor, cache)
    kill_writer_mid_write("folder", entry, tmp_path)  # a killed run's half-built entry
    assert not entry.exists() and len(list(cache.iterdir())) == 1
    prepare_dataset(tiny_dataset, processor, cache, num_proc=1, progress=False)
    assert sorted(p.name for p in cache.iterdir()) == sorted([entry.name, SAMPLE_STORE_DIR])
