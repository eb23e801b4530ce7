"""Impossible numbers on the command line (issue 14, class 3): every numeric option of every
``fmanet-hf`` subcommand has a range, checked at parsing, in one place
(`fmanet_hf.commands.ranges`).

The walk below visits every option of every subcommand. An option whose type is a bare
``int``/``float``, or whose default is a number but which has no type, fails it: so a new
numeric option without a range fails this test. A type the walk does not know fails it too,
until it is listed here as non-numeric.
"""

from __future__ import annotations

import argparse

import pytest

from fmanet_hf.cli import build_parser, main as cli_main
from fmanet_hf.commands import ranges
from fmanet_hf.commands.common_flags import assignment_argument, flow_params_argument, folder_argument
from fmanet_hf.commands.synth import people_argument
from fmanet_hf.devices import device_argument
from fmanet_hf.errors import FMANetConfigError

#: Option types that take no number (text parsed into a structure of its own).
NON_NUMERIC_TYPES = {flow_params_argument, assignment_argument, people_argument, device_argument, folder_argument}
RANGE_TYPES = (ranges.Number, ranges.NumberList, ranges.FileSize)


def subcommand_parsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (subparsers,) = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    return dict(subparsers.choices)


def unranged_numeric_options(parser: argparse.ArgumentParser) -> list[str]:
    """The options of ``parser`` that take a number without a range, or have an unknown type."""
    problems = []
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction, argparse._CountAction)):
            continue
        name = "/".join(action.option_strings) or action.dest
        kind = action.type
        if isinstance(kind, RANGE_TYPES) or kind in NON_NUMERIC_TYPES:
            continue
        if kind in (int, float):
            problems.append(f"{name}: type={kind.__name__} has no range (use fmanet_hf.commands.ranges)")
        elif kind not in (None, str):
            problems.append(f"{name}: unknown type {kind!r} (a range of fmanet_hf.commands.ranges, or list it here)")
        elif isinstance(action.default, (int, float)) and not isinstance(action.default, bool):
            problems.append(f"{name}: numeric default {action.default!r} but no type")
    return problems


def numeric_options():
    """(command, flag, range type) of every ranged option of every subcommand."""
    found = []
    for command, parser in sorted(subcommand_parsers(build_parser()).items()):
        for action in parser._actions:
            if isinstance(action.type, RANGE_TYPES):
                found.append((command, action.option_strings[0], action.type, action.default))
    return found


NUMERIC_OPTIONS = numeric_options()


def test_every_option_of_every_subcommand_has_a_range_or_takes_no_number():
    parsers = subcommand_parsers(build_parser())
    assert len(parsers) >= 11
    problems = [f"{command} {problem}" for command, parser in parsers.items() for problem in unranged_numeric_options(parser)]
    assert problems == []


def test_the_walk_catches_an_option_without_a_range():
    parser = argparse.ArgumentParser()
    parser.add_argument("--new-count", type=int)
    parser.add_argument("--new-rate", default=0.5)
    parser.add_argument("--new-kind", type=lambda text: text)
    assert len(unranged_numeric_options(parser)) == 3


def test_the_walk_sees_the_options_of_the_issue():
    seen = {(command, flag) for command, flag, _, _ in NUMERIC_OPTIONS}
    for expected in [
        ("baseline", "--pool"), ("baseline", "--l2"), ("baseline", "--num-proc"), ("prepare", "--num-proc"),
        ("train", "--batch-size"), ("train", "--lr"), ("train", "--epochs"), ("train", "--seed"),
        ("synth", "--masked-fraction"), ("ablate", "--seeds"), ("predict", "--onset"), ("demo", "--port"),
    ]:
        assert expected in seen


@pytest.mark.parametrize(
    ("command", "flag", "kind", "default"), NUMERIC_OPTIONS, ids=[f"{c} {f}" for c, f, _, _ in NUMERIC_OPTIONS]
)
def test_every_numeric_option_refuses_values_outside_its_range(command, flag, kind, default, capsys):
    assert default is None or kind.contains(default), f"{command} {flag}: default {default!r} outside {kind.describe()}"
    for text in kind.invalid_examples():
        with pytest.raises(SystemExit) as exit_info:
            cli_main([command, f"{flag}={text}"])
        assert exit_info.value.code == 2, (command, flag, text)
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error: "), err  # one line, no usage block, no traceback
        assert f"argument {flag}" in err and "expected" in err, err


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["baseline", "--pool", "0"], "--pool: expected an integer >= 1 or 'inner'"),
        (["baseline", "--l2", "-1"], "--l2: expected a number >= 0 or 'inner'"),
        (["train", "--out", "x", "--batch-size", "0"], "--batch-size: expected an integer >= 1"),
        (["train", "--out", "x", "--lr", "-1"], "--lr: expected a number > 0"),
        (["train", "--out", "x", "--lr", "nan"], "--lr: expected a number > 0"),
        (["prepare", "--num-proc", "-4"], "--num-proc: expected an integer >= 1"),
        (["loso", "--out", "x", "--epochs", "0"], "--epochs: expected an integer >= 1 or 'auto'"),
        (["synth", "--seed", "-1"], "--seed: expected an integer in [0, 4294967295]"),
        (["synth", "--frames-per-clip", "2"], "--frames-per-clip: expected an integer in [3, 200]"),
        (["demo", "--max-file-size", "20"], "--max-file-size: expected an integer >= 1 followed by a unit"),
    ],
)
def test_the_issues_impossible_numbers(argv, words, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main(argv)
    assert exit_info.value.code == 2
    assert words in capsys.readouterr().err


def test_ranges_accept_their_bounds_and_words():
    assert ranges.COUNT("1") == 1 and ranges.SEED("4294967295") == 2**32 - 1
    assert ranges.EMA_DECAY("0") == 0.0 and ranges.FRACTION("1") == 1.0
    assert ranges.EPOCHS(" AUTO ") == "auto" and ranges.POOL("inner") == "inner" and ranges.L2("0") == 0.0
    assert ranges.SEEDS("0, 1,2") == [0, 1, 2]
    assert ranges.FILE_SIZE("20 MB") == "20mb"
    assert ranges.LEARNING_RATE.check(1e-3, "lr") == 1e-3
    with pytest.raises(FMANetConfigError, match=r"--lr must be a number > 0, got 0"):
        ranges.LEARNING_RATE.check(0, "--lr")
    with pytest.raises(FMANetConfigError, match=r"must be an integer >= 1, got True"):
        ranges.COUNT.check(True, "count")
