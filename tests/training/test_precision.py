"""bf16 training (`fmanet_hf.training.precision`): autocast reaches the model's convolutions,
weights and optimiser state stay float32, results stay close to fp32, the default path is the
fp32 one, the schedule records the precision, and a device that cannot do bf16 is refused."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch
from accelerate import Accelerator

from fmanet_hf import FMANetConfig, FMANetForImageClassification
from fmanet_hf.errors import FMANetConfigError
from fmanet_hf.training import precision as precision_module
from fmanet_hf.training.collate import PreparedTensors
from fmanet_hf.training.engine import predict_probabilities, train_model
from fmanet_hf.training.schedule import TrainingSchedule
from tests.helpers.tiny import make_prepared_dataset, tiny_config_kwargs

#: bfloat16 keeps 8 significant bits: one rounding is off by up to 2^-9 (0.2 %) of the value.
#: A tiny run of 9 optimiser steps changed the epoch losses by 0.05 % and the probabilities by
#: 0.004 (measured once); the tolerances leave 4-20x room for other CPUs' kernels without
#: letting a broken path through (an untrained or diverged model misses them by far).
LOSS_RELATIVE_TOLERANCE = 0.01
PROBABILITY_TOLERANCE = 0.02

needs_bf16_cpu = pytest.mark.skipif(
    precision_module.precision_obstacle("bf16", "cpu") is not None, reason="this CPU has no bfloat16 kernels"
)


@pytest.fixture(scope="module")
def data() -> PreparedTensors:
    return PreparedTensors.from_prepared(make_prepared_dataset(subjects=3, per_subject=4, image_size=16))


@contextlib.contextmanager
def convolution_output_dtypes():
    """Records the output dtype of every Conv2d call in training mode, anywhere."""
    seen: list[torch.dtype] = []

    def hook(module, inputs, output):
        if isinstance(module, torch.nn.Conv2d) and module.training:
            seen.append(output.dtype)

    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    try:
        yield seen
    finally:
        handle.remove()


def train(data, precision=None, epochs=3):
    extra = {} if precision is None else {"precision": precision}
    schedule = TrainingSchedule(epochs=epochs, batch_size=4, learning_rate=1e-2, **extra)
    torch.manual_seed(0)
    model = FMANetForImageClassification(FMANetConfig(**tiny_config_kwargs(image_size=16)))
    initial = [p.detach().clone() for p in model.parameters()]
    trained, log = train_model(
        model, data, np.arange(len(data)), schedule, seed=0, accelerator=Accelerator(cpu=True), data_parallel=False
    )
    return trained, log, initial


@needs_bf16_cpu
def test_bf16_runs_the_convolutions_in_bfloat16_and_keeps_weights_and_optimiser_state_float32(data):
    with convolution_output_dtypes() as seen:
        trained, log, _ = train(data, "bf16", epochs=1)
    # 12 samples in batches of 4: 3 steps, each through the 2 encoders' and 2 trunk convolutions (at least).
    assert len(seen) >= 3 * 4 and set(seen) == {torch.bfloat16}
    assert all(p.dtype == torch.float32 for p in trained.parameters())
    assert all(p.grad is None or p.grad.dtype == torch.float32 for p in trained.parameters())
    # Predictions are made with the float32 weights, outside autocast.
    with convolution_output_dtypes() as seen:
        trained.train()  # the hook records training-mode calls only; predict_probabilities switches to eval
        probabilities = predict_probabilities(trained, data.pixel_values)
    assert probabilities.dtype == np.float64 and np.isfinite(probabilities).all()


def test_fp32_and_the_default_never_autocast(data):
    for precision in (None, "fp32"):
        with convolution_output_dtypes() as seen:
            train(data, precision, epochs=1)
        assert seen and set(seen) == {torch.float32}


def test_the_default_schedule_trains_bitwise_as_explicit_fp32(data):
    default, default_log, _ = train(data, None)
    explicit, explicit_log, _ = train(data, "fp32")
    assert default_log.epoch_losses == explicit_log.epoch_losses
    assert all(torch.equal(a, b) for a, b in zip(default.parameters(), explicit.parameters()))


@needs_bf16_cpu
def test_bf16_training_is_finite_and_close_to_fp32(data):
    fp32, fp32_log, initial = train(data, "fp32")
    bf16, bf16_log, _ = train(data, "bf16")
    assert np.isfinite(bf16_log.epoch_losses).all()
    assert bf16_log.optimizer_sample_indices == fp32_log.optimizer_sample_indices  # same batches, same order
    np.testing.assert_allclose(bf16_log.epoch_losses, fp32_log.epoch_losses, rtol=LOSS_RELATIVE_TOLERANCE)
    p32 = predict_probabilities(fp32, data.pixel_values)
    p16 = predict_probabilities(bf16, data.pixel_values)
    assert np.abs(p16 - p32).max() < PROBABILITY_TOLERANCE
    # The weights moved (the test is not comparing two untrained models) and bf16 is not fp32 bit for bit.
    assert any(not torch.equal(a, b) for a, b in zip(fp32.parameters(), initial))
    assert any(not torch.equal(a, b) for a, b in zip(fp32.parameters(), bf16.parameters()))


def test_the_schedule_records_bf16_and_leaves_fp32_out_as_before():
    plain = TrainingSchedule(epochs=2, batch_size=4, learning_rate=1e-3)
    assert plain.precision == "fp32" and "precision" not in plain.to_dict()  # run digests written before stay valid
    bf16 = TrainingSchedule(epochs=2, batch_size=4, learning_rate=1e-3, precision="bf16")
    assert bf16.to_dict()["precision"] == "bf16"
    assert TrainingSchedule(**bf16.to_dict()) == bf16 and TrainingSchedule(**plain.to_dict()) == plain
    with pytest.raises(FMANetConfigError, match="precision must be one of"):
        TrainingSchedule(epochs=2, batch_size=4, learning_rate=1e-3, precision="fp16")


def test_bf16_on_a_cpu_without_bfloat16_kernels_is_refused_with_the_fix(data, monkeypatch):
    monkeypatch.setattr(precision_module, "_cpu_has_fast_bfloat16", lambda: False)
    with pytest.raises(FMANetConfigError, match=r"--precision bf16 cannot train here: this CPU has no bfloat16 kernels.*--precision fp32"):
        train(data, "bf16", epochs=1)
    train(data, "fp32", epochs=1)  # fp32 needs nothing


def test_bf16_on_a_gpu_without_bfloat16_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla T4")
    reason = precision_module.precision_obstacle("bf16", "cuda")
    assert "Tesla T4" in reason and "Ampere" in reason
    assert precision_module.precision_obstacle("fp32", "cuda") is None


@needs_bf16_cpu
def test_a_loso_run_records_its_precision_and_refuses_to_resume_in_another(tmp_path):
    from fmanet_hf.errors import RunDirectoryError
    from fmanet_hf.training.loso import run_loso

    def loso(precision):
        return run_loso(
            make_prepared_dataset(subjects=3, per_subject=3, image_size=16), model_config=tiny_config_kwargs(16),
            out_dir=tmp_path / "run", progress=False, accelerator=Accelerator(cpu=True),
            schedule=TrainingSchedule(epochs=1, batch_size=4, learning_rate=1e-2, precision=precision),
        )

    results = loso("bf16")
    assert results["settings"]["schedule"]["precision"] == "bf16"
    assert loso("bf16")["folds_resumed"] == 3  # the same settings resume
    with pytest.raises(RunDirectoryError, match="precision"):
        loso("fp32")
