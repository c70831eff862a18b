r"""The bring-your-own-features format: per dialogue the speakers, labels and per-modality
feature arrays, as JSON lines or as one NumPy ``.npz`` file (docs/data_formats.md).

**JSONL** -- one JSON object per line and dialogue::

    {"label_names": ["negative", "neutral", "positive"]}                  (optional header)
    {"id": "d1", "split": "train", "speakers": ["ann", "bob", "ann"],
     "labels": [1, 2, null], "text": [[0.1, 0.2], [0.0, 0.3], [0.5, 0.1]]}

* ``id`` (string or integer, unique), ``split`` (``"train"``, ``"valid"`` or ``"test"``),
  ``speakers`` (names, numbered per dialogue in order of first appearance, or integer
  indices), ``labels`` (integer indices, or names from ``label_names``; ``null`` or ``-1`` =
  unlabelled), and at least one of ``text``, ``audio``, ``visual`` (one list of numbers per
  utterance). ``sentences`` (list of strings) is allowed and ignored.
* The first line is a header when it has the key ``label_names`` (and no ``id``).
  Without a header, integer labels are named ``"0"``, ``"1"``, ... and string labels are
  sorted.

**NPZ** -- utterances of all dialogues concatenated in dialogue order:

=================  ========================  ===============================================
key                shape / dtype             meaning
=================  ========================  ===============================================
``dialogue_ids``   ``[D]`` str or int        dialogue ids
``splits``         ``[D]`` str               ``train`` / ``valid`` / ``test``
``lengths``        ``[D]`` int               utterances per dialogue
``speakers``       ``[N]`` str or int        speaker per utterance
``labels``         ``[N]`` int               label index, ``-1`` = unlabelled
``text`` ...       ``[N, D_m]`` float        ``text``, ``audio``, ``visual`` (at least one)
``label_names``    ``[C]`` str (optional)    class names
=================  ========================  ===============================================

Strings must be NumPy unicode arrays (``np.array(['a', 'b'])``), not object arrays: the file
is read with ``allow_pickle=False``.

When no dialogue is in ``valid``, a seeded ``valid_fraction`` of the training dialogues is
held out.
"""
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from dsgdn_pyg.data.corpus import DialogueCorpus
from dsgdn_pyg.data.validate import SPLITS, build_dialogue, label_vector, speaker_indices
from dsgdn_pyg.datasets.base import DialogueCorpusDataset, ProcessedCorpus, random_valid_split
from dsgdn_pyg.io import json_lines

MODALITY_KEYS = {'text': 't', 'audio': 'a', 'visual': 'v'}
JSONL_KEYS = ('id', 'split', 'speakers', 'labels', 'sentences') + tuple(MODALITY_KEYS)
NPZ_KEYS = ('dialogue_ids', 'splits', 'lengths', 'speakers', 'labels', 'label_names') + \
    tuple(MODALITY_KEYS)


def _check_split(source: str, dialogue_id: Any, split: Any) -> str:
    if split not in SPLITS:
        raise ValueError(f"{source}: dialogue {dialogue_id!r}: field 'split' is {split!r}; "
                         f"expected one of {SPLITS}")
    return split


