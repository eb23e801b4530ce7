"""FMANet on a GPU: CUDA LOSO, CUDA inference timing and the determinism of a resumed run,
in one script that writes one JSON file (issue 15). It runs on the CPU too (``--device cpu
--tiny``: the suite's smoke test), so it is known to work before a GPU machine is lent.

    # here (OpenCV-contrib and dlib prepare the inputs; the GPU machine has neither):
    fmanet-hf synth --generator 2.0 --people loso --samples-per-class 4 --seed 0 --out /tmp/synthme2-small
    fmanet-hf prepare --dataset synthme --root /tmp/synthme2-small --cache-dir /tmp/gpu-cache
    python benchmarks/gpu_check.py --export-from /tmp/gpu-cache/prepared/<entry> --data .gpu/synthme2-small.npz
    # on the GPU machine (torch with CUDA, this package; no OpenCV or dlib needed):
    python benchmarks/gpu_check.py OUT_FOLDER --data .gpu/synthme2-small.npz --device cuda
    # anywhere, tiny sizes, the inputs made up (what the test suite runs):
    python benchmarks/gpu_check.py OUT_FOLDER --device cpu --tiny

``--data`` is a prepared set exported from a `prepare_dataset` cache entry as
``pixel_values`` (float16, N x 6 x H x W; the values are normalised flows in [-1, 1], so
rounding stays below 1e-3) plus a JSON file beside it with ``label_id``, ``subject``,
``sample_id``, ``dataset`` and ``class_names``. Without ``--data`` the inputs are random
noise with a class-dependent blob (learnable, meaningless): enough to check the machinery.

Sections, each written to ``OUT_FOLDER/gpu_check.json`` as soon as it ends (a later failure
keeps the earlier figures; a failing section records its traceback and the script exits 1):

- ``environment``: torch, CUDA, GPU name, cores, the device used.
- ``loso``: `run_loso` on the device (wall time, accuracy, UF1, UAR); on a GPU also the
  same run on the CPU from the same seed and the largest probability difference (CUDA
  kernels round differently, so equality is not expected); with ``--fold-workers N`` also
  N folds at once sharing the device.
- ``inference``: forward samples/s of `FMANetForImageClassification` at several batch
  sizes on the device (synchronised timings, after warm-up), eager and, with ``--compile``,
  ``torch.compile``; and ``predict_probabilities`` over the whole set.
- ``resume``: determinism of a resumed run: an uninterrupted LOSO, then the same LOSO whose
  folder lost its last folds' records and pooled files (as a run killed after the first
  folds leaves it) rerun so that it resumes; the predictions must match the uninterrupted
  run exactly (``identical``) and the resumed folds must have been retrained.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
import traceback
from pathlib import Path

RESULT_NAME = "gpu_check.json"


# --------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------
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


def made_up_arrays(subjects: int, per_subject: int, size: int, seed: int = 0):
    """(pixel_values float32 (N, 6, size, size), meta) of a learnable made-up set: noise plus a
    magnitude blob whose place depends on the class (3 classes)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    pixel_values, meta = [], {"label_id": [], "subject": [], "sample_id": [], "dataset": [], "class_names": ["a", "b", "c"]}
    for s in range(subjects):
        for k in range(per_subject):
            label = (s + k) % 3
            sample = rng.normal(0.0, 0.1, size=(6, size, size)).astype(np.float32)
            third = size // 3
            sample[2::3, :, label * third : (label + 1) * third] += 0.8  # the magnitude channels
            pixel_values.append(sample)
            meta["label_id"].append(label)
            meta["subject"].append(f"s{s + 1:02d}")
            meta["sample_id"].append(f"s{s + 1:02d}_{k}")
            meta["dataset"].append("made-up")
    return np.stack(pixel_values), meta


def load_dataset(npz: Path | None, *, subjects: int | None, tiny: bool):
    """The prepared ``datasets.Dataset`` the sections use (``torch`` format)."""
    import numpy as np
    from datasets import Array3D, ClassLabel, Dataset, Features, Value

    if npz is None:
        pixel_values, meta = made_up_arrays(subjects or (3 if tiny else 8), 6 if tiny else 24, 16 if tiny else 64)
    else:
        pixel_values = np.load(npz)["pixel_values"].astype(np.float32)
        meta = json.loads(npz.with_suffix(".json").read_text())
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
            **{column: [meta[column][i] for i in keep] for column in ("label_id", "subject", "sample_id", "dataset")},
        },
        features=features,
    )
    return data.with_format("torch", columns=["pixel_values", "label_id"], output_all_columns=True)


# --------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------
def _accelerator(device):
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=device.type == "cpu")
    if accelerator.device.type != device.type:
        raise RuntimeError(f"asked for {device}, Accelerate chose {accelerator.device}")
    return accelerator


