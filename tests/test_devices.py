"""``--device auto|cpu|cuda|mps`` (fmanet_hf.devices) without a GPU: torch's availability
checks are replaced by mocks, so the choice and the error messages are tested here; the
CUDA runs themselves are benchmarks/gpu_check.py's job."""

from __future__ import annotations

import pytest
import torch

from fmanet_hf.cli import main as cli_main
from fmanet_hf.devices import device_argument, resolve_device
from fmanet_hf.errors import DeviceUnavailableError, FMANetConfigError


def machine(monkeypatch, *, cuda: bool, mps: bool, cuda_built: bool = True, gpus: int = 1) -> None:
    """Make torch report the given devices."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus if cuda else 0)
    monkeypatch.setattr(torch.backends.cuda, "is_built", lambda: cuda_built)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)


@pytest.mark.parametrize(
    "cuda, mps, expected",
    [(True, True, "cuda"), (True, False, "cuda"), (False, True, "mps"), (False, False, "cpu")],
)
def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, expected):
    machine(monkeypatch, cuda=cuda, mps=mps)
    assert resolve_device("auto") == torch.device(expected)
    assert resolve_device(None) == torch.device(expected)


def test_named_devices_when_available(monkeypatch):
    machine(monkeypatch, cuda=True, mps=True, gpus=2)
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("CUDA") == torch.device("cuda")
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    assert resolve_device("mps") == torch.device("mps")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.parametrize(
    "name, cuda_built, gpus, words",
    [
        ("cuda", False, 0, "has no CUDA support"),
        ("cuda", True, 0, "no CUDA GPU is visible"),
        ("mps", True, 0, "MPS backend"),
    ],
)
def test_unavailable_device_says_why_in_one_line(monkeypatch, name, cuda_built, gpus, words):
    machine(monkeypatch, cuda=False, mps=False, cuda_built=cuda_built)
    with pytest.raises(DeviceUnavailableError) as error:
        resolve_device(name)
    message = str(error.value)
    assert words in message and "\n" not in message and f"'{name}'" in message


def test_gpu_index_past_the_last_gpu(monkeypatch):
    machine(monkeypatch, cuda=True, mps=False, gpus=2)
    with pytest.raises(DeviceUnavailableError, match=r"sees 2 CUDA GPU\(s\), numbered 0 to 1"):
        resolve_device("cuda:2")


def test_unknown_names_are_refused():
    with pytest.raises(FMANetConfigError, match="choose one of auto, cpu, cuda, mps"):
        resolve_device("tpu")
    for text in ("tpu", "cpu:0", "mps:1", "cuda:x", ""):
        with pytest.raises(Exception, match="expected one of auto, cpu, cuda, mps"):
            device_argument(text)
    assert device_argument(" CUDA:1 ") == "cuda:1"


@pytest.mark.parametrize(
    "argv",
    [
        ["predict", "--example", "--device", "cuda"],
        ["train", "--out", "unused", "--device", "cuda"],
        ["loso", "--out", "unused", "--device", "mps"],
    ],
)
def test_cli_refuses_an_unavailable_device_in_one_line_before_any_work(monkeypatch, capsys, tmp_path, argv):
    machine(monkeypatch, cuda=False, mps=False, cuda_built=False)
    import fmanet_hf.commands.inputs as inputs
    import fmanet_hf.pretrained as pretrained

    def no_work(*args, **kwargs):
        raise AssertionError("the device must be checked before data or models load")

    monkeypatch.setattr(inputs, "prepare_from_args", no_work)
    monkeypatch.setattr(pretrained, "load_model", no_work)
    assert cli_main([*argv, "--cache-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: device") and "is not available" in err and "\n" not in err


def test_train_cpu_alias_and_its_contradiction(monkeypatch):
    from fmanet_hf.cli import build_parser
    from fmanet_hf.commands.inputs import training_device

    machine(monkeypatch, cuda=True, mps=False)
    parse = build_parser().parse_args
    assert training_device(parse(["train", "--out", "x"])) == torch.device("cuda")
    assert training_device(parse(["train", "--out", "x", "--cpu"])) == torch.device("cpu")
    assert training_device(parse(["train", "--out", "x", "--device", "cpu"])) == torch.device("cpu")
    with pytest.raises(FMANetConfigError, match="--cpu asks for the CPU and --device asks for cuda"):
        training_device(parse(["train", "--out", "x", "--cpu", "--device", "cuda"]))


def test_predict_runs_the_pipeline_on_the_resolved_device(monkeypatch, tmp_path, capsys):
    """The device --device names reaches the pipeline (no hard-coded CPU)."""
    import fmanet_hf.devices as devices
    import fmanet_hf.pipeline as pipeline_module

    asked = []
    monkeypatch.setattr(devices, "resolve_device", lambda name: asked.append(name) or torch.device("cpu"))
    created = {}

    class Recording(pipeline_module.MicroExpressionRecognitionPipeline):
        def __init__(self, *args, **kwargs):
            created.update(kwargs)
            raise KeyboardInterrupt  # stop before any frame is read

    monkeypatch.setattr(pipeline_module, "MicroExpressionRecognitionPipeline", Recording)
    assert cli_main(["predict", "a.png", "b.png", "c.png", "--device", "cuda:1"]) == 130
    assert asked == ["cuda:1"] and created["device"] == torch.device("cpu")


def test_demo_models_move_to_the_device_and_results_come_back_as_cpu_numbers(monkeypatch):
    """A model in another dtype on the registry's device: inputs follow the model, outputs
    come back as plain CPU floats (the same path a CUDA model takes)."""
    pytest.importorskip("gradio")
    from fmanet_hf.demo.app import classify_frames
    from fmanet_hf.demo.models import DEFAULT_MODEL_KEY, ModelChoice, ModelRegistry

    registry = ModelRegistry([ModelChoice(DEFAULT_MODEL_KEY, "default", None)], device="cpu")
    loaded = registry.get(DEFAULT_MODEL_KEY)
    assert loaded.model.device == torch.device("cpu")
    loaded.model.to(torch.float64)
    frames = _example_frames()
    result = classify_frames(loaded, frames)
    assert abs(sum(result.probabilities.values()) - 1.0) < 1e-6
    assert all(type(v) is float for v in result.probabilities.values())


def _example_frames():
    """scikit-image's astronaut (a real face) and a copy moved by 1 px: a triplet with motion."""
    import numpy as np
    from skimage import data as skimage_data

    face = skimage_data.astronaut()[:, :, :3]
    return (face, np.roll(face, 1, axis=1), face)


def test_training_refuses_a_gpu_index_accelerate_would_not_use(monkeypatch):
    """Accelerate puts a single process on GPU 0: --device cuda:1 must not silently train there."""
    import types

    import accelerate

    from fmanet_hf.cli import build_parser
    from fmanet_hf.commands.inputs import training_accelerator

    machine(monkeypatch, cuda=True, mps=False, gpus=2)
    monkeypatch.setattr(accelerate, "Accelerator", lambda cpu: types.SimpleNamespace(device=torch.device("cuda", 0)))
    parse = build_parser().parse_args
    assert training_accelerator(parse(["loso", "--out", "x", "--device", "cuda:0"])).device == torch.device("cuda", 0)
    with pytest.raises(FMANetConfigError, match="CUDA_VISIBLE_DEVICES=1"):
        training_accelerator(parse(["loso", "--out", "x", "--device", "cuda:1"]))
