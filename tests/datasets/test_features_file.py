import json

import numpy as np
import pytest
import torch

from dsgdn_pyg.datasets import load_corpus
from dsgdn_pyg.datasets.features_file import DialogueFeaturesDataset

from fixtures import byo_dialogues, write_jsonl, write_npz

NAMES = ['neg', 'neu', 'pos']


def load(name, tmp_path, **options):
    return load_corpus(name, root=str(tmp_path / 'cache'), log=False, **options)


def check_against(corpus, dialogues, names):
    """Brute-force comparison with the source dialogues."""
    source = {d['id']: d for d in dialogues}
    for split in ('train', 'valid', 'test'):
        got = corpus.split(split)
        assert [d.dialogue_id for d in got] == [d['id'] for d in dialogues if d['split'] == split]
        for data in got:
            item = source[data.dialogue_id]
            labels = [-1 if l is None else (names.index(l) if isinstance(l, str) else l)
                      for l in item['labels']]
            assert data.y.tolist() == labels
            order = {}
            assert data.speaker.tolist() == [order.setdefault(s, len(order))
                                             for s in item['speakers']]
            assert torch.allclose(data.x_t, torch.tensor(item['text']))
            assert torch.allclose(data.x_a, torch.tensor(item['audio']))
            assert 'x_v' not in data


@pytest.mark.parametrize('string_labels', [False, True])
def test_jsonl_with_header(tmp_path, string_labels):
    dialogues = byo_dialogues(string_labels=string_labels)
    path = write_jsonl(tmp_path / 'd.jsonl', dialogues, header={'label_names': NAMES})
    corpus = load(f'jsonl:{path}', tmp_path)
    assert corpus.label_names == NAMES and corpus.feature_dims == {'t': 7, 'a': 4}
    assert corpus.meta['valid_split'] == 'file'
    check_against(corpus, dialogues, NAMES)


def test_jsonl_without_header_names_labels(tmp_path):
    ints = byo_dialogues(seed=1)
    corpus = load(f'jsonl:{write_jsonl(tmp_path / "i.jsonl", ints)}', tmp_path)
    largest = max(l for d in ints for l in d['labels'] if l is not None)
    assert corpus.label_names == [str(i) for i in range(largest + 1)]
    strings = byo_dialogues(seed=1, string_labels=True)
    corpus = load(f'jsonl:{write_jsonl(tmp_path / "s.jsonl", strings)}', tmp_path)
    train = sorted({l for d in strings if d['split'] == 'train' for l in d['labels'] if l})
    assert corpus.label_names == train
    check_against(corpus, strings, train)


def test_npz_matches_jsonl(tmp_path):
    dialogues = byo_dialogues(seed=2)
    npz = load(f'npz:{write_npz(tmp_path / "d.npz", dialogues, NAMES)}', tmp_path)
    assert npz.label_names == NAMES
    check_against(npz, dialogues, NAMES)
    jsonl = load(f'jsonl:{write_jsonl(tmp_path / "d.jsonl", dialogues, {"label_names": NAMES})}',
                 tmp_path)
    for a, b in zip(npz.train + npz.valid + npz.test, jsonl.train + jsonl.valid + jsonl.test):
        assert a.dialogue_id == b.dialogue_id and torch.equal(a.y, b.y)
        assert torch.equal(a.x_t, b.x_t) and torch.equal(a.speaker, b.speaker)


def test_validation_split_held_out_when_absent(tmp_path):
    dialogues = [d for d in byo_dialogues(sizes=(10, 0, 2))]
    corpus = load(f'jsonl:{write_jsonl(tmp_path / "d.jsonl", dialogues)}', tmp_path,
                  valid_fraction=0.3, seed=4)
    assert corpus.meta['valid_split'] == 'random'
    assert len(corpus.valid) == 3 and len(corpus.train) == 7
    assert {d.dialogue_id for d in corpus.train + corpus.valid} == \
        {d['id'] for d in dialogues if d['split'] == 'train'}


def test_integer_speakers_are_kept(tmp_path):
    dialogues = byo_dialogues(seed=3)
    for d in dialogues:
        d['speakers'] = [3 - i % 2 for i in range(len(d['labels']))]
    corpus = load(f'jsonl:{write_jsonl(tmp_path / "d.jsonl", dialogues)}', tmp_path)
    assert corpus.train[0].speaker.tolist() == dialogues[0]['speakers']
    assert corpus.num_speakers == 4


def test_cache_reprocesses_on_change(tmp_path):
    dialogues = byo_dialogues()
    path = write_jsonl(tmp_path / 'd.jsonl', dialogues)
    first = DialogueFeaturesDataset(path, root=tmp_path / 'cache', log=False)
    dialogues[0]['text'][0][0] += 1.0
    write_jsonl(path, dialogues)
    second = DialogueFeaturesDataset(path, root=tmp_path / 'cache', log=False)
    assert first.processed_paths != second.processed_paths
    assert second.split('train')[0].x_t[0, 0] == pytest.approx(dialogues[0]['text'][0][0])


# --------------------------------------------------------------------------------------------
# Validation

def assert_refused(tmp_path, dialogues, *patterns, header=None):
    path = write_jsonl(tmp_path / 'bad.jsonl', dialogues, header)
    with pytest.raises(ValueError) as info:
        load(f'jsonl:{path}', tmp_path)
    message = str(info.value)
    assert 'bad.jsonl' in message, message
    for pattern in patterns:
        assert pattern in message, message


