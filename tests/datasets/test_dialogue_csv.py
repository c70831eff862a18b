import os
from pathlib import Path

import numpy as np
from sklearn.preprocessing import StandardScaler
import pytest
import torch
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import make_pipeline, make_union

from dsgdn_pyg.datasets import load_corpus
from dsgdn_pyg.datasets.dialogue_csv import (MELD_MAPPING, DialogueCSVDataset, parse_speaker,
                                             resolve_mapping)
from dsgdn_pyg.text.tfidf import WORD_AND_PUNCTUATION_TOKENS, WORD_TOKENS, TfidfFeaturizer

from fixtures import (MELD_LABELS, dialogues_from_rows, meld_rows, write_csv, write_meld_dir)

MELD_DIR = Path(__file__).parents[2] / '..' / 'shared' / 'data' / 'meld'
TEXTS = ['Oh my God!', 'You are kidding me.', 'What? No way, no way.', 'I love this coffee',
         'okay okay', 'Sorry... really sorry!', 'the coffee is great', 'I hate it', 'what']


def first_appearance(names):
    order = {}
    return [order.setdefault(n, len(order)) for n in names]


# --------------------------------------------------------------------------------------------
# TfidfFeaturizer

@pytest.mark.parametrize('char_ngrams,punctuation', [(False, True), (True, False)])
def test_featurizer_matches_scikit_learn_pipeline(char_ngrams, punctuation):
    featurizer = TfidfFeaturizer(svd_dim=4, char_ngrams=char_ngrams, min_df=1,
                                punctuation=punctuation).fit(TEXTS)
    words = TfidfVectorizer(ngram_range=(1, 2), token_pattern=WORD_AND_PUNCTUATION_TOKENS
                            if punctuation else r'(?u)\b\w\w+\b')
    blocks = [words, TfidfVectorizer(analyzer='char_wb', ngram_range=(2, 5))] \
        if char_ngrams else [words]
    reference = make_pipeline(make_union(*blocks),
                              TruncatedSVD(4, algorithm='randomized', n_iter=5, random_state=0),
                              StandardScaler())
    reference.fit(TEXTS)
    new = ['my coffee is okay!', 'no no no', 'unseen words only']
    expected = reference.transform(new)
    assert featurizer.out_channels == 4
    np.testing.assert_allclose(featurizer.transform(new), expected, atol=1e-4, rtol=1e-5)
    raw = TfidfFeaturizer(svd_dim=4, char_ngrams=char_ngrams, min_df=1,
                         punctuation=punctuation, standardize=False).fit(TEXTS)
    np.testing.assert_allclose(raw.transform(new), reference[:-1].transform(new), atol=1e-5)


def test_token_patterns():
    import re
    assert re.findall(WORD_AND_PUNCTUATION_TOKENS, 'I did it?! No...') == \
        ['I', 'did', 'it', '?', '!', 'No', '.', '.', '.']
    assert re.findall(WORD_TOKENS, 'I did it?! No...') == ['did', 'it', 'No']
    vocabulary = TfidfFeaturizer(svd_dim=None, min_df=1).fit(['Really?!']).blocks[0]['vocabulary']
    assert sorted(vocabulary) == sorted(['really', '?', '!', 'really ?', '? !'])


def test_featurizer_without_svd_is_tfidf():
    featurizer = TfidfFeaturizer(svd_dim=None, min_df=2, sublinear_tf=True).fit(TEXTS)
    reference = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True,
                                token_pattern=r'(?u)\b\w+\b|[^\w\s]').fit(TEXTS)
    new = TEXTS[:3] + ['coffee coffee coffee okay']
    np.testing.assert_allclose(featurizer.transform(new),
                               reference.transform(new).toarray(), atol=1e-6)
    assert featurizer.out_channels == len(reference.vocabulary_)
    assert featurizer.transform(['zzz qqq']).sum() == 0  # unknown words: a zero vector


def test_featurizer_state_round_trip_weights_only(tmp_path):
    featurizer = TfidfFeaturizer(svd_dim=5, char_ngrams=True).fit(TEXTS)
    before = featurizer.transform(TEXTS + ['brand new text!'])
    path = tmp_path / 'featurizer.pt'
    torch.save(featurizer.state_dict(), path)
    state = torch.load(path, weights_only=True)  # plain arrays, no scikit-learn objects
    restored = TfidfFeaturizer.from_state_dict(state)
    assert np.array_equal(restored.transform(TEXTS + ['brand new text!']), before)
    featurizer.save(tmp_path / 'saved.pt')
    assert np.array_equal(TfidfFeaturizer.load(tmp_path / 'saved.pt').transform(TEXTS[:2]),
                          before[:2])
    assert restored.options == featurizer.options


