"""Shared machinery of the dataset loaders: sheets, frame folders, labels, records.

Every benchmark loader in :mod:`fmanet_hf.data` follows the same steps, and this
module holds them so that each dataset module only states its own layout:

1. **Find and read the annotation sheet** (:func:`find_sheet`,
   :func:`read_annotation_sheet`). ``.xlsx`` files are read with pandas (openpyxl
   engine), ``.csv`` with pandas' CSV reader. Intro rows above the table (SAMM has
   about 13) are tolerated: the header is the first row, among the first
   :data:`HEADER_SEARCH_ROWS`, that holds every required column. Column names are
   compared after normalisation (:func:`normalise_column_name`: case, spaces,
   underscores and hyphens are ignored), so ``Onset Frame``, ``OnsetFrame`` and
   ``onset_frame`` are the same column. Row numbers are kept 1-based, as a
   spreadsheet user sees them, for error messages.
2. **Find the clip's frame folder** under the frames directory
   (:func:`locate_clip_dir`) from folder-name patterns such as
   ``"{subject}/{filename}"``, refusing any path that escapes the dataset root
   (:func:`path_inside`).
3. **Index the frames by number** (:class:`FrameFolder`): the frame index is the
   trailing integer of the file stem, so ``img46.jpg``, ``reg_img46.jpg``,
   ``006_05562.jpg``, ``image000001.bmp`` and ``0.jpg`` are frames 46, 46, 5562,
   1 and 0. Extensions: jpg, jpeg, png, bmp (any case).
4. **Apply documented fixes** for known sheet errors and resolve onset / apex /
   offset to existing files (:func:`resolve_key_frames`); every fix is recorded
   per sample in the ``fixes`` column.
5. **Map labels** (:func:`normalise_label`, :func:`resolve_class_set`): native
   emotion names are normalised (case, whitespace, common synonyms) and mapped to
   the chosen class set; labels outside it are dropped and counted in the log.
6. **Build the** ``datasets.Dataset`` (:func:`records_to_dataset`) with a fixed
   schema shared by every loader (:data:`SAMPLE_COLUMNS`), so datasets can be
   concatenated into composites such as MEGC2019.

The heavy libraries (pandas, datasets, PIL) are imported inside the functions that
need them, so ``import fmanet_hf.data`` stays cheap and never pulls torch.
"""

from __future__ import annotations

import dataclasses

import fnmatch
import logging
import math
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

from ..errors import DatasetError

if TYPE_CHECKING:  # pragma: no cover - typing only
    import datasets

logger = logging.getLogger(__name__)

#: File extensions accepted as frames (compared case-insensitively), in order of
#: preference when two files of one folder carry the same frame number.
FRAME_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp")

#: How many rows from the top of a sheet are searched for the header row.
HEADER_SEARCH_ROWS = 60

#: Accepted values of every loader's ``on_invalid`` argument.
ON_INVALID_CHOICES: tuple[str, ...] = ("raise", "skip")

#: Values of the ``apex_method`` column.
APEX_METHODS: tuple[str, ...] = ("annotated", "middle", "max_motion")

# ---------------------------------------------------------------------------
# Fix names recorded in the ``fixes`` column (comma-separated, empty when none).
# ---------------------------------------------------------------------------
#: The apex cell was not a frame number ("/", blank, text, negative): the apex is
#: the existing frame nearest to (onset + offset) // 2.
FIX_APEX_MIDDLE = "apex_middle"
#: The annotated apex lay outside onset..offset: replaced as for FIX_APEX_MIDDLE.
FIX_APEX_OUTSIDE_CLIP = "apex_outside_clip_middle"
#: The offset cell was 0, blank or not a number: the last frame of the clip folder.
FIX_OFFSET_LAST_FRAME = "offset_last_frame"
#: The offset was before the onset: replaced by the last frame of the clip folder.
FIX_OFFSET_BEFORE_ONSET = "offset_before_onset_last_frame"
#: The emotion text needed cleaning (stray whitespace, odd capitalisation).
FIX_LABEL_NORMALISED = "label_normalised"
#: Identical copies of this sheet row were dropped.
FIX_DUPLICATE_ROWS_DROPPED = "duplicate_rows_dropped"

# ---------------------------------------------------------------------------
# Column roles and their default sheet names.
# ---------------------------------------------------------------------------
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

# ---------------------------------------------------------------------------
# Labels.
# ---------------------------------------------------------------------------
#: Canonical native emotion names known to the loaders.
KNOWN_EMOTIONS: tuple[str, ...] = (
    "happiness",
    "surprise",
    "disgust",
    "repression",
    "fear",
    "sadness",
    "anger",
    "contempt",
    "others",
    "positive",
    "negative",
)

#: Other spellings found in sheets and folder names -> canonical name.
EMOTION_SYNONYMS: dict[str, str] = {
    "happy": "happiness",
    "happiness": "happiness",
    "surprise": "surprise",
    "surprised": "surprise",
    "disgust": "disgust",
    "disgusted": "disgust",
    "repression": "repression",
    "repressed": "repression",
    "fear": "fear",
    "fearful": "fear",
    "sadness": "sadness",
    "sad": "sadness",
    "anger": "anger",
    "angry": "anger",
    "contempt": "contempt",
    "others": "others",
    "other": "others",
    "positive": "positive",
    "negative": "negative",
}

#: The MEGC2019 3-class names, in ``label_id`` order.
MEGC3_CLASSES: tuple[str, ...] = ("negative", "positive", "surprise")

#: Native emotions that MEGC2019 groups as "negative".
MEGC_NEGATIVE_EMOTIONS: frozenset[str] = frozenset(
    {"anger", "contempt", "disgust", "fear", "sadness", "repression"}
)


