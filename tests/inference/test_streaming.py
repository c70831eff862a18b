import json

import pytest
import torch
from torch_geometric.data import Batch

from dsgdn_pyg.data import make_dialogue
from dsgdn_pyg.models import AMBDSGDN
from dsgdn_pyg.inference.streaming import StreamingRecognizer, StreamInputError, process_line
from dsgdn_pyg.text import TfidfFeaturizer

DIMS = {'t': 12, 'a': 10, 'v': 6}


def causal_model(seed=0, modalities='tav', num_speakers=3, **kwargs):
    torch.manual_seed(seed)
    return AMBDSGDN({m: DIMS[m] for m in modalities}, num_classes=4,
                    num_speakers=num_speakers, hidden_channels=16, dropout=0.3,
                    encoder_heads=2, causal=True, **kwargs).eval()


def random_dialogue(gen, length, num_speakers, modalities='tav'):
    names = ['ann', 'bob', 'cy', 'dee'][:num_speakers]
    speakers = [names[int(i)] for i in torch.randint(0, num_speakers, (length, ),
                                                     generator=gen)]
    features = {m: torch.randn(length, DIMS[m], generator=gen) for m in modalities}
    return speakers, features


def full_pass(model, window, speakers, features):
    r"""The model's ordinary forward pass over the whole dialogue (speakers numbered in order
    of appearance, as the dataset loaders number them)."""
    order = {}
    ids = [order.setdefault(s, len(order)) for s in speakers]
    data = make_dialogue('d', ids, [0] * len(ids), features)
    dtype = next(model.parameters()).dtype
    for m in features:
        data[f'x_{m}'] = data[f'x_{m}'].to(dtype)
    data = AMBDSGDN.dialogue_transform(window, **model.config())(data)
    with torch.no_grad():
        return torch.softmax(model(Batch.from_data_list([data])).fused, dim=-1)


CASES = [
    dict(window=3, kwargs=dict(context_window=2), lengths=(1, 3, 4, 11)),
    dict(window=4, kwargs=dict(), lengths=(2, 9, 13)),  # encoder attends to the whole past
    dict(window=0, kwargs=dict(context_window=0), lengths=(5, 6)),
    dict(window=2, kwargs=dict(context_window=5, heads=3), lengths=(8, 7), modalities='av'),
    dict(window=5, kwargs=dict(), lengths=(12, ), modalities='t'),
    dict(window=3, kwargs=dict(conv='gat', context_window=4), lengths=(10, 3)),
    dict(window=3, kwargs=dict(graph=False, context_window=1), lengths=(6, ),
         modalities='tv'),
]


@pytest.mark.parametrize('case', CASES, ids=[str(i) for i in range(len(CASES))])
def test_pushes_equal_the_full_causal_pass(case, one_thread):
    modalities = case.get('modalities', 'tav')
    model = causal_model(modalities=modalities, **case['kwargs'])
    gen = torch.Generator().manual_seed(len(case['lengths']))
    dialogues = {f'd{k}': random_dialogue(gen, length, 3, modalities)
                 for k, length in enumerate(case['lengths'])}
    recognizer = StreamingRecognizer(model, case['window'])
    pushed = {name: [] for name in dialogues}
    # Dialogues interleaved, as concurrent calls would be.
    for step in range(max(case['lengths'])):
        for name, (speakers, features) in dialogues.items():
            if step < len(speakers):
                pushed[name].append(recognizer.push(
                    speakers[step], {m: x[step] for m, x in features.items()}, dialogue=name))
    for name, (speakers, features) in dialogues.items():
        expected = full_pass(model, case['window'], speakers, features)
        torch.testing.assert_close(torch.stack(pushed[name]), expected, atol=1e-5, rtol=0)
        # The dialogue so far: the prefix's own pass gives the same rows.
        cut = (len(speakers) + 1) // 2
        prefix = full_pass(model, case['window'], speakers[:cut],
                           {m: x[:cut] for m, x in features.items()})
        torch.testing.assert_close(torch.stack(pushed[name][:cut]), prefix, atol=1e-5, rtol=0)


def test_caches_are_bounded_by_the_windows(one_thread):
    model = causal_model(context_window=2)
    recognizer = StreamingRecognizer(model, 3)
    gen = torch.Generator().manual_seed(0)
    speakers, features = random_dialogue(gen, 20, 2)
    for i in range(20):
        recognizer.push(speakers[i], {m: x[i] for m, x in features.items()})
    state = recognizer._dialogues['default'].cache
    # Per subgraph block and attention layer (2 x 2), the rows of all 3 modalities at once,
    # of the last w = 3 utterances.
    assert len(state.speakers) == 3 and len(state.layers) == 4
    assert all(rows.shape[:2] == (3, 3) for rows in state.layers.values())
    assert sorted(state.encoder) == ['a', 'v']
    assert all(len(kv) == 2 for kv in state.encoder.values())
    assert recognizer.position('default') == 20