def test_featurizer_caps_svd_dim_and_checks_arguments():
    assert TfidfFeaturizer(svd_dim=300, min_df=1).fit(TEXTS[:3]).out_channels == 3  # 3 texts
    with pytest.raises(ValueError, match="'svd_dim'"):
        TfidfFeaturizer(svd_dim=-1)
    with pytest.raises(ValueError, match="'max_features'"):
        TfidfFeaturizer(max_features=0)
    with pytest.raises(ValueError, match='not fitted'):
        TfidfFeaturizer().transform(['a'])
    with pytest.raises(ValueError, match='single string'):
        TfidfFeaturizer().fit('one text')
    with pytest.raises(ValueError, match='TfidfFeaturizer state'):
        TfidfFeaturizer.from_state_dict({'options': {}})


# --------------------------------------------------------------------------------------------
# Speakers and mapping

def test_parse_speaker(tmp_path):
    assert parse_speaker("['Monica Geller']") == 'Monica Geller'
    assert parse_speaker(" ['Ross', 'Rachel'] ") == 'Ross, Rachel'
    assert parse_speaker('Chandler ') == 'Chandler'
    assert parse_speaker('[1, 2]') == '[1, 2]'
    marker = tmp_path / 'marker'
    evil = f"[__import__('os').system('touch {marker}')]"
    assert parse_speaker(evil) == evil  # kept as text, never evaluated
    assert not marker.exists()


def test_resolve_mapping():
    assert resolve_mapping(None) == {**MELD_MAPPING, 'dialogue': ['Dialogue_ID']}
    custom = resolve_mapping({'files': {'valid': ''}, 'dialogue': ['Season', 'Episode']})
    assert custom['files'] == {'train': 'train_sent_emo.csv', 'test': 'test_sent_emo.csv'}
    assert custom['dialogue'] == ['Season', 'Episode']
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['utterance'\]"):
        resolve_mapping({'utterance': 'Text'})
    with pytest.raises(ValueError, match="'dialogue' must be"):
        resolve_mapping({'dialogue': []})
    with pytest.raises(ValueError, match="unknown split"):
        resolve_mapping({'files': {'dev': 'x.csv'}})
    with pytest.raises(ValueError, match="needs a 'train' file"):
        resolve_mapping({'files': {'train': ''}})


# --------------------------------------------------------------------------------------------
# Loading

def load(name, tmp_path, **options):
    options.setdefault('svd_dim', 6)
    return load_corpus(name, root=str(tmp_path / 'cache'), log=False, **options)


@pytest.mark.parametrize('list_speakers', [False, True])
def test_meld_csv_dialogues_order_speakers_labels_and_features(tmp_path, list_speakers):
    rows = write_meld_dir(tmp_path / 'meld', list_speakers=list_speakers)
    corpus = load(f'meld-csv:{tmp_path / "meld"}', tmp_path)
    assert corpus.label_names == MELD_LABELS and corpus.modalities == ['t']
    assert corpus.meta['valid_split'] == 'file'

    # The reference transform: fitted independently on the training texts only.
    train_texts = [r['Utterance'] for d in dialogues_from_rows(rows['train']).values()
                   for r in d]
    reference = TfidfFeaturizer(svd_dim=6).fit(train_texts)
    largest = 0
    for split in ('train', 'valid', 'test'):
        expected = dialogues_from_rows(rows[split])
        # dialogues in order of first appearance in the file
        assert [d.dialogue_id for d in corpus.split(split)] == list(expected)
        for data in corpus.split(split):
            utterances = expected[data.dialogue_id]
            names = [r['Speaker'].strip("[]'") for r in utterances]
            assert data.speaker.tolist() == first_appearance(names)
            largest = max(largest, len(set(names)))
            assert data.y.tolist() == [MELD_LABELS.index(r['Emotion']) for r in utterances]
            np.testing.assert_allclose(
                data.x_t.numpy(), reference.transform([r['Utterance'] for r in utterances]),
                atol=1e-5)
    assert corpus.num_speakers == largest


