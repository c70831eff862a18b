import csv
import json
import random

import pytest
import torch
from click.testing import CliRunner

from dsgdn_pyg.cli import main
from dsgdn_pyg.inference.streaming import StreamingRecognizer
from dsgdn_pyg.train import load_checkpoint

WORDS = 'oh my god no way you are kidding great what okay i love it hate this so sorry'.split()
LABELS = ['neutral', 'surprise', 'fear', 'sadness', 'joy', 'disgust', 'anger']

def write_transcripts(directory, sizes=(10, 3, 3)):
    r"""Three MELD-format CSVs of random short dialogues."""
    directory.mkdir()
    rng = random.Random(0)
    files = ('train_sent_emo.csv', 'dev_sent_emo.csv', 'test_sent_emo.csv')
    for name, size in zip(files, sizes):
        with open(directory / name, 'w', newline='') as f:
            writer = csv.writer(f)
            writer.writerow(['Dialogue_ID', 'Utterance_ID', 'Speaker', 'Utterance', 'Emotion'])
            for d in range(size):
                for u in range(rng.randint(2, 7)):
                    writer.writerow([d, u, rng.choice(['Ross', 'Rachel', 'Joey']),
                                     ' '.join(rng.choices(WORDS, k=rng.randint(1, 6))),
                                     LABELS[(d + u) % len(LABELS)]])
    return directory


SMALL = ['--hidden-channels', '16', '--window', '2', '--batch-size', '4', '--epochs', '1',
         '--device', 'cpu', '--quiet']


def invoke(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input)


@pytest.fixture(scope='module')
def transcripts(tmp_path_factory):
    root = tmp_path_factory.mktemp('stream')
    write_transcripts(root / 'meld')
    out = root / 'causal'
    result = invoke('train', '--dataset', f'meld-csv:{root / "meld"}', '--causal', *SMALL,
                    '--out', out)
    assert result.exit_code == 0, result.output
    return root, out / 'best.pt'


def test_stream_answers_every_line_at_once(transcripts, tmp_path):
    _, checkpoint = transcripts
    payload = load_checkpoint(checkpoint)
    assert payload['model_config']['causal'] is True
    lines = [
        {'dialogue': 'call-1', 'speaker': 'agent', 'text': 'oh my god'},
        {'dialogue': 'call-2', 'speaker': 'Ross', 'text': 'no way'},
        {'dialogue': 'call-1', 'speaker': 'caller', 'text': 'you are kidding'},
        {'dialogue': 'call-1', 'speaker': 'agent', 'features': {'t': 'oops'}},
        {'dialogue': 'call-1', 'speaker': 'agent', 'text': 'great'},
    ]
    text = '\n'.join(json.dumps(line) for line in lines[:3]) + '\n{"speaker": \n' + \
        '\n'.join(json.dumps(line) for line in lines[3:]) + '\n'
    path = tmp_path / 'in.jsonl'
    path.write_text(text)
    for source, stdin in (('-', text), (str(path), None)):
        result = invoke('stream', '--checkpoint', checkpoint, '--input', source, input=stdin)
        assert result.exit_code == 0, result.output
        answers = [json.loads(line) for line in result.output.splitlines()]
        assert [a['line'] for a in answers] == [1, 2, 3, 4, 5, 6]
        assert answers[3]['field'] is None and 'line 4' in answers[3]['error']
        assert answers[4]['field'] == 'features.t' and 'line 5' in answers[4]['error']
        good = [answers[i] for i in (0, 1, 2, 5)]
        assert [a['index'] for a in good] == [0, 0, 1, 2]
        assert set(good[0]['probabilities']) == set(payload['label_names'])

    # The same as the Python API on the same utterances.
    recognizer = StreamingRecognizer.from_checkpoint(checkpoint)
    expected = [recognizer.push(line['speaker'], text=line['text'], dialogue=line['dialogue'])
                for line in lines if 'text' in line]
    for answer, probabilities in zip(good, expected):
        got = torch.tensor([answer['probabilities'][n] for n in recognizer.label_names])
        torch.testing.assert_close(got, probabilities, atol=1e-6, rtol=0)
        assert answer['label'] == recognizer.label(probabilities)


def test_stream_refuses_a_model_that_reads_the_future(transcripts):
    root, _ = transcripts
    out = root / 'full'
    result = invoke('train', '--dataset', f'meld-csv:{root / "meld"}', *SMALL, '--out', out)
    assert result.exit_code == 0, result.output
    result = invoke('stream', '--checkpoint', out / 'best.pt', input='')
    assert result.exit_code != 0 and 'Traceback' not in result.output
    assert '--causal' in result.output
    result = invoke('stream', '--checkpoint', root / 'missing.pt', input='')
    assert result.exit_code != 0 and 'missing.pt' in result.output


