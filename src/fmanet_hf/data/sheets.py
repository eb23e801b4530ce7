"""Finding and reading annotation sheets (.xlsx / .csv) whose table may start below intro rows.

``.xlsx`` files are read with pandas (openpyxl engine; merged cells are filled with
their top-left value), ``.csv`` with pandas' CSV reader. Intro rows above the table
(SAMM has about 13) are tolerated: the header is the first row, among the first
:data:`HEADER_SEARCH_ROWS`, that holds every required column. Column names are
compared after normalisation (:func:`~fmanet_hf.data.cells.normalise_column_name`:
case, spaces, underscores and hyphens are ignored), so ``Onset Frame``, ``OnsetFrame``
and ``onset_frame`` are the same column. Row numbers are kept 1-based, as a
spreadsheet user sees them, for error messages.
"""

from __future__ import annotations

import fnmatch
import logging
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ..errors import DatasetError
from .cells import cell_text, normalise_column_name
from .frame_folders import FRAME_EXTENSIONS

logger = logging.getLogger(__name__)

#: How many rows from the top of a sheet are searched for the header row.
HEADER_SEARCH_ROWS = 60

#: Column roles a loader can ask for, with the sheet header names accepted by
#: default (compared after :func:`normalise_column_name`). A loader's ``columns``
#: argument replaces the names of a role, e.g. ``columns={"onset": "Start"}``.
DEFAULT_COLUMNS: dict[str, tuple[str, ...]] = {
    "subject": ("Subject", "Sub", "Subject ID"),
    "filename": ("Filename", "File name", "Sample", "Clip"),
    "onset": ("OnsetFrame", "Onset Frame", "Onset"),
    "apex": ("ApexFrame", "Apex Frame", "Apex"),
    "offset": ("OffsetFrame", "Offset Frame", "Offset"),
    "action_units": ("Action Units", "AU", "AUs", "Action Unit"),
    "emotion": ("Estimated Emotion", "Emotion", "Emotion Label", "Label"),
}


@dataclass(frozen=True)
class SheetRow:
    """One data row of an annotation sheet.

    Attributes:
        row_number: 1-based row number as a spreadsheet program shows it (for CSV:
            the line number).
        values: column role -> raw cell value (roles absent from the sheet are missing).
    """

    row_number: int
    values: Mapping[str, Any]

    def get(self, role: str) -> Any:
        """The raw value of a role, ``None`` when the sheet has no such column."""
        return self.values.get(role)


@dataclass(frozen=True)
class AnnotationSheet:
    """An annotation table read by :func:`read_annotation_sheet`.

    Attributes:
        path: the sheet file.
        header_row: 1-based row number of the header.
        columns: role -> the header text it was matched to.
        rows: the data rows below the header (blank rows left out).
    """

    path: Path
    header_row: int
    columns: Mapping[str, str]
    rows: tuple[SheetRow, ...]


def column_candidates(
    roles: Iterable[str], overrides: Mapping[str, str | Sequence[str]] | None = None
) -> dict[str, tuple[str, ...]]:
    """Header names accepted for each role: :data:`DEFAULT_COLUMNS`, with overrides.

    Args:
        roles: the roles wanted (keys of :data:`DEFAULT_COLUMNS` or new ones).
        overrides: role -> one name or several names that replace the defaults.

    Raises:
        DatasetError: an override names an unknown role.
    """
    overrides = dict(overrides or {})
    roles = list(roles)
    unknown = sorted(set(overrides) - set(roles))
    if unknown:
        raise DatasetError(
            f"columns= names unknown role(s) {unknown}; valid roles here: {roles}"
        )
    result: dict[str, tuple[str, ...]] = {}
    for role in roles:
        if role in overrides:
            value = overrides[role]
            result[role] = (value,) if isinstance(value, str) else tuple(value)
        else:
            result[role] = DEFAULT_COLUMNS.get(role, (role,))
    return result