def read_jsonl(path: str) -> Tuple[Optional[List[str]], List[Dict[str, Any]]]:
    r"""The header's ``label_names`` (or :obj:`None`) and the dialogue objects of a JSONL
    file, after checking the keys of each line.

    Raises:
        ValueError: For invalid JSON (naming the line), a non-object line, unknown or
            missing keys (naming the dialogue and field) or repeated ids.
    """
    header: Optional[List[str]] = None
    dialogues: List[Dict[str, Any]] = []
    seen = set()
    for number, item in json_lines(path, '{path}: line {line} is not valid JSON ({error})'):
        if not isinstance(item, dict):
            raise ValueError(f"{path}: line {number} is a JSON {type(item).__name__}, "
                             f"expected an object (one dialogue per line)")
        if not dialogues and header is None and 'label_names' in item and 'id' not in item:
            names = item['label_names']
            if (not isinstance(names, list) or not names
                    or not all(isinstance(n, str) for n in names)):
                raise ValueError(f"{path}: header field 'label_names' must be a list of "
                                 f"strings, got {names!r}")
            header = names
            continue
        dialogue_id = item.get('id', f'<line {number}>')
        unknown = sorted(set(item) - set(JSONL_KEYS))
        if unknown:
            raise ValueError(f"{path}: dialogue {dialogue_id!r} (line {number}) has unknown "
                             f"field(s) {unknown}; valid fields are {list(JSONL_KEYS)}")
        for key in ('id', 'split', 'speakers', 'labels'):
            if key not in item:
                raise ValueError(f"{path}: dialogue {dialogue_id!r} (line {number}) has no "
                                 f"field '{key}'")
        if not any(m in item for m in MODALITY_KEYS):
            raise ValueError(f"{path}: dialogue {dialogue_id!r} (line {number}) has no "
                             f"feature field; give at least one of {list(MODALITY_KEYS)}")
        if not isinstance(dialogue_id, (str, int)) or isinstance(dialogue_id, bool):
            raise ValueError(f"{path}: line {number}: field 'id' must be a string or an "
                             f"integer, got {dialogue_id!r}")
        if dialogue_id in seen:
            raise ValueError(f"{path}: dialogue {dialogue_id!r} (line {number}) repeats an "
                             f"earlier id")
        seen.add(dialogue_id)
        for key in ('speakers', 'labels'):
            if not isinstance(item[key], list):
                raise ValueError(f"{path}: dialogue {dialogue_id!r}: field '{key}' must be "
                                 f"a list, got {type(item[key]).__name__}")
        _check_split(path, dialogue_id, item['split'])
        dialogues.append(item)
    return header, dialogues


def _label_names(source: str, header: Optional[Sequence[str]],
                 override: Optional[Sequence[str]],
                 dialogues: Sequence[Mapping[str, Any]]) -> List[str]:
    if override is not None:
        return list(override)
    if header is not None:
        return list(header)
    values = [v for d in dialogues for v in d['labels'] if v is not None]
    if any(isinstance(v, str) for v in values):
        return sorted({v for d in dialogues if d['split'] == 'train' for v in d['labels']
                       if isinstance(v, str)})
    largest = max((int(v) for v in values if isinstance(v, (int, float))), default=-1)
    return [str(i) for i in range(largest + 1)]


def _labels(source: str, dialogue_id: Any, values: Sequence[Any],
            names: Sequence[str]) -> np.ndarray:
    index = {n: i for i, n in enumerate(names)}
    numbers = []
    for i, value in enumerate(values):
        if value is None:
            numbers.append(-1)
        elif isinstance(value, str):
            if value not in index:
                raise ValueError(f"{source}: dialogue {dialogue_id!r}: field 'labels': "
                                 f"utterance {i} has label {value!r}, which is not one of "
                                 f"{list(names)}")
            numbers.append(index[value])
        else:
            numbers.append(value)
    return label_vector(source, dialogue_id, numbers, len(names))


def _build(source: str, items: Sequence[Mapping[str, Any]], names: Sequence[str],
           valid_fraction: float, seed: int) -> Tuple[Dict[str, List[Any]], str]:
    ids = {s: [d for d in items if d['split'] == s] for s in SPLITS}
    valid_split = 'file'
    if not ids['valid']:
        train, valid = random_valid_split(list(range(len(ids['train']))), valid_fraction, seed)
        ids['valid'] = [ids['train'][i] for i in valid]
        ids['train'] = [ids['train'][i] for i in train]
        valid_split = 'random'
    splits = {}
    for split in SPLITS:
        dialogues = []
        for item in ids[split]:
            dialogue_id = item['id']
            labels = _labels(source, dialogue_id, item['labels'], names)
            speakers = speaker_indices(source, dialogue_id, list(item['speakers']))
            features = {MODALITY_KEYS[k]: item[k] for k in MODALITY_KEYS if k in item}
            dialogues.append(build_dialogue(source, dialogue_id, speakers, labels, features))
        splits[split] = dialogues
    return splits, valid_split


