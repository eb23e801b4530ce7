"""Distributed (2-process, CPU, gloo) training check, launched by tests/training/test_accelerate_ddp.py
from the repository root (so that ``tests`` is importable):

    OMP_NUM_THREADS=1 torchrun --nproc_per_node 2 --master_port PORT -m tests.scripts.ddp_train OUT_DIR

Each process writes under OUT_DIR:
- ``rank<r>.pt``: the trained weights of `train_model` (plain SGD, no dropout, GroupNorm),
  plus ``rank<r>.json``: world size, rank and the sample ids it computed gradients of;
- ``rank<r>_dropout.pt``: the same training with ``classifier_dropout=0.5`` (the condition the
  training docs state: with dropout, 2 processes draw other masks than 1 process);
- a LOSO run with batches split across processes (``loso/``) and one with whole folds per
  process (``loso_fold_parallel/``), and the latter again with dropout 0.5
  (``loso_fold_parallel_dropout/``: a fold trained by one process, dropout included);
- ``rank<r>_writes.json``: every file this process opened for writing, created, renamed or
  deleted under those LOSO folders (from a Python audit hook), to prove who writes what.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

# Set by main() from the command line; importing this module (as the test does) has no side effects.
OUT: Path | None = None
LOSO_DIRS: tuple[Path, ...] = ()
writes: list[list[str]] = []

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def audit(event: str, args: tuple) -> None:
    """Record file-system changes under the LOSO folders."""
    paths: list = []
    if event == "open":
        path, mode, flags = args
        if (isinstance(mode, str) and any(c in mode for c in "wax+")) or (mode is None and isinstance(flags, int) and flags & WRITE_FLAGS):
            paths = [path]
    elif event in ("os.rename", "os.mkdir", "os.remove", "os.rmdir", "shutil.rmtree"):
        paths = [a for a in args[:2] if isinstance(a, (str, bytes, os.PathLike))]
    for path in paths:
        text = os.fsdecode(path) if not isinstance(path, int) else ""
        if any(text.startswith(str(d)) for d in LOSO_DIRS):
            writes.append([event, text])


import torch  # noqa: E402
from accelerate import Accelerator  # noqa: E402
from tests.helpers.tiny import make_prepared_dataset, tiny_config_kwargs  # noqa: E402

from fmanet_hf import FMANetConfig, FMANetForImageClassification  # noqa: E402
from fmanet_hf.training.collate import PreparedTensors  # noqa: E402
from fmanet_hf.training.engine import TrainingObserver, train_model  # noqa: E402
from fmanet_hf.training.loso import run_loso  # noqa: E402
from fmanet_hf.training.schedule import TrainingSchedule  # noqa: E402

DDP_SCHEDULE = TrainingSchedule(epochs=2, batch_size=2, learning_rate=0.1, weight_decay=0.0, optimizer="sgd", lr_schedule="constant")
LOSO_SETTINGS = dict(schedule=TrainingSchedule(epochs=1, batch_size=4, learning_rate=1e-2), seed=3)


def ddp_data() -> PreparedTensors:
    """8 samples of 4 subjects at 16x16 (shared with the single-process reference)."""
    return PreparedTensors.from_prepared(make_prepared_dataset(subjects=4, per_subject=2, image_size=16, seed=7))


DROPOUT = 0.5


def init_model(classifier_dropout: float = 0.0) -> FMANetForImageClassification:
    torch.manual_seed(0)
    config = FMANetConfig(**tiny_config_kwargs(image_size=16, classifier_dropout=classifier_dropout), num_labels=3)
    return FMANetForImageClassification(config)


def loso_dataset():
    return make_prepared_dataset(subjects=3, per_subject=2, image_size=16, seed=11)


class LocalIds(TrainingObserver):
    def __init__(self):
        self.steps = []

    def on_optimizer_step(self, fold, epoch, step, sample_ids, global_sample_ids):
        self.steps.append({"local": list(sample_ids), "global": list(global_sample_ids)})


def main(out_dir: str) -> int:
    global OUT, LOSO_DIRS
    OUT = Path(out_dir).resolve()
    LOSO_DIRS = (OUT / "loso", OUT / "loso_fold_parallel", OUT / "loso_fold_parallel_dropout")
    sys.addaudithook(audit)
    accelerator = Accelerator(cpu=True)
    rank = accelerator.process_index
    data = ddp_data()
    observer = LocalIds()
    model, log = train_model(
        init_model(), data, range(len(data)), DDP_SCHEDULE, seed=0, accelerator=accelerator, observer=observer
    )
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, OUT / f"rank{rank}.pt")
    (OUT / f"rank{rank}.json").write_text(
        json.dumps({"world_size": accelerator.num_processes, "rank": rank, "distributed_type": str(accelerator.distributed_type),
                    "steps": observer.steps, "epoch_losses": log.epoch_losses})
    )
    # init_model seeds torch: every process (and the single-process reference) starts its dropout
    # masks from the same stream, so only how the masks meet the samples can differ.
    dropout_model, _ = train_model(init_model(DROPOUT), data, range(len(data)), DDP_SCHEDULE, seed=0, accelerator=accelerator)
    torch.save({k: v.detach().cpu() for k, v in dropout_model.state_dict().items()}, OUT / f"rank{rank}_dropout.pt")
    run_loso(loso_dataset(), model_config=tiny_config_kwargs(image_size=16), out_dir=LOSO_DIRS[0], progress=False,
             accelerator=accelerator, **LOSO_SETTINGS)
    run_loso(loso_dataset(), model_config=tiny_config_kwargs(image_size=16), out_dir=LOSO_DIRS[1], progress=False,
             accelerator=accelerator, fold_parallel=True, **LOSO_SETTINGS)
    run_loso(loso_dataset(), model_config=tiny_config_kwargs(image_size=16, classifier_dropout=DROPOUT), out_dir=LOSO_DIRS[2],
             progress=False, accelerator=accelerator, fold_parallel=True, **LOSO_SETTINGS)
    (OUT / f"rank{rank}_writes.json").write_text(json.dumps(writes))
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: torchrun --nproc_per_node 2 ddp_train.py OUT_DIR")
    sys.exit(main(sys.argv[1]))