def test_invalid_json_line(tmp_path):
    path = tmp_path / 'bad.jsonl'
    path.write_text(json.dumps(byo_dialogues()[0]) + '\n{"id": "x", \n')
    with pytest.raises(ValueError, match='bad.jsonl: line 2 is not valid JSON'):
        load(f'jsonl:{path}', tmp_path)


def test_feature_width_differs(tmp_path):
    dialogues = byo_dialogues()
    dialogues[2]['text'] = [row[:-1] for row in dialogues[2]['text']]  # a whole dialogue
    assert_refused(tmp_path, dialogues, "dialogue 'train-2'", "field 'text'", '6 features')
    dialogues = byo_dialogues()
    dialogues[0]['audio'][-1].append(0.5)  # one utterance
    assert_refused(tmp_path, dialogues, "dialogue 'train-0'", "field 'audio'", '5 features')


def test_missing_modality_in_one_dialogue(tmp_path):
    dialogues = byo_dialogues()
    del dialogues[4]['audio']
    assert_refused(tmp_path, dialogues, "dialogue 'train-4'", "field 'audio' is missing")


def test_non_finite_and_non_numeric_features(tmp_path):
    dialogues = byo_dialogues()
    dialogues[1]['text'][0][2] = float('nan')
    assert_refused(tmp_path, dialogues, "dialogue 'train-1'", "field 'text'", 'non-finite')
    dialogues = byo_dialogues()
    dialogues[1]['text'][0][2] = 'x'
    assert_refused(tmp_path, dialogues, "dialogue 'train-1'", "field 'text'", 'not numbers')


def test_label_out_of_range_or_unknown(tmp_path):
    dialogues = byo_dialogues()
    dialogues[3]['labels'][-1] = 3
    assert_refused(tmp_path, dialogues, "dialogue 'train-3'", "field 'labels'", 'out of range',
            header={'label_names': NAMES})
    dialogues = byo_dialogues(string_labels=True)
    dialogues[3]['labels'][-1] = 'angry'
    assert_refused(tmp_path, dialogues, "dialogue 'train-3'", "field 'labels'", "'angry'",
            header={'label_names': NAMES})


def test_lengths_disagree(tmp_path):
    dialogues = byo_dialogues()
    dialogues[5]['speakers'].append('ann')
    assert_refused(tmp_path, dialogues, "dialogue 'train-5'", "field 'speakers'")
    dialogues = byo_dialogues()
    dialogues[5]['text'].append([0.0] * 7)
    assert_refused(tmp_path, dialogues, "dialogue 'train-5'", "field 'text'", "but 'labels' has")


def test_empty_dialogue(tmp_path):
    dialogues = byo_dialogues()
    for key in ('speakers', 'labels', 'text', 'audio'):
        dialogues[-1][key] = []
    assert_refused(tmp_path, dialogues, "dialogue 'test-2'", 'empty')


def test_bad_keys_split_and_ids(tmp_path):
    dialogues = byo_dialogues()
    dialogues[0]['vidual'] = dialogues[0]['audio']
    assert_refused(tmp_path, dialogues, "dialogue 'train-0'", "unknown field(s) ['vidual']")
    dialogues = byo_dialogues()
    dialogues[0]['split'] = 'dev'
    assert_refused(tmp_path, dialogues, "dialogue 'train-0'", "field 'split'", "'dev'")
    dialogues = byo_dialogues()
    del dialogues[1]['labels']
    assert_refused(tmp_path, dialogues, "dialogue 'train-1'", "no field 'labels'")
    dialogues = byo_dialogues()
    dialogues[1]['id'] = dialogues[0]['id']
    assert_refused(tmp_path, dialogues, "dialogue 'train-0'", 'repeats')


def test_npz_errors(tmp_path):
    dialogues = byo_dialogues()
    path = write_npz(tmp_path / 'bad.npz', dialogues)
    arrays = dict(np.load(path))
    broken = dict(arrays, lengths=arrays['lengths'] + 1)
    np.savez(path, **broken)
    with pytest.raises(ValueError, match="bad.npz: key 'speakers' has .* but 'lengths' adds up"):
        load(f'npz:{path}', tmp_path)
    np.savez(path, **dict(arrays, speakers=np.array(arrays['speakers'], dtype=object)))
    with pytest.raises(ValueError, match='bad.npz: cannot be read without unpickling'):
        load(f'npz:{path}', tmp_path)
    np.savez(path, **{k: v for k, v in arrays.items() if k != 'splits'})
    with pytest.raises(ValueError, match="bad.npz: key 'splits' is missing"):
        load(f'npz:{path}', tmp_path)
    lengths = arrays['lengths'].copy()
    lengths[[0, 1]] = [lengths[0] + lengths[1], 0]
    np.savez(path, **dict(arrays, lengths=lengths))
    with pytest.raises(ValueError, match="bad.npz: dialogue 'train-1' is empty"):
        load(f'npz:{path}', tmp_path)
    text = arrays['text'].copy()
    text[4, 1] = np.inf
    np.savez(path, **dict(arrays, text=text))
    with pytest.raises(ValueError, match="bad.npz: dialogue .*field 'text'.*non-finite"):
        load(f'npz:{path}', tmp_path)
