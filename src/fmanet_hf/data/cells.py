"""Reading sheet cells: empty cells, frame numbers, column names; natural sort order.

pandas gives a cell as ``None``, ``NaN``, a float (``46.0`` for 46), an int or text;
these helpers turn any of them into what the loaders compare: clean text, a frame
index, or a column-name key. :func:`natural_key` sorts names with embedded numbers
by value (``s2`` before ``s10``), for subjects and clip folders.
"""

from __future__ import annotations

import math
import re
from typing import Any


def _is_missing(value: Any) -> bool:
    """True for None and float NaN (what pandas puts in empty cells)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def cell_text(value: Any, *, strip: bool = True) -> str:
    """The text of a sheet cell: ``""`` when empty, ``"46"`` for the float ``46.0``.

    Args:
        value: the cell value as pandas read it.
        strip: strip surrounding whitespace.
    """
    if _is_missing(value):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value)
    return text.strip() if strip else text


_INTEGER_TEXT = re.compile(r"^[+-]?\d+(?:\.0*)?$")


def parse_frame_index(value: Any) -> int | None:
    """Parse a frame-number cell.

    Returns:
        the integer for ``46``, ``46.0``, ``"46"``, ``" 46 "``, ``"-1"``; ``None`` for
        empty cells, ``"/"``, other text, non-integral numbers and booleans.
    """
    if _is_missing(value) or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    text = str(value).strip()
    if _INTEGER_TEXT.match(text):
        return int(float(text))
    return None


def normalise_column_name(name: Any) -> str:
    """Column-name key used for matching: lower case, no spaces, underscores or hyphens.

    ``"Onset Frame"``, ``"OnsetFrame"`` and ``"onset_frame"`` all give ``"onsetframe"``.
    """
    return re.sub(r"[\s_\-]+", "", cell_text(name)).lower()


def natural_key(text: str) -> tuple:
    """Sort key that orders embedded numbers by value: ``s2`` before ``s10``."""
    return tuple(int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", str(text)))


__all__ = ["cell_text", "natural_key", "normalise_column_name", "parse_frame_index"]
