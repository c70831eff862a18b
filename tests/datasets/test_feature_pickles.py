import os
import pickle

import numpy as np
import pytest
import torch

from dsgdn_pyg.datasets import load_corpus
from dsgdn_pyg.datasets.feature_pickles import (LAYOUTS, FeaturePickleDataset, describe_item,
                                                detect_layout)
from dsgdn_pyg.datasets.safe_pickle import UnsafePickleError

from fixtures import (IEMOCAP_LABELS, LAYOUT_ROLES, MELD_LABELS, ROBERTA, build_pickle,
                      write_pickle)


def load(path, tmp_path, **options):
    return load_corpus(f'pickle:{path}', root=str(tmp_path / 'cache'), log=False, **options)


def write(tmp_path, layout, name=None, **kwargs):
    obj, truth = build_pickle(layout, **kwargs)
    return write_pickle(obj, tmp_path / (name or f'{layout}.pkl')), obj, truth


def expected_speakers(values):
    # Independent statement of the rule: IEMOCAP 'M' -> 0, 'F' -> 1; one-hot -> its index.
    if isinstance(values[0], str):
        return [{'M': 0, 'F': 1}[v] for v in values]
    return [int(np.argmax(v)) for v in values]


def by_id(dialogues):
    return {d.dialogue_id: d for d in dialogues}


@pytest.mark.parametrize('layout', list(LAYOUT_ROLES))
def test_every_layout_loads_with_its_published_labels_and_splits(tmp_path, layout):
    path, _, truth = write(tmp_path, layout)
    corpus = load(path, tmp_path)
    assert corpus.meta['layout'] == layout
    assert corpus.label_names == (IEMOCAP_LABELS if truth.corpus == 'iemocap' else MELD_LABELS)

    train_ids = {str(d) for d in truth.train_ids}
    got = {s: [d.dialogue_id for d in corpus.split(s)] for s in ('train', 'valid', 'test')}
    assert got['test'] == [str(d) for d in truth.test_ids]
    if truth.valid_ids is not None:  # COSMIC: the file's own validation ids
        assert got['valid'] == [str(d) for d in truth.valid_ids]
        assert got['train'] == [str(d) for d in truth.train_ids]
        assert corpus.meta['valid_split'] == 'file'
    elif truth.dev_ids:  # MELD files that merged train and dev: the official dev ids
        assert got['valid'] == [str(d) for d in truth.dev_ids]
        assert set(got['train']) == train_ids - set(got['valid'])
        assert corpus.meta['valid_split'] == 'meld-dev'
    else:  # a seeded 10% of the training dialogues
        assert len(got['valid']) == 1
        assert set(got['train']) | set(got['valid']) == train_ids
        assert not set(got['train']) & set(got['valid'])
        assert corpus.meta['valid_split'] == 'random'

    key_of = {str(k): k for k in truth.fields['labels']}
    text_role = 'roberta1' if 'roberta1' in truth.fields else 'text'
    modalities = {'t': text_role}
    modalities.update({m: r for m, r in (('a', 'audio'), ('v', 'visual')) if r in truth.fields})
    assert corpus.feature_dims == {m: len(truth.fields[r][next(iter(key_of.values()))][0])
                                   for m, r in modalities.items()}
    largest = 0
    for data in corpus.train + corpus.valid + corpus.test:
        key = key_of[data.dialogue_id]
        assert data.y.tolist() == truth.fields['labels'][key]
        speakers = expected_speakers(truth.fields['speakers'][key])
        assert data.speaker.tolist() == speakers
        largest = max(largest, max(speakers) + 1)
        for m, role in modalities.items():
            expected = np.stack(truth.fields[role][key])
            assert torch.equal(data[f'x_{m}'], torch.from_numpy(expected))
        assert set(data.keys()) == {'y', 'speaker', 'dialogue_id', 'num_nodes'} | {
            f'x_{m}' for m in modalities}
    assert corpus.num_speakers == largest


def test_ten_item_layouts_are_told_apart_by_content():
    mmgcn, _ = build_pickle('mmgcn-meld-10')
    cosmic, _ = build_pickle('cosmic-iemocap-10')
    assert len(mmgcn) == len(cosmic) == 10
    # the documented rule: item 2 holds one integer per utterance vs. a vector per utterance
    assert describe_item(mmgcn[2])[0] == 'dict:integers'
    assert describe_item(cosmic[2]) == ('dict:vectors', 8)
    assert detect_layout(mmgcn).name == 'mmgcn-meld-10'
    assert detect_layout(cosmic).name == 'cosmic-iemocap-10'
    # COSMIC with unequal RoBERTa widths is not a COSMIC file
    broken = list(cosmic)
    broken[3] = {k: [np.zeros(5) for _ in v] for k, v in cosmic[3].items()}
    with pytest.raises(ValueError, match='unknown layout'):
        detect_layout(tuple(broken), 'x.pkl')


