"""Numeric command-line values and their ranges: every number a ``fmanet-hf`` option takes is
parsed by one of the types below, so an impossible value (``--batch-size 0``, ``--lr -1``,
``--pool 0``, a negative ``--num-proc``) is refused by argparse, before anything runs, with
one line that names the flag and the range (exit status 2).

- `Number`: an argparse type for an integer or a float in a range, optionally also accepting
  a few words (``auto``, ``inner``). Build new ones with `integer` and `real`.
- `NumberList`: comma-separated numbers of one `Number` range (``--seeds 0,1,2``).
- `FileSize`: a size with a unit (``--max-file-size 20mb``).
- The named ranges every command uses (`COUNT`, `SEED`, `LEARNING_RATE`, ...).

A type also checks a value that did not come from the command line (`Number.check`), and
lists values just outside its range (`Number.invalid_examples`): the test that walks every
subcommand's parser feeds them to each numeric option, so an option without a range fails it.
Standard library only: importing this module is cheap.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field
from typing import Any

from ..errors import FMANetConfigError


@dataclass(frozen=True)
class Number:
    """An argparse ``type=``: a number of ``kind`` (``int`` or ``float``) in a range, or one of ``words``.

    ``minimum``/``maximum`` are the bounds (``None``: unbounded); ``exclusive_minimum`` /
    ``exclusive_maximum`` make a bound open. Floats must be finite. ``words`` are accepted
    as they are, case-insensitively (e.g. ``("auto",)``), and returned in lower case.
    """

    kind: type
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    words: tuple[str, ...] = field(default=())

    @property
    def __name__(self) -> str:  # argparse names the type in "invalid <name> value" messages
        return self.describe()

    def describe(self) -> str:
        """The range in words, e.g. ``an integer >= 1 or 'auto'``, ``a number in (0, 1]``."""
        noun = "an integer" if self.kind is int else "a number"
        bounds = self.bounds()
        text = f"{noun} {bounds}" if bounds else ("an integer" if self.kind is int else "a finite number")
        if self.words:
            text += " or " + " or ".join(repr(word) for word in self.words)
        return text

    def bounds(self) -> str:
        """The bounds alone, e.g. ``>= 1``, ``in [0, 1)``; empty when unbounded."""
        if self.minimum is not None and self.maximum is not None:
            low = "(" if self.exclusive_minimum else "["
            high = ")" if self.exclusive_maximum else "]"
            return f"in {low}{_show(self.minimum)}, {_show(self.maximum)}{high}"
        if self.minimum is not None:
            return f"{'>' if self.exclusive_minimum else '>='} {_show(self.minimum)}"
        if self.maximum is not None:
            return f"{'<' if self.exclusive_maximum else '<='} {_show(self.maximum)}"
        return ""

    def contains(self, value: Any) -> bool:
        """Whether ``value`` (a number or one of the words) is in the range."""
        if isinstance(value, str):
            return value.lower() in self.words
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.kind is int and not float(value).is_integer():
            return False
        if not math.isfinite(value):
            return False
        if self.minimum is not None and (value <= self.minimum if self.exclusive_minimum else value < self.minimum):
            return False
        if self.maximum is not None and (value >= self.maximum if self.exclusive_maximum else value > self.maximum):
            return False
        return True

    def __call__(self, text: str) -> int | float | str:
        """Parse one command-line value; raises ``argparse.ArgumentTypeError`` naming the range."""
        word = text.strip().lower()
        if word in self.words:
            return word
        try:
            value: int | float = int(word) if self.kind is int else float(word)
        except ValueError:
            value = math.nan
        if not self.contains(value):
            raise argparse.ArgumentTypeError(f"expected {self.describe()}, got {text!r}")
        return value

    def check(self, value: Any, name: str) -> Any:
        """``value`` if it is in the range; else `FMANetConfigError` naming ``name`` (a flag or a
        setting) and the range. For values that did not come through argparse."""
        if not self.contains(value):
            raise FMANetConfigError(f"{name} must be {self.describe()}, got {value!r}")
        return value

    def invalid_examples(self) -> list[str]:
        """Command-line texts this type must refuse: just outside each bound, and not a number."""
        examples = ["not-a-number"]
        step = 1 if self.kind is int else 0.5
        if self.minimum is not None:
            examples.append(_show(self.minimum if self.exclusive_minimum else self.minimum - step))
        if self.maximum is not None:
            examples.append(_show(self.maximum if self.exclusive_maximum else self.maximum + step))
        if self.kind is float:
            examples += ["nan", "inf", "-inf"]
        else:
            examples.append("1.5")
        return examples


@dataclass(frozen=True)
class NumberList:
    """An argparse ``type=``: comma-separated numbers, each in ``element``'s range (``--seeds 0,1,2``)."""

    element: Number
    distinct: bool = True

    @property
    def __name__(self) -> str:
        return self.describe()

    def describe(self) -> str:
        """The range in words."""
        nouns = "integers" if self.element.kind is int else "numbers"
        bounds = f", each {self.element.bounds()}" if self.element.bounds() else ""
        return f"{'distinct ' if self.distinct else ''}{nouns} separated by commas{bounds}"

    def __call__(self, text: str) -> list[int | float]:
        """Parse one command-line value; raises ``argparse.ArgumentTypeError`` naming the range."""
        parts = [part.strip() for part in text.split(",") if part.strip()]
        try:
            values = [self.element(part) for part in parts]
        except argparse.ArgumentTypeError:
            values = []
        if not values or any(isinstance(v, str) for v in values) or (self.distinct and len(set(values)) != len(values)):
            raise argparse.ArgumentTypeError(f"expected {self.describe()}, got {text!r}")
        return values

    def contains(self, value: Any) -> bool:
        """Whether ``value`` (a list of numbers) is in the range."""
        return (
            isinstance(value, (list, tuple)) and bool(value) and all(self.element.contains(v) for v in value)
            and not (self.distinct and len(set(value)) != len(value))
        )

    def invalid_examples(self) -> list[str]:
        """Command-line texts this type must refuse."""
        examples = ["", f"0,{self.element.invalid_examples()[1]}"] + self.element.invalid_examples()
        if self.distinct:
            valid = _show(self.element.minimum if self.element.minimum is not None else 1)
            examples.append(f"{valid},{valid}")
        return examples


