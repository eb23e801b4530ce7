"""One training step of FMANet on the CPU: float32 against bfloat16 autocast, torch.compile and
channels-last memory, and where the time of a step goes.

    # what docs/performance.md ("bf16") quotes: the bundled model's architecture, batch 16, 64 x 64
    python benchmarks/train_step.py --threads 1 --json benchmarks/results/train-step-2core.json --profile
    # what CI runs (tiny model, 2 steps, untimed):
    python benchmarks/train_step.py --quick --json /tmp/x.json

Every variant builds the same model from the same seed (the bundled checkpoint's config.json,
random weights: the cost of a step does not depend on their values), trains on the same random
batch with AdamW, and is timed after ``--warmup`` steps (for ``*_compile`` variants the first
of them compiles, into an empty inductor cache: that time is recorded as ``warmup_s``). Variants take turns round by round,
so a change of load slows each alike; the median over ``--rounds`` rounds of ``--steps`` steps
is the figure. ``--profile`` adds torch.profiler's self-CPU time per operator for the float32
and bfloat16 eager steps.

Variants: ``fp32``, ``bf16`` (the forward pass under ``torch.autocast(dtype=torch.bfloat16)``,
as ``--precision bf16`` trains), ``bf16_channels_last`` (model and batch in channels-last
memory), ``fp32_compile`` and ``bf16_compile`` (the forward pass through ``torch.compile``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ("fp32", "bf16", "bf16_channels_last", "fp32_compile", "bf16_compile")


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, cwd=REPO_ROOT).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _config(quick: bool):
    from fmanet_hf import FMANetConfig
    from fmanet_hf.pretrained import BUNDLED_MODEL_DIR

    if quick:
        return FMANetConfig(encoder_hidden_size=8, hidden_sizes=[8, 16], depths=[1, 1], num_groups=4, image_size=16)
    return FMANetConfig.from_pretrained(BUNDLED_MODEL_DIR)


def _parameter_count(config) -> int:
    from fmanet_hf import FMANetForImageClassification

    return sum(p.numel() for p in FMANetForImageClassification(config).parameters())


def make_step(variant: str, config, pixel_values, labels):
    """A function running one optimiser step of a fresh, seeded model in ``variant``; returns the loss."""
    import torch
    import torch.nn.functional as F

    from fmanet_hf import FMANetForImageClassification

    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
    torch.manual_seed(0)
    model = FMANetForImageClassification(config).train()
    batch = pixel_values
    if variant.endswith("_channels_last"):
        model = model.to(memory_format=torch.channels_last)
        batch = pixel_values.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    bfloat16 = variant.startswith("bf16")

    def forward(inputs):
        return model(pixel_values=inputs).logits

    forward_pass = torch.compile(forward) if variant.endswith("_compile") else forward

    def step() -> float:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bfloat16):
            logits = forward_pass(batch)
        loss = F.cross_entropy(logits.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    return step


def _profile(step, steps: int) -> list[dict]:
    from torch.profiler import profile

    with profile() as recorded:
        for _ in range(steps):
            step()
    events = sorted(recorded.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    return [
        {"operator": e.key, "self_cpu_ms_per_step": round(e.self_cpu_time_total / 1000.0 / steps, 3), "share": round(e.self_cpu_time_total / total, 4)}
        for e in events[:15]
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: one fold worker's share)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=10, help="steps per round and variant")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="also record the operators of the fp32 and bf16 eager steps")
    parser.add_argument("--quick", action="store_true", help="tiny model, 1 round of 2 steps (CI smoke run)")
    parser.add_argument("--json", required=True, help="write the results here")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.rounds, args.warmup, args.batch_size = 2, 1, 1, 4
    variants = [v for v in args.variants.split(",") if v]
    # A cold compile, as a user's first run pays it: inductor's on-disk cache of an earlier run
    # would otherwise turn the compile into a cache read (measured: 45 s cold, 2-6 s cached).
    compile_cache = tempfile.mkdtemp(prefix="fmanet-train-step-inductor-")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = compile_cache

    import torch

    from fmanet_hf.training.precision import precision_obstacle

    torch.set_num_threads(args.threads)
    obstacle = precision_obstacle("bf16", "cpu")
    skipped = {v: obstacle for v in variants if v.startswith("bf16") and obstacle}
    variants = [v for v in variants if v not in skipped]
    config = _config(args.quick)
    generator = torch.Generator().manual_seed(0)
    size = config.image_size
    pixel_values = torch.randn(args.batch_size, config.num_channels, size, size, generator=generator)
    labels = torch.randint(0, config.num_labels, (args.batch_size,), generator=generator)

    steps, warmup_s = {}, {}
    for variant in variants:
        started = time.perf_counter()
        step = make_step(variant, config, pixel_values, labels)
        for _ in range(args.warmup):
            step()
        warmup_s[variant] = round(time.perf_counter() - started, 3)
        steps[variant] = step
        print(f"{variant}: warm-up {warmup_s[variant]:.1f} s", file=sys.stderr, flush=True)
    rounds: dict[str, list[float]] = {v: [] for v in variants}
    load_before = [round(x, 2) for x in os.getloadavg()]
    for _ in range(args.rounds):
        for variant in variants:
            started = time.perf_counter()
            for _ in range(args.steps):
                loss = steps[variant]()
            rounds[variant].append((time.perf_counter() - started) / args.steps * 1000.0)
            if loss != loss:  # NaN: a variant that does not train is not a speed-up
                raise SystemExit(f"{variant}: the loss became NaN")
    load_after = [round(x, 2) for x in os.getloadavg()]
    baseline = statistics.median(rounds["fp32"]) if "fp32" in rounds else None
    results = {}
    for variant in variants:
        median = statistics.median(rounds[variant])
        results[variant] = {
            "ms_per_step_median": round(median, 2),
            "ms_per_step_min": round(min(rounds[variant]), 2),
            "ms_per_step_rounds": [round(x, 2) for x in rounds[variant]],
            "warmup_s": warmup_s[variant],
            "speedup_vs_fp32": round(baseline / median, 3) if baseline else None,
        }
        print(f"{variant:20s} {median:8.1f} ms/step" + (f"  {baseline / median:.2f}x fp32" if baseline else ""), flush=True)
    profiles = {}
    if args.profile:
        for variant in ("fp32", "bf16"):
            if variant in steps:
                profiles[variant] = _profile(steps[variant], args.steps)
    output = {
        "command": "python benchmarks/train_step.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git_commit": _git_commit(),
        "machine": {"platform": platform.platform(), "cores": os.cpu_count(), "torch": torch.__version__, "threads": args.threads},
        "model": {"quick": args.quick, "parameters": _parameter_count(config)},
        "batch": [args.batch_size, config.num_channels, size, size],
        "steps_per_round": args.steps,
        "rounds": args.rounds,
        "load_before": load_before,
        "load_after": load_after,
        "skipped": skipped,
        "variants": results,
        "profiles": profiles,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(output, indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(compile_cache, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
