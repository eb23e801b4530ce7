"""CASME II loader (also reads SynthME, which uses the CASME II layout).

Layout assumed (as distributed by the CASME II owners)::

    <root>/
      CASME2-coding-20140508.xlsx        # any name matching CASME2-coding-*.xlsx / .csv
      CASME2_RAW_selected/               # or CASME2_RAW, Cropped, CASME2_Cropped, or <root> itself
        sub01/
          EP02_01f/
            img46.jpg  img47.jpg ...     # Cropped release: reg_img46.jpg ...

Sheet columns (names matched ignoring case, spaces and underscores): ``Subject``
(an int, e.g. 1 -> folder ``sub01``; ``sub01`` is accepted too), ``Filename``
(``EP02_01f``), ``OnsetFrame``, ``ApexFrame``, ``OffsetFrame`` (frame numbers as
in the file names), ``Action Units``, ``Estimated Emotion``.

Sheet errors fixed in code (recorded per sample in ``fixes``):

- ApexFrame ``"/"`` or any non-number -> middle frame of onset..offset
  (``apex_middle``, ``apex_method="middle"``);
- OffsetFrame ``0`` or blank -> last frame of the clip folder (``offset_last_frame``);
  an offset before the onset likewise (``offset_before_onset_last_frame``);
- duplicated rows -> dropped, with a log line (``duplicate_rows_dropped`` on the kept row);
- emotion text with stray spaces or odd case -> normalised (``label_normalised``).

Frame rate: 200 fps. Class sets (``label_id`` order):

- ``"5class"`` (default): happiness, disgust, repression, surprise, others
  (fear and sadness, 2 + 7 samples, are dropped);
- ``"megc3"`` / ``"3class"``: negative, positive, surprise (others dropped);
- ``"all"``: happiness, disgust, repression, surprise, fear, sadness, others.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Mapping, Sequence

from .labels import MEGC3_CLASS_SET, DatasetClassSets, identity_class_set
from .sheet_loader import SheetLoadSpec, load_sheet_dataset

if TYPE_CHECKING:  # pragma: no cover
    import datasets

#: Sheet file-name patterns searched when ``sheet`` is not given.
CASME2_SHEET_PATTERNS: tuple[str, ...] = ("CASME2-coding-*.xlsx", "CASME2-coding-*.csv", "CASME2-coding*.xls*")
#: Frame folders tried, in order, when ``frames_dir`` is not given ("." is the root).
CASME2_FRAMES_DIRS: tuple[str, ...] = ("CASME2_RAW_selected", "CASME2_RAW", "Cropped", "CASME2_Cropped", ".")
#: Clip folder pattern under the frames folder.
CASME2_CLIP_DIR_PATTERNS: tuple[str, ...] = ("{subject}/{filename}",)
#: Subject folder names tried for a numeric Subject cell.
CASME2_SUBJECT_TEMPLATES: tuple[str, ...] = ("sub{n:02d}", "sub{n}", "{n:02d}", "{n}")

#: Class sets (``label_id`` order is part of the public contract) and their aliases.
CASME2_CLASS_SETS = DatasetClassSets.of(
    "casme2",
    (
        identity_class_set("5class", ("happiness", "disgust", "repression", "surprise", "others")),
        MEGC3_CLASS_SET,
        identity_class_set(
            "all", ("happiness", "disgust", "repression", "surprise", "fear", "sadness", "others")
        ),
    ),
    {"3class": "megc3", "5": "5class"},
)

#: Everything the generic sheet loader needs to know about this layout.
CASME2_SPEC = SheetLoadSpec(
    class_sets=CASME2_CLASS_SETS,
    clip_dir_patterns=CASME2_CLIP_DIR_PATTERNS,
    subject_templates=CASME2_SUBJECT_TEMPLATES,
    sheet_patterns=CASME2_SHEET_PATTERNS,
    frames_dirs=CASME2_FRAMES_DIRS,
    subject_pattern=r"^sub\d+$",
)


def load_casme2(
    root: str | os.PathLike,
    *,
    sheet: str | os.PathLike | None = None,
    class_set: str = "5class",
    dataset_name: str = "casme2",
    frames_dir: str | os.PathLike | None = None,
    on_invalid: str = "raise",
    columns: Mapping[str, str | Sequence[str]] | None = None,
    clip_dir_patterns: Sequence[str] | None = None,
) -> "datasets.Dataset":
    """Load CASME II (or a dataset in its layout, such as SynthME) as a ``datasets.Dataset``.

    Args:
        root: the dataset folder (holds the sheet and the frames folder).
        sheet: the annotation sheet (.xlsx or .csv); ``None`` searches ``root`` for
            ``CASME2-coding-*.xlsx``. A relative path is taken under ``root``.
        class_set: ``"5class"``, ``"megc3"`` (alias ``"3class"``) or ``"all"``.
        dataset_name: value of the ``dataset`` column and prefix of ``sample_id``
            (``"synthme"`` for SynthME gives ids ``synthme/sub01/EP01_01``).
        frames_dir: the folder holding ``sub01/`` ...; ``None`` tries
            :data:`CASME2_FRAMES_DIRS`. Relative paths are under ``root``.
        on_invalid: ``"raise"`` (default) stops at the first bad row with a
            :class:`~fmanet_hf.errors.DatasetError`; ``"skip"`` drops bad rows and logs
            how many.
        columns: role -> sheet column name(s) overriding the defaults; roles are
            subject, filename, onset, apex, offset, action_units, emotion.
        clip_dir_patterns: folder patterns relative to ``frames_dir`` (placeholders
            ``{subject}``, ``{filename}``); default ``("{subject}/{filename}",)``.

    Returns:
        one row per sample with the columns of
        :data:`fmanet_hf.data.records.SAMPLE_COLUMNS` (absolute frame paths that
        exist; frame indices are the numbers in the file names).

    Raises:
        DatasetError: missing sheet or column, missing frame folder, frame index out
            of range, a path escaping the root, or an unknown class set.
    """
    return load_sheet_dataset(
        CASME2_SPEC, root, sheet=sheet, class_set=class_set, dataset_name=dataset_name, frames_dir=frames_dir,
        on_invalid=on_invalid, columns=columns, clip_dir_patterns=clip_dir_patterns,
    )


__all__ = ["load_casme2", "CASME2_CLASS_SETS", "CASME2_SHEET_PATTERNS", "CASME2_FRAMES_DIRS"]
