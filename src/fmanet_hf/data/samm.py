"""SAMM loader.

Layout assumed (as distributed by the SAMM owners)::

    <root>/
      SAMM_Micro_FACS_Codes_v2.xlsx      # any SAMM*Micro_FACS_Codes*.xlsx / .csv
      SAMM/                              # or SAMM_CROP, SAMM_cropped, or <root> itself
        006/
          006_1_2/
            006_05562.jpg  006_05563.jpg ...   # grayscale

The sheet starts with about 13 rows of introduction text; the table's header row
is found automatically. Columns (matched ignoring case, spaces and underscores):
``Subject`` (an int, e.g. 6 -> folder ``006``), ``Filename`` (``006_1_2``),
``Onset Frame``, ``Apex Frame``, ``Offset Frame`` (frame numbers as in the file
names: 5562 <-> ``006_05562.jpg``), ``Action Units``, ``Estimated Emotion``
(capitalised: ``Anger``, ``Other``...).

Sheet errors fixed in code (recorded per sample in ``fixes``): apex ``-1`` or not a
number -> middle frame (``apex_middle``); apex outside onset..offset -> middle frame
(``apex_outside_clip_middle``); offset 0/blank or before the onset -> last frame of
the clip folder (``offset_last_frame`` / ``offset_before_onset_last_frame``);
duplicated rows dropped (``duplicate_rows_dropped``); emotion spelling normalised
(``Other`` -> ``others``; ``label_normalised`` only for stray spaces or odd case).

Frame rate: 200 fps. Class sets (``label_id`` order):

- ``"5class"`` (default): anger, contempt, happiness, surprise, others
  (disgust, fear and sadness dropped: about 136 of 159 samples remain);
- ``"megc3"`` / ``"3class"``: negative, positive, surprise (others dropped);
- ``"all"``: anger, contempt, disgust, fear, happiness, sadness, surprise, others.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Mapping, Sequence

from .labels import MEGC3_CLASS_SET, DatasetClassSets, identity_class_set
from .sheet_loader import SheetLoadSpec, load_sheet_dataset

if TYPE_CHECKING:  # pragma: no cover
    import datasets

#: Sheet file-name patterns searched when ``sheet`` is not given.
SAMM_SHEET_PATTERNS: tuple[str, ...] = (
    "SAMM_Micro_FACS_Codes_v2.xlsx",
    "SAMM*Micro_FACS_Codes*.xlsx",
    "SAMM*Micro_FACS_Codes*.csv",
)
#: Frame folders tried, in order, when ``frames_dir`` is not given ("." is the root).
SAMM_FRAMES_DIRS: tuple[str, ...] = ("SAMM", "SAMM_CROP", "SAMM_cropped", ".")
#: Clip folder pattern under the frames folder.
SAMM_CLIP_DIR_PATTERNS: tuple[str, ...] = ("{subject}/{filename}",)
#: Subject folder names tried for a numeric Subject cell.
SAMM_SUBJECT_TEMPLATES: tuple[str, ...] = ("{n:03d}", "{n}")

#: Class sets (``label_id`` order is part of the public contract) and their aliases.
SAMM_CLASS_SETS = DatasetClassSets.of(
    "samm",
    (
        identity_class_set("5class", ("anger", "contempt", "happiness", "surprise", "others")),
        MEGC3_CLASS_SET,
        identity_class_set(
            "all",
            ("anger", "contempt", "disgust", "fear", "happiness", "sadness", "surprise", "others"),
        ),
    ),
    {"3class": "megc3", "5": "5class"},
)

#: Everything the generic sheet loader needs to know about this layout.
SAMM_SPEC = SheetLoadSpec(
    class_sets=SAMM_CLASS_SETS,
    clip_dir_patterns=SAMM_CLIP_DIR_PATTERNS,
    subject_templates=SAMM_SUBJECT_TEMPLATES,
    sheet_patterns=SAMM_SHEET_PATTERNS,
    frames_dirs=SAMM_FRAMES_DIRS,
    subject_pattern=r"^\d+$",
)


def load_samm(
    root: str | os.PathLike,
    *,
    sheet: str | os.PathLike | None = None,
    class_set: str = "5class",
    dataset_name: str = "samm",
    frames_dir: str | os.PathLike | None = None,
    on_invalid: str = "raise",
    columns: Mapping[str, str | Sequence[str]] | None = None,
    clip_dir_patterns: Sequence[str] | None = None,
) -> "datasets.Dataset":
    """Load SAMM as a ``datasets.Dataset``.

    Args:
        root: the dataset folder (holds the sheet and the frames folder).
        sheet: the annotation sheet; ``None`` searches ``root`` for
            ``SAMM_Micro_FACS_Codes_v2.xlsx`` (or similar). Relative paths are under ``root``.
        class_set: ``"5class"``, ``"megc3"`` (alias ``"3class"``) or ``"all"``.
        dataset_name: value of the ``dataset`` column and prefix of ``sample_id``
            (``samm/006/006_1_2``).
        frames_dir: the folder holding ``006/`` ...; ``None`` tries :data:`SAMM_FRAMES_DIRS`.
        on_invalid: ``"raise"`` or ``"skip"`` (drop bad rows, log the count).
        columns: role -> sheet column name(s) overriding the defaults.
        clip_dir_patterns: folder patterns relative to ``frames_dir``.

    Returns:
        one row per sample with the columns of
        :data:`fmanet_hf.data.records.SAMPLE_COLUMNS`.

    Raises:
        DatasetError: as :func:`fmanet_hf.data.load_casme2`.
    """
    return load_sheet_dataset(
        SAMM_SPEC, root, sheet=sheet, class_set=class_set, dataset_name=dataset_name, frames_dir=frames_dir,
        on_invalid=on_invalid, columns=columns, clip_dir_patterns=clip_dir_patterns,
    )


__all__ = ["load_samm", "SAMM_CLASS_SETS", "SAMM_SHEET_PATTERNS", "SAMM_FRAMES_DIRS"]
