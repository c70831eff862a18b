import pytest
import torch

from dsgdn_pyg.nn.functional import csr_sampled_dot, csr_weighted_aggregate
from dsgdn_pyg.nn.functional import fast_dropout as dropout
from dsgdn_pyg.nn.functional import head_pattern, pattern_cache


def random_csr(seed, num_dst, num_src, density=0.3):
    gen = torch.Generator().manual_seed(seed)
    dense = torch.rand(num_dst, num_src, generator=gen) < density
    dense[0, 0] = True
    row, col = dense.nonzero(as_tuple=True)
    crow = torch.zeros(num_dst + 1, dtype=torch.long)
    crow[1:] = torch.bincount(row, minlength=num_dst).cumsum(0)
    return crow, col, row


# The test's own CSR tensor (the reference) would warn that torch's CSR support is in beta.
@pytest.mark.filterwarnings('ignore:Sparse CSR tensor support is in beta:UserWarning')
@pytest.mark.parametrize('heads', [1, 2, 5])
def test_head_pattern_interleaves_heads(heads):
    crow, col, row = random_csr(0, 7, 5)
    crow_h, col_h, order = head_pattern(crow, col, heads)
    values = torch.randn(col.numel(), heads)
    flat = values.reshape(-1) if order is None else values.reshape(-1)[order]
    big = torch.sparse_csr_tensor(crow_h, col_h, flat, (7 * heads, 5 * heads),
                                  check_invariants=True).to_dense()
    expected = torch.zeros(7 * heads, 5 * heads)
    for e in range(col.numel()):
        for h in range(heads):
            expected[row[e] * heads + h, col[e] * heads + h] = values[e, h]
    assert torch.equal(big, expected)


@pytest.mark.parametrize('heads', [1, 3])
def test_sampled_dot_and_aggregate_match_gather_reference(heads, device):
    crow, col, row = (t.to(device) for t in random_csr(1, 9, 6))
    gen = torch.Generator().manual_seed(2)

    def randn(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float64).to(device) \
            .requires_grad_()

    q, k, alpha = randn(9, heads, 4), randn(6, heads, 4), randn(col.numel(), heads)

    score = csr_sampled_dot(q, k, crow, col)
    out = csr_weighted_aggregate(alpha, k, crow, col, 9)
    ref_score = (q[row] * k[col]).sum(-1)
    ref_out = torch.zeros(9, heads, 4, dtype=torch.float64, device=device).index_add(
        0, row, alpha.unsqueeze(-1) * k[col])
    torch.testing.assert_close(score, ref_score)
    torch.testing.assert_close(out, ref_out)

    weight = torch.randn(out.shape, generator=gen, dtype=torch.float64).to(device)
    loss = (out * weight).sum() + score.square().sum()
    ref_loss = (ref_out * weight).sum() + ref_score.square().sum()
    grads = torch.autograd.grad(loss, (q, k, alpha))
    ref_grads = torch.autograd.grad(ref_loss, (q, k, alpha))
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r)
    assert torch.autograd.gradcheck(lambda a, b: csr_sampled_dot(a, b, crow, col),
                                    (q, k))
    assert torch.autograd.gradcheck(lambda a, b: csr_weighted_aggregate(a, b, crow, col, 9),
                                    (alpha, k))


@pytest.mark.parametrize('p', [0.1, 0.5, 0.83])
def test_dropout_is_unbiased_with_the_requested_rate(p):
    torch.manual_seed(0)
    x = torch.ones(400_000, requires_grad=True)
    y = dropout(x, p)
    dropped = (y == 0).double().mean().item()
    # Binomial standard error at n = 4e5 is below 8e-4.
    assert abs(dropped - p) < 4e-3
    assert abs(y.mean().item() - 1.0) < 1e-2
    kept = y[y != 0]
    torch.testing.assert_close(kept, torch.full_like(kept, kept[0].item()))
    y.sum().backward()
    # The gradient is the mask times the scale: zero exactly where the output is.
    assert torch.equal(x.grad == 0, y == 0)


@pytest.mark.parametrize('p,lanes', [(0.5, 8), (0.3, 4)])
def test_dropout_lanes_are_independent(p, lanes):
    # Eight (p a multiple of 1/256) or four elements share one 64-bit draw; each lane must
    # still be dropped at rate p.
    torch.manual_seed(1)
    y = dropout(torch.ones(800_000), p).view(-1, lanes)
    rates = (y == 0).double().mean(0)
    assert (rates - p).abs().max() < 6e-3


