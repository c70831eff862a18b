"""Small fixture files in every supported layout, with random features but realistic keys:
IEMOCAP-like dialogue ids ('Ses01F_impro01'), MELD integer ids, 'M'/'F' speaker strings and
9-dim one-hot speaker lists.

Each builder returns the written object together with the ground truth the tests compare
against (:class:`Truth`), computed here independently of the loaders.
"""
import csv
import json
import os
import pickle
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

IEMOCAP_LABELS = ['happy', 'sad', 'neutral', 'angry', 'excited', 'frustrated']
MELD_LABELS = ['neutral', 'surprise', 'fear', 'sadness', 'joy', 'disgust', 'anger']
ROBERTA = ('roberta1', 'roberta2', 'roberta3', 'roberta4')

#: Every pickle layout the loader knows, with its roles (the documented tuple order).
LAYOUT_ROLES = {
    'dialoguegcn-iemocap-9': ('ids', 'speakers', 'labels', 'text', 'audio', 'visual',
                              'sentences', 'train_ids', 'test_ids'),
    'mmgcn-meld-10': ('ids', 'speakers', 'labels', 'text', 'audio', 'visual', 'sentences',
                      'train_ids', 'test_ids', 'extra'),
    'cosmic-iemocap-10': ('speakers', 'labels') + ROBERTA + ('sentences', 'train_ids',
                                                             'test_ids', 'valid_ids'),
    'cosmic-meld-11': ('speakers', 'labels', 'sentiment') + ROBERTA + (
        'sentences', 'train_ids', 'test_ids', 'valid_ids'),
    'sdt-iemocap-12': ('ids', 'speakers', 'labels') + ROBERTA + (
        'audio', 'visual', 'sentences', 'train_ids', 'test_ids'),
    'sdt-meld-13': ('ids', 'speakers', 'labels') + ROBERTA + (
        'audio', 'visual', 'sentences', 'train_ids', 'test_ids', 'extra'),
}
WIDTHS = {'text': 10, 'audio': 6, 'visual': 5, **{r: 8 for r in ROBERTA}}


@dataclass
class Truth:
    """What a correct loader must produce, per dialogue id (as the file keys it)."""
    layout: str
    corpus: str  # 'iemocap' or 'meld'
    fields: Dict[str, Dict[Any, Any]]  # role -> {dialogue id -> per-utterance values}
    train_ids: List[Any]
    test_ids: List[Any]
    valid_ids: Optional[List[Any]] = None
    dev_ids: List[Any] = field(default_factory=list)  # MELD dev ids inside train_ids

    @property
    def label_names(self) -> List[str]:
        return IEMOCAP_LABELS if self.corpus == 'iemocap' else MELD_LABELS


def iemocap_ids(count: int) -> List[str]:
    sessions = [f'Ses0{s}{g}' for s in range(1, 6) for g in 'FM']
    kinds = ['impro01', 'impro02', 'script01_1', 'script02_2', 'impro05a', 'script03_1']
    return [f'{sessions[i % len(sessions)]}_{kinds[i // len(sessions) % len(kinds)]}'
            for i in range(count)]


def _speakers(rng: np.random.Generator, length: int, corpus: str) -> List[Any]:
    if corpus == 'iemocap':
        first = rng.choice(['M', 'F'])
        other = 'F' if first == 'M' else 'M'
        return [first if rng.random() < 0.5 else other for _ in range(length)]
    count = int(rng.integers(1, 5))
    speakers = []
    for _ in range(length):
        one_hot = [0] * 9
        one_hot[int(rng.integers(0, count))] = 1
        speakers.append(one_hot)
    return speakers


