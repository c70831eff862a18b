"""Sparse kernels shared by the attention layers."""
import warnings
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

# torch marks CSR support as beta and warns on every construction; the kernels used here
# (spmm, sampled_addmm) are stable on CPU and CUDA, so the warning is noise for users.
warnings.filterwarnings('ignore', message='Sparse CSR tensor support is in beta')


def _csr(crow: Tensor, col: Tensor, values: Tensor, size: Tuple[int, int]) -> Tensor:
    return torch.sparse_csr_tensor(crow, col, values, size, check_invariants=False)


def transpose_csr(crow: Tensor, col: Tensor, num_cols: int) -> Tuple[Tensor, Tensor, Tensor]:
    """Returns ``(crow_t, col_t, perm)`` of the transposed pattern; ``perm`` maps its entries."""
    num_rows = crow.numel() - 1
    row = torch.repeat_interleave(torch.arange(num_rows, device=crow.device), crow.diff(),
                                  output_size=col.numel())
    perm = torch.sort(col, stable=True).indices
    counts = torch.bincount(col, minlength=num_cols)
    crow_t = torch.zeros(num_cols + 1, dtype=crow.dtype, device=crow.device)
    crow_t[1:] = counts.cumsum(0)
    return crow_t, row[perm], perm


def head_pattern(crow: Tensor, col: Tensor,
                 heads: int) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
    r"""The CSR pattern of :obj:`heads` copies of a pattern, one per head, interleaved so
    that node-major features ``x`` of shape ``[N, H, C]`` are its operand as the plain view
    ``[N * H, C]``: entry ``(i, j)`` of head ``h`` becomes ``(i * H + h, j * H + h)``.

    Returns ``(crow_h, col_h, order)``; ``order`` gathers edge values stored as ``[E, H]``
    (flattened) into the entry order of the new pattern (``None`` for one head).
    """
    if heads == 1:
        return crow, col, None
    num_rows = crow.numel() - 1
    num_edges = col.numel()
    degree = crow.diff()
    crow_h = torch.zeros(num_rows * heads + 1, dtype=crow.dtype, device=crow.device)
    crow_h[1:] = degree.repeat_interleave(heads).cumsum(0)
    row = torch.repeat_interleave(torch.arange(num_rows, device=crow.device), degree,
                                  output_size=num_edges)
    # Entry (e, h) sits in row i * H + h, at offset (e - crow[i]) of that row.
    head = torch.arange(heads, device=crow.device)
    position = ((crow[row] * heads + torch.arange(num_edges, device=crow.device) - crow[row])
                .unsqueeze(1) + head.unsqueeze(0) * degree[row].unsqueeze(1))
    col_h = torch.empty(num_edges * heads, dtype=col.dtype, device=col.device)
    col_h[position.view(-1)] = (col.unsqueeze(1) * heads + head).view(-1)
    order = torch.empty(num_edges * heads, dtype=torch.long, device=col.device)
    order[position.view(-1)] = torch.arange(num_edges * heads, device=col.device)
    return crow_h, col_h, order


def _to_pattern(values: Tensor, order: Optional[Tensor]) -> Tensor:
    flat = values.reshape(-1)
    return flat if order is None else flat.index_select(0, order)


def _from_pattern(values: Tensor, order: Optional[Tensor], heads: int) -> Tensor:
    if order is None:
        return values.view(-1, heads)
    return values.new_empty(values.shape).index_copy_(0, order, values).view(-1, heads)


def _sddmm(crow: Tensor, col: Tensor, a: Tensor, b: Tensor, size: Tuple[int, int]) -> Tensor:
    r"""Values of :math:`\mathbf{A}\mathbf{B}^{\top}` on a CSR pattern; ``b.t()`` is exactly
    the column-major operand the kernel wants, so no copy is made."""
    pattern = _csr(crow, col, a.new_zeros(col.numel()), size)
    return torch.sparse.sampled_addmm(pattern, a, b.t(), beta=0.0).values()


class CSRSampledDot(torch.autograd.Function):
    r"""Computes the edge values :math:`s_{(j,i),h} = \mathbf{q}_{i,h}^{\top}\mathbf{k}_{j,h}`
    on a CSR pattern (rows = targets :math:`i`, columns = sources :math:`j`) with one sampled
    dense-dense product (SDDMM) over all heads (:func:`head_pattern`).

    Backward is two sparse products with the gradient as edge values, so no :math:`[E, C]`
    tensor of gathered queries or keys is ever materialised.
    """
    @staticmethod
    def forward(ctx, q: Tensor, k: Tensor, crow: Tensor, col: Tensor) -> Tensor:
        num_dst, heads, channels = q.shape
        num_src = k.size(0)
        crow_h, col_h, order = head_pattern(crow, col, heads)
        q_h, k_h = q.reshape(-1, channels), k.reshape(-1, channels)
        values = _sddmm(crow_h, col_h, q_h, k_h, (num_dst * heads, num_src * heads))
        ctx.save_for_backward(q_h, k_h, crow_h, col_h, order)
        ctx.shape = (num_dst, num_src, heads)
        return _from_pattern(values, order, heads)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        q_h, k_h, crow_h, col_h, order = ctx.saved_tensors
        num_dst, num_src, heads = ctx.shape
        grad = _to_pattern(grad_out, order)
        grad_q = grad_k = None
        if ctx.needs_input_grad[0]:
            adj = _csr(crow_h, col_h, grad, (num_dst * heads, num_src * heads))
            grad_q = torch.sparse.mm(adj, k_h).view(num_dst, heads, -1)
        if ctx.needs_input_grad[1]:
            crow_t, col_t, perm = transpose_csr(crow_h, col_h, num_src * heads)
            adj_t = _csr(crow_t, col_t, grad[perm], (num_src * heads, num_dst * heads))
            grad_k = torch.sparse.mm(adj_t, q_h).view(num_src, heads, -1)
        return grad_q, grad_k, None, None


