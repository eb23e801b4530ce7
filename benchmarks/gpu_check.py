"""CUDA check and timings of FMANet training on a GPU (run where one is lent; CI has none).

    python benchmarks/gpu_check.py --export-from CACHE_ENTRY --data .gpu/megc_size.npz   # here
    python benchmarks/gpu_check.py --data .gpu/megc_size.npz --out results.json           # there

``--data`` is a MEGC-size prepared set exported from a `prepare_dataset` cache entry
(``<cache-dir>/prepared/<key>``) as ``pixel_values`` (float16, N x 6 x 64 x 64) plus a JSON
file beside it with ``label_id``, ``subject``, ``sample_id``, ``dataset`` and
``class_names``: the GPU machine has no OpenCV-contrib or dlib to prepare it, and float16
halves the transfer (the values are normalised flows in [-1, 1]; rounding below 1e-3).

Sections, each timed and written to the JSON as soon as it ends (a later failure keeps
the earlier figures):
- ``cuda_training``: a 4-subject LOSO on CUDA and on CPU from the same seed: both finish,
  accuracies and the largest probability difference are recorded (CUDA kernels round
  differently, so equality is not expected).
- ``model``: forward samples/s at batch 1, 64 and 256, and a training step (batch 16 and
  64), eager and ``torch.compile``.
- ``loso_gpu``: full LOSO on CUDA with the ``auto`` schedule, in-process and with 4 and 8
  fold workers sharing the GPU; the 15-epoch schedule with 8 workers (what the shorter
  schedule costs in UF1).
- ``loso_cpu_cores``: 17-fold LOSO on the machine's CPU cores, 1 process vs one fold worker
  per core (what fold workers give when there are many cores).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path


def export_from_cache(entry: Path, npz: Path) -> None:
    """Write ``npz`` (+ ``.json``) from a prepare_dataset cache entry folder."""
    import numpy as np
    from datasets import load_from_disk

    data = load_from_disk(str(entry / "data"))
    pixel_values = np.asarray(data.with_format("numpy", columns=["pixel_values"])["pixel_values"], dtype=np.float32)
    meta = {c: list(data[c]) for c in ("label_id", "subject", "sample_id", "dataset")}
    meta["class_names"] = data.features["label_id"].names
    npz.parent.mkdir(parents=True, exist_ok=True)
    np.savez(npz, pixel_values=pixel_values.astype(np.float16))
    npz.with_suffix(".json").write_text(json.dumps(meta))


def _dataset(npz: Path, subjects: int | None = None):
    import numpy as np
    from datasets import Array3D, ClassLabel, Dataset, Features, Value

    arrays = np.load(npz)
    meta = json.loads(npz.with_suffix(".json").read_text())
    pixel_values = arrays["pixel_values"].astype(np.float32)
    keep = list(range(len(meta["subject"])))
    if subjects is not None:
        chosen = sorted(set(meta["subject"]))[:subjects]
        keep = [i for i, s in enumerate(meta["subject"]) if s in chosen]
    features = Features(
        {
            "pixel_values": Array3D(shape=pixel_values.shape[1:], dtype="float32"),
            "label_id": ClassLabel(names=meta["class_names"]),
            "subject": Value("string"),
            "sample_id": Value("string"),
            "dataset": Value("string"),
        }
    )
    data = Dataset.from_dict(
        {
            "pixel_values": pixel_values[keep],
            "label_id": [meta["label_id"][i] for i in keep],
            "subject": [meta["subject"][i] for i in keep],
            "sample_id": [meta["sample_id"][i] for i in keep],
            "dataset": [meta["dataset"][i] for i in keep],
        },
        features=features,
    )
    return data.with_format("torch", columns=["pixel_values", "label_id"], output_all_columns=True)


def _loso(data, out: Path, *, cpu: bool, epochs, fold_workers: int = 1) -> dict:
    from accelerate import Accelerator

    from fmanet_hf.training.loso import run_loso
    from fmanet_hf.training.schedule import TrainingSchedule

    started = time.perf_counter()
    results = run_loso(
        data,
        out_dir=out,
        schedule=TrainingSchedule(epochs=epochs, batch_size=16, learning_rate=2e-3),
        seed=0,
        accelerator=Accelerator(cpu=cpu),
        fold_workers=fold_workers,
        progress=False,
    )
    return {
        "wall_seconds": round(time.perf_counter() - started, 2),
        "epochs": results["settings"]["schedule"]["epochs"],
        "fold_workers": fold_workers,
        "device": results["settings"]["device"],
        "folds": results["num_folds"],
        "accuracy": results["accuracy"],
        "uf1": results["uf1"],
        "uar": results["uar"],
    }


def _throughput(step, repeats: int) -> float:
    import torch

    for _ in range(3):
        step()
    torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(repeats):
        step()
    torch.cuda.synchronize()
    return (time.perf_counter() - started) / repeats


def section_cuda_training(npz: Path, work: Path) -> dict:
    import numpy as np

    data = _dataset(npz, subjects=4)
    gpu = _loso(data, work / "tiny-gpu", cpu=False, epochs=5)
    cpu = _loso(data, work / "tiny-cpu", cpu=True, epochs=5)

    def probabilities(folder: Path):
        lines = [json.loads(line) for line in (folder / "predictions.jsonl").read_text().splitlines()]
        return np.array([[row["probabilities"][k] for k in sorted(row["probabilities"])] for row in lines])

    difference = float(np.abs(probabilities(work / "tiny-gpu") - probabilities(work / "tiny-cpu")).max())
    return {"gpu": gpu, "cpu": cpu, "max_probability_difference": difference}


def section_model() -> dict:
    import torch

    from fmanet_hf import FMANetConfig, FMANetForImageClassification

    device = torch.device("cuda")
    results: dict = {}
    for mode in ("eager", "compile"):
        torch.manual_seed(0)
        model = FMANetForImageClassification(FMANetConfig(num_labels=3)).to(device)
        runner = torch.compile(model) if mode == "compile" else model
        model.eval()
        with torch.no_grad():
            for batch in (1, 64, 256):
                x = torch.randn(batch, 6, 64, 64, device=device)
                seconds = _throughput(lambda: runner(pixel_values=x), 50)
                results[f"forward_b{batch}_{mode}_samples_per_s"] = round(batch / seconds, 1)
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
        for batch in (16, 64):
            x = torch.randn(batch, 6, 64, 64, device=device)
            y = torch.randint(0, 3, (batch,), device=device)

            def train_step():
                loss = torch.nn.functional.cross_entropy(runner(pixel_values=x).logits, y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()

            seconds = _throughput(train_step, 50)
            results[f"train_step_b{batch}_{mode}_samples_per_s"] = round(batch / seconds, 1)
    return results


def section_loso_gpu(npz: Path, work: Path) -> dict:
    data = _dataset(npz)
    runs = {}
    runs["auto_in_process"] = _loso(data, work / "gpu-auto-1", cpu=False, epochs="auto")
    runs["auto_4_workers"] = _loso(data, work / "gpu-auto-4", cpu=False, epochs="auto", fold_workers=4)
    runs["auto_8_workers"] = _loso(data, work / "gpu-auto-8", cpu=False, epochs="auto", fold_workers=8)
    runs["epochs15_8_workers"] = _loso(data, work / "gpu-15-8", cpu=False, epochs=15, fold_workers=8)
    return runs


def section_loso_cpu_cores(npz: Path, work: Path) -> dict:
    data = _dataset(npz, subjects=17)
    cores = os.cpu_count() or 1
    return {
        "cores": cores,
        "in_process": _loso(data, work / "cpu-1", cpu=True, epochs=5),
        "one_worker_per_core": _loso(data, work / "cpu-n", cpu=True, epochs=5, fold_workers=min(cores, 17)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--out", type=Path, help="results JSON (required unless --export-from)")
    parser.add_argument("--export-from", type=Path, help="a prepare_dataset cache entry to export to --data, then exit")
    parser.add_argument("--work", default="/tmp/fmanet-gpu-check", type=Path)
    parser.add_argument("--sections", default="cuda_training,model,loso_gpu,loso_cpu_cores")
    args = parser.parse_args()
    if args.export_from:
        export_from_cache(args.export_from, args.data)
        return 0
    if args.out is None:
        parser.error("--out is required")

    import torch

    report: dict = {
        "command": " ".join(sys.argv),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda_available": torch.cuda.is_available(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "cpu_cores": os.cpu_count(),
        "sections": {},
    }
    sections = {
        "cuda_training": lambda: section_cuda_training(args.data, args.work),
        "model": section_model,
        "loso_gpu": lambda: section_loso_gpu(args.data, args.work),
        "loso_cpu_cores": lambda: section_loso_cpu_cores(args.data, args.work),
    }
    for name in [s.strip() for s in args.sections.split(",") if s.strip()]:
        started = time.perf_counter()
        try:
            report["sections"][name] = {"result": sections[name](), "seconds": round(time.perf_counter() - started, 1)}
        except Exception:  # keep the other sections' figures
            report["sections"][name] = {"error": traceback.format_exc(), "seconds": round(time.perf_counter() - started, 1)}
        print(json.dumps({name: report["sections"][name]}, indent=1), flush=True)
        args.out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
