r"""Several :class:`~dsgdn_pyg.nn.DiffRGCN` blocks of equal shapes run at once, as one.

AMB-DSGDN gives every modality its own graph blocks, and they all see the same dialogue
graph. Run one modality after the other, a training step repeats each of their few dozen
small operations per modality (on a GPU, a kernel launch each; on a CPU, a dispatch each).
Here their weights are stacked (modalities first) and the blocks run as one: the projections
as batched matrix products, and the attention of every modality and head of a layer as one
layer with :math:`M \cdot H` heads -- one gather of the scores, one segment softmax over both
branches, one sparse aggregation. The arithmetic is that of :class:`~dsgdn_pyg.nn.DiffRGCN`
and :class:`~dsgdn_pyg.nn.DiffGATConv` (tested against them to rounding); only the random
numbers of dropout are drawn for all modalities at once, so a seed gives other masks than
the modules one after the other.

Incremental inference (:mod:`dsgdn_pyg.models.incremental`) runs the same stacked blocks
(:func:`combine_stacked`) with its own attention over cached rows.
"""
from typing import Callable, List, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.typing import Adj, OptTensor

from .diff_gat_incremental import DiffGATTerms, stacked_terms
from .diff_gat_inputs import _edge_inputs, _target_csr, _TargetCSR, relation_lookup
# fast_dropout: the dropout fast path of this package (a cheaper random mask on the CPU).
from .functional import (csr_weighted_aggregate, fast_dropout, segment_softmax,
                         stack_parameters)


class StackedConv(NamedTuple):
    r"""The :class:`~dsgdn_pyg.nn.DiffGATConv` at one place of every stacked block: their
    input-independent terms stacked (:func:`~dsgdn_pyg.nn.diff_gat_incremental.stacked_terms`)
    and the shape they share."""
    terms: DiffGATTerms
    heads: int
    channels: int
    negative_slope: float
    concat: bool
    bias: Optional[Tensor]  # [M, H * C] or [M, C]
    dropout: float
    num_relations: Optional[int]


class StackedBlock(NamedTuple):
    r""":math:`M` :class:`~dsgdn_pyg.nn.DiffRGCN` blocks stacked (blocks first): their two
    attention layers, the linear layer (transposed) and the normalisation's affine terms."""
    convs: Tuple[StackedConv, StackedConv]
    lin_weight: Tensor  # [M, d, d], transposed
    lin_bias: Tensor  # [M, 1, d]
    norm_weight: Tensor  # [M, 1, d]
    norm_bias: Tensor  # [M, 1, d]
    eps: float
    dropout: float


def stackable(blocks: Sequence[torch.nn.Module]) -> bool:
    r"""Whether :obj:`blocks` can run stacked: DiffGATConv blocks of equal shapes that nobody
    observes (hooks on a block or its layers, as an explainer or an attention recorder
    registers, expect each module to be called on its own)."""
    if any(getattr(b, 'conv_type', None) != 'diffgat' for b in blocks):
        return False
    shape = _shape(blocks[0])
    return all(_shape(b) == shape and not any(_observed(m) for m in (b, b.att, b.out_att))
               for b in blocks)


def _observed(module: torch.nn.Module) -> bool:
    from torch.nn.modules import module as hooks  # the hooks registered for every module
    return bool(module._forward_hooks or module._forward_pre_hooks
                or hooks._global_forward_hooks or hooks._global_forward_pre_hooks
                or (hasattr(module, '_messages_observed') and module._messages_observed()))


def _shape(block: torch.nn.Module) -> tuple:
    return tuple((c.in_channels, c.out_channels, c.heads, c.concat, c.negative_slope,
                  c.dropout, c.num_relations, c.relation_dim, c.lambda_init, c.edge_dim,
                  c.cached, c.bias is None)
                 for c in (block.att, block.out_att)) + (block.dropout, block.norm.eps)


def stack_blocks(blocks: Sequence[torch.nn.Module], groups: int = 1) -> List[StackedBlock]:
    r"""The blocks stacked, split into :obj:`groups` consecutive groups of equal size (each
    a :class:`StackedBlock`): blocks of several places in a model (the inter- and the
    intra-speaker blocks of every modality) are stacked together, so that their terms cost
    the operations of one stack. Differentiable; a snapshot of the parameters."""
    def conv(layers) -> StackedConv:
        first = layers[0]
        bias = None if first.bias is None else torch.stack([c.bias for c in layers])
        return StackedConv(stacked_terms(layers), first.heads, first.out_channels,
                           first.negative_slope, first.concat, bias, first.dropout,
                           first.num_relations)

    first = blocks[0]
    lin = stack_parameters([b.lin.weight for b in blocks]).transpose(1, 2)
    affine = torch.stack([b.lin.bias for b in blocks] + [b.norm.weight for b in blocks]
                         + [b.norm.bias for b in blocks]).view(3, len(blocks), 1, -1)
    whole = StackedBlock((conv([b.att for b in blocks]), conv([b.out_att for b in blocks])),
                         lin, *affine.unbind(0), first.norm.eps, first.dropout)
    return _groups(whole, groups)