def _fill_merged_cells(path: Path, table: "Any") -> None:
    """Give every cell of a merged range the value of its top-left cell, in place.

    A spreadsheet shows one subject number over several merged rows, but the file keeps
    it in the first cell only; read as it is, the other rows would have an empty subject.
    ``table`` is the first worksheet as `_read_raw_table` reads it (row 0 = sheet row 1).
    """
    import openpyxl

    workbook = openpyxl.load_workbook(path, read_only=False, data_only=True)
    try:
        worksheet = workbook.worksheets[0]
        n_rows, n_cols = table.shape
        for merged in worksheet.merged_cells.ranges:
            top, left = merged.min_row - 1, merged.min_col - 1
            if top >= n_rows or left >= n_cols:
                continue
            value = table.iat[top, left]
            for row in range(top, min(merged.max_row, n_rows)):
                for col in range(left, min(merged.max_col, n_cols)):
                    table.iat[row, col] = value
    finally:
        workbook.close()


def _read_raw_table(path: Path) -> "Any":
    """Read a whole sheet with no header, every cell as an object (pandas DataFrame)."""
    import pandas as pd

    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(
                path, header=None, dtype=str, keep_default_na=False, skip_blank_lines=False,
                encoding="utf-8-sig",
            )
        if suffix in (".xlsx", ".xlsm", ".xls"):
            table = pd.read_excel(path, header=None, dtype=object)
            if suffix != ".xls":
                _fill_merged_cells(path, table)
            return table
    except ImportError as error:
        raise DatasetError(
            f"cannot read annotation sheet {path}: {error}. Install the reader "
            "(`pip install openpyxl` for .xlsx; .xls needs `pip install xlrd`) or save the "
            "sheet as .xlsx or .csv"
        ) from error
    except Exception as error:  # pandas raises many types for broken files
        raise DatasetError(
            f"cannot read annotation sheet {path}: {type(error).__name__}: {error}. "
            "Open it in a spreadsheet program and save it again as .xlsx or .csv"
        ) from error
    raise DatasetError(
        f"annotation sheet {path} has an unsupported extension {suffix!r}; use .xlsx or .csv"
    )


