"""AdamW and SGD on stacked weights (fmanet_hf.training.stacked_optimizer), against torch.optim.

Three models' weights stacked in one tensor per name; models 0 and 2 take two steps with their
own learning rates, model 1 is masked (finished) throughout. The reference is ``torch.optim``'s
AdamW / SGD on each model's own tensors with the same parameter groups.
"""

from __future__ import annotations

import pytest
import torch

from fmanet_hf.training.schedule import TrainingSchedule
from fmanet_hf.training.stacked_optimizer import StackedOptimizer


@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
def test_stacked_optimizer_matches_torch_and_leaves_masked_models_alone(optimizer):
    schedule = TrainingSchedule(
        epochs=1, batch_size=4, learning_rate=1e-2, weight_decay=0.1, optimizer=optimizer, momentum=0.8
    )
    generator = torch.Generator().manual_seed(0)
    stacked = {"layer.weight": torch.randn(3, 4, 5, generator=generator), "layer.bias": torch.randn(3, 4, generator=generator)}
    originals = {name: tensor.clone() for name, tensor in stacked.items()}
    stepper = StackedOptimizer(dict(stacked), stacked, schedule)
    references = []
    for row in range(3):
        weight = torch.nn.Parameter(originals["layer.weight"][row].clone())
        bias = torch.nn.Parameter(originals["layer.bias"][row].clone())
        groups = [{"params": [weight], "weight_decay": 0.1}, {"params": [bias], "weight_decay": 0.0}]
        torch_optimizer = (
            torch.optim.AdamW(groups, lr=1e-2) if optimizer == "adamw" else torch.optim.SGD(groups, lr=1e-2, momentum=0.8)
        )
        references.append((weight, bias, torch_optimizer))
    learning_rates = {0: [1e-2, 5e-3], 2: [1e-2, 2e-3]}  # model 1 is masked (done) throughout
    for step in range(2):
        grads = {name: torch.randn(tensor.shape, generator=generator) for name, tensor in stacked.items()}
        stepper.step(grads, torch.tensor([0, 2]), [learning_rates[0][step], learning_rates[2][step]], [step + 1, step + 1])
        for row in (0, 2):
            weight, bias, torch_optimizer = references[row]
            for group in torch_optimizer.param_groups:
                group["lr"] = learning_rates[row][step]
            weight.grad, bias.grad = grads["layer.weight"][row].clone(), grads["layer.bias"][row].clone()
            torch_optimizer.step()
    for row in (0, 2):
        weight, bias, _ = references[row]
        torch.testing.assert_close(stacked["layer.weight"][row], weight.detach(), rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(stacked["layer.bias"][row], bias.detach(), rtol=1e-6, atol=1e-7)
    assert torch.equal(stacked["layer.weight"][1], originals["layer.weight"][1])
    assert torch.equal(stacked["layer.bias"][1], originals["layer.bias"][1])