def test_stream_with_fixed_speaker_ids(transcripts):
    _, checkpoint = transcripts
    lines = [{'speaker': 'B', 'text': 'oh my god'}, {'speaker': 'A', 'text': 'no way'},
             {'speaker': 'C', 'text': 'what'}]
    text = '\n'.join(json.dumps(line) for line in lines) + '\n'
    result = invoke('stream', '--checkpoint', checkpoint, '--speaker-ids', 'A=0,B=1',
                    input=text)
    assert result.exit_code == 0, result.output
    answers = [json.loads(line) for line in result.output.splitlines()]
    recognizer = StreamingRecognizer.from_checkpoint(checkpoint, speaker_ids={'A': 0, 'B': 1})
    for answer, line in zip(answers[:2], lines):
        p = recognizer.push(line['speaker'], text=line['text'])
        assert answer['label'] == recognizer.label(p)
        assert list(answer['probabilities'].values()) == pytest.approx(p.tolist(), abs=1e-6)
    assert answers[2]['field'] == 'speaker' and 'unknown speaker' in answers[2]['error']
    for bad in ('A=x', 'A', 'A=0,B=99'):
        result = invoke('stream', '--checkpoint', checkpoint, '--speaker-ids', bad, input='')
        assert result.exit_code != 0 and '--speaker-ids' in result.output, result.output


def test_stream_a_hostile_line_is_answered_and_the_stream_goes_on(transcripts):
    # 100,000 nested '[' once ended the stream with a RecursionError; a refused line by a new
    # speaker once took a speaker slot of the dialogue.
    _, checkpoint = transcripts
    lines = ['[' * 100_000, json.dumps({'dialogue': 'c', 'speaker': 'A', 'text': 'oh my god'})]
    lines += [json.dumps({'dialogue': 'c', 'speaker': f'ghost{i}', 'text': 7}) for i in range(20)]
    lines += [json.dumps({'dialogue': 'c', 'speaker': 'B', 'text': 'no way'})]
    result = invoke('stream', '--checkpoint', checkpoint, input='\n'.join(lines) + '\n')
    assert result.exit_code == 0 and 'Traceback' not in result.output, result.output
    answers = [json.loads(line) for line in result.output.splitlines()]
    assert len(answers) == len(lines)
    assert answers[0]['line'] == 1 and 'not valid JSON (nested too deeply)' in answers[0]['error']
    assert all(a['field'] == 'text' for a in answers[2:22])
    assert answers[22]['speaker'] == 'B' and answers[22]['index'] == 1, answers[22]


def test_predict_a_hostile_jsonl_line_is_one_error_naming_file_and_line(transcripts, tmp_path):
    _, checkpoint = transcripts
    talk = tmp_path / 'talk.jsonl'
    talk.write_text(json.dumps({'Speaker': 'A', 'Utterance': 'hi'}) + '\n' + '[' * 100_000
                    + '\n')
    output = tmp_path / 'out.csv'
    result = invoke('predict', '--checkpoint', checkpoint, '--input', talk, '--output', output)
    assert result.exit_code == 1 and 'Traceback' not in result.output, result.output
    assert f"{talk}: line 2: not valid JSON (nested too deeply)" in result.output
    assert not output.exists()


def test_stream_from_the_runs_model_folder(transcripts):
    import dsgdn_pyg

    _, checkpoint = transcripts
    run = checkpoint.parent
    assert (run / 'model' / 'config.json').is_file()  # train --out DIR wrote DIR/model/
    lines = [{'dialogue': 'c', 'speaker': 'agent', 'text': 'oh my god'},
             {'dialogue': 'c', 'speaker': 'caller', 'text': 'you are kidding'}]
    text = ''.join(json.dumps(line) + '\n' for line in lines)
    result = invoke('stream', '--model', run / 'model', input=text)
    assert result.exit_code == 0, result.output
    answers = [json.loads(line) for line in result.output.splitlines()]
    live = dsgdn_pyg.load_model(run).stream()  # the run folder: its model/
    reference = StreamingRecognizer.from_checkpoint(str(checkpoint))
    for line, answer in zip(lines, answers):
        ours = live.push(line['speaker'], text=line['text'], dialogue=line['dialogue'])
        theirs = reference.push(line['speaker'], text=line['text'], dialogue=line['dialogue'])
        # The folder holds the checkpoint's weights and encoder: the same numbers.
        torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=0)
        got = torch.tensor([answer['probabilities'][n] for n in reference.label_names])
        torch.testing.assert_close(got, theirs, atol=1e-6, rtol=0)
