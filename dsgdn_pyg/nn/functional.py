"""Sparse kernels shared by the attention layers, and a cheaper dropout for the CPU.

Nothing here keeps state between calls. The index structures derived from one CSR pattern
(per-head patterns, transposes) are remembered only in the :obj:`patterns` dictionary a caller
passes in (see :func:`pattern_cache`), so whoever owns the graph decides how long they live.
"""
import contextlib
import functools
import warnings
from typing import Callable, Dict, Hashable, Optional, Sequence, Tuple, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor

T = TypeVar('T')
# Index structures derived from one CSR pattern, keyed by what was derived.
Patterns = Dict[Hashable, Tuple[Tensor, ...]]


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


def csr_tensor(crow: Tensor, col: Tensor, values: Tensor, size: Tuple[int, int]) -> Tensor:
    r"""A sparse CSR tensor of a pattern this package built (sorted, in range), for its own
    kernels; invariants unchecked (the package guarantees them; checking costs a pass)."""
    if torch.compiler.is_compiling():  # warnings do not reach a user from a traced graph
        return torch.sparse_csr_tensor(crow, col, values, size, check_invariants=False)
    # torch warns on the first CSR tensor of a process that its CSR support "is in beta", and
    # some releases (2.11) warn that invariant checks are "implicitly disabled" even when
    # check_invariants=False says so explicitly: alarms about nothing the user did, as the
    # tensor never leaves the package. Silenced here, around the creation only (no
    # process-wide flag or filter is changed): warnings from the user's own code stay visible.
    with warnings.catch_warnings():
        for message in _CSR_NOISE:
            warnings.filterwarnings('ignore', message=message, category=UserWarning)
        return torch.sparse_csr_tensor(crow, col, values, size, check_invariants=False)


_CSR_NOISE = ('Sparse CSR tensor support is in beta', 'Sparse invariant checks are implicitly')


def segment_softmax(src: Tensor, ptr: Tensor, index: Optional[Tensor] = None) -> Tensor:
    r"""The softmax of :obj:`src` ``[E, ...]`` over each segment ``ptr[i]:ptr[i + 1]`` of its
    first dimension (the edges of each target, sorted by target; :obj:`index` ``[E]``: their
    segment), computed as PyG's :func:`~torch_geometric.utils.softmax` computes it with
    :obj:`ptr` (and neither pyg-lib nor torch-scatter), but with no host synchronisation on any
    PyG release: the expansions are given their output size (PyG 2.8.0's were not, a GPU
    sync per call). Given :obj:`index`, the expansions gather by it (the same values, one
    operation instead of two), and on a GPU the reductions are scatters over it, which are
    sure never to read anything back (the sums then add in another order)."""
    if index is not None and src.is_cuda:
        return _scatter_softmax(src, index, ptr.numel() - 1)

    def reduce(t: Tensor, how: str) -> Tensor:
        return torch._segment_reduce(t, how, offsets=ptr)

    def expand(t: Tensor) -> Tensor:
        if index is not None:
            return t.index_select(0, index)
        return t.repeat_interleave(ptr.diff(), dim=0, output_size=src.size(0))
    return _softmax(src, reduce, expand)


def _scatter_softmax(src: Tensor, index: Tensor, num_segments: int) -> Tensor:
    # segment_softmax by scatters over the segment of each row.
    shape = (num_segments, ) + tuple(src.shape[1:])
    expanded = index.view(-1, *([1] * (src.dim() - 1))).expand_as(src)

    def reduce(t: Tensor, how: str) -> Tensor:
        if how == 'sum':
            return t.new_zeros(shape).index_add_(0, index, t)
        return t.new_full(shape, float('-inf')).scatter_reduce_(0, expanded, t, reduce=how)

    def expand(t: Tensor) -> Tensor:
        return t.index_select(0, index)
    return _softmax(src, reduce, expand)


def _softmax(src: Tensor, reduce: Callable[[Tensor, str], Tensor],
             expand: Callable[[Tensor], Tensor]) -> Tensor:
    # The arithmetic of PyG's segment softmax, over segments that reduce() and expand() know.
    src_max = reduce(src.detach(), 'amax')
    src_max = torch.where(src_max.isinf(), 0, src_max)  # an empty segment's -inf
    out = (src - expand(src_max)).exp()
    return out / expand(reduce(out, 'sum') + 1e-16)