def test_layouts_are_mutually_exclusive():
    for layout in LAYOUT_ROLES:
        obj, _ = build_pickle(layout)
        kinds = [describe_item(item) for item in obj]
        from dsgdn_pyg.datasets.feature_pickles import _matches
        assert [l.name for l in LAYOUTS if _matches(l, kinds)] == [layout]


@pytest.mark.parametrize('layout', ['cosmic-meld-11', 'sdt-iemocap-12'])
def test_text_feature_choice(tmp_path, layout):
    path, _, truth = write(tmp_path, layout)
    layer3 = load(path, tmp_path, text_feature='roberta3')
    mean = load(path, tmp_path, text_feature='mean')
    assert mean.meta['text_feature'] == 'mean' and layer3.meta['text_feature'] == 'roberta3'
    for data in layer3.train:
        key = type(truth.test_ids[0])(data.dialogue_id)
        assert torch.equal(data.x_t, torch.from_numpy(np.stack(truth.fields['roberta3'][key])))
    for data in mean.test:
        key = type(truth.test_ids[0])(data.dialogue_id)
        layers = [np.stack(truth.fields[r][key]).astype(np.float64) for r in ROBERTA]
        expected = (layers[0] + layers[1] + layers[2] + layers[3]) / 4
        assert torch.allclose(data.x_t.double(), torch.from_numpy(expected), atol=1e-6)
    with pytest.raises(ValueError, match="'text_feature' must be one of"):
        load(path, tmp_path, text_feature='roberta5')


def test_text_feature_refused_for_single_text_layouts(tmp_path):
    path, _, _ = write(tmp_path, 'dialoguegcn-iemocap-9')
    with pytest.raises(ValueError, match="single text feature"):
        load(path, tmp_path, text_feature='mean')


def test_random_validation_split_is_seeded(tmp_path):
    path, _, truth = write(tmp_path, 'sdt-iemocap-12', num_train=20)
    ids = lambda c: [d.dialogue_id for d in c.valid]  # noqa: E731
    a, b = load(path, tmp_path, seed=3), load(path, tmp_path, seed=3)
    assert ids(a) == ids(b) and len(ids(a)) == 2
    others = {tuple(ids(load(path, tmp_path, seed=s))) for s in range(6)}
    assert len(others) > 1
    bigger = load(path, tmp_path, valid_fraction=0.25)
    assert len(bigger.valid) == 5 and len(bigger.train) == 15


def test_set_of_ids_gives_a_deterministic_order(tmp_path):
    obj, truth = build_pickle('dialoguegcn-iemocap-9')
    obj = list(obj)
    obj[7], obj[8] = set(obj[7]), set(obj[8])
    path = write_pickle(tuple(obj), tmp_path / 'sets.pkl')
    corpus = load(path, tmp_path, valid_fraction=0.0)
    assert [d.dialogue_id for d in corpus.test] == sorted(truth.test_ids)
    assert [d.dialogue_id for d in corpus.train] == sorted(truth.train_ids)


def test_custom_label_names(tmp_path):
    path, _, _ = write(tmp_path, 'sdt-iemocap-12')
    names = ['a', 'b', 'c', 'd', 'e', 'f', 'g']
    assert load(path, tmp_path, label_names=names).label_names == names
    with pytest.raises(ValueError, match='out of range for 2 classes'):
        load(path, tmp_path, label_names=['x', 'y'])


# --------------------------------------------------------------------------------------------
# The processed cache

