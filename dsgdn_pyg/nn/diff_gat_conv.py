import math
import typing
from typing import Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Parameter
from torch_geometric.nn.conv import MessagePassing
from torch_geometric.typing import Adj, NoneType, OptTensor, PairTensor, Size
from torch_geometric.utils import is_torch_sparse_tensor, softmax
from torch_geometric.utils.sparse import index2ptr

from .functional import csr_weighted_aggregate, dropout, memoized

if typing.TYPE_CHECKING:
    from typing import overload
else:
    from torch.jit import _overload_method as overload


def lambda_init_for_depth(depth: int) -> float:
    r"""The depth-dependent offset :math:`\lambda_{init} = 0.8 - 0.6 e^{-0.3 \cdot depth}`."""
    return 0.8 - 0.6 * math.exp(-0.3 * depth)


class DiffGATConv(MessagePassing):
    r"""The differential graph attention operator of the AMB-DSGDN paper
    `"AMB-DSGDN: Adaptive Modality-Balanced Dynamic Semantic Graph Differential Network for
    Multimodal Emotion Recognition" <https://arxiv.org/abs/2510.07462>`_ (Alg. 1, eq. 9-17).

    The projection :math:`\mathbf{W}\mathbf{x}_j` of every head is split into a positive and a
    negative half. Each half :math:`b \in \{+, -\}` has its own attention vectors and, if
    :obj:`num_relations` is set, a score for the relation :math:`r_{ij}` of the edge:

    .. math::
        e^{b}_{i,j} = \mathrm{LeakyReLU}\left(
        \mathbf{a}^{b\top}_{\mathrm{left}} \mathbf{W}^{b}\mathbf{x}_i +
        \mathbf{a}^{b\top}_{\mathrm{right}} \mathbf{W}^{b}\mathbf{x}_j +
        \mathbf{w}^{b\top} \mathbf{R}(r_{ij}) + c^{b} \right),
        \qquad
        \alpha^{b}_{i,j} = \frac{\exp(e^{b}_{i,j})}{\sum_{k \in \mathcal{N}(i)} \exp(e^{b}_{i,k})}

    The two attention distributions are combined into one signed coefficient

    .. math::
        \alpha_{i,j} = \alpha^{+}_{i,j} - \lambda\, \alpha^{-}_{i,j}, \qquad
        \lambda = e^{\boldsymbol{\lambda}_{q1} \cdot \boldsymbol{\lambda}_{k1}}
        - e^{\boldsymbol{\lambda}_{q2} \cdot \boldsymbol{\lambda}_{k2}} + \lambda_{init},
        \qquad \lambda_{init} = 0.8 - 0.6 e^{-0.3 \cdot depth}

    that weights the full projection (both halves), followed by a per-head layer normalisation:

    .. math::
        \mathbf{x}^{\prime}_i = \mathrm{GELU}\left((1 - \lambda_{init}) \cdot
        \mathrm{LayerNorm}\left(\sum_{j \in \mathcal{N}(i)} \alpha_{i,j}
        \mathbf{W}\mathbf{x}_j\right)\right)

    Unlike :class:`~torch_geometric.nn.conv.GATConv`, :math:`\alpha_{i,j}` can be negative: the
    aggregation is signed, not convex. :math:`\mathcal{N}(i)` holds the sources of the edges that
    end in :math:`i`; add self-loops to the graph if a node should see itself (the dialogue graphs
    of :func:`dsgdn_pyg.data.dialogue_edges` have them). The aggregation runs as one sparse
    matrix product per head over a CSR adjacency, forward and backward.

    Args:
        in_channels (int or tuple): Size of each input sample, or a tuple of source and target
            sizes for bipartite graphs.
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
        **kwargs (optional): Additional arguments of
            :class:`torch_geometric.nn.conv.MessagePassing`.

    Shapes:
        - **input:**
          node features :math:`(|\mathcal{V}|, F_{in})` or
          :math:`((|\mathcal{V}_s|, F_{s}), (|\mathcal{V}_t|, F_{t}))` if bipartite,
          edge indices :math:`(2, |\mathcal{E}|)`,
          edge types :math:`(|\mathcal{E}|)` *(optional)*
        - **output:** node features :math:`(|\mathcal{V}_t|, H * F_{out})` or
          :math:`(|\mathcal{V}_t|, F_{out})` if :obj:`concat=False`,
          and, with :obj:`return_attention_weights=True`, the tuple
          :math:`((2, |\mathcal{E}|), (|\mathcal{E}|, H))` of edges and final coefficients
          :math:`\alpha` in the order of the input edges.
    """
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

        self.in_channels = in_channels
        self.out_channels = out_channels
        self.heads = heads
        self.concat = concat
        self.negative_slope = negative_slope
        self.dropout = dropout
        self.num_relations = num_relations
        self.relation_dim = relation_dim
        self.depth = depth
        self.lambda_init = lambda_init_for_depth(depth)

        H, C = heads, out_channels
        if isinstance(in_channels, int):
            self.lin = torch.nn.Linear(in_channels, H * C, bias=False)
            self.lin_src = self.lin_dst = None
        else:
            self.lin = None
            self.lin_src = torch.nn.Linear(in_channels[0], H * C, bias=False)
            self.lin_dst = torch.nn.Linear(in_channels[1], H * C, bias=False)

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
        self.reset_parameters()

    def reset_parameters(self):
        super().reset_parameters()
        for lin in (self.lin, self.lin_src, self.lin_dst):
            if lin is not None:
                torch.nn.init.xavier_uniform_(lin.weight, gain=1.414)
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

    def differential_lambda(self) -> Tensor:
        r"""The per-head coefficient :math:`\lambda` of the negative branch, shape :obj:`[H]`."""
        lambda_1 = torch.exp((self.lambda_q1 * self.lambda_k1).sum(dim=-1))
        lambda_2 = torch.exp((self.lambda_q2 * self.lambda_k2).sum(dim=-1))
        return lambda_1 - lambda_2 + self.lambda_init

    def relation_scores(self) -> Tensor:
        r"""The score of every relation id per head and branch, shape :obj:`[R, H, 2]`."""
        assert self.rel_emb is not None and self.lin_rel is not None
        return self.lin_rel(self.rel_emb.weight).view(-1, self.heads, 2)

    if typing.TYPE_CHECKING:

        @overload
        def forward(
            self,
            x: Union[Tensor, PairTensor],
            edge_index: Tensor,
            edge_type: OptTensor = None,
            size: Size = None,
            return_attention_weights: NoneType = None,
        ) -> Tensor:
            pass

        @overload
        def forward(  # noqa: F811
            self,
            x: Union[Tensor, PairTensor],
            edge_index: Tensor,
            edge_type: OptTensor = None,
            size: Size = None,
            return_attention_weights: bool = None,
        ) -> Tuple[Tensor, Tuple[Tensor, Tensor]]:
            pass

    def forward(  # noqa: F811
        self,
        x: Union[Tensor, PairTensor],
        edge_index: Adj,
        edge_type: OptTensor = None,
        size: Size = None,
        return_attention_weights: Optional[bool] = None,
    ) -> Union[Tensor, Tuple[Tensor, Tuple[Tensor, Tensor]]]:
        r"""Runs the forward pass of the module.

        Args:
            x (torch.Tensor or (torch.Tensor, torch.Tensor)): The input node features.
            edge_index (torch.Tensor): The edge indices, :obj:`[2, E]`, sources in row 0.
            edge_type (torch.Tensor, optional): Relation id of every edge, required when
                :obj:`num_relations` is set. (default: :obj:`None`)
            size ((int, int), optional): The shape of the adjacency matrix.
                (default: :obj:`None`)
            return_attention_weights (bool, optional): If set to :obj:`True`, also returns
                :obj:`(edge_index, alpha)` with the final coefficients. (default: :obj:`None`)
        """
        H, C = self.heads, self.out_channels
        x_src, x_dst = (x, x) if isinstance(x, Tensor) else x
        num_src, num_dst = (x_src.size(0), x_dst.size(0)) if size is None else size
        self._check_inputs(x_src, x_dst, edge_index, edge_type, num_src, num_dst)

        lin_src, lin_dst = (self.lin, self.lin) if self.lin is not None else \
            (self.lin_src, self.lin_dst)
        h_src = lin_src(x_src).view(-1, H, C)
        # The attention vectors are folded into the projection, so the scores are a thin
        # matrix product of the input instead of a pass over the [N, H, C] projection.
        score_src = F.linear(x_src, _fold(lin_src.weight, self.att_src)).view(-1, H, 2)
        score_dst = F.linear(x_dst, _fold(lin_dst.weight, self.att_dst)).view(-1, H, 2)

        # Edges sorted by target: softmax then runs on contiguous segments and the aggregation
        # on a CSR adjacency. Built once per edge_index, for all layers that receive it.
        perm, src, dst, ptr = memoized((edge_index, ), ('target_csr', num_dst),
                                       lambda: _target_csr(edge_index, num_dst))
        if perm is not None and edge_type is not None:
            edge_type = edge_type[perm]

        score = score_src.index_select(0, src) + score_dst.index_select(0, dst)
        if self.rel_emb is not None:
            score = score + self.relation_scores().index_select(0, edge_type)
        score = F.leaky_relu(score, self.negative_slope)
        alpha_branch = softmax(score, dst, ptr=ptr, num_nodes=num_dst)  # [E, H, 2]

        alpha = alpha_branch[..., 0] - self.differential_lambda() * alpha_branch[..., 1]
        alpha = dropout(alpha, p=self.dropout, training=self.training)

        adj_t = torch.sparse_csr_tensor(ptr, src, torch.ones_like(src, dtype=h_src.dtype),
                                        (num_dst, num_src), check_invariants=False)
        # The CSR index tensors themselves, not adj_t's accessors (new objects on every call),
        # so that the kernels find what they derived from them before (memoized).
        out = self.propagate(adj_t, x=h_src, alpha=alpha, crow=ptr, col=src)  # [N_dst, H, C]

        # (LN(out) * w + b) * (1 - lambda_init) in one fused pass.
        scale = 1.0 - self.lambda_init
        out = torch.addcmul(self.norm_bias * scale, F.layer_norm(out, (C, )),
                            self.norm_weight * scale)
        out = F.gelu(out)
        out = out.reshape(-1, H * C) if self.concat else out.mean(dim=1)

        if return_attention_weights:
            if perm is not None:
                alpha = alpha.new_empty(alpha.shape).index_copy_(0, perm, alpha)
            return out, (edge_index, alpha)
        return out

    def message(self, x_j: Tensor, alpha: Tensor) -> Tensor:
        # The generic gather-scatter path, used by PyG when a plain edge_index is propagated
        # (e.g. in explain mode).
        return alpha.unsqueeze(-1) * x_j

    def message_and_aggregate(self, adj_t: Tensor, x: Tensor, alpha: Tensor,
                              crow: OptTensor = None, col: OptTensor = None) -> Tensor:
        if crow is None or col is None:
            crow, col = adj_t.crow_indices(), adj_t.col_indices()
        return csr_weighted_aggregate(alpha, x, crow, col, adj_t.size(0))

    def _check_inputs(self, x_src: Tensor, x_dst: Tensor, edge_index: Adj, edge_type: OptTensor,
                      num_src: int, num_dst: int) -> None:
        if not isinstance(edge_index, Tensor) or is_torch_sparse_tensor(edge_index):
            raise ValueError("'edge_index' must be a dense [2, E] integer tensor")
        if edge_index.dim() != 2 or edge_index.size(0) != 2:
            raise ValueError(f"'edge_index' must have shape [2, E], got "
                             f"{tuple(edge_index.shape)}")
        expected = ((self.in_channels, self.in_channels)
                    if isinstance(self.in_channels, int) else tuple(self.in_channels))
        for name, x, width in (('x (source)', x_src, expected[0]),
                               ('x (target)', x_dst, expected[1])):
            if x.dim() != 2 or x.size(-1) != width:
                raise ValueError(f"'{name}' must have shape [N, {width}] to match "
                                 f"in_channels, got {tuple(x.shape)}")
        if self.num_relations is not None:
            if edge_type is None:
                raise ValueError("'edge_type' is required when 'num_relations' is set")
            if edge_type.dim() != 1 or edge_type.numel() != edge_index.size(1):
                raise ValueError(f"'edge_type' must have shape [E] = [{edge_index.size(1)}], "
                                 f"got {tuple(edge_type.shape)}")
            if edge_type.numel() > 0 and edge_type.is_cuda:
                # A device-side check avoids a host sync per layer.
                torch._assert_async(((edge_type >= 0) & (edge_type < self.num_relations))
                                    .all())
        if not edge_index.is_cuda:
            # The value checks sync with the host: once per edge_index for all layers.
            types = edge_type if self.num_relations is not None and edge_type is not None \
                and not edge_type.is_cuda else None
            keys = (edge_index, ) if types is None else (edge_index, types)
            memoized(keys, ('checked', num_src, num_dst, self.num_relations),
                     lambda: _check_index_values(edge_index, types, num_src, num_dst,
                                                 self.num_relations))

    def __repr__(self) -> str:
        rel = f', num_relations={self.num_relations}' if self.num_relations is not None else ''
        return (f'{self.__class__.__name__}({self.in_channels}, {self.out_channels}, '
                f'heads={self.heads}{rel})')


