"""MEGC2019 composite loader: SMIC-HS + CASME II + SAMM in the MEGC 3-class set.

Each part is loaded by its own loader with ``class_set="megc3"`` (SMIC with its
native classes, which are the MEGC classes), then:

- ``subject`` becomes ``<dataset>/<subject>`` (``smic/s1``, ``casme2/sub01``,
  ``samm/006``) so that subjects of different datasets never merge; on the real
  data the composite has 68 subjects (SMIC-HS 16, CASME II 24, SAMM 28);
- ``dataset`` keeps the part's name, so per-dataset scores are subsets of the
  composite run (:func:`fmanet_hf.data.subject_folds.per_dataset_subsets`);
- ``sample_id`` is unchanged (it already starts with the part's name).

Rows are ordered SMIC, then CASME II, then SAMM, each in its loader's order.
Class names (``label_id`` order): negative, positive, surprise. Mapping: negative =
anger, contempt, disgust, fear, sadness, repression; positive = happiness;
surprise = surprise; others and unmapped labels are dropped (counted in the log).

The MEGC2019 challenge published its own sample list (442 samples: negative 250,
positive 109, surprise 83). The mapping above applied to the owners' sheets can
differ from that list by a few samples per dataset (e.g. CASME II fear/sadness
samples); ``include_sample_ids`` restricts the composite to a given list.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from ..errors import DatasetError
from .casme2 import load_casme2
from .paths import find_child_dir
from .row_problems import check_on_invalid
from .samm import load_samm
from .smic import load_smic

if TYPE_CHECKING:  # pragma: no cover
    import datasets

logger = logging.getLogger(__name__)

#: Sub-folder names tried for each part under a common ``root`` (case-insensitive).
MEGC_PART_FOLDERS: dict[str, tuple[str, ...]] = {
    "smic": ("SMIC", "SMIC-HS", "smic"),
    "casme2": ("CASME2", "CASME_II", "CASME II", "CASMEII", "casme2"),
    "samm": ("SAMM", "samm"),
}


def _part_root(root: Path | None, explicit: str | os.PathLike | None, part: str) -> Path | None:
    """The folder of one composite part: the explicit one, else a sub-folder of ``root``."""
    if explicit is not None:
        return Path(explicit)
    if root is None:
        return None
    for name in MEGC_PART_FOLDERS[part]:
        found = find_child_dir(root, name)
        if found is not None:
            return found
    return None


def load_megc2019(
    root: str | os.PathLike | None = None,
    *,
    smic_root: str | os.PathLike | None = None,
    casme2_root: str | os.PathLike | None = None,
    samm_root: str | os.PathLike | None = None,
    smic_apex_method: str = "middle",
    on_invalid: str = "raise",
    include_sample_ids: Iterable[str] | None = None,
    smic_kwargs: Mapping[str, Any] | None = None,
    casme2_kwargs: Mapping[str, Any] | None = None,
    samm_kwargs: Mapping[str, Any] | None = None,
) -> "datasets.Dataset":
    """Load the MEGC2019 composite (SMIC-HS + CASME II + SAMM, 3 classes).

    Args:
        root: a folder holding the three datasets as sub-folders (``SMIC``,
            ``CASME2``, ``SAMM``; see :data:`MEGC_PART_FOLDERS`). Optional when the
            part roots are given.
        smic_root, casme2_root, samm_root: each dataset's own root; they override
            ``root``. A part that cannot be found is left out with a WARNING (at
            least one part is required).
        smic_apex_method: ``"middle"`` or ``"max_motion"`` for SMIC's apex.
        on_invalid: ``"raise"`` or ``"skip"``, passed to every part.
        include_sample_ids: keep only these sample ids (e.g. the official MEGC2019
            list); ids not found are reported in a WARNING.
        smic_kwargs, casme2_kwargs, samm_kwargs: extra arguments of the part loaders
            (``sheet``, ``frames_dir``, ``columns``...). ``class_set`` and
            ``dataset_name`` are fixed by the composite.

    Returns:
        the composite with the columns of
        :data:`fmanet_hf.data.records.SAMPLE_COLUMNS`; ``subject`` is prefixed by
        the dataset name.

    Raises:
        DatasetError: no part found, forbidden keyword arguments, or any part loader's error.
    """
    import datasets

    check_on_invalid(on_invalid)
    base = Path(root).expanduser() if root is not None else None
    if base is not None and not base.is_dir():
        raise DatasetError(f"megc2019: root {base} is not a folder")
    parts = []
    plan = (
        ("smic", smic_root, smic_kwargs, load_smic, {"variant": "HS", "apex_method": smic_apex_method}),
        ("casme2", casme2_root, casme2_kwargs, load_casme2, {}),
        ("samm", samm_root, samm_kwargs, load_samm, {}),
    )
    for part, explicit, extra, loader, fixed in plan:
        extra = dict(extra or {})
        forbidden = sorted(set(extra) & {"class_set", "dataset_name", "on_invalid", "variant"})
        if forbidden:
            raise DatasetError(f"megc2019: {part}_kwargs may not set {forbidden}; the composite fixes them")
        part_root = _part_root(base, explicit, part)
        if part_root is None:
            logger.warning("megc2019: no %s folder found; the composite is built without it", part)
            continue
        part_dataset = loader(
            part_root, class_set="megc3", dataset_name=part, on_invalid=on_invalid, **fixed, **extra
        )
        # Rebuild rather than .map(): a few hundred rows, no cache files, no progress bar.
        columns = part_dataset.to_dict()
        columns["subject"] = [f"{part}/{subject}" for subject in columns["subject"]]
        part_dataset = datasets.Dataset.from_dict(columns, features=part_dataset.features)
        logger.info(
            "megc2019: %s gives %d samples from %d subjects",
            part, part_dataset.num_rows, len(set(part_dataset["subject"])),
        )
        parts.append(part_dataset)
    if not parts:
        raise DatasetError(
            "megc2019: none of SMIC, CASME II, SAMM was found; pass root= (with SMIC/, CASME2/, "
            "SAMM/ inside) or smic_root= / casme2_root= / samm_root="
        )
    composite = datasets.concatenate_datasets(parts)
    if include_sample_ids is not None:
        wanted = set(include_sample_ids)
        present = set(composite["sample_id"])
        missing = sorted(wanted - present)
        if missing:
            logger.warning(
                "megc2019: %d of the requested sample ids were not loaded (first: %s)",
                len(missing), ", ".join(missing[:5]),
            )
        keep = [i for i, sample_id in enumerate(composite["sample_id"]) if sample_id in wanted]
        composite = composite.select(keep)
    return composite


__all__ = ["load_megc2019", "MEGC_PART_FOLDERS"]
