"""CAS(ME)^3 part A loader (micro-expressions, colour frames).

Layout assumed. Part A holds one long video per subject and task, stored as
numbered frames; several micro-expressions can come from one video, so the sheet's
frame numbers index into that folder (``JpgIndex`` in the sheet's name)::

    <root>/
      cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx   # any *JpgIndex*.xlsx / .csv, root or a sub-folder
      part_A/data/part_A/                         # or data/part_A, part_A, ME_A, data, <root>
        spNO.1/
          a/
            color/  0.jpg 1.jpg ...               # depth/ is ignored
          b/ ...

Clip folder patterns (override with ``clip_dir_patterns``): ``{subject}/{filename}/color``,
then ``{subject}/{filename}``. Sheet columns (matched ignoring case, spaces and
underscores): ``Subject`` (``spNO.1``; a number n -> ``spNO.{n}``), ``Filename``
(the task letter, ``a``), ``Onset``, ``Apex``, ``Offset`` (numbers of the jpg
files), ``AU``, ``emotion`` (happy, disgust, fear, anger, sad, surprise, others).
``Objective class`` is ignored.

Because a folder is a whole task video, the folder's last frame is NOT the end of
an expression: a bad offset is an error here (no ``offset_last_frame`` fix). The
other fixes of CASME II apply (apex not a number or outside the clip -> middle
frame; duplicated rows dropped; emotion spelling normalised). Sample ids carry the
onset, e.g. ``casme3/spNO.1/a/123``.

Frame rate: 30 fps. Class sets (``label_id`` order):

- ``"all"`` (default, alias ``"7class"``): happiness, surprise, anger, disgust,
  fear, sadness, others;
- ``"4class"``: negative (anger, disgust, fear, sadness), positive (happiness),
  surprise, others;
- ``"megc3"`` / ``"3class"``: negative, positive, surprise (others dropped).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Mapping, Sequence

from .labels import FOUR_CLASS_SET, MEGC3_CLASS_SET, DatasetClassSets, identity_class_set
from .sheet_loader import SheetLoadSpec, load_sheet_dataset

if TYPE_CHECKING:  # pragma: no cover
    import datasets

#: Sheet file-name patterns searched when ``sheet`` is not given.
CASME3_SHEET_PATTERNS: tuple[str, ...] = (
    "*part_A*JpgIndex*.xlsx",
    "*JpgIndex*.xlsx",
    "*JpgIndex*.csv",
)
#: Frame folders tried, in order, when ``frames_dir`` is not given ("." is the root).
CASME3_FRAMES_DIRS: tuple[str, ...] = (
    "part_A/data/part_A",
    "data/part_A",
    "part_A",
    "ME_A",
    "data",
    ".",
)
#: Clip folder patterns under the frames folder, tried in order.
CASME3_CLIP_DIR_PATTERNS: tuple[str, ...] = ("{subject}/{filename}/color", "{subject}/{filename}")
#: Subject folder names tried for a numeric Subject cell.
CASME3_SUBJECT_TEMPLATES: tuple[str, ...] = ("spNO.{n}", "spNO{n}", "{n}")

#: Class sets (``label_id`` order is part of the public contract) and their aliases.
CASME3_CLASS_SETS = DatasetClassSets.of(
    "casme3",
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
CASME3_SPEC = SheetLoadSpec(
    class_sets=CASME3_CLASS_SETS,
    clip_dir_patterns=CASME3_CLIP_DIR_PATTERNS,
    subject_templates=CASME3_SUBJECT_TEMPLATES,
    sheet_patterns=CASME3_SHEET_PATTERNS,
    frames_dirs=CASME3_FRAMES_DIRS,
    subject_pattern=r"^spNO\.?\d+$",
    offset_fallback_last_frame=False,
    sample_id_with_onset=True,
)


def load_casme3(
    root: str | os.PathLike,
    *,
    sheet: str | os.PathLike | None = None,
    class_set: str = "all",
    dataset_name: str = "casme3",
    frames_dir: str | os.PathLike | None = None,
    on_invalid: str = "raise",
    columns: Mapping[str, str | Sequence[str]] | None = None,
    clip_dir_patterns: Sequence[str] | None = None,
) -> "datasets.Dataset":
    """Load CAS(ME)^3 part A micro-expressions as a ``datasets.Dataset``.

    Args:
        root: the dataset folder (holds the sheet and the frames folder).
        sheet: the annotation sheet; ``None`` searches ``root`` (three levels deep)
            for ``*JpgIndex*.xlsx``.
        class_set: ``"all"`` (``"7class"``), ``"4class"`` or ``"megc3"`` (``"3class"``).
        dataset_name: value of the ``dataset`` column and prefix of ``sample_id``.
        frames_dir: the folder holding ``spNO.1/`` ...; ``None`` tries :data:`CASME3_FRAMES_DIRS`.
        on_invalid: ``"raise"`` or ``"skip"``.
        columns: role -> sheet column name(s) overriding the defaults.
        clip_dir_patterns: folder patterns; default :data:`CASME3_CLIP_DIR_PATTERNS`.

    Returns:
        one row per sample with the columns of
        :data:`fmanet_hf.data.records.SAMPLE_COLUMNS`.

    Raises:
        DatasetError: as :func:`fmanet_hf.data.load_casme2`; also for an offset that
            is not a frame number or lies before the onset.
    """
    return load_sheet_dataset(
        CASME3_SPEC, root, sheet=sheet, class_set=class_set, dataset_name=dataset_name, frames_dir=frames_dir,
        on_invalid=on_invalid, columns=columns, clip_dir_patterns=clip_dir_patterns,
    )


__all__ = ["load_casme3", "CASME3_CLASS_SETS", "CASME3_SHEET_PATTERNS", "CASME3_FRAMES_DIRS", "CASME3_CLIP_DIR_PATTERNS"]