def read_annotation_sheet(
    path: str | os.PathLike,
    columns: Mapping[str, Sequence[str]],
    *,
    required: Sequence[str],
    header_search_rows: int = HEADER_SEARCH_ROWS,
) -> AnnotationSheet:
    """Read an annotation sheet (.xlsx or .csv) whose table may start below intro rows.

    Args:
        path: the sheet file.
        columns: role -> accepted header names (see :func:`column_candidates`).
        required: roles that must be present; optional roles are read when found.
        header_search_rows: how many top rows may hold the header.

    Returns:
        the :class:`AnnotationSheet`; rows whose cells are all empty are left out.

    Raises:
        DatasetError: the file cannot be read, or no row among the first
            ``header_search_rows`` holds all required columns (the message names the
            best candidate row, its columns and the missing ones, and how to fix it).
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"annotation sheet {path} does not exist; pass sheet= with its path")
    table = _read_raw_table(path)
    # role -> normalised accepted names, most preferred first.
    wanted = {
        role: list(dict.fromkeys(normalise_column_name(name) for name in names))
        for role, names in columns.items()
    }

    best_row, best_found = -1, {}
    n_rows = len(table.index)
    for row_pos in range(min(header_search_rows, n_rows)):
        keys = [normalise_column_name(cell) for cell in table.iloc[row_pos].tolist()]
        found: dict[str, int] = {}
        for role, names in wanted.items():
            # The most preferred name wins when several columns fit a role
            # (e.g. "Estimated Emotion" over a generic "Label").
            for name in names:
                if name in keys:
                    found[role] = keys.index(name)
                    break
        if all(role in found for role in required):
            header_pos, role_columns = row_pos, found
            break
        if len(found) > len(best_found):
            best_row, best_found = row_pos, found
    else:
        missing = [role for role in required if role not in best_found]
        if best_row >= 0:
            header_cells = [cell_text(c) for c in table.iloc[best_row].tolist() if cell_text(c)]
            where = f"the closest header candidate, row {best_row + 1}, has columns {header_cells}"
        else:
            where = f"none of its first {min(header_search_rows, n_rows)} rows looks like a header"
        missing_text = ", ".join(f"{role!r} (one of {list(columns[role])})" for role in missing)
        raise DatasetError(
            f"annotation sheet {path}: missing required column(s) {missing_text}; {where}. "
            "How to fix: rename the column in the sheet, or pass "
            "columns={'<role>': '<your column name>'} to the loader"
        )

    rows: list[SheetRow] = []
    for row_pos in range(header_pos + 1, n_rows):
        cells = table.iloc[row_pos].tolist()
        if all(cell_text(c) == "" for c in cells):
            continue
        values = {role: cells[col] for role, col in role_columns.items()}
        rows.append(SheetRow(row_number=row_pos + 1, values=values))
    header_cells = table.iloc[header_pos].tolist()
    matched = {role: cell_text(header_cells[col]) for role, col in role_columns.items()}
    return AnnotationSheet(path=path, header_row=header_pos + 1, columns=matched, rows=tuple(rows))


def _looks_like_frame_folder(entries: Sequence[os.DirEntry]) -> bool:
    """True when a folder mostly holds image files (so we do not descend into it)."""
    images = sum(1 for e in entries if e.name.lower().endswith(FRAME_EXTENSIONS))
    return images > 0 and images * 2 >= len(entries)


def _cell_text(value: Any) -> str:
    """A cell as text that reads the same from .xlsx (numbers) and .csv (strings)."""
    if value is None:
        return ""
    if isinstance(value, float):
        if value != value:  # NaN: an empty cell
            return ""
        if value.is_integer():
            return str(int(value))
    text = str(value).strip()
    try:  # "46.0" in a CSV and 46 in the workbook are the same frame number
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() and "e" not in text.lower() else text


def _table_cells(path: Path) -> list[list[str]]:
    rows = [[_cell_text(v) for v in row] for row in _read_raw_table(path).itertuples(index=False)]
    rows = [row[: max((i + 1 for i, cell in enumerate(row) if cell), default=0)] for row in rows]
    while rows and not rows[-1]:
        rows.pop()
    return rows


def _check_sheets_agree(chosen: Path, other: Path, dataset_name: str) -> None:
    """Refuse two sheets side by side (``.xlsx`` and ``.csv``) whose tables differ: which one is
    the annotation would otherwise be decided by the file-name pattern order, silently."""
    chosen_cells, other_cells = _table_cells(chosen), _table_cells(other)
    if chosen_cells == other_cells:
        logger.info("%s: read %s (%s beside it holds the same table).", dataset_name, chosen.name, other.name)
        return
    for row_index in range(max(len(chosen_cells), len(other_cells))):
        first = chosen_cells[row_index] if row_index < len(chosen_cells) else []
        second = other_cells[row_index] if row_index < len(other_cells) else []
        if first != second:
            break
    raise DatasetError(
        f"{dataset_name}: two annotation sheets disagree: {chosen.name} (which would be read) and {other.name} differ "
        f"from sheet row {row_index + 1} on ({first[:6]} vs {second[:6]}). Delete or rename the one that is out of date."
    )


def find_sheet(
    root: str | os.PathLike,
    patterns: Sequence[str],
    *,
    dataset_name: str,
    max_depth: int = 3,
    max_folders: int = 400,
) -> Path:
    """Find a dataset's annotation sheet under ``root`` by file-name patterns.

    The search is breadth-first (root first, then its sub-folders...) down to
    ``max_depth`` levels, never enters folders that hold frames, and visits at most
    ``max_folders`` folders, so it stays fast on a dataset with millions of frames.
    Patterns are shell-style and case-insensitive; Office lock files (``~$...``) and
    hidden files are ignored. The first pattern that matches at the shallowest level
    wins.

    Args:
        root: the dataset root.
        patterns: file-name patterns in order of preference, e.g. ``["CASME2-coding-*.xlsx"]``.
        dataset_name: for messages.

    When sheets of another format match too at the same level (``X.xlsx`` beside
    ``X.csv``), both are read: if their tables agree the preferred one is used (logged),
    otherwise the dataset is refused, since which sheet is the annotation is unclear.

    Raises:
        DatasetError: no sheet found, several files match the same pattern at the
            same level (pass ``sheet=`` to choose), or sheets of two formats disagree.
    """
    root = Path(root)
    level = [root]
    visited = 0
    for _depth in range(max_depth + 1):
        files: list[Path] = []
        next_level: list[Path] = []
        for folder in level:
            if visited >= max_folders:
                break
            visited += 1
            try:
                entries = list(os.scandir(folder))
            except OSError:
                continue
            if folder != root and _looks_like_frame_folder(entries):
                continue
            for entry in sorted(entries, key=lambda e: e.name):
                if entry.name.startswith((".", "~$")):
                    continue
                if entry.is_dir():
                    next_level.append(Path(entry.path))
                elif entry.is_file():
                    files.append(Path(entry.path))
        for pattern in patterns:
            matches = [f for f in files if fnmatch.fnmatch(f.name.lower(), pattern.lower())]
            if len(matches) == 1:
                others = [
                    f for f in files
                    if f != matches[0] and f.suffix.lower() != matches[0].suffix.lower()
                    and any(fnmatch.fnmatch(f.name.lower(), other.lower()) for other in patterns)
                ]
                for other in others:
                    _check_sheets_agree(matches[0], other, dataset_name)
                return matches[0]
            if len(matches) > 1:
                listed = ", ".join(str(m) for m in matches)
                raise DatasetError(
                    f"{dataset_name}: several annotation sheets match {pattern!r}: {listed}. "
                    "Pass sheet=<path> to choose one"
                )
        if not next_level:
            break
        level = next_level
    raise DatasetError(
        f"{dataset_name}: no annotation sheet matching {list(patterns)} under {root}. "
        "Put the sheet in the dataset root or pass sheet=<path>"
    )


def resolve_sheet_argument(
    root: Path, sheet: str | os.PathLike | None, patterns: Sequence[str], dataset_name: str
) -> Path:
    """The sheet path from a loader's ``sheet`` argument (relative paths are under ``root``)."""
    if sheet is None:
        return find_sheet(root, patterns, dataset_name=dataset_name)
    sheet_path = Path(sheet).expanduser()
    if not sheet_path.is_absolute():
        sheet_path = root / sheet_path
    if not sheet_path.is_file():
        raise DatasetError(f"{dataset_name}: annotation sheet {sheet_path} does not exist")
    return sheet_path


