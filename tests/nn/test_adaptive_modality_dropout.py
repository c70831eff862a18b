import math

import pytest
import torch
from sklearn.metrics import f1_score

from dsgdn_pyg.nn.adaptive_modality_dropout import (
    AdaptiveModalityDropout,
    drop_modalities,
    expectation_scale,
    modality_drop_probabilities,
)


def reference_q(perf, q_base, lam, eps=1e-5):
    """Paper eq. 20-24 plus 'only modalities with a positive mean ratio', written with loops."""
    qs = []
    for m, p_m in enumerate(perf):
        ratios = [p_m / (p_j + eps) - 1 for j, p_j in enumerate(perf) if j != m]
        if not ratios:
            qs.append(0.0)
            continue
        exps = [math.exp(max(r, 0.0)) for r in ratios]
        mean = sum(e / sum(exps) * r for e, r in zip(exps, ratios)) / len(ratios)
        qs.append(min(max(q_base * (1 + lam * mean), 0.0), 1.0) if mean > 0 else 0.0)
    return qs


def test_drop_probabilities_three_modalities_by_hand():
    perf = [0.6, 0.4, 0.5]
    eps = 1e-5
    # Best (0.6): ratios to 0.4 and 0.5 are both positive.
    r01, r02 = 0.6 / (0.4 + eps) - 1, 0.6 / (0.5 + eps) - 1
    w01 = math.exp(r01) / (math.exp(r01) + math.exp(r02))
    q0 = 0.3 * (1 + 0.9 * (w01 * r01 + (1 - w01) * r02) / 2)
    # Middle (0.5): ReLU zeroes the negative ratio to 0.6 before the softmax, but the raw
    # (negative) ratio still enters the weighted mean, which stays positive here.
    r20, r21 = 0.5 / (0.6 + eps) - 1, 0.5 / (0.4 + eps) - 1
    w20 = 1 / (1 + math.exp(r21))
    mean2 = (w20 * r20 + (1 - w20) * r21) / 2
    assert mean2 > 0
    q2 = 0.3 * (1 + 0.9 * mean2)
    # Worst (0.4): all ratios negative -> never dropped.
    q = modality_drop_probabilities(torch.tensor(perf, dtype=torch.float64), 0.3, 0.9)
    assert q.shape == (3, )
    assert torch.allclose(q, torch.tensor([q0, 0.0, q2], dtype=torch.float64), atol=1e-12)
    assert q[0] > q[2] > q[1] == 0


def test_drop_probabilities_two_and_one_modalities():
    q = modality_drop_probabilities(torch.tensor([0.7, 0.5], dtype=torch.float64), 0.2, 0.9)
    expected = 0.2 * (1 + 0.9 * (0.7 / (0.5 + 1e-5) - 1))  # single ratio, softmax weight 1
    assert torch.allclose(q, torch.tensor([expected, 0.0], dtype=torch.float64), atol=1e-12)
    assert modality_drop_probabilities(torch.tensor([0.9]), 0.3, 0.9).tolist() == [0.0]


def test_drop_probabilities_random_against_reference():
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        num_modalities = int(torch.randint(1, 4, (1, ), generator=g))
        perf = torch.rand(num_modalities, generator=g, dtype=torch.float64)
        if torch.rand((), generator=g) < 0.2:
            perf[0] = perf[-1]  # ties
        q_base = float(torch.rand((), generator=g))
        lam = float(torch.rand((), generator=g)) * 4 - 1
        q = modality_drop_probabilities(perf, q_base, lam)
        expected = reference_q(perf.tolist(), q_base, lam)
        assert torch.allclose(q, torch.tensor(expected, dtype=torch.float64), atol=1e-12)
        # The weakest modality is never dropped.
        assert q[perf.argmin()] == 0


