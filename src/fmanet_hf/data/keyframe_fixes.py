"""Documented fixes of known sheet errors, and onset / apex / offset resolved to existing frames.

Every fix applied to a sample is recorded by name in its ``fixes`` column
(comma-separated, empty when none); the names are the ``FIX_*`` constants here.
:func:`resolve_key_frames` applies the key-frame fixes (apex and offset); the sheet
loaders add the label and duplicate-row fixes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from .cells import cell_text, parse_frame_index
from .frame_folders import FrameFolder
from .row_problems import RowProblem

#: Values of the ``apex_method`` column.
APEX_METHODS: tuple[str, ...] = ("annotated", "middle", "max_motion")

# Fix names recorded in the ``fixes`` column (comma-separated, empty when none).
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


__all__ = [
    "APEX_METHODS",
    "FIX_APEX_MIDDLE",
    "FIX_APEX_OUTSIDE_CLIP",
    "FIX_DUPLICATE_ROWS_DROPPED",
    "FIX_LABEL_NORMALISED",
    "FIX_OFFSET_BEFORE_ONSET",
    "FIX_OFFSET_LAST_FRAME",
    "KeyFrames",
    "resolve_key_frames",
]
