"""The sheet-driven loader shared by CASME II, SAMM, MMEW and CAS(ME)^3.

Every benchmark loader in :mod:`fmanet_hf.data` follows the same steps, and each
dataset module only states its own layout (a :class:`SheetLoadSpec`) and its class
sets:

1. **Find and read the annotation sheet** (:mod:`~fmanet_hf.data.sheets`:
   :func:`~fmanet_hf.data.sheets.find_sheet`,
   :func:`~fmanet_hf.data.sheets.read_annotation_sheet`).
2. **Find the clip's frame folder** under the frames directory
   (:mod:`~fmanet_hf.data.paths`: :func:`~fmanet_hf.data.paths.locate_clip_dir`)
   from folder-name patterns such as ``"{subject}/{filename}"``, refusing any path
   that escapes the dataset root.
3. **Index the frames by number** (:mod:`~fmanet_hf.data.frame_folders`).
4. **Apply documented fixes** for known sheet errors and resolve onset / apex /
   offset to existing files (:mod:`~fmanet_hf.data.keyframe_fixes`); every fix is
   recorded per sample in the ``fixes`` column.
5. **Map labels** (:mod:`~fmanet_hf.data.labels`): native emotion names are
   normalised (case, whitespace, common synonyms) and mapped to the chosen class set;
   labels outside it are dropped and counted in the log.
6. **Build the** ``datasets.Dataset`` (:mod:`~fmanet_hf.data.records`) with a fixed
   schema shared by every loader.

Bad rows are raised or skipped by :mod:`~fmanet_hf.data.row_problems`. The heavy
libraries (pandas, datasets, PIL) are imported inside the functions that need them,
so ``import fmanet_hf.data`` stays cheap and never pulls torch.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

from .cells import cell_text
from .frame_folders import FrameFolderCache
from .keyframe_fixes import FIX_DUPLICATE_ROWS_DROPPED, FIX_LABEL_NORMALISED, resolve_key_frames
from .labels import ClassSet, DatasetClassSets, LabelTally, normalise_label
from .paths import PathEscape, dataset_root, locate_clip_dir, resolve_frames_dir, subject_folder_candidates
from .records import SampleRecord, check_dataset_name, records_to_dataset
from .row_problems import InvalidRowPolicy, RowContext, RowProblem
from .sheets import column_candidates, deduplicate_rows, read_annotation_sheet, resolve_sheet_argument

if TYPE_CHECKING:  # pragma: no cover - typing only
    import datasets

logger = logging.getLogger(__name__)


@dataclass
class SheetLoadSpec:
    """What a sheet-based loader needs to know about its dataset.

    Attributes:
        class_sets: the dataset's class sets (defined beside its layout, e.g.
            ``CASME2_CLASS_SETS`` in :mod:`fmanet_hf.data.casme2`).
        clip_dir_patterns: folder patterns relative to the frames folder, with
            placeholders ``{subject}``, ``{filename}``, ``{emotion}``.
        subject_templates: see :func:`~fmanet_hf.data.paths.subject_folder_candidates`.
        emotion_folder_aliases: canonical emotion -> extra folder names to try for
            ``{emotion}`` (MMEW stores "others" under "repression" in some copies).
        offset_fallback_last_frame: see :func:`~fmanet_hf.data.keyframe_fixes.resolve_key_frames`.
        sample_id_with_onset: add ``/<onset>`` to sample ids (several samples per folder).
        sheet_patterns: sheet file-name patterns searched under the root when no sheet is given.
        frames_dirs: frame folders tried in order when none is given ("." is the root).
        subject_pattern: regex a subject folder name matches (used to recognise the frames
            folder); None accepts any folder.
    """

    class_sets: DatasetClassSets
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
    chosen_set = spec.class_sets.resolve(class_set)
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
            except PathEscape as escape:
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


__all__ = ["REQUIRED_SHEET_ROLES", "SHEET_ROLES", "SheetLoadSpec", "load_sheet_dataset", "load_sheet_records"]