def test_drop_probabilities_clipped():
    # Huge advantage: q_base * (1 + lam * r) > 1 is clipped to 1.
    q = modality_drop_probabilities(torch.tensor([0.9, 0.01]), 0.3, 0.9)
    assert q.tolist() == [1.0, 0.0]
    # Negative lam pushes q below 0, clipped to 0.
    q = modality_drop_probabilities(torch.tensor([0.9, 0.3]), 0.3, -5.0)
    assert q.tolist() == [0.0, 0.0]
    # Equal scores: every ratio is slightly negative, nothing is dropped.
    q = modality_drop_probabilities(torch.tensor([0.5, 0.5, 0.5]), 0.3, 0.9)
    assert q.tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match='perf'):
        modality_drop_probabilities(torch.zeros(2, 2), 0.3, 0.9)


def test_expectation_scale_by_hand():
    q = torch.tensor([0.4, 0.0, 0.2], requires_grad=True)
    scale = expectation_scale(q, [4, 2, 3])
    theta = (4 * 0.4 + 2 * 0.0 + 3 * 0.2) / 9
    assert abs(scale.item() - 1 / (1 - theta)) < 1e-6
    assert not scale.requires_grad  # no gradient w.r.t. theta
    # theta -> 1 is guarded.
    assert torch.isfinite(expectation_scale(torch.ones(2), [3, 3]))
    with pytest.raises(ValueError, match='dims'):
        expectation_scale(q, [4, 2])


def features(num_graphs, nodes_per_graph=1, dims=(4, 2, 3), seed=0, requires_grad=False):
    g = torch.Generator().manual_seed(seed)
    n = num_graphs * nodes_per_graph
    xs = {
        m: (torch.rand(n, d, generator=g, dtype=torch.float64) + 0.5).requires_grad_(requires_grad)
        for m, d in zip('tav', dims)
    }
    batch = torch.arange(num_graphs).repeat_interleave(nodes_per_graph)
    return xs, batch


def test_drop_modalities_single_draw_exact():
    xs, batch = features(num_graphs=40, nodes_per_graph=3, requires_grad=True)
    q = torch.tensor([0.5, 0.0, 0.3], dtype=torch.float64, requires_grad=True)
    out, keep, executed = drop_modalities(xs, q, batch, 40, p_exe=1.0,
                                          generator=torch.Generator().manual_seed(1))
    assert bool(executed)
    theta = (4 * 0.5 + 2 * 0.0 + 3 * 0.3) / 9
    kept_graphs = {}
    for m in 'tav':
        factor = out[m] / xs[m]
        # Constant over the features of a node and over the nodes of a dialogue ...
        assert torch.allclose(factor, factor[:, :1].expand_as(factor))
        per_graph = factor[:, 0].view(40, 3)
        assert torch.allclose(per_graph, per_graph[:, :1].expand_as(per_graph))
        # ... and either 0 (dropped) or exactly 1 / (1 - theta) (kept and rescaled).
        values = per_graph[:, 0]
        is_zero = values == 0
        assert torch.allclose(values[~is_zero], torch.full_like(values[~is_zero], 1 / (1 - theta)))
        kept_graphs[m] = ~is_zero
    assert kept_graphs['a'].all()  # q = 0
    assert (~kept_graphs['t']).any() and (~kept_graphs['v']).any()
    assert torch.equal(keep, kept_graphs['t'] | kept_graphs['a'] | kept_graphs['v'])

    # Gradient reaches the features (the same factor), but nothing reaches q / theta.
    sum(o.sum() for o in out.values()).backward()
    for m in 'tav':
        assert torch.allclose(xs[m].grad, (out[m] / xs[m]).detach())
    assert q.grad is None or torch.all(q.grad == 0)


def test_drop_modalities_all_dropped_dialogues_not_kept():
    xs, batch = features(num_graphs=200)
    q = torch.tensor([1.0, 1.0, 0.5], dtype=torch.float64)
    out, keep, _ = drop_modalities(xs, q, batch, 200, p_exe=1.0,
                                   generator=torch.Generator().manual_seed(2))
    assert not torch.any(out['t']) and not torch.any(out['a'])
    v_kept = out['v'][:, 0] != 0
    assert torch.equal(keep, v_kept)
    assert keep.any() and not keep.all()