def build_pickle(layout: str, seed: int = 0, num_train: int = 10, num_test: int = 4,
                 num_valid: int = 2, min_length: int = 2, max_length: int = 7):
    """The tuple of a layout, and its :class:`Truth`."""
    rng = np.random.default_rng(seed)
    roles = LAYOUT_ROLES[layout]
    corpus = 'meld' if 'meld' in layout else 'iemocap'
    num_classes = 6 if corpus == 'iemocap' else 7
    has_valid = 'valid_ids' in roles
    total = num_train + num_test + (num_valid if has_valid else 0)
    if corpus == 'iemocap':
        ids = iemocap_ids(total)
        train, rest = ids[:num_train], ids[num_train:]
        test, valid = rest[:num_test], rest[num_test:]
        dev = []
    else:
        # MELD: train 0-1038, dev 1039-1152, test 1153-1432.
        train = sorted(rng.choice(1039, num_train, replace=False).tolist())
        dev = []
        if layout in ('mmgcn-meld-10', 'sdt-meld-13'):
            dev = sorted(rng.choice(np.arange(1039, 1153), 2, replace=False).tolist())
            train = train + dev  # these files merged train and dev
        test = sorted(rng.choice(np.arange(1153, 1433), num_test, replace=False).tolist())
        valid = sorted(rng.choice(np.arange(1039, 1153), num_valid,
                                  replace=False).tolist()) if has_valid else []
    fields: Dict[str, Dict[Any, Any]] = {r: {} for r in roles if not r.endswith('_ids')
                                         and r != 'extra'}
    for d in train + test + valid:
        length = int(rng.integers(min_length, max_length + 1))
        for role in fields:
            if role == 'ids':
                fields[role][d] = ([f'{d}_{"FM"[i % 2]}{i:03d}' for i in range(length)]
                                   if corpus == 'iemocap' else list(range(length)))
            elif role == 'speakers':
                fields[role][d] = _speakers(rng, length, corpus)
            elif role == 'labels':
                fields[role][d] = rng.integers(0, num_classes, length).tolist()
            elif role == 'sentiment':
                fields[role][d] = rng.integers(0, 3, length).tolist()
            elif role == 'sentences':
                fields[role][d] = [f'utterance {i} of {d}' for i in range(length)]
            else:  # a feature: a list of float vectors, as the published files store them
                fields[role][d] = [rng.standard_normal(WIDTHS[role]).astype(np.float32)
                                   for _ in range(length)]
    ids_by_role = {'train_ids': train, 'test_ids': test, 'valid_ids': valid}
    items = []
    for role in roles:
        if role in ids_by_role:
            items.append(list(ids_by_role[role]))
        elif role == 'extra':
            items.append(None)
        else:
            items.append(fields[role])
    truth = Truth(layout, corpus, fields, train, test, valid if has_valid else None, dev)
    return tuple(items), truth


def write_pickle(obj: Any, path, protocol: int = 2) -> str:
    """Writes like the Python-2 era files (protocol 2, ``cPickle.dump`` default-ish)."""
    with open(path, 'wb') as f:
        pickle.dump(obj, f, protocol=protocol)
    return os.fspath(path)


# --------------------------------------------------------------------------------------------
# A Python 2 pickle, assembled opcode by opcode (no Python 2 here to write one)

def _short_binstring(data: bytes) -> bytes:
    assert len(data) < 256
    return b'U' + bytes([len(data)]) + data  # SHORT_BINSTRING: a Python 2 str


def python2_array_pickle(values: Sequence[float]) -> bytes:
    """``cPickle.dumps({'Ses01F_impro01': numpy.array(values)}, 2)`` as Python 2 + numpy 1.x
    wrote it: ``__builtin__`` names and the array buffer as a byte *str*."""
    raw = np.asarray(values, dtype='<f8').tobytes()
    dtype = (b'cnumpy\ndtype\n' + _short_binstring(b'f8') + b'K\x00K\x01\x87R'
             + b'(K\x03' + _short_binstring(b'<') + b'NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb')
    array = (b'cnumpy.core.multiarray\n_reconstruct\n' + b'cnumpy\nndarray\n'
             + b'K\x00\x85' + _short_binstring(b'b') + b'\x87R'
             + b'(K\x01' + b'K' + bytes([len(values)]) + b'\x85' + dtype + b'\x89'
             + b'T' + len(raw).to_bytes(4, 'little') + raw + b'tb')
    return (b'\x80\x02' + b'c__builtin__\ndict\n)R' + _short_binstring(b'Ses01F_impro01')
            + array + b's.')


# --------------------------------------------------------------------------------------------
# Dialogue CSVs

MELD_COLUMNS = ['Sr No.', 'Utterance', 'Speaker', 'Emotion', 'Sentiment', 'Dialogue_ID',
                'Utterance_ID', 'Season', 'Episode', 'StartTime', 'EndTime']
FRIENDS = ['Monica', 'Rachel', 'Ross', 'Chandler', 'Joey', 'Phoebe']
WORDS = ['oh', 'my', 'god', 'no', 'way', 'you', 'are', 'kidding', 'great', 'what', 'okay',
         'i', 'love', 'it', 'hate', 'this', 'so', 'sorry', 'really', 'the', 'coffee']


def meld_rows(seed: int, num_dialogues: int, first_id: int = 0,
              labels: Sequence[str] = MELD_LABELS, list_speakers: bool = False,
              shuffle: bool = True) -> List[Dict[str, str]]:
    """Rows in MELD's CSV format (utterance ids with a gap, rows shuffled so that order must
    come from ``Utterance_ID``)."""
    rng = np.random.default_rng(seed)
    rows = []
    for d in range(first_id, first_id + num_dialogues):
        length = int(rng.integers(2, 8))
        cast = rng.choice(FRIENDS, size=int(rng.integers(1, 4)), replace=False).tolist()
        utterance_ids = sorted(rng.choice(length + 2, length, replace=False).tolist())
        for u in utterance_ids:
            speaker = str(rng.choice(cast))
            rows.append({
                'Sr No.': str(len(rows) + 1),
                'Utterance': ' '.join(rng.choice(WORDS, size=int(rng.integers(1, 8)))),
                'Speaker': repr([speaker]) if list_speakers else speaker,
                'Emotion': str(rng.choice(list(labels))),
                'Sentiment': 'neutral', 'Dialogue_ID': str(d), 'Utterance_ID': str(u),
                'Season': '1', 'Episode': '2', 'StartTime': '00:00:01,000',
                'EndTime': '00:00:02,000'})
    if shuffle:
        rows = [rows[i] for i in rng.permutation(len(rows))]
    return rows


