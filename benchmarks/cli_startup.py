"""Wall time of ``fmanet-hf --help`` and ``fmanet-hf --version`` (issue 15: well under 1 s).

    python benchmarks/cli_startup.py --json benchmarks/results/cli-startup.json \
        [--repeats 15] [--reference-src /path/to/other/src]

Each command runs as a fresh process (``python -m fmanet_hf.cli ...``, what the
``fmanet-hf`` console script does) with this checkout's ``src`` first on ``PYTHONPATH``.
Beside them, in the same interleaved rounds (so machine load hits all alike): the bare
interpreter (``python -c pass``, the floor), ``import torch, transformers`` (what every
command paid before the imports were made lazy) and, with ``--reference-src``, the same
commands from another source tree (e.g. a checkout before the change). The JSON gives
min / median / max seconds per command and the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def time_once(argv: list[str], src: Path) -> float:
    """Seconds from start to exit of ``argv`` (a fresh Python process); fails on a nonzero exit."""
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    started = time.perf_counter()
    result = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{argv} exited {result.returncode}: {result.stderr[-500:]}")
    return elapsed


def commands(reference_src: Path | None) -> dict[str, tuple[list[str], Path]]:
    python = sys.executable
    cases = {
        "python -c pass (interpreter floor)": ([python, "-c", "pass"], SRC),
        "fmanet-hf --help": ([python, "-m", "fmanet_hf.cli", "--help"], SRC),
        "fmanet-hf --version": ([python, "-m", "fmanet_hf.cli", "--version"], SRC),
        "fmanet-hf train --help": ([python, "-m", "fmanet_hf.cli", "train", "--help"], SRC),
        "import torch, transformers (the old cost)": ([python, "-c", "import torch, transformers"], SRC),
    }
    if reference_src is not None:
        cases["reference: fmanet-hf --help"] = ([python, "-m", "fmanet_hf.cli", "--help"], reference_src)
        cases["reference: fmanet-hf --version"] = ([python, "-m", "fmanet_hf.cli", "--version"], reference_src)
    return cases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--repeats", type=int, default=15, help="rounds; each runs every command once (default 15)")
    parser.add_argument("--reference-src", type=Path, help="another source tree to time the same commands from")
    args = parser.parse_args(argv)

    cases = commands(args.reference_src)
    for argv_, src in cases.values():  # warm the file cache; not counted
        time_once(argv_, src)
    load_before = load_average()
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.repeats):
        for name, (argv_, src) in cases.items():
            times[name].append(time_once(argv_, src))
    results = {
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "python": platform.python_version(),
        "cpu_cores": os.cpu_count(),
        "repeats": args.repeats,
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "seconds": {
            name: {
                "min": round(min(values), 3),
                "median": round(statistics.median(values), 3),
                "max": round(max(values), 3),
            }
            for name, values in times.items()
        },
    }
    text = json.dumps(results, indent=1)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
