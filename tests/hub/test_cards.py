"""Model-card pieces: the evidence table (the model's numbers beside its baselines, over seeds)."""

from __future__ import annotations

import pytest

from fmanet_hf.errors import ModelCardError
from fmanet_hf.hub.cards import evidence_table


def metric(mean, std, per_seed):
    return {"mean": mean, "std": std, "per_seed": per_seed}


EVIDENCE = {
    "seeds": [0, 1, 2],
    "data": {"subjects": 10, "clips": 240},
    "variants": {
        "full": {"uf1": metric(0.9, 0.01, [0.89, 0.9, 0.91]), "uar": metric(0.91, 0.02, [0.9, 0.91, 0.92])},
        "mmcof_logreg": {"uf1": metric(0.79, 0.0, [0.79, 0.79, 0.79]), "uar": metric(0.792, 0.0, [0.792] * 3)},
    },
    "extra_runs": {"init_from_pretrained": {"uf1": metric(0.93, 0.005, [0.925, 0.93, 0.935]), "uar": metric(0.93, 0.0, [0.93] * 3)}},
}


def test_every_variant_and_extra_run_is_a_row_with_mean_spread_and_seeds():
    table = evidence_table(EVIDENCE)
    assert "seeds 0, 1, 2" in table and "10 subjects, 240 clips" in table
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| model")]
    assert rows == [
        "| FMANet (full) | 0.900 ± 0.010 | 0.910 ± 0.020 | 0.890, 0.900, 0.910 |",
        "| baseline: logistic regression on fixed MM-COF (deterministic) | 0.790 ± 0.000 | 0.792 ± 0.000 | 0.790, 0.790, 0.790 |",
        "| FMANet, started from SynthME pretraining on another person | 0.930 ± 0.005 | 0.930 ± 0.000 | 0.925, 0.930, 0.935 |",
    ]


def test_no_evidence_gives_no_table():
    assert evidence_table(None) == ""


def test_a_file_of_another_layout_is_refused_with_the_expected_writer_named():
    with pytest.raises(ModelCardError, match="collect_synthme2_evidence"):
        evidence_table({"seeds": [0], "variants": {"full": {"uf1": 0.9}}, "data": {"subjects": 1, "clips": 1}})
