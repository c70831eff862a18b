r"""A user's own conversations, read for prediction: CSV or JSON lines files, or Python
records, with no splits and no labels required.

The columns are those of a ``[csv]`` mapping (:func:`~dsgdn_pyg.datasets.dialogue_csv.
resolve_mapping`; a checkpoint's own, or MELD's), optionally renamed by the caller. Only the
text and speaker columns must exist:

* no label column: unlabelled utterances;
* no dialogue column(s): the whole file is one dialogue;
* no order column: the file's row order;
* an ``audio`` column (when the model uses audio): a recording per utterance, relative to the
  file;
* a ``video`` column (when the model uses video; with the mapping's ``video_start`` and
  ``video_end`` columns if it has them): a clip per utterance, relative to the file; its sound
  track serves a model that uses audio when there is no ``audio`` column.

A JSON lines file holds one object per utterance whose keys are the same column names.
"""
import os
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from dsgdn_pyg.datasets.csv_format import parse_speaker, read_dialogue_rows, resolve_mapping
from dsgdn_pyg.io import json_lines
from dsgdn_pyg.video.clips import Clip
from dsgdn_pyg.video.modality import clip_of_value, make_clip

PathLike = Union[str, os.PathLike]
JSON_LINES = ('.jsonl', '.ndjson')
#: The fields a caller may rename, with the option that does it on the command line.
COLUMN_OPTIONS = {'text': '--text-column', 'speaker': '--speaker-column',
                  'dialogue': '--dialogue-column', 'label': '--label-column',
                  'order': '--order-column', 'audio': '--audio-column',
                  'video': '--video-column'}
_MEDIA = ('audio', 'video', 'video_start', 'video_end')


@dataclass
class Utterance:
    r"""One utterance of a transcript; :obj:`label` is ``''`` when unknown, :obj:`audio` the
    recording's path (relative ones are resolved against the transcript file), or
    :obj:`None`, :obj:`video` likewise its clip; :obj:`where` is its place for error
    messages."""
    text: str
    speaker: str
    label: str = ''
    audio: Optional[str] = None
    where: str = ''
    video: Optional[Clip] = None


@dataclass
class Transcript:
    r"""One dialogue to predict: its id, its utterances in order, and the file it came from
    (for error messages; ``'<dialogues>'`` for Python records)."""
    dialogue_id: str
    utterances: List[Utterance]
    source: str = '<dialogues>'
    meta: Dict[str, Any] = field(default_factory=dict)


def transcript_columns(mapping: Optional[Mapping[str, Any]] = None,
                       **columns: Optional[Union[str, Sequence[str]]]) -> Dict[str, Any]:
    r"""The column mapping to read transcripts with: :obj:`mapping` (a ``[csv]`` table; its
    ``files`` are ignored) over MELD's defaults, with the fields of :obj:`columns` that are not
    :obj:`None` replaced (``text``, ``speaker``, ``dialogue``, ``label``, ``order``,
    ``audio``; ``dialogue`` may be a list). The result records which fields were given
    explicitly: those columns must then exist."""
    unknown = sorted(set(columns) - set(COLUMN_OPTIONS))
    if unknown:
        raise ValueError(f"unknown column field(s) {unknown}; use {sorted(COLUMN_OPTIONS)}")
    given = {k: v for k, v in columns.items() if v is not None}
    base = {k: v for k, v in dict(mapping or {}).items() if k != 'files'}
    base.update(given)
    out = resolve_mapping(base)
    out.pop('files')
    out['explicit'] = sorted(given)
    return out


def _effective_mapping(source: str, present: Sequence[str], columns: Mapping[str, Any],
                       need_audio: bool, need_video: bool = False) -> Dict[str, Any]:
    r""":obj:`columns` fitted to the columns a file has: optional ones that are absent are
    dropped (no labels, one dialogue, row order), required ones raise naming the column."""
    explicit = set(columns.get('explicit', ()))
    out = {k: v for k, v in columns.items() if k != 'explicit'}

    def missing(field: str, column: str) -> ValueError:
        return ValueError(f"{source}: column {column!r} ({field}) is missing; the file has "
                          f"columns {list(present)} (name the {field} column with "
                          f"{COLUMN_OPTIONS[field]})")

    for name in ('text', 'speaker'):
        if out[name] not in present:
            raise missing(name, out[name])
    for name in ('label', 'order'):
        if out[name] and out[name] not in present:
            if name in explicit:
                raise missing(name, out[name])
            out[name] = ''
    absent = [c for c in out['dialogue'] if c not in present]
    if absent and ('dialogue' in explicit or len(absent) < len(out['dialogue'])):
        raise missing('dialogue', absent[0])
    if absent:
        out['dialogue'] = []
    has = {k: bool(out.get(k)) and out[k] in present for k in ('audio', 'video')}
    if need_audio and not has['audio'] and not has['video']:
        # The clips' sound track serves a model trained on it, or on recordings.
        if not out.get('audio') and not out.get('video'):
            raise ValueError(f"{source}: the model uses audio, so the transcript needs a "
                             f"column of recordings (name it with --audio-column) or of "
                             f"video clips (--video-column)")
        raise missing('audio', out['audio']) if out.get('audio') else \
            missing('video', out['video'])
    if need_video and not has['video']:
        if not out.get('video'):
            raise ValueError(f"{source}: the model uses video, so the transcript needs a "
                             f"column of clips (name it with --video-column)")
        raise missing('video', out['video'])
    if not need_audio or not has['audio']:
        out['audio'] = None
    if not need_video and not (need_audio and not has['audio']):
        out['video'] = None
    for key in ('video_start', 'video_end'):
        if not out.get('video'):
            out[key] = None
        elif out.get(key) and out[key] not in present:
            raise ValueError(f"{source}: column {out[key]!r} ({key}, from the model's "
                             f"[csv] mapping) is missing; the file has columns "
                             f"{list(present)}")
    return out