def _fold(weight: Tensor, att: Tensor) -> Tensor:
    r"""The rows :math:`\mathbf{a}^{\top}\mathbf{W}` of the scores of every head and branch,
    shape :obj:`[H * 2, F_in]`, for :obj:`weight` :obj:`[H * C, F_in]` and :obj:`att`
    :obj:`[1, H, 2, C / 2]`."""
    _, heads, branches, half = att.shape
    w = weight.view(heads, branches, half, -1)
    return torch.einsum('hbc,hbcf->hbf', att[0], w).reshape(heads * branches, -1)


def _check_index_values(edge_index: Tensor, edge_type: OptTensor, num_src: int, num_dst: int,
                        num_relations: Optional[int]) -> bool:
    if edge_type is not None and edge_type.numel() > 0:
        low, high = int(edge_type.min()), int(edge_type.max())
        if low < 0 or high >= num_relations:
            raise ValueError(f"'edge_type' must lie in [0, {num_relations}), got values in "
                             f"[{low}, {high}]")
    if edge_index.numel() > 0:
        if int(edge_index[0].max()) >= num_src or int(edge_index[1].max()) >= num_dst \
                or int(edge_index.min()) < 0:
            raise ValueError(f"'edge_index' refers to nodes outside [0, {num_src}) x "
                             f"[0, {num_dst})")
    return True


def _target_csr(edge_index: Tensor,
                num_dst: int) -> Tuple[Optional[Tensor], Tensor, Tensor, Tensor]:
    """``(perm, src, dst, ptr)`` of the edges sorted by target (``perm`` ``None`` if they
    already are). Copies, not views of ``edge_index``, which :func:`memoized` must not hold."""
    perm = _sort_permutation(edge_index[1])
    edge_index = edge_index.clone() if perm is None else edge_index[:, perm]
    return perm, edge_index[0], edge_index[1], index2ptr(edge_index[1], num_dst)


def _sort_permutation(dst: Tensor) -> Optional[Tensor]:
    """The permutation that sorts edges by target, or ``None`` if they already are."""
    if dst.numel() < 2:
        return None
    # On the CPU the check is cheaper than a sort; on a GPU it would cost a host sync.
    if not dst.is_cuda and bool((dst[1:] >= dst[:-1]).all()):
        return None
    return torch.sort(dst, stable=True).indices