def read_jsonl_corpus(path: str, label_names: Optional[Sequence[str]] = None,
                      valid_fraction: float = 0.1, seed: int = 0) -> ProcessedCorpus:
    r"""Reads and validates a JSONL feature file (see the module docstring)."""
    header, items = read_jsonl(path)
    if not items:
        raise ValueError(f"{path}: no dialogues")
    names = _label_names(path, header, label_names, items)
    splits, valid_split = _build(path, items, names, valid_fraction, seed)
    return ProcessedCorpus(splits, names, {'format': 'jsonl', 'valid_split': valid_split})


def _npz_strings(source: str, key: str, array: np.ndarray) -> List[Any]:
    if array.ndim != 1:
        raise ValueError(f"{source}: key '{key}' must be 1-D, got shape {array.shape}")
    if array.dtype.kind in 'US':
        return [str(v) for v in array.tolist()]
    if array.dtype.kind in 'iu':
        return [int(v) for v in array.tolist()]
    raise ValueError(f"{source}: key '{key}' must hold strings or integers, got dtype "
                     f"{array.dtype}")


def read_npz_corpus(path: str, label_names: Optional[Sequence[str]] = None,
                    valid_fraction: float = 0.1, seed: int = 0) -> ProcessedCorpus:
    r"""Reads and validates an NPZ feature file (see the module docstring)."""
    try:
        archive = np.load(path, allow_pickle=False)
    except ValueError as e:
        # numpy refuses object arrays (they would need unpickling).
        raise ValueError(f"{path}: cannot be read without unpickling ({e}); store strings as "
                         f"unicode arrays, e.g. np.array(['a', 'b'])") from None
    except (OSError, EOFError) as e:
        raise ValueError(f"{path}: not a readable .npz file ({e})") from None
    with archive:
        keys = set(archive.files)
        unknown = sorted(keys - set(NPZ_KEYS))
        if unknown:
            raise ValueError(f"{path}: unknown key(s) {unknown}; valid keys are "
                             f"{list(NPZ_KEYS)}")
        for key in ('dialogue_ids', 'splits', 'lengths', 'speakers', 'labels'):
            if key not in keys:
                raise ValueError(f"{path}: key '{key}' is missing")
        modalities = [m for m in MODALITY_KEYS if m in keys]
        if not modalities:
            raise ValueError(f"{path}: no feature key; give at least one of "
                             f"{list(MODALITY_KEYS)}")
        try:
            arrays = {k: archive[k] for k in keys}
        except ValueError as e:
            raise ValueError(f"{path}: cannot be read without unpickling ({e}); store strings "
                             f"as unicode arrays, e.g. np.array(['a', 'b'])") from None
    dialogue_ids = _npz_strings(path, 'dialogue_ids', arrays['dialogue_ids'])
    splits = _npz_strings(path, 'splits', arrays['splits'])
    lengths = arrays['lengths']
    num = len(dialogue_ids)
    if len(splits) != num or lengths.shape != (num,) or lengths.dtype.kind not in 'iu':
        raise ValueError(f"{path}: 'dialogue_ids' has {num} entries but 'splits' has "
                         f"{len(splits)} and 'lengths' has shape {lengths.shape} (dtype "
                         f"{lengths.dtype}); each needs one entry per dialogue")
    if len(set(dialogue_ids)) != num:
        repeated = next(d for d in dialogue_ids if dialogue_ids.count(d) > 1)
        raise ValueError(f"{path}: dialogue {repeated!r} appears twice in 'dialogue_ids'")
    if (lengths < 0).any():
        raise ValueError(f"{path}: 'lengths' has a negative entry")
    total = int(lengths.sum())
    speakers = _npz_strings(path, 'speakers', arrays['speakers'])
    labels = arrays['labels']
    for key, size in [('speakers', len(speakers)), ('labels', len(labels))] + \
            [(m, len(arrays[m])) for m in modalities]:
        if size != total:
            raise ValueError(f"{path}: key '{key}' has {size} utterances but 'lengths' adds "
                             f"up to {total}")
    for m in modalities:
        if arrays[m].ndim != 2:
            raise ValueError(f"{path}: key '{m}' must be [utterances, features], got shape "
                             f"{arrays[m].shape}")
    if labels.ndim != 1 or labels.dtype.kind not in 'iu':
        raise ValueError(f"{path}: key 'labels' must be a 1-D integer array (-1 = "
                         f"unlabelled), got shape {labels.shape} dtype {labels.dtype}")
    if label_names is None and 'label_names' in arrays:
        label_names = [str(n) for n in _npz_strings(path, 'label_names',
                                                     arrays['label_names'])]
    items, offsets = [], np.concatenate([[0], np.cumsum(lengths)])
    for d, (dialogue_id, split) in enumerate(zip(dialogue_ids, splits)):
        start, stop = int(offsets[d]), int(offsets[d + 1])
        item = {'id': dialogue_id, 'split': _check_split(path, dialogue_id, split),
                'speakers': speakers[start:stop], 'labels': labels[start:stop].tolist()}
        item.update({m: arrays[m][start:stop] for m in modalities})
        items.append(item)
    names = _label_names(path, None, label_names, items)
    built, valid_split = _build(path, items, names, valid_fraction, seed)
    return ProcessedCorpus(built, names, {'format': 'npz', 'valid_split': valid_split})


