"""Predictions as text: the terminal table and CSV/JSON lines."""
import csv
import io
import json

import numpy as np

from dsgdn_pyg.inference.output import prediction_table, rows_text
from dsgdn_pyg.inference.predict import DialoguePrediction

TEXTS = ['I got the job!', 'No way! That is amazing, I cannot believe it, tell me everything '
         'about it right now, from the start.', 'I know...']


def three_lines(labels=('', '', '')):
    probs = np.array([[.2, .7, .1], [.1, .3, .6], [.5, .3, .2]])
    return DialoguePrediction('talk', ['Ann', 'Bob', 'Ann'], TEXTS, list(labels),
                              ['neutral', 'joy', 'surprise'], probs)


def test_table_of_a_three_line_transcript():
    table = prediction_table([three_lines()], width=60).splitlines()
    assert len(table) == 4 and table[0].split() == ['#', 'speaker', 'text', 'emotion', 'conf.']
    assert all(len(line) <= 60 for line in table)
    # The columns line up: each emotion starts where the header's does.
    start = table[0].index('emotion')
    assert [line[start:].split()[0] for line in table[1:]] == ['joy', 'surprise', 'neutral']
    assert [line.split()[-1] for line in table[1:]] == ['70%', '60%', '50%']
    assert table[1].split()[:2] == ['0', 'Ann'] and 'I got the job!' in table[1]
    assert '…' in table[2] and 'from the start' not in table[2]  # cut to the width
    wide = prediction_table([three_lines()], width=200)
    assert TEXTS[1] in wide  # nothing cut when it fits


def test_table_shows_given_labels_and_one_heading_per_dialogue():
    table = prediction_table([three_lines(('joy', '', 'neutral')), three_lines()], width=100)
    assert table.count('dialogue talk (3 utterances)') == 2
    assert 'given' in table.splitlines()[1]


def test_rows_text_csv_and_jsonl():
    rows = three_lines().rows()
    parsed = list(csv.DictReader(io.StringIO(rows_text(rows, 'csv'))))
    assert [r['predicted'] for r in parsed] == ['joy', 'surprise', 'neutral']
    lines = [json.loads(line) for line in rows_text(rows, 'jsonl').splitlines()]
    assert lines == [dict(r) for r in rows]
