r"""The inputs of :class:`~dsgdn_pyg.nn.DiffGATConv` in the one form its kernels take, and its
attention coefficients handed back in the form the edges came in.

Whatever edge format a PyG layer accepts (an :obj:`edge_index` tensor, an
:class:`~torch_geometric.EdgeIndex`, a :obj:`SparseTensor`, a torch sparse :obj:`adj_t`)
becomes the edges sorted by target, with the CSR offsets of every target's edges and the node
counts (inferred where the input does not say them); the edge types and features are checked
against those edges and put in their order, the node features against the layer's widths.
Sorting is the one cost here that repeats per layer: :func:`target_sorted_edge_index` does it
once per batch for every layer, which then also shares the kernels' per-head patterns kept on
the :class:`~torch_geometric.EdgeIndex`.
"""
from typing import NamedTuple, Optional, Tuple, Union

import torch
from torch import Tensor
from torch_geometric import EdgeIndex
from torch_geometric.index import index2ptr, ptr2index
from torch_geometric.typing import Adj, OptTensor, Size, SparseTensor
from torch_geometric.utils import is_torch_sparse_tensor
from torch_geometric.utils.sparse import set_sparse_value

from .functional import Patterns


class _TargetCSR(NamedTuple):
    """The edges sorted by target: ``src``, ``dst``, offsets ``ptr`` of every target's edges,
    ``perm`` (sorted position -> input position; ``None`` if the input order already is the
    sorted one), the node counts, what the kernels derive from the pattern (``patterns``;
    ``None`` if nothing outlives the call) and the input edges as given."""
    src: Tensor
    dst: Tensor
    ptr: Tensor
    perm: Optional[Tensor]
    num_src: int
    num_dst: int
    patterns: Optional[Patterns]
    edges: Optional[Tensor]

    def input_edges(self) -> Tensor:
        """The ``[2, E]`` edge indices in the order of the input (its values' order for a
        sparse adjacency)."""
        if self.edges is not None:
            return self.edges
        return torch.stack([self.src, self.dst])  # the input was in sorted order


def target_sorted_edge_index(edge_index: Tensor, edge_type: OptTensor = None,
                             size: Optional[Tuple[int, int]] = None
                             ) -> Tuple[EdgeIndex, OptTensor]:
    r"""Returns :obj:`edge_index` as an :class:`~torch_geometric.EdgeIndex` sorted by target
    (stably), with :obj:`edge_type` in the same order. Every :class:`DiffGATConv` that gets
    this object then uses its CSR form without sorting, and the per-head patterns and
    transposes the first one derives are kept on it for the others: build it once per batch
    and pass it to all layers.

    Args:
        edge_index (torch.Tensor): Edge indices :obj:`[2, E]`, sources in row 0.
        edge_type (torch.Tensor, optional): Relation id of every edge. (default: :obj:`None`)
        size ((int, int), optional): Numbers of source and target nodes; inferred from
            :obj:`edge_index` if not given. (default: :obj:`None`)
    """
    if isinstance(edge_index, EdgeIndex) and edge_index.is_sorted_by_col:
        return edge_index, edge_type
    plain = edge_index.as_tensor() if isinstance(edge_index, EdgeIndex) else edge_index
    perm = _sort_permutation(plain[1])
    if perm is not None:
        plain = plain.index_select(1, perm)
        edge_type = None if edge_type is None else edge_type.index_select(0, perm)
    return EdgeIndex(plain, sparse_size=size, sort_order='col'), edge_type


