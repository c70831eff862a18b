"""Sparse kernels shared by the attention layers."""
import contextlib
import functools
import warnings
import weakref
from typing import Any, Callable, Dict, Hashable, Optional, Tuple, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor

# torch marks CSR support as beta and warns on every construction; the kernels used here
# (spmm, sampled_addmm) are stable on CPU and CUDA, so the warning is noise for users.
warnings.filterwarnings('ignore', message='Sparse CSR tensor support is in beta')

T = TypeVar('T')


def _autocast_off(function):
    # autocast would cast the sparse operand of torch.sparse.mm (an ``mm``) to half precision;
    # the kernels run in the dtype their operands were given (see _sparse_operands).
    @functools.wraps(function)
    def wrapped(*args, **kwargs):
        with contextlib.ExitStack() as stack:
            for device_type in ('cpu', 'cuda'):
                if torch.is_autocast_enabled(device_type):
                    stack.enter_context(torch.autocast(device_type, enabled=False))
            return function(*args, **kwargs)
    return wrapped


def _csr(crow: Tensor, col: Tensor, values: Tensor, size: Tuple[int, int]) -> Tensor:
    return torch.sparse_csr_tensor(crow, col, values, size, check_invariants=False)


# (tag, id of each key tensor) -> (weak references to the keys, their versions, value)
_memo: Dict[Tuple[Hashable, ...], Tuple[Tuple[weakref.ref, ...], Tuple[int, ...], Any]] = {}


def memoized(keys: Tuple[Tensor, ...], tag: Hashable, compute: Callable[[], T]) -> T:
    r"""Returns :obj:`compute()`, remembered for as long as every tensor of :obj:`keys` is alive
    and unmodified (same object, same in-place version counter).

    The index structures derived from one :obj:`edge_index` (sort order, CSR offsets, per-head
    patterns, transposes) are then built once per batch instead of once in each of the layers
    that receive it. :obj:`compute` must not return, or hold a view of, a key tensor: the
    entry would keep it alive. Nothing is remembered while compiling, in inference mode or for
    inference tensors, whose results could not be saved for backward later.
    """
    if torch.is_inference_mode_enabled() or torch.compiler.is_compiling() or \
            any(t.is_inference() for t in keys):
        return compute()
    slot = (tag, ) + tuple(id(t) for t in keys)
    entry = _memo.get(slot)
    versions = tuple(t._version for t in keys)
    if entry is not None and entry[1] == versions and \
            all(ref() is t for ref, t in zip(entry[0], keys)):
        return entry[2]
    value = compute()

    def forget(_, slot=slot):
        _memo.pop(slot, None)

    _memo[slot] = (tuple(weakref.ref(t, forget) for t in keys), versions, value)
    return value


def clear_memoized() -> None:
    r"""Forgets everything :func:`memoized` remembers (benchmarks call it between steps, so
    that a batch seen before costs what a freshly collated one does)."""
    _memo.clear()


def transpose_csr(crow: Tensor, col: Tensor, num_cols: int) -> Tuple[Tensor, Tensor, Tensor]:
    """Returns ``(crow_t, col_t, perm)`` of the transposed pattern; ``perm`` maps its entries.
    Remembered per pattern (:func:`memoized`)."""
    return memoized((crow, col), ('transpose_csr', num_cols),
                    lambda: _transpose_csr(crow, col, num_cols))


