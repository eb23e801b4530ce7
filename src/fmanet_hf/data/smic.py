"""SMIC loader (HS, VIS, NIR variants).

Layout assumed (the SMIC release: frames sorted into folders, labels given by the
folder names, no sheet needed)::

    <root>/
      SMIC_all_raw/                      # or SMIC/SMIC_all_raw, SMIC, SMIC_all_cropped, <root>
        HS/                              # VIS/ and NIR/ alike
          s1/
            micro/
              negative/  s1_ne_01/ image106563.bmp image106564.bmp ...
              positive/  s1_po_01/ ...
              surprise/  s1_sur_01/ ...
            non_micro/                   # ignored
          s2/ ...

(``<root>`` may also be the variant folder itself, holding ``s1/`` ...)

SMIC clips are cut to the micro-expression, and SMIC annotates no apex, so:
onset = the first frame of the clip folder, offset = the last, and the apex is
estimated with ``apex_method``:

- ``"middle"`` (default): the existing frame nearest to (onset + offset) // 2;
- ``"max_motion"``: the frame with the largest mean absolute grey-level
  difference from the onset frame (frames shrunk to at most 128 px on the long
  side first; ties -> the earliest; numpy + PIL only).

The method is recorded per sample in ``apex_method``; it is not listed as a fix.

Optional sheet (``sheet=``, .xlsx or .csv), e.g. for re-cut or SMIC-E style clips:
columns ``Subject`` (``s1`` or a number n -> ``s{n}``), ``Filename`` (clip
folder), an emotion column (``Emotion``...), and optionally ``OnsetFrame`` /
``OffsetFrame`` (frame numbers as in the file names; missing -> first/last frame,
with the CASME II offset fixes). Clip folders are then searched with
``{subject}/micro/{emotion}/{filename}``, ``{subject}/{emotion}/{filename}``,
``{subject}/{filename}``.

Frame rate: HS 100 fps, VIS and NIR 25 fps. Class set: the native 3 classes
negative, positive, surprise (``label_id`` order), which are the MEGC 3 classes, named
``"megc3"`` as in the other datasets (aliases ``"3class"``, ``"native"``, ``"all"``, ``"3"``).
"""

from __future__ import annotations

import logging
import math
import os
from typing import TYPE_CHECKING, Mapping, Sequence

from ..errors import DatasetError
from .cells import cell_text, natural_key
from .frame_folders import FrameFolder, FrameFolderCache
from .keyframe_fixes import FIX_DUPLICATE_ROWS_DROPPED, FIX_LABEL_NORMALISED, resolve_key_frames
from .labels import MEGC3_CLASS_SET, DatasetClassSets, LabelTally, normalise_label
from .paths import (
    PathEscape,
    dataset_root,
    find_child_dir,
    locate_clip_dir,
    resolve_frames_dir,
    subject_folder_candidates,
)
from .records import SampleRecord, check_dataset_name, records_to_dataset
from .row_problems import InvalidRowPolicy, RowContext, RowProblem
from .sheets import column_candidates, deduplicate_rows, read_annotation_sheet

if TYPE_CHECKING:  # pragma: no cover
    import datasets

logger = logging.getLogger(__name__)

#: SMIC variants and their frame rates (frames per second).
SMIC_VARIANTS: dict[str, float] = {"HS": 100.0, "VIS": 25.0, "NIR": 25.0}
#: Apex estimation methods for SMIC.
SMIC_APEX_METHODS: tuple[str, ...] = ("middle", "max_motion")
#: Clip folder patterns used with a sheet, tried in order.
SMIC_CLIP_DIR_PATTERNS: tuple[str, ...] = (
    "{subject}/micro/{emotion}/{filename}",
    "{subject}/{emotion}/{filename}",
    "{subject}/{filename}",
)
#: Longest image side used by the ``"max_motion"`` apex estimate (pixels).
MAX_MOTION_SIDE = 128
#: Class sets: SMIC's native classes already are the MEGC 3 classes, so its one class
#: set is ``"megc3"``, as in the other datasets. ``"3class"`` (its canonical name up to
#: version 0.1.0), ``"native"``, ``"all"`` and ``"3"`` are accepted aliases.
SMIC_CLASS_SETS = DatasetClassSets.of(
    "smic",
    (MEGC3_CLASS_SET,),
    {"3class": "megc3", "native": "megc3", "all": "megc3", "3": "megc3"},
)


