"""Class sets looked up by dataset key, collected from the dataset modules.

Each dataset defines its own class sets beside its layout (``CASME2_CLASS_SETS`` in
:mod:`fmanet_hf.data.casme2`, ``SAMM_CLASS_SETS`` in :mod:`fmanet_hf.data.samm`, and
so on), and its loader resolves the ``class_set`` argument from there. This module
only gathers them for callers that choose a dataset by name. It imports the dataset
modules; they never import it, so there is no cycle.
"""

from __future__ import annotations

from .casme2 import CASME2_CLASS_SETS
from .casme3 import CASME3_CLASS_SETS
from .labels import ClassSet, DatasetClassSets
from .mmew import MMEW_CLASS_SETS
from .samm import SAMM_CLASS_SETS
from .smic import SMIC_CLASS_SETS

#: Dataset key -> that dataset's class sets and aliases.
DATASET_CLASS_SETS: dict[str, DatasetClassSets] = {
    sets.dataset_key: sets
    for sets in (CASME2_CLASS_SETS, SAMM_CLASS_SETS, SMIC_CLASS_SETS, MMEW_CLASS_SETS, CASME3_CLASS_SETS)
}

#: Per dataset key: class-set name -> ClassSet. Order of ``names`` is the
#: ``label_id`` order and is part of the public contract (see docs/datasets.md).
CLASS_SETS: dict[str, dict[str, ClassSet]] = {
    key: dict(sets.sets) for key, sets in DATASET_CLASS_SETS.items()
}

#: Alternative names accepted for class sets, per dataset key.
CLASS_SET_ALIASES: dict[str, dict[str, str]] = {
    key: dict(sets.aliases) for key, sets in DATASET_CLASS_SETS.items()
}


def resolve_class_set(dataset_key: str, class_set: str) -> ClassSet:
    """Return the :class:`~fmanet_hf.data.labels.ClassSet` named ``class_set`` for one dataset.

    Args:
        dataset_key: ``"casme2"``, ``"samm"``, ``"smic"``, ``"mmew"`` or ``"casme3"``.
        class_set: a class-set name or alias (case-insensitive), e.g. ``"5class"``,
            ``"megc3"``, ``"3class"``, ``"all"``.

    Raises:
        DatasetError: the dataset has no such class set (the message lists the valid ones).
    """
    return DATASET_CLASS_SETS[dataset_key].resolve(class_set)


__all__ = ["CLASS_SETS", "CLASS_SET_ALIASES", "DATASET_CLASS_SETS", "resolve_class_set"]