def test_drop_modalities_expectation():
    num_graphs = 20000
    xs, batch = features(num_graphs=num_graphs)
    q = torch.tensor([0.5, 0.0, 0.3], dtype=torch.float64)
    dims = {'t': 4, 'a': 2, 'v': 3}
    theta = (4 * 0.5 + 3 * 0.3) / 9
    out, _, _ = drop_modalities(xs, q, batch, num_graphs, p_exe=1.0,
                                generator=torch.Generator().manual_seed(3))
    mass = 0.0
    for m, q_m in zip('tav', [0.5, 0.0, 0.3]):
        mean_factor = (out[m] / xs[m])[:, 0].mean().item()
        expected = (1 - q_m) / (1 - theta)
        # Binomial standard error of the keep rate, times the scale, 5 sigma.
        tol = 5 * math.sqrt(q_m * (1 - q_m) / num_graphs) / (1 - theta) + 1e-12
        assert abs(mean_factor - expected) < tol
        mass += dims[m] * mean_factor
    # The scaling keeps the total expected feature mass: sum_m d_m E[factor_m] = sum_m d_m.
    assert abs(mass / 9 - 1) < 0.02


def test_drop_modalities_deterministic_with_generator():
    xs, batch = features(num_graphs=100)
    q = torch.tensor([0.4, 0.2, 0.0], dtype=torch.float64)
    runs = [drop_modalities(xs, q, batch, 100, 0.5, generator=torch.Generator().manual_seed(s))
            for s in (7, 7, 8)]
    for m in 'tav':
        assert torch.equal(runs[0][0][m], runs[1][0][m])
    assert torch.equal(runs[0][1], runs[1][1])
    # A different seed gives a different draw (1 - (prob. of equal masks) is ~1 here).
    draws = [drop_modalities(xs, q, batch, 100, 1.0, generator=torch.Generator().manual_seed(s))
             for s in (7, 8)]
    assert not torch.equal(draws[0][0]['t'], draws[1][0]['t'])


def module_inputs(num_graphs=30, nodes_per_graph=4, seed=0):
    """Text predicts perfectly, audio half the time, visual always class 0."""
    xs, batch = features(num_graphs, nodes_per_graph, seed=seed)
    g = torch.Generator().manual_seed(seed + 100)
    n, num_classes = num_graphs * nodes_per_graph, 4
    y = torch.randint(0, num_classes, (n, ), generator=g)
    y[torch.rand(n, generator=g) < 0.1] = -1
    noisy = torch.where(torch.rand(n, generator=g) < 0.5, y.clamp_min(0),
                        torch.randint(0, num_classes, (n, ), generator=g))
    preds = {'t': y.clamp_min(0), 'a': noisy, 'v': torch.zeros_like(y)}
    logits = {m: torch.nn.functional.one_hot(p, num_classes).double() for m, p in preds.items()}
    return xs, logits, y, batch, preds


def test_module_uses_weighted_f1_of_each_head():
    xs, logits, y, batch, preds = module_inputs()
    module = AdaptiveModalityDropout(q_base=0.3, lam=0.9, p_exe=1.0)
    module.train()
    out, keep = module(xs, logits, y, batch, 30, generator=torch.Generator().manual_seed(0))
    valid = y >= 0
    perf = [f1_score(y[valid].numpy(), preds[m][valid].numpy(), average='weighted')
            for m in 'tav']
    assert torch.allclose(module.last_perf, torch.tensor(perf, dtype=torch.float64), atol=1e-12)
    expected_q = reference_q(perf, 0.3, 0.9)
    assert torch.allclose(module.last_q, torch.tensor(expected_q, dtype=torch.float64),
                          atol=1e-12)
    assert expected_q[0] > 0 and expected_q[2] == 0
    assert bool(module.last_executed)
    assert keep.dtype == torch.bool and keep.shape == (30, )
    # Visual is never dropped (weakest), so every dialogue is kept.
    assert keep.all()
    theta = (4 * expected_q[0] + 2 * expected_q[1] + 3 * expected_q[2]) / 9
    assert torch.allclose(out['v'], xs['v'] / (1 - theta))