def test_cache_is_reused_and_keyed_by_content_and_options(tmp_path, monkeypatch):
    path, obj, _ = write(tmp_path, 'sdt-iemocap-12')
    first = FeaturePickleDataset(path, root=tmp_path / 'cache', log=False)
    processed = first.processed_paths[0]
    assert os.path.dirname(processed) == first.processed_dir
    assert first.raw_dir == str(tmp_path)  # the user's file is read in place

    calls = []
    original = FeaturePickleDataset.read
    monkeypatch.setattr(FeaturePickleDataset, 'read',
                        lambda self: calls.append(1) or original(self))
    again = FeaturePickleDataset(path, root=tmp_path / 'cache', log=False)
    assert calls == [] and again.processed_paths[0] == processed
    assert torch.equal(again[0].x_t, first[0].x_t)

    other = FeaturePickleDataset(path, root=tmp_path / 'cache', text_feature='roberta2',
                                 log=False)
    assert calls == [1] and other.processed_paths[0] != processed

    FeaturePickleDataset(path, root=tmp_path / 'cache', force_reload=True, log=False)
    assert calls == [1, 1]

    # Same name, new content: processed again, under another key.
    obj[2][obj[10][0]][0] = (obj[2][obj[10][0]][0] + 1) % 6
    write_pickle(obj, path)
    changed = FeaturePickleDataset(path, root=tmp_path / 'cache', log=False)
    assert calls == [1, 1, 1] and changed.processed_paths[0] != processed


def test_processed_file_loads_weights_only_and_no_temp_files_remain(tmp_path):
    path, _, _ = write(tmp_path, 'mmgcn-meld-10')
    dataset = FeaturePickleDataset(path, root=tmp_path / 'cache', log=False)
    out = torch.load(dataset.processed_paths[0], weights_only=True)
    assert out['label_names'] == MELD_LABELS
    assert not [f for f in os.listdir(dataset.processed_dir) if f.endswith('.tmp')]
    assert len(dataset) == sum(len(v) for v in out['split_indices'].values())


def test_default_cache_root_from_environment(tmp_path, monkeypatch):
    path, _, _ = write(tmp_path, 'dialoguegcn-iemocap-9')
    monkeypatch.setenv('DSGDN_PYG_CACHE', str(tmp_path / 'env-cache'))
    dataset = FeaturePickleDataset(path, log=False)
    assert dataset.processed_paths[0].startswith(str(tmp_path / 'env-cache'))


# --------------------------------------------------------------------------------------------
# Validation: one test per kind of bad input; every message names file, dialogue and field

def corrupt(tmp_path, layout, change, **kwargs):
    obj, truth = build_pickle(layout, **kwargs)
    obj = list(obj)
    change(obj, truth)
    return write_pickle(tuple(obj), tmp_path / 'bad.pkl'), truth


def assert_refused(path, tmp_path, *patterns):
    with pytest.raises(ValueError) as info:
        load(path, tmp_path)
    message = str(info.value)
    assert 'bad.pkl' in message, message
    for pattern in patterns:
        assert pattern in message, message
    # nothing half-processed is left in the cache
    cache = tmp_path / 'cache'
    assert not cache.exists() or not [f for _, _, files in os.walk(cache) for f in files]
    return message


