"""How every ``fmanet-hf`` command reports: ``--json``, ``--quiet`` and ``-v``, declared once
and meaning the same on every command.

- ``--json``: stdout holds one JSON object, the command's result, and nothing else (notes
  go to stderr); no progress bar.
- ``--quiet``: no progress bar, table or per-step line; the final result line is still printed.
- ``-v`` / ``-vv``: more log output (INFO, then DEBUG, which also raises transformers' and
  datasets' own verbosity); accepted before the subcommand (``fmanet-hf -v loso``) and after
  it (``fmanet-hf loso ... -v``), and the counts add up.

Under ``--json`` or ``--quiet`` the progress bars of the libraries are switched off too:
transformers' weight-loading and shard-writing bars and huggingface_hub's download bars
through ``HF_HUB_DISABLE_PROGRESS_BARS`` (read when they are imported, which in a CLI run
happens inside the command; worker processes inherit it), and through their switches when
they were imported before (the tests run commands in-process). datasets' ``map`` bars
follow the ``progress`` argument the commands pass to `fmanet_hf.data.prepare.prepare_dataset`
(its environment variable is not used: datasets would then warn each time the package
turns its bars back on).

`fmanet_hf.cli` adds the flags to every command (`add_output_arguments`) and runs the
command inside `configured`; a command reads `show_progress` and hands its
result to `report`. Standard library only: cheap to import.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from typing import Any, Iterable, Iterator

#: Environment variables that switch the libraries' progress bars off when set to 1.
PROGRESS_BAR_VARIABLES = ("HF_HUB_DISABLE_PROGRESS_BARS",)
#: Environment variables of the libraries' own log levels (raised by ``-vv``).
LIBRARY_VERBOSITY_VARIABLES = ("TRANSFORMERS_VERBOSITY", "DATASETS_VERBOSITY")


def add_verbose_argument(parser: Any, *, dest: str = "verbose") -> None:
    """``-v/--verbose`` (repeatable) on ``parser``; the top-level parser and each subcommand use
    different ``dest`` so argparse does not let one overwrite the other."""
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, dest=dest,
        help="more log output: -v progress details (INFO), -vv debugging (DEBUG, libraries too)",
    )


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``output`` group of every command: ``--json``, ``--quiet``, ``-v``."""
    group = parser.add_argument_group("output")
    modes = group.add_mutually_exclusive_group()
    modes.add_argument(
        "--json", action="store_true",
        help="print the result as one JSON object on stdout (nothing else there); no progress bars",
    )
    modes.add_argument(
        "--quiet", action="store_true", help="no progress bars, tables or per-step lines; the final result line stays",
    )
    add_verbose_argument(group, dest="verbose_after_command")


def verbosity(args: argparse.Namespace) -> int:
    """How many ``-v`` were given, before and after the subcommand together."""
    return int(getattr(args, "verbose", 0) or 0) + int(getattr(args, "verbose_after_command", 0) or 0)


def show_progress(args: argparse.Namespace) -> bool:
    """Whether the command may draw progress bars and print per-step lines (not under --json/--quiet)."""
    return not (getattr(args, "json", False) or getattr(args, "quiet", False))


def show_details(args: argparse.Namespace) -> bool:
    """Whether the command may print tables and notes beside its result line (same rule as progress)."""
    return show_progress(args)


def log_level(count: int) -> int:
    """The logging level of ``count`` ``-v`` flags: WARNING, INFO, then DEBUG."""
    return (logging.WARNING, logging.INFO)[count] if count < 2 else logging.DEBUG


def _set_library_progress(enabled: bool) -> list[Any]:
    """Switch the already-imported libraries' bars; returns the undo callables."""
    undo = []
    if "transformers" in sys.modules:
        from transformers.utils import logging as transformers_logging

        if transformers_logging.is_progress_bar_enabled() != enabled:
            (transformers_logging.enable_progress_bar if enabled else transformers_logging.disable_progress_bar)()
            undo.append(transformers_logging.enable_progress_bar if not enabled else transformers_logging.disable_progress_bar)
    if "datasets" in sys.modules:
        import datasets

        if datasets.is_progress_bar_enabled() != enabled:
            (datasets.enable_progress_bars if enabled else datasets.disable_progress_bars)()
            undo.append(datasets.enable_progress_bars if not enabled else datasets.disable_progress_bars)
    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

        if are_progress_bars_disabled() == enabled:
            (enable_progress_bars if enabled else disable_progress_bars)()
            undo.append(enable_progress_bars if not enabled else disable_progress_bars)
    return undo


@contextlib.contextmanager
def configured(args: argparse.Namespace) -> Iterator[None]:
    """Run a command under its output flags: log level from ``-v``, library progress bars off
    under ``--json``/``--quiet``. Restores the environment and the switches afterwards (the
    tests call the CLI in-process)."""
    count = verbosity(args)
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
    root = logging.getLogger()
    package = logging.getLogger("fmanet_hf")
    previous_levels = (root.level, package.level)
    root.setLevel(log_level(count))
    package.setLevel(log_level(count))
    variables: dict[str, str] = {}
    if not show_progress(args):
        variables.update({name: "1" for name in PROGRESS_BAR_VARIABLES})
    if count >= 2:
        variables.update({name: "info" for name in LIBRARY_VERBOSITY_VARIABLES})
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    undo = [] if show_progress(args) else _set_library_progress(False)
    try:
        yield
    finally:
        for name, value in saved.items():  # first: huggingface_hub refuses to re-enable bars while its variable is set
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        for action in reversed(undo):
            action()
        root.setLevel(previous_levels[0])
        package.setLevel(previous_levels[1])


def report(args: argparse.Namespace, result: Any, lines: str | Iterable[str] = (), *, details: str | Iterable[str] = ()) -> None:
    """Print a command's outcome the way its flags ask.

    Args:
        result: the JSON-serialisable result (printed alone under ``--json``).
        lines: the final result line(s): printed unless ``--json``, also under ``--quiet``.
        details: tables and notes printed before ``lines``, only without ``--json``/``--quiet``.
    """
    if getattr(args, "json", False):
        print(json.dumps(result, indent=2, default=str))
        return
    if show_details(args):
        for line in [details] if isinstance(details, str) else details:
            print(line)
    for line in [lines] if isinstance(lines, str) else lines:
        print(line)


def note(args: argparse.Namespace, text: str) -> None:
    """A side remark: stderr under ``--json`` (stdout stays pure JSON), nothing under ``--quiet``,
    stdout otherwise."""
    if getattr(args, "json", False):
        print(text, file=sys.stderr)
    elif not getattr(args, "quiet", False):
        print(text)


__all__ = [
    "LIBRARY_VERBOSITY_VARIABLES",
    "PROGRESS_BAR_VARIABLES",
    "add_output_arguments",
    "add_verbose_argument",
    "configured",
    "log_level",
    "note",
    "report",
    "show_details",
    "show_progress",
    "verbosity",
]
