"""The `transformers.TrainingArguments` options of ``fmanet-hf train``, read with transformers'
own ``HfArgumentParser``: ``--gradient_accumulation_steps 2``, ``--warmup_steps 0.1``,
``--max_grad_norm 1``, ``--label_smoothing_factor 0.1``, ``--bf16``, ``--optim adafactor``,
``--lr_scheduler_type linear``, ``--eval_steps``, ``--logging_steps``, ``--save_strategy epoch``
... (``-`` or ``_`` in the names, as transformers accepts).

``train`` declares its own flags cheaply; the CLI hands the options it does not know to
`parse_trainer_arguments` when the command runs (only then is transformers imported, so
``fmanet-hf --help`` stays fast; ``fmanet-hf train --help-trainer`` lists them all).

- A numeric option takes the range of `fmanet_hf.commands.ranges.TRAINING_ARGUMENT_RANGES`
  (the one place ranges live); a numeric field without a range there is refused.
- Fields that ``train``'s own flags set (`OWN_FLAGS`: ``--learning_rate`` is ``--lr``...)
  are refused with the flag to use, so one setting never has two spellings that disagree.
- Only the options given are returned; ``train``'s defaults stay for the rest.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import FMANetConfigError, did_you_mean
from .ranges import TRAINING_ARGUMENT_RANGES

#: TrainingArguments fields that ``train``'s own flags set, and the flag to use instead
#: (None: set by the package for FMANet's data, not a choice).
OWN_FLAGS = {
    "output_dir": "--out",
    "learning_rate": "--lr",
    "num_train_epochs": "--epochs",
    "per_device_train_batch_size": "--batch-size",
    "weight_decay": "--weight-decay",
    "seed": "--seed",
    "data_seed": "--seed",
    "report_to": "--report-to",
    "use_cpu": "--device cpu",
    "disable_tqdm": "--quiet",
    "remove_unused_columns": None,
    "label_names": None,
    "local_rank": None,
}


class _RaisingParser(argparse.ArgumentParser):
    def error(self, message: str):  # noqa: D102 - argparse's hook: one line via FMANetConfigError
        raise FMANetConfigError(f"train: {message}")


def trainer_argument_parser() -> argparse.ArgumentParser:
    """``HfArgumentParser(TrainingArguments)`` with the ranges of `TRAINING_ARGUMENT_RANGES` as the
    types of its numeric options (imports transformers)."""
    from transformers import HfArgumentParser, TrainingArguments

    parser = HfArgumentParser(TrainingArguments, prog="fmanet-hf train ... (TrainingArguments)", allow_abbrev=False)
    parser.error = _RaisingParser.error.__get__(parser)  # type: ignore[method-assign]
    for action in parser._actions:
        if action.dest in TRAINING_ARGUMENT_RANGES:
            action.type = TRAINING_ARGUMENT_RANGES[action.dest]
    return parser


def _is_numeric(action: argparse.Action) -> bool:
    return action.type in (int, float) or action.dest in TRAINING_ARGUMENT_RANGES


def parse_trainer_arguments(tokens: list[str]) -> dict[str, Any]:
    """The TrainingArguments keywords of ``tokens`` (the options ``train`` itself does not
    declare), only those given.

    Raises:
        FMANetConfigError: an unknown option (with the closest name), a value out of its
            range, a field `OWN_FLAGS` sets, or a numeric field without a range.
    """
    if not tokens:
        return {}
    parser = trainer_argument_parser()
    known = {}
    for action in parser._actions:
        action.default = argparse.SUPPRESS  # the namespace then holds only what was given
        known.update({option: action for option in action.option_strings})
    namespace, unknown = parser.parse_known_args(tokens)
    if unknown:
        option = next((t for t in unknown if t.startswith("-")), unknown[0])
        names = [o for o in known if o.startswith("--")]
        raise FMANetConfigError(
            f"train does not take {option!r}{did_you_mean(option.split('=')[0], names)}; "
            "`fmanet-hf train --help` lists its own options, `--help-trainer` the TrainingArguments ones."
        )
    given = {name: value for name, value in vars(namespace).items() if name != "help"}
    for name in given:
        if name in OWN_FLAGS:
            flag = OWN_FLAGS[name]
            raise FMANetConfigError(
                f"train sets --{name} itself" + (f": use {flag}." if flag else " (FMANet's data needs its value).")
            )
        action = known[f"--{name}"]
        if _is_numeric(action) and name not in TRAINING_ARGUMENT_RANGES:
            raise FMANetConfigError(
                f"train does not take --{name} (no range is defined for it in fmanet_hf.commands.ranges); set it "
                "from Python: train_with_trainer(..., training_args={...})."
            )
    return given


def check_trainer_arguments(given: dict[str, Any], *, use_cpu: bool) -> None:
    """Build a `TrainingArguments` from ``given`` now, so a combination transformers refuses
    (``--bf16`` on a CPU, ``--eval_steps`` without a step strategy...) stops the command before
    any data is read.

    Raises:
        FMANetConfigError: transformers' reason, on one line.
    """
    if not given:
        return
    import tempfile

    from transformers import TrainingArguments

    with tempfile.TemporaryDirectory() as scratch:
        try:
            TrainingArguments(output_dir=scratch, use_cpu=use_cpu, report_to="none", **given)
        except (ValueError, TypeError, ImportError) as error:
            raise FMANetConfigError(f"train: TrainingArguments refused {sorted(given)}: {' '.join(str(error).split())}") from None


class HelpTrainerAction(argparse.Action):
    """``--help-trainer``: print the TrainingArguments options ``train`` takes, then exit."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings=option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        full = trainer_argument_parser()
        lines = [
            "TrainingArguments options of `fmanet-hf train` (transformers' HfArgumentParser); "
            f"not taken (train's own flags set them): {', '.join('--' + n for n in OWN_FLAGS)}.",
            "",
        ]
        for action in full._actions:
            if not action.option_strings or action.dest in OWN_FLAGS or action.dest == "help":
                continue
            if _is_numeric(action) and action.dest not in TRAINING_ARGUMENT_RANGES:
                continue
            kind = action.type.describe() if action.dest in TRAINING_ARGUMENT_RANGES else ""
            text = " ".join((action.help or "").split())
            lines.append(f"  {action.option_strings[0]}" + (f"  ({kind})" if kind else "") + (f": {text}" if text else ""))
        print("\n".join(lines))
        parser.exit()


def add_trainer_arguments_help(parser: argparse.ArgumentParser) -> None:
    """``--help-trainer`` on ``train``; the command's epilog names the usual options."""
    parser.add_argument(
        "--help-trainer", action=HelpTrainerAction,
        help="list the transformers TrainingArguments options train also takes (e.g. --gradient_accumulation_steps 2 "
        "--warmup_steps 0.1 --max_grad_norm 1 --label_smoothing_factor 0.1 --bf16 --lr_scheduler_type linear)",
    )


__all__ = [
    "OWN_FLAGS",
    "HelpTrainerAction",
    "add_trainer_arguments_help",
    "check_trainer_arguments",
    "parse_trainer_arguments",
    "trainer_argument_parser",
]