def test_module_inactive_in_eval_and_warmup():
    xs, logits, y, batch, _ = module_inputs()
    module = AdaptiveModalityDropout(p_exe=1.0, warmup_epochs=3)
    module.train()
    module.set_epoch(2)
    assert not module.active
    out, keep = module(xs, logits, y, batch, 30)
    assert out is xs and keep.all() and keep.shape == (30, )
    assert module.last_q is None

    module.set_epoch(3)
    assert module.active
    module.eval()
    assert not module.active
    out, keep = module(xs, logits, y, batch, 30)
    assert out is xs and keep.all()

    module.train()
    out, _ = module(xs, logits, y, batch, 30, generator=torch.Generator().manual_seed(0))
    assert out is not xs and not torch.equal(out['t'], xs['t'])


def test_module_p_exe_zero_and_one():
    xs, logits, y, batch, _ = module_inputs()
    never = AdaptiveModalityDropout(p_exe=0.0)
    always = AdaptiveModalityDropout(p_exe=1.0)
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        out, keep = never(xs, logits, y, batch, 30, generator=g)
        assert not bool(never.last_executed) and keep.all()
        for m in 'tav':
            assert torch.equal(out[m], xs[m])
        out, _ = always(xs, logits, y, batch, 30, generator=g)
        assert bool(always.last_executed)
        assert not torch.equal(out['a'], xs['a'])  # rescaled (theta > 0) even where kept


def test_module_execute_rate():
    xs, logits, y, batch, _ = module_inputs()
    module = AdaptiveModalityDropout(p_exe=0.3)
    g = torch.Generator().manual_seed(5)
    runs = 400
    executed = 0
    for _ in range(runs):
        module(xs, logits, y, batch, 30, generator=g)
        executed += int(module.last_executed)
    assert abs(executed / runs - 0.3) < 5 * math.sqrt(0.3 * 0.7 / runs)


def test_module_gradient_and_repr():
    xs, logits, y, batch, _ = module_inputs()
    for x in xs.values():
        x.requires_grad_()
    module = AdaptiveModalityDropout(p_exe=1.0)
    out, _ = module(xs, logits, y, batch, 30, generator=torch.Generator().manual_seed(1))
    sum(o.sum() for o in out.values()).backward()
    for m in 'tav':
        assert torch.allclose(xs[m].grad, (out[m] / xs[m]).detach())
    module.reset_parameters()
    assert repr(module) == ('AdaptiveModalityDropout(q_base=0.3, lam=0.9, p_exe=1.0, '
                            'warmup_epochs=0)')


def test_module_single_modality_never_drops():
    xs, logits, y, batch, _ = module_inputs()
    module = AdaptiveModalityDropout(p_exe=1.0)
    out, keep = module({'t': xs['t']}, {'t': logits['t']}, y, batch, 30)
    assert torch.equal(out['t'], xs['t']) and keep.all()
    assert module.last_q.tolist() == [0.0]


def test_module_bad_input():
    xs, logits, y, batch, _ = module_inputs()
    module = AdaptiveModalityDropout()
    with pytest.raises(ValueError, match='logits'):
        module(xs, {'t': logits['t']}, y, batch, 30)
    with pytest.raises(ValueError, match="xs\\['a'\\]"):
        module({**xs, 'a': xs['a'][:-1]}, logits, y, batch, 30)
    with pytest.raises(ValueError, match="'y'"):
        module(xs, logits, y[:-1], batch, 30)
    for kwargs in ({'q_base': 1.5}, {'p_exe': -0.1}, {'warmup_epochs': -1}, {'eps': 0.0}):
        with pytest.raises(ValueError, match=list(kwargs)[0]):
            AdaptiveModalityDropout(**kwargs)
    with pytest.raises(ValueError, match='epoch'):
        module.set_epoch(-1)
