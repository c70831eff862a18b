import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

from dsgdn_pyg import cli
from dsgdn_pyg.datasets import load_corpus
from benchmarks.experiments import (EXPERIMENTS, ExperimentError, parse_seeds, run_experiment,
                                   train_or_reuse)
from benchmarks.experiments import runner
from benchmarks.experiments.report import aggregate
from dsgdn_pyg.train import TrainConfig


DIMS = {'t': 16, 'a': 8, 'v': 8}
TINY = dict(num_dialogues=12, feature_dims=DIMS, hidden_channels=16, window=3, batch_size=4,
            epochs=1, device='cpu')
SMALL_CLI = ['--epochs', '1', '--set', 'num_dialogues=12', '--set', 'feature_dims=t=16,a=8,v=8',
             '--set', 'hidden_channels=16', '--set', 'window=3', '--set', 'batch_size=4',
             '--set', 'device=cpu']


def tiny(**kwargs) -> TrainConfig:
    return TrainConfig(**{**TINY, **kwargs})


# ------------------------------------------------------------------ parsing

def test_parse_seeds():
    assert parse_seeds('0, 1,2') == [0, 1, 2]
    for bad, fragment in (('0,x', 'integers'), ('', 'at least one'), ('1,1', 'twice'),
                          ('-1', 'non-negative')):
        with pytest.raises(ValueError, match=fragment):
            parse_seeds(bad)


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

    from benchmarks.experiments.report import write_figure
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