def pattern_cache(patterns: Optional[Patterns], key: Hashable,
                  compute: Callable[[], Tuple[Tensor, ...]]) -> Tuple[Tensor, ...]:
    r"""Returns :obj:`patterns[key]`, computed by :obj:`compute()` and stored there the first
    time; without a dictionary (:obj:`None`), just :obj:`compute()`.

    Nothing is stored while compiling or in inference mode: tensors made in inference mode
    could not be saved for backward by a later training step that finds them.
    """
    if patterns is None or torch.is_inference_mode_enabled() or \
            torch.compiler.is_compiling():
        return compute()
    value = patterns.get(key)
    if value is None:
        value = patterns[key] = compute()
    return value


def transpose_csr(crow: Tensor, col: Tensor, num_cols: int,
                  patterns: Optional[Patterns] = None) -> Tuple[Tensor, Tensor, Tensor]:
    """Returns ``(crow_t, col_t, perm)`` of the transposed pattern; ``perm`` maps its entries.
    Kept in :obj:`patterns` (under the number of rows of the pattern) if given."""
    return pattern_cache(patterns, ('transpose', crow.numel() - 1, num_cols),
                         lambda: _transpose_csr(crow, col, num_cols))


def _transpose_csr(crow: Tensor, col: Tensor, num_cols: int) -> Tuple[Tensor, Tensor, Tensor]:
    num_rows = crow.numel() - 1
    row = torch.repeat_interleave(torch.arange(num_rows, device=crow.device), crow.diff(),
                                  output_size=col.numel())
    perm = torch.sort(col, stable=True).indices
    # Not bincount: on a GPU it reads the largest column back to size its output (a sync).
    counts = torch.zeros(num_cols, dtype=col.dtype, device=col.device).scatter_add_(
        0, col, torch.ones_like(col))
    crow_t = torch.zeros(num_cols + 1, dtype=crow.dtype, device=crow.device)
    crow_t[1:] = counts.cumsum(0)
    return crow_t, row[perm], perm


def head_pattern(crow: Tensor, col: Tensor, heads: int,
                 patterns: Optional[Patterns] = None) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
    r"""The CSR pattern of :obj:`heads` copies of a pattern, one per head, interleaved so
    that node-major features ``x`` of shape ``[N, H, C]`` are its operand as the plain view
    ``[N * H, C]``: entry ``(i, j)`` of head ``h`` becomes ``(i * H + h, j * H + h)``.

    Returns ``(crow_h, col_h, order)``; ``order`` gathers edge values stored as ``[E, H]``
    (flattened) into the entry order of the new pattern (``None`` for one head). Kept in
    :obj:`patterns` if given.
    """
    if heads == 1:
        return crow, col, None
    return pattern_cache(patterns, ('heads', heads), lambda: _head_pattern(crow, col, heads))


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
    pattern = csr_tensor(crow, col, a.new_zeros(col.numel()), size)
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
    def forward(ctx, q: Tensor, k: Tensor, crow: Tensor, col: Tensor,
                patterns: Optional[Patterns]) -> Tensor:
        num_dst, heads, channels = q.shape
        num_src = k.size(0)
        crow_h, col_h, order = head_pattern(crow, col, heads, patterns)
        q_h, k_h = q.reshape(-1, channels), k.reshape(-1, channels)
        values = _sddmm(crow_h, col_h, q_h, k_h, (num_dst * heads, num_src * heads))
        ctx.save_for_backward(q_h, k_h, crow_h, col_h, order)
        ctx.shape = (num_dst, num_src, heads)
        ctx.patterns = patterns
        return _from_pattern(values, order, heads)

    @staticmethod
    @_autocast_off
    def backward(ctx, grad_out: Tensor):
        q_h, k_h, crow_h, col_h, order = ctx.saved_tensors
        num_dst, num_src, heads = ctx.shape
        grad = _to_pattern(grad_out, order)
        grad_q = grad_k = None
        if ctx.needs_input_grad[0]:
            adj = csr_tensor(crow_h, col_h, grad, (num_dst * heads, num_src * heads))
            grad_q = torch.sparse.mm(adj, k_h).view(num_dst, heads, -1)
        if ctx.needs_input_grad[1]:
            crow_t, col_t, perm = transpose_csr(crow_h, col_h, num_src * heads, ctx.patterns)
            adj_t = csr_tensor(crow_t, col_t, grad[perm], (num_src * heads, num_dst * heads))
            grad_k = torch.sparse.mm(adj_t, q_h).view(num_src, heads, -1)
        return grad_q, grad_k, None, None, None