@dataclass(frozen=True)
class FileSize:
    """An argparse ``type=``: a size such as ``20mb``: an integer >= 1 and a unit (b, kb, mb, gb, tb;
    powers of 1024, as gradio reads them). Returns the text in lower case, without spaces."""

    units: tuple[str, ...] = ("b", "kb", "mb", "gb", "tb")

    @property
    def __name__(self) -> str:
        return self.describe()

    def describe(self) -> str:
        """The range in words."""
        return f"an integer >= 1 followed by a unit ({', '.join(self.units)}), e.g. 20mb"

    def __call__(self, text: str) -> str:
        """Parse one command-line value; raises ``argparse.ArgumentTypeError`` naming the range."""
        compact = text.replace(" ", "").lower()
        digits = len(compact) - len(compact.lstrip("0123456789"))
        number, unit = compact[:digits], compact[digits:]
        if not number or int(number) < 1 or unit not in self.units:
            raise argparse.ArgumentTypeError(f"expected {self.describe()}, got {text!r}")
        return compact

    def contains(self, value: Any) -> bool:
        """Whether ``value`` (a text) is a size this type accepts."""
        try:
            self(value)
        except (argparse.ArgumentTypeError, TypeError, AttributeError):
            return False
        return True

    def invalid_examples(self) -> list[str]:
        """Command-line texts this type must refuse."""
        return ["0mb", "-5mb", "20", "20 parsecs", "mb", "1.5mb"]


def integer(minimum: int | None = None, maximum: int | None = None, *, words: tuple[str, ...] = ()) -> Number:
    """An integer type in [minimum, maximum] (either bound may be ``None``)."""
    return Number(int, minimum, maximum, words=words)


def real(
    minimum: float | None = None,
    maximum: float | None = None,
    *,
    exclusive_minimum: bool = False,
    exclusive_maximum: bool = False,
    words: tuple[str, ...] = (),
) -> Number:
    """A finite float type between ``minimum`` and ``maximum`` (bounds inclusive unless said)."""
    return Number(float, minimum, maximum, exclusive_minimum, exclusive_maximum, words)


