"""``--json``, ``--quiet`` and ``-v`` (fmanet_hf.commands.output) mean the same on every
command: declared once, accepted before and after the subcommand, and no progress bar
(the package's or the libraries') under --json/--quiet."""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys

import pytest

from fmanet_hf.cli import build_parser
from fmanet_hf.commands import COMMANDS
from fmanet_hf.commands.output import configured, log_level, report, show_progress, verbosity


def subcommand_parsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (subparsers,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(subparsers.choices)


def test_every_command_has_the_same_output_flags():
    parsers = subcommand_parsers()
    assert sorted(parsers) == sorted(COMMANDS)
    for name, parser in parsers.items():
        flags = {tuple(a.option_strings): a for a in parser._actions if a.option_strings}
        assert ("--json",) in flags and ("--quiet",) in flags and ("-v", "--verbose") in flags, name
        assert flags[("--json",)].help == parsers["predict"]._option_string_actions["--json"].help, name


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["predict", "a", "b", "c"], 0),
        (["-v", "predict", "a", "b", "c"], 1),
        (["predict", "a", "b", "c", "-v"], 1),
        (["-v", "loso", "--out", "x", "-vv"], 3),
    ],
)
def test_verbose_counts_before_and_after_the_subcommand(argv, expected):
    assert verbosity(build_parser().parse_args(argv)) == expected


def test_json_and_quiet_exclude_each_other(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["prepare", "--json", "--quiet"])
    assert exit_info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_progress_shows_only_without_json_and_quiet():
    parse = build_parser().parse_args
    assert show_progress(parse(["prepare"])) is True
    assert show_progress(parse(["prepare", "--quiet"])) is False
    assert show_progress(parse(["prepare", "--json"])) is False


def test_log_levels():
    assert [log_level(n) for n in (0, 1, 2, 5)] == [logging.WARNING, logging.INFO, logging.DEBUG, logging.DEBUG]


def test_configured_sets_and_restores_levels_switches_and_environment(monkeypatch):
    from transformers.utils import logging as transformers_logging

    monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS", raising=False)
    assert transformers_logging.is_progress_bar_enabled()
    level_before = logging.getLogger("fmanet_hf").level
    with configured(build_parser().parse_args(["prepare", "--quiet", "-v"])):
        assert logging.getLogger("fmanet_hf").getEffectiveLevel() == logging.INFO
        assert not transformers_logging.is_progress_bar_enabled()
        assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"
    assert transformers_logging.is_progress_bar_enabled()
    assert "HF_HUB_DISABLE_PROGRESS_BARS" not in os.environ
    assert logging.getLogger("fmanet_hf").level == level_before


def test_report_prints_json_alone_or_the_result_line_under_quiet(capsys):
    parse = build_parser().parse_args
    result, line, table = {"accuracy": 0.5}, "accuracy 0.500", "TABLE"
    report(parse(["prepare", "--json"]), result, line, details=table)
    assert capsys.readouterr().out == '{\n  "accuracy": 0.5\n}\n'
    report(parse(["prepare", "--quiet"]), result, line, details=table)
    assert capsys.readouterr().out == "accuracy 0.500\n"
    report(parse(["prepare"]), result, line, details=table)
    assert capsys.readouterr().out == "TABLE\naccuracy 0.500\n"


LOAD_THE_BUNDLED_MODEL = """
import sys
from fmanet_hf.cli import build_parser
from fmanet_hf.commands.output import configured
with configured(build_parser().parse_args(["predict", *sys.argv[1:]])):
    from fmanet_hf.pretrained import load_default_model
    load_default_model()
"""


@pytest.mark.parametrize("flags, bar_expected", [([], True), (["--quiet"], False)])
def test_transformers_weight_loading_bar_only_without_json_or_quiet(flags, bar_expected):
    # a fresh process: transformers is imported inside the command, as in a real CLI run
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_DISABLE_PROGRESS_BARS"}
    result = subprocess.run(
        [sys.executable, "-c", LOAD_THE_BUNDLED_MODEL, *flags], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert ("Loading weights" in result.stderr) is bar_expected, result.stderr[-2000:]