def test_reset_starts_the_dialogue_again(one_thread):
    model = causal_model(context_window=3)
    gen = torch.Generator().manual_seed(1)
    speakers, features = random_dialogue(gen, 6, 2)
    recognizer = StreamingRecognizer(model, 2)
    first = [recognizer.push(speakers[i], {m: x[i] for m, x in features.items()},
                             dialogue='a') for i in range(6)]
    recognizer.push('zed', {m: x[0] for m, x in features.items()}, dialogue='b')
    recognizer.reset('a')
    assert recognizer.dialogues == ['b']
    again = [recognizer.push(speakers[i], {m: x[i] for m, x in features.items()},
                             dialogue='a') for i in range(6)]
    torch.testing.assert_close(torch.stack(again), torch.stack(first), atol=0, rtol=0)
    recognizer.reset()
    assert recognizer.dialogues == []


def test_bad_input_names_the_field_and_changes_nothing(one_thread):
    model = causal_model(num_speakers=2, context_window=2)
    gen = torch.Generator().manual_seed(2)
    speakers, features = random_dialogue(gen, 5, 2)
    recognizer = StreamingRecognizer(model, 2)
    row = {m: x[0] for m, x in features.items()}
    good = recognizer.push(speakers[0], row)

    bad = [
        (dict(speaker=speakers[0], features={'t': row['t'], 'a': row['a']}), 'features.v'),
        (dict(speaker=speakers[0], features=dict(row, a=[1.0, 2.0])), 'features.a'),
        (dict(speaker=speakers[0], features=dict(row, v=[float('nan')] * 6)), 'features.v'),
        (dict(speaker=speakers[0], features=dict(row, x=[1.0])), 'features.x'),
        (dict(speaker=speakers[0], features=row, text='hello'), 'text'),
        (dict(speaker=['not', 'hashable'], features=row), 'speaker'),
    ]
    recognizer.push('carl', row, dialogue='full')
    recognizer.push('dan', row, dialogue='full')
    with pytest.raises(StreamInputError, match="at most 2") as info:
        recognizer.push('third', row, dialogue='full')
    assert info.value.field == 'speaker'
    for kwargs, field in bad:
        with pytest.raises(StreamInputError) as info:
            recognizer.push(**kwargs)
        assert info.value.field == field, (kwargs, info.value)
        assert field in str(info.value)
    # Nothing of the failed pushes stayed: the dialogue goes on as if they never happened.
    assert recognizer.position('default') == 1
    recognizer.reset()
    assert torch.equal(recognizer.push(speakers[0], row), good)


def test_refuses_a_model_that_reads_the_future():
    torch.manual_seed(0)
    model = AMBDSGDN(DIMS, 4, 3, hidden_channels=16)
    with pytest.raises(ValueError, match='causal'):
        StreamingRecognizer(model, 3)
    recognizer = StreamingRecognizer(causal_model(), 3)
    recognizer.model.train()
    with pytest.raises(RuntimeError, match='training mode'):
        recognizer.push('ann', {m: torch.zeros(d) for m, d in DIMS.items()})


def text_checkpoint(tmp_path=None):
    texts = ['oh my god', 'no way', 'you are kidding', 'great news', 'i hate this',
             'so sorry', 'really great coffee', 'what is this']
    featurizer = TfidfFeaturizer(svd_dim=4).fit(texts)
    torch.manual_seed(3)
    model = AMBDSGDN({'t': featurizer.out_channels}, 3, 2, hidden_channels=16,
                     causal=True).eval()
    payload = {'format': 'dsgdn-pyg-checkpoint', 'model_name': 'amb-dsgdn',
               'model_config': model.config(), 'model_state': model.state_dict(),
               'window': 2, 'label_names': ['calm', 'glad', 'mad'],
               'text_featurizer': featurizer.state_dict()}
    return payload, model, featurizer, texts


def test_text_is_embedded_with_the_checkpoints_featurizer(one_thread):
    payload, model, featurizer, texts = text_checkpoint()
    recognizer = StreamingRecognizer.from_checkpoint(payload)
    speakers = ['agent', 'caller', 'caller', 'agent', 'caller']
    pushed = torch.stack([recognizer.push(s, text=t, dialogue=7)
                          for s, t in zip(speakers, texts)])
    x = torch.as_tensor(featurizer.transform(texts[:5]))
    torch.testing.assert_close(pushed, full_pass(model, 2, speakers, {'t': x}),
                               atol=1e-5, rtol=0)
    assert recognizer.label(pushed[0]) in ('calm', 'glad', 'mad')


