"""ablate with seeds and baselines: the table's means and spreads are those of the runs' files."""

from __future__ import annotations

import json
import statistics

import numpy as np
import pytest
from accelerate import Accelerator

from fmanet_hf.errors import FMANetConfigError
from fmanet_hf.training.ablation import run_ablation
from fmanet_hf.training.schedule import TrainingSchedule
from tests.helpers.tiny import make_prepared_dataset, tiny_config_kwargs


def with_mmcof(dataset):
    """Add an ``mmcof_values`` column (the phase-1 channels stand in for the descriptor)."""
    import datasets

    plain = dataset.with_format(None)
    size = len(plain[0]["pixel_values"][0])
    features = datasets.Features({**plain.features, "mmcof_values": datasets.Array3D(shape=(3, size, size), dtype="float32")})
    out = plain.map(lambda row: {"mmcof_values": np.asarray(row["pixel_values"], dtype=np.float32)[:3]}, features=features)
    out.set_format("torch", columns=["pixel_values", "label_id"], output_all_columns=True)
    return out


@pytest.fixture(scope="module")
def summary(tmp_path_factory):
    out = tmp_path_factory.mktemp("ablation")
    data = with_mmcof(make_prepared_dataset(subjects=3, per_subject=3, image_size=16, seed=3))
    return out, run_ablation(
        data, out_dir=out, schedule=TrainingSchedule(epochs=1, batch_size=4, learning_rate=1e-2),
        seeds=[0, 1], base_config=tiny_config_kwargs(image_size=16, classifier_dropout=0.3),
        ablations=["single_phase", "mmcof_cnn", "mmcof_logreg"], progress=False, accelerator=Accelerator(cpu=True),
    )


def test_every_trained_variant_runs_once_per_seed_in_its_own_folder(summary):
    out, table = summary
    for variant in ("full", "single_phase", "mmcof_cnn"):
        for seed in (0, 1):
            results = json.loads((out / variant / f"seed-{seed}" / "results.json").read_text())
            assert results["seed"] == seed
    assert (out / "mmcof_logreg" / "results.json").is_file()
    assert not (out / "mmcof_logreg" / "seed-0").exists()


def test_means_spreads_and_paired_deltas_come_from_the_per_seed_results(summary):
    out, table = summary
    rows = {row["ablation"]: row for row in table["rows"]}
    for variant in ("full", "single_phase", "mmcof_cnn"):
        uf1 = [json.loads((out / variant / f"seed-{s}" / "results.json").read_text())["uf1"] for s in (0, 1)]
        full = [json.loads((out / "full" / f"seed-{s}" / "results.json").read_text())["uf1"] for s in (0, 1)]
        assert rows[variant]["uf1_per_seed"] == pytest.approx(uf1)
        assert rows[variant]["uf1"] == pytest.approx(sum(uf1) / 2)
        assert rows[variant]["uf1_std"] == pytest.approx(statistics.stdev(uf1))
        differences = [a - b for a, b in zip(uf1, full)]
        assert rows[variant]["delta_uf1"] == pytest.approx(sum(differences) / 2)
        assert rows[variant]["delta_uf1_std"] == pytest.approx(statistics.stdev(differences))
    logreg = rows["mmcof_logreg"]
    assert logreg["uf1_std"] == 0.0 and logreg["uf1_per_seed"][0] == logreg["uf1_per_seed"][1]
    assert "± " in table["markdown"] and "mmcof_logreg is deterministic" in table["markdown"]
    assert json.loads((out / "ablation.json").read_text())["seeds"] == [0, 1]


@pytest.mark.parametrize("seeds, words", [([], "at least one"), ([1, 1], "differ"), ([-1], ">= 0")])
def test_bad_seed_lists_are_refused(seeds, words, tmp_path):
    data = make_prepared_dataset(subjects=2, per_subject=2, image_size=16)
    with pytest.raises(FMANetConfigError, match=words):
        run_ablation(data, out_dir=tmp_path, schedule=TrainingSchedule(epochs=1, batch_size=4, learning_rate=1e-2), seeds=seeds, progress=False)


def test_unknown_variants_are_refused_with_the_valid_names(tmp_path):
    data = make_prepared_dataset(subjects=2, per_subject=2, image_size=16)
    with pytest.raises(FMANetConfigError, match="mmcof_logreg"):
        run_ablation(data, out_dir=tmp_path, schedule=TrainingSchedule(epochs=1, batch_size=4, learning_rate=1e-2), ablations=["cnn"], progress=False)