def _show(number: float) -> str:
    """A bound as a user would type it: ``1`` rather than ``1.0``, ``4294967295`` not ``4.29e9``."""
    return str(int(number)) if float(number).is_integer() else repr(float(number))


# --------------------------------------------------------------------------------------
# The ranges of the package's options. Bounds are what the code downstream
# can do, not taste: a seed feeds numpy's legacy seeding (< 2**32), a side length the
# processor's 8..1024, frames per clip the SynthME generator's 3..200.
# --------------------------------------------------------------------------------------
#: A count of things (samples, subjects, classes to show, workers, processes): >= 1.
COUNT = integer(1)
#: A 0-based index (a frame of a video): >= 0.
INDEX = integer(0)
#: A seed for every random generator the package seeds (Python, numpy, torch).
SEED = integer(0, 2**32 - 1)
#: Distinct seeds (``ablate --seeds``).
SEEDS = NumberList(SEED)
#: Training epochs, or ``auto`` (about 120 optimiser steps, from the data's size).
EPOCHS = integer(1, words=("auto",))
#: Folds trained as one batched computation (``--folds-at-once``): >= 1, or 0 / ``auto``.
FOLDS_AT_ONCE = integer(0, words=("auto",))
#: A peak learning rate: > 0.
LEARNING_RATE = real(0, exclusive_minimum=True)
#: A weight decay or an L2 penalty: >= 0.
PENALTY = real(0)
#: An exponential-moving-average decay: 0 (off) or in (0, 1).
EMA_DECAY = real(0, 1, exclusive_maximum=True)
#: A share of something: [0, 1].
FRACTION = real(0, 1)
#: The side of the model input in pixels (the processor's own bounds).
IMAGE_SIDE = integer(8, 1024)
#: Frames in one synthetic clip (the SynthME generator's bounds).
FRAMES_PER_CLIP = integer(3, 200)
#: A TCP port to listen on.
PORT = integer(1, 65535)
#: ``baseline --pool``: cells per side of the pooled MM-COF, or ``inner``.
POOL = integer(1, words=("inner",))
#: ``baseline --l2``: an L2 penalty, or ``inner``.
L2 = real(0, words=("inner",))
#: An upload limit (``demo --max-file-size``).
FILE_SIZE = FileSize()

#: The numeric `transformers.TrainingArguments` options ``fmanet-hf train`` takes (through
#: HfArgumentParser, `fmanet_hf.commands.trainer_arguments`), by field name. A numeric field
#: not listed here is refused by ``train``: every number the CLI takes has its range here.
#: Step counts written as floats (``logging_steps``...) are a share of the total steps when < 1.
TRAINING_ARGUMENT_RANGES = {
    "gradient_accumulation_steps": COUNT,
    "max_steps": COUNT,
    "warmup_steps": real(0),
    "max_grad_norm": real(0),
    "label_smoothing_factor": real(0, 1, exclusive_maximum=True),
    "adam_beta1": real(0, 1, exclusive_maximum=True),
    "adam_beta2": real(0, 1, exclusive_maximum=True),
    "adam_epsilon": real(0, exclusive_minimum=True),
    "per_device_eval_batch_size": COUNT,
    "eval_accumulation_steps": COUNT,
    "eval_delay": real(0),
    "logging_steps": real(0, exclusive_minimum=True),
    "eval_steps": real(0, exclusive_minimum=True),
    "save_steps": real(0, exclusive_minimum=True),
    "save_total_limit": COUNT,
    "dataloader_num_workers": integer(0),
    "dataloader_prefetch_factor": COUNT,
    "torch_empty_cache_steps": COUNT,
    "ddp_timeout": COUNT,
    "ddp_bucket_cap_mb": COUNT,
}


__all__ = [
    "COUNT",
    "EMA_DECAY",
    "EPOCHS",
    "FILE_SIZE",
    "FRACTION",
    "FileSize",
    "FRAMES_PER_CLIP",
    "IMAGE_SIDE",
    "INDEX",
    "L2",
    "LEARNING_RATE",
    "Number",
    "NumberList",
    "PENALTY",
    "POOL",
    "PORT",
    "SEED",
    "SEEDS",
    "TRAINING_ARGUMENT_RANGES",
    "integer",
    "real",
]
