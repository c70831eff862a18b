import os
import pytest

from dsgdn_pyg.train import ConfigError, TrainConfig, train
from dsgdn_pyg.train.run_folder import LOCK_NAME, RunFolderBusy, run_folder_lock

TINY = dict(num_dialogues=12, feature_dims={'t': 16, 'a': 8, 'v': 8}, hidden_channels=16,
            window=3, batch_size=4, epochs=1, quiet=True, device='cpu')
CLI_TINY = ['--num-dialogues', '12', '--feature-dims', 't=16,a=8,v=8', '--hidden-channels',
            '16', '--window', '3', '--batch-size', '4', '--device', 'cpu', '--epochs', '1']


def test_a_run_into_a_busy_folder_stops_before_writing(tmp_path):
    out = tmp_path / 'run'
    with run_folder_lock(str(out)) as lock:
        assert open(lock).read().startswith(f"{os.getpid()} on ")
        with pytest.raises(RunFolderBusy, match=f"being written by another run \\(process "
                                                f"{os.getpid()} on "):
            train(TrainConfig(**TINY, out=str(out)))
        assert os.listdir(out) == [LOCK_NAME]  # nothing of the second run
    assert os.listdir(out) == []  # the lock goes with its holder


def test_a_stale_lock_is_taken_over_with_a_message(tmp_path, capsys):
    out = tmp_path / 'run'
    out.mkdir()
    # A lock file left by a killed run: its process is gone, so no one holds the flock.
    (out / LOCK_NAME).write_text('4194303 on elsewhere\n')
    metrics = train(TrainConfig(**dict(TINY, quiet=False), out=str(out)))
    assert metrics['epochs_run'] == 1
    err = capsys.readouterr().err
    assert f"taking over the stale lock {out / LOCK_NAME} of process 4194303 on elsewhere" \
        in err
    assert sorted(os.listdir(out)) == ['best.pt', 'last.pt', 'log.jsonl', 'metrics.json']


def test_out_that_is_a_file_is_a_config_error_and_the_file_stays(tmp_path):
    path = tmp_path / 'notes.txt'
    path.write_text('mine')
    with pytest.raises(ConfigError, match='is a file, not a directory') as info:
        train(TrainConfig(**TINY, out=str(path)))
    assert info.value.field == 'out'
    assert path.read_text() == 'mine'


def cli(*args):
    from click.testing import CliRunner

    from dsgdn_pyg.cli import main
    return CliRunner().invoke(main, [str(a) for a in args])


def test_cli_two_runs_into_one_folder_the_second_is_refused(tmp_path):
    # A live run holds the folder (here this process, through another open file: the flock
    # conflicts all the same): `train --out` into it exits non-zero with one line naming the
    # folder and the owner, and writes nothing.
    out = tmp_path / 'run'
    with run_folder_lock(str(out)):
        result = cli('train', *CLI_TINY, '--out', out)
        assert os.listdir(out) == [LOCK_NAME]
    assert result.exit_code == 1 and 'Traceback' not in result.output, result.output
    assert f"Error: {str(out)!r} is being written by another run (process {os.getpid()} on " \
        in result.output, result.output


def test_cli_out_that_is_a_file(tmp_path):
    path = tmp_path / 'notes.txt'
    path.write_text('mine')
    result = cli('train', *CLI_TINY, '--out', path)
    assert result.exit_code == 2 and 'Traceback' not in result.output, result.output
    assert "'--out'" in result.output and 'is a file, not a directory' in result.output
    assert path.read_text() == 'mine'