def test_csv_with_custom_mapping_and_held_out_validation(tmp_path):
    rows = meld_rows(0, 20, labels=['calm', 'upset', 'glad'])
    renamed = [{'episode': r['Season'], 'scene': r['Dialogue_ID'], 'turn': r['Utterance_ID'],
                'who': r['Speaker'], 'line': r['Utterance'], 'feeling': r['Emotion']}
               for r in rows]
    os.makedirs(tmp_path / 'data')
    write_csv(tmp_path / 'data' / 'all.csv', renamed)
    write_csv(tmp_path / 'data' / 'held.csv', renamed[:15])
    mapping = {'files': {'train': 'all.csv', 'valid': '', 'test': 'held.csv'},
               'text': 'line', 'speaker': 'who', 'label': 'feeling', 'order': 'turn',
               'dialogue': ['episode', 'scene']}
    corpus = load(f'csv:{tmp_path / "data"}', tmp_path, csv=mapping, valid_fraction=0.2,
                  seed=1)
    assert corpus.meta['valid_split'] == 'random'
    assert len(corpus.valid) == 4 and len(corpus.train) == 16
    expected = dialogues_from_rows(renamed, dialogue='scene', order='turn')
    assert sorted(d.dialogue_id for d in corpus.train + corpus.valid) == \
        sorted(f'1/{d}' for d in expected)
    # Label names come from the training dialogues, sorted.
    train_labels = {r['feeling'] for d in corpus.train for r in expected[d.dialogue_id[2:]]}
    assert corpus.label_names == sorted(train_labels)
    # The text transform is fitted on the 16 training dialogues only.
    texts = [r['line'] for d in corpus.train for r in expected[d.dialogue_id[2:]]]
    state = corpus.meta['text_featurizer']
    assert state['blocks'][0]['vocabulary'] == \
        TfidfFeaturizer(svd_dim=6).fit(texts).state_dict()['blocks'][0]['vocabulary']


def test_file_order_when_order_column_is_empty(tmp_path):
    rows = meld_rows(3, 4, shuffle=False)
    os.makedirs(tmp_path / 'd')
    write_csv(tmp_path / 'd' / 'train_sent_emo.csv', rows[::-1])  # reversed
    corpus = load(f'meld-csv:{tmp_path / "d"}', tmp_path,
                  csv={'order': '', 'files': {'valid': '', 'test': ''}}, valid_fraction=0.0)
    for data in corpus.train:
        expected = [r for r in rows[::-1] if r['Dialogue_ID'] == data.dialogue_id]
        assert data.y.tolist() == [MELD_LABELS.index(r['Emotion']) for r in expected]


def test_empty_label_cell_is_unlabelled(tmp_path):
    rows = write_meld_dir(tmp_path / 'm')
    rows['test'][0]['Emotion'] = ''
    write_csv(tmp_path / 'm' / 'test_sent_emo.csv', rows['test'])
    corpus = load(f'meld-csv:{tmp_path / "m"}', tmp_path)
    dialogue = next(d for d in corpus.test if d.dialogue_id == rows['test'][0]['Dialogue_ID'])
    ordered = dialogues_from_rows(rows['test'])[dialogue.dialogue_id]
    position = [r['Sr No.'] for r in ordered].index(rows['test'][0]['Sr No.'])
    assert dialogue.y[position] == -1 and (dialogue.y >= 0).sum() == len(ordered) - 1


def test_new_csvs_use_the_training_transform(tmp_path):
    write_meld_dir(tmp_path / 'train', seed=0)
    trained = load(f'meld-csv:{tmp_path / "train"}', tmp_path)
    featurizer = TfidfFeaturizer.load(trained.meta['text_featurizer_path'])
    new_rows = meld_rows(50, 3)
    os.makedirs(tmp_path / 'new')
    write_csv(tmp_path / 'new' / 'train_sent_emo.csv', new_rows)
    write_csv(tmp_path / 'new' / 'dev_sent_emo.csv', new_rows)
    write_csv(tmp_path / 'new' / 'test_sent_emo.csv', new_rows)
    for given in (trained.meta['text_featurizer_path'], trained.meta['text_featurizer']):
        new = load(f'meld-csv:{tmp_path / "new"}', tmp_path, text_featurizer=given)
        assert new.meta['featurizer_fitted_here'] is False
        expected = dialogues_from_rows(new_rows)
        for data in new.test:
            texts = [r['Utterance'] for r in expected[data.dialogue_id]]
            assert np.array_equal(data.x_t.numpy(), featurizer.transform(texts))


def test_cache_is_keyed_by_options_and_mapping(tmp_path):
    write_meld_dir(tmp_path / 'm')
    root = tmp_path / 'cache'
    base = DialogueCSVDataset(tmp_path / 'm', root=root, svd_dim=6, log=False)
    same = DialogueCSVDataset(tmp_path / 'm', root=root, svd_dim=6, log=False)
    wider = DialogueCSVDataset(tmp_path / 'm', root=root, svd_dim=7, log=False)
    chars = DialogueCSVDataset(tmp_path / 'm', root=root, svd_dim=6, char_ngrams=True,
                               log=False)
    remapped = DialogueCSVDataset(tmp_path / 'm', {'speaker': 'Sentiment'}, root=root,
                                  svd_dim=6, log=False)
    keys = [d.processed_paths[0] for d in (base, wider, chars, remapped)]
    assert same.processed_paths[0] == keys[0] and len(set(keys)) == 4
    assert wider.feature_dims == {'t': 7}


