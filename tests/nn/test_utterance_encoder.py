import pytest
import torch
from torch_geometric.utils import to_dense_batch

from dsgdn_pyg.nn import UtteranceEncoder
from dsgdn_pyg.nn.utterance_encoder import sinusoidal_positions


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


@pytest.mark.parametrize('window', [None, 0, 3, 100])
def test_causal_encoder_matches_padded_attention_with_a_triangular_mask(window):
    x, speaker, batch, ptr = inputs(3, (7, 1, 12))
    torch.manual_seed(1)
    encoder = UtteranceEncoder(16, 3, heads=4, context_window=window, causal=True)
    encoder = encoder.double().eval()
    out = encoder(x, speaker, batch, 3, ptr=ptr)
    dense, mask = to_dense_batch(x, batch)
    spk, _ = to_dense_batch(speaker, batch)
    # torch's MultiheadAttention with a boolean mask of the keys each query may not see.
    pos = torch.arange(dense.size(1))
    blocked = pos.view(1, -1) > pos.view(-1, 1)
    if window is not None:
        blocked |= (pos.view(-1, 1) - pos.view(1, -1)) > window
    h = dense + sinusoidal_positions(pos, 16).double() + \
        encoder.speaker_emb(spk.masked_fill(~mask, 3))
    attn, _ = encoder.attn(h, h, h, key_padding_mask=~mask, attn_mask=blocked,
                           need_weights=False)
    ref = encoder._feed_forward(h, attn)[mask]
    torch.testing.assert_close(out, ref)
    if window is not None:  # the training path (materialised scores) of the whole dialogue
        return
    encoder.train()
    encoder.attn.dropout = 1e-9
    encoder.dropout = 0.0
    torch.testing.assert_close(encoder(x, speaker, batch, 3), ref)


@pytest.mark.parametrize('window', [None, 2])
def test_step_equals_the_causal_forward(window):
    x, speaker, _, _ = inputs(4, (9, ))
    torch.manual_seed(2)
    encoder = UtteranceEncoder(16, 3, heads=2, context_window=window, causal=True)
    encoder = encoder.double().eval()
    full = encoder(x, speaker, torch.zeros(9, dtype=torch.long), 1, ptr=torch.tensor([0, 9]))
    cache, rows = [], []
    for i in range(9):
        past = None if not cache else tuple(torch.cat(t) for t in zip(*cache))
        out, kv = encoder.step(x[i:i + 1], speaker[i:i + 1], torch.tensor([i]), past)
        rows.append(out)
        cache = (cache + [kv])[-window:] if window else cache + [kv]
    torch.testing.assert_close(torch.cat(rows), full)
    with pytest.raises(ValueError, match='causal'):
        UtteranceEncoder(16, 3, heads=2).step(x[:1].float(), speaker[:1], torch.tensor([0]))


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
