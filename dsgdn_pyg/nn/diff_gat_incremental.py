r"""The path of :class:`~dsgdn_pyg.nn.DiffGATConv` for one target node at a time, that
incremental inference takes (:class:`~dsgdn_pyg.inference.streaming.StreamingRecognizer`):
the layer's input-independent terms computed once (:class:`DiffGATTerms`), a node's row of
the projection and both scores in one matrix product, and one target's output from such rows
by a dense softmax, which for one target costs less than the sparse kernels' fixed cost.

The functions take the layer as their first argument; :class:`~dsgdn_pyg.nn.DiffGATConv`
has them as its methods :meth:`~dsgdn_pyg.nn.DiffGATConv.inference_terms`,
:meth:`~dsgdn_pyg.nn.DiffGATConv.project` and :meth:`~dsgdn_pyg.nn.DiffGATConv.attend`.
"""
from typing import NamedTuple, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn.parameter import is_lazy
from torch_geometric.typing import OptTensor

from .functional import fast_dropout, stack_parameters


class DiffGATTerms(NamedTuple):
    r"""The input-independent terms of a :class:`~dsgdn_pyg.nn.DiffGATConv` (see
    :meth:`DiffGATConv.inference_terms <dsgdn_pyg.nn.DiffGATConv.inference_terms>`)."""
    weight: Tensor  # [H * C + 4 * H, F_in]: projection, folded source and target vectors
    lam: Tensor  # [H]: the coefficient lambda of the negative branch
    relation_scores: Optional[Tensor]  # [R, H, 2]
    norm_weight: Tensor  # [H, C], scaled by 1 - lambda_init
    norm_bias: Tensor  # [H, C], scaled by 1 - lambda_init


def fold_attention(weight: Tensor, att: Tensor) -> Tensor:
    r"""The rows :math:`\mathbf{a}^{\top}\mathbf{W}` of the scores of every head and branch,
    shape :obj:`[H * 2, F_in]`, for :obj:`weight` :obj:`[H * C, F_in]` and :obj:`att`
    :obj:`[1, H, 2, C / 2]`."""
    _, heads, branches, half = att.shape
    w = weight.view(heads, branches, half, -1)
    # squeeze, not att[0]: a view, whose gradient needs no zero-filled copy.
    return torch.einsum('hbc,hbcf->hbf', att.squeeze(0), w).reshape(heads * branches, -1)


def inference_terms(conv) -> DiffGATTerms:
    r"""Everything of the layer that does not depend on its input, for :meth:`project`
    and :meth:`attend`: the projection with the folded attention vectors of both branches
    appended as extra rows, the coefficient :math:`\lambda` of the negative branch, the
    relation scores and the scaled normalisation. Computing them once and passing them to
    many calls spares their cost on every call; they are a snapshot of the parameters
    (recompute them after the parameters change). Only for a layer with one projection (an :obj:`int`
    :obj:`in_channels`)."""
    terms = stacked_terms([conv])
    return DiffGATTerms(terms.weight[0].t(), *(None if t is None else t[0] for t in terms[1:]))


def stacked_terms(convs: Sequence) -> DiffGATTerms:
    r""":meth:`inference_terms` of :math:`L` layers of equal shapes, stacked along a new first
    dimension (the projection transposed: ``[L, F_in, H * C + 4 * H]``, the right operand of a
    batched product), for :func:`attend_stacked` and the stacked blocks of
    :mod:`dsgdn_pyg.nn.diff_rgcn_stacked`. Each kind of parameter is stacked once for all
    layers and every term computed by one batched operation, so the cost does not grow with
    :math:`L`; differentiable (training runs through it)."""
    first = convs[0]
    for conv in convs:
        if conv.lin is None:
            raise ValueError("inference_terms() needs a layer with one projection for "
                             "sources and targets (an int 'in_channels')")
        if is_lazy(conv.lin.weight):
            raise ValueError("inference_terms() needs initialised parameters: run the layer "
                             "once or give 'in_channels'")
    L, H, half = len(convs), first.heads, first.out_channels // 2
    # Indexing is avoided below: each index of a stacked parameter costs a zero-filled
    # gradient in backward, unbind one stack of them all.
    weight = stack_parameters([c.lin.weight for c in convs])  # [L, H * C, F_in]
    att = torch.stack([c.att_src for c in convs] + [c.att_dst for c in convs])
    # a^T W of both vectors (source, target), every head and branch: [L, 4H, F_in], source
    # rows first, head-major, branch-minor (as fold_attention orders them).
    folded = torch.einsum('slhbc,lhbcf->lshbf', att.view(2, L, H, 2, half),
                          weight.view(L, H, 2, half, -1)).reshape(L, 4 * H, -1)
    weight = torch.cat([weight, folded], dim=1).transpose(1, 2)
    queries, keys = torch.stack([c.lambda_q1 for c in convs] + [c.lambda_q2 for c in convs]
                                + [c.lambda_k1 for c in convs] + [c.lambda_k2 for c in convs]
                                ).view(2, 2, L, H, half).unbind(0)
    exp_1, exp_2 = (queries * keys).sum(dim=-1).exp().unbind(0)  # [L, H] each
    lam = exp_1 - exp_2 + first.lambda_init
    relation_scores = None
    if first.rel_emb is not None:
        relation_scores = torch.baddbmm(
            torch.stack([c.lin_rel.bias for c in convs]).unsqueeze(1),
            torch.stack([c.rel_emb.weight for c in convs]),
            stack_parameters([c.lin_rel.weight for c in convs]).transpose(1, 2)
        ).view(L, -1, H, 2)
    norm = torch.stack([c.norm_weight for c in convs] + [c.norm_bias for c in convs])
    norm_weight, norm_bias = (norm * (1.0 - first.lambda_init)).view(2, L, H, -1).unbind(0)
    return DiffGATTerms(weight=weight, lam=lam, relation_scores=relation_scores,
                        norm_weight=norm_weight, norm_bias=norm_bias)


