"""MMEW (micro-expression part) loader.

Layout assumed. The owners' description of MMEW stores micro-expression frames
as ``<subject>/<emotion>/<clip>/<n>.jpg`` (e.g. ``S03/happiness/S03-01-002/1.jpg``),
while copies used by public MER code keep them as
``Micro_Expression/<emotion>/<clip>/<n>.jpg``. Both are accepted::

    <root>/
      MMEW_Micro_Exp.xlsx                # any MMEW*Micro*.xlsx / MMEW*.csv
      Micro_Expression/                  # or MMEW_Final/Micro_Expression, MMEW/Micro_Expression, <root>
        happiness/S01-01-001/1.jpg ...   # or S01/happiness/S01-01-001/1.jpg ...

Clip folders are searched with these patterns (relative to the frames folder, in
order; override with ``clip_dir_patterns``): ``{subject}/{emotion}/{filename}``,
``{emotion}/{filename}``, ``{subject}/{filename}``, ``{filename}``. ``{emotion}`` is
the emotion cell as written, its canonical name, and for "others" also
``repression`` (the owners' folder list names a "repression" folder where the
sheet's classes say "others"; which one a copy uses varies).

Sheet columns (matched ignoring case, spaces and underscores): ``Subject``
(``S01``, or a number n -> ``S{n:02d}``), ``Filename``, ``OnsetFrame``,
``ApexFrame``, ``OffsetFrame`` (numbers of the frame files: 1 <-> ``1.jpg``),
``Action Units``, ``Estimated Emotion``; ``remarks`` is ignored.

Sheet errors fixed in code: as CASME II (apex not a number or outside the clip ->
middle frame; offset 0/blank/before onset -> last frame of the clip folder;
duplicated rows dropped; emotion spelling normalised), recorded in ``fixes``.

Frame rate: 90 fps. Class sets (``label_id`` order):

- ``"all"`` (default, alias ``"7class"``): happiness, surprise, anger, disgust,
  fear, sadness, others;
- ``"4class"``: negative (anger, disgust, fear, sadness, and contempt/repression if
  present), positive (happiness), surprise, others;
- ``"megc3"`` / ``"3class"``: negative, positive, surprise (others dropped).

Papers use 4- to 7-class subsets of MMEW; the FMANet paper's choice is not known.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Mapping, Sequence

from .labels import FOUR_CLASS_SET, MEGC3_CLASS_SET, DatasetClassSets, identity_class_set
from .sheet_loader import SheetLoadSpec, load_sheet_dataset

if TYPE_CHECKING:  # pragma: no cover
    import datasets

#: Sheet file-name patterns searched when ``sheet`` is not given.
MMEW_SHEET_PATTERNS: tuple[str, ...] = ("MMEW_Micro_Exp*.xlsx", "MMEW*Micro*.xlsx", "MMEW*Micro*.csv")
#: Frame folders tried, in order, when ``frames_dir`` is not given ("." is the root).
MMEW_FRAMES_DIRS: tuple[str, ...] = (
    "Micro_Expression",
    "MMEW_Final/Micro_Expression",
    "MMEW/Micro_Expression",
    ".",
)
#: Clip folder patterns under the frames folder, tried in order.
MMEW_CLIP_DIR_PATTERNS: tuple[str, ...] = (
    "{subject}/{emotion}/{filename}",
    "{emotion}/{filename}",
    "{subject}/{filename}",
    "{filename}",
)
#: Subject folder names tried for a numeric Subject cell.
MMEW_SUBJECT_TEMPLATES: tuple[str, ...] = ("S{n:02d}", "S{n}", "{n:02d}", "{n}")
#: Extra emotion folder names per canonical emotion.
MMEW_EMOTION_FOLDER_ALIASES: dict[str, tuple[str, ...]] = {"others": ("repression", "other")}

#: Class sets (``label_id`` order is part of the public contract) and their aliases.
MMEW_CLASS_SETS = DatasetClassSets.of(
    "mmew",
    (
        identity_class_set(
            "all", ("happiness", "surprise", "anger", "disgust", "fear", "sadness", "others")
        ),
        FOUR_CLASS_SET,
        MEGC3_CLASS_SET,
    ),
    {"3class": "megc3", "7class": "all", "native": "all"},
)

#: Everything the generic sheet loader needs to know about this layout.
MMEW_SPEC = SheetLoadSpec(
    class_sets=MMEW_CLASS_SETS,
    clip_dir_patterns=MMEW_CLIP_DIR_PATTERNS,
    subject_templates=MMEW_SUBJECT_TEMPLATES,
    sheet_patterns=MMEW_SHEET_PATTERNS,
    frames_dirs=MMEW_FRAMES_DIRS,
    emotion_folder_aliases=MMEW_EMOTION_FOLDER_ALIASES,
)


def load_mmew(
    root: str | os.PathLike,
    *,
    sheet: str | os.PathLike | None = None,
    class_set: str = "all",
    dataset_name: str = "mmew",
    frames_dir: str | os.PathLike | None = None,
    on_invalid: str = "raise",
    columns: Mapping[str, str | Sequence[str]] | None = None,
    clip_dir_patterns: Sequence[str] | None = None,
) -> "datasets.Dataset":
    """Load the micro-expressions of MMEW as a ``datasets.Dataset``.

    Args:
        root: the dataset folder (holds the sheet and the frames folder).
        sheet: the annotation sheet; ``None`` searches ``root`` for ``MMEW_Micro_Exp*.xlsx``.
        class_set: ``"all"`` (``"7class"``), ``"4class"`` or ``"megc3"`` (``"3class"``).
        dataset_name: value of the ``dataset`` column and prefix of ``sample_id``
            (``mmew/S01/S01-01-001``).
        frames_dir: the folder the clip patterns start from; ``None`` tries
            :data:`MMEW_FRAMES_DIRS`.
        on_invalid: ``"raise"`` or ``"skip"``.
        columns: role -> sheet column name(s) overriding the defaults.
        clip_dir_patterns: folder patterns (placeholders ``{subject}``, ``{emotion}``,
            ``{filename}``); default :data:`MMEW_CLIP_DIR_PATTERNS`.

    Returns:
        one row per sample with the columns of
        :data:`fmanet_hf.data.records.SAMPLE_COLUMNS`.

    Raises:
        DatasetError: as :func:`fmanet_hf.data.load_casme2`.
    """
    return load_sheet_dataset(
        MMEW_SPEC, root, sheet=sheet, class_set=class_set, dataset_name=dataset_name, frames_dir=frames_dir,
        on_invalid=on_invalid, columns=columns, clip_dir_patterns=clip_dir_patterns,
    )


__all__ = ["load_mmew", "MMEW_CLASS_SETS", "MMEW_SHEET_PATTERNS", "MMEW_FRAMES_DIRS", "MMEW_CLIP_DIR_PATTERNS"]