@pytest.mark.parametrize('p,scale', [(0.25, 256 / 192), (0.1, 65536 / (65536 - 6554))])
@pytest.mark.parametrize('dtype', [torch.float64, torch.bfloat16])
def test_dropout_scales_by_the_inverse_of_the_rounded_keep_rate(p, scale, dtype):
    torch.manual_seed(2)
    x = torch.ones(10_000, dtype=dtype)
    y = dropout(x, p)
    assert y.dtype == dtype
    assert set(y.unique().tolist()) == {0.0, torch.tensor(scale, dtype=dtype).item()}


def test_dropout_is_seeded_and_identity_in_eval():
    x = torch.randn(1000)
    torch.manual_seed(3)
    a = dropout(x, 0.3)
    torch.manual_seed(3)
    b = dropout(x, 0.3)
    assert torch.equal(a, b)
    assert dropout(x, 0.3, training=False) is x
    assert dropout(x, 0.0) is x
    assert torch.equal(dropout(x, 1.0), torch.zeros_like(x))
    with pytest.raises(ValueError, match='between 0 and 1'):
        dropout(x, 1.5)


@pytest.mark.parametrize('numel', [1000, 1_200_000])  # float mask saved / recomputed
@pytest.mark.parametrize('p', [0.5, 0.3])
def test_dropout_backward_is_the_forward_mask(numel, p):
    torch.manual_seed(4)
    x = torch.randn(numel, dtype=torch.float64, requires_grad=True)
    y = dropout(x, p)
    y.backward(torch.ones_like(y))
    kept = x.grad != 0
    assert 0 < kept.double().mean().item() < 1
    torch.testing.assert_close(y, x.detach() * x.grad, rtol=0, atol=0)
    assert torch.equal(y != 0, kept)


@pytest.mark.parametrize('heads', [1, 3])
def test_kernels_keep_what_they_derive_in_the_patterns_given(heads, device):
    # The same values and gradients with a patterns dictionary, filled on the first call and
    # used as it is by the next (its entries are not rebuilt).
    crow, col, _ = random_csr(8, 6, 5)
    crow, col = crow.to(device), col.to(device)
    q = torch.randn(6, heads, 4, dtype=torch.float64, device=device, requires_grad=True)
    k = torch.randn(5, heads, 4, dtype=torch.float64, device=device, requires_grad=True)

    def run(patterns):
        score = csr_sampled_dot(q, k, crow, col, patterns)
        out = csr_weighted_aggregate(score.tanh(), k, crow, col, 6, patterns)
        return [out] + list(torch.autograd.grad(out.square().sum(), [q, k]))

    expected = run(None)
    patterns = {}
    for got in run(patterns), run(patterns):
        for a, b in zip(got, expected):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    kept = dict(patterns)
    assert ('transpose', 6 * heads, 5 * heads) in kept
    assert (('heads', heads) in kept) == (heads > 1)
    run(patterns)
    assert all(patterns[key] is value for key, value in kept.items())


def test_pattern_cache_keeps_nothing_in_inference_mode():
    patterns = {}
    with torch.inference_mode():
        a = pattern_cache(patterns, 'key', lambda: (torch.ones(1), ))
    assert not patterns
    b = pattern_cache(patterns, 'key', lambda: (torch.ones(1), ))
    assert a is not b and pattern_cache(patterns, 'key', lambda: (torch.zeros(1), )) is b


def test_csr_kernels_follow_an_edited_pattern(device):
    # A pattern edited in place must not reuse the head pattern or transpose of its old state.
    torch.manual_seed(5)
    crow = torch.tensor([0, 2, 3, 5], device=device)
    col = torch.tensor([0, 2, 1, 0, 1], device=device)
    x = torch.randn(3, 2, 4).to(device).requires_grad_()
    alpha = torch.rand(5, 2).to(device)
    csr_weighted_aggregate(alpha, x, crow, col, 3).sum().backward()
    col[3] = 2
    x.grad = None
    out = csr_weighted_aggregate(alpha, x, crow, col, 3)
    out.backward(torch.ones_like(out))
    expected = torch.zeros(3, 2, 4, device=device)
    row = torch.tensor([0, 0, 1, 2, 2], device=device)
    expected.index_add_(0, row, alpha.unsqueeze(-1) * x.detach()[col])
    torch.testing.assert_close(out, expected)
    grad = torch.zeros(3, 2, device=device).index_add_(0, col, alpha)
    torch.testing.assert_close(x.grad, grad.unsqueeze(-1).expand(3, 2, 4))


