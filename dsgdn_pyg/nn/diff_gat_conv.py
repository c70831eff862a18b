import math
from typing import Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Parameter
from torch.nn.parameter import is_lazy
from torch_geometric.nn.conv import MessagePassing
from torch_geometric.nn.dense.linear import Linear
from torch_geometric.typing import Adj, OptPairTensor, OptTensor, Size, SparseTensor

# The path of one target at a time (DiffGATTerms re-exported for its callers).
from . import diff_gat_incremental as incremental
from .diff_gat_incremental import DiffGATTerms, fold_attention  # noqa: F401
# The inputs in the form of the kernels: edges sorted by target, shared by the layers of a batch
# (target_sorted_edge_index re-exported).
from .diff_gat_inputs import (_attention_in_input_format, _check_node_features,  # noqa: F401
                              _edge_inputs, _target_csr, _TargetCSR, _to_input_order,
                              relation_lookup, target_sorted_edge_index)
# fast_dropout: the dropout fast path of this package (a cheaper random mask on the CPU).
from .functional import (Patterns, csr_tensor, csr_weighted_aggregate, fast_dropout,
                         segment_softmax)


def lambda_init_for_depth(depth: int) -> float:
    r"""The depth-dependent offset :math:`\lambda_{init} = 0.8 - 0.6 e^{-0.3 \cdot depth}`."""
    return 0.8 - 0.6 * math.exp(-0.3 * depth)


