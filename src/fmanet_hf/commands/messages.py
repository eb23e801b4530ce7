"""Error messages in the command line's words: a Python parameter that a message names
(``pass sheet=<path>``, ``on_invalid='skip'``) becomes the flag that sets it (``--sheet PATH``,
``--on-invalid skip``).

The library's messages speak to Python callers; the CLI prints them through `in_cli_words`,
which knows each command's flags from its parser (a flag's ``dest`` is the parameter's name),
plus the few parameters whose flag has another name (`PARAMETER_FLAGS`).
"""

from __future__ import annotations

import argparse
import re

#: Python parameters whose flag is not ``--<name with dashes>``.
PARAMETER_FLAGS = {"generator_version": "--generator", "out_dir": "--out"}

# name=value, where value is <placeholder>, 'quoted', "quoted" or a bare word; or name= alone.
_ASSIGNMENT = re.compile(r"\b([a-z][a-z0-9_]*)=(?![{(\[])(<[^>]*>|'[^']*'|\"[^\"]*\"|[\w.\-/]+)?")
_IDENTIFIER = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")


def parameter_flags(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Python parameter name -> the flag of ``parser`` that sets it (long form)."""
    flags = {}
    for action in parser._actions:
        long_options = [option for option in action.option_strings if option.startswith("--")]
        if long_options and action.dest not in ("help", "version"):
            flags[action.dest] = long_options[0]
    flags.update({name: flag for name, flag in PARAMETER_FLAGS.items() if flag in flags.values()})
    return flags


def in_cli_words(message: str, parser: argparse.ArgumentParser) -> str:
    """``message`` with every Python parameter ``parser`` has a flag for written as that flag."""
    flags = parameter_flags(parser)

    def assignment(match: re.Match) -> str:
        name, value = match.group(1), match.group(2)
        if name not in flags:
            return match.group(0)
        if not value:
            return flags[name]
        value = value.strip("'\"")
        return f"{flags[name]} {value[1:-1].upper() if value.startswith('<') else value}"

    message = _ASSIGNMENT.sub(assignment, message)
    # Bare parameter names with an underscore (``the on_invalid policy``); plain words such as
    # "root" or "seed" are left alone, they read as English.
    return _IDENTIFIER.sub(lambda m: flags.get(m.group(0), m.group(0)), message)


__all__ = ["PARAMETER_FLAGS", "in_cli_words", "parameter_flags"]