def _csv_header(path: str) -> List[str]:
    import csv
    try:
        with open(path, newline='', encoding='utf-8-sig') as f:
            return next(csv.reader(f), [])
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not valid UTF-8 ({e})") from None


def _read_json_lines(path: str) -> List[Tuple[int, Dict[str, Any]]]:
    try:
        return _json_line_records(path)
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not valid UTF-8 ({e})") from None


def _json_line_records(path: str) -> List[Tuple[int, Dict[str, Any]]]:
    records = []
    for line, record in json_lines(path, '{path}: line {line}: not valid JSON ({error})',
                                   encoding='utf-8-sig'):
        if not isinstance(record, dict):
            raise ValueError(f"{path}: line {line}: expected a JSON object (one "
                             f"utterance), got {type(record).__name__}")
        records.append((line, record))
    return records


def _cell(value: Any) -> str:
    return '' if value is None else str(value)


def _group_json_lines(path: str, records: Sequence[Tuple[int, Dict[str, Any]]],
                      mapping: Mapping[str, Any]) -> Dict[str, List[Dict[str, Any]]]:
    r"""JSON lines records grouped as :func:`read_dialogue_rows` groups CSV rows."""
    required = [n for n in ('text', 'speaker', 'order') + _MEDIA if mapping.get(n)]
    for line, record in records:
        for name in required:
            if mapping[name] not in record:
                raise ValueError(f"{path}: line {line}: field {name!r} (key "
                                 f"{mapping[name]!r}) is missing")
    groups: Dict[str, List[Dict[str, Any]]] = {}
    for line, record in records:
        dialogue_id = '/'.join(_cell(record.get(c)).strip() for c in mapping['dialogue'])
        groups.setdefault(dialogue_id, []).append({
            'text': _cell(record.get(mapping['text'])),
            'speaker': parse_speaker(_cell(record.get(mapping['speaker']))),
            'label': _cell(record.get(mapping['label'])).strip() if mapping['label'] else '',
            'order': record.get(mapping['order']) if mapping['order'] else None,
            **{n: _cell(record.get(mapping[n])) if mapping.get(n) else None for n in _MEDIA},
            'line': line})
    if mapping['order']:
        for dialogue_id, rows in groups.items():
            seen: Dict[float, int] = {}
            for row in rows:
                try:
                    row['order'] = float(row['order'])
                except (TypeError, ValueError):
                    raise ValueError(f"{path}: dialogue {dialogue_id!r}: field 'order' (key "
                                     f"{mapping['order']!r}), line {row['line']}: "
                                     f"{row['order']!r} is not a number") from None
                if row['order'] in seen:
                    raise ValueError(f"{path}: dialogue {dialogue_id!r}: field 'order' "
                                     f"repeats value {row['order']:g} (lines "
                                     f"{seen[row['order']]} and {row['line']})")
                seen[row['order']] = row['line']
            rows.sort(key=lambda r: r['order'])
    return groups