def test_truncated_file(tmp_path):
    data = pickle.dumps(build_pickle('sdt-iemocap-12')[0], protocol=2)
    path = tmp_path / 'bad.pkl'
    path.write_bytes(data[:len(data) // 2])
    assert_refused(path, tmp_path, 'truncated')


def test_not_a_pickle(tmp_path):
    path = tmp_path / 'bad.pkl'
    path.write_text('Dialogue_ID,Utterance\n0,hello\n')
    assert_refused(path, tmp_path, 'not a readable pickle')


def test_unsafe_pickle_is_refused(tmp_path):
    marker = tmp_path / 'marker'

    class Evil:
        def __reduce__(self):
            return os.system, (f'touch {marker}',)

    path = tmp_path / 'bad.pkl'
    path.write_bytes(pickle.dumps((Evil(),), protocol=2))
    with pytest.raises(UnsafePickleError, match='bad.pkl'):
        load(path, tmp_path)
    assert not marker.exists()


def test_unknown_tuple_layout(tmp_path):
    path, _ = corrupt(tmp_path, 'sdt-iemocap-12', lambda obj, t: obj.pop(9))  # drop sentences
    message = assert_refused(path, tmp_path, 'unknown layout', '11-item tuple')
    assert 'sdt-iemocap-12' in message  # lists the known layouts
    not_tuple = tmp_path / 'bad.pkl'
    not_tuple.write_bytes(pickle.dumps({'a': 1}))
    assert_refused(not_tuple, tmp_path, 'unknown layout', 'dict')


def test_feature_width_differs_between_utterances(tmp_path):
    def change(obj, truth):
        d = truth.train_ids[1]
        obj[3][d][2] = np.zeros(9, dtype=np.float32)
    path, truth = corrupt(tmp_path, 'dialoguegcn-iemocap-9', change, min_length=3)
    assert_refused(path, tmp_path, repr(truth.train_ids[1]), "field 'text'", 'utterance 2',
                   '9 features')


def test_feature_width_differs_between_dialogues(tmp_path):
    def change(obj, truth):
        d = truth.test_ids[0]
        obj[8][d] = [np.zeros(7, dtype=np.float32) for _ in obj[8][d]]  # visual of one dialogue
    path, truth = corrupt(tmp_path, 'sdt-iemocap-12', change)
    assert_refused(path, tmp_path, repr(truth.test_ids[0]), "field 'visual'", '7 features')


@pytest.mark.parametrize('value', [np.nan, np.inf, -np.inf])
def test_non_finite_features(tmp_path, value):
    def change(obj, truth):
        obj[4][truth.train_ids[0]][1][3] = value  # audio, utterance 1
    path, truth = corrupt(tmp_path, 'dialoguegcn-iemocap-9', change)
    assert_refused(path, tmp_path, repr(truth.train_ids[0]), "field 'audio'", 'utterance 1',
                   'non-finite')


def test_labels_out_of_range(tmp_path):
    def change(obj, truth):
        obj[2][truth.test_ids[1]][0] = 6  # IEMOCAP has labels 0..5
    path, truth = corrupt(tmp_path, 'sdt-iemocap-12', change)
    assert_refused(path, tmp_path, repr(truth.test_ids[1]), "field 'labels'", 'label 6',
                   'out of range for 6 classes')


def test_lengths_disagree_between_speakers_and_labels(tmp_path):
    def change(obj, truth):
        obj[1][truth.train_ids[0]].append([0] * 8 + [1])
    path, truth = corrupt(tmp_path, 'mmgcn-meld-10', change)
    assert_refused(path, tmp_path, repr(truth.train_ids[0]), "field 'speakers'",
                   "but 'labels' has")


def test_lengths_disagree_between_features_and_labels(tmp_path):
    def change(obj, truth):
        obj[4][truth.valid_ids[0]].pop()  # roberta3 one utterance short
    path, truth = corrupt(tmp_path, 'cosmic-iemocap-10', change)
    with pytest.raises(ValueError) as info:
        load(path, tmp_path, text_feature='mean')
    message = str(info.value)
    assert repr(truth.valid_ids[0]) in message and "field 'roberta3'" in message
    assert "utterances but 'labels' has" in message


def test_empty_dialogue(tmp_path):
    def change(obj, truth):
        d = truth.train_ids[2]
        for i in range(len(obj)):
            if isinstance(obj[i], dict):
                obj[i][d] = []
    path, truth = corrupt(tmp_path, 'sdt-meld-13', change)
    assert_refused(path, tmp_path, repr(truth.train_ids[2]), 'empty')


def test_ids_listed_in_a_split_but_absent(tmp_path):
    def drop_text(obj, truth):
        del obj[3][truth.test_ids[0]]  # cosmic-meld-11: item 3 is roberta1
    path, truth = corrupt(tmp_path, 'cosmic-meld-11', drop_text)
    assert_refused(path, tmp_path, repr(truth.test_ids[0]), "'test_ids'",
                   "absent from field 'roberta1'")

    def drop_labels(obj, truth):
        del obj[2][truth.train_ids[0]]
    path, truth = corrupt(tmp_path, 'sdt-iemocap-12', drop_labels)
    assert_refused(path, tmp_path, repr(truth.train_ids[0]), "'train_ids'",
                   "absent from field 'labels'")


def test_speaker_vector_not_one_hot(tmp_path):
    def change(obj, truth):
        obj[1][truth.test_ids[0]][0] = [0] * 9
    path, truth = corrupt(tmp_path, 'sdt-meld-13', change)
    assert_refused(path, tmp_path, repr(truth.test_ids[0]), "field 'speakers'", 'not one-hot')


def test_dialogue_in_train_and_test(tmp_path):
    def change(obj, truth):
        obj[8].append(truth.train_ids[0])
    path, truth = corrupt(tmp_path, 'dialoguegcn-iemocap-9', change)
    assert_refused(path, tmp_path, repr(truth.train_ids[0]), "'train_ids' and 'test_ids'")


def test_an_option_the_loader_does_not_have_is_named(tmp_path):
    from dsgdn_pyg.datasets import UnknownLoaderOption, load_corpus
    with pytest.raises(UnknownLoaderOption, match="dataset 'pickle:.*' takes no option "
                                                  "'num_dialogues'") as info:
        load_corpus(f'pickle:{tmp_path / "x.pkl"}', num_dialogues=5)
    assert info.value.option == 'num_dialogues'
