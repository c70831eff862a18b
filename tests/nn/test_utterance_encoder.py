import pytest
import torch
from torch_geometric.utils import to_dense_batch

from dsgdn_pyg.nn import UtteranceEncoder


def inputs(seed, lengths, channels=16):
    gen = torch.Generator().manual_seed(seed)
    ptr = torch.tensor([0] + list(lengths)).cumsum(0)
    batch = torch.repeat_interleave(torch.arange(len(lengths)), torch.tensor(lengths))
    x = torch.randn(int(ptr[-1]), channels, generator=gen, dtype=torch.float64,
                    requires_grad=True)
    speaker = torch.randint(0, 3, (int(ptr[-1]), ), generator=gen)
    return x, speaker, batch, ptr


def reference(encoder, x, speaker, batch, window):
    r"""torch's MultiheadAttention on the padded batch with a band mask."""
    dense, mask = to_dense_batch(x, batch)
    spk, _ = to_dense_batch(speaker, batch)
    saved = encoder.context_window
    encoder.context_window = window
    try:
        return encoder.forward_padded(dense, spk, mask)[mask]
    finally:
        encoder.context_window = saved


@pytest.mark.parametrize('window', [None, 0, 2, 7, 100])
def test_packed_and_windowed_encoder_match_padded_multihead_attention(window):
    x, speaker, batch, ptr = inputs(0, (5, 12, 1, 9))
    torch.manual_seed(0)
    encoder = UtteranceEncoder(16, 3, heads=4, dropout=0.1, context_window=window)
    encoder = encoder.double().eval()
    out = encoder(x, speaker, batch, 4, ptr=ptr)
    ref = reference(encoder, x, speaker, batch, window)
    torch.testing.assert_close(out, ref)
    grads = torch.autograd.grad(out.square().sum(), [x] + list(encoder.parameters()))
    ref_grads = torch.autograd.grad(ref.square().sum(), [x] + list(encoder.parameters()))
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r)


def test_training_attention_matches_the_fused_kernel():
    # In training with attention dropout the whole-dialogue encoder materialises the scores;
    # otherwise it calls torch's fused attention. With a dropout rate that rounds to zero the
    # two must agree, gradients included.
    x, speaker, batch, ptr = inputs(1, (6, 1, 11))
    torch.manual_seed(0)
    encoder = UtteranceEncoder(16, 3, heads=2, dropout=0.0).double().train()
    fused = encoder(x, speaker, batch, 3)
    encoder.attn.dropout = 1e-9  # takes the materialised path, drops nothing
    materialised = encoder(x, speaker, batch, 3)
    torch.testing.assert_close(materialised, fused)
    params = [x] + list(encoder.parameters())
    for g, r in zip(torch.autograd.grad(materialised.square().sum(), params),
                    torch.autograd.grad(fused.square().sum(), params)):
        torch.testing.assert_close(g, r)


def test_windowed_encoder_is_local():
    # Changing utterance 0 must not change utterances more than K away (nor other dialogues).
    x, speaker, batch, ptr = inputs(1, (20, 6))
    encoder = UtteranceEncoder(16, 3, heads=2, context_window=3).double().eval()
    out = encoder(x, speaker, batch, 2, ptr=ptr)
    x2 = x.detach().clone()
    x2[0] += 1.0
    out2 = encoder(x2, speaker, batch, 2, ptr=ptr)
    changed = (out2 - out).abs().amax(dim=1) > 1e-12
    assert changed[:4].all() and not changed[4:].any()


def test_encoder_errors_and_repr():
    with pytest.raises(ValueError, match='context_window'):
        UtteranceEncoder(16, 2, context_window=-1)
    encoder = UtteranceEncoder(16, 2, heads=2, context_window=5)
    x, speaker, batch, _ = inputs(2, (4, ))
    with pytest.raises(ValueError, match='ptr'):
        encoder(x.float(), speaker, batch, 1)
    assert 'context_window=5' in repr(encoder)
