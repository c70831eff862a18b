import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.utils.class_weight import compute_class_weight

from dsgdn_pyg.loss import inverse_frequency_weights, multimodal_loss


def make_inputs(seed, n=30, num_classes=5, modalities=('t', 'a', 'v')):
    g = torch.Generator().manual_seed(seed)
    fused = torch.randn(n, num_classes, generator=g, dtype=torch.float64, requires_grad=True)
    unimodal = {
        m: torch.randn(n, num_classes, generator=g, dtype=torch.float64, requires_grad=True)
        for m in modalities
    }
    y = torch.randint(0, num_classes, (n, ), generator=g)
    y[torch.rand(n, generator=g) < 0.2] = -1
    mask = torch.rand(n, generator=g) < 0.8
    return fused, unimodal, y, mask


def reference_ce(logits, y, keep, weight=None):
    rows = [i for i in range(len(y)) if keep[i] and y[i] >= 0]
    return F.cross_entropy(logits[rows], y[rows], weight=weight)


def test_matches_cross_entropy_on_filtered_rows():
    fused, unimodal, y, mask = make_inputs(0)
    total, parts = multimodal_loss(fused, unimodal, y, mask)
    expected_fusion = reference_ce(fused, y, mask)
    expected = expected_fusion.clone()
    for m, logits in unimodal.items():
        loss_m = reference_ce(logits, y, mask)
        assert torch.allclose(parts[m], loss_m)
        expected = expected + loss_m**2 / 10
    assert torch.allclose(parts['fusion'], expected_fusion)
    assert torch.allclose(total, expected)
    assert all(not p.requires_grad for p in parts.values())


def test_hand_written_formula():
    # One modality, two valid rows: L = mean(-log softmax), total = L_f + L_t^2 / 10.
    fused = torch.tensor([[2.0, 0.0], [0.0, 1.0], [5.0, -5.0]], dtype=torch.float64)
    text = torch.tensor([[0.0, 0.0], [1.0, 3.0], [0.0, 9.0]], dtype=torch.float64)
    y = torch.tensor([0, 1, -1])

    def nll(row, c):
        return -(row[c] - np.log(np.exp(row).sum()))

    fused_np, text_np = fused.numpy(), text.numpy()
    l_f = (nll(fused_np[0], 0) + nll(fused_np[1], 1)) / 2
    l_t = (nll(text_np[0], 0) + nll(text_np[1], 1)) / 2
    total, parts = multimodal_loss(fused, {'t': text}, y)
    assert abs(total.item() - (l_f + l_t * l_t / 10)) < 1e-12
    assert abs(parts['t'].item() - l_t) < 1e-12


def test_masked_entries_are_ignored():
    fused, unimodal, y, mask = make_inputs(1)
    total, _ = multimodal_loss(fused, unimodal, y, mask)
    # Scrambling the logits of excluded rows must not change anything.
    excluded = (~mask) | (y < 0)
    fused2 = torch.where(excluded[:, None], torch.full_like(fused, 50.0), fused)
    unimodal2 = {m: torch.where(excluded[:, None], -7.0 * torch.ones_like(u), u)
                 for m, u in unimodal.items()}
    total2, _ = multimodal_loss(fused2, unimodal2, y, mask)
    assert torch.allclose(total, total2)
    total.backward()
    assert torch.all(fused.grad[excluded] == 0)
    assert torch.any(fused.grad[~excluded] != 0)


def test_auxiliary_gradient_is_twice_weighted():
    fused, unimodal, y, mask = make_inputs(2)
    total, parts = multimodal_loss(fused, unimodal, y, mask)
    grads = torch.autograd.grad(total, list(unimodal.values()))
    for (m, logits), grad in zip(unimodal.items(), grads):
        loss_m = reference_ce(logits, y, mask)
        (grad_m, ) = torch.autograd.grad(loss_m, logits)
        assert torch.allclose(grad, 2 * loss_m.detach() / 10 * grad_m)
    # The fusion term gets the plain cross-entropy gradient.
    (grad_f, ) = torch.autograd.grad(multimodal_loss(fused, unimodal, y, mask)[0], fused)
    (expected, ) = torch.autograd.grad(reference_ce(fused, y, mask), fused)
    assert torch.allclose(grad_f, expected)


def test_all_masked_gives_zero_with_grad():
    fused, unimodal, y, _ = make_inputs(3)
    for kwargs in ({'mask': torch.zeros_like(y, dtype=torch.bool)}, {}):
        y_used = y if kwargs else torch.full_like(y, -1)
        total, parts = multimodal_loss(fused, unimodal, y_used, **kwargs)
        assert total.item() == 0.0 and total.grad_fn is not None
        assert all(p.item() == 0.0 for p in parts.values())
        total.backward()
        assert fused.grad is not None and torch.all(fused.grad == 0)
        fused.grad = None


def test_class_weights_match_torch():
    fused, unimodal, y, mask = make_inputs(4)
    weight = torch.tensor([0.5, 2.0, 1.0, 3.0, 0.25], dtype=torch.float64)
    total, parts = multimodal_loss(fused, unimodal, y, mask, class_weight=weight)
    expected = reference_ce(fused, y, mask, weight)
    assert torch.allclose(parts['fusion'], expected)
    for m, logits in unimodal.items():
        expected = expected + reference_ce(logits, y, mask, weight)**2 / 10
    assert torch.allclose(total, expected)


def test_no_unimodal_heads():
    fused, _, y, mask = make_inputs(5)
    total, parts = multimodal_loss(fused, {}, y, mask)
    assert torch.allclose(total, reference_ce(fused, y, mask))
    assert list(parts) == ['fusion']