def megc3_label(native: str) -> str | None:
    """Map a canonical native emotion to its MEGC2019 3-class name.

    Args:
        native: a canonical emotion name (see :data:`KNOWN_EMOTIONS`).

    Returns:
        ``"negative"`` for anger, contempt, disgust, fear, sadness, repression (and
        SMIC's own ``"negative"``), ``"positive"`` for happiness (and SMIC's
        ``"positive"``), ``"surprise"`` for surprise, ``None`` for others and any
        other label (the sample is then dropped from the class set).
    """
    if native in MEGC_NEGATIVE_EMOTIONS or native == "negative":
        return "negative"
    if native in ("happiness", "positive"):
        return "positive"
    if native == "surprise":
        return "surprise"
    return None


def four_class_label(native: str) -> str | None:
    """Map a canonical native emotion to the 4-class set (negative, positive, surprise, others).

    The 3 MEGC classes plus ``"others"`` for samples labelled others; used for MMEW
    and CAS(ME)^3, where papers often keep the others class.
    """
    if native == "others":
        return "others"
    return megc3_label(native)


@dataclass(frozen=True)
class ClassSet:
    """A class set: the ordered class names and the native-label -> class mapping.

    Attributes:
        name: the canonical class-set name (e.g. ``"5class"``, ``"megc3"``).
        names: class names in ``label_id`` order.
        mapper: canonical native emotion -> class name, or ``None`` to drop.
    """

    name: str
    names: tuple[str, ...]
    mapper: Callable[[str], str | None]

    def map(self, native: str) -> str | None:
        """Return the class name of a canonical native emotion, or ``None`` to drop it."""
        mapped = self.mapper(native)
        return mapped if mapped in self.names else None


def _identity_set(name: str, names: Sequence[str]) -> ClassSet:
    """A class set whose classes are native emotions kept as they are."""
    kept = tuple(names)
    return ClassSet(name, kept, lambda native: native if native in kept else None)


#: Per dataset key: class-set name -> ClassSet. Order of ``names`` is the
#: ``label_id`` order and is part of the public contract (see docs/datasets.md).
CLASS_SETS: dict[str, dict[str, ClassSet]] = {
    "casme2": {
        "5class": _identity_set("5class", ("happiness", "disgust", "repression", "surprise", "others")),
        "megc3": ClassSet("megc3", MEGC3_CLASSES, megc3_label),
        "all": _identity_set(
            "all", ("happiness", "disgust", "repression", "surprise", "fear", "sadness", "others")
        ),
    },
    "samm": {
        "5class": _identity_set("5class", ("anger", "contempt", "happiness", "surprise", "others")),
        "megc3": ClassSet("megc3", MEGC3_CLASSES, megc3_label),
        "all": _identity_set(
            "all",
            ("anger", "contempt", "disgust", "fear", "happiness", "sadness", "surprise", "others"),
        ),
    },
    "smic": {
        # SMIC's native classes already are the MEGC classes.
        "3class": ClassSet("3class", MEGC3_CLASSES, megc3_label),
    },
    "mmew": {
        "all": _identity_set(
            "all", ("happiness", "surprise", "anger", "disgust", "fear", "sadness", "others")
        ),
        "4class": ClassSet("4class", ("negative", "positive", "surprise", "others"), four_class_label),
        "megc3": ClassSet("megc3", MEGC3_CLASSES, megc3_label),
    },
    "casme3": {
        "all": _identity_set(
            "all", ("happiness", "surprise", "anger", "disgust", "fear", "sadness", "others")
        ),
        "4class": ClassSet("4class", ("negative", "positive", "surprise", "others"), four_class_label),
        "megc3": ClassSet("megc3", MEGC3_CLASSES, megc3_label),
    },
}

#: Alternative names accepted for class sets, per dataset key.
CLASS_SET_ALIASES: dict[str, dict[str, str]] = {
    "casme2": {"3class": "megc3", "5": "5class"},
    "samm": {"3class": "megc3", "5": "5class"},
    "smic": {"megc3": "3class", "native": "3class", "all": "3class", "3": "3class"},
    "mmew": {"3class": "megc3", "7class": "all", "native": "all"},
    "casme3": {"3class": "megc3", "7class": "all", "native": "all"},
}


def resolve_class_set(dataset_key: str, class_set: str) -> ClassSet:
    """Return the :class:`ClassSet` named ``class_set`` for one dataset.

    Args:
        dataset_key: ``"casme2"``, ``"samm"``, ``"smic"``, ``"mmew"`` or ``"casme3"``.
        class_set: a class-set name or alias (case-insensitive), e.g. ``"5class"``,
            ``"megc3"``, ``"3class"``, ``"all"``.

    Raises:
        DatasetError: the dataset has no such class set (the message lists the valid ones).
    """
    sets = CLASS_SETS[dataset_key]
    wanted = str(class_set).strip().lower()
    wanted = CLASS_SET_ALIASES.get(dataset_key, {}).get(wanted, wanted)
    if wanted not in sets:
        valid = sorted(set(sets) | set(CLASS_SET_ALIASES.get(dataset_key, {})))
        raise DatasetError(
            f"unknown class_set {class_set!r} for {dataset_key}; choose one of {valid}"
        )
    return sets[wanted]


