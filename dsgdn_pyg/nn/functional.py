"""Sparse kernels shared by the attention layers."""
import warnings
from typing import Tuple

import torch
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


class CSRWeightedAggregate(torch.autograd.Function):
    r"""Computes :math:`\mathbf{out}_{i,h} = \sum_{j} \alpha_{(j,i),h} \mathbf{x}_{j,h}` for a CSR
    pattern (rows = targets) with one matrix product per head.

    Backward uses the transposed product for :math:`\mathbf{x}` and a sampled dense-dense product
    (SDDMM) for :math:`\alpha`, so no :math:`[E, C]` message tensor is ever materialised.
    """
    @staticmethod
    def forward(ctx, alpha: Tensor, x: Tensor, crow: Tensor, col: Tensor,
                num_dst: int) -> Tensor:
        num_src, heads, channels = x.shape
        out = x.new_empty(num_dst, heads, channels)
        for h in range(heads):
            adj = _csr(crow, col, alpha[:, h].contiguous(), (num_dst, num_src))
            out[:, h] = torch.sparse.mm(adj, x[:, h].contiguous())
        ctx.save_for_backward(alpha, x, crow, col)
        ctx.num_dst = num_dst
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        alpha, x, crow, col = ctx.saved_tensors
        num_dst = ctx.num_dst
        num_src, heads, _ = x.shape
        grad_alpha = grad_x = None
        if ctx.needs_input_grad[0]:
            grad_alpha = torch.empty_like(alpha)
            pattern = _csr(crow, col, alpha.new_zeros(alpha.size(0)), (num_dst, num_src))
            for h in range(heads):
                sampled = torch.sparse.sampled_addmm(pattern, grad_out[:, h].contiguous(),
                                                     x[:, h].t().contiguous(), beta=0.0)
                grad_alpha[:, h] = sampled.values()
        if ctx.needs_input_grad[1]:
            crow_t, col_t, perm = transpose_csr(crow, col, num_src)
            grad_x = torch.empty_like(x)
            for h in range(heads):
                adj_t = _csr(crow_t, col_t, alpha[perm, h].contiguous(), (num_src, num_dst))
                grad_x[:, h] = torch.sparse.mm(adj_t, grad_out[:, h].contiguous())
        return grad_alpha, grad_x, None, None, None


def csr_weighted_aggregate(alpha: Tensor, x: Tensor, crow: Tensor, col: Tensor,
                           num_dst: int) -> Tensor:
    r"""Aggregates ``x`` [N_src, H, C] along a CSR pattern weighted by ``alpha`` [E, H]."""
    return CSRWeightedAggregate.apply(alpha, x, crow, col, num_dst)
