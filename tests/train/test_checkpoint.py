import csv
import os
import re

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score

from dsgdn_pyg.datasets import load_corpus
from dsgdn_pyg.inference.evaluate import evaluate, predict, write_predictions
from dsgdn_pyg.inference.loading import model_from_checkpoint
from dsgdn_pyg.train import CheckpointError, TrainConfig, load_checkpoint, save_checkpoint, train
from dsgdn_pyg.train.checkpoint import CHECKPOINT_VERSION, check_format

DIMS = {'t': 16, 'a': 8, 'v': 8}


@pytest.fixture(scope='module')
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp('run')
    metrics = train(TrainConfig(num_dialogues=12, feature_dims=DIMS, hidden_channels=16,
                                window=3, batch_size=4, epochs=2, lr=3e-3, quiet=True,
                                device='cpu', out=str(out)))
    return out, metrics


def test_roundtrip_and_atomic(tmp_path):
    path = tmp_path / 'x.pt'
    payload = {'model_config': {'a': 1}, 'model_state': {'w': torch.arange(3.0)},
               'label_names': ['x', 'y'], 'dataset': 'd', 'data_options': {}, 'data_seed': 0,
               'window': 2, 'modalities': ['t'], 'train_config': {}, 'epoch': 1,
               'rng': torch.get_rng_state()}
    save_checkpoint(path, payload)
    loaded = load_checkpoint(path)
    assert torch.equal(loaded['model_state']['w'], torch.arange(3.0))
    assert torch.equal(loaded['rng'], payload['rng'])
    assert loaded['label_names'] == ['x', 'y']
    assert os.listdir(tmp_path) == ['x.pt']


def test_unreadable_checkpoints_raise_checkpoint_error(tmp_path, run_dir):
    out, _ = run_dir
    with pytest.raises(CheckpointError, match='does not exist'):
        load_checkpoint(tmp_path / 'missing.pt')

    garbage = tmp_path / 'garbage.pt'
    garbage.write_bytes(b'this is not a checkpoint')
    with pytest.raises(CheckpointError, match='cannot be read'):
        load_checkpoint(garbage)

    data = (out / 'best.pt').read_bytes()
    truncated = tmp_path / 'truncated.pt'
    truncated.write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointError, match='cannot be read'):
        load_checkpoint(truncated)

    foreign = tmp_path / 'foreign.pt'
    torch.save({'state_dict': {}}, foreign)
    with pytest.raises(CheckpointError, match='not a dsgdn-pyg checkpoint'):
        load_checkpoint(foreign)

    # Anything but tensors and plain containers is refused (weights_only loading).
    unsafe = tmp_path / 'unsafe.pt'
    torch.save({'format': 'dsgdn-pyg-checkpoint', 'obj': np.dtype('float32').type}, unsafe)
    with pytest.raises(CheckpointError, match='cannot be read'):
        load_checkpoint(unsafe)

    with pytest.raises(CheckpointError):
        evaluate(str(truncated))


def test_format_check_names_the_file_the_format_and_both_versions(tmp_path):
    # A file of another format, or of this format in another version, is refused before any
    # other entry is read; the messages name the file and say which entry is off.
    check_format({'format': 'f', 'format_version': 3}, 'f', 3, 'x.pt', 'an f file')
    for document in ({'format': 'g', 'format_version': 3}, ['f', 3], {'format_version': 3}):
        with pytest.raises(CheckpointError,
                           match=r"^'x.pt' is not an f file \(no 'format': 'f' entry\)$"):
            check_format(document, 'f', 3, 'x.pt', 'an f file')
    with pytest.raises(CheckpointError, match=r"^'x.pt' is an f file of format version 2; "
                                              r"this dsgdn-pyg reads version 3$"):
        check_format({'format': 'f', 'format_version': 2}, 'f', 3, 'x.pt', 'an f file')

    newer = tmp_path / 'newer.pt'
    save_checkpoint(newer, {'format_version': CHECKPOINT_VERSION + 1})
    with pytest.raises(CheckpointError, match=re.escape(
            f"'{newer}' is a dsgdn-pyg checkpoint of format version {CHECKPOINT_VERSION + 1}")):
        load_checkpoint(newer)