class DialogueFeaturesDataset(DialogueCorpusDataset):
    r"""A bring-your-own feature file (JSONL or NPZ, see the module docstring) as a cached
    :class:`~torch_geometric.data.InMemoryDataset`.

    Args:
        path (str): The ``.jsonl`` or ``.npz`` file.
        format (str): ``'jsonl'`` or ``'npz'``. (default: from the file extension)
        root (str, optional): Cache root. (default: ``$DSGDN_PYG_CACHE`` or
            ``~/.cache/dsgdn-pyg``)
        label_names (List[str], optional): Class names (overrides the file's).
            (default: :obj:`None`)
        valid_fraction (float): Share of training dialogues held out when no dialogue is in
            ``valid``. (default: :obj:`0.1`)
        seed (int): Seed of that hold-out. (default: :obj:`0`)
        force_reload (bool): Process even if cached. (default: :obj:`False`)
        log (bool): Print while processing. (default: :obj:`True`)
    """
    def __init__(self, path: str, format: Optional[str] = None, root: Optional[str] = None,
                 label_names: Optional[Sequence[str]] = None, valid_fraction: float = 0.1,
                 seed: int = 0, force_reload: bool = False, log: bool = True):
        if format is None:
            format = 'npz' if os.fspath(path).endswith('.npz') else 'jsonl'
        if format not in ('jsonl', 'npz'):
            raise ValueError(f"'format' must be 'jsonl' or 'npz', got {format!r}")
        self.kind = format
        if label_names is not None and (not label_names or
                                        len(set(label_names)) != len(label_names)):
            raise ValueError(f"'label_names' must be distinct names, got {label_names!r}")
        options = dict(label_names=list(label_names) if label_names is not None else None,
                       valid_fraction=float(valid_fraction), seed=int(seed))
        self._read_options = options
        super().__init__(path, root=root, options=options, force_reload=force_reload, log=log)

    def read(self) -> ProcessedCorpus:
        reader = read_npz_corpus if self.kind == 'npz' else read_jsonl_corpus
        return reader(self.source, **self._read_options)


def load_jsonl(path: str, seed: int = 0, **options) -> DialogueCorpus:
    r"""Loads a JSONL feature file (``load_corpus('jsonl:PATH')``); options as in
    :class:`DialogueFeaturesDataset`."""
    return DialogueFeaturesDataset(path, format='jsonl', seed=seed,
                                   **options).to_corpus(f'jsonl:{path}')


def load_npz(path: str, seed: int = 0, **options) -> DialogueCorpus:
    r"""Loads an NPZ feature file (``load_corpus('npz:PATH')``); options as in
    :class:`DialogueFeaturesDataset`."""
    return DialogueFeaturesDataset(path, format='npz', seed=seed,
                                   **options).to_corpus(f'npz:{path}')


__all__ = [
    'DialogueFeaturesDataset',
    'load_jsonl',
    'load_npz',
    'read_jsonl',
    'read_jsonl_corpus',
    'read_npz_corpus',
]
