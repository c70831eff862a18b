import math

import pytest
import torch

from benchmarks import scenario_runner as bm

DIMS = {'t': 12, 'a': 10, 'v': 6}
TINY = dict(num_dialogues=5, batch_size=2, hidden_channels=16, feature_dims=DIMS, window=3)


def normal_cdf(x):
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def test_clipped_normal_lengths_follow_the_clipped_distribution():
    lengths = bm.clipped_normal_lengths(20000, 48, 20, 8, 110, seed=1)
    assert len(lengths) == 20000 and all(isinstance(v, int) for v in lengths)
    assert min(lengths) == 8 and max(lengths) == 110
    # Rounding then clipping puts every draw below 8.5 at 8 and every draw >= 109.5 at 110.
    assert lengths.count(8) / 20000 == pytest.approx(normal_cdf((8.5 - 48) / 20), abs=0.004)
    assert lengths.count(110) / 20000 == pytest.approx(1 - normal_cdf((109.5 - 48) / 20),
                                                       abs=0.001)
    below_48 = sum(v < 48 for v in lengths) / 20000  # P(X < 47.5), untouched by clipping
    assert below_48 == pytest.approx(normal_cdf(-0.5 / 20), abs=0.015)
    assert bm.clipped_normal_lengths(20000, 48, 20, 8, 110, seed=1) == lengths
    assert bm.clipped_normal_lengths(20000, 48, 20, 8, 110, seed=2) != lengths


@pytest.mark.parametrize('kwargs, fragment', [
    (dict(num_dialogues=0), "'num_dialogues'"),
    (dict(low=0), "'low'"),
    (dict(low=20, high=10), "'high'"),
])
def test_clipped_normal_lengths_rejects_bad_arguments(kwargs, fragment):
    args = {**dict(num_dialogues=3, mean=48, std=20, low=8, high=110), **kwargs}
    with pytest.raises(ValueError, match=fragment):
        bm.clipped_normal_lengths(**args)


def test_scenarios_have_the_stated_shapes():
    iemocap = bm.make_scenario('iemocap')
    assert len(iemocap.lengths) == 120 and 8 <= min(iemocap.lengths)
    assert max(iemocap.lengths) <= 110
    assert iemocap.lengths == tuple(bm.clipped_normal_lengths(120, 48, 20, 8, 110, 0))
    assert iemocap.feature_dims == {'t': 1024, 'a': 1582, 'v': 342}
    assert (iemocap.hidden_channels, iemocap.window, iemocap.batch_size) == (512, 20, 16)
    assert iemocap.steps == iemocap.num_batches == 8  # 7 batches of 16 and one of 8
    assert iemocap.context_window is None and iemocap.dense_reason is None

    long_400, long_1600 = bm.make_scenario('long-400'), bm.make_scenario('long-1600')
    assert long_400.lengths == (400, ) * 4 and long_400.context_window == 20
    assert long_1600.lengths == (1600, ) * 4 and long_1600.batch_size == 2
    assert long_1600.dense_reason is None

    long_10000 = bm.make_scenario('long-10000')
    assert long_10000.lengths == (10000, ) and long_10000.context_window == 20
    # int64 relation ids of one 10,000 x 10,000 dialogue: 8e8 bytes.
    assert '1×10,000×10,000' in long_10000.dense_reason
    assert '0.80 GB' in long_10000.dense_reason

    small = bm.make_scenario('long-10000', length=30, context_window=5)
    assert small.lengths == (30, ) and small.context_window == 5
    assert small.name == 'long-10000'


@pytest.mark.parametrize('name, overrides, fragment', [
    ('nope', {}, "'name'"),
    ('iemocap', dict(hidden_channels=1), "'hidden_channels'"),
    ('iemocap', dict(window=-1), "'window'"),
    ('iemocap', dict(length=10), "'length'"),
    ('long-400', dict(context_window=-2), "'context_window'"),
    ('long-400', dict(feature_dims={'t': 0}), "'feature_dims'"),
    ('long-400', dict(batch_size=0), "'batch_size'"),
    ('long-400', dict(colour='red'), 'colour'),
])
def test_make_scenario_rejects_bad_overrides(name, overrides, fragment):
    with pytest.raises(ValueError, match=fragment):
        bm.make_scenario(name, **overrides)


def test_scenario_dialogues_are_seeded_and_shaped():
    scenario = bm.make_scenario('iemocap', **TINY)
    dialogues = bm.scenario_dialogues(scenario)
    assert [d.num_nodes for d in dialogues] == list(scenario.lengths)
    for d in dialogues:
        assert set(d.speaker.tolist()) <= {0, 1} and set(d.y.tolist()) <= set(range(6))
        assert {m: getattr(d, f'x_{m}').size(1) for m in DIMS} == DIMS
        assert d.edge_index.size(1) > 0
    again = bm.scenario_dialogues(scenario)
    assert all(torch.equal(a.x_a, b.x_a) for a, b in zip(dialogues, again))
    batches = bm.scenario_batches(scenario, dialogues)
    assert [b.num_graphs for b in batches] == [2, 2, 1]
