"""Builders of tiny dataset trees in the owners' layouts, for the loader tests.

Plain functions (no pytest fixtures): each writes frames (16x16 grey images made
with numpy + PIL) and an annotation sheet with the real column names and the
known quirks into a folder the test gives, and returns the root. The expected
values the tests check are written out by hand in the tests, not derived here.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from PIL import Image

FRAME_SIZE = 16


def write_frames(
    folder: Path,
    indices: Iterable[int],
    name_format: str = "img{i}.jpg",
    grey_levels: Sequence[int] | None = None,
) -> list[Path]:
    """Write one small grey frame per index into ``folder``.

    Args:
        folder: created if missing.
        indices: frame numbers (used in the file names).
        name_format: file name with ``{i}`` for the index (format spec allowed: ``{i:05d}``).
        grey_levels: uniform grey value per frame (0..255); default a gentle ramp with
            a little texture. Use a lossless format (png/bmp) when exact values matter.

    Returns:
        the paths written, in index order.
    """
    folder.mkdir(parents=True, exist_ok=True)
    indices = list(indices)
    rng = np.random.default_rng(len(indices))
    texture = rng.integers(0, 8, size=(FRAME_SIZE, FRAME_SIZE))
    paths = []
    for position, index in enumerate(indices):
        if grey_levels is not None:
            pixels = np.full((FRAME_SIZE, FRAME_SIZE), grey_levels[position], dtype=np.uint8)
        else:
            pixels = np.clip(96 + 2 * position + texture, 0, 255).astype(np.uint8)
        path = folder / name_format.format(i=index)
        Image.fromarray(pixels, mode="L").save(path)
        paths.append(path)
    return paths


def write_xlsx(path: Path, header: Sequence[str], rows: Sequence[Sequence], intro_rows: Sequence[Sequence] = ()) -> Path:
    """Write an .xlsx sheet: optional intro rows, then the header, then the rows.

    Cells given as ``None`` stay empty. Row numbers in the spreadsheet are therefore:
    intro rows 1..k, header k+1, first data row k+2.
    """
    import openpyxl

    path.parent.mkdir(parents=True, exist_ok=True)
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in [*intro_rows, header, *rows]:
        sheet.append(list(row))
    workbook.save(path)
    return path


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence]) -> Path:
    """Write a .csv sheet (header on line 1)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for row in rows:
            writer.writerow(["" if cell is None else cell for cell in row])
    return path


# ---------------------------------------------------------------------------
# CASME II
# ---------------------------------------------------------------------------
CASME2_HEADER = (
    "Subject", "Filename", "Unnamed", "OnsetFrame", "ApexFrame", "OffsetFrame",
    "Unnamed2", "Action Units", "Estimated Emotion",
)

#: (subject, filename, onset, apex, offset, AUs, emotion, frame range in the folder)
CASME2_ROWS = (
    (1, "EP02_01f", 10, 14, 20, "4", "happiness", range(10, 21)),      # sheet row 2
    (1, "EP03_02", 5, "/", 15, "1+2", "surprise", range(5, 16)),        # row 3: apex "/" -> 10
    (2, "EP01_01", 1, 4, 0, "4+7", "disgust", range(1, 9)),             # row 4: offset 0 -> 8
    (2, "EP05_03", 3, 5, 9, None, " Repression ", range(3, 10)),        # row 5: label cleaned
    (1, "EP02_01f", 10, 14, 20, "4", "happiness", None),                # row 6: duplicate of row 2
    (3, "EP07_01", 2, 4, 6, None, "others", range(2, 7)),               # row 7
    (3, "EP08_02", 1, 3, 5, None, "fear", range(1, 6)),                 # row 8: rare
    (3, "EP09_01", 1, 2, 3, None, "sadness", range(1, 4)),              # row 9: rare
    (3, "EP10_01", 1, 2, 3, None, "xyz", range(1, 4)),                  # row 10: unknown
    (4, "EP11_01", 1, 3, 5, None, "DISGUST", range(1, 6)),              # row 11: label cleaned
    (4, "EP12_01", 1, 3, 5, None, "Happiness", range(1, 6)),            # row 12: usual spelling
)


def build_casme2(
    root: Path,
    *,
    frames_dir: str = "CASME2_RAW_selected",
    name_format: str = "img{i}.jpg",
    sheet_name: str = "CASME2-coding-20140508.xlsx",
    extra_rows: Sequence[tuple] = (),
    header: Sequence[str] = CASME2_HEADER,
    csv_sheet: bool = False,
) -> Path:
    """Write a CASME II tree: ``<root>/<frames_dir>/sub01/EP02_01f/img10.jpg`` + the sheet.

    ``extra_rows`` are appended after :data:`CASME2_ROWS` (same tuple shape; a frame
    range of ``None`` writes no folder).
    """
    frames_root = root / frames_dir if frames_dir != "." else root
    rows = []
    for subject, filename, onset, apex, offset, aus, emotion, frames in (*CASME2_ROWS, *extra_rows):
        if frames is not None:
            write_frames(frames_root / f"sub{subject:02d}" / filename, frames, name_format)
        rows.append((subject, filename, None, onset, apex, offset, None, aus, emotion))
    if csv_sheet:
        write_csv(root / sheet_name, header, rows)
    else:
        write_xlsx(root / sheet_name, header, rows)
    return root