def test_process_line_answers_and_errors(one_thread):
    payload, model, featurizer, texts = text_checkpoint()
    recognizer = StreamingRecognizer.from_checkpoint(payload)
    lines = [
        json.dumps({'dialogue': 'call-1', 'speaker': 'agent', 'text': texts[0], 'id': 'u1'}),
        '',
        '{"speaker": "agent", "text": ',
        json.dumps({'dialogue': 'call-1', 'speaker': 'agent', 'txt': 'typo'}),
        json.dumps({'dialogue': 'call-1', 'speaker': 'agent', 'features': {'t': [1.0]}}),
        json.dumps({'dialogue': 'call-1', 'speaker': 'caller', 'text': texts[1]}),
        json.dumps({'dialogue': 'call-1', 'end': True}),
        json.dumps([1, 2]),
    ]
    answers = [process_line(recognizer, line, n) for n, line in enumerate(lines, start=1)]
    assert answers[1] is None
    first, last = answers[0], answers[5]
    assert first['line'] == 1 and first['id'] == 'u1' and first['index'] == 0
    assert last['index'] == 1 and last['speaker'] == 'caller'
    assert abs(sum(last['probabilities'].values()) - 1.0) < 1e-5
    assert last['label'] == max(last['probabilities'], key=last['probabilities'].get)
    # The bad lines in between changed nothing: index 1 is the second good utterance.
    expected = full_pass(model, 2, ['agent', 'caller'],
                         {'t': torch.as_tensor(featurizer.transform(texts[:2]))})
    assert list(last['probabilities'].values()) == pytest.approx(expected[1].tolist(),
                                                                abs=1e-5)
    assert answers[2]['field'] is None and 'line 3' in answers[2]['error']
    assert answers[3]['field'] == 'txt' and 'line 4' in answers[3]['error']
    assert answers[4]['field'] == 'features.t'
    assert answers[6] == {'line': 7, 'dialogue': 'call-1', 'ended': True}
    assert recognizer.dialogues == [] and answers[7]['field'] is None


def test_float64_model_agrees_to_float64_rounding(one_thread):
    # In double precision the two computations agree far below the float32 tolerance, so the
    # 1e-5 above is rounding, not an approximation.
    model = causal_model(context_window=3).double()
    gen = torch.Generator().manual_seed(5)
    speakers, features = random_dialogue(gen, 12, 3)
    recognizer = StreamingRecognizer(model, 4)
    pushed = torch.stack([recognizer.push(speakers[i], {m: x[i] for m, x in features.items()})
                          for i in range(12)])
    assert pushed.dtype == torch.float64
    expected = full_pass(model, 4, speakers, features)
    torch.testing.assert_close(pushed, expected, atol=1e-12, rtol=0)


def test_fixed_speaker_ids(one_thread):
    # IEMOCAP's loaders fix 'M' -> 0, 'F' -> 1 whatever speaks first.
    model = causal_model(num_speakers=2, context_window=2)
    gen = torch.Generator().manual_seed(6)
    _, features = random_dialogue(gen, 5, 2)
    names = ['F', 'M', 'F', 'F', 'M']
    recognizer = StreamingRecognizer(model, 2, speaker_ids={'M': 0, 'F': 1})
    pushed = torch.stack([recognizer.push(names[i], {m: x[i] for m, x in features.items()})
                          for i in range(5)])
    data = make_dialogue('d', [1, 0, 1, 1, 0], [0] * 5, features)
    data = AMBDSGDN.dialogue_transform(2, **model.config())(data)
    with torch.no_grad():
        expected = torch.softmax(model(Batch.from_data_list([data])).fused, dim=-1)
    torch.testing.assert_close(pushed, expected, atol=1e-5, rtol=0)
    with pytest.raises(StreamInputError, match='unknown speaker') as info:
        recognizer.push('X', {m: x[0] for m, x in features.items()})
    assert info.value.field == 'speaker'
    with pytest.raises(ValueError, match='speaker_ids'):
        StreamingRecognizer(model, 2, speaker_ids={'M': 0, 'F': 2})


def test_new_weights_after_the_recognizer_was_made_are_used(one_thread):
    # The recognizer keeps terms derived from the layers' weights: loading other weights
    # into the model afterwards must not leave them stale.
    model = causal_model(seed=0, context_window=3)
    recognizer = StreamingRecognizer(model, 3)
    gen = torch.Generator().manual_seed(4)
    speakers, features = random_dialogue(gen, 7, 2)
    recognizer.push(speakers[0], {m: x[0] for m, x in features.items()})
    model.load_state_dict(causal_model(seed=1, context_window=3).state_dict())
    recognizer.reset()
    pushed = [recognizer.push(speakers[i], {m: x[i] for m, x in features.items()})
              for i in range(7)]
    torch.testing.assert_close(torch.stack(pushed), full_pass(model, 3, speakers, features),
                               atol=1e-5, rtol=0)
    # A block's own weights (its linear layer and norm, stacked over the modalities in a
    # step), changed in place, are seen too.
    with torch.no_grad():
        model.inter['t'].lin.weight.mul_(1.5)
        model.intra['a'].norm.bias.add_(0.1)
    recognizer.reset()
    pushed = [recognizer.push(speakers[i], {m: x[i] for m, x in features.items()})
              for i in range(7)]
    torch.testing.assert_close(torch.stack(pushed), full_pass(model, 3, speakers, features),
                               atol=1e-5, rtol=0)
