import csv
import json
import os

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from sklearn.metrics import f1_score

from dsgdn_pyg import __version__
from dsgdn_pyg.cli import main
from dsgdn_pyg.datasets import load_corpus

DIMS = {'t': 16, 'a': 8, 'v': 8}
SMALL = ['--num-dialogues', '12', '--feature-dims', 't=16,a=8,v=8', '--hidden-channels', '16',
         '--window', '3', '--batch-size', '4', '--device', 'cpu']


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_clean_error(result, *fragments):
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit), result.exception
    assert 'Error' in result.output and 'Traceback' not in result.output
    for fragment in fragments:
        assert fragment in result.output, result.output


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp('cli') / 'run'
    result = invoke('train', *SMALL, '--epochs', 2, '--out', out)
    assert result.exit_code == 0, result.output
    return out, result


def test_version():
    result = invoke('--version')
    assert result.exit_code == 0 and __version__ in result.output


def test_train_writes_files_and_reports(trained):
    out, result = trained
    assert sorted(os.listdir(out)) == ['best.pt', 'last.pt', 'log.jsonl', 'metrics.json']
    metrics = json.loads((out / 'metrics.json').read_text())
    for key in ('best_epoch', 'selected_on', 'valid', 'test', 'config', 'seed', 'elapsed_s',
                'label_names', 'dataset'):
        assert key in metrics
    for split in ('valid', 'test'):
        assert {'wa_f1', 'wa_acc', 'per_class_f1', 'confusion'} <= set(metrics[split])
    assert metrics['config']['epochs'] == 2 and metrics['config']['hidden_channels'] == 16
    assert len((out / 'log.jsonl').read_text().splitlines()) == 2
    lines = result.output.splitlines()
    assert sum(line.startswith('epoch ') and 'valid F1' in line for line in lines) == 2
    assert f"test weighted F1 {metrics['test']['wa_f1']:.2f}" in result.output


def test_evaluate_prints_report(trained, tmp_path):
    out, _ = trained
    json_path = tmp_path / 'eval.json'
    result = invoke('evaluate', '--checkpoint', out / 'best.pt', '--json', json_path)
    assert result.exit_code == 0, result.output
    assert 'weighted avg' in result.output and 'Confusion matrix' in result.output
    for name in ('happy', 'sad', 'neutral', 'angry', 'excited', 'frustrated'):
        assert name in result.output
    saved = json.loads(json_path.read_text())
    metrics = json.loads((out / 'metrics.json').read_text())
    assert saved['wa_f1'] == pytest.approx(metrics['test']['wa_f1'])
    assert saved['confusion'] == metrics['test']['confusion']


def test_predict_writes_one_row_per_utterance(trained, tmp_path):
    out, _ = trained
    csv_path = tmp_path / 'pred.csv'
    result = invoke('predict', '--checkpoint', out / 'best.pt', '--output', csv_path)
    assert result.exit_code == 0, result.output
    corpus = load_corpus('synthetic-iemocap', seed=0, num_dialogues=12, feature_dims=DIMS)
    with open(csv_path, newline='') as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == sum(d.num_nodes for d in corpus.test)
    names = corpus.label_names
    probs = np.array([[float(r[f'prob_{n}']) for n in names] for r in rows])
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-6)
    # The CSV's predictions give the weighted F1 that training reported for the test split.
    y = torch.cat([d.y for d in corpus.test]).numpy()
    pred = [names.index(r['predicted']) for r in rows]
    metrics = json.loads((out / 'metrics.json').read_text())
    assert 100 * f1_score(y, pred, average='weighted') == pytest.approx(metrics['test']['wa_f1'])
    assert os.listdir(tmp_path) == ['pred.csv']


def test_benchmark_json_last_line():
    result = invoke('benchmark', '--steps', 1, '--hidden-channels', 16, '--num-dialogues', 12,
                    '--window', 3, '--device', 'cpu', '--json')
    assert result.exit_code == 0, result.output
    data = json.loads(result.output.strip().splitlines()[-1])
    assert data['train_utterances_per_s'] > 0 and data['inference_utterances_per_s'] > 0
    assert data['train_utterances'] > 0 and data['hidden_channels'] == 16