def _loso(data, out: Path, device, *, epochs: int, tiny: bool, fold_workers: int = 1) -> dict:
    from fmanet_hf.training.loso import run_loso
    from fmanet_hf.training.schedule import TrainingSchedule

    started = time.perf_counter()
    results = run_loso(
        data,
        out_dir=out,
        schedule=TrainingSchedule(epochs=epochs, batch_size=8 if tiny else 16, learning_rate=2e-3),
        model_config={"image_size": int(data[0]["pixel_values"].shape[-1]), **({"hidden_sizes": [8, 16]} if tiny else {})},
        seed=0,
        accelerator=_accelerator(device),
        progress=False,
        print_summary=False,
        fold_workers=fold_workers,
    )
    return {
        "wall_seconds": round(time.perf_counter() - started, 2),
        "device": results["settings"]["device"],
        "epochs": results["settings"]["schedule"]["epochs"],
        "folds": results["num_folds"],
        "samples": results["num_samples"],
        "accuracy": results["accuracy"],
        "uf1": results["uf1"],
        "uar": results["uar"],
        "folds_resumed": results.get("folds_resumed", 0),
        "fold_workers": fold_workers,
    }


def _probabilities(folder: Path):
    import numpy as np

    rows = [json.loads(line) for line in (folder / "predictions.jsonl").read_text().splitlines()]
    rows.sort(key=lambda row: row["sample_id"])
    return [row["sample_id"] for row in rows], np.array([[row["probabilities"][k] for k in sorted(row["probabilities"])] for row in rows])


def section_loso(data, work: Path, device, *, epochs: int, tiny: bool, fold_workers: int) -> dict:
    """LOSO on the device; on a GPU also on the CPU, with the largest probability difference;
    with ``fold_workers`` > 1 also that many folds at once sharing the device."""
    import numpy as np

    result = {"on_device": _loso(data, work / "loso-device", device, epochs=epochs, tiny=tiny)}
    if fold_workers > 1:
        result["on_device_fold_workers"] = _loso(
            data, work / "loso-device-workers", device, epochs=epochs, tiny=tiny, fold_workers=fold_workers
        )
    if device.type != "cpu":
        import torch

        result["on_cpu"] = _loso(data, work / "loso-cpu", torch.device("cpu"), epochs=epochs, tiny=tiny)
        ids_device, p_device = _probabilities(work / "loso-device")
        ids_cpu, p_cpu = _probabilities(work / "loso-cpu")
        assert ids_device == ids_cpu
        result["max_probability_difference_vs_cpu"] = float(np.abs(p_device - p_cpu).max())
        result["same_predicted_class_share"] = float((p_device.argmax(1) == p_cpu.argmax(1)).mean())
    return result


