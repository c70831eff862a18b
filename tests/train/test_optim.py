import copy

import pytest
import torch
from torch_geometric.typing import WITH_PT24

from dsgdn_pyg.train.optim import adam


def _model(device='cpu'):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(7, 5), torch.nn.Tanh(),
                               torch.nn.Linear(5, 3)).to(device)


def _train(model, optimizer, steps=5):
    torch.manual_seed(1)
    device = next(model.parameters()).device
    for _ in range(steps):
        x = torch.randn(11, 7).to(device)
        loss = model(x).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return [p.detach().clone() for p in model.parameters()]


def test_adam_is_fused(device):
    if device.type == 'cpu' and not WITH_PT24:
        pytest.skip('fused CPU Adam needs torch >= 2.4')
    optimizer = adam(_model(device).parameters(), lr=1e-3, weight_decay=1e-2)
    assert optimizer.param_groups[0]['fused'] is True
    assert optimizer.param_groups[0]['weight_decay'] == 1e-2


def test_adam_matches_the_reference_loop(device):
    model = _model(device)
    reference = copy.deepcopy(model)
    got = _train(model, adam(model.parameters(), lr=1e-2, weight_decay=1e-2))
    expected = _train(reference, torch.optim.Adam(reference.parameters(), lr=1e-2,
                                                  weight_decay=1e-2, foreach=False))
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-6)
    assert not torch.equal(got[0], _model(device)[0].weight)  # it trained