@dataclass(frozen=True)
class NormalisedLabel:
    """The result of :func:`normalise_label`.

    Attributes:
        raw: the cell text as read (stripped of nothing).
        canonical: the canonical emotion name, or the cleaned lower-case text when unknown.
        known: whether ``canonical`` is one of :data:`KNOWN_EMOTIONS`.
        changed: whether cleaning went beyond the sheet's usual spelling (whole word
            lower-case or Capitalised): stray or doubled whitespace, odd case. Such
            samples get the ``label_normalised`` fix.
    """

    raw: str
    canonical: str
    known: bool
    changed: bool


def normalise_label(raw: Any) -> NormalisedLabel:
    """Clean an emotion cell and map its spelling to a canonical emotion name.

    ``" Happiness "`` -> ``happiness`` (changed), ``"Happiness"`` -> ``happiness``
    (not changed: Capitalised words are the SAMM convention), ``"happy"`` ->
    ``happiness``, ``"Other"`` -> ``others``, ``"xyz"`` -> unknown.

    Args:
        raw: the cell value (str, number, None or NaN).
    """
    raw_text = cell_text(raw, strip=False)
    cleaned = " ".join(raw_text.split()).lower()
    canonical = EMOTION_SYNONYMS.get(cleaned, EMOTION_SYNONYMS.get(cleaned.replace(" ", ""), cleaned))
    known = canonical in KNOWN_EMOTIONS
    usual_spellings = {cleaned, cleaned.capitalize()}
    changed = bool(cleaned) and raw_text not in usual_spellings
    return NormalisedLabel(raw=raw_text, canonical=canonical, known=known, changed=changed)


@dataclass
class LabelTally:
    """Counts of samples dropped for their label, logged once per loader call."""

    outside_class_set: Counter = field(default_factory=Counter)
    unknown: Counter = field(default_factory=Counter)

    def log(self, dataset_name: str, class_set: ClassSet) -> None:
        """Log the dropped counts (INFO for known labels outside the set, WARNING for unknown ones)."""
        if self.outside_class_set:
            total = sum(self.outside_class_set.values())
            detail = ", ".join(f"{name} {n}" for name, n in sorted(self.outside_class_set.items()))
            logger.info(
                "%s: dropped %d samples whose label is not in class set %r %s: %s",
                dataset_name, total, class_set.name, list(class_set.names), detail,
            )
        if self.unknown:
            total = sum(self.unknown.values())
            detail = ", ".join(
                f"{name or '(empty)'!s} {n}" for name, n in sorted(self.unknown.items())
            )
            logger.warning(
                "%s: dropped %d samples with an unknown emotion label: %s "
                "(known labels: %s)",
                dataset_name, total, detail, ", ".join(KNOWN_EMOTIONS),
            )


# ---------------------------------------------------------------------------
# Cells.
# ---------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------
# Sheets.
# ---------------------------------------------------------------------------
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

    Raises:
        DatasetError: no sheet found, or several files match the same pattern at the
            same level (pass ``sheet=`` to choose).
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


# ---------------------------------------------------------------------------
# Paths.
# ---------------------------------------------------------------------------
def path_inside(base: str | os.PathLike, *parts: str) -> Path | None:
    """Join ``parts`` to ``base``; ``None`` if the result escapes ``base``.

    The check is lexical (``..`` and absolute parts are resolved without following
    symbolic links): sheet cells cannot lead outside the dataset root, while
    symbolic links the user made inside the root are still followed.
    """
    base_norm = os.path.normpath(os.path.abspath(os.fspath(base)))
    joined = os.path.normpath(os.path.join(base_norm, *[str(p) for p in parts]))
    try:
        if os.path.commonpath([joined, base_norm]) != base_norm:
            return None
    except ValueError:  # different drives on Windows
        return None
    return Path(joined)


def dataset_root(root: str | os.PathLike, dataset_name: str) -> Path:
    """Check and return the absolute dataset root.

    Raises:
        DatasetError: the folder does not exist.
    """
    root_path = Path(root).expanduser().absolute()
    if not root_path.is_dir():
        raise DatasetError(
            f"{dataset_name}: dataset root {root_path} is not a folder; pass the folder that "
            "holds the annotation sheet and the frames"
        )
    return root_path


def resolve_frames_dir(
    root: Path,
    frames_dir: str | os.PathLike | None,
    candidates: Sequence[str],
    *,
    dataset_name: str,
    subject_pattern: str | None = None,
) -> Path:
    """Pick the folder that holds the subject folders.

    Args:
        root: the dataset root.
        frames_dir: the user's choice: ``None`` to auto-detect; a relative path is
            taken under ``root`` (and may not escape it); an absolute path is used as is.
        candidates: relative folders tried in order when auto-detecting (``"."`` is the root).
        subject_pattern: regular expression a subject folder name must match for a
            candidate to be accepted (any sub-folder when ``None``).

    Raises:
        DatasetError: the folder given does not exist, escapes the root, or no candidate fits.
    """
    if frames_dir is not None:
        given = Path(frames_dir).expanduser()
        chosen = given if given.is_absolute() else path_inside(root, str(given))
        if chosen is None:
            raise DatasetError(
                f"{dataset_name}: frames_dir={str(frames_dir)!r} escapes the dataset root {root}; "
                "pass a folder inside the root or an absolute path"
            )
        if not chosen.is_dir():
            raise DatasetError(f"{dataset_name}: frames_dir {chosen} is not a folder")
        return chosen
    pattern = re.compile(subject_pattern, re.IGNORECASE) if subject_pattern else None
    for candidate in candidates:
        folder = path_inside(root, candidate)
        if folder is None or not folder.is_dir():
            continue
        try:
            names = [e.name for e in os.scandir(folder) if e.is_dir()]
        except OSError:
            continue
        if any(pattern.match(n) if pattern else True for n in names):
            return folder
    raise DatasetError(
        f"{dataset_name}: cannot find the frames folder under {root}; tried {list(candidates)} "
        f"(a frames folder holds subject folders"
        + (f" named like {subject_pattern!r}" if subject_pattern else "")
        + "). Pass frames_dir=<folder>"
    )


