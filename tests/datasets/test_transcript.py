"""Reading one's own transcripts for prediction: CSV, JSON lines and Python records; the
expected dialogues are computed here by brute force from the generated rows."""
import json

import pytest

from dsgdn_pyg.datasets.transcript import (Transcript, as_transcripts, read_transcript,
                                           read_transcripts, transcript_columns)

from fixtures import dialogues_from_rows, meld_rows, write_csv

TALK = [('Ann', 'I got the job!'), ('Bob', 'No way! That is amazing.'),
        ('Ann', "I know... I can't believe it."), ('Bob', 'We have to celebrate!')]


def write_talk(path):
    return write_csv(path, [{'Utterance': t, 'Speaker': s} for s, t in TALK])


def test_unlabelled_single_dialogue_csv(tmp_path):
    path = write_talk(tmp_path / 'talk.csv')
    dialogues = read_transcript(path)
    assert len(dialogues) == 1
    d = dialogues[0]
    assert d.dialogue_id == 'talk' and d.source == path
    assert [(u.speaker, u.text) for u in d.utterances] == TALK
    assert [u.label for u in d.utterances] == [''] * 4
    assert d.utterances[2].where == f'{path}: line 4'


def test_several_dialogues_ordered_by_utterance_id(tmp_path):
    rows = meld_rows(3, 5)  # shuffled: the order must come from Utterance_ID
    path = write_csv(tmp_path / 'many.csv', rows)
    dialogues = read_transcript(path)
    expected = dialogues_from_rows(rows)
    assert [d.dialogue_id for d in dialogues] == list(dict.fromkeys(r['Dialogue_ID']
                                                                   for r in rows))
    for d in dialogues:
        assert [u.text for u in d.utterances] == [r['Utterance'] for r in expected[d.dialogue_id]]
        assert [u.label for u in d.utterances] == [r['Emotion'] for r in expected[d.dialogue_id]]


def test_json_lines_read_like_csv(tmp_path):
    rows = meld_rows(4, 4)
    csv_path = write_csv(tmp_path / 'a.csv', rows)
    jsonl = tmp_path / 'a.jsonl'
    # Numbers as JSON numbers, as a program would write them.
    jsonl.write_text(''.join(json.dumps(dict(r, Utterance_ID=int(r['Utterance_ID']),
                                             Dialogue_ID=int(r['Dialogue_ID']))) + '\n'
                             for r in rows))
    from_csv, from_jsonl = read_transcript(csv_path), read_transcript(jsonl)
    assert [d.dialogue_id for d in from_jsonl] == [d.dialogue_id for d in from_csv]
    for a, b in zip(from_csv, from_jsonl):
        assert [(u.text, u.speaker, u.label) for u in a.utterances] == \
            [(u.text, u.speaker, u.label) for u in b.utterances]


def test_renamed_columns_and_row_order(tmp_path):
    path = write_csv(tmp_path / 'x.csv', [{'Line': t, 'Who': s, 'Scene': str(i // 2)}
                                          for i, (s, t) in enumerate(TALK)])
    columns = transcript_columns(text='Line', speaker='Who', dialogue='Scene')
    dialogues = read_transcript(path, columns)
    assert [d.dialogue_id for d in dialogues] == ['0', '1']
    assert [u.text for u in dialogues[1].utterances] == [TALK[2][1], TALK[3][1]]


def test_missing_column_names_column_and_file(tmp_path):
    path = write_csv(tmp_path / 'talk.csv', [{'Text': t, 'Speaker': s} for s, t in TALK])
    with pytest.raises(ValueError, match=r"talk\.csv: column 'Utterance' \(text\) is "
                                         r"missing.*--text-column"):
        read_transcript(path)
    # An explicitly named optional column must exist.
    write_talk(path)
    with pytest.raises(ValueError, match=r"talk\.csv: column 'Conv' \(dialogue\)"):
        read_transcript(path, transcript_columns(dialogue='Conv'))
    with pytest.raises(ValueError, match=r"talk\.csv: column 'Recording' \(audio\)"):
        read_transcript(path, transcript_columns(audio='Recording'), need_audio=True)


def test_bad_rows_name_file_line_and_field(tmp_path):
    jsonl = tmp_path / 't.jsonl'
    jsonl.write_text('{"Utterance": "hi", "Speaker": "A"}\n{"Utterance": "yo"}\n')
    with pytest.raises(ValueError, match=r"t\.jsonl: line 2: field 'speaker'"):
        read_transcript(jsonl)
    jsonl.write_text('{"Utterance": "hi", "Speaker": "A"}\nnot json\n')
    with pytest.raises(ValueError, match=r"t\.jsonl: line 2: not valid JSON"):
        read_transcript(jsonl)
    path = write_csv(tmp_path / 'o.csv', [{'Utterance': 'a', 'Speaker': 'A',
                                           'Utterance_ID': 'first'}])
    with pytest.raises(ValueError, match=r"o\.csv: dialogue '': field 'order'.*line 2"):
        read_transcript(path)


def test_several_files_get_distinct_ids(tmp_path):
    a, b = write_talk(tmp_path / 'a.csv'), write_talk(tmp_path / 'b.csv')
    assert [d.dialogue_id for d in read_transcripts([a, b])] == ['a', 'b']
    c = write_csv(tmp_path / 'c.csv', meld_rows(0, 2))
    ids = [d.dialogue_id for d in read_transcripts([a, c])]
    assert ids[0] == 'a' and all(i.startswith('c/') for i in ids[1:]) and len(ids) == 3


def test_python_records():
    dialogues = as_transcripts([
        [{'text': t, 'speaker': s} for s, t in TALK],
        {'id': 'x', 'utterances': [{'text': 'hi', 'speaker': "['Ann']", 'label': 'joy',
                                    'audio': 'a.wav'}]},
    ])
    assert all(isinstance(d, Transcript) for d in dialogues)
    assert [d.dialogue_id for d in dialogues] == ['0', 'x']
    u = dialogues[1].utterances[0]
    assert (u.speaker, u.label, u.audio) == ('Ann', 'joy', 'a.wav')
    with pytest.raises(ValueError, match=r"dialogue '0': utterance 1: field 'speaker'"):
        as_transcripts([[{'text': 'a', 'speaker': 'A'}, {'text': 'b'}]])
    with pytest.raises(ValueError, match='list of dialogues'):
        as_transcripts({'text': 'a', 'speaker': 'A'})
