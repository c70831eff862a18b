import math

import numpy as np
import pytest
import torch

from dsgdn_pyg.nn import MSDE


def reference(module: MSDE, x: np.ndarray, batch: np.ndarray) -> np.ndarray:
    """The docstring's equations in numpy, one dialogue at a time."""
    def lin(layer, v):
        return v @ layer.weight.detach().double().numpy().T + layer.bias.detach().double().numpy()

    def sigmoid(v):
        return 1 / (1 + np.exp(-v))

    def gelu(v):
        erf = np.vectorize(math.erf)
        return 0.5 * v * (1 + erf(v / np.sqrt(2)))

    out = np.zeros_like(x)
    for b in np.unique(batch):
        rows = np.where(batch == b)[0]
        c = x[rows].mean(axis=0)
        s = sigmoid(lin(module.lin_excite, np.maximum(lin(module.lin_squeeze, c), 0)))
        for i in rows:
            g = sigmoid(lin(module.lin_gate, np.concatenate([x[i], c])))
            h = x[i] + s * g * gelu(lin(module.lin_value, x[i]))
            mu, var = h.mean(), h.var()
            w = module.norm.weight.detach().double().numpy()
            bias = module.norm.bias.detach().double().numpy()
            out[i] = (h - mu) / np.sqrt(var + module.norm.eps) * w + bias
    return out


def test_matches_numpy_reference():
    torch.manual_seed(0)
    module = MSDE(12, reduction=3).double().eval()
    # Give the norm non-trivial affine parameters so that they are checked too.
    torch.nn.init.normal_(module.norm.weight)
    torch.nn.init.normal_(module.norm.bias)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(11, 12, generator=g, dtype=torch.float64)
    batch = torch.tensor([0, 0, 0, 1, 2, 2, 2, 2, 3, 3, 3])
    out = module(x, batch, num_graphs=4)
    expected = reference(module, x.numpy(), batch.numpy())
    assert out.shape == (11, 12)
    assert np.allclose(out.detach().numpy(), expected, atol=1e-10)
    # Without num_graphs, the same.
    assert torch.allclose(module(x, batch), out)


def test_dialogues_are_independent_and_default_batch():
    torch.manual_seed(0)
    module = MSDE(8, dropout=0.3).eval()
    g = torch.Generator().manual_seed(2)
    x = torch.randn(9, 8, generator=g)
    batch = torch.tensor([0] * 4 + [1] * 5)
    out = module(x, batch, 2)
    # A dialogue's output only depends on its own utterances.
    assert torch.allclose(out[:4], module(x[:4]), atol=1e-6)
    assert torch.allclose(out[4:], module(x[4:], torch.zeros(5, dtype=torch.long)), atol=1e-6)
    x2 = x.clone()
    x2[4:] += 3.0
    assert torch.allclose(module(x2, batch, 2)[:4], out[:4], atol=1e-6)
    # The context matters: changing the other utterances of a dialogue changes utterance 0.
    x3 = x.clone()
    x3[1:4] += 3.0
    assert not torch.allclose(module(x3, batch, 2)[0], out[0])


def test_training_dropout_gradients_and_reset():
    torch.manual_seed(0)
    module = MSDE(6, dropout=0.5)
    x = torch.randn(5, 6, requires_grad=True)
    out = module(x)
    out.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert all(p.grad is not None for p in module.parameters())
    before = module.lin_gate.weight.detach().clone()
    module.reset_parameters()
    assert not torch.equal(before, module.lin_gate.weight)
    # In evaluation mode, dropout is off: deterministic.
    module.eval()
    assert torch.equal(module(x), module(x))
    assert repr(module) == 'MSDE(6, reduction=4, dropout=0.5)'


def test_bad_input():
    with pytest.raises(ValueError, match="'channels'"):
        MSDE(0)
    with pytest.raises(ValueError, match="'reduction'"):
        MSDE(4, reduction=0)
    with pytest.raises(ValueError, match="'dropout'"):
        MSDE(4, dropout=1.0)
    module = MSDE(4)
    with pytest.raises(ValueError, match=r"\[N, 4\]"):
        module(torch.randn(3, 5))
    with pytest.raises(ValueError, match="'batch'"):
        module(torch.randn(3, 4), torch.zeros(2, dtype=torch.long))