def csr_sampled_dot(q: Tensor, k: Tensor, crow: Tensor, col: Tensor) -> Tensor:
    r"""The per-head dot products of ``q`` [N_dst, H, C] and ``k`` [N_src, H, C] on the edges
    of a CSR pattern, shape [E, H]."""
    return CSRSampledDot.apply(q, k, crow, col)


class CSRWeightedAggregate(torch.autograd.Function):
    r"""Computes :math:`\mathbf{out}_{i,h} = \sum_{j} \alpha_{(j,i),h} \mathbf{x}_{j,h}` for a
    CSR pattern (rows = targets) with one sparse matrix product over all heads
    (:func:`head_pattern`), so the node-major ``[N, H, C]`` features are used in place.

    Backward uses the transposed product for :math:`\mathbf{x}` and a sampled dense-dense
    product (SDDMM) for :math:`\alpha`, so no :math:`[E, C]` message tensor is ever
    materialised.
    """
    @staticmethod
    def forward(ctx, alpha: Tensor, x: Tensor, crow: Tensor, col: Tensor,
                num_dst: int) -> Tensor:
        num_src, heads, channels = x.shape
        crow_h, col_h, order = head_pattern(crow, col, heads)
        x_h = x.reshape(-1, channels)
        values = _to_pattern(alpha, order)
        adj = _csr(crow_h, col_h, values, (num_dst * heads, num_src * heads))
        out = torch.sparse.mm(adj, x_h).view(num_dst, heads, channels)
        ctx.save_for_backward(values, x_h, crow_h, col_h, order)
        ctx.shape = (num_dst, num_src, heads)
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        values, x_h, crow_h, col_h, order = ctx.saved_tensors
        num_dst, num_src, heads = ctx.shape
        channels = x_h.size(1)
        grad_h = grad_out.reshape(-1, channels)
        grad_alpha = grad_x = None
        if ctx.needs_input_grad[0]:
            sampled = _sddmm(crow_h, col_h, grad_h, x_h, (num_dst * heads, num_src * heads))
            grad_alpha = _from_pattern(sampled, order, heads)
        if ctx.needs_input_grad[1]:
            crow_t, col_t, perm = transpose_csr(crow_h, col_h, num_src * heads)
            adj_t = _csr(crow_t, col_t, values[perm], (num_src * heads, num_dst * heads))
            grad_x = torch.sparse.mm(adj_t, grad_h).view(num_src, heads, channels)
        return grad_alpha, grad_x, None, None, None


def csr_weighted_aggregate(alpha: Tensor, x: Tensor, crow: Tensor, col: Tensor,
                           num_dst: int) -> Tensor:
    r"""Aggregates ``x`` [N_src, H, C] along a CSR pattern weighted by ``alpha`` [E, H]."""
    return CSRWeightedAggregate.apply(alpha, x, crow, col, num_dst)


_BITS = 16
_LEVELS = 1 << _BITS


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    r"""Dropout, as :func:`torch.nn.functional.dropout`, with a cheaper random mask on the CPU.

    Torch's CPU dropout draws one random float per element, which on a small CPU costs as
    much as a matrix product of the same tensor (14 ms for a :math:`731 \times 1024` tensor
    against 6.7 ms for the :math:`731 \times 512 \times 1024` product of the layer that
    follows). Here each 64-bit draw of torch's generator gives the 16-bit uniforms of four
    elements, which is ~3x faster. The drop probability is rounded to a multiple of
    :math:`2^{-16}` and the kept elements are scaled by the exact inverse of the resulting keep
    probability, so the output is unbiased. Seeding (:func:`torch.manual_seed`) makes it
    deterministic. On CUDA, and for tensors that are not floating point, it falls back to
    :func:`torch.nn.functional.dropout`, whose GPU kernel is already fused.

    Args:
        x (torch.Tensor): The input.
        p (float, optional): Probability of an element to be zeroed. (default: :obj:`0.5`)
        training (bool, optional): Apply dropout only if :obj:`True`. (default: :obj:`True`)
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, got {p}")
    if not training or p == 0.0:
        return x
    if x.device.type != 'cpu' or not x.is_floating_point() or p == 1.0:
        return F.dropout(x, p, training)
    dropped_levels = round(p * _LEVELS)
    if dropped_levels == 0:
        return x
    if dropped_levels == _LEVELS:
        return x * 0.0
    n = x.numel()
    # randint over the full signed range: every 16-bit lane of a draw is uniform (random_()
    # would leave the sign bit of each 64-bit draw at 0 and bias the top lane).
    bits = torch.randint(-2**63, 2**63 - 1, ((n + 3) // 4, ), dtype=torch.int64,
                         device=x.device).view(torch.int16)[:n].view(x.shape)
    keep = bits >= dropped_levels - _LEVELS // 2
    return _MaskedScale.apply(x, keep, _LEVELS / (_LEVELS - dropped_levels))


class _MaskedScale(torch.autograd.Function):
    # Saves the mask as bytes for backward: a quarter of what x * float_mask would keep.
    @staticmethod
    def forward(ctx, x: Tensor, keep: Tensor, scale: float) -> Tensor:
        ctx.save_for_backward(keep)
        ctx.scale = scale
        return (x * keep).mul_(scale)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        keep, = ctx.saved_tensors
        return (grad_out * keep).mul_(ctx.scale), None, None