class DiffGATConv(MessagePassing):
    r"""The differential graph attention operator of the AMB-DSGDN paper
    `"AMB-DSGDN: Adaptive Modality-Balanced Dynamic Semantic Graph Differential Network for
    Multimodal Emotion Recognition" <https://arxiv.org/abs/2603.10043>`_ (Alg. 1, eq. 9-17),
    the graph form of the differential attention of `"Differential Transformer"
    <https://arxiv.org/abs/2410.05258>`_.

    The projection :math:`\mathbf{W}\mathbf{x}_j` of every head is split into a positive and a
    negative half. Each half :math:`b \in \{+, -\}` has its own attention vectors and, if
    :obj:`num_relations` is set, a score for the relation :math:`r_{ij}` of the edge; if
    :obj:`edge_dim` is set, the edge features :math:`\mathbf{e}_{ij}` are scored per branch as
    in :class:`~torch_geometric.nn.conv.GATConv`:

    .. math::
        e^{b}_{i,j} = \mathrm{LeakyReLU}\left(
        \mathbf{a}^{b\top}_{\mathrm{dst}} \mathbf{W}^{b}\mathbf{x}_i +
        \mathbf{a}^{b\top}_{\mathrm{src}} \mathbf{W}^{b}\mathbf{x}_j +
        \mathbf{w}^{b\top} \mathbf{R}(r_{ij}) + c^{b} +
        \mathbf{a}^{b\top}_{\mathrm{edge}} \mathbf{W}^{b}_{\mathrm{edge}}\mathbf{e}_{ij}
        \right),
        \qquad
        \alpha^{b}_{i,j} = \frac{\exp(e^{b}_{i,j})}{\sum_{k \in \mathcal{N}(i)} \exp(e^{b}_{i,k})}

    The two attention distributions are combined into one signed coefficient

    .. math::
        \alpha_{i,j} = \alpha^{+}_{i,j} - \lambda\, \alpha^{-}_{i,j}, \qquad
        \lambda = e^{\boldsymbol{\lambda}_{q1} \cdot \boldsymbol{\lambda}_{k1}}
        - e^{\boldsymbol{\lambda}_{q2} \cdot \boldsymbol{\lambda}_{k2}} + \lambda_{init},
        \qquad \lambda_{init} = 0.8 - 0.6 e^{-0.3 \cdot depth}

    that weights the full projection (both halves), followed by Diff-Transformer's per-head
    sub-layer normalisation scaled by :math:`(1 - \lambda_{init})`, and a bias:

    .. math::
        \mathbf{x}^{\prime}_i = (1 - \lambda_{init}) \cdot
        \mathrm{LayerNorm}\left(\sum_{j \in \mathcal{N}(i)} \alpha_{i,j}
        \mathbf{W}\mathbf{x}_j\right) + \mathbf{b}

    Like every PyG layer it applies no activation to its output: the published AMB-DSGDN
    applies a GELU after it (:class:`~dsgdn_pyg.nn.DiffRGCN` does), and a model may end
    with it. Unlike :class:`~torch_geometric.nn.conv.GATConv`, :math:`\alpha_{i,j}` can be
    negative: the aggregation is signed, not convex. :math:`\mathcal{N}(i)` holds the sources
    of the edges that end in :math:`i`; add self-loops to the graph if a node should see itself
    (the dialogue graphs of :func:`dsgdn_pyg.data.dialogue_edges` have them).

    The aggregation runs as one sparse CSR matrix product over all heads, forward and
    backward, on the edges sorted by target. A torch sparse CSR :obj:`adj_t`, a
    :class:`~torch_geometric.EdgeIndex` sorted by column or a :obj:`SparseTensor` already are;
    an :obj:`edge_index` tensor is sorted on every call unless it already is. What the kernels
    derive from the pattern (per-head patterns, transposes) is kept on an
    :class:`~torch_geometric.EdgeIndex` input, so every layer that receives the same
    :class:`~torch_geometric.EdgeIndex` object builds it once (see
    :func:`target_sorted_edge_index`), or, with :obj:`cached=True`, in the module for the
    first graph it sees (transductive use, as :class:`~torch_geometric.nn.conv.GCNConv`).

    **Explaining.** When a message hook is registered (as
    :class:`~torch_geometric.explain.algorithm.AttentionExplainer` registers one) or the layer
    is in explain mode, the aggregation runs through :meth:`message`, which receives the
    final signed coefficients :math:`\alpha_{i,j}` (after dropout), shape :obj:`[E, H]`, in
    the order of the input edges. :class:`AttentionExplainer` reduces them over heads and
    layers with its :obj:`reduce` (default :obj:`"max"`) and uses the result as the edge mask
    as it is, without a sigmoid: an edge whose coefficient is negative in every head and
    layer gets a negative mask value (it pushed its target away from its source), a large
    positive value means the edge added its source. Rank edges by the mask, or by its
    absolute value to find the edges that mattered either way; it is not a probability.

    **One target at a time.** For incremental inference
    (:class:`~dsgdn_pyg.inference.streaming.StreamingRecognizer`), :meth:`project` gives a node's row of
    the projection and both scores in one matrix product, which a caller can keep, and
    :meth:`attend` the output of one target from such rows with a dense softmax over them,
    sparing the sparse kernels' fixed cost; :meth:`inference_terms` computes the terms they
    share once for many calls.

    :func:`torch.compile` runs the layer (tested with the eager backend; graph breaks around
    the sparse kernels);
    :func:`torch.jit.script` cannot, since the kernels are custom autograd functions.

    Args:
        in_channels (int or tuple): Size of each input sample, or :obj:`-1` to derive it
            from the first input (lazy initialisation). A tuple of source and target sizes
            gives separate projections for bipartite graphs.
        out_channels (int): Size of each output sample per head; must be even (it is split into
            the positive and the negative half).
        heads (int, optional): Number of attention heads. (default: :obj:`1`)
        concat (bool, optional): If :obj:`False`, the heads are averaged instead of
            concatenated. (default: :obj:`True`)
        negative_slope (float, optional): LeakyReLU slope. (default: :obj:`0.2`)
        dropout (float, optional): Dropout probability of the final coefficients
            :math:`\alpha_{i,j}`, in training only. (default: :obj:`0.0`)
        num_relations (int, optional): If set, :obj:`edge_type` ids in
            :obj:`[0, num_relations)` are embedded and scored per branch. (default: :obj:`None`)
        relation_dim (int, optional): Width of the relation embedding :math:`\mathbf{R}`.
            (default: :obj:`10`)
        depth (int, optional): Layer depth in :math:`\lambda_{init}`; the published runs used
            :obj:`1` everywhere. (default: :obj:`1`)
        edge_dim (int, optional): If set, continuous edge features :obj:`edge_attr` of this
            width are scored per branch. (default: :obj:`None`)
        bias (bool, optional): If :obj:`False`, no additive bias :math:`\mathbf{b}` (the
            normalisation's own offset remains). (default: :obj:`True`)
        cached (bool, optional): If :obj:`True`, the sorted graph and what is derived from it
            are computed on the first call and reused for every later one, whatever graph it
            gets. Only for transductive use on one fixed graph. (default: :obj:`False`)
        **kwargs (optional): Additional arguments of
            :class:`torch_geometric.nn.conv.MessagePassing`.

    Shapes:
        - **input:**
          node features :math:`(|\mathcal{V}|, F_{in})` or
          :math:`((|\mathcal{V}_s|, F_{s}), (|\mathcal{V}_t|, F_{t}))` if bipartite (the target
          features may be :obj:`None`),
          edge indices :math:`(2, |\mathcal{E}|)` or a sparse adjacency
          :math:`(|\mathcal{V}_t|, |\mathcal{V}_s|)`,
          edge types :math:`(|\mathcal{E}|)` *(optional)*,
          edge features :math:`(|\mathcal{E}|, D)` *(optional)*
        - **output:** node features :math:`(|\mathcal{V}_t|, H * F_{out})` or
          :math:`(|\mathcal{V}_t|, F_{out})` if :obj:`concat=False`,
          and, with :obj:`return_attention_weights=True`, the tuple
          :math:`((2, |\mathcal{E}|), (|\mathcal{E}|, H))` of edges and final coefficients
          :math:`\alpha` in the order of the input edges (for a torch sparse adjacency, the
          adjacency with :math:`\alpha` as values and :math:`\alpha`; for a
          :obj:`SparseTensor`, the :obj:`SparseTensor` with :math:`\alpha` as values).
    """
    # The arguments of both propagate() calls of forward().
    propagate_type = {'x': Tensor, 'alpha': Tensor, 'crow': OptTensor, 'col': OptTensor,
                      'patterns': Optional[Patterns]}

    def __init__(
        self,
        in_channels: Union[int, Tuple[int, int]],
        out_channels: int,
        heads: int = 1,
        concat: bool = True,
        negative_slope: float = 0.2,
        dropout: float = 0.0,
        num_relations: Optional[int] = None,
        relation_dim: int = 10,
        depth: int = 1,
        edge_dim: Optional[int] = None,
        bias: bool = True,
        cached: bool = False,
        **kwargs,
    ):
        kwargs.setdefault('aggr', 'add')
        super().__init__(node_dim=0, **kwargs)
        if out_channels <= 0 or out_channels % 2 != 0:
            raise ValueError(f"'out_channels' must be a positive even number (it is split into "
                             f"a positive and a negative half), got {out_channels}")
        if heads < 1:
            raise ValueError(f"'heads' must be at least 1, got {heads}")
        if num_relations is not None and num_relations < 1:
            raise ValueError(f"'num_relations' must be positive, got {num_relations}")
        if edge_dim is not None and edge_dim < 1:
            raise ValueError(f"'edge_dim' must be positive, got {edge_dim}")

        self.in_channels = in_channels
        self.out_channels = out_channels
        self.heads = heads
        self.concat = concat
        self.negative_slope = negative_slope
        self.dropout = dropout
        self.num_relations = num_relations
        self.relation_dim = relation_dim
        self.depth = depth
        self.edge_dim = edge_dim
        self.cached = cached
        self.lambda_init = lambda_init_for_depth(depth)
        self._cached_graph: Optional[_TargetCSR] = None

        H, C = heads, out_channels
        self.lin = self.lin_src = self.lin_dst = None
        if isinstance(in_channels, int):
            self.lin = Linear(in_channels, H * C, bias=False)
        else:
            self.lin_src = Linear(in_channels[0], H * C, bias=False)
            self.lin_dst = Linear(in_channels[1], H * C, bias=False)

        # Index 0 of dim 2 is the positive branch, index 1 the negative one.
        self.att_src = Parameter(torch.empty(1, H, 2, C // 2))
        self.att_dst = Parameter(torch.empty(1, H, 2, C // 2))
        self.lambda_q1 = Parameter(torch.empty(H, C // 2))
        self.lambda_k1 = Parameter(torch.empty(H, C // 2))
        self.lambda_q2 = Parameter(torch.empty(H, C // 2))
        self.lambda_k2 = Parameter(torch.empty(H, C // 2))

        if num_relations is not None:
            self.rel_emb = torch.nn.Embedding(num_relations, relation_dim)
            self.lin_rel = torch.nn.Linear(relation_dim, H * 2)
        else:
            self.rel_emb = self.lin_rel = None

        self.norm_weight = Parameter(torch.empty(H, C))
        self.norm_bias = Parameter(torch.empty(H, C))

        if edge_dim is not None:
            self.lin_edge = Linear(edge_dim, H * C, bias=False)
            self.att_edge = Parameter(torch.empty(1, H, 2, C // 2))
        else:
            self.lin_edge = None
            self.register_parameter('att_edge', None)

        if bias:
            self.bias = Parameter(torch.empty(H * C if concat else C))
        else:
            self.register_parameter('bias', None)
        self.reset_parameters()

    def reset_parameters(self):
        super().reset_parameters()
        for lin in (self.lin, self.lin_src, self.lin_dst, self.lin_edge):
            if lin is not None:
                _glorot(lin)
        # The published layer keeps [a_left; a_right] as one (C, 1) matrix per branch.
        bound = 1.414 * math.sqrt(6.0 / (self.out_channels + 1))
        torch.nn.init.uniform_(self.att_src, -bound, bound)
        torch.nn.init.uniform_(self.att_dst, -bound, bound)
        for param in (self.lambda_q1, self.lambda_k1, self.lambda_q2, self.lambda_k2):
            torch.nn.init.normal_(param, mean=0.0, std=0.1)
        if self.rel_emb is not None:
            self.rel_emb.reset_parameters()
            self.lin_rel.reset_parameters()
        torch.nn.init.ones_(self.norm_weight)
        torch.nn.init.zeros_(self.norm_bias)
        if self.att_edge is not None:
            torch.nn.init.uniform_(self.att_edge, -bound, bound)
        if self.bias is not None:
            torch.nn.init.zeros_(self.bias)
        self._cached_graph = None

    def differential_lambda(self) -> Tensor:
        r"""The per-head coefficient :math:`\lambda` of the negative branch, shape :obj:`[H]`."""
        lambda_1 = torch.exp((self.lambda_q1 * self.lambda_k1).sum(dim=-1))
        lambda_2 = torch.exp((self.lambda_q2 * self.lambda_k2).sum(dim=-1))
        return lambda_1 - lambda_2 + self.lambda_init

    def relation_scores(self) -> Tensor:
        r"""The score of every relation id per head and branch, shape :obj:`[R, H, 2]`."""
        assert self.rel_emb is not None and self.lin_rel is not None
        return self.lin_rel(self.rel_emb.weight).view(-1, self.heads, 2)

    # One target at a time (incremental inference): the methods are functions of the layer.
    inference_terms = incremental.inference_terms
    project = incremental.project
    attend = incremental.attend

    def forward(
        self,
        x: Union[Tensor, OptPairTensor],
        edge_index: Adj,
        edge_type: OptTensor = None,
        edge_attr: OptTensor = None,
        size: Size = None,
        return_attention_weights: Optional[bool] = None,
    ) -> Union[Tensor, Tuple[Tensor, Tuple[Tensor, Tensor]], Tuple[Tensor, SparseTensor]]:
        r"""Runs the forward pass of the module.

        Args:
            x (torch.Tensor or (torch.Tensor, torch.Tensor)): The input node features; the
                target features of a pair may be :obj:`None`.
            edge_index (torch.Tensor or EdgeIndex or SparseTensor): The edge indices
                :obj:`[2, E]` (sources in row 0), or the transposed sparse adjacency
                :obj:`adj_t` of shape :obj:`[N_dst, N_src]` (torch sparse CSR/CSC or
                :obj:`SparseTensor`).
            edge_type (torch.Tensor, optional): Relation id of every edge, in the order of
                the edges (of the values of a sparse adjacency); required when
                :obj:`num_relations` is set. (default: :obj:`None`)
            edge_attr (torch.Tensor, optional): Edge features :obj:`[E, edge_dim]` (or
                :obj:`[E]` for :obj:`edge_dim=1`), used when :obj:`edge_dim` is set.
                (default: :obj:`None`)
            size ((int, int), optional): The shape :obj:`(N_src, N_dst)` of the adjacency
                matrix of an :obj:`edge_index`. (default: :obj:`None`)
            return_attention_weights (bool, optional): If set, also returns the edges and the
                final coefficients (see Shapes). (default: :obj:`None`)
        """
        H, C = self.heads, self.out_channels
        x_src, x_dst = (x, x) if isinstance(x, Tensor) else x
        lin_src = self.lin if self.lin is not None else self.lin_src
        lin_dst = self.lin if self.lin is not None else self.lin_dst
        assert lin_src is not None and lin_dst is not None
        _initialize_lazy(lin_src, x_src)
        if x_dst is not None:
            _initialize_lazy(lin_dst, x_dst)
        _check_node_features(x_src, x_dst, self.in_channels)

        h_src = lin_src(x_src).view(-1, H, C)
        # The attention vectors are folded into the projection, so the scores are a thin
        # matrix product of the input instead of a pass over the [N, H, C] projection.
        score_src = F.linear(x_src, fold_attention(lin_src.weight, self.att_src)).view(-1, H, 2)
        score_dst = None if x_dst is None else \
            F.linear(x_dst, fold_attention(lin_dst.weight, self.att_dst)).view(-1, H, 2)

        graph = self._cached_graph if self.cached else None
        if graph is None:
            graph = _target_csr(edge_index, size, x_src.size(0),
                                None if x_dst is None else x_dst.size(0))
            if self.cached:
                self._cached_graph = graph
        edge_type, edge_attr = _edge_inputs(graph, edge_type, edge_attr, self.num_relations,
                                            self.edge_dim)
        perm, src, dst, ptr = graph.perm, graph.src, graph.dst, graph.ptr

        score = score_src.index_select(0, src)
        if score_dst is not None:
            score = score + score_dst.index_select(0, dst)
        if self.rel_emb is not None:
            assert edge_type is not None
            score = score + relation_lookup(self.relation_scores(), edge_type)
        if self.lin_edge is not None and edge_attr is not None:
            assert self.att_edge is not None
            _initialize_lazy(self.lin_edge, edge_attr)
            att_edge = fold_attention(self.lin_edge.weight, self.att_edge)
            score = score + F.linear(edge_attr, att_edge).view(-1, H, 2)
        score = F.leaky_relu(score, self.negative_slope)
        alpha_branch = segment_softmax(score, ptr, dst)  # [E, H, 2], per target, branch

        positive, negative = alpha_branch.unbind(-1)  # one stack in backward, not two copies
        alpha = positive - self.differential_lambda() * negative
        # The dropout fast path (cheaper CPU mask, see dsgdn_pyg.nn.functional.fast_dropout).
        alpha = fast_dropout(alpha, p=self.dropout, training=self.training)

        if self._messages_observed():
            # Through message(): hooks and explain masks see alpha in the input edge order.
            alpha_in = _to_input_order(alpha, perm)
            out = self.propagate(graph.input_edges(), x=h_src, alpha=alpha_in, crow=None,
                                 col=None, patterns=None, size=(graph.num_src, graph.num_dst))
        else:
            adj_t = csr_tensor(ptr, src, torch.ones_like(src, dtype=h_src.dtype),
                               (graph.num_dst, graph.num_src))
            out = self.propagate(adj_t, x=h_src, alpha=alpha, crow=ptr, col=src,
                                 patterns=graph.patterns)  # [N_dst, H, C]

        # (LN(out) * w + b) * (1 - lambda_init) in one fused pass.
        scale = 1.0 - self.lambda_init
        out = torch.addcmul(self.norm_bias * scale, F.layer_norm(out, (C, )),
                            self.norm_weight * scale)
        out = out.reshape(-1, H * C) if self.concat else out.mean(dim=1)
        if self.bias is not None:
            out = out + self.bias

        if return_attention_weights:
            return out, _attention_in_input_format(edge_index, alpha, perm)
        return out

    def message(self, x_j: Tensor, alpha: Tensor) -> Tensor:
        # The gather-scatter path, taken when messages are observed (hooks, explain mode).
        return alpha.unsqueeze(-1) * x_j

    def message_and_aggregate(self, adj_t: Tensor, x: Tensor, alpha: Tensor,
                              crow: OptTensor = None, col: OptTensor = None,
                              patterns: Optional[Patterns] = None) -> Tensor:
        if crow is None or col is None:
            crow, col = adj_t.crow_indices(), adj_t.col_indices()
        return csr_weighted_aggregate(alpha, x, crow, col, adj_t.size(0), patterns)

    def _messages_observed(self) -> bool:
        return bool(self.explain) or len(self._message_forward_hooks) > 0 or \
            len(self._message_forward_pre_hooks) > 0

    def __repr__(self) -> str:
        rel = f', num_relations={self.num_relations}' if self.num_relations is not None else ''
        edge = f', edge_dim={self.edge_dim}' if self.edge_dim is not None else ''
        return (f'{self.__class__.__name__}({self.in_channels}, {self.out_channels}, '
                f'heads={self.heads}{rel}{edge})')


def _initialize_lazy(lin: Linear, x: Tensor) -> None:
    # A lazy projection (in_channels=-1) takes its width from the first input, and gets the
    # same initialisation as a sized one.
    if is_lazy(lin.weight):
        lin.initialize_parameters(lin, (x, ))
        _glorot(lin)


def _glorot(lin: Linear) -> None:
    if not is_lazy(lin.weight):
        torch.nn.init.xavier_uniform_(lin.weight, gain=1.414)
