import pytest
import torch

from dsgdn_pyg.nn.functional import (csr_sampled_dot, csr_weighted_aggregate, dropout,
                                     head_pattern)


def random_csr(seed, num_dst, num_src, density=0.3):
    gen = torch.Generator().manual_seed(seed)
    dense = torch.rand(num_dst, num_src, generator=gen) < density
    dense[0, 0] = True
    row, col = dense.nonzero(as_tuple=True)
    crow = torch.zeros(num_dst + 1, dtype=torch.long)
    crow[1:] = torch.bincount(row, minlength=num_dst).cumsum(0)
    return crow, col, row


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
def test_sampled_dot_and_aggregate_match_gather_reference(heads):
    crow, col, row = random_csr(1, 9, 6)
    gen = torch.Generator().manual_seed(2)
    q = torch.randn(9, heads, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    k = torch.randn(6, heads, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    alpha = torch.randn(col.numel(), heads, generator=gen, dtype=torch.float64,
                        requires_grad=True)

    score = csr_sampled_dot(q, k, crow, col)
    out = csr_weighted_aggregate(alpha, k, crow, col, 9)
    ref_score = (q[row] * k[col]).sum(-1)
    ref_out = torch.zeros(9, heads, 4, dtype=torch.float64).index_add(
        0, row, alpha.unsqueeze(-1) * k[col])
    torch.testing.assert_close(score, ref_score)
    torch.testing.assert_close(out, ref_out)

    weight = torch.randn(out.shape, generator=gen, dtype=torch.float64)
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


def test_dropout_lanes_are_independent():
    # Four elements share one 64-bit draw; each lane must still be dropped at rate p.
    torch.manual_seed(1)
    y = dropout(torch.ones(800_000), 0.5).view(-1, 4)
    rates = (y == 0).double().mean(0)
    assert (rates - 0.5).abs().max() < 5e-3


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
