"""Predicting one's own transcripts (Python API and `dsgdn-pyg predict --input`), checked
against the dataset pipeline (`predict(split='test')`, which featurises through the CSV
loader) and scikit-learn."""
import csv
import json
import os

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from sklearn.metrics import accuracy_score, f1_score

import dsgdn_pyg
from dsgdn_pyg.cli import main
from dsgdn_pyg.datasets.transcript import read_transcripts
from dsgdn_pyg.inference.evaluate import predict
from dsgdn_pyg.train import load_checkpoint

pytestmark = pytest.mark.usefixtures('one_thread')

TALK = 'Utterance,Speaker\nI got the job!,Ann\nNo way! That is amazing.,Bob\n' \
       "I know... I can't believe it.,Ann\nWe have to celebrate!,Bob\n"


def read_csv(path):
    with open(path, newline='', encoding='utf-8') as f:
        return list(csv.DictReader(f))


def probabilities(rows, label_names):
    return np.array([[float(r[f'prob_{n}']) for n in label_names] for r in rows])


def test_predict_dialogues_matches_dataset_pipeline(tiny_checkpoint):
    checkpoint, meld = tiny_checkpoint
    test_csv = os.path.join(meld, 'test_sent_emo.csv')
    results = dsgdn_pyg.predict_dialogues(checkpoint, read_transcripts([test_csv]),
                                          device='cpu')
    reference = predict(checkpoint, split='test', device='cpu')
    names = results[0].label_names
    ours = np.concatenate([r.probabilities for r in results])
    theirs = np.array([[r[f'prob_{n}'] for n in names] for r in reference])
    np.testing.assert_allclose(ours, theirs, atol=1e-6)
    assert [r.dialogue_id for r in results] == list(dict.fromkeys(r['dialogue_id']
                                                                  for r in reference))
    assert [l for r in results for l in r.labels] == [r['label'] for r in reference]


def test_python_records_equal_the_csv_file(tiny_checkpoint, tmp_path):
    checkpoint, _ = tiny_checkpoint
    (tmp_path / 'talk.csv').write_text(TALK)
    from_file = dsgdn_pyg.predict_dialogues(checkpoint,
                                            read_transcripts([tmp_path / 'talk.csv']),
                                            device='cpu')
    talk = [{'speaker': r['Speaker'], 'text': r['Utterance']}
            for r in read_csv(tmp_path / 'talk.csv')]
    result, = dsgdn_pyg.predict_dialogues(checkpoint, [talk], device='cpu')
    np.testing.assert_array_equal(result.probabilities, from_file[0].probabilities)
    np.testing.assert_allclose(result.probabilities.sum(1), 1.0, atol=1e-9)
    assert result.predicted == [result.label_names[i] for i in result.probabilities.argmax(1)]
    with pytest.raises(ValueError, match=r"'label': 'elated' is not a label"):
        dsgdn_pyg.predict_dialogues(checkpoint, [[dict(talk[0], label='elated')]],
                                    device='cpu')


def test_cli_unlabelled_single_dialogue(tiny_checkpoint, tmp_path):
    checkpoint, _ = tiny_checkpoint
    (tmp_path / 'talk.csv').write_text(TALK)
    out = tmp_path / 'preds.csv'
    result = CliRunner().invoke(main, ['predict', '--checkpoint', checkpoint, '--input',
                                       str(tmp_path / 'talk.csv'), '--output', str(out),
                                       '--device', 'cpu'])
    assert result.exit_code == 0, result.output
    assert 'weighted F1' not in result.output  # no labels, no scores
    rows = read_csv(out)
    names = load_checkpoint(checkpoint)['label_names']
    assert list(rows[0])[:5] == ['dialogue', 'position', 'speaker', 'text', 'predicted']
    assert [(r['dialogue'], r['position'], r['speaker']) for r in rows] == \
        [('talk', '0', 'Ann'), ('talk', '1', 'Bob'), ('talk', '2', 'Ann'), ('talk', '3', 'Bob')]
    assert rows[2]['text'] == "I know... I can't believe it."
    probs = probabilities(rows, names)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    assert [r['predicted'] for r in rows] == [names[i] for i in probs.argmax(1)]


def test_cli_several_dialogues_with_labels_print_scores(tiny_checkpoint, tmp_path):
    checkpoint, meld = tiny_checkpoint
    out = tmp_path / 'preds.csv'
    result = CliRunner().invoke(main, ['predict', '--checkpoint', checkpoint, '--input',
                                       os.path.join(meld, 'test_sent_emo.csv'), '--input',
                                       os.path.join(meld, 'dev_sent_emo.csv'), '--output',
                                       str(out), '--device', 'cpu'])
    assert result.exit_code == 0, result.output
    rows = read_csv(out)
    dialogues = {r['dialogue'] for r in rows}
    assert len(dialogues) == 4 + 3
    assert all(d.startswith(('test_sent_emo/', 'dev_sent_emo/')) for d in dialogues)
    f1 = 100 * f1_score([r['label'] for r in rows], [r['predicted'] for r in rows],
                        average='weighted')
    acc = 100 * accuracy_score([r['label'] for r in rows], [r['predicted'] for r in rows])
    assert f'{len(rows)} labelled utterances: weighted F1 {f1:.2f}, accuracy {acc:.2f}' \
        in result.output