def find_child_dir(parent: Path, name: str) -> Path | None:
    """The sub-folder ``name`` of ``parent``: exact name first, then ignoring case."""
    exact = parent / name
    if exact.is_dir():
        return exact
    if not parent.is_dir():
        return None
    lowered = name.lower()
    try:
        for entry in sorted(os.scandir(parent), key=lambda e: e.name):
            if entry.name.lower() == lowered and entry.is_dir():
                return Path(entry.path)
    except OSError:
        return None
    return None


_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def locate_clip_dir(
    frames_dir: Path,
    patterns: Sequence[str],
    fields: Mapping[str, Sequence[str]],
) -> tuple[Path | None, Path, dict[str, str]]:
    """Find a clip's frame folder from folder-name patterns.

    Args:
        frames_dir: the folder the patterns are relative to.
        patterns: e.g. ``["{subject}/{filename}"]``, tried in order.
        fields: placeholder -> candidate values, tried in order (e.g. subject
            ``["sub01", "sub1", "1"]``); each path component is matched exactly
            first, then ignoring case.

    Returns:
        ``(found, expected, chosen)``: the folder found (``None`` if none), the path
        of the first candidate (for error messages), and the field values used.

    Raises:
        _PathEscape: a candidate path escapes ``frames_dir`` (a sheet cell holds
            ``..`` or an absolute path).
    """
    expected: Path | None = None
    expected_fields: dict[str, str] = {}
    for pattern in patterns:
        names = _PLACEHOLDER.findall(pattern)
        pools = [list(dict.fromkeys(fields.get(n, ()))) for n in names]
        for combo in product(*pools):
            chosen = dict(zip(names, combo))
            relative = pattern.format(**chosen)
            candidate = path_inside(frames_dir, relative)
            if candidate is None or any(_is_unsafe_cell_path(value) for value in combo):
                raise _PathEscape(os.path.join(os.fspath(frames_dir), relative))
            if expected is None:
                expected, expected_fields = candidate, chosen
            found = _walk_case_insensitive(frames_dir, relative)
            if found is not None:
                return found, candidate, chosen
    if expected is None:  # no patterns or an empty field pool
        expected = frames_dir
    return None, expected, expected_fields


def _is_unsafe_cell_path(value: str) -> bool:
    """True for a cell that names an absolute path or climbs with ``..``.

    Joined into a pattern, ``"/etc"`` would still land inside the root (``sub01//etc``),
    but a cell like that was never meant as a clip name: refuse it rather than guess.
    """
    text = str(value)
    parts = re.split(r"[\\/]+", text)
    return text.startswith(("/", "\\")) or bool(re.match(r"^[A-Za-z]:", text)) or ".." in parts


def _walk_case_insensitive(base: Path, relative: str) -> Path | None:
    """Follow ``relative`` from ``base`` component by component, ignoring case where needed."""
    current = base
    for part in Path(relative).parts:
        nxt = find_child_dir(current, part)
        if nxt is None:
            return None
        current = nxt
    return current


class _PathEscape(Exception):
    """Internal: a path built from sheet cells leaves the dataset root."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


# ---------------------------------------------------------------------------
# Frame folders.
# ---------------------------------------------------------------------------
_TRAILING_NUMBER = re.compile(r"(\d+)$")


def frame_number(file_name: str) -> int | None:
    """The frame index of a frame file name, or ``None`` if it is not a frame.

    The index is the trailing integer of the stem: ``img46.jpg`` -> 46,
    ``reg_img46.jpg`` -> 46, ``006_05562.jpg`` -> 5562, ``image000001.bmp`` -> 1,
    ``0.jpg`` -> 0. Hidden files (``._img1.jpg`` from macOS) and other extensions
    give ``None``.
    """
    if file_name.startswith("."):
        return None
    stem, ext = os.path.splitext(file_name)
    if ext.lower() not in FRAME_EXTENSIONS:
        return None
    match = _TRAILING_NUMBER.search(stem)
    return int(match.group(1)) if match else None


class FrameFolder:
    """The frame files of one clip folder, indexed by frame number.

    Attributes:
        path: the folder.
        frames: frame index -> file path, sorted by index.
    """

    def __init__(self, path: Path, frames: Mapping[int, Path]) -> None:
        self.path = path
        self.frames: dict[int, Path] = dict(sorted(frames.items()))
        self._indices = list(self.frames)

    @classmethod
    def scan(cls, path: str | os.PathLike) -> "FrameFolder":
        """Index the frame files of ``path`` (not recursive).

        When two files carry the same number (``img46.jpg`` and ``img46.png``), the
        one with the preferred extension (:data:`FRAME_EXTENSIONS` order) wins.

        Raises:
            FileNotFoundError: the folder does not exist (loaders turn this into a
                :class:`DatasetError` that names the sheet row).
        """
        folder = Path(path)
        chosen: dict[int, tuple[int, str, Path]] = {}
        for entry in os.scandir(folder):
            index = frame_number(entry.name)
            if index is None or not entry.is_file():
                continue
            rank = FRAME_EXTENSIONS.index(os.path.splitext(entry.name)[1].lower())
            key = (rank, entry.name, Path(entry.path))
            if index not in chosen or key[:2] < chosen[index][:2]:
                chosen[index] = key
        return cls(folder, {index: item[2] for index, item in chosen.items()})

    def __len__(self) -> int:
        return len(self._indices)

    @property
    def indices(self) -> list[int]:
        """All frame indices, ascending."""
        return list(self._indices)

    @property
    def first_index(self) -> int:
        """The smallest frame index (the folder must not be empty)."""
        return self._indices[0]

    @property
    def last_index(self) -> int:
        """The largest frame index (the folder must not be empty)."""
        return self._indices[-1]

    def path_for(self, index: int) -> Path | None:
        """The file of frame ``index``, ``None`` if there is none."""
        return self.frames.get(index)

    def indices_between(self, start: int, stop: int) -> list[int]:
        """Existing frame indices ``i`` with ``start <= i <= stop``, ascending."""
        return [i for i in self._indices if start <= i <= stop]

    def nearest_between(self, target: int, start: int, stop: int) -> int | None:
        """The existing index in ``start..stop`` nearest to ``target`` (ties: the lower)."""
        inside = self.indices_between(start, stop)
        if not inside:
            return None
        return min(inside, key=lambda i: (abs(i - target), i))

    def describe_range(self) -> str:
        """Human text about the indices present, for error messages."""
        if not self._indices:
            return "the folder holds no frame files (jpg/jpeg/png/bmp named with a number)"
        example = self.frames[self._indices[0]].name
        return (
            f"frames there are numbered {self._indices[0]}..{self._indices[-1]} "
            f"({len(self._indices)} files, e.g. {example})"
        )


class FrameFolderCache:
    """Scans each clip folder once per loader call (CAS(ME)^3 rows share long-video folders)."""

    def __init__(self) -> None:
        self._folders: dict[Path, FrameFolder] = {}

    def get(self, path: Path) -> FrameFolder:
        """The :class:`FrameFolder` of ``path`` (``FileNotFoundError`` if it is missing)."""
        if path not in self._folders:
            self._folders[path] = FrameFolder.scan(path)
        return self._folders[path]


# ---------------------------------------------------------------------------
# Rows, problems and fixes.
# ---------------------------------------------------------------------------
class RowProblem(Exception):
    """Internal: a sheet row (or clip folder) cannot become a sample.

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


