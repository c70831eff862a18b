r"""Faults at the command line: each a one-line error (no traceback), a non-zero exit, and
nothing destroyed or half-written."""
import os

from click.testing import CliRunner

from dsgdn_pyg.cli import main


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_clean_error(result, *fragments):
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert 'Error' in result.output and 'Traceback' not in result.output, result.output
    for fragment in fragments:
        assert fragment in result.output, result.output


def test_num_dialogues_with_a_pickle_dataset(tmp_path):
    result = invoke('train', '--dataset', f'pickle:{tmp_path / "iemocap.pkl"}',
                    '--num-dialogues', 5, '--epochs', 1)
    assert_clean_error(result, "'--num-dialogues'", "does not apply to dataset 'pickle:")
    assert 'unexpected keyword' not in result.output
    assert os.listdir(tmp_path) == []


def test_predict_output_that_is_an_input_or_the_checkpoint_is_refused(tmp_path):
    # Refused before the checkpoint is even read: nothing is written, nothing replaced.
    talk = tmp_path / 'talk.csv'
    talk.write_text('Speaker,Utterance\nA,hi\n')
    model = tmp_path / 'm.pt'
    model.write_bytes(b'not read')
    for output, flag in [(talk, '--input'), (model, '--checkpoint'),
                         (tmp_path / '.' / 'talk.csv', '--input')]:
        result = invoke('predict', '--checkpoint', model, '--input', talk, '--output', output)
        assert_clean_error(result, "'--output'", flag, 'would replace it')
    assert talk.read_text() == 'Speaker,Utterance\nA,hi\n' and model.read_bytes() == b'not read'
    result = invoke('predict', '--checkpoint', model, '--output', model)
    assert_clean_error(result, "'--output'", '--checkpoint')
    assert sorted(os.listdir(tmp_path)) == ['m.pt', 'talk.csv']


def test_a_value_from_the_config_file_names_the_file(tmp_path):
    config = tmp_path / 'run.toml'
    config.write_text('hidden-channels = -3\n')
    result = invoke('train', '--config', config, '--epochs', 1)
    assert_clean_error(result, f"config file {str(config)!r}", 'hidden_channels')


def test_train_disk_full_says_so_and_keeps_the_checkpoints(tmp_path, monkeypatch):
    import torch

    from test_io import full_disk
    out = tmp_path / 'run'
    small = ['--num-dialogues', 12, '--feature-dims', 't=16,a=8,v=8', '--hidden-channels', 16,
             '--window', 3, '--batch-size', 4, '--device', 'cpu', '--quiet']
    assert invoke('train', *small, '--epochs', 1, '--out', out).exit_code == 0
    def files():
        return {name: (out / name).read_bytes() for name in os.listdir(out)
                if (out / name).is_file()}

    before = files()
    full_disk(monkeypatch)
    result = invoke('train', *small, '--epochs', 2, '--resume', '--out', out)
    assert_clean_error(result, 'no space left on device while writing', str(out / 'best.pt')
                       if 'best.pt' in result.output else str(out))
    assert 'unexpected pos' not in result.output and 'enforce fail' not in result.output
    monkeypatch.undo()
    assert files() == before and 'best.pt' in before
    torch.load(out / 'last.pt', weights_only=True)  # intact
