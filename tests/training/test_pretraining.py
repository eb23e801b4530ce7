"""pretrain -> loso --init-from: the folder, its refusals, and the run that starts from it."""

from __future__ import annotations

import json

import pytest
import torch
from accelerate import Accelerator

from fmanet_hf import FMANetForImageClassification
from fmanet_hf.errors import OutputPathError, RunDirectoryError
from fmanet_hf.training.loso import run_loso
from fmanet_hf.training.pretraining import PRETRAINING_INFO_NAME, pretrain
from fmanet_hf.training.schedule import TrainingSchedule
from tests.helpers.tiny import make_prepared_dataset, tiny_config_kwargs

SCHEDULE = TrainingSchedule(epochs=2, batch_size=4, learning_rate=1e-2)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pretrain") / "model"
    data = make_prepared_dataset(subjects=3, per_subject=3, image_size=16, seed=5)
    info = pretrain(
        data, out_dir=folder, schedule=SCHEDULE, seed=0, model_config=tiny_config_kwargs(image_size=16),
        accelerator=Accelerator(cpu=True), progress=False,
    )
    return folder, info


def test_pretraining_writes_a_loadable_model_and_its_record(pretrained):
    folder, info = pretrained
    model = FMANetForImageClassification.from_pretrained(folder)
    assert model.config.image_size == 16
    record = json.loads((folder / PRETRAINING_INFO_NAME).read_text())
    assert record == info
    assert record["subjects"] == ["s1", "s2", "s3"] and record["num_samples"] == 9
    assert len(record["train_loss_per_epoch"]) == 2


def test_an_existing_folder_is_refused_unless_it_is_an_earlier_pretraining_and_overwrite_is_set(pretrained, tmp_path):
    folder, _ = pretrained
    data = make_prepared_dataset(subjects=2, per_subject=2, image_size=16)
    kwargs = dict(schedule=SCHEDULE, model_config=tiny_config_kwargs(image_size=16), accelerator=Accelerator(cpu=True), progress=False)
    with pytest.raises(RunDirectoryError, match="--overwrite"):
        pretrain(data, out_dir=folder, **kwargs)
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "mine.txt").write_text("keep me")
    with pytest.raises(OutputPathError, match="not written by fmanet-hf"):
        pretrain(data, out_dir=foreign, overwrite=True, **kwargs)
    assert (foreign / "mine.txt").read_text() == "keep me"


def test_loso_starts_every_fold_from_the_pretrained_weights(pretrained, tmp_path):
    import hashlib

    from fmanet_hf.training.initialization import PretrainedInitialization

    folder, _ = pretrained
    reference = FMANetForImageClassification.from_pretrained(folder)
    started = PretrainedInitialization(str(folder))(reference.config)
    for name, tensor in reference.state_dict().items():
        assert torch.equal(started.state_dict()[name], tensor), name
    data = make_prepared_dataset(subjects=3, per_subject=3, image_size=16, seed=9)
    results = run_loso(
        data, out_dir=tmp_path / "run", schedule=SCHEDULE, model_config=tiny_config_kwargs(image_size=16),
        init_from=folder, accelerator=Accelerator(cpu=True), progress=False,
    )
    assert results["num_folds"] == 3
    recorded = json.loads((tmp_path / "run" / "run_config.json").read_text())
    expected = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    assert json.dumps(recorded).count(expected) == 1  # the starting weights are part of the run's settings


def test_resuming_with_other_starting_weights_is_refused(pretrained, tmp_path):
    folder, _ = pretrained
    data = make_prepared_dataset(subjects=3, per_subject=3, image_size=16, seed=9)
    kwargs = dict(schedule=SCHEDULE, model_config=tiny_config_kwargs(image_size=16), accelerator=Accelerator(cpu=True), progress=False)
    run_loso(data, out_dir=tmp_path / "run", init_from=folder, **kwargs)
    with pytest.raises(RunDirectoryError, match="init_from"):
        run_loso(data, out_dir=tmp_path / "run", **kwargs)
