import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from benchmarks.experiments.evaluation import (add_feature_noise, dialogues_by_length,
                                              feature_std, inference_flops)


def _dialogues(lengths, dims, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [Data(x_t=torch.randn(n, dims['t'], generator=g) * 3 + 1,
                 x_a=torch.randn(n, dims['a'], generator=g), num_nodes=n,
                 dialogue_id=f'd{i}') for i, n in enumerate(lengths)]


def test_feature_std_is_the_population_std_over_utterances():
    dialogues = _dialogues([3, 5, 2], {'t': 4, 'a': 2})
    std = feature_std(dialogues, ['t', 'a'])
    for m in ('t', 'a'):
        stacked = np.concatenate([d[f'x_{m}'].numpy() for d in dialogues])
        np.testing.assert_allclose(std[m].numpy(), stacked.std(axis=0, ddof=0), rtol=1e-5)


def test_noise_is_level_times_std_times_a_seeded_normal_draw():
    dialogues = _dialogues([3, 4], {'t': 4, 'a': 2})
    std = {'t': torch.tensor([1.0, 2.0, 0.0, 0.5]), 'a': torch.tensor([3.0, 1.0])}
    level = 0.3
    noisy = add_feature_noise(dialogues, std, level, torch.Generator().manual_seed(7))
    # Hand computation: the same generator, dialogue by dialogue, t then a.
    g = torch.Generator().manual_seed(7)
    for clean, out in zip(dialogues, noisy):
        for m in ('t', 'a'):
            z = torch.randn(clean[f'x_{m}'].shape, generator=g)
            expected = clean[f'x_{m}'] + level * std[m] * z
            torch.testing.assert_close(out[f'x_{m}'], expected)
    assert torch.equal(noisy[0].x_t[:, 2], dialogues[0].x_t[:, 2])  # std 0: no noise
    # Level 0 leaves the features alone, and the inputs are never modified.
    zero = add_feature_noise(dialogues, std, 0.0, torch.Generator().manual_seed(7))
    assert all(torch.equal(a.x_t, b.x_t) for a, b in zip(zero, dialogues))
    assert not torch.equal(noisy[0].x_t, dialogues[0].x_t)
    with pytest.raises(ValueError, match="'level'"):
        add_feature_noise(dialogues, std, -0.1, torch.Generator())


def test_long_dialogue_subset_matches_a_brute_force_filter():
    lengths = np.random.default_rng(0).integers(1, 80, size=60).tolist() + [19, 20, 50, 51]
    dialogues = _dialogues(lengths, {'t': 2, 'a': 2})
    subset = dialogues_by_length(dialogues, 20, 50)
    expected = []
    for d in dialogues:
        if d.num_nodes >= 20 and d.num_nodes <= 50:
            expected.append(d.dialogue_id)
    assert [d.dialogue_id for d in subset] == expected
    with pytest.raises(ValueError, match='min_length'):
        dialogues_by_length(dialogues, 50, 20)


def test_inference_flops_of_a_linear_model_by_hand():
    model = torch.nn.Sequential(torch.nn.Linear(8, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))
    batches = [torch.randn(4, 8), torch.randn(6, 8)]
    # A [n, i] x [i, o] product is 2 n i o operations (the bias add is not counted).
    assert inference_flops(model, batches) == sum(2 * n * (8 * 5 + 5 * 3) for n in (4, 6))
