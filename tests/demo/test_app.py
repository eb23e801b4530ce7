"""Tests of the Gradio demo (`fmanet_hf.demo`): model discovery, the CLI hook, the API
through `gradio_client`, bad inputs, a bounded load test, and the page in a real
headless Chromium driven by Playwright.

One app is started for the whole module on a free loopback port. While it runs, every
socket connection of this process to a non-loopback address is refused and recorded,
so "no network at launch or use" is checked, not assumed.

The browser test uses Debian's /usr/bin/chromium (never a Playwright browser download);
it skips only when chromium (or the playwright package) is missing AND $CI is unset.
"""

from __future__ import annotations

import argparse
import importlib.util
import ipaddress
import json
import os
import shutil
import socket
import sys
from pathlib import Path

import numpy as np
import pytest

gradio = pytest.importorskip("gradio", reason="the demo needs gradio: pip install 'fmanet-hf[demo]'")
from gradio_client import Client, handle_file  # noqa: E402

from fmanet_hf.demo.models import DEFAULT_MODEL_KEY, ModelRegistry, discover_models  # noqa: E402
from fmanet_hf.demo.webm import write_webm  # noqa: E402

# gradio's queue statistics call a pandas API that pandas 3 deprecates; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:The copy keyword is deprecated:Warning")

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Set to a path to keep the browser test's screenshot (docs/images/demo_screenshot.png is made this way).
SCREENSHOT_ENV = "FMANET_DEMO_SCREENSHOT"


# ------------------------------------------------------------------------------ fixtures
def _is_loopback(address) -> bool:
    if not isinstance(address, tuple):  # AF_UNIX paths
        return True
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(scope="module")
def outside_connections():
    """Refuse and record every connection of this process to a non-loopback address."""
    attempts: list[str] = []
    original_connect, original_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def guarded(original):
        def connect(self, address):
            if not _is_loopback(address):
                attempts.append(repr(address))
                raise ConnectionRefusedError(f"test guard: no network allowed ({address!r})")
            return original(self, address)

        return connect

    socket.socket.connect = guarded(original_connect)
    socket.socket.connect_ex = guarded(original_connect_ex)
    yield attempts
    socket.socket.connect, socket.socket.connect_ex = original_connect, original_connect_ex


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    """An exports folder with one FMANet using DIS flow (fast: for the load test) and one non-FMANet folder."""
    from fmanet_hf import FMANetImageProcessor
    from fmanet_hf.pretrained import load_default_model

    root = tmp_path_factory.mktemp("exports")
    model, _, _ = load_default_model()
    dis_folder = root / "synthme" / "dis-untrained"
    model.save_pretrained(dis_folder)
    FMANetImageProcessor(flow_method="dis").save_pretrained(dis_folder)
    other = root / "not-fmanet"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "bert"}))
    return root, dis_folder


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def app(outside_connections, model_dirs, tmp_path_factory):
    """The demo, served on 127.0.0.1 at a free port for the module."""
    from fmanet_hf.demo import launch

    cache = tmp_path_factory.mktemp("demo-cache")
    demo = launch([model_dirs[0]], port=_free_port(), cache_dir=cache, prevent_thread_lock=True, quiet=True)
    yield demo, cache
    demo.close()


@pytest.fixture(scope="module")
def example_triplet(app):
    """(true label, onset, apex, offset paths) of the first SynthME example the app rendered."""
    from fmanet_hf.demo.app import prepare_examples

    example = prepare_examples(app[1])[-1]
    return example.label, example.onset, example.apex, example.offset


@pytest.fixture(scope="module")
def client(app):
    return Client(app[0].local_url, verbose=False)


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory, example_triplet):
    """Files that must be refused with a message: no face, another size, a 2-frame video."""
    import cv2

    folder = tmp_path_factory.mktemp("bad-inputs")
    gradient = np.tile(np.linspace(0, 255, 320, dtype=np.float32), (320, 1))
    no_face = folder / "no_face.png"
    cv2.imwrite(str(no_face), np.rint(gradient).astype(np.uint8))
    small = folder / "small.png"
    cv2.imwrite(str(small), cv2.resize(cv2.imread(example_triplet[2]), (200, 200)))
    short_video = write_webm([cv2.imread(path) for path in example_triplet[1:3]], folder / "two_frames.webm")
    return {"no_face": str(no_face), "small": str(small), "short_video": str(short_video)}