def test_bad_input():
    fused, unimodal, y, mask = make_inputs(6)
    with pytest.raises(ValueError, match='fused'):
        multimodal_loss(fused[0], unimodal, y)
    with pytest.raises(ValueError, match="'y'"):
        multimodal_loss(fused, unimodal, y[:-1])
    with pytest.raises(ValueError, match="unimodal\\['t'\\]"):
        multimodal_loss(fused, {'t': unimodal['t'][:, :2]}, y)
    with pytest.raises(ValueError, match='mask'):
        multimodal_loss(fused, unimodal, y, mask[:-1])
    with pytest.raises(ValueError, match='class_weight'):
        multimodal_loss(fused, unimodal, y, class_weight=torch.ones(3))
    with pytest.raises(ValueError, match='fusion'):
        multimodal_loss(fused, {'fusion': fused}, y)


def test_inverse_frequency_weights_match_sklearn_balanced():
    rng = np.random.default_rng(0)
    for _ in range(20):
        num_classes = int(rng.integers(2, 8))
        y = rng.choice(num_classes, 100, p=rng.dirichlet(np.ones(num_classes)))
        y[rng.random(100) < 0.1] = -1
        out = inverse_frequency_weights(torch.from_numpy(y), num_classes)
        labelled = y[y >= 0]
        present = np.unique(labelled)
        expected = np.zeros(num_classes)
        expected[present] = compute_class_weight('balanced', classes=present, y=labelled)
        # sklearn's N / (C n_c) uses C = number of present classes; ours uses num_classes.
        expected *= len(present) / num_classes
        assert out.shape == (num_classes, )
        assert np.allclose(out.numpy(), expected, rtol=1e-6)


def test_inverse_frequency_weights_hand_computed():
    y = torch.tensor([0, 0, 0, 1, -1, 2, 2, 0])
    # N = 7 labelled, C = 4: w_0 = 7/(4*4), w_1 = 7/(4*1), w_2 = 7/(4*2), w_3 = 0 (absent).
    out = inverse_frequency_weights(y, 4).tolist()
    assert np.allclose(out, [7 / 16, 7 / 4, 7 / 8, 0.0])
    assert inverse_frequency_weights(torch.tensor([-1, -1]), 3).tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match='num_classes'):
        inverse_frequency_weights(y, 0)


def test_focal_gamma_zero_is_exactly_the_plain_loss():
    fused, unimodal, y, mask = make_inputs(7)
    weight = torch.tensor([0.5, 2.0, 1.0, 3.0, 0.25], dtype=torch.float64)
    for cw in (None, weight):
        plain, plain_parts = multimodal_loss(fused, unimodal, y, mask, class_weight=cw)
        zero, zero_parts = multimodal_loss(fused, unimodal, y, mask, class_weight=cw,
                                           focal_gamma=0.0)
        assert torch.equal(plain, zero)
        assert all(torch.equal(plain_parts[k], zero_parts[k]) for k in plain_parts)


def test_focal_loss_hand_computed():
    # Per row: -w_y (1 - p_y)^gamma log p_y, normalised by the sum of w_y over valid rows.
    fused, unimodal, y, mask = make_inputs(8)
    weight = np.array([0.5, 2.0, 1.0, 3.0, 0.25])
    gamma = 2.0

    def focal(logits, w):
        logits = logits.detach().numpy()
        num, den = 0.0, 0.0
        for i in range(len(y)):
            if not mask[i] or y[i] < 0:
                continue
            c = int(y[i])
            p = np.exp(logits[i, c]) / np.exp(logits[i]).sum()
            wi = 1.0 if w is None else w[c]
            num += wi * (1 - p)**gamma * -np.log(p)
            den += wi
        return num / den

    for w in (None, weight):
        cw = None if w is None else torch.from_numpy(w)
        total, parts = multimodal_loss(fused, unimodal, y, mask, class_weight=cw,
                                       focal_gamma=gamma)
        expected_fusion = focal(fused, w)
        expected = expected_fusion + sum(focal(u, w)**2 / 10 for u in unimodal.values())
        assert abs(parts['fusion'].item() - expected_fusion) < 1e-10
        assert abs(total.item() - expected) < 1e-10
    # The focal term is smaller than the NLL, and the gradient stays finite.
    plain, _ = multimodal_loss(fused, unimodal, y, mask, class_weight=cw)
    assert total.item() < plain.item()
    total.backward()
    assert torch.isfinite(fused.grad).all()


def test_focal_gamma_must_be_non_negative():
    fused, unimodal, y, mask = make_inputs(9)
    for bad in (-0.5, float('nan')):
        with pytest.raises(ValueError, match='focal_gamma'):
            multimodal_loss(fused, unimodal, y, mask, focal_gamma=bad)


def test_stacked_terms_equal_each_term_alone():
    # masked_nll_sums on logits [K, N, C] (what multimodal_loss computes all its terms with)
    # gives each term's own sums. The stacked and the single-term calls reduce over other
    # tensor shapes, so their float64 sums of nine terms may differ in the last bits: 1e-12.
    from dsgdn_pyg.loss import masked_nll_sums
    gen = torch.Generator().manual_seed(4)
    logits = torch.randn(3, 9, 5, generator=gen, dtype=torch.float64)
    y = torch.tensor([0, 4, -1, 2, 2, 1, 3, -1, 0])
    valid = y >= 0
    weight = torch.rand(5, generator=gen, dtype=torch.float64)
    numerators, total = masked_nll_sums(logits, y, valid, weight, focal_gamma=1.5)
    for k in range(3):
        numerator, alone = masked_nll_sums(logits[k], y, valid, weight, focal_gamma=1.5)
        torch.testing.assert_close(numerators[k], numerator, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(total, alone)
