"""``fmanet-hf train`` takes transformers' TrainingArguments options through HfArgumentParser
(fmanet_hf.commands.trainer_arguments), numeric ones within the ranges of commands/ranges.py."""

from __future__ import annotations

import dataclasses

import pytest
from transformers import TrainingArguments

from fmanet_hf.commands.ranges import TRAINING_ARGUMENT_RANGES
from fmanet_hf.commands.trainer_arguments import OWN_FLAGS, check_trainer_arguments, parse_trainer_arguments
from fmanet_hf.errors import FMANetConfigError

FIELDS = {field.name: field for field in dataclasses.fields(TrainingArguments)}


def test_only_the_options_given_come_back_with_transformers_types():
    given = parse_trainer_arguments(
        ["--gradient_accumulation_steps", "2", "--warmup-steps", "0.1", "--lr_scheduler_type", "linear", "--bf16",
         "--max_grad_norm=0.5"]
    )
    assert given == {
        "gradient_accumulation_steps": 2, "warmup_steps": 0.1, "lr_scheduler_type": "linear", "bf16": True,
        "max_grad_norm": 0.5,
    }
    assert parse_trainer_arguments([]) == {}


def test_every_ranged_name_is_a_numeric_training_argument_and_own_flags_are_fields():
    for name in TRAINING_ARGUMENT_RANGES:
        assert name in FIELDS, f"{name} is not a TrainingArguments field of this transformers"
    for name in OWN_FLAGS:
        assert name in FIELDS, name


@pytest.mark.parametrize("name", sorted(TRAINING_ARGUMENT_RANGES))
def test_values_outside_each_range_are_refused_naming_it(name):
    kind = TRAINING_ARGUMENT_RANGES[name]
    for text in kind.invalid_examples():
        with pytest.raises(FMANetConfigError) as error:
            parse_trainer_arguments([f"--{name}={text}"])  # = : argparse reads "-1" alone as an option
        assert kind.describe() in str(error.value) and "\n" not in str(error.value), (name, text)


@pytest.mark.parametrize(
    "tokens, words",
    [
        (["--learning_rate", "0.1"], "use --lr"),
        (["--num-train-epochs", "3"], "use --epochs"),
        (["--output_dir", "x"], "use --out"),
        (["--remove_unused_columns", "true"], "FMANet's data needs its value"),
        (["--gradient_acumulation_steps", "2"], "did you mean '--gradient_accumulation_steps'"),
        (["--neftune_noise_alpha", "5"], "no range is defined for it"),
    ],
)
def test_own_unknown_and_unranged_options_are_refused(tokens, words):
    with pytest.raises(FMANetConfigError, match=words.replace("(", r"\(").replace("?", r"\?")):
        parse_trainer_arguments(tokens)


def test_a_combination_transformers_refuses_stops_before_any_work():
    check_trainer_arguments({"gradient_accumulation_steps": 2}, use_cpu=True)
    with pytest.raises(FMANetConfigError, match="TrainingArguments refused"):
        check_trainer_arguments({"load_best_model_at_end": True}, use_cpu=True)  # needs matching save/eval strategies