def check_dataset_name(dataset_name: str) -> str:
    """Validate a ``dataset_name`` (it prefixes sample ids, so no slashes or blanks)."""
    name = str(dataset_name).strip()
    if not name or "/" in name or "\\" in name or any(c.isspace() for c in name):
        raise DatasetError(
            f"dataset_name {dataset_name!r} must be a non-empty word without slashes or spaces"
        )
    return name


@dataclass(frozen=True)
class KeyFrames:
    """Resolved onset / apex / offset frames of one sample.

    Attributes:
        onset, apex, offset: frame indices (file-name numbers).
        onset_path, apex_path, offset_path: absolute paths of existing files.
        apex_method: ``"annotated"`` or ``"middle"`` (or ``"max_motion"`` for SMIC).
        fixes: fix names applied (see the ``FIX_*`` constants).
    """

    onset: int
    apex: int
    offset: int
    onset_path: Path
    apex_path: Path
    offset_path: Path
    apex_method: str
    fixes: tuple[str, ...]


def _frame_path(folder: FrameFolder, index: int, which: str, column: str) -> Path:
    """The file of frame ``index``, or a :class:`RowProblem` naming the folder and range."""
    path = folder.path_for(index)
    if path is None:
        raise RowProblem(
            f"{which} frame {index} is out of range: no frame file with number {index} "
            f"in the clip folder; {folder.describe_range()}",
            folder.path,
            f"correct the {column} cell to a frame number present in that folder",
        )
    return path


