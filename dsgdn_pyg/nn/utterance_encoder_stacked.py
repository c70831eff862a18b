r"""The forward pass of :class:`~dsgdn_pyg.nn.UtteranceEncoder`, for one encoder or several
of equal shapes at once.

AMB-DSGDN gives audio and visual each their own encoder over the same dialogues. Run one
after the other, a training step repeats every operation of the encoder per modality; here
their weights are stacked (encoders first), the projections are batched matrix products and
the attention of all encoders is one attention of :math:`E \cdot \mathrm{heads}` heads over
the same padded batch or window pattern (:func:`full_attention`, :func:`window_attention`, which
:meth:`UtteranceEncoder.forward <dsgdn_pyg.nn.UtteranceEncoder.forward>` uses for its own
heads). Only the random numbers of dropout are drawn for all encoders at once, so a seed gives
other masks than the encoders one after the other.
"""
import math
from typing import NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

# fast_dropout: the dropout fast path of this package (a cheaper random mask on the CPU).
from .functional import (Patterns, csr_sampled_dot, csr_weighted_aggregate, fast_dropout,
                         segment_softmax, stack_parameters)


def dialogue_positions(batch: Tensor, batch_size: int) -> Tensor:
    r"""The position of every node in its dialogue, counted from the dialogue's first node in
    the batch (nodes of a dialogue contiguous and in order), with no host sync."""
    node = torch.arange(batch.numel(), device=batch.device)
    first = torch.full((batch_size, ), batch.numel(), device=batch.device, dtype=torch.long)
    first = first.scatter_reduce(0, batch, node, reduce='amin')
    return node - first[batch]


