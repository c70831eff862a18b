import itertools
import json
import os

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch_geometric.data import Data

from dsgdn_pyg import cli
from dsgdn_pyg.datasets import load_corpus
from dsgdn_pyg.experiments import (EXPERIMENT_NAMES, EXPERIMENTS, ExperimentError, parse_seeds,
                                   run_experiment, train_or_reuse)
from dsgdn_pyg.experiments import runner
from dsgdn_pyg.experiments.evaluation import (add_feature_noise, inference_flops,
                                              dialogues_by_length, feature_std)
from dsgdn_pyg.experiments.grids import (ablation_grid, dropout_grid, modalities_grid,
                                         warmup_grid)
from dsgdn_pyg.experiments.report import aggregate, format_mean_std
from dsgdn_pyg.train import TrainConfig

DIMS = {'t': 16, 'a': 8, 'v': 8}
TINY = dict(num_dialogues=12, feature_dims=DIMS, hidden_channels=16, window=3, batch_size=4,
            epochs=1, device='cpu')
SMALL_CLI = ['--epochs', '1', '--set', 'num_dialogues=12', '--set', 'feature_dims=t=16,a=8,v=8',
             '--set', 'hidden_channels=16', '--set', 'window=3', '--set', 'batch_size=4',
             '--set', 'device=cpu']


def tiny(**kwargs) -> TrainConfig:
    return TrainConfig(**{**TINY, **kwargs})


def apply(base: TrainConfig, variant) -> TrainConfig:
    import dataclasses
    return dataclasses.replace(base, **variant.overrides)


# ------------------------------------------------------------------------------- grids

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


# ------------------------------------------------------------------ aggregation, parsing

def test_aggregate_matches_numpy():
    values = [70.1, 68.4, 71.9, 69.0]
    summary = aggregate(values)
    assert summary['mean'] == pytest.approx(np.mean(values))
    assert summary['std'] == pytest.approx(np.std(values, ddof=1))
    assert format_mean_std(summary) == f'{np.mean(values):.2f} ± {np.std(values, ddof=1):.2f}'
    one = aggregate([65.4321])
    assert one['std'] is None and format_mean_std(one) == '65.43'
    assert aggregate([None, 3.0, 5.0])['mean'] == 4.0
    assert format_mean_std(aggregate([None])) == '—'


def test_parse_seeds():
    assert parse_seeds('0, 1,2') == [0, 1, 2]
    for bad, fragment in (('0,x', 'integers'), ('', 'at least one'), ('1,1', 'twice'),
                          ('-1', 'non-negative')):
        with pytest.raises(ValueError, match=fragment):
            parse_seeds(bad)


# ------------------------------------------------------------------- noise and lengths

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


# --------------------------------------------------------------- runs and skip-if-done

def test_finished_runs_are_reused_and_others_refused(tmp_path, monkeypatch):
    config = tiny(quiet=True, out=str(tmp_path / 'run'))
    first, reused = train_or_reuse(config)
    assert not reused and first['finished']

    def no_training(*args, **kwargs):
        raise AssertionError('a finished run was trained again')
    monkeypatch.setattr(runner, 'train', no_training)
    again, reused = train_or_reuse(tiny(quiet=True, out=str(tmp_path / 'run'), device='auto'))
    assert reused and again['test'] == first['test']
    with pytest.raises(ExperimentError, match='lr'):
        train_or_reuse(tiny(quiet=True, out=str(tmp_path / 'run'), lr=1e-2))


def test_noise_and_long_evaluate_the_trained_run(tmp_path):
    base = tiny()
    noise = run_experiment('noise', base, seeds='0,1', out=str(tmp_path), quick=True,
                           echo=None)
    assert [row['x'] for row in noise['rows']] == [0.0, 0.3, 0.7]
    training = {r['seed']: r for r in noise['rows'][0]['training']}
    # Level 0 scores the unmodified test split: the trainer's own test score of best.pt.
    for record in noise['rows'][0]['runs']:
        assert record['wa_f1'] == pytest.approx(training[record['seed']]['test_wa_f1'])
    f1 = [r['wa_f1'] for r in noise['rows'][0]['runs']]
    assert noise['rows'][0]['summary']['wa_f1']['mean'] == pytest.approx(np.mean(f1))
    assert os.path.exists(tmp_path / 'noise.json') and os.path.exists(tmp_path / 'noise.md')
    assert json.loads((tmp_path / 'noise.json').read_text())['table'] == noise['table']
    assert noise['seeds'] == [0]  # quick: the first seed only

    # 'long' shares the full model's runs in the same directory.
    long = run_experiment('long', tiny(), seeds='0', out=str(tmp_path), echo=None,
                          quick=True)
    assert long['rows'][0]['training'][0]['reused']
    corpus = load_corpus('synthetic-iemocap', seed=0, num_dialogues=12, feature_dims=DIMS)
    everything, subset = long['rows'][0]['runs'][0], long['rows'][1]['runs'][0]
    assert everything['wa_f1'] == pytest.approx(training[0]['test_wa_f1'])
    expected = [d for d in corpus.test if 20 <= d.num_nodes <= 50]
    assert subset['num_dialogues'] == len(expected)
    assert subset['num_utterances'] == sum(int((d.y >= 0).sum()) for d in expected)


