"""Bad-input matrix: faces (none, several, at the border), on the real astronaut face."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest

from tests.helpers.assertions import assert_error
from fmanet_hf import FMANetImageProcessor
from fmanet_hf.errors import FaceNotFoundError
from fmanet_hf.face import detect_face

pytest.importorskip("dlib")


@pytest.fixture(scope="module")
def face_box(astronaut_gray):
    """(x0, y0, x1, y1) of the astronaut's face, as dlib finds it in the full photo."""
    return detect_face(astronaut_gray).box


@pytest.fixture(scope="module")
def face_window(astronaut_gray, face_box):
    x0, y0, x1, y1 = face_box
    return np.ascontiguousarray(astronaut_gray[max(0, y0 - 60) : y1 + 60, max(0, x0 - 60) : x1 + 60])


@pytest.fixture(scope="module")
def aligning_processor():
    return FMANetImageProcessor(flow_method="dis", face_detector_upsample=[0, 1])


@pytest.mark.parametrize("kind", ["flat", "noise"])
def test_no_face(aligning_processor, kind):
    rng = np.random.default_rng(1)
    frame = np.full((120, 120), 100, np.uint8) if kind == "flat" else rng.integers(0, 256, (120, 120), dtype=np.uint8)
    with pytest.raises(FaceNotFoundError) as excinfo:
        aligning_processor(frame, frame, frame)
    assert_error(excinfo, FaceNotFoundError, "No face", "onset frame", "align_faces=False")


@pytest.mark.parametrize("big_side", ["left", "right"])
def test_several_faces_the_largest_is_chosen_and_logged(face_window, caplog, big_side):
    big = cv2.resize(face_window, None, fx=1.5, fy=1.5, interpolation=cv2.INTER_CUBIC)
    small = face_window
    canvas = np.full((big.shape[0] + 20, big.shape[1] + small.shape[1] + 40), 120, np.uint8)
    canvas[10 : 10 + big.shape[0], 10 : 10 + big.shape[1]] = big
    canvas[30 : 30 + small.shape[0], big.shape[1] + 30 : big.shape[1] + 30 + small.shape[1]] = small
    if big_side == "right":
        canvas = np.ascontiguousarray(canvas[:, ::-1])
    with caplog.at_level(logging.INFO, logger="fmanet_hf.face"):
        detection = detect_face(canvas)
    assert detection.num_faces == 2
    centre_x = (detection.box[0] + detection.box[2]) / 2
    big_centre_x = 10 + big.shape[1] / 2 if big_side == "left" else canvas.shape[1] - 10 - big.shape[1] / 2
    assert abs(centre_x - big_centre_x) < 0.15 * big.shape[1]
    assert detection.box[2] - detection.box[0] > 100  # the 1.5x face, not the ~85 px one
    assert any("Found 2 faces; using the largest" in r.getMessage() for r in caplog.records)


def test_face_cut_by_the_frame_border(astronaut_gray, face_box, aligning_processor, caplog):
    frame = np.ascontiguousarray(astronaut_gray[:, face_box[0] + 30 :])  # left third of the face cut off
    with caplog.at_level(logging.WARNING, logger="fmanet_hf.face"):
        sample = aligning_processor.process_triplet(frame, frame, frame)
    assert any("reaches past" in r.getMessage() for r in caplog.records)
    assert sample.num_faces == 1
    assert np.isfinite(sample.pixel_values).all() and sample.pixel_values.shape == (6, 64, 64)
    # Identical frames: no motion anywhere, even where the crop repeats edge pixels.
    assert np.abs(sample.onset_apex_flow).max() < 1e-3