def test_evaluate_reproduces_training_scores(run_dir):
    out, metrics = run_dir
    result = evaluate(str(out / 'best.pt'), device='cpu')
    assert result['wa_f1'] == pytest.approx(metrics['test']['wa_f1'])
    assert result['confusion'] == metrics['test']['confusion']
    assert 'weighted avg' in result['report'] and 'frustrated' in result['report']
    valid = evaluate(str(out / 'best.pt'), split='valid', device='cpu')
    assert valid['wa_f1'] == pytest.approx(metrics['valid']['wa_f1'])


def test_predict_rows_match_sklearn(run_dir, tmp_path):
    out, _ = run_dir
    corpus = load_corpus('synthetic-iemocap', seed=0, num_dialogues=12, feature_dims=DIMS)
    rows = predict(str(out / 'best.pt'), device='cpu')
    assert len(rows) == sum(d.num_nodes for d in corpus.test)
    names = corpus.label_names
    expected_ids = [(d.dialogue_id, i) for d in corpus.test for i in range(d.num_nodes)]
    assert [(r['dialogue_id'], r['utterance']) for r in rows] == expected_ids

    probs = np.array([[r[f'prob_{n}'] for n in names] for r in rows])
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-9)
    assert [names[i] for i in probs.argmax(1)] == [r['predicted'] for r in rows]

    y = torch.cat([d.y for d in corpus.test]).numpy()
    assert [r['label'] for r in rows] == [names[i] for i in y]
    pred = np.array([names.index(r['predicted']) for r in rows])
    result = evaluate(str(out / 'best.pt'), device='cpu')
    assert result['wa_f1'] == pytest.approx(100 * f1_score(y, pred, average='weighted'))
    assert result['wa_acc'] == pytest.approx(100 * accuracy_score(y, pred))

    path = tmp_path / 'pred.csv'
    write_predictions(rows, path)
    with open(path, newline='') as f:
        read = list(csv.DictReader(f))
    assert len(read) == len(rows) and read[0]['dialogue_id'] == rows[0]['dialogue_id']
    assert float(read[5][f'prob_{names[2]}']) == pytest.approx(rows[5][f'prob_{names[2]}'])
    assert os.listdir(tmp_path) == ['pred.csv']


def test_checkpoint_of_other_configuration(run_dir):
    out, _ = run_dir
    # Data with other feature widths than the model was trained on.
    with pytest.raises(CheckpointError, match='feature widths'):
        evaluate(str(out / 'best.pt'), dataset='synthetic-iemocap',
                 data_options={'num_dialogues': 12, 'feature_dims': {'t': 32, 'a': 8, 'v': 8}})
    # Data without one of the model's modalities.
    with pytest.raises(CheckpointError, match='modalities'):
        predict(str(out / 'best.pt'), dataset='synthetic-iemocap',
                data_options={'num_dialogues': 12, 'feature_dims': {'t': 16, 'a': 8}})
    # Other labels.
    with pytest.raises(CheckpointError, match='labels'):
        evaluate(str(out / 'best.pt'), dataset='synthetic-meld',
                 data_options={'num_dialogues': 12, 'feature_dims': DIMS})
    # Weights that do not fit the recorded architecture.
    payload = load_checkpoint(out / 'best.pt')
    payload['model_config'] = {**payload['model_config'], 'hidden_channels': 8}
    with pytest.raises(CheckpointError, match='do not fit'):
        model_from_checkpoint(payload)


def test_load_model_rebuilds_architecture(run_dir):
    out, _ = run_dir
    model, payload = model_from_checkpoint(str(out / 'best.pt'))
    assert not model.training
    assert model.config() == payload['model_config']
    for key, value in model.state_dict().items():
        assert torch.equal(value, payload['model_state'][key])


def test_run_on_a_given_corpus_needs_it_again(tmp_path):
    corpus = load_corpus('synthetic-iemocap', seed=3, num_dialogues=9, feature_dims=DIMS)
    metrics = train(TrainConfig(hidden_channels=16, window=2, batch_size=4, epochs=1,
                                quiet=True, device='cpu', out=str(tmp_path)), corpus)
    with pytest.raises(CheckpointError, match='pass that corpus'):
        evaluate(str(tmp_path / 'best.pt'))
    result = evaluate(str(tmp_path / 'best.pt'), corpus=corpus, device='cpu')
    assert result['wa_f1'] == pytest.approx(metrics['test']['wa_f1'])