# ---------------------------------------------------------------------------
# SynthME (CASME II layout, another sheet name, frames directly in the root)
# ---------------------------------------------------------------------------
SYNTHME_ROWS = (
    (1, "EP01_01", 1, 3, 6, "12", "happiness"),
    (1, "EP01_02", 1, 3, 6, "1+2", "surprise"),
    (1, "EP01_03", 1, 3, 6, "9", "disgust"),
    (2, "EP02_01", 1, 3, 6, "15", "sadness"),
    (2, "EP02_02", 1, 3, 6, "14", "repression"),
    (2, "EP02_03", 1, 3, 6, "4", "anger"),
    (3, "EP03_01", 1, 3, 6, "1+4", "fear"),
    (3, "EP03_02", 1, 3, 6, "12", "happiness"),
)


def build_synthme(root: Path) -> Path:
    """Write a SynthME-like tree: ``<root>/sub01/EP01_01/img1.jpg`` + ``CASME2-coding-synthme.xlsx``."""
    rows = []
    for subject, filename, onset, apex, offset, aus, emotion in SYNTHME_ROWS:
        write_frames(root / f"sub{subject:02d}" / filename, range(1, 7))
        rows.append((subject, filename, onset, apex, offset, aus, emotion))
    header = ("Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units", "Estimated Emotion")
    write_xlsx(root / "CASME2-coding-synthme.xlsx", header, rows)
    return root


# ---------------------------------------------------------------------------
# SAMM
# ---------------------------------------------------------------------------
SAMM_INTRO_ROWS = (
    ("SAMM: Spontaneous Micro-Facial Movement Dataset",),
    ("FACS codes, version 2",),
    (None,),
    ("Subject: participant number; Filename: clip folder",),
    ("Onset Frame, Apex Frame and Offset Frame are frame numbers",),
    (None,),
    ("Estimated Emotion is the emotion the coders estimated",),
    ("Objective Classes are from the FACS codes",),
    (None,),
    ("Please cite the SAMM paper",),
    (None,),
    ("Notes",),
    (None,),
)  # 13 intro rows: header on row 14, first data row 15

SAMM_HEADER = (
    "Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame", "Offset Frame",
    "Duration", "Type", "Action Units", "Notes", "Estimated Emotion", "Objective Classes",
)

#: (subject, filename, onset, apex, offset, AUs, emotion, frame range)
SAMM_ROWS = (
    (6, "006_1_2", 5562, 5566, 5570, "R12", "Happiness", range(5562, 5571)),   # row 15
    (6, "006_1_3", 5600, -1, 5610, "4", "Anger", range(5600, 5611)),           # row 16: apex -1 -> 5605
    (7, "007_3_1", 100, 103, 106, "14", "Contempt", range(100, 107)),          # row 17
    (7, "007_5_2", 200, 203, 206, "1+2", "Surprise", range(200, 207)),         # row 18
    (11, "011_2_1", 50, 53, 56, None, "Other", range(50, 57)),                 # row 19
    (11, "011_2_2", 60, 62, 64, None, "Disgust", range(60, 65)),               # row 20
    (11, "011_2_3", 70, 72, 74, None, "Fear", range(70, 75)),                  # row 21
)


def build_samm(root: Path, *, extra_rows: Sequence[tuple] = ()) -> Path:
    """Write a SAMM tree: ``<root>/SAMM/006/006_1_2/006_05562.jpg`` + the sheet with 13 intro rows."""
    rows = []
    for subject, filename, onset, apex, offset, aus, emotion, frames in (*SAMM_ROWS, *extra_rows):
        if frames is not None:
            write_frames(root / "SAMM" / f"{subject:03d}" / filename, frames, f"{subject:03d}_{{i:05d}}.jpg")
        rows.append((subject, filename, "2_1", onset, apex, offset, None, "Micro", aus, None, emotion, "XII"))
    write_xlsx(root / "SAMM_Micro_FACS_Codes_v2.xlsx", SAMM_HEADER, rows, intro_rows=SAMM_INTRO_ROWS)
    return root


# ---------------------------------------------------------------------------
# SMIC
# ---------------------------------------------------------------------------
#: Grey levels of s1_ne_01 (frames 101..107): the largest difference from the
#: onset (level 100) is frame 106 (level 170); the middle frame is 104.
SMIC_MOTION_LEVELS = (100, 110, 120, 130, 140, 170, 105)

#: (subject, emotion folder, clip, first frame, number of frames)
SMIC_CLIPS = (
    ("s1", "negative", "s1_ne_01", 101, 7),
    ("s1", "positive", "s1_po_01", 200, 10),
    ("s2", "surprise", "s2_sur_01", 300, 5),
    ("s2", "negative", "s2_ne_02", 400, 4),
    ("s10", "positive", "s10_po_02", 500, 6),
)


