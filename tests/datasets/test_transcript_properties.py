r"""The transcript readers (CSV, JSON lines) under random input: dialogues or one
:class:`ValueError` naming the file, never another exception."""
import csv
import io
import json

import pytest

from dsgdn_pyg.datasets.transcript import read_transcripts

hypothesis = pytest.importorskip('hypothesis', reason='the property-based tests need '
                                 'hypothesis (pip install -e ".[test]")')
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

SETTINGS = settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c,
                                                                           max_size=3),
                    max_leaves=6)
CELL = st.one_of(st.text(max_size=8), st.integers().map(str), st.just(''))
# Close to MELD's columns, with some left out or renamed and random cells.
COLUMNS = st.lists(st.sampled_from(['Dialogue_ID', 'Utterance_ID', 'Speaker', 'Utterance',
                                    'Emotion', 'other']), min_size=1, max_size=5, unique=True)


def read(path):
    r"""What reading :obj:`path` gave: its dialogues, or the :class:`ValueError` it raised
    (any other exception propagates and fails the test)."""
    try:
        return read_transcripts([path])
    except ValueError as e:
        return e


def well_formed(outcome, path) -> bool:
    # A bad file may end only one way: a ValueError naming it; otherwise every dialogue has
    # utterances with text.
    if isinstance(outcome, ValueError):
        return str(path) in str(outcome) or path.name in str(outcome)
    return all(d.utterances and all(isinstance(u.text, str) for u in d.utterances)
               for d in outcome)


@SETTINGS
@given(data=st.binary(max_size=200), suffix=st.sampled_from(['.csv', '.jsonl']))
def test_random_bytes(tmp_path, data, suffix):
    path = tmp_path / f'talk{suffix}'
    path.write_bytes(data)
    assert well_formed(read(path), path)


@SETTINGS
@given(columns=COLUMNS, rows=st.lists(st.lists(CELL, min_size=0, max_size=6), max_size=6))
def test_random_csv_tables(tmp_path, columns, rows):
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(columns)
    writer.writerows(rows)
    path = tmp_path / 'talk.csv'
    path.write_text(text.getvalue(), encoding='utf-8')
    assert well_formed(read(path), path)


RECORD = st.dictionaries(st.sampled_from(['Dialogue_ID', 'Speaker', 'Utterance', 'Emotion',
                                          'x']), JSON | CELL, max_size=5)


@SETTINGS
@given(lines=st.lists(RECORD.map(json.dumps) | JSON.map(json.dumps) | st.text(max_size=10),
                      max_size=6))
def test_random_json_lines(tmp_path, lines):
    path = tmp_path / 'talk.jsonl'
    path.write_text('\n'.join(lines) + '\n', encoding='utf-8')
    assert well_formed(read(path), path)


def test_a_deeply_nested_line_names_file_and_line(tmp_path):
    path = tmp_path / 'talk.jsonl'
    path.write_text(json.dumps({'Speaker': 'A', 'Utterance': 'hi'}) + '\n' + '[' * 100_000)
    with pytest.raises(ValueError, match=r"talk\.jsonl: line 2: not valid JSON \(nested too "
                                         r"deeply\)"):
        read_transcripts([path])