def read_transcript(path: PathLike, columns: Optional[Mapping[str, Any]] = None,
                    need_audio: bool = False, need_video: bool = False) -> List[Transcript]:
    r"""The dialogues of one CSV or JSON lines (``.jsonl``, ``.ndjson``) file.

    Args:
        path (str): The file.
        columns (dict, optional): A :func:`transcript_columns` mapping. (default: MELD's)
        need_audio (bool): The ``audio`` column must exist (the model uses audio); without
            it, recordings are ignored; a ``video`` column serves when there is no
            ``audio`` column. (default: :obj:`False`)
        need_video (bool): The ``video`` column must exist (the model uses video).
            (default: :obj:`False`)

    Returns:
        List[Transcript]: In order of first appearance; a file without dialogue column is
        one dialogue whose id is the file's name without extension.

    Raises:
        ValueError: A required column is missing (naming the column and the file), or a row
            is bad (naming the file, line and field).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"transcript {path!r} does not exist")
    columns = columns if columns is not None else transcript_columns()
    if path.lower().endswith(JSON_LINES):
        records = _read_json_lines(path)
        present = sorted({k for _, r in records for k in r})
        mapping = _effective_mapping(path, present, columns, need_audio, need_video)
        groups = _group_json_lines(path, records, mapping)
    else:
        mapping = _effective_mapping(path, _csv_header(path), columns, need_audio,
                                     need_video)
        groups = read_dialogue_rows(path, mapping)
    if not groups:
        raise ValueError(f"{path}: the file has no utterances")
    stem = os.path.splitext(os.path.basename(path))[0]
    here = os.path.dirname(os.path.abspath(path))
    out = []
    for dialogue_id, rows in groups.items():
        # Recordings are named relative to the transcript.
        utterances = [Utterance(row['text'], row['speaker'], row['label'],
                                os.path.join(here, row['audio'].strip())
                                if (row.get('audio') or '').strip() else None,
                                f"{path}: line {row['line']}", _row_clip(path, row))
                      for row in rows]
        out.append(Transcript(dialogue_id if mapping['dialogue'] else stem, utterances, path,
                              {'lines': [row['line'] for row in rows]}))
    return out


def _row_clip(path: str, row: Mapping[str, Any]) -> Optional[Clip]:
    if not (row.get('video') or '').strip():
        return None
    return make_clip(path, row['video'], row.get('video_start'), row.get('video_end'),
                     f"{path}: line {row['line']}")


def read_transcripts(paths: Iterable[PathLike], columns: Optional[Mapping[str, Any]] = None,
                     need_audio: bool = False, need_video: bool = False) -> List[Transcript]:
    r""":func:`read_transcript` of several files; with more than one, each dialogue id is
    prefixed by its file's name (``talk/3``) so that ids stay distinct."""
    paths = [os.fspath(p) for p in paths]
    out = []
    for path in paths:
        dialogues = read_transcript(path, columns, need_audio, need_video)
        if len(paths) > 1:
            stem = os.path.splitext(os.path.basename(path))[0]
            for d in dialogues:
                if d.dialogue_id != stem:
                    d.dialogue_id = f'{stem}/{d.dialogue_id}'
        out.extend(dialogues)
    seen: Dict[str, str] = {}
    for d in out:
        if d.dialogue_id in seen:
            raise ValueError(f"dialogue id {d.dialogue_id!r} occurs in {seen[d.dialogue_id]} "
                             f"and {d.source}; rename one of the files")
        seen[d.dialogue_id] = d.source
    return out


def _utterance(record: Any, where: str) -> Utterance:
    if isinstance(record, Utterance):
        return record
    if not isinstance(record, Mapping):
        raise ValueError(f"{where}: an utterance must be a dict with 'text' and 'speaker', "
                         f"got {type(record).__name__}")
    for key in ('text', 'speaker'):
        if key not in record:
            raise ValueError(f"{where}: field {key!r} is missing (the utterance has "
                             f"{sorted(record)})")
    audio = record.get('audio')
    return Utterance(_cell(record['text']), parse_speaker(_cell(record['speaker'])),
                     _cell(record.get('label')).strip(),
                     os.fspath(audio) if audio is not None else None, where,
                     clip_of_value(record.get('video'), where))


def as_transcripts(dialogues: Sequence[Any]) -> List[Transcript]:
    r"""Python dialogues as :class:`Transcript` objects.

    Each item of :obj:`dialogues` is a :class:`Transcript`, a list of utterances, or a dict
    ``{'id': ..., 'utterances': [...]}``; an utterance is a dict with ``'text'`` and
    ``'speaker'``, optionally ``'label'``, ``'audio'`` (a recording's path) and ``'video'``
    (a clip: a path or ``{'path', 'start', 'end'}``). Dialogues
    without an id are numbered from 0.
    """
    if isinstance(dialogues, (str, bytes, Mapping)):
        raise ValueError("'dialogues' must be a list of dialogues (each a list of utterance "
                         "dicts, or {'id': ..., 'utterances': [...]})")
    out = []
    for k, item in enumerate(dialogues):
        if isinstance(item, Transcript):
            out.append(item)
            continue
        dialogue_id = str(k)
        if isinstance(item, Mapping):
            if 'utterances' not in item:
                raise ValueError(f"dialogue {k}: a dict dialogue needs 'utterances' (and "
                                 f"optionally 'id'), got keys {sorted(item)}")
            dialogue_id = str(item.get('id', k))
            item = item['utterances']
        where = f"dialogue {dialogue_id!r}"
        utterances = [_utterance(u, f"{where}: utterance {i}") for i, u in enumerate(item)]
        if not utterances:
            raise ValueError(f"{where} has no utterances")
        out.append(Transcript(dialogue_id, utterances))
    return out


__all__ = [
    'COLUMN_OPTIONS',
    'Transcript',
    'Utterance',
    'as_transcripts',
    'read_transcript',
    'read_transcripts',
    'transcript_columns',
]