@pytest.mark.parametrize('args, fragments', [
    (['--window', '-1'], ["'--window'", '>= 0']),
    (['--modalities', 't,x'], ["'--modalities'", "'x'"]),
    (['--modalities', 'v', '--feature-dims', 't=16,a=8'], ['asks for v', 'only t,a']),
    (['--dataset', 'no-such-data'], ['unknown dataset']),
    (['--device', 'tpu'], ["'--device'"]),
    (['--lr', '0'], ["'--lr'", 'positive']),
    (['--epochs', '0'], ["'--epochs'"]),
    (['--fusion-weights', 't=0.8,a=0.2'], ["'--fusion-weights'", 'one weight per']),
    (['--fusion-weights', 't=abc,a=1,v=1'], ["'--fusion-weights'", 'non-numeric']),
    (['--select-on', 'train'], ["'--select-on'"]),
    (['--conv', 'gcn'], ["'--conv'"]),
    (['--data-option', 'nonsense'], ['KEY=VALUE']),
    (['--data-option', 'no_such_knob=1'], ['no_such_knob']),
    (['--resume'], ["'--resume'"]),
    (['--text-encoder', 'minilm'], ["'--text-encoder'", 'transcript datasets']),
])
def test_train_rejects_bad_values(args, fragments):
    # Later options win in click, so the bad value overrides SMALL's.
    result = invoke('train', *SMALL, '--epochs', 1, '-q', *args)
    assert_clean_error(result, *fragments)


def test_config_file_precedence(tmp_path):
    config = tmp_path / 'run.toml'
    config.write_text('epochs = 3\nlr = 0.002\nwindow = 2\nnum-dialogues = 12\n'
                      'feature_dims = { t = 16, a = 8, v = 8 }\nhidden_channels = 16\n'
                      'batch_size = 4\ndevice = "cpu"\n')
    out = tmp_path / 'run'
    result = invoke('train', '--config', config, '--epochs', 1, '--out', out, '-q')
    assert result.exit_code == 0, result.output
    used = json.loads((out / 'metrics.json').read_text())['config']
    assert used['epochs'] == 1  # command line beats file
    assert used['lr'] == 0.002 and used['window'] == 2  # file beats preset
    assert used['weight_decay'] == 5e-5  # preset (IEMOCAP-like) beats dataclass default
    assert used['feature_dims'] == DIMS


def test_config_file_errors(tmp_path):
    bad_key = tmp_path / 'bad.toml'
    bad_key.write_text('epochs = 1\nlearning_rate = 0.1\n')
    assert_clean_error(invoke('train', '--config', bad_key), 'learning_rate', 'valid keys')
    bad_value = tmp_path / 'neg.toml'
    bad_value.write_text('window = -2\n')
    assert_clean_error(invoke('train', '--config', bad_value), "'window'")
    broken = tmp_path / 'broken.toml'
    broken.write_text('epochs = [\n')
    assert_clean_error(invoke('train', '--config', broken), 'not valid TOML')
    assert_clean_error(invoke('train', '--config', tmp_path / 'missing.toml'), 'cannot read')


def test_bad_checkpoints(trained, tmp_path):
    out, _ = trained
    csv_path = tmp_path / 'p.csv'
    assert_clean_error(invoke('evaluate', '--checkpoint', tmp_path / 'missing.pt'),
                       'does not exist')
    corrupt = tmp_path / 'corrupt.pt'
    corrupt.write_bytes((out / 'best.pt').read_bytes()[:500])
    assert_clean_error(invoke('evaluate', '--checkpoint', corrupt), 'cannot be read')
    assert_clean_error(invoke('predict', '--checkpoint', corrupt, '--output', csv_path),
                       'cannot be read')
    # A checkpoint used with data of another configuration (wider text features).
    result = invoke('evaluate', '--checkpoint', out / 'best.pt', '--dataset',
                    'synthetic-iemocap', '--data-option', 'num_dialogues=12',
                    '--data-option', 'feature_dims={"t": 32, "a": 8, "v": 8}')
    assert_clean_error(result, 'feature widths')
    assert not csv_path.exists()


def test_resume_with_other_configuration(trained, tmp_path):
    out, _ = trained
    copy = tmp_path / 'run'
    copy.mkdir()
    (copy / 'last.pt').write_bytes((out / 'last.pt').read_bytes())
    result = invoke('train', *SMALL, '--hidden-channels', 32, '--epochs', 3, '--out', copy,
                    '--resume', '-q')
    assert_clean_error(result, 'hidden_channels')
