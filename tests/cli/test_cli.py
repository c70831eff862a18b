import csv
import json
import os

import numpy as np
import pytest
import click
import torch
from click.testing import CliRunner
from sklearn.metrics import f1_score

from dsgdn_pyg import __version__
from benchmarks.scenarios import clipped_normal_lengths
from dsgdn_pyg.cli import main
from dsgdn_pyg.datasets import load_corpus

DIMS = {'t': 16, 'a': 8, 'v': 8}
# Tiny scenario shapes for `benchmark --scenario`.
TINY_CLI = ['--num-dialogues', 4, '--batch-size', 2, '--hidden-channels', 16, '--feature-dims',
            't=12,a=10,v=6', '--window', 3, '--num-threads', 1]
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
    assert sorted(os.listdir(out)) == ['best.pt', 'last.pt', 'log.jsonl', 'metrics.json', 'model']
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


def test_cli_scenario_json_last_line():
    # One real measuring process, end to end.
    result = invoke('benchmark', '--scenario', 'iemocap', '--impl', 'sparse', *TINY_CLI,
                    '--steps', 1, '--json')
    assert result.exit_code == 0, (result.output, result.stderr)
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data['scenario'] == 'iemocap' and 'dense' not in data
    assert data['num_utterances'] == sum(clipped_normal_lengths(4, 48, 20, 8, 110, 0))
    for key in ('train_utt_per_s', 'infer_ms_per_utt', 'peak_rss_mb', 'gemm_fraction'):
        assert data['sparse'][key] > 0
    assert data['sparse']['num_threads'] == 1 and data['sparse']['train_steps'] == 1
    assert data['sparse']['mmap_threshold'] == 4 << 20  # the command line's setting


@pytest.mark.parametrize('args, fragment', [
    (['--scenario', 'iemocap', '--dataset', 'synthetic-meld'], 'exclude each other'),
    (['--impl', 'dense'], '--impl only apply with --scenario'),
    (['--scenario', 'iemocap', '--hidden-channels', 1], "'hidden_channels'"),
    (['--scenario', 'iemocap', '--feature-dims', 't=x'], "'--feature-dims'"),
    (['--scenario', 'iemocap', '--device', 'cuda'], "'--device'"),
    (['--scenario', 'huge'], "'--scenario'"),
    (['--scenario', 'iemocap', '--repeats', 0], "'--repeats'"),
    (['--repeats', 2], '--repeats only apply with --scenario'),
])
def test_cli_scenario_rejects_bad_options(args, fragment):
    result = invoke('benchmark', *args)
    assert result.exit_code == 2 and 'Traceback' not in result.output
    assert fragment in result.stderr


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


def _train_options():
    return {p.name: p for p in main.commands['train'].params}


def test_every_setting_has_a_generated_option():
    from dsgdn_pyg.train.config import config_fields, default_text, setting_of, settings
    options = _train_options()
    assert set(config_fields()) <= set(options)
    command = main.commands['train']
    # Wide enough that no line wraps (click would break 'synthetic-iemocap' at the hyphen).
    ctx = click.Context(command, info_name='train', terminal_width=10_000,
                        max_content_width=10_000)
    help_text = ' '.join(command.get_help(ctx).split())
    for f in settings():
        option = options[f.name]
        assert option.default is None  # so that an explicit value can be told apart
        # The field's name, unless its declaration names another (--data-option,
        # --text-finetune: the spelling).
        flag = setting_of(f).option or '--' + f.name.replace('_', '-')
        assert flag in option.opts, f.name
        if f.name != 'data_options':
            assert f'[default: {default_text(f)}]' in help_text, f.name
    # One consistent default: the preset's, with the values of every preset.
    assert '--lr FLOAT Adam learning rate. [default: dataset preset: synthetic-iemocap 0.0002, ' \
           'IEMOCAP 6.8e-05, MELD 5e-05, transcripts 0.0003]' in help_text
    assert '--graph / --no-graph' in help_text and '-q, --quiet' in help_text


@pytest.mark.parametrize('args, fragments', [
    (['--dropout', '1'], ["'--dropout'", 'in [0, 1)']),
    (['--heads', '0'], ["'--heads'", 'integer >= 1']),
    (['--q-base', '2'], ["'--q-base'", 'in [0, 1]']),
    (['--num-dialogues', '2'], ["'--num-dialogues'", 'integer >= 3']),
    (['--feature-dims', 't=0,a=8,v=8'], ["'--feature-dims'", 'width of']),
    (['--cross-window', '2'], ["'--cross-window'", 'Sync-TVA setting']),
])
def test_generated_options_name_themselves_in_errors(args, fragments):
    assert_clean_error(invoke('train', *SMALL, '--epochs', 1, '-q', *args), *fragments)


def test_config_file_unknown_key_suggests_the_field(tmp_path):
    path = tmp_path / 'typo.toml'
    path.write_text('batchsize = 4\n')
    result = invoke('train', '--config', path)
    assert_clean_error(result, "unknown key 'batchsize'", "did you mean 'batch_size'?",
                       "'--config'")
    assert result.exit_code == 2


def test_boolean_switches_reach_the_config(tmp_path):
    out = tmp_path / 'run'
    result = invoke('train', *SMALL, '--epochs', 1, '--no-graph', '--no-class-weights',
                    '--patience', 0, '--data-option', 'num_dialogues=12', '--out', out, '-q')
    assert result.exit_code == 0, result.output
    used = json.loads((out / 'metrics.json').read_text())['config']
    assert used['graph'] is False and used['class_weights'] is False
    assert used['patience'] is None and used['num_dialogues'] == 12


def test_importing_the_cli_does_not_import_torch():
    # The options are generated from the settings at import; `--help` must stay instant.
    import subprocess
    import sys
    code = "import sys, dsgdn_pyg.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == 'False'