def python_api_probabilities(onset, apex, offset, model_folder=None) -> dict[str, float]:
    """What the Python API gives for the same frames (paths or arrays): class name -> probability."""
    import torch

    from fmanet_hf.pretrained import load_model

    model, processor, _ = load_model(model_folder)
    with torch.no_grad():
        probabilities = model(**processor(onset, apex, offset, return_tensors="pt")).logits.softmax(-1)[0]
    return {model.config.id2label[i]: float(p) for i, p in enumerate(probabilities)}


def assert_label_output_matches(label_output, expected: dict[str, float]) -> None:
    """The demo's label component shows the top class and every probability of ``expected``."""
    assert label_output["label"] == max(expected, key=expected.get)
    received = {item["label"]: item["confidence"] for item in label_output["confidences"]}
    assert received.keys() == expected.keys()
    for name, value in expected.items():
        assert received[name] == pytest.approx(value, abs=1e-6)


# ------------------------------------------------------------------------------ fast tests
def test_discover_models_lists_default_then_fmanet_folders_only(model_dirs):
    root, dis_folder = model_dirs
    choices = discover_models([root, root / "missing"])
    assert [choice.key for choice in choices] == [DEFAULT_MODEL_KEY, str(dis_folder)]
    assert choices[1].label == f"{root.name}/synthme/dis-untrained"
    assert "UNTRAINED" in choices[0].label or "trained on SynthME" in choices[0].label
    registry = ModelRegistry(choices)
    assert registry.get(str(dis_folder)).processor.flow_method == "dis"
    assert registry.get(str(dis_folder)) is registry.get(str(dis_folder))  # loaded once
    with pytest.raises(Exception, match="Unknown model"):
        registry.get("/no/such/model")


def test_register_demo_command_adds_demo_subcommand():
    from fmanet_hf.commands.demo import register as register_demo_command, run as cmd_demo

    parser = argparse.ArgumentParser(prog="fmanet-hf")
    register_demo_command(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["demo", "--port", "7999", "--model", "a", "--model", "b"])
    assert (args.host, args.port, args.model, args.handler) == ("127.0.0.1", 7999, ["a", "b"], cmd_demo)


# ------------------------------------------------------------------------------ API tests
@pytest.mark.slow
def test_client_prediction_equals_python_api(client, example_triplet):
    _, onset, apex, offset = example_triplet
    result = client.predict(
        DEFAULT_MODEL_KEY, handle_file(onset), handle_file(apex), handle_file(offset), api_name="/classify_frames"
    )
    label_output, *panels, summary = result
    assert_label_output_matches(label_output, python_api_probabilities(onset, apex, offset))
    assert len(panels) == 5 and all(Path(panel).is_file() for panel in panels)
    assert "Face: found" in summary


@pytest.mark.slow
def test_bad_inputs_are_refused_with_a_message_and_the_app_keeps_serving(client, example_triplet, bad_inputs):
    from gradio_client.exceptions import AppError

    _, onset, apex, offset = example_triplet
    cases = [
        ((bad_inputs["no_face"],) * 3, "No face was found"),
        ((onset, bad_inputs["small"], offset), "must have the same size"),
    ]
    for frames, message in cases:
        with pytest.raises(AppError, match=message):
            client.predict(DEFAULT_MODEL_KEY, *(handle_file(f) for f in frames), api_name="/classify_frames")
    with pytest.raises(AppError, match="apex image is missing"):
        client.predict(DEFAULT_MODEL_KEY, handle_file(onset), None, handle_file(offset), api_name="/classify_frames")
    with pytest.raises(AppError, match="at least 3"):
        client.predict(DEFAULT_MODEL_KEY, handle_file(bad_inputs["short_video"]), api_name="/read_video")
    # ...and the next good request is served normally: the same answer as the Python API.
    result = client.predict(
        DEFAULT_MODEL_KEY, handle_file(onset), handle_file(apex), handle_file(offset), api_name="/classify_frames"
    )
    assert_label_output_matches(result[0], python_api_probabilities(onset, apex, offset))


