"""`dsgdn-pyg serve` as a real uvicorn process on a free port: it answers HTTP and the
WebSocket, and SIGTERM ends it with exit status 0; without the extra, one line names it."""
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from serve_requests import dialogues
from dsgdn_pyg.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def wait_healthy(url, process, seconds=120):
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read().decode()
        try:
            if httpx.get(f'{url}/healthz', timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError('the server did not become healthy')


@contextlib.contextmanager
def served(model_folder, tmp_path, key, *options):
    r"""A `dsgdn-pyg serve` process with one API key, healthy: yields (url, headers,
    process); killed on the way out if a test did not stop it (:func:`stopped`)."""
    keys = tmp_path / 'keys'
    keys.write_text('# one key a line\n' + key + '\n')
    port = free_port()
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    process = subprocess.Popen(
        [sys.executable, '-m', 'dsgdn_pyg.cli', 'serve', '--model', model_folder, '--port',
         str(port), '--api-key-file', str(keys), *options],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = f'http://127.0.0.1:{port}'
    try:
        wait_healthy(url, process)
        yield url, {'Authorization': 'Bearer ' + key}, process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def stopped(process) -> str:
    r"""SIGTERM, then the process's standard error once it exited with status 0."""
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=90)
    assert process.returncode == 0, err.decode()
    return err.decode()


def test_serve_process_answers_and_exits_0_on_sigterm(model_folder, tmp_path):
    import httpx
    from websockets.sync.client import connect

    with served(model_folder, tmp_path, 'x' * 32) as (url, headers, process):
        response = httpx.post(f'{url}/v1/predict', json={'dialogues': dialogues(2)},
                              headers=headers, timeout=30)
        assert response.status_code == 200 and len(response.json()['dialogues']) == 2
        assert httpx.get(f'{url}/v1/model', timeout=30).status_code == 401
        with connect(url.replace('http', 'ws') + '/v1/stream',
                     additional_headers=headers) as ws:
            ws.send(json.dumps({'dialogue': 'd', 'speaker': 'a', 'text': 'oh my god'}))
            assert json.loads(ws.recv(timeout=30))['index'] == 0
        err = stopped(process)
    log = [json.loads(line) for line in err.splitlines() if line.startswith('{')]
    assert {(l['route'], l['status']) for l in log} >= {('/v1/predict', 200),
                                                        ('/v1/model', 401)}
    assert 'x' * 32 not in err


def test_workers_serve_from_several_processes_and_exit_0_on_sigterm(model_folder, tmp_path):
    # --workers 2: uvicorn's supervisor and two processes, each with its own model; requests
    # are answered (by either) as by one process, and SIGTERM ends them all with status 0.
    import httpx

    from dsgdn_pyg.inference.predict import predict_dialogues

    with served(model_folder, tmp_path, 'k' * 32, '--workers', '2') as (url, headers, process):
        answers = [httpx.post(f'{url}/v1/predict', json={'dialogues': dialogues(2)},
                              headers=headers, timeout=60) for _ in range(4)]
        assert httpx.get(f'{url}/v1/model', timeout=30).status_code == 401
        err = stopped(process)
    assert all(a.status_code == 200 for a in answers)
    # The same probabilities as predict (float rounding of one forward pass: 1e-5).
    expected = predict_dialogues(model_folder, dialogues(2), device='cpu')
    for answer in answers:
        for got, want in zip(answer.json()['dialogues'], expected):
            for utterance, row in zip(got['utterances'], want.probabilities):
                assert list(utterance['probabilities'].values()) == \
                    pytest.approx(list(row), abs=1e-5)
    assert 'k' * 32 not in err


def test_without_the_extra_one_line_names_it(monkeypatch, model_folder):
    import importlib.util

    from click.testing import CliRunner

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, 'find_spec',
                        lambda name, *a: None if name == 'uvicorn' else find_spec(name, *a))
    result = CliRunner().invoke(main, ['serve', '--model', model_folder])
    assert result.exit_code == 1
    assert result.output.strip() == 'Error: the server needs uvicorn: pip install ' \
                                    '"dsgdn-pyg[serve]"'


@pytest.mark.parametrize('args, message', [
    ([], 'give the model with --model DIR'),
    (['--model', 'no/such/folder'], "model 'no/such/folder' does not exist"),
    (['--max-batch', '0'], "Invalid value for '--max-batch'"),
])
def test_bad_options_are_one_line_errors(args, message, model_folder, tmp_path):
    from click.testing import CliRunner

    if args[:1] == ['--max-batch']:
        args = ['--model', model_folder] + args
    result = CliRunner().invoke(main, ['serve'] + args)
    assert result.exit_code != 0 and message in result.output, result.output


def test_a_bad_key_file_is_refused_without_showing_a_key(model_folder, tmp_path):
    from click.testing import CliRunner

    keys = tmp_path / 'keys'
    keys.write_text('short-secret\n')
    result = CliRunner().invoke(main, ['serve', '--model', model_folder, '--api-key-file',
                                       str(keys)])
    assert result.exit_code == 2 and 'shorter than 16 characters' in result.output
    assert 'short-secret' not in result.output
    result = CliRunner().invoke(main, ['serve', '--model', model_folder, '--api-key-file',
                                       str(tmp_path / 'none')])
    assert result.exit_code == 1 and 'cannot read' in result.output
