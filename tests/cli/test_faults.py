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