# --------------------------------------------------------------------------------------------
# Validation

def test_label_never_seen_in_training(tmp_path):
    rows = write_meld_dir(tmp_path / 'm', labels=['neutral', 'joy'])
    rows['valid'][3]['Emotion'] = 'anger'
    write_csv(tmp_path / 'm' / 'dev_sent_emo.csv', rows['valid'])
    dialogue = rows['valid'][3]['Dialogue_ID']
    with pytest.raises(ValueError) as info:
        load(f'csv:{tmp_path / "m"}', tmp_path)
    message = str(info.value)
    assert 'dev_sent_emo.csv' in message and f"dialogue '{dialogue}'" in message
    assert "field 'label' (column 'Emotion')" in message and "'anger'" in message
    assert 'never occurs in the training split' in message and 'line 5' in message


def test_label_outside_the_fixed_meld_names(tmp_path):
    rows = write_meld_dir(tmp_path / 'm')
    rows['train'][0]['Emotion'] = 'happy'
    write_csv(tmp_path / 'm' / 'train_sent_emo.csv', rows['train'])
    with pytest.raises(ValueError, match=r"train_sent_emo.csv: dialogue .*'happy' is not one"):
        load(f'meld-csv:{tmp_path / "m"}', tmp_path)


def test_csv_without_a_mapped_column(tmp_path):
    rows = write_meld_dir(tmp_path / 'm')
    columns = [c for c in rows['test'][0] if c != 'Utterance_ID']
    write_csv(tmp_path / 'm' / 'test_sent_emo.csv', rows['test'], columns)
    with pytest.raises(ValueError) as info:
        load(f'meld-csv:{tmp_path / "m"}', tmp_path)
    message = str(info.value)
    assert 'test_sent_emo.csv' in message and "column 'Utterance_ID'" in message
    assert "mapping's 'order'" in message and "'Utterance'" in message  # lists the columns
    with pytest.raises(ValueError, match="column 'Text' .*'text'"):
        load(f'meld-csv:{tmp_path / "m"}', tmp_path, csv={'text': 'Text'})


def test_bad_order_values(tmp_path):
    rows = write_meld_dir(tmp_path / 'm')
    dialogue = rows['train'][0]['Dialogue_ID']
    rows['train'][0]['Utterance_ID'] = 'first'
    write_csv(tmp_path / 'm' / 'train_sent_emo.csv', rows['train'])
    with pytest.raises(ValueError, match=f"dialogue '{dialogue}': field 'order' .*'first' is "
                                         f"not a number"):
        load(f'meld-csv:{tmp_path / "m"}', tmp_path)
    same = [r for r in rows['test'] if r['Dialogue_ID'] == rows['test'][0]['Dialogue_ID']]
    same[1]['Utterance_ID'] = same[0]['Utterance_ID']
    rows['train'][0]['Utterance_ID'] = '0'
    write_csv(tmp_path / 'm' / 'train_sent_emo.csv', rows['train'])
    write_csv(tmp_path / 'm' / 'test_sent_emo.csv', rows['test'])
    with pytest.raises(ValueError, match="field 'order' .*repeats value"):
        load(f'meld-csv:{tmp_path / "m"}', tmp_path)


def test_missing_directory_or_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='not a directory'):
        load(f'csv:{tmp_path / "nowhere"}', tmp_path)
    write_meld_dir(tmp_path / 'm')
    os.remove(tmp_path / 'm' / 'dev_sent_emo.csv')
    with pytest.raises(FileNotFoundError, match='dev_sent_emo.csv'):
        load(f'csv:{tmp_path / "m"}', tmp_path)


# --------------------------------------------------------------------------------------------
# The real MELD transcripts

@pytest.mark.skipif(not MELD_DIR.is_dir(), reason=f'MELD CSVs not found at {MELD_DIR}')
def test_real_meld_csvs(tmp_path):
    corpus = load(f'meld-csv:{MELD_DIR}', tmp_path, svd_dim=8)
    # Figures of the data README (../shared/data/meld/README.md).
    expected = {'train': (1038, 9989, 24), 'valid': (114, 1109, 23), 'test': (280, 2610, 33)}
    for split, (dialogues, utterances, longest) in expected.items():
        part = corpus.split(split)
        assert len(part) == dialogues
        assert sum(d.num_nodes for d in part) == utterances
        assert max(d.num_nodes for d in part) == longest
        assert all((d.y >= 0).all() for d in part)
        assert set(torch.cat([d.y for d in part]).tolist()) == set(range(7))
    assert corpus.label_names == MELD_LABELS
    assert corpus.feature_dims == {'t': 8}
    assert corpus.num_speakers <= 9