def test_example_videos_are_written_without_a_line_on_stderr(tmp_path, capfd):
    # What the Space's log showed at start-up: OpenCV's WebM codec-tag warning, once per example.
    import cv2

    from fmanet_hf.demo.app import _write_example_video

    frame_paths = []
    for index, grey in enumerate((40, 120, 200)):
        frame_paths.append(str(tmp_path / f"img{index}.jpg"))
        cv2.imwrite(frame_paths[-1], np.full((64, 64, 3), grey, np.uint8))
    capfd.readouterr()
    video = _write_example_video(tmp_path, frame_paths)
    assert video == str(tmp_path / "clip.webm") and Path(video).stat().st_size > 0
    written = capfd.readouterr()
    assert written.err == "" and written.out == ""
    assert _write_example_video(tmp_path, frame_paths) == video  # reused, not rewritten


@pytest.mark.slow
def test_video_is_read_with_an_estimated_apex_and_classified(client, app):
    from fmanet_hf.demo.app import prepare_examples

    example = prepare_examples(app[1])[0]
    assert example.video and example.video.endswith(".webm")
    *sliders, status = client.predict(DEFAULT_MODEL_KEY, handle_file(example.video), api_name="/read_video")
    onset, apex, offset = (slider["value"] for slider in sliders)  # slider updates: {"value", "maximum", ...}
    assert (onset, offset) == (0, 10) and 0 < apex < 10 and sliders[1]["maximum"] == 10, status
    assert "estimated" in status
    result = client.predict(
        DEFAULT_MODEL_KEY, handle_file(example.video), onset, apex, offset, api_name="/classify_video"
    )
    assert f"apex {apex}" in result[-1]
    # The same frames of the decoded video through the Python API give the same answer.
    from fmanet_hf.video import read_key_frames

    key_frames = read_key_frames(example.video, onset, offset, apex=apex)
    assert_label_output_matches(result[0], python_api_probabilities(key_frames.onset_frame, key_frames.apex_frame, key_frames.offset_frame))


@pytest.mark.slow
def test_load_8_clients_x_5_requests_has_no_errors(app, model_dirs, example_triplet):
    """Bounded load on loopback. Uses the DIS-flow export so the test stays short; the
    latency figures in docs/demo.md come from benchmarks/demo_load.py on the default model."""
    spec = importlib.util.spec_from_file_location("demo_load", REPO_ROOT / "benchmarks" / "demo_load.py")
    demo_load = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("demo_load", demo_load)  # dataclasses look their module up there
    spec.loader.exec_module(demo_load)
    result = demo_load.run_load(
        app[0].local_url, example_triplet[1:], clients=8, requests_per_client=5, model_key=str(model_dirs[1])
    )
    assert result.errors == []
    # Every one of the 40 answers is the label the Python API gives for that model and triplet.
    expected = python_api_probabilities(*example_triplet[1:], model_folder=model_dirs[1])
    assert len(result.latencies_s) == 40 and set(result.labels) == {max(expected, key=expected.get)}


# ------------------------------------------------------------------------------ browser
def _chromium_or_skip() -> str:
    path = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
    has_playwright = importlib.util.find_spec("playwright") is not None
    if path and has_playwright:
        return path
    missing = "Debian's chromium (/usr/bin/chromium)" if not path else "the playwright Python package"
    if os.environ.get("CI"):
        pytest.fail(f"{missing} is missing in CI; .ci/run must install it (apt-get install -y chromium / pip).")
    pytest.skip(f"{missing} is not installed and $CI is unset; install it to run the browser test.")


def _rendered(page, element_id: str) -> bool:
    return page.evaluate(
        "(id) => { const img = document.querySelector(`#${id} img`);"
        " return !!img && img.complete && img.naturalWidth > 0; }",
        element_id,
    )


