"""EMA of weights: the averaged values follow the formula, computed by hand."""

import pytest
import torch

from fmanet_hf.errors import FMANetConfigError
from fmanet_hf.training.weight_averaging import WeightEMA


def test_average_follows_the_warmed_up_decay_by_hand():
    model = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    ema = WeightEMA(model, decay=0.5)
    for value in (1.0, 2.0, 3.0):
        with torch.no_grad():
            model.weight.fill_(value)
        ema.update(model)
    # d_0 = min(0.5, 1/10) = 0.1, d_1 = min(0.5, 2/11), d_2 = min(0.5, 3/12) = 0.25:
    # 0.1*0 + 0.9*1 = 0.9; (2/11)*0.9 + (9/11)*2 = 1.8; 0.25*1.8 + 0.75*3 = 2.7.
    assert ema.shadow["weight"].item() == pytest.approx(2.7, abs=1e-6)
    assert model.weight.item() == 3.0  # the model itself is untouched until copy_to
    ema.copy_to(model)
    assert model.weight.item() == pytest.approx(2.7, abs=1e-6)


def test_late_steps_use_the_configured_decay():
    ema = WeightEMA(torch.nn.Linear(1, 1), decay=0.9)
    assert ema.decay_at(0) == pytest.approx(0.1)
    assert ema.decay_at(1000) == pytest.approx(0.9)


@pytest.mark.parametrize("decay", [1.0, -0.1, float("nan"), True])
def test_invalid_decay_is_refused(decay):
    with pytest.raises(FMANetConfigError, match="EMA decay"):
        WeightEMA(torch.nn.Linear(1, 1), decay=decay)
