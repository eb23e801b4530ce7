"""``fmanet-hf demo``: serve the Gradio demo locally.

gradio is imported only when the command runs, so the rest of the CLI works without it.
"""

from __future__ import annotations

import argparse
from typing import Any

from . import ranges
from .common_flags import add_device_argument, add_face_backend_argument, folder_argument
from .output import report, show_progress


def run(args: argparse.Namespace) -> int:
    """Build the demo and serve it until interrupted."""
    from ..demo.app import launch
    from ..devices import resolve_device

    quiet = not show_progress(args)
    demo = launch(
        args.model or None,
        host=args.host,
        port=args.port,
        cache_dir=args.cache_dir,
        examples=not args.no_examples,
        concurrency_limit=args.concurrency,
        max_file_size=args.max_file_size,
        quiet=quiet,
        prevent_thread_lock=quiet,
        device=resolve_device(args.device),
        face_backend=args.face_backend,
    )
    if quiet:  # gradio printed nothing: say where it runs, then serve until interrupted
        report(args, {"url": demo.local_url}, f"FMANet demo running on {demo.local_url} (Ctrl+C stops it)")
        demo.block_thread()
    return 0


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``demo`` to the ``fmanet-hf`` subcommands; returns its parser."""
    demo = subparsers.add_parser(
        "demo",
        help="serve the Gradio demo (three frames or a video; offline)",
        description="Serve the FMANet Gradio demo. Needs `pip install 'fmanet-hf[demo]'`. Makes no network requests.",
    )
    demo.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 exposes it to your network)")
    demo.add_argument("--port", type=ranges.PORT, default=None, help="port (default: 7860, or the next free one)")
    demo.add_argument(
        "--model",
        action="append",
        metavar="DIR",
        help="a local folder holding exported FMANet models (config.json with model_type fmanet); repeatable. "
        "Hub ids are not fetched here: `hf download user/name --local-dir DIR`, then --model DIR",
    )
    demo.add_argument("--cache-dir", type=folder_argument, default=None, help="where the SynthME examples are rendered (default: $FMANET_CACHE or ~/.cache/fmanet-hf)")
    demo.add_argument("--no-examples", action="store_true", help="do not render the SynthME examples")
    demo.add_argument("--concurrency", type=ranges.COUNT, default=1, help="processing jobs at once; others wait in the queue")
    demo.add_argument("--max-file-size", type=ranges.FILE_SIZE, default="20mb", help="upload limit per file, e.g. 20mb")
    add_device_argument(demo, help="where the models run: auto (default: CUDA, else MPS, else CPU), cpu, cuda or mps")
    add_face_backend_argument(demo)
    demo.set_defaults(handler=run)
    return demo


__all__ = ["register", "run"]
