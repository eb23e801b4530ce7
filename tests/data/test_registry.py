"""Tests of the dataset-loader registry (`fmanet_hf.data.registry`): name -> loader."""

from __future__ import annotations

import pytest

from fmanet_hf.data import load_casme2, load_casme3, load_megc2019, load_mmew, load_samm, load_smic
from fmanet_hf.data.registry import (
    DATASET_LOADERS,
    DATASET_NAMES,
    DatasetLoader,
    get_dataset_loader,
    load_dataset_by_name,
    load_synthme,
)
from fmanet_hf.errors import DatasetError
from fmanet_hf.hub.cards import CARD_DATASETS

from tests.helpers import dataset_trees as fx


def test_every_name_maps_to_its_datasets_public_loader():
    assert DATASET_NAMES == ("casme2", "samm", "smic", "mmew", "casme3", "megc2019", "synthme")
    functions = {name: entry.function for name, entry in DATASET_LOADERS.items()}
    assert functions == {
        "casme2": load_casme2, "samm": load_samm, "smic": load_smic, "mmew": load_mmew,
        "casme3": load_casme3, "megc2019": load_megc2019, "synthme": load_synthme,
    }
    assert all(entry.name == name for name, entry in DATASET_LOADERS.items())
    # `fmanet-hf export` writes `--dataset <card key>` into the card's loso command.
    assert set(CARD_DATASETS) == set(DATASET_NAMES)


def test_unknown_name_is_a_dataset_error_listing_the_names():
    with pytest.raises(DatasetError, match=r"Unknown dataset 'casme'; choose one of \['casme2', 'samm'"):
        get_dataset_loader("casme")
    with pytest.raises(DatasetError, match="Unknown dataset"):
        load_dataset_by_name("nope", "anywhere")
    with pytest.raises(TypeError):
        DATASET_LOADERS["extra"] = DATASET_LOADERS["samm"]  # read-only


def test_class_set_goes_to_the_loader_only_when_given_and_taken():
    calls = []

    def loader(root, **kwargs):
        calls.append((root, kwargs))

    DatasetLoader("x", "X", loader).load("r")
    DatasetLoader("x", "X", loader).load("r", "megc3")
    DatasetLoader("x", "X", loader, takes_class_set=False).load("r", "megc3")
    assert calls == [("r", {}), ("r", {"class_set": "megc3"}), ("r", {})]


def test_synthme_is_the_casme2_layout_with_megc3_classes(tmp_path):
    root = fx.build_synthme(tmp_path / "synthme")
    dataset = load_dataset_by_name("synthme", root)
    assert set(dataset["dataset"]) == {"synthme"}
    assert set(dataset["label"]) == {"negative", "positive", "surprise"}
    assert dataset["sample_id"] == load_casme2(root, class_set="megc3", dataset_name="synthme")["sample_id"]
    everything = load_dataset_by_name("synthme", root, "all")
    assert "happiness" in set(everything["label"]) and set(everything["dataset"]) == {"synthme"}