def project(conv, x: Tensor, terms: Optional[DiffGATTerms] = None) -> Tensor:
    r"""The per-node part of the layer for nodes :obj:`x` :math:`(N, F_{in})`, in one
    matrix product: the projection :math:`\mathbf{W}\mathbf{x}` (columns
    :obj:`[0, H * C)`), the source scores :math:`\mathbf{a}^{b\top}_{\mathrm{src}}
    \mathbf{W}^{b}\mathbf{x}` (the next :obj:`2 * H`, head-major, branch-minor) and the
    target scores (the last :obj:`2 * H`); shape :obj:`(N, H * C + 4 * H)`. A node's row
    never changes with the graph, so a caller that sees the same nodes again (streaming
    inference) can keep it; :meth:`attend` takes it apart."""
    if terms is None:
        terms = conv.inference_terms()
    return F.linear(x, terms.weight)


def attend(conv, sources: Tensor, target: Tensor, mask: Optional[Tensor] = None,
           edge_type: OptTensor = None, terms: Optional[DiffGATTerms] = None) -> Tensor:
    r"""The output of the layer for one target node from rows of :meth:`project`:
    :obj:`sources` :math:`(S, H * C + 4 * H)` of its candidate sources and :obj:`target`
    :math:`(1, H * C + 4 * H)` of itself, for the edges from the sources where
    :obj:`mask` :math:`(S)` is :obj:`True` (all if :obj:`None`), of relation
    :obj:`edge_type` :math:`(S)`. It computes what :meth:`forward` computes for that
    target over those edges (without edge features), as a dense softmax over :math:`S`
    rows instead of the sparse kernels, which for one target cost more than the
    arithmetic: the path of incremental inference
    (:class:`~dsgdn_pyg.inference.streaming.StreamingRecognizer`). Returns :math:`(1, H * C)`, or
    :math:`(1, C)` if :obj:`concat=False`; a target without edges gets what
    :meth:`forward` gives it (the normalisation of a zero aggregate). :func:`attend_stacked`
    computes the same for several layers of equal shapes at once."""
    if terms is None:
        terms = conv.inference_terms()
    if conv.rel_emb is not None and edge_type is None:
        raise ValueError("'edge_type' is required when 'num_relations' is set")
    stacked = DiffGATTerms(*(None if t is None else t.unsqueeze(0) for t in terms))
    bias = None if conv.bias is None else conv.bias.unsqueeze(0)
    return attend_stacked(stacked, sources.unsqueeze(0), target.unsqueeze(0), conv.heads,
                          conv.out_channels, conv.negative_slope, conv.concat, mask,
                          edge_type, bias, conv.dropout, conv.training)[0]


def attend_stacked(terms: DiffGATTerms, sources: Tensor, target: Tensor, heads: int,
                   channels: int, negative_slope: float = 0.2, concat: bool = True,
                   mask: Optional[Tensor] = None, edge_type: OptTensor = None,
                   bias: OptTensor = None, dropout: float = 0.0,
                   training: bool = False) -> Tensor:
    r""":meth:`attend` of :math:`L` layers of equal shapes at once, each on its own rows, in
    one batched operation per step instead of :math:`L` (the modalities of a streaming
    model, whose blocks share the dialogue's edges): :obj:`terms` stacked
    (:func:`stacked_terms`, :math:`L` first), :obj:`sources` :math:`(L, S, H * C + 4 * H)`,
    :obj:`target` :math:`(L, 1, H * C + 4 * H)`, :obj:`mask` and :obj:`edge_type` of the
    :math:`S` sources shared, :obj:`bias` :math:`(L, H * C)` or :math:`(L, C)`. Returns
    :math:`(L, 1, H * C)`, or :math:`(L, 1, C)` if not :obj:`concat`."""
    H, C = heads, channels
    L, S = sources.shape[:2]
    width = H * C
    score = sources[..., width:width + 2 * H] + target[..., width + 2 * H:]  # [L, S, 2H]
    score = score.view(L, S, H, 2)
    if terms.relation_scores is not None:
        if edge_type is None:
            raise ValueError("'edge_type' is required when 'num_relations' is set")
        score.add_(terms.relation_scores.index_select(1, edge_type))
    # In place: score is this call's own tensor (a few operations fewer per call is what
    # matters for one target).
    score = F.leaky_relu(score, negative_slope, inplace=True)
    if mask is not None:
        score.masked_fill_(mask.logical_not().view(1, -1, 1, 1), float('-inf'))
    alpha_branch = torch.softmax(score, dim=1)  # over the sources, per head and branch
    if mask is not None:  # no edge at all: every score is -inf, the softmax NaN
        alpha_branch.nan_to_num_(0.0)
    # alpha+ - lambda alpha-, [L, S, H].
    positive, negative = alpha_branch.unbind(-1)
    alpha = positive - terms.lam.unsqueeze(1) * negative
    alpha = fast_dropout(alpha, p=dropout, training=training)
    # Every head's weights times every head's rows in one small product per layer
    # ([H, S] x [S, H * C]); head h's output is its own block h of row h.
    out = torch.bmm(alpha.transpose(1, 2), sources[..., :width])
    out = out.view(L, H, H, C).diagonal(dim1=1, dim2=2).transpose(1, 2)  # [L, H, C]
    out = torch.addcmul(terms.norm_bias, F.layer_norm(out, (C, )), terms.norm_weight)
    out = out.reshape(L, 1, H * C) if concat else out.mean(dim=1, keepdim=True)
    if bias is not None:
        out = out + bias.unsqueeze(1)
    return out
