"""The ``fmanet-hf`` command: registers the subcommands of `fmanet_hf.commands` and runs one.

Subcommands (one module each in ``fmanet_hf/commands/``): ``predict``, ``synth``,
``prepare``, ``baseline``, ``loso``, ``ablate``, ``train``, ``export``, ``push``, ``demo``.
A command module is imported when the parser is built and its heavy dependencies only when
it runs. Errors of the FMANetError family print one clear line and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Any, Iterable

from .commands import COMMANDS, TRAINING_COMMANDS
from .commands.output import add_output_arguments, add_verbose_argument, configured


class OneLineErrorParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line on stderr and exit status 2, like
    every other error of the command (argparse prints its whole usage block first)."""

    def error(self, message: str):  # noqa: D102 - argparse's hook
        self.exit(2, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def register_commands(subparsers: Any, names: Iterable[str] = COMMANDS) -> dict[str, argparse.ArgumentParser]:
    """Add the commands ``names`` (modules of `fmanet_hf.commands`) to an ``argparse``
    subparsers object; each parser gets ``handler=<function(args) -> exit status>`` as its
    default. Returns the parsers by name."""
    parsers = {}
    for name in names:
        module = importlib.import_module(f"{__package__}.commands.{name}")
        parsers[name] = module.register(subparsers)
        add_output_arguments(parsers[name])  # --json, --quiet, -v: the same on every command
    return parsers


def register_training_commands(subparsers: Any) -> dict[str, argparse.ArgumentParser]:
    """Add ``loso``, ``ablate`` and ``train`` (see `register_commands`)."""
    return register_commands(subparsers, TRAINING_COMMANDS)


def build_parser() -> argparse.ArgumentParser:
    """The ``fmanet-hf`` parser with every command of `fmanet_hf.commands.COMMANDS`."""
    from .version import __version__

    parser = OneLineErrorParser(prog="fmanet-hf", description="FMANet micro-expression recognition.")
    parser.add_argument("--version", action="version", version=f"fmanet-hf {__version__}")
    add_verbose_argument(parser)
    register_commands(parser.add_subparsers(dest="command", required=True))
    return parser


def command_parser(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The parser of the subcommand ``args`` ran (``parser`` itself when there is none)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and getattr(args, "command", None) in action.choices:
            return action.choices[args.command]
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``fmanet-hf`` with ``argv`` (default: the process's); returns the exit status."""
    parser = build_parser()
    # Options a command does not declare are errors, except for the commands that pass them on
    # (``train``: transformers' TrainingArguments, parsed when it runs).
    args, extra = parser.parse_known_args(argv)
    if extra:
        if getattr(args, "trainer_arguments", None) is None:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.trainer_arguments = extra
    from .errors import FMANetError

    try:
        with configured(args):
            return args.handler(args)
    except FMANetError as error:
        from .commands.messages import in_cli_words

        message = " ".join(str(error).split())  # one line, whatever the library wrote
        print(f"error: {in_cli_words(message, command_parser(parser, args))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if interrupted(error):  # a library's clean-up failed while Ctrl-C was unwinding
            print("interrupted", file=sys.stderr)
            return 130
        raise


def interrupted(error: BaseException) -> bool:
    """Whether a KeyboardInterrupt is anywhere in ``error``'s chain of causes."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, KeyboardInterrupt):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


__all__ = ["OneLineErrorParser", "build_parser", "main", "register_commands", "register_training_commands"]


if __name__ == "__main__":
    sys.exit(main())