def test_imbalance_needs_all_three_modalities(tmp_path):
    with pytest.raises(ExperimentError, match='t, a and v'):
        run_experiment('imbalance', tiny(modalities='t,a'), seeds='0', out=str(tmp_path),
                       echo=None)
    assert not os.listdir(tmp_path)  # refused before any training


# ----------------------------------------------------------------------------- the CLI

def invoke(*args):
    return CliRunner().invoke(cli.main, [str(a) for a in args])


def test_cli_ablation_end_to_end(tmp_path):
    result = invoke('experiment', 'ablation', '--out', tmp_path, '--quick', *SMALL_CLI)
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / 'ablation.json').read_text())
    assert [row['variant'] for row in saved['rows']] == \
        ['full', 'gat', 'no-graph', 'no-md', 'gat-no-md', 'no-graph-no-md']
    assert saved['table'] in result.output
    for row in saved['rows']:
        (run,) = row['runs']
        metrics = json.loads((tmp_path / row['variant'] / 'seed0' / 'metrics.json').read_text())
        assert run['test_wa_f1'] == metrics['test']['wa_f1']
        assert f"| {row['label']} | {metrics['test']['wa_f1']:.2f} |" in result.output
    assert saved['base_config']['hidden_channels'] == 16
    gat = json.loads((tmp_path / 'gat' / 'seed0' / 'metrics.json').read_text())['config']
    assert gat['conv'] == 'gat' and gat['modality_dropout'] and gat['graph']


@pytest.mark.parametrize('args,fragment', [
    (['experiment', 'bogus', '--out', 'x'], "'bogus' is not one of"),
    (['experiment', 'noise', '--out', 'x', '--seeds', '0,a'], "'--seeds'"),
    (['experiment', 'noise', '--out', 'x', '--set', 'bogus=1'], "unknown field 'bogus'"),
    (['experiment', 'noise', '--out', 'x', '--set', 'seed=3'], 'set by the experiment'),
    (['experiment', 'noise', '--out', 'x', '--set', 'lr'], 'FIELD=VALUE'),
    (['experiment', 'noise', '--out', 'x', '--set', 'lr=-1'], "'lr' must be a positive"),
    (['experiment', 'noise', '--out', 'x', '--epochs', '2', '--set', 'epochs=3'], 'both'),
])
def test_cli_errors_are_clean(args, fragment):
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert 'Error' in result.output and 'Traceback' not in result.output
    assert fragment in result.output, result.output


def test_overhead_reports_the_parameters_of_each_variant(tmp_path):
    import dataclasses

    from dsgdn_pyg.models import AMBDSGDN
    from dsgdn_pyg.train.data import model_kwargs

    base = tiny()
    result = run_experiment('overhead', base, seeds='0', out=str(tmp_path), quick=True,
                            echo=None)
    corpus = load_corpus('synthetic-iemocap', seed=0, num_dialogues=12, feature_dims=DIMS)
    counts = {}
    for row in result['rows']:
        variant = next(v for v in EXPERIMENTS['overhead'].grid(base, 'tav', True)
                       if v.name == row['variant'])
        config = dataclasses.replace(base, **variant.overrides)
        model = AMBDSGDN(**model_kwargs(config, corpus, ['t', 'a', 'v']))
        counts[row['variant']] = sum(p.numel() for p in model.parameters())
        assert row['runs'][0]['num_parameters'] == counts[row['variant']]
        assert row['runs'][0]['mflops_per_utterance'] > 0
        assert row['runs'][0]['train_utterances_per_s'] > 0
    assert counts['full'] == counts['no-md'] != counts['gat']


def test_figure_is_written_only_with_matplotlib(tmp_path, monkeypatch):
    import sys

    from dsgdn_pyg.experiments.report import write_figure
    rows = [{'label': f'w = {w}', 'x': w, 'summary': {
        'test_wa_f1': aggregate([60.0 + w, 61.0 + w]), 'test_wa_acc': aggregate([62.0, 63.0])}}
        for w in (2, 6)]
    monkeypatch.setitem(sys.modules, 'matplotlib', None)  # as if not installed
    assert write_figure(str(tmp_path / 'a.png'), 'train', 'line', 't', rows) is None
    assert not os.listdir(tmp_path)
    monkeypatch.undo()
    pytest.importorskip('matplotlib')
    path = write_figure(str(tmp_path / 'b.png'), 'train', 'line', 't', rows)
    assert (tmp_path / 'b.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n' and path