def _sparse_operands(*tensors: Tensor) -> Tuple[Tensor, ...]:
    # Under autocast the operands arrive in half precision or mixed dtypes, and the sparse
    # kernels have no half-precision versions on either device (MKL on the CPU; CUDA's
    # sampled_addmm raises "not implemented for 'Half'"): compute in their common type,
    # float32 at least. What these kernels read and write is O(edges), not O(N * F^2): the
    # matrix products around them keep their half precision.
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    if dtype in (torch.float16, torch.bfloat16):
        dtype = torch.float32
    return tuple(t.to(dtype) for t in tensors)


def csr_sampled_dot(q: Tensor, k: Tensor, crow: Tensor, col: Tensor,
                    patterns: Optional[Patterns] = None) -> Tensor:
    r"""The per-head dot products of ``q`` [N_dst, H, C] and ``k`` [N_src, H, C] on the edges
    of a CSR pattern, shape [E, H]. :obj:`patterns` keeps what is derived from the pattern
    for the next call on it (:func:`pattern_cache`)."""
    q, k = _sparse_operands(q, k)
    return CSRSampledDot.apply(q, k, crow, col, patterns)


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
    def forward(ctx, alpha: Tensor, x: Tensor, crow: Tensor, col: Tensor, num_dst: int,
                patterns: Optional[Patterns]) -> Tensor:
        num_src, heads, channels = x.shape
        crow_h, col_h, order = head_pattern(crow, col, heads, patterns)
        x_h = x.reshape(-1, channels)
        values = _to_pattern(alpha, order)
        adj = csr_tensor(crow_h, col_h, values, (num_dst * heads, num_src * heads))
        out = torch.sparse.mm(adj, x_h).view(num_dst, heads, channels)
        ctx.save_for_backward(values, x_h, crow_h, col_h, order)
        ctx.shape = (num_dst, num_src, heads)
        ctx.patterns = patterns
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
            crow_t, col_t, perm = transpose_csr(crow_h, col_h, num_src * heads, ctx.patterns)
            adj_t = csr_tensor(crow_t, col_t, values[perm], (num_src * heads, num_dst * heads))
            grad_x = torch.sparse.mm(adj_t, grad_h).view(num_src, heads, channels)
        return grad_alpha, grad_x, None, None, None, None


def csr_weighted_aggregate(alpha: Tensor, x: Tensor, crow: Tensor, col: Tensor, num_dst: int,
                           patterns: Optional[Patterns] = None) -> Tensor:
    r"""Aggregates ``x`` [N_src, H, C] along a CSR pattern weighted by ``alpha`` [E, H].
    :obj:`patterns` keeps what is derived from the pattern for the next call on it
    (:func:`pattern_cache`)."""
    alpha, x = _sparse_operands(alpha, x)
    return CSRWeightedAggregate.apply(alpha, x, crow, col, num_dst, patterns)


def stack_parameters(parameters: Sequence[Tensor]) -> Tensor:
    r""":func:`torch.stack` of parameters of equal shapes, whose gradient reaches each
    parameter in its own (contiguous) layout. A stacked weight used transposed (the right
    operand of a batched product) gets a transposed gradient, and autograd would then copy
    each parameter's slice into the parameter's layout, two operations per parameter; here
    the stacked gradient is made contiguous once."""
    return _ContiguousGrad.apply(torch.stack(list(parameters)))


def stacked_linear(x: Tensor, layers: Sequence[torch.nn.Linear]) -> Tensor:
    r"""Each of :math:`M` linear layers of equal shapes on its own rows of :obj:`x`
    :math:`(M, N, F_{in})`, as one batched product: :math:`(M, N, F_{out})`."""
    weight = stack_parameters([layer.weight for layer in layers]).transpose(1, 2)
    if layers[0].bias is None:
        return torch.bmm(x, weight)
    return torch.baddbmm(torch.stack([layer.bias for layer in layers]).unsqueeze(1), x, weight)


class _ContiguousGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        return grad.contiguous()


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


def fast_dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    r"""The dropout fast path: dropout, as :func:`torch.nn.functional.dropout`, with a
    cheaper random mask on the CPU. The layers and models of this package use it wherever
    they drop activations or attention coefficients; it draws different random numbers than
    :func:`torch.nn.functional.dropout`, so the two are not interchangeable under one seed.

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
