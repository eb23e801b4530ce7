"""A tiny LOSO run in its own process, for the kill-and-resume test.

``python -m tests.scripts.loso_worker --out DIR [--step-delay S]`` runs `run_loso` on the tiny dataset of
`tests.helpers.tiny`; the delay (seconds per optimiser step) slows it down so that a test
can kill it mid-run with SIGKILL.
"""

from __future__ import annotations

import argparse
import sys
import time

from tests.helpers.tiny import make_prepared_dataset, tiny_config_kwargs  # noqa: E402

from fmanet_hf.training.engine import TrainingObserver  # noqa: E402
from fmanet_hf.training.loso import run_loso  # noqa: E402
from fmanet_hf.training.schedule import TrainingSchedule  # noqa: E402


class SlowObserver(TrainingObserver):
    def __init__(self, delay: float):
        self.delay = delay

    def on_optimizer_step(self, fold, epoch, step, sample_ids, global_sample_ids):
        time.sleep(self.delay)


def run(out, *, subjects, per_subject, epochs, seed, observer=None):
    """The worker's LOSO run (also called in-process by the test for the rerun and the reference)."""
    dataset = make_prepared_dataset(subjects=subjects, per_subject=per_subject, image_size=32, seed=seed)
    return run_loso(
        dataset, model_config=tiny_config_kwargs(), out_dir=out,
        schedule=TrainingSchedule(epochs=epochs, batch_size=4, learning_rate=1e-2), seed=seed, progress=False, observer=observer,
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--subjects", type=int, default=6)
    parser.add_argument("--per-subject", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--step-delay", type=float, default=0.0)
    args = parser.parse_args()
    run(args.out, subjects=args.subjects, per_subject=args.per_subject, epochs=args.epochs, seed=args.seed,
        observer=SlowObserver(args.step_delay))
    return 0


if __name__ == "__main__":
    sys.exit(main())
