"""Load test of the Gradio demo: N concurrent clients each send M classification requests.

Each client is a `gradio_client.Client` in its own thread that waits for its answer before
sending the next request (a closed loop, as visitors do). Latency is measured per request
from the client's side (upload of the three frames + queue wait + processing + download).

    python benchmarks/demo_load.py --clients 8 --requests 5             # starts the app itself
    python benchmarks/demo_load.py --url http://127.0.0.1:7860/ --clients 8 --requests 5

Without ``--url`` the script starts the demo in-process on a free loopback port (default
model, no examples) and classifies one SynthME clip (rendered into ``--cache-dir``).
Prints p50/p95/max latency, throughput and the error count; ``--json FILE`` saves them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import sys
import threading
import time
from dataclasses import dataclass, field

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@dataclass
class LoadResult:
    """Outcome of `run_load`: per-request latencies (seconds), errors, labels and wall time."""

    clients: int
    requests_per_client: int
    latencies_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    def percentile(self, q: float) -> float:
        """The q-th percentile latency (nearest rank), NaN without successful requests."""
        if not self.latencies_s:
            return float("nan")
        ordered = sorted(self.latencies_s)
        rank = max(1, int(round(q / 100.0 * len(ordered) + 0.5 - 1e-9)))
        return ordered[min(rank, len(ordered)) - 1]

    def summary(self) -> dict:
        """JSON-compatible figures."""
        done = len(self.latencies_s)
        return {
            "clients": self.clients,
            "requests_per_client": self.requests_per_client,
            "completed": done,
            "errors": len(self.errors),
            "p50_s": round(self.percentile(50), 3),
            "p95_s": round(self.percentile(95), 3),
            "max_s": round(max(self.latencies_s), 3) if done else None,
            "wall_s": round(self.wall_s, 3),
            "throughput_per_s": round(done / self.wall_s, 3) if self.wall_s else None,
        }


def run_load(url: str, triplet: tuple[str, str, str], *, clients: int = 8, requests_per_client: int = 5,
             model_key: str = "default", api_name: str = "/classify_frames") -> LoadResult:
    """Send ``clients * requests_per_client`` requests from ``clients`` concurrent clients.

    All clients connect first and then start together, so the queue sees the full load.
    """
    from gradio_client import Client, handle_file

    result = LoadResult(clients, requests_per_client)
    lock = threading.Lock()
    connected = threading.Barrier(clients + 1)

    def client_loop() -> None:
        try:
            client = Client(url, verbose=False, download_files=False)
        except Exception as error:  # noqa: BLE001 - a failed connection is a counted error
            with lock:
                result.errors.extend([f"connect: {type(error).__name__}: {error}"] * requests_per_client)
            connected.wait()
            return
        connected.wait()
        for _ in range(requests_per_client):
            started = time.perf_counter()
            try:
                outputs = client.predict(model_key, *(handle_file(path) for path in triplet), api_name=api_name)
            except Exception as error:  # noqa: BLE001 - every failure is counted, none stops the test
                with lock:
                    result.errors.append(f"{type(error).__name__}: {error}")
                continue
            elapsed = time.perf_counter() - started
            with lock:
                result.latencies_s.append(elapsed)
                result.labels.append(str(outputs[0].get("label")))

    threads = [threading.Thread(target=client_loop, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    connected.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    result.wall_s = time.perf_counter() - started
    return result


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running demo (default: start one in this process)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=5, help="requests per client")
    parser.add_argument("--model", default="default", help="model key of the selector (default model: 'default')")
    parser.add_argument("--cache-dir", default=None, help="where the SynthME clip is rendered")
    parser.add_argument("--concurrency", type=int, default=1, help="concurrency limit of a demo this script starts")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)

    from fmanet_hf.demo.app import launch, prepare_examples

    example = prepare_examples(args.cache_dir)[0]
    triplet = (example.onset, example.apex, example.offset)
    demo = None
    url = args.url
    if url is None:
        demo = launch(examples=False, port=_free_port(), prevent_thread_lock=True, quiet=True,
                      concurrency_limit=args.concurrency)
        url = demo.local_url
    try:
        result = run_load(url, triplet, clients=args.clients, requests_per_client=args.requests, model_key=args.model)
    finally:
        if demo is not None:
            demo.close()
    figures = result.summary()
    figures.update({"url": url, "python": platform.python_version(), "cpus": os.cpu_count(),
                    "sample": f"SynthME {example.label} clip", "concurrency_limit": args.concurrency if demo else None})
    print(json.dumps(figures, indent=2))
    for error in result.errors[:5]:
        print("error:", error, file=sys.stderr)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({**figures, "latencies_s": result.latencies_s, "errors": result.errors}, handle, indent=2)
    return 1 if result.errors else 0


if __name__ == "__main__":
    sys.exit(main())