def resolve_key_frames(
    folder: FrameFolder,
    onset_raw: Any,
    apex_raw: Any,
    offset_raw: Any,
    *,
    offset_fallback_last_frame: bool = True,
    column_names: Mapping[str, str] | None = None,
) -> KeyFrames:
    """Turn onset/apex/offset cells into existing frame files, fixing known sheet errors.

    Fixes (each recorded in ``KeyFrames.fixes``):

    - offset missing, ``0``, negative or not a number -> the last frame of the folder
      (``offset_last_frame``), when ``offset_fallback_last_frame``;
    - offset before onset -> the last frame of the folder
      (``offset_before_onset_last_frame``), when ``offset_fallback_last_frame``;
    - apex missing or not a number (``"/"``, blank, negative) -> the existing frame
      nearest to ``(onset + offset) // 2`` (``apex_middle``; ``apex_method="middle"``);
    - apex outside onset..offset -> the same middle frame (``apex_outside_clip_middle``).

    ``offset_fallback_last_frame`` is off for datasets whose folders hold a long
    video with several samples (CAS(ME)^3): there the folder's last frame is not the
    end of the expression, so a bad offset is an error instead.

    Args:
        folder: the clip's frame folder.
        onset_raw, apex_raw, offset_raw: the raw cells.
        column_names: role -> sheet header, to name cells in messages.

    Raises:
        RowProblem: the folder is empty, the onset is not a frame number, the offset is
            unusable and may not be replaced, or a frame file is absent.
    """
    names = {"onset": "onset", "apex": "apex", "offset": "offset"}
    names.update(column_names or {})
    if len(folder) == 0:
        raise RowProblem(
            "the clip folder holds no frame files (jpg/jpeg/png/bmp named with a number)",
            folder.path,
            "check that the frames were extracted into this folder",
        )
    fixes: list[str] = []
    onset = parse_frame_index(onset_raw)
    if onset is None or onset < 0:
        raise RowProblem(
            f"onset {cell_text(onset_raw)!r} is not a frame number",
            folder.path,
            f"write the onset frame number into the {names['onset']} cell",
        )
    onset_path = _frame_path(folder, onset, "onset", names["onset"])

    offset = parse_frame_index(offset_raw)
    if offset is None or offset <= 0:
        if not offset_fallback_last_frame:
            raise RowProblem(
                f"offset {cell_text(offset_raw)!r} is not a frame number",
                folder.path,
                f"write the offset frame number into the {names['offset']} cell",
            )
        offset = folder.last_index
        fixes.append(FIX_OFFSET_LAST_FRAME)
    elif offset < onset:
        if not offset_fallback_last_frame or folder.last_index < onset:
            raise RowProblem(
                f"offset {offset} is before onset {onset}",
                folder.path,
                f"correct the {names['onset']} or {names['offset']} cell",
            )
        offset = folder.last_index
        fixes.append(FIX_OFFSET_BEFORE_ONSET)
    offset_path = _frame_path(folder, offset, "offset", names["offset"])

    apex = parse_frame_index(apex_raw)
    apex_method = "annotated"
    if apex is None or apex < 0:
        apex_fix = FIX_APEX_MIDDLE
    elif not onset <= apex <= offset:
        apex_fix = FIX_APEX_OUTSIDE_CLIP
    else:
        apex_fix = ""
    if apex_fix:
        apex = folder.nearest_between((onset + offset) // 2, onset, offset)
        assert apex is not None  # onset itself exists and lies in the range
        apex_method = "middle"
        fixes.append(apex_fix)
    apex_path = _frame_path(folder, apex, "apex", names["apex"])
    return KeyFrames(
        onset=onset, apex=apex, offset=offset,
        onset_path=onset_path, apex_path=apex_path, offset_path=offset_path,
        apex_method=apex_method, fixes=tuple(fixes),
    )


# ---------------------------------------------------------------------------
# Records and the datasets.Dataset.
# ---------------------------------------------------------------------------
@dataclass
class SampleRecord:
    """One sample before it becomes a ``datasets.Dataset`` row (see :data:`SAMPLE_COLUMNS`)."""

    dataset: str
    subject: str
    clip: str
    sample_id: str
    clip_dir: str
    onset_path: str
    apex_path: str
    offset_path: str
    onset_index: int
    apex_index: int
    offset_index: int
    apex_method: str
    native_label: str
    label: str
    action_units: str
    fixes: list[str]
    sheet_row: int

    def as_row(self, class_names: Sequence[str]) -> dict[str, Any]:
        """The dataset row: the fields plus ``label_id``; ``fixes`` joined with commas."""
        row = {name: getattr(self, name) for name in SAMPLE_COLUMNS if name not in ("label_id", "fixes")}
        row["fixes"] = ",".join(dict.fromkeys(self.fixes))
        row["label_id"] = list(class_names).index(self.label)
        return row

    def same_content(self, other: "SampleRecord") -> bool:
        """Whether two records describe the same frames and label."""
        return (
            self.onset_index, self.apex_index, self.offset_index, self.label, self.clip_dir
        ) == (other.onset_index, other.apex_index, other.offset_index, other.label, other.clip_dir)


#: Columns of every loader's dataset, in order. ``label_id`` is a
#: ``datasets.ClassLabel`` with the class set's names; the ``*_index`` columns and
#: ``sheet_row`` are int32 (``sheet_row`` is 0 for samples found by walking folders,
#: as in SMIC); every other column is a string.
SAMPLE_COLUMNS: tuple[str, ...] = (
    "dataset",
    "subject",
    "clip",
    "sample_id",
    "clip_dir",
    "onset_path",
    "apex_path",
    "offset_path",
    "onset_index",
    "apex_index",
    "offset_index",
    "apex_method",
    "native_label",
    "label",
    "label_id",
    "action_units",
    "fixes",
    "sheet_row",
)

_INT_COLUMNS = frozenset({"onset_index", "apex_index", "offset_index", "sheet_row"})


def sample_features(class_names: Sequence[str]) -> "datasets.Features":
    """The ``datasets.Features`` of a loader's dataset for the given class names."""
    import datasets

    spec: dict[str, Any] = {}
    for name in SAMPLE_COLUMNS:
        if name == "label_id":
            spec[name] = datasets.ClassLabel(names=list(class_names))
        elif name in _INT_COLUMNS:
            spec[name] = datasets.Value("int32")
        else:
            spec[name] = datasets.Value("string")
    return datasets.Features(spec)


def records_to_dataset(records: Sequence[SampleRecord], class_names: Sequence[str]) -> "datasets.Dataset":
    """Build the in-memory ``datasets.Dataset`` of a loader.

    Args:
        records: the samples, in output order.
        class_names: the class set's names in ``label_id`` order.

    Returns:
        a dataset with the columns of :data:`SAMPLE_COLUMNS` (no cache files written).
    """
    import datasets

    columns: dict[str, list[Any]] = {name: [] for name in SAMPLE_COLUMNS}
    for record in records:
        for name, value in record.as_row(class_names).items():
            columns[name].append(value)
    return datasets.Dataset.from_dict(columns, features=sample_features(class_names))


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


def natural_key(text: str) -> tuple:
    """Sort key that orders embedded numbers by value: ``s2`` before ``s10``."""
    return tuple(int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", str(text)))


def subject_folder_candidates(raw: Any, templates: Sequence[str]) -> list[str]:
    """Subject folder names to try for a sheet's subject cell.

    Args:
        raw: the cell (``1``, ``1.0``, ``"1"``, ``"sub01"``...).
        templates: format strings applied to the number when the cell is a number,
            e.g. ``["sub{n:02d}", "sub{n}", "{n}"]``.

    Returns:
        the cell text itself first when it is not a bare number, then the templates.
    """
    text = cell_text(raw)
    number = parse_frame_index(raw)
    names: list[str] = []
    if text and (number is None or not text.lstrip("+-").isdigit()):
        names.append(text)
    if number is not None and number >= 0:
        names.extend(t.format(n=number) for t in templates)
    return list(dict.fromkeys(names))


@dataclass
class SheetLoadSpec:
    """What a sheet-based loader needs to know about its dataset.

    Attributes:
        dataset_key: key into :data:`CLASS_SETS` (``"casme2"``...).
        clip_dir_patterns: folder patterns relative to the frames folder, with
            placeholders ``{subject}``, ``{filename}``, ``{emotion}``.
        subject_templates: see :func:`subject_folder_candidates`.
        emotion_folder_aliases: canonical emotion -> extra folder names to try for
            ``{emotion}`` (MMEW stores "others" under "repression" in some copies).
        offset_fallback_last_frame: see :func:`resolve_key_frames`.
        sample_id_with_onset: add ``/<onset>`` to sample ids (several samples per folder).
        sheet_patterns: sheet file-name patterns searched under the root when no sheet is given.
        frames_dirs: frame folders tried in order when none is given ("." is the root).
        subject_pattern: regex a subject folder name matches (used to recognise the frames
            folder); None accepts any folder.
    """

    dataset_key: str
    clip_dir_patterns: tuple[str, ...]
    subject_templates: tuple[str, ...]
    emotion_folder_aliases: Mapping[str, Sequence[str]] = field(default_factory=dict)
    offset_fallback_last_frame: bool = True
    sample_id_with_onset: bool = False
    sheet_patterns: tuple[str, ...] = ()
    frames_dirs: tuple[str, ...] = (".",)
    subject_pattern: str | None = None


def load_sheet_dataset(
    spec: SheetLoadSpec,
    root: str | os.PathLike,
    *,
    sheet: str | os.PathLike | None,
    class_set: str,
    dataset_name: str,
    frames_dir: str | os.PathLike | None,
    on_invalid: str,
    columns: Mapping[str, str | Sequence[str]] | None,
    clip_dir_patterns: Sequence[str] | None,
) -> "datasets.Dataset":
    """The whole sheet-based load: root, sheet, frames folder, rows -> ``datasets.Dataset``.

    The per-dataset loaders (CASME II, SAMM, MMEW, CAS(ME)^3) are this function with their
    layout in ``spec``; their docstrings describe the arguments.
    """
    name = check_dataset_name(dataset_name)
    chosen_set = resolve_class_set(spec.dataset_key, class_set)
    root_path = dataset_root(root, name)
    sheet_path = resolve_sheet_argument(root_path, sheet, spec.sheet_patterns, name)
    frames_kwargs = {"subject_pattern": spec.subject_pattern} if spec.subject_pattern else {}
    frames = resolve_frames_dir(root_path, frames_dir, spec.frames_dirs, dataset_name=name, **frames_kwargs)
    if clip_dir_patterns:
        spec = dataclasses.replace(spec, clip_dir_patterns=tuple(clip_dir_patterns))
    records = load_sheet_records(
        spec=spec, sheet_path=sheet_path, frames_dir=frames, dataset_name=name,
        class_set=chosen_set, columns=columns, on_invalid=on_invalid,
    )
    return records_to_dataset(records, chosen_set.names)


SHEET_ROLES: tuple[str, ...] = ("subject", "filename", "onset", "apex", "offset", "action_units", "emotion")
REQUIRED_SHEET_ROLES: tuple[str, ...] = ("subject", "filename", "onset", "apex", "offset", "emotion")


def load_sheet_records(
    *,
    spec: SheetLoadSpec,
    sheet_path: Path,
    frames_dir: Path,
    dataset_name: str,
    class_set: ClassSet,
    columns: Mapping[str, str | Sequence[str]] | None,
    on_invalid: str,
) -> list[SampleRecord]:
    """The common sheet-driven loading loop of CASME II, SAMM, MMEW and CAS(ME)^3.

    Reads the sheet, drops duplicated rows, normalises and maps labels (dropping
    and counting those outside the class set), finds each clip folder, resolves and
    fixes the key frames, and checks that sample ids are unique.

    Args:
        spec: the dataset's layout description.
        sheet_path: the annotation sheet.
        frames_dir: the folder the clip patterns are relative to.
        dataset_name: prefix of sample ids and value of the ``dataset`` column.
        class_set: the resolved class set.
        columns: the loader's ``columns`` override.
        on_invalid: ``"raise"`` or ``"skip"``.

    Returns:
        the records in sheet order.

    Raises:
        DatasetError: a missing column, or (with ``on_invalid="raise"``) the first bad
            row: missing frame folder, frame index out of range, path escaping the root.
    """
    policy = InvalidRowPolicy(dataset_name, on_invalid)
    candidates = column_candidates(SHEET_ROLES, columns)
    sheet = read_annotation_sheet(sheet_path, candidates, required=REQUIRED_SHEET_ROLES)
    header_of = {role: sheet.columns.get(role, role) for role in SHEET_ROLES}
    rows, repeats = deduplicate_rows(
        sheet.rows, ("subject", "filename", "onset", "apex", "offset", "emotion"), dataset_name
    )
    tally = LabelTally()
    folders = FrameFolderCache()
    records: list[SampleRecord] = []
    by_id: dict[str, tuple[SampleRecord, int]] = {}
    ignored_rows = 0

    for row in rows:
        subject_text = cell_text(row.get("subject"))
        filename = cell_text(row.get("filename"))
        context = RowContext(str(sheet.path), row.row_number, subject_text, filename)
        if not subject_text and not filename:
            # Notes or totals under the table: not a sample.
            ignored_rows += 1
            continue
        try:
            if not subject_text or not filename:
                missing = header_of["subject"] if not subject_text else header_of["filename"]
                raise RowProblem(f"the {missing} cell is empty", "", f"fill in the {missing} cell")
            label_info = normalise_label(row.get("emotion"))
            if not label_info.known:
                tally.unknown[label_info.canonical] += 1
                continue
            label = class_set.map(label_info.canonical)
            if label is None:
                tally.outside_class_set[label_info.canonical] += 1
                continue

            emotion_names = [label_info.raw.strip(), label_info.canonical]
            emotion_names += list(spec.emotion_folder_aliases.get(label_info.canonical, ()))
            fields = {
                "subject": subject_folder_candidates(row.get("subject"), spec.subject_templates),
                "filename": [filename],
                "emotion": emotion_names,
            }
            try:
                clip_dir, expected, chosen = locate_clip_dir(frames_dir, spec.clip_dir_patterns, fields)
            except _PathEscape as escape:
                raise RowProblem(
                    "the frame folder built from this row escapes the dataset root; refused",
                    escape.path,
                    f"the {header_of['subject']} and {header_of['filename']} cells must name "
                    "folders inside the frames folder (no '..' or absolute paths)",
                ) from None
            if clip_dir is None:
                raise RowProblem(
                    "frame folder not found (tried "
                    + ", ".join(repr(p) for p in spec.clip_dir_patterns)
                    + f" under {frames_dir})",
                    expected,
                    f"check the {header_of['subject']}/{header_of['filename']} cells, or pass "
                    "frames_dir= / clip_dir_patterns= to match your copy's layout",
                )
            folder = folders.get(clip_dir)
            key_frames = resolve_key_frames(
                folder, row.get("onset"), row.get("apex"), row.get("offset"),
                offset_fallback_last_frame=spec.offset_fallback_last_frame,
                column_names=header_of,
            )
            # The subject name is the folder name that matched; layouts without a
            # subject level (MMEW by emotion) use the first spelling of the cell.
            if "subject" in chosen:
                subject = chosen["subject"]
            elif fields["subject"]:
                subject = fields["subject"][0]
            else:
                subject = subject_text
            clip_name = filename
            sample_id = f"{dataset_name}/{subject}/{clip_name}"
            if spec.sample_id_with_onset:
                sample_id += f"/{key_frames.onset}"
            fixes = list(key_frames.fixes)
            if label_info.changed:
                fixes.append(FIX_LABEL_NORMALISED)
            if repeats.get(row.row_number):
                fixes.append(FIX_DUPLICATE_ROWS_DROPPED)
            record = SampleRecord(
                dataset=dataset_name,
                subject=subject,
                clip=clip_name,
                sample_id=sample_id,
                clip_dir=str(folder.path),
                onset_path=str(key_frames.onset_path),
                apex_path=str(key_frames.apex_path),
                offset_path=str(key_frames.offset_path),
                onset_index=key_frames.onset,
                apex_index=key_frames.apex,
                offset_index=key_frames.offset,
                apex_method=key_frames.apex_method,
                native_label=label_info.canonical,
                label=label,
                action_units=cell_text(row.get("action_units")),
                fixes=fixes,
                sheet_row=row.row_number,
            )
            if sample_id in by_id:
                earlier, earlier_row = by_id[sample_id]
                raise RowProblem(
                    f"sample id {sample_id!r} is already used by row {earlier_row}"
                    + ("" if record.same_content(earlier) else " with different frames or label"),
                    folder.path,
                    "remove the repeated row or correct its subject/filename cells",
                )
            by_id[sample_id] = (record, row.row_number)
            records.append(record)
        except RowProblem as problem:
            policy.handle(context, problem)
        except FileNotFoundError as error:  # pragma: no cover - folder vanished mid-scan
            policy.handle(context, RowProblem("frame folder disappeared while reading", str(error)))

    if ignored_rows:
        logger.info(
            "%s: ignored %d sheet rows with neither subject nor filename (notes or spacers)",
            dataset_name, ignored_rows,
        )
    tally.log(dataset_name, class_set)
    policy.log_summary()
    if not records:
        logger.warning("%s: no samples left after loading %s", dataset_name, sheet.path)
    return records


__all__ = [
    "APEX_METHODS",
    "AnnotationSheet",
    "CLASS_SETS",
    "ClassSet",
    "DEFAULT_COLUMNS",
    "EMOTION_SYNONYMS",
    "FIX_APEX_MIDDLE",
    "FIX_APEX_OUTSIDE_CLIP",
    "FIX_DUPLICATE_ROWS_DROPPED",
    "FIX_LABEL_NORMALISED",
    "FIX_OFFSET_BEFORE_ONSET",
    "FIX_OFFSET_LAST_FRAME",
    "FRAME_EXTENSIONS",
    "FrameFolder",
    "KNOWN_EMOTIONS",
    "KeyFrames",
    "MEGC3_CLASSES",
    "MEGC_NEGATIVE_EMOTIONS",
    "NormalisedLabel",
    "SAMPLE_COLUMNS",
    "SampleRecord",
    "SheetRow",
    "cell_text",
    "find_sheet",
    "four_class_label",
    "frame_number",
    "megc3_label",
    "normalise_column_name",
    "normalise_label",
    "parse_frame_index",
    "path_inside",
    "read_annotation_sheet",
    "records_to_dataset",
    "resolve_class_set",
    "resolve_key_frames",
    "sample_features",
]