def _groups(block: StackedBlock, groups: int) -> List[StackedBlock]:
    # The stacked blocks in consecutive groups: every stacked tensor split by unbind (its
    # backward is one stack; slices would each cost a zero-filled gradient).
    def parts(t):
        if not isinstance(t, Tensor):
            return [t] * groups
        return t.unflatten(0, (groups, -1)).unbind(0)

    def convs(c: StackedConv) -> List[StackedConv]:
        terms = zip(*(parts(t) for t in c.terms))
        return [c._replace(terms=DiffGATTerms(*t), bias=b)
                for t, b in zip(terms, parts(c.bias))]
    fields = [parts(t) for t in block[1:]]
    return [StackedBlock(convs_g, *(f[g] for f in fields))
            for g, convs_g in enumerate(zip(*(convs(c) for c in block.convs)))]


def combine_stacked(block: StackedBlock, x: Tensor,
                    conv: Callable[[int, Tensor], Tensor], training: bool = False) -> Tensor:
    r""":meth:`DiffRGCN.combine <dsgdn_pyg.nn.DiffRGCN.combine>` of the stacked blocks on
    :obj:`x` :math:`(M, N, d)` (their own rows per block), each attention layer run as
    :obj:`conv(i, h)` (:obj:`i`: 0 for the heads, 1 for the output layer;
    :func:`propagate_stacked` on a graph)."""
    p = block.dropout
    h = F.gelu(conv(0, fast_dropout(x, p, training)))
    h = F.gelu(conv(1, fast_dropout(h, p, training)))
    h = torch.baddbmm(block.lin_bias, F.gelu(h), block.lin_weight)
    return torch.addcmul(block.norm_bias, F.layer_norm(x + h, (x.size(-1), ), eps=block.eps),
                         block.norm_weight)


def stacked_graph_blocks(block: StackedBlock, x: Tensor, edge_index: Adj,
                         edge_type: OptTensor = None, training: bool = False) -> Tensor:
    r"""The stacked blocks on a graph: :obj:`x` :math:`(M, N, d)`, the edges and their types
    as :class:`~dsgdn_pyg.nn.DiffRGCN` takes them (shared by the :math:`M` blocks); returns
    :math:`(M, N, d)`, what block :math:`m` gives for :obj:`x[m]`."""
    num_nodes = x.size(1)
    graph = _target_csr(edge_index, None, num_nodes, num_nodes)
    edge_type, _ = _edge_inputs(graph, edge_type, None, block.convs[0].num_relations, None)
    return combine_stacked(block, x, lambda i, h: propagate_stacked(
        block.convs[i], h, graph, edge_type, training), training)


def propagate_stacked(conv: StackedConv, x: Tensor, graph: _TargetCSR,
                      edge_type: OptTensor = None, training: bool = False) -> Tensor:
    r""":class:`~dsgdn_pyg.nn.DiffGATConv`'s forward for :math:`M` stacked layers of
    :math:`H` heads on one graph, as one layer of :math:`M \cdot H` heads: :obj:`x`
    :math:`(M, N, F_{in})`, :obj:`graph` the edges sorted by target, :obj:`edge_type` in their
    order. Returns :math:`(M, N, H \cdot C)`, or :math:`(M, N, C)` if not :obj:`concat`."""
    terms, H, C = conv.terms, conv.heads, conv.channels
    M, N = x.shape[:2]
    width = H * C
    # Projection and both scores of every modality in one batched product: [M, N, D].
    row = torch.bmm(x, terms.weight).transpose(0, 1)  # [N, M, D], node-major
    h, score_src, score_dst = row.split([width, 2 * H, 2 * H], dim=-1)
    h = h.reshape(N, M * H, C)  # every modality's heads as heads
    src, dst, ptr = graph.src, graph.dst, graph.ptr
    score = (score_src.index_select(0, src) + score_dst.index_select(0, dst)).view(-1, M, H, 2)
    if terms.relation_scores is not None:
        if edge_type is None:
            raise ValueError("'edge_type' is required when 'num_relations' is set")
        score = score + relation_lookup(terms.relation_scores.transpose(0, 1), edge_type)
    score = F.leaky_relu(score, conv.negative_slope).view(-1, M * H, 2)
    alpha_branch = segment_softmax(score, ptr, dst)  # [E, M * H, 2], per target and branch
    positive, negative = alpha_branch.unbind(-1)
    alpha = positive - terms.lam.reshape(M * H) * negative  # alpha+ - lambda alpha-
    alpha = fast_dropout(alpha, p=conv.dropout, training=training)
    out = csr_weighted_aggregate(alpha, h, ptr, src, graph.num_dst, graph.patterns)
    out = torch.addcmul(terms.norm_bias.reshape(M * H, C), F.layer_norm(out, (C, )),
                        terms.norm_weight.reshape(M * H, C))  # [N, M * H, C]
    out = out.view(N, M, H, C)
    out = out.reshape(N, M, width) if conv.concat else out.mean(dim=2)
    out = out.transpose(0, 1)
    if conv.bias is not None:
        out = out + conv.bias.unsqueeze(1)
    return out


__all__ = ['StackedBlock', 'StackedConv', 'combine_stacked', 'propagate_stacked',
           'stack_blocks', 'stackable', 'stacked_graph_blocks']