@pytest.mark.slow
def test_browser_end_to_end(app, example_triplet, bad_inputs, tmp_path):
    chromium = _chromium_or_skip()
    from playwright.sync_api import sync_playwright

    true_label, onset, apex, offset = example_triplet
    outside_requests: list[str] = []
    output_ids = ["crops", "flow-onset-apex", "flow-apex-offset", "mmcof", "attention"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),  # a fresh user-data-dir
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            page = browser.new_page()
            page.on(
                "request",
                lambda request: outside_requests.append(request.url)
                if not request.url.startswith(("http://127.0.0.1", "data:", "blob:"))
                else None,
            )
            page.goto(app[0].local_url, wait_until="networkidle")

            def upload_and_classify(frames):
                for element_id, path in zip(("onset-input", "apex-input", "offset-input"), frames):
                    page.set_input_files(f"#{element_id} input[type=file]", path)
                    page.wait_for_selector(f"#{element_id} img", timeout=30_000)
                page.click("#classify-frames")

            # 1. a non-face triplet: the page shows the message, not a stack trace
            upload_and_classify([bad_inputs["no_face"]] * 3)
            message = page.get_by_text("No face was found", exact=False).first
            message.wait_for(timeout=60_000)
            assert "Traceback" not in page.content()
            for dismiss in page.locator("button.toast-close").all():  # close the message so the screenshot is clean
                dismiss.click()
            for close in page.locator("#onset-input button[aria-label='Clear'], #apex-input button[aria-label='Clear'], "
                                      "#offset-input button[aria-label='Clear']").all():
                close.click()

            # 2. the real triplet is then classified normally
            upload_and_classify([onset, apex, offset])
            page.wait_for_function(
                "() => { const img = document.querySelector('#attention img'); return img && img.naturalWidth > 0; }",
                timeout=60_000,
            )
            page.wait_for_timeout(500)  # let the toasts of step 1 fade and images settle
            label_text = page.inner_text("#probabilities")
            assert any(name in label_text for name in ("negative", "positive", "surprise")), label_text
            for element_id in output_ids:
                assert _rendered(page, element_id), f"{element_id} did not render"
            assert "Not a lie detector" in page.inner_text("#limits")
            screenshot = tmp_path / "demo_screenshot.png"
            page.screenshot(path=str(screenshot), full_page=True)
            if os.environ.get(SCREENSHOT_ENV):
                shutil.copy(screenshot, os.environ[SCREENSHOT_ENV])
        finally:
            browser.close()
    assert outside_requests == [], f"the page fetched from outside the machine: {outside_requests}"


def test_no_outside_connections_during_the_session(app, outside_connections):
    """Runs last in this module: nothing in this process tried to reach the network."""
    assert outside_connections == []


@pytest.mark.slow
def test_example_video_plays_in_chromium(app, tmp_path):
    # The WebM of demo/webm.py is Matroska with its header marked WebM: a browser must decode it.
    chromium = _chromium_or_skip()
    import functools
    import http.server
    import threading

    from playwright.sync_api import sync_playwright

    from fmanet_hf.demo.app import prepare_examples

    video = Path(prepare_examples(app[1])[0].video)
    shutil.copy(video, tmp_path / "clip.webm")
    (tmp_path / "index.html").write_text('<video id="clip" src="clip.webm" muted preload="auto"></video>', encoding="utf-8")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
            try:
                page = browser.new_page()
                page.goto(f"http://127.0.0.1:{server.server_address[1]}/index.html")
                # readyState 4: enough data to play through; no MediaError.
                page.wait_for_function("document.getElementById('clip').readyState === 4", timeout=30_000)
                state = page.evaluate(
                    "(() => { const v = document.getElementById('clip');"
                    " return {error: v.error && v.error.code, width: v.videoWidth, height: v.videoHeight, duration: v.duration}; })()"
                )
            finally:
                browser.close()
    finally:
        server.shutdown()
    frames = len(list(video.parent.glob("img*.jpg")))
    assert state["error"] is None and (state["width"], state["height"]) == (320, 320), state
    assert state["duration"] == pytest.approx(frames / 10.0, abs=0.15), state  # written at 10 fps
