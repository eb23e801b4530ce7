"""Dataset loaders and LOSO splits for micro-expression benchmarks.

Every loader reads a user's local, licensed copy in the layout its owners
distribute and returns a ``datasets.Dataset`` with one row per sample and the
columns of :data:`SAMPLE_COLUMNS` (absolute paths of existing onset / apex /
offset frames, their indices, labels and the sheet fixes applied). See
``docs/datasets.md`` for the layouts, fixes and class sets.

Importing this package is cheap: pandas, datasets and PIL are imported by the
functions that use them, and torch is never imported.
"""

from .casme2 import load_casme2
from .casme3 import load_casme3
from .cells import normalise_column_name
from .class_sets import CLASS_SETS, resolve_class_set
from .frame_folders import FRAME_EXTENSIONS, FrameFolder, frame_number
from .keyframe_fixes import APEX_METHODS
from .labels import KNOWN_EMOTIONS, MEGC3_CLASSES, MEGC_NEGATIVE_EMOTIONS, megc3_label, normalise_label
from .megc import load_megc2019
from .mmew import load_mmew
from .records import SAMPLE_COLUMNS
from .samm import load_samm
from .sheets import find_sheet, read_annotation_sheet
from .smic import load_smic, max_motion_apex
from .subject_folds import (
    LOSOFold,
    check_loso_folds,
    dataset_of,
    loso_folds,
    per_dataset_subsets,
    subject_of,
    subjects_of,
)

__all__ = [
    "APEX_METHODS",
    "CLASS_SETS",
    "FRAME_EXTENSIONS",
    "KNOWN_EMOTIONS",
    "MEGC3_CLASSES",
    "MEGC_NEGATIVE_EMOTIONS",
    "SAMPLE_COLUMNS",
    "FrameFolder",
    "LOSOFold",
    "check_loso_folds",
    "dataset_of",
    "find_sheet",
    "frame_number",
    "load_casme2",
    "load_casme3",
    "load_megc2019",
    "load_mmew",
    "load_samm",
    "load_smic",
    "loso_folds",
    "max_motion_apex",
    "megc3_label",
    "normalise_column_name",
    "normalise_label",
    "per_dataset_subsets",
    "read_annotation_sheet",
    "resolve_class_set",
    "subject_of",
    "subjects_of",
]