def write_csv(path, rows: List[Dict[str, str]], columns: Optional[Sequence[str]] = None):
    columns = list(columns or (rows[0].keys() if rows else MELD_COLUMNS))
    with open(path, 'w', newline='', encoding='utf-8') as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction='ignore')
        writer.writeheader()
        writer.writerows(rows)
    return os.fspath(path)


def write_meld_dir(directory, seed: int = 0, sizes=(12, 3, 4), **kwargs) -> Dict[str, list]:
    """train/dev/test CSVs in MELD's file names; returns the rows per split."""
    os.makedirs(directory, exist_ok=True)
    names = {'train': 'train_sent_emo.csv', 'valid': 'dev_sent_emo.csv',
             'test': 'test_sent_emo.csv'}
    rows = {}
    for i, (split, size) in enumerate(zip(names, sizes)):
        # MELD restarts Dialogue_ID at 0 in every file.
        rows[split] = meld_rows(seed + i, size, **kwargs)
        write_csv(os.path.join(directory, names[split]), rows[split])
    return rows


def dialogues_from_rows(rows: List[Dict[str, str]], dialogue: str = 'Dialogue_ID',
                        order: str = 'Utterance_ID') -> Dict[str, List[Dict[str, str]]]:
    """Brute force: the rows of each dialogue sorted by utterance id."""
    out: Dict[str, List[Dict[str, str]]] = {}
    for row in rows:
        out.setdefault(row[dialogue], []).append(row)
    return {d: sorted(r, key=lambda row: float(row[order])) for d, r in out.items()}


# --------------------------------------------------------------------------------------------
# Bring-your-own features

def byo_dialogues(seed: int = 0, sizes=(8, 2, 3), dims=None, string_labels: bool = False,
                  label_names: Sequence[str] = ('neg', 'neu', 'pos')) -> List[Dict[str, Any]]:
    """Dialogues of the bring-your-own format (as JSONL objects)."""
    rng = np.random.default_rng(seed)
    dims = dims or {'text': 7, 'audio': 4}
    out = []
    for split, size in zip(('train', 'valid', 'test'), sizes):
        for k in range(size):
            length = int(rng.integers(1, 6))
            labels = rng.integers(0, len(label_names), length).tolist()
            labels[0] = None if k == 1 else labels[0]  # one unlabelled utterance
            item = {'id': f'{split}-{k}', 'split': split,
                    'speakers': [str(rng.choice(['ann', 'bob', 'cy'])) for _ in range(length)],
                    'labels': [label_names[l] if string_labels and l is not None else l
                               for l in labels]}
            for m, d in dims.items():
                item[m] = rng.standard_normal((length, d)).round(5).tolist()
            out.append(item)
    return out


def write_jsonl(path, dialogues: List[Dict[str, Any]],
                header: Optional[Dict[str, Any]] = None) -> str:
    with open(path, 'w', encoding='utf-8') as f:
        if header is not None:
            f.write(json.dumps(header) + '\n')
        for item in dialogues:
            f.write(json.dumps(item) + '\n')
    return os.fspath(path)


def write_npz(path, dialogues: List[Dict[str, Any]],
              label_names: Optional[Sequence[str]] = None) -> str:
    """The NPZ form of the same dialogues (concatenated utterances plus per-dialogue
    ``lengths``), integer labels with -1 for unlabelled."""
    arrays: Dict[str, Any] = {
        'dialogue_ids': np.array([d['id'] for d in dialogues]),
        'splits': np.array([d['split'] for d in dialogues]),
        'lengths': np.array([len(d['labels']) for d in dialogues], dtype=np.int64),
        'speakers': np.array([s for d in dialogues for s in d['speakers']]),
        'labels': np.array([-1 if l is None else l for d in dialogues for l in d['labels']],
                           dtype=np.int64),
    }
    for m in ('text', 'audio', 'visual'):
        if m in dialogues[0]:
            arrays[m] = np.concatenate([np.asarray(d[m], dtype=np.float32) for d in dialogues])
    if label_names is not None:
        arrays['label_names'] = np.array(list(label_names))
    np.savez(path, **arrays)
    return os.fspath(path)
