import itertools

import pytest

from dsgdn_pyg import cli
from benchmarks.experiments import EXPERIMENT_NAMES, EXPERIMENTS, ExperimentError
from benchmarks.experiments.grids import (ablation_grid, dropout_grid, modalities_grid,
                                         warmup_grid)
from dsgdn_pyg.train import TrainConfig


DIMS = {'t': 16, 'a': 8, 'v': 8}
TINY = dict(num_dialogues=12, feature_dims=DIMS, hidden_channels=16, window=3, batch_size=4,
            epochs=1, device='cpu')


def tiny(**kwargs) -> TrainConfig:
    return TrainConfig(**{**TINY, **kwargs})


def apply(base: TrainConfig, variant) -> TrainConfig:
    import dataclasses
    return dataclasses.replace(base, **variant.overrides)


def test_ablation_is_the_six_configurations_of_tables_5_and_6():
    base = tiny()
    configs = [apply(base, v) for v in ablation_grid(base, ['t', 'a', 'v'])]
    switches = [(c.graph, c.conv, c.modality_dropout) for c in configs]
    # full / w/o DiffRGCN (GAT on the same subgraphs) / no graph, each with and without MD;
    # without a graph the conv setting is irrelevant and stays at its default.
    expected = [(True, 'diffgat', md) for md in (True, False)] + \
        [(True, 'gat', md) for md in (True, False)] + \
        [(False, 'diffgat', md) for md in (True, False)]
    assert sorted(switches) == sorted(expected)
    assert len(set(v.name for v in ablation_grid(base, ['t', 'a', 'v']))) == 6
    # Everything else is the base configuration.
    for c in configs:
        assert (c.hidden_channels, c.window, c.epochs, c.lr) == (16, 3, 1, base.lr)
    # One modality: nothing to balance, so only table 5 (MD on).
    single = [apply(base, v) for v in ablation_grid(base, ['t'])]
    assert sorted((c.graph, c.conv, c.modality_dropout) for c in single) == \
        sorted([(True, 'diffgat', True), (True, 'gat', True), (False, 'diffgat', True)])


def test_modalities_grid_is_table_4():
    base = tiny()
    combos = {v.label: apply(base, v).modalities for v in modalities_grid(base, 'tav')}
    assert combos == {'T': ['t'], 'A': ['a'], 'V': ['v'], 'A+T': ['t', 'a'],
                      'V+T': ['t', 'v'], 'A+V+T': ['t', 'a', 'v']}
    with pytest.raises(ExperimentError, match='missing a,v'):
        modalities_grid(base, ['t'])


def test_dropout_grid_is_table_7():
    iemocap = {(v.overrides['q_base'], v.overrides['p_exe'])
               for v in dropout_grid(tiny(), 'tav')}
    assert iemocap == set(itertools.product((0.1, 0.3, 0.5), (0.3, 0.5, 0.7)))
    meld = {(v.overrides['q_base'], v.overrides['p_exe'])
            for v in dropout_grid(TrainConfig(dataset='synthetic-meld'), 'tav')}
    assert meld == set(itertools.product((0.1, 0.2, 0.3), (0.1, 0.2, 0.3)))
    quick = {(v.overrides['q_base'], v.overrides['p_exe'])
             for v in dropout_grid(tiny(), 'tav', quick=True)}
    assert quick == {(0.1, 0.3), (0.1, 0.7), (0.5, 0.3), (0.5, 0.7)}


def test_warmup_grid_spans_the_run():
    assert [v.x for v in warmup_grid(tiny(epochs=10), 'tav')] == [0, 2, 4, 6, 8, 10]
    assert [v.x for v in warmup_grid(tiny(epochs=4), 'tav', quick=True)] == [0, 2, 4]
    # Fractions that round to the same epoch appear once.
    assert [v.x for v in warmup_grid(tiny(epochs=2), 'tav')] == [0, 1, 2]


def test_registry_and_cli_names_agree():
    assert tuple(EXPERIMENTS) == EXPERIMENT_NAMES == cli.EXPERIMENT_NAMES
    base = tiny()
    for experiment in EXPERIMENTS.values():
        variants = experiment.grid(base, ['t', 'a', 'v'], False)
        names = [v.name for v in variants]
        assert len(names) == len(set(names)) and all('/' not in n for n in names)
        for v in variants:
            apply(base, v)  # every variant is a valid configuration