def _target_csr(edge_index: Adj, size: Size, num_src: int,
                num_dst: Optional[int]) -> _TargetCSR:
    if isinstance(edge_index, SparseTensor):
        row, col, _ = edge_index.coo()  # row-major: rows are targets
        ptr = edge_index.storage.rowptr()
        num_dst, num_src = edge_index.sparse_size(0), edge_index.sparse_size(1)
        return _TargetCSR(col, row, ptr, None, num_src, num_dst, None, None)
    if is_torch_sparse_tensor(edge_index):
        num_dst, num_src = edge_index.size(0), edge_index.size(1)
        if edge_index.layout == torch.sparse_csr:  # the CSR as it is, no sort
            ptr = edge_index.crow_indices().long()
            src = edge_index.col_indices().long()
            dst = ptr2index(ptr, src.numel())
            return _TargetCSR(src, dst, ptr, None, num_src, num_dst, None, None)
        if edge_index.layout == torch.sparse_csc:
            dst = edge_index.row_indices().long()
            src = ptr2index(edge_index.ccol_indices().long(), dst.numel())
        elif edge_index.layout == torch.sparse_coo:
            dst, src = edge_index.coalesce().indices()
        else:
            raise ValueError(f"unexpected sparse layout {edge_index.layout} of 'adj_t'")
        graph = _sorted_edges(torch.stack([src, dst]), num_src, num_dst)
        return graph._replace(edges=torch.stack([src, dst]))
    if not isinstance(edge_index, Tensor) or edge_index.dim() != 2 or \
            edge_index.size(0) != 2:
        shape = tuple(edge_index.shape) if isinstance(edge_index, Tensor) else \
            type(edge_index).__name__
        raise ValueError(f"'edge_index' must have shape [2, E] or be a sparse adjacency, "
                         f"got {shape}")
    if size is not None:
        num_src, num_dst = size[0], size[1]
    if isinstance(edge_index, EdgeIndex):
        if num_dst is None:
            num_dst = edge_index.get_sparse_size(1)
        if edge_index.is_sorted_by_col:
            patterns = None if torch.compiler.is_compiling() else _patterns_of(edge_index)
            plain = edge_index.as_tensor()
            if edge_index.sparse_size(1) is None:
                edge_index = EdgeIndex(plain, sparse_size=(num_src, num_dst), sort_order='col')
            (ptr, src), _ = edge_index.get_csc()
            return _TargetCSR(src, plain[1], ptr, None, num_src, num_dst, patterns, plain)
        edge_index = edge_index.as_tensor()
    if num_dst is None:  # (x_src, None) and no size: as many targets as the edges name
        num_dst = int(edge_index[1].max()) + 1 if edge_index.numel() > 0 else 0
    _check_index_values(edge_index, num_src, num_dst)
    return _sorted_edges(edge_index, num_src, num_dst)


def _check_node_features(x_src: Tensor, x_dst: Optional[Tensor],
                         in_channels: Union[int, Tuple[int, int]]) -> None:
    # A width of -1 (lazy initialisation) takes whatever the first input has.
    expected = ((in_channels, in_channels)
                if isinstance(in_channels, int) else tuple(in_channels))
    for name, x, width in (('x (source)', x_src, expected[0]),
                           ('x (target)', x_dst, expected[1])):
        if x is None:
            continue
        if x.dim() != 2 or (width > 0 and x.size(-1) != width):
            raise ValueError(f"'{name}' must have shape [N, {width}] to match "
                             f"in_channels, got {tuple(x.shape)}")


def _edge_inputs(graph: _TargetCSR, edge_type: OptTensor, edge_attr: OptTensor,
                 num_relations: Optional[int], edge_dim: Optional[int]
                 ) -> Tuple[OptTensor, OptTensor]:
    # The edge types and features of a layer with num_relations and edge_dim, checked
    # against the edges of graph and put in its (sorted) order.
    num_edges = graph.src.numel()
    if num_relations is not None:
        if edge_type is None:
            raise ValueError("'edge_type' is required when 'num_relations' is set")
        if edge_type.dim() != 1 or edge_type.numel() != num_edges:
            raise ValueError(f"'edge_type' must have shape [E] = [{num_edges}], "
                             f"got {tuple(edge_type.shape)}")
        if edge_type.numel() > 0 and edge_type.is_cuda:
            # A device-side check: reading the values on the host would stall the GPU per
            # layer. On the CPU the relation lookup itself finds a bad id (relation_lookup).
            torch._assert_async(((edge_type >= 0) & (edge_type < num_relations)).all())
    if edge_dim is not None and edge_attr is not None:
        if edge_attr.dim() == 1:
            edge_attr = edge_attr.view(-1, 1)
        if edge_attr.dim() != 2 or edge_attr.size(0) != num_edges or \
                edge_attr.size(1) != edge_dim:
            raise ValueError(f"'edge_attr' must have shape [E, edge_dim] = "
                             f"[{num_edges}, {edge_dim}], got {tuple(edge_attr.shape)}")
    if graph.perm is not None:
        edge_type = None if edge_type is None else edge_type.index_select(0, graph.perm)
        edge_attr = None if edge_attr is None else edge_attr.index_select(0, graph.perm)
    return edge_type, edge_attr