def smic_frames_dirs(variant: str) -> tuple[str, ...]:
    """Frame folders tried, in order, for a variant when ``frames_dir`` is not given."""
    return (
        f"SMIC_all_raw/{variant}",
        f"SMIC/SMIC_all_raw/{variant}",
        variant,
        f"SMIC/{variant}",
        f"SMIC_all_cropped/{variant}",
        f"SMIC/SMIC_all_cropped/{variant}",
        ".",
    )


def _grey_small(path: str | os.PathLike, max_side: int) -> "object":
    """A frame as a float32 grey array (H, W), shrunk so its long side is <= ``max_side``."""
    import numpy as np
    from PIL import Image

    try:
        with Image.open(path) as image:
            grey = image.convert("L")
            factor = math.ceil(max(grey.size) / max_side) if max_side > 0 else 1
            if factor > 1:
                grey = grey.reduce(factor)  # box filter: cheap and stable for a motion score
            return np.asarray(grey, dtype=np.float32)
    except (OSError, ValueError) as error:
        raise RowProblem(
            f"frame cannot be read as an image ({type(error).__name__}: {error})",
            path,
            "replace the damaged frame file",
        ) from error


def max_motion_apex(
    folder: FrameFolder, onset: int, offset: int, *, max_side: int = MAX_MOTION_SIDE
) -> int:
    """Estimate the apex as the frame that differs most from the onset frame.

    The score of frame t is ``mean(|grey(t) - grey(onset)|)`` in grey levels (0..255)
    over all pixels, computed on frames shrunk to at most ``max_side`` pixels on the
    long side. Frames strictly after the onset, up to and including the offset, are
    candidates; ties go to the earliest frame. A clip of one frame returns the onset.

    Args:
        folder: the clip's frames.
        onset, offset: frame indices (must exist in ``folder``).
        max_side: long-side size used for the comparison (pixels).

    Returns:
        the frame index of the estimated apex.

    Raises:
        RowProblem: a frame cannot be read or its size differs from the onset's.
    """
    import numpy as np

    indices = folder.indices_between(onset, offset)
    reference = _grey_small(folder.frames[onset], max_side)
    best_index, best_score = onset, -1.0
    for index in indices:
        if index == onset:
            continue
        frame = _grey_small(folder.frames[index], max_side)
        if frame.shape != reference.shape:
            raise RowProblem(
                f"frame {index} has size {frame.shape[::-1]} but the onset frame has "
                f"{reference.shape[::-1]} (width, height after shrinking)",
                folder.frames[index],
                "all frames of a clip must have the same size",
            )
        score = float(np.mean(np.abs(frame - reference)))
        if score > best_score:
            best_index, best_score = index, score
    return best_index