def build_smic(root: Path, *, variant: str = "HS") -> Path:
    """Write a SMIC tree under ``<root>/SMIC_all_raw/<variant>/`` (frames ``image000101.bmp``).

    Also writes a ``non_micro`` folder (ignored), a subject without ``micro`` folder
    (``s3``) and an emotion folder ``neutral`` (unknown label, 1 clip).
    """
    base = root / "SMIC_all_raw" / variant
    for subject, emotion, clip, first, count in SMIC_CLIPS:
        levels = SMIC_MOTION_LEVELS if clip == "s1_ne_01" else None
        write_frames(
            base / subject / "micro" / emotion / clip, range(first, first + count),
            "image{i:06d}.bmp", grey_levels=levels,
        )
    write_frames(base / "s1" / "non_micro" / "s1_nm_01", range(1, 4), "image{i:06d}.bmp")
    write_frames(base / "s3" / "other_recordings" / "x", range(1, 3), "image{i:06d}.bmp")
    write_frames(base / "s2" / "micro" / "neutral" / "s2_neu_01", range(1, 4), "image{i:06d}.bmp")
    return root


# ---------------------------------------------------------------------------
# MMEW
# ---------------------------------------------------------------------------
MMEW_HEADER = (
    "Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units",
    "Estimated Emotion", "remarks",
)

#: (subject, filename, onset, apex, offset, emotion, emotion folder, frame range)
MMEW_ROWS = (
    ("S01", "S01-01-001", 1, 5, 9, "happiness", "happiness", range(1, 10)),   # row 2
    ("S01", "S01-02-001", 1, 3, 6, "surprise", "surprise", range(1, 7)),      # row 3
    ("S02", "S02-07-001", 2, 4, 8, "others", "repression", range(1, 9)),      # row 4: folder alias
    ("S02", "S02-03-001", 1, "/", 7, "anger", "anger", range(1, 8)),          # row 5: apex -> 4
    ("S03", "S03-05-001", 1, 2, 4, "Fear", "fear", range(1, 5)),              # row 6
    ("S03", "S03-06-001", 1, 2, 4, "sadness", "sadness", range(1, 5)),        # row 7
    ("S03", "S03-04-001", 1, 2, 4, "disgust", "disgust", range(1, 5)),        # row 8
)


def build_mmew(root: Path) -> Path:
    """Write an MMEW tree: ``<root>/Micro_Expression/<emotion>/<clip>/1.jpg`` + ``MMEW_Micro_Exp.xlsx``."""
    rows = []
    for subject, filename, onset, apex, offset, emotion, folder, frames in MMEW_ROWS:
        write_frames(root / "Micro_Expression" / folder / filename, frames, "{i}.jpg")
        rows.append((subject, filename, onset, apex, offset, "AU12", emotion, None))
    write_xlsx(root / "MMEW_Micro_Exp.xlsx", MMEW_HEADER, rows)
    return root


# ---------------------------------------------------------------------------
# CAS(ME)^3 part A
# ---------------------------------------------------------------------------
CASME3_HEADER = ("Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Objective class", "emotion")

#: (subject, filename, onset, apex, offset, emotion): several samples per task video.
CASME3_ROWS = (
    ("spNO.1", "a", 3, 6, 9, "happy"),        # row 2
    ("spNO.1", "a", 20, 24, 28, "sad"),       # row 3: same folder, another sample
    ("spNO.1", "b", 0, 2, 5, "surprise"),     # row 4: frame 0 exists
    ("spNO.2", "a", 10, 12, 15, "others"),    # row 5
    ("spNO.2", "c", 5, 7, 9, "disgust"),      # row 6
    ("spNO.2", "c", 30, "/", 36, "anger"),    # row 7: apex -> 33
)


def build_casme3(root: Path, *, extra_rows: Sequence[tuple] = ()) -> Path:
    """Write a CAS(ME)^3 part A tree: ``<root>/part_A/data/part_A/spNO.1/a/color/0.jpg`` (frames 0..39)."""
    frames_root = root / "part_A" / "data" / "part_A"
    for subject, task in {(r[0], r[1]) for r in CASME3_ROWS}:
        write_frames(frames_root / subject / task / "color", range(0, 40), "{i}.jpg")
        (frames_root / subject / task / "depth").mkdir(parents=True, exist_ok=True)
    rows = [(s, f, on, ap, off, "AU1", "1", emo) for s, f, on, ap, off, emo in (*CASME3_ROWS, *extra_rows)]
    write_xlsx(root / "part_A" / "annotation" / "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx", CASME3_HEADER, rows)
    return root


def build_megc_root(root: Path) -> Path:
    """Write SMIC/, CASME2/ and SAMM/ side by side under ``root`` (the MEGC2019 parts)."""
    build_smic(root / "SMIC")
    build_casme2(root / "CASME2")
    build_samm(root / "SAMM")
    return root