def test_cli_json_lines_in_and_out(tiny_checkpoint, tmp_path):
    checkpoint, meld = tiny_checkpoint
    rows = read_csv(os.path.join(meld, 'test_sent_emo.csv'))
    with open(tmp_path / 'in.jsonl', 'w') as f:
        for r in rows:
            f.write(json.dumps(r) + '\n')
    runner = CliRunner()
    for source, target in (('in.jsonl', 'out.jsonl'),
                           (os.path.join(meld, 'test_sent_emo.csv'), 'out.csv')):
        result = runner.invoke(main, ['predict', '--checkpoint', checkpoint, '--input',
                                      str(tmp_path / source), '--output',
                                      str(tmp_path / target), '--device', 'cpu'])
        assert result.exit_code == 0, result.output
    from_jsonl = [json.loads(line) for line in open(tmp_path / 'out.jsonl')]
    from_csv = read_csv(tmp_path / 'out.csv')
    assert len(from_jsonl) == len(from_csv) == len(rows)
    for a, b in zip(from_jsonl, from_csv):
        assert isinstance(a['position'], int) and isinstance(a['prob_joy'], float)
        assert {k: str(v) for k, v in a.items()} == b


def test_cli_errors(tiny_checkpoint, tmp_path):
    checkpoint, _ = tiny_checkpoint
    (tmp_path / 'talk.csv').write_text(TALK.replace('Utterance', 'Line'))
    runner = CliRunner()
    args = ['predict', '--checkpoint', checkpoint, '--input', str(tmp_path / 'talk.csv'),
            '--output', str(tmp_path / 'p.csv')]
    result = runner.invoke(main, args)
    assert result.exit_code != 0 and 'Traceback' not in result.output
    assert f"{tmp_path / 'talk.csv'}: column 'Utterance' (text) is missing" in result.output
    assert not (tmp_path / 'p.csv').exists()
    assert runner.invoke(main, args + ['--text-column', 'Line']).exit_code == 0
    result = runner.invoke(main, args + ['--dataset', 'synthetic-meld'])
    assert result.exit_code == 2 and '--input cannot be combined with --dataset' in result.output
    result = runner.invoke(main, ['predict', '--checkpoint', checkpoint, '--output',
                                  str(tmp_path / 'q.csv'), '--plot', 'x.png'])
    assert result.exit_code == 2 and '--plot only apply with --input' in result.output


def test_attention_links_are_the_dialogue_graph(tiny_checkpoint):
    from dsgdn_pyg.data import DialogueGraph
    from dsgdn_pyg.data.graph import RELATION_NAMES

    checkpoint, meld = tiny_checkpoint
    dialogues = read_transcripts([os.path.join(meld, 'test_sent_emo.csv')])
    results = dsgdn_pyg.predict_dialogues(checkpoint, dialogues, device='cpu',
                                          attention=True, batch_size=2)
    plain = dsgdn_pyg.predict_dialogues(checkpoint, dialogues, device='cpu')
    window = load_checkpoint(checkpoint)['window']
    for d, r, p in zip(dialogues, results, plain):
        # Recording attention does not change the predictions. Not bit for bit: the run with
        # attention batches 2 dialogues, the plain one all of them, and another batch sums the
        # same terms in another order (differences of 1e-8 to 6e-8 seen in float32), hence a
        # tolerance a few float32 roundings above that; a changed prediction is >= 1e-3 off.
        np.testing.assert_allclose(r.probabilities, p.probabilities, rtol=0, atol=1e-6)
        speakers = {s: i for i, s in enumerate(dict.fromkeys(u.speaker
                                                             for u in d.utterances))}
        from torch_geometric.data import Data
        n = len(d.utterances)
        graph = DialogueGraph(window)(Data(speaker=torch.tensor(
            [speakers[u.speaker] for u in d.utterances]), num_nodes=n))
        # Every typed edge of the dialogue graph once per block it belongs to (the self-loop
        # is in both the inter- and the intra-speaker block).
        expected = sorted((int(s), int(t), RELATION_NAMES[int(e)])
                          for (s, t), e in zip(graph.edge_index.t().tolist(),
                                               graph.edge_type.tolist())
                          for _ in range(2 if RELATION_NAMES[int(e)] == 'self-loop' else 1))
        assert sorted((l.source, l.target, l.relation) for l in r.attention) == expected
        assert all(np.isfinite(l.alpha) for l in r.attention)


def test_checkpoint_that_cannot_featurise_text(tiny_checkpoint):
    from dsgdn_pyg.train import CheckpointError

    checkpoint, _ = tiny_checkpoint
    payload = load_checkpoint(checkpoint)
    payload['text_featurizer'] = None
    with pytest.raises(CheckpointError, match='stores no text encoder'):
        dsgdn_pyg.predict_dialogues(payload, [[{'text': 'hi', 'speaker': 'A'}]], device='cpu')
    payload = load_checkpoint(checkpoint)
    payload['model_config'] = dict(payload['model_config'], num_speakers=2)
    too_many = [[{'text': 'hi', 'speaker': s} for s in 'ABC']]
    with pytest.raises(CheckpointError, match="dialogue '0' has 3 speakers"):
        dsgdn_pyg.predict_dialogues(payload, too_many, device='cpu')
