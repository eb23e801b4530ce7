"""Invalid sheet rows: what is wrong with a row, where it is, and the ``on_invalid`` policy.

A loader raises :class:`RowProblem` for a row (or clip folder) that cannot become a
sample; :class:`InvalidRowPolicy` turns it into a :class:`~fmanet_hf.errors.DatasetError`
naming the row, the path and how to fix it (``on_invalid="raise"``), or skips the row
and logs a count (``on_invalid="skip"``).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from ..errors import DatasetError

logger = logging.getLogger(__name__)

#: Accepted values of every loader's ``on_invalid`` argument.
ON_INVALID_CHOICES: tuple[str, ...] = ("raise", "skip")


class RowProblem(Exception):
    """A sheet row (or clip folder) cannot become a sample.

    Attributes:
        problem: what is wrong.
        path: the file or folder involved ("" when none).
        hint: how to fix it.
    """

    def __init__(self, problem: str, path: str | os.PathLike = "", hint: str = "") -> None:
        super().__init__(problem)
        self.problem = problem
        self.path = os.fspath(path) if path else ""
        self.hint = hint


@dataclass(frozen=True)
class RowContext:
    """Where a sample comes from, for messages: sheet row or clip folder."""

    sheet: str
    row_number: int
    subject: str
    filename: str

    def describe(self) -> str:
        """E.g. ``row 14 of sheet /data/CASME2-coding.xlsx (subject '1', filename 'EP02_01f')``."""
        who = f"subject {self.subject!r}, filename {self.filename!r}"
        if self.row_number > 0:
            return f"row {self.row_number} of sheet {self.sheet} ({who})"
        return f"clip folder {self.sheet} ({who})"


class InvalidRowPolicy:
    """Applies ``on_invalid``: raise a :class:`DatasetError`, or skip and count.

    Args:
        dataset_name: for messages.
        on_invalid: ``"raise"`` or ``"skip"``.
    """

    def __init__(self, dataset_name: str, on_invalid: str) -> None:
        check_on_invalid(on_invalid)
        self.dataset_name = dataset_name
        self.on_invalid = on_invalid
        self.skipped: list[str] = []

    def message(self, context: RowContext, problem: RowProblem) -> str:
        """The full error text: where, what, which path, how to fix."""
        text = f"{self.dataset_name}: {context.describe()}: {problem.problem}"
        if problem.path:
            text += f" [path: {problem.path}]"
        hint = problem.hint or "correct the sheet row or the folder"
        text = f"{text}. How to fix: {hint}"
        if self.on_invalid == "raise":
            text += "; or pass on_invalid='skip' to drop such rows"
        return text

    def handle(self, context: RowContext, problem: RowProblem) -> None:
        """Raise (``"raise"``) or record the skipped row (``"skip"``)."""
        text = self.message(context, problem)
        if self.on_invalid == "raise":
            raise DatasetError(text)
        self.skipped.append(text)
        logger.debug("skipping: %s", text)

    def log_summary(self) -> None:
        """Log how many rows were skipped (WARNING), with the first reasons."""
        if not self.skipped:
            return
        shown = "\n  ".join(self.skipped[:5])
        more = "" if len(self.skipped) <= 5 else f"\n  ... and {len(self.skipped) - 5} more"
        logger.warning(
            "%s: skipped %d invalid rows (on_invalid='skip'):\n  %s%s",
            self.dataset_name, len(self.skipped), shown, more,
        )


def check_on_invalid(on_invalid: str) -> None:
    """Raise :class:`DatasetError` unless ``on_invalid`` is ``"raise"`` or ``"skip"``."""
    if on_invalid not in ON_INVALID_CHOICES:
        raise DatasetError(f"on_invalid must be one of {ON_INVALID_CHOICES}, got {on_invalid!r}")


__all__ = ["ON_INVALID_CHOICES", "InvalidRowPolicy", "RowContext", "RowProblem", "check_on_invalid"]
