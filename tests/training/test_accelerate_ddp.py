"""Two-process CPU data parallelism (torchrun + Accelerator(cpu=True), gloo): gradients are
synchronised, the update equals the single-process one on the same global batch, and only the
main process writes the LOSO results."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[2]

from tests.scripts import ddp_train  # noqa: E402  (importing it only defines things; main() runs under torchrun)

from fmanet_hf.training.engine import train_model  # noqa: E402
from fmanet_hf.training.loso import run_loso  # noqa: E402


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory):
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable)) or shutil.which("torchrun")
    command = [torchrun] if torchrun else [sys.executable, "-m", "torch.distributed.run"]
    out = tmp_path_factory.mktemp("ddp")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    completed = subprocess.run(
        [*command, "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
         "-m", "tests.scripts.ddp_train", str(out)],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=180,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return out


def single_process_weights(classifier_dropout: float = 0.0):
    from accelerate import Accelerator

    data = ddp_train.ddp_data()
    model, _ = train_model(ddp_train.init_model(classifier_dropout), data, range(len(data)), ddp_train.DDP_SCHEDULE,
                           seed=0, accelerator=Accelerator(cpu=True))
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


def test_two_ranks_split_batches_and_end_with_identical_weights(two_process_run):
    info = [json.loads((two_process_run / f"rank{r}.json").read_text()) for r in (0, 1)]
    # Two real processes (the `accelerate launch --cpu` trap runs one and says nothing).
    assert [i["world_size"] for i in info] == [2, 2] and [i["rank"] for i in info] == [0, 1]
    assert "MULTI_CPU" in info[0]["distributed_type"]
    # Each global batch of 2 was split 1 + 1: the ranks computed gradients of DIFFERENT samples...
    for step0, step1 in zip(info[0]["steps"], info[1]["steps"]):
        assert step0["global"] == step1["global"] and len(step0["global"]) == 2
        assert len(step0["local"]) == len(step1["local"]) == 1
        assert sorted(step0["local"] + step1["local"]) == sorted(step0["global"])
    # ...yet hold bit-identical weights: the gradients were synchronised.
    weights = [torch.load(two_process_run / f"rank{r}.pt") for r in (0, 1)]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_two_process_update_equals_single_process_update_on_the_global_batch(two_process_run):
    # Plain SGD, no dropout, GroupNorm: the mean of two 1-sample gradients is the 2-sample
    # mean gradient, so 2 x 1 sample per rank must equal 1 x 2 samples in one process.
    reference = single_process_weights()
    distributed = torch.load(two_process_run / "rank0.pt")
    initial = {k: v.detach() for k, v in ddp_train.init_model().state_dict().items()}
    moved = max(float((reference[k] - initial[k]).abs().max()) for k in reference)
    assert moved > 1e-3, "training must move the weights for the comparison to mean anything"
    for key in reference:
        assert torch.allclose(distributed[key], reference[key], atol=1e-5, rtol=0), key


def test_with_dropout_two_processes_differ_from_one_as_the_training_docs_state(two_process_run):
    # docs/training.md: "1 and 2 processes give the same update" holds only when a step draws no
    # random numbers. With dropout each rank masks its own samples with the first rows of its own
    # stream, the single process masks row i for sample i: the same training, other masks.
    docs = " ".join((REPO_ROOT / "docs" / "training.md").read_text(encoding="utf-8").split())
    assert "**only when a training step draws no random numbers**: with `classifier_dropout=0` and without augmentation" in docs
    single = single_process_weights(ddp_train.DROPOUT)
    distributed = [torch.load(two_process_run / f"rank{r}_dropout.pt") for r in (0, 1)]
    # Still one model: the ranks agree bit for bit (gradients synchronised)...
    assert all(torch.equal(distributed[0][k], distributed[1][k]) for k in single)
    # ...but not the single-process one: the classifier moved by far more than float rounding.
    difference = max(float((distributed[0][k] - single[k]).abs().max()) for k in single)
    assert difference > 1e-3, f"dropout {ddp_train.DROPOUT} gave the single-process weights to {difference:g}"
    # Without dropout the same comparison agrees to 1e-5 (the test above): dropout is the cause.
    dropout_free = single_process_weights()
    assert max(float((dropout_free[k] - single[k]).abs().max()) for k in single) > 1e-3  # dropout does act here


def _predictions(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "predictions.jsonl").read_text().splitlines()]


def test_distributed_loso_matches_single_process_and_only_main_writes(two_process_run, tmp_path):
    single = tmp_path / "single"
    run_loso(ddp_train.loso_dataset(), model_config=ddp_train.tiny_config_kwargs(image_size=16), out_dir=single,
             progress=False, **ddp_train.LOSO_SETTINGS)
    expected = _predictions(single)
    for name in ("loso", "loso_fold_parallel"):
        got = _predictions(two_process_run / name)
        assert [g["sample_id"] for g in got] == [e["sample_id"] for e in expected]
        assert [g["predicted"] for g in got] == [e["predicted"] for e in expected]
        probabilities = np.array([[g["probabilities"][c] for c in sorted(g["probabilities"])] for g in got])
        reference = np.array([[e["probabilities"][c] for c in sorted(e["probabilities"])] for e in expected])
        assert np.allclose(probabilities, reference, atol=1e-5, rtol=0), name
        results = json.loads((two_process_run / name / "results.json").read_text())
        assert results["settings"]["world_size"] == 2
        assert results["settings"]["fold_parallel"] is (name == "loso_fold_parallel")
    # Fold-parallel: whole folds per process, trained exactly as one process would.
    got = _predictions(two_process_run / "loso_fold_parallel")
    assert [g["probabilities"] for g in got] == [e["probabilities"] for e in expected]
    # ...dropout included (the docs' advice for bit-comparable runs across process counts).
    single_dropout = tmp_path / "single_dropout"
    run_loso(ddp_train.loso_dataset(), model_config=ddp_train.tiny_config_kwargs(image_size=16, classifier_dropout=ddp_train.DROPOUT),
             out_dir=single_dropout, progress=False, **ddp_train.LOSO_SETTINGS)
    got = _predictions(two_process_run / "loso_fold_parallel_dropout")
    assert [g["probabilities"] for g in got] == [e["probabilities"] for e in _predictions(single_dropout)]
    assert [g["probabilities"] for g in got] != [e["probabilities"] for e in expected]  # dropout changed them

    writes = [json.loads((two_process_run / f"rank{r}_writes.json").read_text()) for r in (0, 1)]
    assert any(path.endswith("results.json") for _, path in writes[0])
    # Rank 1 wrote nothing for the data-parallel run, and only its own fold files in fold-parallel mode.
    assert not [w for w in writes[1] if w[1].startswith(str(two_process_run / "loso") + os.sep)]
    fold_parallel_writes = [w[1] for w in writes[1] if w[1].startswith(str(two_process_run / "loso_fold_parallel") + os.sep)]
    assert fold_parallel_writes, "rank 1 trains folds in fold-parallel mode and writes their files"
    assert all(path.startswith(str(two_process_run / "loso_fold_parallel" / "folds")) for path in fold_parallel_writes)
    written_by_rank1 = {Path(p).name for p in fold_parallel_writes if p.endswith(".json") and not Path(p).name.startswith(".")}
    assert written_by_rank1 == {"s2.json"}  # pending folds s1, s2, s3: rank 1 takes index 1