def _estimate_apex(folder: FrameFolder, onset: int, offset: int, apex_method: str) -> int:
    """The apex index by ``apex_method`` ("middle" or "max_motion")."""
    if apex_method == "max_motion":
        return max_motion_apex(folder, onset, offset)
    middle = folder.nearest_between((onset + offset) // 2, onset, offset)
    assert middle is not None  # the onset lies in the range
    return middle


def _check_arguments(variant: str, apex_method: str) -> str:
    """Validate ``variant`` and ``apex_method``; return the upper-case variant."""
    chosen = str(variant).strip().upper()
    if chosen not in SMIC_VARIANTS:
        raise DatasetError(f"unknown SMIC variant {variant!r}; choose one of {list(SMIC_VARIANTS)}")
    if apex_method not in SMIC_APEX_METHODS:
        raise DatasetError(
            f"unknown apex_method {apex_method!r} for SMIC; choose one of {list(SMIC_APEX_METHODS)}"
        )
    return chosen


def load_smic(
    root: str | os.PathLike,
    *,
    variant: str = "HS",
    sheet: str | os.PathLike | None = None,
    class_set: str = "megc3",
    dataset_name: str | None = None,
    frames_dir: str | os.PathLike | None = None,
    on_invalid: str = "raise",
    apex_method: str = "middle",
    micro_dirname: str | None = "micro",
    columns: Mapping[str, str | Sequence[str]] | None = None,
    clip_dir_patterns: Sequence[str] | None = None,
) -> "datasets.Dataset":
    """Load SMIC (HS, VIS or NIR) as a ``datasets.Dataset``.

    Args:
        root: the SMIC folder (see the module docstring for the layouts found).
        variant: ``"HS"`` (default, 100 fps), ``"VIS"`` or ``"NIR"`` (25 fps).
        sheet: optional annotation sheet; ``None`` reads labels from the folder tree.
        class_set: ``"megc3"`` (aliases ``"3class"``, ``"native"``, ``"all"``, ``"3"``).
        dataset_name: ``dataset`` column and ``sample_id`` prefix; default ``"smic"``
            for HS and ``"smic-vis"`` / ``"smic-nir"`` for the others.
        frames_dir: the folder holding ``s1/`` ...; ``None`` tries :func:`smic_frames_dirs`.
        on_invalid: ``"raise"`` or ``"skip"`` (bad clips dropped, count logged).
        apex_method: ``"middle"`` (default) or ``"max_motion"``.
        micro_dirname: the folder between subject and emotion folders (``"micro"``);
            ``None`` when emotion folders sit directly in the subject folders.
        columns: with a sheet: role -> column name(s) (roles subject, filename,
            emotion, onset, offset, action_units).
        clip_dir_patterns: with a sheet: folder patterns; default
            :data:`SMIC_CLIP_DIR_PATTERNS`.

    Returns:
        one row per clip with the columns of
        :data:`fmanet_hf.data.records.SAMPLE_COLUMNS`; ``sheet_row`` is 0 when the
        folder tree was walked. Rows are sorted by subject, emotion and clip (natural
        order: s2 before s10) in folder mode, in sheet order otherwise.

    Raises:
        DatasetError: unknown variant/apex method/class set, no frames folder, an empty
            or unreadable clip folder, or (with a sheet) the errors of
            :func:`fmanet_hf.data.load_casme2`.
    """
    chosen_variant = _check_arguments(variant, apex_method)
    default_name = "smic" if chosen_variant == "HS" else f"smic-{chosen_variant.lower()}"
    name = check_dataset_name(dataset_name or default_name)
    chosen_set = SMIC_CLASS_SETS.resolve(class_set)
    root_path = dataset_root(root, name)
    frames = resolve_frames_dir(
        root_path, frames_dir, smic_frames_dirs(chosen_variant), dataset_name=name,
        subject_pattern=r"^s\d+$",
    )
    if sheet is None:
        records = _records_from_folders(frames, name, chosen_set, on_invalid, apex_method, micro_dirname)
    else:
        sheet_path = os.fspath(sheet)
        sheet_path = sheet_path if os.path.isabs(sheet_path) else os.path.join(root_path, sheet_path)
        records = _records_from_sheet(
            sheet_path, frames, name, chosen_set, on_invalid, apex_method, columns,
            tuple(clip_dir_patterns or SMIC_CLIP_DIR_PATTERNS),
        )
    return records_to_dataset(records, chosen_set.names)


def _subdirs(folder: os.PathLike | str) -> list[str]:
    """Names of the visible sub-folders of ``folder``, in natural order."""
    try:
        names = [e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith(".")]
    except OSError:
        return []
    return sorted(names, key=natural_key)


def _records_from_folders(frames, name, class_set, on_invalid, apex_method, micro_dirname):
    """Walk ``<subject>/micro/<emotion>/<clip>`` and build one record per clip folder."""
    import re

    policy = InvalidRowPolicy(name, on_invalid)
    tally = LabelTally()
    records: list[SampleRecord] = []
    subject_re = re.compile(r"^s\d+$", re.IGNORECASE)
    without_micro: list[str] = []
    for subject in _subdirs(frames):
        if not subject_re.match(subject):
            continue
        subject_dir = frames / subject
        base = find_child_dir(subject_dir, micro_dirname) if micro_dirname else subject_dir
        if base is None:
            without_micro.append(subject)
            continue
        for emotion_folder in _subdirs(base):
            clips = _subdirs(base / emotion_folder)
            label_info = normalise_label(emotion_folder)
            if not label_info.known:
                tally.unknown[label_info.canonical] += len(clips)
                continue
            label = class_set.map(label_info.canonical)
            if label is None:
                tally.outside_class_set[label_info.canonical] += len(clips)
                continue
            for clip in clips:
                clip_dir = base / emotion_folder / clip
                context = RowContext(str(clip_dir), 0, subject, clip)
                try:
                    folder = FrameFolder.scan(clip_dir)
                    if len(folder) == 0:
                        raise RowProblem(
                            "the clip folder holds no frame files (jpg/jpeg/png/bmp named with a number)",
                            clip_dir,
                            "remove the empty folder or extract its frames",
                        )
                    onset, offset = folder.first_index, folder.last_index
                    apex = _estimate_apex(folder, onset, offset, apex_method)
                    records.append(
                        SampleRecord(
                            dataset=name, subject=subject, clip=clip,
                            sample_id=f"{name}/{subject}/{clip}", clip_dir=str(clip_dir),
                            onset_path=str(folder.frames[onset]), apex_path=str(folder.frames[apex]),
                            offset_path=str(folder.frames[offset]),
                            onset_index=onset, apex_index=apex, offset_index=offset,
                            apex_method=apex_method, native_label=label_info.canonical, label=label,
                            action_units="", fixes=[], sheet_row=0,
                        )
                    )
                except RowProblem as problem:
                    policy.handle(context, problem)
    if without_micro:
        logger.info(
            "%s: %d subject folders have no %r folder and give no samples: %s",
            name, len(without_micro), micro_dirname, ", ".join(without_micro),
        )
    tally.log(name, class_set)
    policy.log_summary()
    if not records:
        logger.warning("%s: no samples found under %s", name, frames)
    return records


def _records_from_sheet(sheet_path, frames, name, class_set, on_invalid, apex_method, columns, patterns):
    """Build records from a sheet naming subject, clip folder, emotion (and onset/offset)."""
    roles = ("subject", "filename", "emotion", "onset", "offset", "action_units")
    candidates = column_candidates(roles, columns)
    sheet = read_annotation_sheet(sheet_path, candidates, required=("subject", "filename", "emotion"))
    header_of = {role: sheet.columns.get(role, role) for role in roles}
    rows, repeats = deduplicate_rows(sheet.rows, ("subject", "filename", "onset", "offset", "emotion"), name)
    policy = InvalidRowPolicy(name, on_invalid)
    tally = LabelTally()
    folders = FrameFolderCache()
    records: list[SampleRecord] = []
    seen: dict[str, int] = {}
    for row in rows:
        subject_text, filename = cell_text(row.get("subject")), cell_text(row.get("filename"))
        if not subject_text and not filename:
            continue
        context = RowContext(str(sheet.path), row.row_number, subject_text, filename)
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
            fields = {
                "subject": subject_folder_candidates(row.get("subject"), ("s{n}", "s{n:02d}")),
                "filename": [filename],
                "emotion": [label_info.raw.strip(), label_info.canonical],
            }
            try:
                clip_dir, expected, chosen = locate_clip_dir(frames, patterns, fields)
            except PathEscape as escape:
                raise RowProblem(
                    "the frame folder built from this row escapes the dataset root; refused",
                    escape.path,
                    "subject and filename cells must name folders inside the frames folder",
                ) from None
            if clip_dir is None:
                raise RowProblem(
                    f"frame folder not found (tried {list(patterns)} under {frames})",
                    expected,
                    "check the subject/filename cells or pass clip_dir_patterns=",
                )
            folder = folders.get(clip_dir)
            if len(folder) == 0:
                raise RowProblem("the clip folder holds no frame files", clip_dir, "extract the frames")
            onset_raw = row.get("onset")
            if cell_text(onset_raw) == "":
                onset_raw = folder.first_index
            # Validate onset/offset (with the offset fixes) using the onset as a
            # placeholder apex; SMIC's apex is then estimated, not fixed.
            key_frames = resolve_key_frames(
                folder, onset_raw, onset_raw, row.get("offset"), column_names=header_of
            )
            apex = _estimate_apex(folder, key_frames.onset, key_frames.offset, apex_method)
            subject = chosen.get("subject", fields["subject"][0] if fields["subject"] else subject_text)
            sample_id = f"{name}/{subject}/{filename}"
            if sample_id in seen:
                raise RowProblem(
                    f"sample id {sample_id!r} is already used by row {seen[sample_id]}",
                    clip_dir,
                    "remove the repeated row",
                )
            seen[sample_id] = row.row_number
            fixes = list(key_frames.fixes)
            if label_info.changed:
                fixes.append(FIX_LABEL_NORMALISED)
            if repeats.get(row.row_number):
                fixes.append(FIX_DUPLICATE_ROWS_DROPPED)
            records.append(
                SampleRecord(
                    dataset=name, subject=subject, clip=filename, sample_id=sample_id,
                    clip_dir=str(folder.path), onset_path=str(key_frames.onset_path),
                    apex_path=str(folder.frames[apex]), offset_path=str(key_frames.offset_path),
                    onset_index=key_frames.onset, apex_index=apex, offset_index=key_frames.offset,
                    apex_method=apex_method, native_label=label_info.canonical, label=label,
                    action_units=cell_text(row.get("action_units")), fixes=fixes,
                    sheet_row=row.row_number,
                )
            )
        except RowProblem as problem:
            policy.handle(context, problem)
    tally.log(name, class_set)
    policy.log_summary()
    return records


__all__ = ["load_smic", "max_motion_apex", "SMIC_CLASS_SETS", "SMIC_VARIANTS", "SMIC_APEX_METHODS", "smic_frames_dirs"]
