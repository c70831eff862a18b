import pytest
import torch

from dsgdn_pyg.data import banded_csr
from dsgdn_pyg.nn import UtteranceEncoder
from dsgdn_pyg.nn.utterance_encoder_stacked import encode_stacked, stack_encoders

from test_utterance_encoder import inputs


@pytest.mark.parametrize('window, causal', [(None, False), (None, True), (2, False),
                                            (3, True)])
def test_stacked_encoders_equal_the_encoders_one_by_one(window, causal):
    # Each encoder alone is checked against torch's MultiheadAttention
    # (test_utterance_encoder.py); stacked, every encoder must give what it gives alone. The
    # same arithmetic grouped otherwise (E * heads heads in one attention): float64 rounding,
    # far inside the default tolerance, while a wrong head or weight differs at order 1.
    _, speaker, batch, ptr = inputs(1, (6, 11, 1, 4))
    torch.manual_seed(2)
    encoders = [UtteranceEncoder(16, 3, heads=4, dropout=0.0, context_window=window,
                                 causal=causal).double().train() for _ in range(3)]
    xs = torch.randn(3, batch.numel(), 16, dtype=torch.float64, requires_grad=True)
    params = [p for e in encoders for p in e.parameters()]
    expected = torch.stack([e(x, speaker, batch, 4, ptr=ptr) for e, x in zip(encoders, xs)])
    expected_grads = torch.autograd.grad((expected * expected.roll(1, 2)).sum(),
                                         [xs] + params)
    window_csr = None if window is None else banded_csr(ptr, window, causal)
    out = encode_stacked(stack_encoders(encoders), xs, speaker, batch, 4, window_csr,
                         max_num_nodes=11, training=True)
    grads = torch.autograd.grad((out * out.roll(1, 2)).sum(), [xs] + params)
    torch.testing.assert_close(out, expected)
    for got, want in zip(grads, expected_grads):
        torch.testing.assert_close(got, want)


def test_only_equal_encoders_stack():
    with pytest.raises(ValueError, match='equal shapes'):
        stack_encoders([UtteranceEncoder(16, 3, heads=4), UtteranceEncoder(16, 3, heads=2)])
