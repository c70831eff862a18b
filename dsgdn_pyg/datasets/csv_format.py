r"""The dialogue CSV format, shared by the corpus loader
(:mod:`dsgdn_pyg.datasets.dialogue_csv`) and the transcript reader
(:mod:`dsgdn_pyg.datasets.transcript`): the column mapping (the ``[csv]`` table, MELD's by
default), reading the rows of a file grouped into dialogues and in utterance order, the cell
parsers and the reading of labels.
"""
import ast
import csv
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from dsgdn_pyg.data.validate import SPLITS
from dsgdn_pyg.text.context import dialogue_inputs
from dsgdn_pyg.video.modality import VIDEO_FIELDS  # optional: clips as the visual modality

MELD_LABELS = ('neutral', 'surprise', 'fear', 'sadness', 'joy', 'disgust', 'anger')
MELD_MAPPING: Dict[str, Any] = {
    'files': {'train': 'train_sent_emo.csv', 'valid': 'dev_sent_emo.csv',
              'test': 'test_sent_emo.csv'},
    'text': 'Utterance',
    'speaker': 'Speaker',
    'label': 'Emotion',
    'order': 'Utterance_ID',
    'dialogue': 'Dialogue_ID',
}
COLUMN_FIELDS = ('text', 'speaker', 'label', 'order', 'dialogue')
AUDIO_FIELDS = ('audio', 'audio_features')  # optional: recordings as the audio modality


# --------------------------------------------------------------------------------------------
# The column mapping

def resolve_mapping(mapping: Optional[Mapping[str, Any]] = None,
                    defaults: Mapping[str, Any] = MELD_MAPPING) -> Dict[str, Any]:
    r"""The ``[csv]`` mapping over :obj:`defaults`, checked.

    ``files`` replaces the default file table only for the splits it names; a split mapped
    to ``""`` is absent. ``order = ""`` keeps the file's row order.

    Raises:
        ValueError: For an unknown key or a value of the wrong type.
    """
    mapping = dict(mapping or {})
    allowed = ('files',) + COLUMN_FIELDS + AUDIO_FIELDS + VIDEO_FIELDS
    unknown = sorted(set(mapping) - set(allowed))
    if unknown:
        raise ValueError(f"the '[csv]' mapping has unknown key(s) {unknown}; valid keys are "
                         f"{list(allowed)}")
    out = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in defaults.items()}
    files = mapping.pop('files', None)
    if files is not None:
        if not isinstance(files, Mapping):
            raise ValueError(f"the '[csv]' mapping's 'files' must be a table like "
                             f"{{ train = \"train.csv\", valid = \"dev.csv\", test = "
                             f"\"test.csv\" }}, got {files!r}")
        bad = sorted(set(files) - set(SPLITS))
        if bad:
            raise ValueError(f"the '[csv]' mapping's 'files' has unknown split(s) {bad}; "
                             f"use train, valid, test")
        for split, name in files.items():
            if not isinstance(name, str):
                raise ValueError(f"the '[csv]' mapping's files.{split} must be a file name, "
                                 f"got {name!r}")
        out['files'].update(files)
    out['files'] = {s: n for s, n in out['files'].items() if n}
    if 'train' not in out['files']:
        raise ValueError("the '[csv]' mapping's 'files' needs a 'train' file")
    out.update(mapping)
    for key in ('text', 'speaker', 'label', 'order'):
        if not isinstance(out[key], str) or (key != 'order' and not out[key]):
            raise ValueError(f"the '[csv]' mapping's '{key}' must be a column name, got "
                             f"{out[key]!r}")
    dialogue = out['dialogue']
    dialogue = [dialogue] if isinstance(dialogue, str) else dialogue
    if (not isinstance(dialogue, (list, tuple)) or not dialogue
            or not all(isinstance(c, str) and c for c in dialogue)):
        raise ValueError(f"the '[csv]' mapping's 'dialogue' must be a column name or a "
                         f"non-empty list of column names, got {out['dialogue']!r}")
    out['dialogue'] = list(dialogue)
    if out.get('audio') is not None and not (isinstance(out['audio'], str) and out['audio']):
        raise ValueError(f"the '[csv]' mapping's 'audio' must be a column name, got "
                         f"{out['audio']!r}")
    if 'audio_features' in out:
        from dsgdn_pyg.audio import check_feature_set
        check_feature_set(out['audio_features'])
    if any(out.get(k) is not None for k in VIDEO_FIELDS):
        from dsgdn_pyg.video.modality import check_video_mapping
        check_video_mapping(out)
    return out


# --------------------------------------------------------------------------------------------
# Reading CSVs

_LIST_LIKE = re.compile(r'^\s*[\[(].*[\])]\s*$', re.DOTALL)


def parse_speaker(value: str) -> str:
    r"""A speaker cell as one name: ``"['Monica Geller']"`` -> ``'Monica Geller'``; a list of
    several names becomes them joined by ``', '``. Parsed with :func:`ast.literal_eval`
    (literals only, nothing is evaluated); anything else is the stripped cell."""
    text = value.strip()
    if _LIST_LIKE.match(text):
        try:
            parsed = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return text
        if isinstance(parsed, (list, tuple)) and all(isinstance(p, str) for p in parsed):
            return ', '.join(p.strip() for p in parsed)
    return text


