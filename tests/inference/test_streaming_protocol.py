r"""The stream protocol under hostile and random input: an answer (a result or an error line)
per non-blank line, never an exception, and a refused line changes nothing."""
import json

import pytest
import torch

from dsgdn_pyg.inference.streaming import StreamingRecognizer, process_line
from test_streaming import text_checkpoint

hypothesis = pytest.importorskip('hypothesis', reason='the property-based tests need '
                                 'hypothesis (pip install -e ".[test]")')
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

PAYLOAD, _, _, TEXTS = text_checkpoint()  # a 2-speaker TF-IDF model: fast pushes


def recognizer():
    return StreamingRecognizer.from_checkpoint(PAYLOAD)


def run(lines, rec=None):
    rec = rec or recognizer()
    return [process_line(rec, line, n) for n, line in enumerate(lines, start=1)], rec


def accepted(answer):
    return answer is not None and 'error' not in answer


def test_a_refused_line_registers_no_speaker(one_thread):
    # The case: after A, twenty new speakers with a bad 'text' are refused; they must
    # not take the model's speaker slots, so the real second speaker B is answered.
    lines = [json.dumps({'speaker': 'A', 'text': TEXTS[0]})]
    lines += [json.dumps({'speaker': f'ghost{i}', 'text': 7}) for i in range(20)]
    lines += [json.dumps({'speaker': 'B', 'text': TEXTS[1]})]
    answers, rec = run(lines)
    assert all(a['field'] == 'text' and "must be a string" in a['error']
               for a in answers[1:21])
    assert answers[21]['index'] == 1 and answers[21]['speaker'] == 'B', answers[21]
    # Same code on the same inputs as the stream without the refused lines: equal exactly.
    clean, _ = run([lines[0], lines[21]])
    assert answers[21]['probabilities'] == clean[1]['probabilities']


@pytest.mark.parametrize('hostile', ['[' * 100_000, '{"a": ' * 100_000,
                                     '{"speaker": "A", "text": ' + '[' * 100_000])
def test_a_deeply_nested_line_is_an_error_line_and_the_stream_goes_on(hostile, one_thread):
    good = json.dumps({'speaker': 'A', 'text': TEXTS[0]})
    answers, _ = run([hostile, good])
    assert answers[0]['line'] == 1 and answers[0]['field'] is None
    assert 'line 1: not valid JSON' in answers[0]['error'], answers[0]
    assert answers[1]['index'] == 0 and 'probabilities' in answers[1]


# Random input --------------------------------------------------------------------------------

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                    lambda children: st.lists(children, max_size=3)
                    | st.dictionaries(st.text(max_size=6), children, max_size=3),
                    max_leaves=8)
FIELDS = st.sampled_from(['dialogue', 'speaker', 'text', 'features', 'id', 'end'])
# Lines close to the protocol: its own keys, with values of any type.
NEAR = st.dictionaries(FIELDS, JSON | st.sampled_from(TEXTS), max_size=4)
# Two dialogues (one with an integer id), three speakers for a model of two per dialogue.
DIALOGUES, SPEAKERS = st.sampled_from(['d1', 3]), st.sampled_from(['A', 'B', 0])
GOOD = st.builds(lambda d, s, t: {'dialogue': d, 'speaker': s, 'text': t}, DIALOGUES,
                 SPEAKERS, st.sampled_from(TEXTS))
# A good line with one field's value replaced by anything: mostly refused, after the line's
# speaker and dialogue were read (where a refused line once registered its speaker).
BROKEN = st.builds(lambda good, key, value: {**good, key: value}, GOOD,
                   st.sampled_from(['text', 'features', 'end', 'id']), JSON)
END = st.builds(lambda d: {'dialogue': d, 'end': True}, DIALOGUES)
LINE = st.one_of(
    st.binary(max_size=40).map(lambda b: b.decode('utf-8', errors='replace')),  # as the CLI
    st.text(max_size=40),
    JSON.map(json.dumps),
    NEAR.map(json.dumps),
    BROKEN.map(json.dumps), BROKEN.map(json.dumps), GOOD.map(json.dumps), GOOD.map(json.dumps),
    GOOD.map(json.dumps), END.map(json.dumps))


@settings(max_examples=60)
@given(st.lists(LINE, min_size=3, max_size=14))
def test_random_lines_each_get_an_answer_and_refused_ones_change_nothing(lines):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny model: per-op overhead (see the one_thread fixture)
    try:
        assert protocol_faults(lines) == []
    finally:
        torch.set_num_threads(threads)


def protocol_faults(lines):
    r"""Every line whose answer breaks the protocol, as ``(line number, line, answer, why)``."""
    faults = []
    answers, rec = run(lines)
    for n, (line, answer) in enumerate(zip(lines, answers), start=1):
        if not line.strip():
            if answer is not None:
                faults.append((n, line, answer, 'a blank line is answered'))
            continue
        if answer['line'] != n:
            faults.append((n, line, answer, 'wrong line number'))
        if ('error' in answer) == ('probabilities' in answer or 'ended' in answer):
            faults.append((n, line, answer, 'not exactly one of error / result'))
        json.dumps(answer)  # every answer can be written out
    # Each line is answered as it would be after the accepted lines before it alone (the
    # interleaved dialogues, their ends, in the same order) on a fresh recognizer: the refused
    # lines left no trace, neither in the results nor in what a later line may do (a refused
    # line's speaker taking a slot). The same code on the same inputs: exact equality.
    kept = []
    for n, (line, answer) in enumerate(zip(lines, answers), start=1):
        if answer is None:
            continue
        fresh = recognizer()
        for k, before in kept:
            process_line(fresh, before, k)
        if process_line(fresh, line, n) != answer:
            faults.append((n, line, answer, 'differs from the accepted lines alone'))
        if accepted(answer):
            kept.append((n, line))
    return faults