def _transpose_csr(crow: Tensor, col: Tensor, num_cols: int) -> Tuple[Tensor, Tensor, Tensor]:
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
    (flattened) into the entry order of the new pattern (``None`` for one head). Remembered
    per pattern (:func:`memoized`).
    """
    if heads == 1:
        return crow, col, None
    return memoized((crow, col), ('head_pattern', heads),
                    lambda: _head_pattern(crow, col, heads))


def _head_pattern(crow: Tensor, col: Tensor, heads: int) -> Tuple[Tensor, Tensor, Tensor]:
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
    @_autocast_off
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
    @_autocast_off
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


def _sparse_operands(*tensors: Tensor) -> Tuple[Tensor, ...]:
    # Under autocast the operands arrive in mixed dtypes, and the CPU sparse kernels (MKL)
    # have no half-precision versions: compute in their common type, float32 at least on CPU.
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    if tensors[0].device.type == 'cpu' and dtype in (torch.float16, torch.bfloat16):
        dtype = torch.float32
    return tuple(t.to(dtype) for t in tensors)


def csr_sampled_dot(q: Tensor, k: Tensor, crow: Tensor, col: Tensor) -> Tensor:
    r"""The per-head dot products of ``q`` [N_dst, H, C] and ``k`` [N_src, H, C] on the edges
    of a CSR pattern, shape [E, H]."""
    q, k = _sparse_operands(q, k)
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
    @_autocast_off
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
    @_autocast_off
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
    alpha, x = _sparse_operands(alpha, x)
    return CSRWeightedAggregate.apply(alpha, x, crow, col, num_dst)


def _uniform_lanes(shape: torch.Size, bits: int, device: torch.device) -> Tensor:
    # randint over the full signed range: every lane of a 64-bit draw is uniform (random_()
    # would leave the sign bit of each draw at 0 and bias the top lane).
    n = shape.numel()
    lanes = 64 // bits
    draws = torch.randint(-2**63, 2**63 - 1, ((n + lanes - 1) // lanes, ), dtype=torch.int64,
                          device=device)
    return draws.view(torch.int8 if bits == 8 else torch.int16)[:n].view(shape)


def _keep_scale(lanes: Tensor, threshold: int, scale: float, dtype: torch.dtype) -> Tensor:
    # scale where lane >= threshold, else 0, in float arithmetic on the integer-valued lanes
    # (exact): comparisons that write bool masks, and products with them, are 3-4x slower
    # on the CPU than these float passes.
    # Lanes of 16 bits are not exact in half precision: form the mask in float32 there.
    exact = dtype if dtype in (torch.float32, torch.float64) else torch.float32
    return lanes.to(exact).sub_(threshold - 1).clamp_(0.0, 1.0).mul_(scale).to(dtype)


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    r"""Dropout, as :func:`torch.nn.functional.dropout`, with a cheaper random mask on the CPU.

    Torch's CPU dropout draws one random float per element, which on a small CPU can cost as
    much as the matrix product of the layer that follows (measured: ``benchmarks/README.md``,
    "Where the time goes"). Here each 64-bit draw of torch's generator gives the uniform 8-bit lanes of
    eight elements where :obj:`p` is a multiple of :math:`2^{-8}` (as 0.5 is), and otherwise
    the 16-bit lanes of four elements, to which :obj:`p` is rounded; the kept elements are
    scaled by the exact inverse of the resulting keep probability, so the output is unbiased.
    The mask is formed and applied in float arithmetic. Seeding (:func:`torch.manual_seed`)
    makes it deterministic. On CUDA, and for tensors that are not floating point, it falls
    back to :func:`torch.nn.functional.dropout`, whose GPU kernel is already fused.

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
    bits = 8 if float(p * 256).is_integer() else 16
    levels = 1 << bits
    dropped = round(p * levels)
    if dropped == 0:
        return x
    if dropped == levels:
        return x * 0.0
    lanes = _uniform_lanes(x.shape, bits, x.device)
    # Lanes are signed: the lowest `dropped` of the `levels` values are the dropped ones.
    return _MaskedScale.apply(x, lanes, dropped - levels // 2, levels / (levels - dropped))


# Above this many mask bytes (attention over long dialogues) backward keeps the random lanes,
# one byte per element, and recomputes the mask from them.
_SAVED_MASK_MAX_BYTES = 1 << 22


class _MaskedScale(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, lanes: Tensor, threshold: int, scale: float) -> Tensor:
        mask = _keep_scale(lanes, threshold, scale, x.dtype)
        # The float mask makes backward one pass; recomputing it costs four more.
        small = mask.numel() * mask.element_size() <= _SAVED_MASK_MAX_BYTES
        ctx.save_for_backward(mask if small else lanes)
        ctx.threshold, ctx.scale = threshold, scale
        return x * mask

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        saved, = ctx.saved_tensors
        mask = saved if saved.is_floating_point() else \
            _keep_scale(saved, ctx.threshold, ctx.scale, grad_out.dtype)
        return grad_out * mask, None, None, None