def _order_value(path: str, dialogue_id: str, column: str, line: int, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{path}: dialogue {dialogue_id!r}: field 'order' (column "
                         f"{column!r}), line {line}: {value!r} is not a number") from None


def read_dialogue_rows(path: str, mapping: Mapping[str, Any]) -> Dict[str, List[Dict[str, Any]]]:
    r"""The utterances of a CSV grouped into dialogues (in order of first appearance) and
    sorted by the ``order`` column: ``{dialogue_id: [{'text', 'speaker', 'label', 'line'},
    ...]}``.

    Raises:
        ValueError: For a missing mapped column, a non-numeric or repeated order value,
            or a file that is not UTF-8 CSV; naming the file, dialogue and field.
    """
    try:
        with open(path, newline='', encoding='utf-8-sig') as f:
            reader = csv.DictReader(f)
            columns = list(reader.fieldnames or [])
            # label = '' (no labels) and dialogue = [] (one dialogue) serve prediction.
            needed = [('text', mapping['text']), ('speaker', mapping['speaker'])]
            if mapping['label']:
                needed.append(('label', mapping['label']))
            for field in ('audio', 'video', 'video_start', 'video_end'):
                if mapping.get(field):
                    needed.append((field, mapping[field]))
            if mapping['order']:
                needed.append(('order', mapping['order']))
            needed += [('dialogue', c) for c in mapping['dialogue']]
            for field, column in needed:
                if column not in columns:
                    raise ValueError(f"{path}: column {column!r} (the '[csv]' mapping's "
                                     f"'{field}') is missing; the file has columns {columns}")
            groups: Dict[str, List[Dict[str, Any]]] = {}
            for row in reader:
                line = reader.line_num
                dialogue_id = '/'.join((row[c] or '').strip() for c in mapping['dialogue'])
                label = row[mapping['label']] if mapping['label'] else ''
                groups.setdefault(dialogue_id, []).append({
                    'text': row[mapping['text']] or '',
                    'speaker': parse_speaker(row[mapping['speaker']] or ''),
                    'label': (label or '').strip(),
                    # (A short row's missing cells are None: read as empty.)
                    'order': (row[mapping['order']] or '') if mapping['order'] else None,
                    'line': line,
                    **{field: row[mapping[field]] if mapping.get(field) else None
                       for field in ('audio', 'video', 'video_start', 'video_end')},
                })
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not valid UTF-8 ({e})") from None
    except csv.Error as e:
        raise ValueError(f"{path}: not a readable CSV file ({e})") from None
    if mapping['order']:
        column = mapping['order']
        for dialogue_id, rows in groups.items():
            for row in rows:
                row['order'] = _order_value(path, dialogue_id, column, row['line'],
                                            row['order'])
            seen: Dict[float, int] = {}
            for row in rows:
                if row['order'] in seen:
                    raise ValueError(f"{path}: dialogue {dialogue_id!r}: field 'order' "
                                     f"(column {column!r}) repeats value {row['order']:g} "
                                     f"(lines {seen[row['order']]} and {row['line']}); the "
                                     f"utterance order is ambiguous")
                seen[row['order']] = row['line']
            rows.sort(key=lambda r: r['order'])
    return groups


def label_indices(path: str, dialogue_id: str, rows: Sequence[Mapping[str, Any]],
                   index: Mapping[str, int], column: str, split: str) -> List[int]:
    labels = []
    for row in rows:
        if row['label'] == '':
            labels.append(-1)
        elif row['label'] in index:
            labels.append(index[row['label']])
        else:
            known = ', '.join(index)
            why = ('never occurs in the training split' if split != 'train'
                   else 'is not one of the label names')
            raise ValueError(f"{path}: dialogue {dialogue_id!r}: field 'label' (column "
                             f"{column!r}), line {row['line']}: label {row['label']!r} "
                             f"{why} (labels: {known})")
    return labels


def dialogue_turns(groups, dialogue_ids, split: str) -> List[List[Tuple[str, str]]]:
    r"""The ``(speaker, text)`` turns of each dialogue of :obj:`split`, in order."""
    return [[(row['speaker'], row['text']) for row in groups[split][d]]
            for d in dialogue_ids[split]]


def labelled_inputs(groups, dialogue_ids, index, split: str, context: int):
    r"""The encoder inputs (:func:`~dsgdn_pyg.text.context.dialogue_inputs`) and label
    indices of the labelled utterances of :obj:`split`, what fine-tuning trains on; the
    context of an utterance may hold unlabelled ones."""
    inputs, labels = [], []
    for d, turns in zip(dialogue_ids[split], dialogue_turns(groups, dialogue_ids, split)):
        for row, x in zip(groups[split][d], dialogue_inputs(turns, context)):
            if row['label'] in index:  # unknown labels are reported by label_indices
                inputs.append(x)
                labels.append(index[row['label']])
    return inputs, labels