def sinusoidal_positions(position: Tensor, channels: int) -> Tensor:
    r"""Sinusoidal encoding (paper eq. 2) of integer positions, shape :obj:`[*, channels]`."""
    half = torch.arange(0, channels, 2, device=position.device, dtype=torch.float32)
    freq = torch.exp(-math.log(10000.0) * half / channels)
    angle = position.to(torch.float32).unsqueeze(-1) * freq
    if channels % 2 == 0:  # sin, cos interleaved: the same values in three operations, not five
        return torch.stack([torch.sin(angle), torch.cos(angle)], dim=-1).flatten(-2)
    out = torch.zeros(*position.shape, channels, device=position.device)
    out[..., 0::2] = torch.sin(angle)
    out[..., 1::2] = torch.cos(angle[..., :channels // 2])
    return out


class StackedEncoder(NamedTuple):
    r""":math:`E` :class:`~dsgdn_pyg.nn.UtteranceEncoder` of equal shapes, their parameters
    stacked (encoders first; weights transposed, the right operands of batched products)."""
    speaker_emb: Tensor  # [E, S + 1, d]
    in_weight: Tensor  # [E, d, 3d]
    in_bias: Tensor  # [E, 1, 3d]
    out_weight: Tensor  # [E, d, d]
    out_bias: Tensor  # [E, 1, d]
    norm_weight: Tensor  # [E, 1, d]
    norm_bias: Tensor  # [E, 1, d]
    lin1_weight: Tensor  # [E, d, d]
    lin1_bias: Tensor  # [E, 1, d]
    lin2_weight: Tensor  # [E, d, d]
    lin2_bias: Tensor  # [E, 1, d]
    heads: int
    dropout: float
    attn_dropout: float
    eps: float
    context_window: Optional[int]
    causal: bool


def stack_encoders(encoders: Sequence[torch.nn.Module]) -> StackedEncoder:
    r"""The encoders' parameters stacked (differentiable; a snapshot of the parameters)."""
    first = encoders[0]
    shape = _shape(first)
    if any(_shape(e) != shape for e in encoders):
        raise ValueError("stacked encoders must have equal shapes and settings")

    def weights(get):  # [E, in, out]
        return stack_parameters([get(e) for e in encoders]).transpose(1, 2)

    biases = torch.stack([t for e in encoders for t in (
        e.attn.out_proj.bias, e.norm.weight, e.norm.bias, e.lin1.bias, e.lin2.bias)])
    out_bias, norm_weight, norm_bias, lin1_bias, lin2_bias = \
        biases.view(len(encoders), 5, 1, -1).unbind(1)
    return StackedEncoder(
        torch.stack([e.speaker_emb.weight for e in encoders]),
        weights(lambda e: e.attn.in_proj_weight),
        torch.stack([e.attn.in_proj_bias for e in encoders]).unsqueeze(1),
        weights(lambda e: e.attn.out_proj.weight), out_bias, norm_weight, norm_bias,
        weights(lambda e: e.lin1.weight), lin1_bias, weights(lambda e: e.lin2.weight),
        lin2_bias, first.attn.num_heads, first.dropout, first.attn.dropout, first.norm.eps,
        first.context_window, first.causal)


def _shape(encoder: torch.nn.Module) -> tuple:
    return (encoder.channels, encoder.num_speakers, encoder.attn.num_heads, encoder.dropout,
            encoder.attn.dropout, encoder.norm.eps, encoder.context_window, encoder.causal)


def encode_stacked(enc: StackedEncoder, x: Tensor, speaker: Tensor, batch: Tensor,
                   batch_size: int, window_csr: Optional[Tuple[Tensor, Tensor]] = None,
                   position: Optional[Tensor] = None, max_num_nodes: Optional[int] = None,
                   training: bool = False) -> Tensor:
    r"""The stacked encoders on :obj:`x` :math:`(E, N, d)` (their own features per
    encoder), the other inputs as :meth:`UtteranceEncoder.forward
    <dsgdn_pyg.nn.UtteranceEncoder.forward>` takes them (a windowed encoder needs
    :obj:`window_csr`); returns :math:`(E, N, d)`."""
    E, N, d = x.shape
    if position is None:
        position = dialogue_positions(batch, batch_size)
    x = x + sinusoidal_positions(position, d).to(x.dtype)
    x = x + enc.speaker_emb.index_select(1, speaker)
    heads = enc.heads
    # Every encoder's heads as heads of one attention, node-major: [N, E * heads, d / heads].
    q, k, v = (t.transpose(0, 1).reshape(N, E * heads, d // heads) for t in torch.baddbmm(
        enc.in_bias, x, enc.in_weight).view(E, N, 3, -1).unbind(2))
    if enc.context_window is None:
        if max_num_nodes is None:  # the longest dialogue: read on the host (a GPU sync)
            max_num_nodes = int(position.max()) + 1 if position.numel() > 0 else 0
        out = full_attention(q, k, v, batch * max_num_nodes + position, batch_size,
                             max_num_nodes, enc.causal, enc.attn_dropout, training)
    else:
        if window_csr is None:
            raise ValueError("a windowed UtteranceEncoder needs the dialogue offsets 'ptr' "
                             "or a precomputed 'window_csr'")
        out = window_attention(q, k, v, window_csr, enc.attn_dropout, training)
    out = out.reshape(N, E, d).transpose(0, 1)
    h = x + fast_dropout(torch.baddbmm(enc.out_bias, out, enc.out_weight), enc.dropout,
                         training)
    norm = torch.addcmul(enc.norm_bias, F.layer_norm(h, (d, ), eps=enc.eps), enc.norm_weight)
    ffn = torch.baddbmm(enc.lin2_bias, F.gelu(torch.baddbmm(enc.lin1_bias, norm,
                                                            enc.lin1_weight)), enc.lin2_weight)
    return h + fast_dropout(ffn, enc.dropout, training)


def _pad(x: Tensor, flat: Tensor, batch_size: int, length: int) -> Tensor:
    # [N, *] -> [B, L, *], zeros where a dialogue is shorter than L (as to_dense_batch pads).
    out = x.new_zeros(batch_size * length, *x.shape[1:]).index_copy(0, flat, x)
    return out.view(batch_size, length, *x.shape[1:])


def full_attention(q: Tensor, k: Tensor, v: Tensor, flat: Tensor, batch_size: int,
                   length: int, causal: bool = False, dropout: float = 0.0,
                   training: bool = False) -> Tensor:
    r"""Multi-head attention of every node to its whole dialogue (its past if
    :obj:`causal`): :obj:`q`, :obj:`k`, :obj:`v` :math:`(N, H, c)`, node :math:`n` at row
    :obj:`flat[n]` ``= batch[n] * length + position[n]`` of the padded
    :math:`(B \cdot L)` rows; returns :math:`(N, H, c)`."""
    # Only the attention core is padded to [B, H, L, L]; gathers and scatters by the flat
    # index need no host sync (a boolean mask's count would).
    q, k, v = (_pad(t, flat, batch_size, length).transpose(1, 2) for t in (q, k, v))
    mask = torch.zeros(batch_size * length, dtype=torch.bool, device=q.device)
    mask = mask.index_fill_(0, flat, True).view(batch_size, length)
    attend = mask[:, None, None, :]  # [B, 1, 1 or L, L]
    if causal:
        attend = attend & torch.ones(length, length, dtype=torch.bool,
                                     device=q.device).tril()
    if training and dropout > 0:
        score = q @ k.transpose(-1, -2) / math.sqrt(q.size(-1))  # [B, H, L, L]
        score = score.masked_fill(~attend, float('-inf'))
        # The cheaper dropout of this package: with dropout, torch's fused attention falls
        # back to this computation with one Bernoulli draw per score on the CPU.
        out = fast_dropout(torch.softmax(score, dim=-1), dropout, training) @ v
    else:  # the fused kernel, which never materialises the [B, H, L, L] scores
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attend)
    heads, channels = out.size(1), out.size(3)
    return out.transpose(1, 2).reshape(-1, heads, channels).index_select(0, flat)


def window_attention(q: Tensor, k: Tensor, v: Tensor, window_csr: Tuple[Tensor, Tensor],
                     dropout: float = 0.0, training: bool = False) -> Tensor:
    r"""Multi-head attention of every node over the sources of its row of the CSR pattern
    :obj:`window_csr` (scores by SDDMM, segment softmax, aggregation by sparse product):
    :obj:`q`, :obj:`k`, :obj:`v` :math:`(N, H, c)`; returns :math:`(N, H, c)`."""
    crow, col = window_csr
    num_nodes = q.size(0)
    # The head pattern and transposes of the window, derived once for both kernels.
    patterns: Patterns = {}
    score = csr_sampled_dot(q, k, crow, col, patterns) / math.sqrt(q.size(-1))  # [E, H]
    rows = None
    if q.is_cuda:  # each edge's target, for the scatters of segment_softmax on a GPU
        rows = torch.repeat_interleave(torch.arange(num_nodes, device=q.device),
                                       crow.diff(), output_size=col.numel())
    alpha = fast_dropout(segment_softmax(score, crow, rows), dropout, training)
    return csr_weighted_aggregate(alpha, v, crow, col, num_nodes, patterns)


__all__ = ['StackedEncoder', 'dialogue_positions', 'encode_stacked', 'full_attention',
           'sinusoidal_positions', 'stack_encoders', 'window_attention']