def _synchronize(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def _seconds_per_call(step, device, repeats: int) -> float:
    for _ in range(3):  # warm-up (kernel selection, compilation)
        step()
    _synchronize(device)
    started = time.perf_counter()
    for _ in range(repeats):
        step()
    _synchronize(device)
    return (time.perf_counter() - started) / repeats


def section_inference(data, device, *, tiny: bool, compile_too: bool) -> dict:
    """Forward throughput at several batch sizes, and predict_probabilities over the set."""
    import torch

    from fmanet_hf import FMANetConfig, FMANetForImageClassification
    from fmanet_hf.training.engine import predict_probabilities

    shape = tuple(data[0]["pixel_values"].shape)
    config = FMANetConfig(num_labels=3, image_size=shape[1], **({"hidden_sizes": [8, 16]} if tiny else {}))
    torch.manual_seed(0)
    model = FMANetForImageClassification(config).to(device).eval()
    batches = (1, 8) if tiny else (1, 64, 256)
    repeats = 3 if tiny else 50
    result: dict = {"input_shape": list(shape), "batch_sizes": list(batches)}
    modes = ["eager"] + (["compile"] if compile_too else [])
    for mode in modes:
        runner = torch.compile(model) if mode == "compile" else model
        with torch.no_grad():
            for batch in batches:
                x = torch.randn(batch, *shape, device=device)
                seconds = _seconds_per_call(lambda: runner(pixel_values=x), device, repeats)
                result[f"forward_b{batch}_{mode}_samples_per_s"] = round(batch / seconds, 1)
                result[f"forward_b{batch}_{mode}_ms_per_batch"] = round(1000 * seconds, 3)
    pixel_values = torch.stack([data[i]["pixel_values"] for i in range(len(data))])
    started = time.perf_counter()
    probabilities = predict_probabilities(model, pixel_values, device=device)
    _synchronize(device)
    result["predict_probabilities_whole_set_seconds"] = round(time.perf_counter() - started, 4)
    result["predict_probabilities_rows_sum_to_one"] = bool(abs(probabilities.sum(1) - 1).max() < 1e-6)
    return result


def section_resume(data, work: Path, device, *, epochs: int, tiny: bool) -> dict:
    """An uninterrupted LOSO vs the same LOSO interrupted after its first folds and resumed."""
    import numpy as np

    from fmanet_hf.training.run_folder import FOLDS_DIR, PREDICTIONS_NAME, RESULTS_NAME

    whole = work / "resume-uninterrupted"
    first = _loso(data, whole, device, epochs=epochs, tiny=tiny)
    resumed_dir = work / "resume-interrupted"
    shutil.copytree(whole, resumed_dir)
    records = sorted((resumed_dir / FOLDS_DIR).glob("*.json"))
    lost = records[len(records) // 2 :]  # as if killed after the first half of the folds
    for path in lost:
        path.unlink()
    for name in (PREDICTIONS_NAME, RESULTS_NAME, "confusion_matrix.png"):
        (resumed_dir / name).unlink(missing_ok=True)
    second = _loso(data, resumed_dir, device, epochs=epochs, tiny=tiny)
    ids_a, p_a = _probabilities(whole)
    ids_b, p_b = _probabilities(resumed_dir)
    return {
        "device": str(device),
        "folds": first["folds"],
        "folds_kept_from_the_interrupted_run": len(records) - len(lost),
        "folds_retrained_on_resume": len(lost),
        "resumed_run_reported_resumed_folds": second["folds_resumed"],
        "identical": bool(ids_a == ids_b and np.array_equal(p_a, p_b)),
        "max_probability_difference": float(np.abs(p_a - p_b).max()) if ids_a == ids_b else None,
        "uninterrupted": first,
        "resumed": second,
    }


# --------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, nargs="?", help=f"folder for {RESULT_NAME} and the runs (required unless --export-from)")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N or mps")
    parser.add_argument("--data", type=Path, help="prepared inputs exported with --export-from (default: made-up inputs)")
    parser.add_argument("--export-from", type=Path, help="a prepare_dataset cache entry to export to --data, then exit")
    parser.add_argument("--subjects", type=int, help="use only the first N subjects")
    parser.add_argument("--epochs", type=int, help="epochs per fold (default 5; 1 with --tiny)")
    parser.add_argument("--tiny", action="store_true", help="tiny model, data and repeats: a smoke test, not a benchmark")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile in the inference section")
    parser.add_argument("--fold-workers", type=int, default=1, help="loso section: also run N folds at once on the device")
    parser.add_argument("--sections", default="loso,inference,resume")
    args = parser.parse_args(argv)
    if args.export_from:
        if args.data is None:
            parser.error("--export-from needs --data (the .npz to write)")
        export_from_cache(args.export_from, args.data)
        return 0
    if args.out is None:
        parser.error("OUT folder is required")

    import torch

    from fmanet_hf.devices import resolve_device
    from fmanet_hf.training.engine import deterministic_torch

    device = resolve_device(args.device)
    epochs = args.epochs or (1 if args.tiny else 5)
    args.out.mkdir(parents=True, exist_ok=True)
    work = args.out / "runs"
    shutil.rmtree(work, ignore_errors=True)  # every check starts from empty run folders
    data = load_dataset(args.data, subjects=args.subjects, tiny=args.tiny)
    report: dict = {
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "environment": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "cuda_available": torch.cuda.is_available(),
            "cuda_version": torch.version.cuda,
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "cpu_cores": os.cpu_count(),
            "device": str(device),
            "data": str(args.data) if args.data else "made-up inputs (noise + class blob)",
            "samples": len(data),
            "subjects": len(set(data.with_format(None)["subject"])),
            "tiny": args.tiny,
        },
        "sections": {},
    }
    sections = {
        "loso": lambda: section_loso(data, work, device, epochs=epochs, tiny=args.tiny, fold_workers=args.fold_workers),
        "inference": lambda: section_inference(data, device, tiny=args.tiny, compile_too=args.compile),
        "resume": lambda: section_resume(data, work, device, epochs=epochs, tiny=args.tiny),
    }
    failed = False
    for name in [s.strip() for s in args.sections.split(",") if s.strip()]:
        started = time.perf_counter()
        try:
            with deterministic_torch():
                report["sections"][name] = {"result": sections[name](), "seconds": round(time.perf_counter() - started, 1)}
        except Exception:  # keep the other sections' figures
            failed = True
            report["sections"][name] = {"error": traceback.format_exc(), "seconds": round(time.perf_counter() - started, 1)}
        print(json.dumps({name: report["sections"][name]}, indent=1), flush=True)
        (args.out / RESULT_NAME).write_text(json.dumps(report, indent=1) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