def test_csr_kernels_under_autocast(device):
    # Autocast would hand the sparse kernels half-precision operands mixed with float32 ones
    # (the CPU kernels implement no bfloat16 at all); they compute in float32 instead, on the
    # operands' values. The trainer's AMP is bfloat16 on recent GPUs, float16 on older ones.
    half = torch.bfloat16 if device.type == 'cpu' else torch.float16
    crow, col, _ = (t.to(device) for t in random_csr(7, 6, 5))
    q = torch.randn(6, 2, 4).to(device)
    k = torch.randn(5, 2, 4).to(device).requires_grad_()
    alpha = torch.rand(col.numel(), 2).to(device)
    with torch.autocast(device.type, dtype=half):
        out = csr_weighted_aggregate(alpha, k.to(half), crow, col, 6)
        score = csr_sampled_dot(q.to(half), k, crow, col)
    assert out.dtype == score.dtype == torch.float32
    torch.testing.assert_close(out, csr_weighted_aggregate(alpha, k.to(half).float(),
                                                           crow, col, 6))
    torch.testing.assert_close(score, csr_sampled_dot(q.to(half).float(), k.detach(),
                                                      crow, col))
    out.sum().backward()
    assert k.grad is not None and k.grad.dtype == torch.float32
    # Both operands in half precision, as the windowed encoder's projections come out of
    # autocast (CUDA's sampled_addmm has no Half kernel: this crashed with --amp).
    with torch.autocast(device.type, dtype=half):
        both = csr_sampled_dot(q.to(half), k.detach().to(half), crow, col)
    assert both.dtype == torch.float32
    torch.testing.assert_close(both, csr_sampled_dot(q.to(half).float(),
                                                     k.detach().to(half).float(), crow, col))


def test_the_package_csr_use_prints_no_torch_warning_and_leaves_the_users_visible():
    # In a fresh process: torch warns once per process, on the first CSR tensor. A forward and
    # backward pass of the sparse layer (its CSR kernels both ways) must not show torch's
    # "in beta" or invariant-check warnings; the user's own warning, and the warning filters,
    # are untouched.
    import subprocess
    import sys
    import textwrap
    script = textwrap.dedent('''
        import warnings
        import torch
        from dsgdn_pyg.nn import DiffGATConv
        warnings.simplefilter('always')
        filters = list(warnings.filters)
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter('always')
            conv = DiffGATConv(4, 6, heads=2, num_relations=2)
            x = torch.randn(5, 4, requires_grad=True)
            edge_index = torch.tensor([[0, 1, 2, 3, 4, 0], [1, 2, 3, 4, 0, 0]])
            conv(x, edge_index, torch.tensor([0, 1, 0, 1, 0, 1])).sum().backward()
            warnings.warn('the user speaks', UserWarning)
        assert warnings.filters == filters, 'a process-wide filter was left behind'
        print([str(w.message)[:40] for w in seen])
    ''')
    out = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['the user speaks']", out.stdout + out.stderr


def test_segment_softmax_matches_pyg_and_its_scatter_form(device):
    # segment_softmax is PyG's softmax with ptr, computed so that nothing is read back: the
    # same values here (PyG 2.8.1's arithmetic; bit for bit on this CPU, float32 rounding
    # elsewhere), and its GPU form by scatters over each row's segment agrees to float32
    # rounding, empty segments and gradients included.
    from torch_geometric.utils import softmax

    from dsgdn_pyg.nn.functional import _scatter_softmax, segment_softmax

    torch.manual_seed(0)
    ptr = torch.tensor([0, 3, 3, 7, 8, 20], device=device)
    index = torch.repeat_interleave(torch.arange(5, device=device), ptr.diff())
    for shape in [(20, ), (20, 2, 2)]:
        x = torch.randn(*shape, device=device, requires_grad=True)
        weight = torch.randn(shape, device=device)
        expected = softmax(x, index, ptr=ptr)
        expected_grad, = torch.autograd.grad((expected * weight).sum(), x)
        for got in (segment_softmax(x, ptr), segment_softmax(x, ptr, index),
                    _scatter_softmax(x, index, 5)):
            torch.testing.assert_close(got, expected)
            grad, = torch.autograd.grad((got * weight).sum(), x)
            torch.testing.assert_close(grad, expected_grad)
