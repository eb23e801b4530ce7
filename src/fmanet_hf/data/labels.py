"""Emotion labels and class sets: normalising native labels, mapping them to classes.

Native emotion names are normalised (case, whitespace, common synonyms;
:func:`normalise_label`) and mapped to the chosen class set (:class:`ClassSet`); labels
outside it are dropped and counted in the log (:class:`LabelTally`).

The class sets themselves are defined beside each dataset's layout
(``CASME2_CLASS_SETS`` in :mod:`fmanet_hf.data.casme2`, ...) from the building blocks
here: :func:`identity_class_set` (native emotions kept as they are), the MEGC 3-class
set :data:`MEGC3_CLASS_SET` and the 4-class set :data:`FOUR_CLASS_SET`, gathered per
dataset in a :class:`DatasetClassSets`. :mod:`fmanet_hf.data.class_sets` collects them
for lookup by dataset key. Canonical names are the same for the same set in every
dataset: ``megc3``, ``4class``, ``5class``, ``all``.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from ..errors import DatasetError
from .cells import cell_text

logger = logging.getLogger(__name__)

#: Canonical native emotion names known to the loaders.
KNOWN_EMOTIONS: tuple[str, ...] = (
    "happiness",
    "surprise",
    "disgust",
    "repression",
    "fear",
    "sadness",
    "anger",
    "contempt",
    "others",
    "positive",
    "negative",
)

#: Other spellings found in sheets and folder names -> canonical name.
EMOTION_SYNONYMS: dict[str, str] = {
    "happy": "happiness",
    "happiness": "happiness",
    "surprise": "surprise",
    "surprised": "surprise",
    "disgust": "disgust",
    "disgusted": "disgust",
    "repression": "repression",
    "repressed": "repression",
    "fear": "fear",
    "fearful": "fear",
    "sadness": "sadness",
    "sad": "sadness",
    "anger": "anger",
    "angry": "anger",
    "contempt": "contempt",
    "others": "others",
    "other": "others",
    "positive": "positive",
    "negative": "negative",
}

#: The MEGC2019 3-class names, in ``label_id`` order.
MEGC3_CLASSES: tuple[str, ...] = ("negative", "positive", "surprise")

#: Native emotions that MEGC2019 groups as "negative".
MEGC_NEGATIVE_EMOTIONS: frozenset[str] = frozenset(
    {"anger", "contempt", "disgust", "fear", "sadness", "repression"}
)


def megc3_label(native: str) -> str | None:
    """Map a canonical native emotion to its MEGC2019 3-class name.

    Args:
        native: a canonical emotion name (see :data:`KNOWN_EMOTIONS`).

    Returns:
        ``"negative"`` for anger, contempt, disgust, fear, sadness, repression (and
        SMIC's own ``"negative"``), ``"positive"`` for happiness (and SMIC's
        ``"positive"``), ``"surprise"`` for surprise, ``None`` for others and any
        other label (the sample is then dropped from the class set).
    """
    if native in MEGC_NEGATIVE_EMOTIONS or native == "negative":
        return "negative"
    if native in ("happiness", "positive"):
        return "positive"
    if native == "surprise":
        return "surprise"
    return None


def four_class_label(native: str) -> str | None:
    """Map a canonical native emotion to the 4-class set (negative, positive, surprise, others).

    The 3 MEGC classes plus ``"others"`` for samples labelled others; used for MMEW
    and CAS(ME)^3, where papers often keep the others class.
    """
    if native == "others":
        return "others"
    return megc3_label(native)


@dataclass(frozen=True)
class ClassSet:
    """A class set: the ordered class names and the native-label -> class mapping.

    Attributes:
        name: the canonical class-set name (e.g. ``"5class"``, ``"megc3"``).
        names: class names in ``label_id`` order.
        mapper: canonical native emotion -> class name, or ``None`` to drop.
    """

    name: str
    names: tuple[str, ...]
    mapper: Callable[[str], str | None]

    def map(self, native: str) -> str | None:
        """Return the class name of a canonical native emotion, or ``None`` to drop it."""
        mapped = self.mapper(native)
        return mapped if mapped in self.names else None


def identity_class_set(name: str, names: Sequence[str]) -> ClassSet:
    """A class set whose classes are native emotions kept as they are."""
    kept = tuple(names)
    return ClassSet(name, kept, lambda native: native if native in kept else None)


#: The MEGC2019 3-class set (negative, positive, surprise), the same in every dataset.
MEGC3_CLASS_SET = ClassSet("megc3", MEGC3_CLASSES, megc3_label)

#: The 4-class set: the MEGC classes plus ``others`` (MMEW, CAS(ME)^3).
FOUR_CLASS_SET = ClassSet("4class", ("negative", "positive", "surprise", "others"), four_class_label)


@dataclass(frozen=True, eq=False)
class DatasetClassSets:
    """The class sets of one dataset and the other names they are accepted under.

    Attributes:
        dataset_key: the dataset (``"casme2"``, ``"smic"``...), for messages.
        sets: canonical class-set name -> :class:`ClassSet`. The order of each set's
            ``names`` is the ``label_id`` order and is part of the public contract
            (see docs/datasets.md).
        aliases: other accepted name (lower case) -> canonical name.
    """

    dataset_key: str
    sets: Mapping[str, ClassSet]
    aliases: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(
        cls, dataset_key: str, sets: Sequence[ClassSet], aliases: Mapping[str, str] | None = None
    ) -> "DatasetClassSets":
        """Build from class sets (keyed by their names) and aliases."""
        return cls(dataset_key, {s.name: s for s in sets}, dict(aliases or {}))

    def resolve(self, class_set: str) -> ClassSet:
        """Return the :class:`ClassSet` named ``class_set`` (a name or alias, case-insensitive).

        Raises:
            DatasetError: the dataset has no such class set (the message lists the valid ones).
        """
        wanted = str(class_set).strip().lower()
        wanted = self.aliases.get(wanted, wanted)
        if wanted not in self.sets:
            valid = sorted(set(self.sets) | set(self.aliases))
            raise DatasetError(
                f"unknown class_set {class_set!r} for {self.dataset_key}; choose one of {valid}"
            )
        return self.sets[wanted]


@dataclass(frozen=True)
class NormalisedLabel:
    """The result of :func:`normalise_label`.

    Attributes:
        raw: the cell text as read (stripped of nothing).
        canonical: the canonical emotion name, or the cleaned lower-case text when unknown.
        known: whether ``canonical`` is one of :data:`KNOWN_EMOTIONS`.
        changed: whether cleaning went beyond the sheet's usual spelling (whole word
            lower-case or Capitalised): stray or doubled whitespace, odd case. Such
            samples get the ``label_normalised`` fix.
    """

    raw: str
    canonical: str
    known: bool
    changed: bool


def normalise_label(raw: Any) -> NormalisedLabel:
    """Clean an emotion cell and map its spelling to a canonical emotion name.

    ``" Happiness "`` -> ``happiness`` (changed), ``"Happiness"`` -> ``happiness``
    (not changed: Capitalised words are the SAMM convention), ``"happy"`` ->
    ``happiness``, ``"Other"`` -> ``others``, ``"xyz"`` -> unknown.

    Args:
        raw: the cell value (str, number, None or NaN).
    """
    raw_text = cell_text(raw, strip=False)
    cleaned = " ".join(raw_text.split()).lower()
    canonical = EMOTION_SYNONYMS.get(cleaned, EMOTION_SYNONYMS.get(cleaned.replace(" ", ""), cleaned))
    known = canonical in KNOWN_EMOTIONS
    usual_spellings = {cleaned, cleaned.capitalize()}
    changed = bool(cleaned) and raw_text not in usual_spellings
    return NormalisedLabel(raw=raw_text, canonical=canonical, known=known, changed=changed)


@dataclass
class LabelTally:
    """Counts of samples dropped for their label, logged once per loader call."""

    outside_class_set: Counter = field(default_factory=Counter)
    unknown: Counter = field(default_factory=Counter)

    def log(self, dataset_name: str, class_set: ClassSet) -> None:
        """Log the dropped counts (INFO for known labels outside the set, WARNING for unknown ones)."""
        if self.outside_class_set:
            total = sum(self.outside_class_set.values())
            detail = ", ".join(f"{name} {n}" for name, n in sorted(self.outside_class_set.items()))
            logger.info(
                "%s: dropped %d samples whose label is not in class set %r %s: %s",
                dataset_name, total, class_set.name, list(class_set.names), detail,
            )
        if self.unknown:
            total = sum(self.unknown.values())
            detail = ", ".join(
                f"{name or '(empty)'!s} {n}" for name, n in sorted(self.unknown.items())
            )
            logger.warning(
                "%s: dropped %d samples with an unknown emotion label: %s "
                "(known labels: %s)",
                dataset_name, total, detail, ", ".join(KNOWN_EMOTIONS),
            )


__all__ = [
    "ClassSet",
    "DatasetClassSets",
    "EMOTION_SYNONYMS",
    "FOUR_CLASS_SET",
    "KNOWN_EMOTIONS",
    "LabelTally",
    "MEGC3_CLASSES",
    "MEGC3_CLASS_SET",
    "MEGC_NEGATIVE_EMOTIONS",
    "NormalisedLabel",
    "four_class_label",
    "identity_class_set",
    "megc3_label",
    "normalise_label",
]