def deduplicate_rows(
    rows: Sequence[SheetRow], roles: Sequence[str], dataset_name: str
) -> tuple[list[SheetRow], dict[int, int]]:
    """Drop sheet rows that repeat an earlier row on all ``roles`` (cleaned text).

    Returns:
        ``(kept_rows, repeats)``: the rows to process, and for each kept row number
        that had copies, how many copies were dropped. One INFO log line names the
        dropped rows.
    """
    first_row_of: dict[tuple[str, ...], int] = {}
    kept: list[SheetRow] = []
    repeats: Counter = Counter()
    dropped: list[str] = []
    for row in rows:
        key = tuple(" ".join(cell_text(row.get(role)).split()).lower() for role in roles)
        if key in first_row_of:
            repeats[first_row_of[key]] += 1
            dropped.append(f"row {row.row_number} repeats row {first_row_of[key]}")
            continue
        first_row_of[key] = row.row_number
        kept.append(row)
    if dropped:
        logger.info(
            "%s: dropped %d duplicated sheet rows (%s)", dataset_name, len(dropped), "; ".join(dropped)
        )
    return kept, dict(repeats)


__all__ = [
    "AnnotationSheet",
    "DEFAULT_COLUMNS",
    "HEADER_SEARCH_ROWS",
    "SheetRow",
    "column_candidates",
    "deduplicate_rows",
    "find_sheet",
    "read_annotation_sheet",
    "resolve_sheet_argument",
]