def relation_lookup(scores: Tensor, edge_type: Tensor) -> Tensor:
    r"""The rows of :obj:`scores` ``[R, ...]`` of every edge's relation id. An id outside
    ``[0, R)`` is reported as the layer's input error, found by the lookup itself: checking
    the ids beforehand would read them on the host at every layer (a sync per layer on a GPU,
    where the device-side check of :func:`_edge_inputs` reports it instead)."""
    try:
        return scores.index_select(0, edge_type)
    except IndexError:
        low, high = int(edge_type.min()), int(edge_type.max())
        raise ValueError(f"'edge_type' must lie in [0, {scores.size(0)}), got values in "
                         f"[{low}, {high}]") from None


def _attention_in_input_format(edge_index: Adj, alpha: Tensor, perm: Optional[Tensor]):
    # What return_attention_weights returns: the coefficients in the order of the input
    # edges, with the edges in the format they came in.
    alpha = _to_input_order(alpha, perm)
    if isinstance(edge_index, SparseTensor):
        return edge_index.set_value(alpha, layout='coo')
    if is_torch_sparse_tensor(edge_index):
        return set_sparse_value(edge_index, alpha), alpha
    return edge_index, alpha


def _sorted_edges(edge_index: Tensor, num_src: int, num_dst: int) -> _TargetCSR:
    perm = _sort_permutation(edge_index[1])
    edges = edge_index
    if perm is not None:
        edge_index = edge_index.index_select(1, perm)
    src, dst = edge_index[0], edge_index[1]
    return _TargetCSR(src, dst, index2ptr(dst, num_dst), perm, num_src, num_dst, None, edges)


def _patterns_of(edge_index: EdgeIndex) -> Patterns:
    # What the kernels derive from this graph lives as long as the EdgeIndex object does.
    patterns = getattr(edge_index, '_diffgat_patterns', None)
    if patterns is None:
        patterns = {}
        edge_index._diffgat_patterns = patterns
    return patterns


def _to_input_order(alpha: Tensor, perm: Optional[Tensor]) -> Tensor:
    if perm is None:
        return alpha
    return alpha.new_empty(alpha.shape).index_copy_(0, perm, alpha)


def _check_index_values(edge_index: Tensor, num_src: int, num_dst: int) -> None:
    # On a GPU this would cost a host sync per layer; the kernels' own checks remain.
    if edge_index.is_cuda or edge_index.numel() == 0:
        return
    if int(edge_index[0].max()) >= num_src or int(edge_index[1].max()) >= num_dst \
            or int(edge_index.min()) < 0:
        raise ValueError(f"'edge_index' refers to nodes outside [0, {num_src}) x "
                         f"[0, {num_dst})")


def _sort_permutation(dst: Tensor) -> Optional[Tensor]:
    """The permutation that sorts edges by target, or ``None`` if they already are."""
    if dst.numel() < 2:
        return None
    # On the CPU the check is cheaper than a sort; on a GPU it would cost a host sync.
    if not dst.is_cuda and bool((dst[1:] >= dst[:-1]).all()):
        return None
    return torch.sort(dst, stable=True).indices
