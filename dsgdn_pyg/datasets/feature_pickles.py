r"""The feature pickles of earlier MERC papers, read safely and validated.

Every layout is a tuple (or list) of per-dialogue dicts and id collections. The layout is
detected from the file (:func:`detect_layout`):

1. Each item is classified by its content: an *id collection* (a list, tuple, set or 1-D
   array of strings/integers), or a *per-dialogue dict* whose values are per-utterance
   *vectors* (a 2-D array or a list of equal-length 1-D vectors), *integers*, or
   *strings*.
2. The candidates are the layouts in :obj:`LAYOUTS` with as many items as the tuple; a
   candidate matches when every item has the kind its role requires (labels: integers;
   features: vectors; speakers: strings, one-hot vectors or integers; split ids: id
   collections) and, where there are four RoBERTa layers, they have equal widths.
3. Exactly one candidate must match, otherwise the file is refused with a description of
   its items.

The two 10-item layouts are told apart by item 2: one integer label per utterance in
MMGCN's MELD file (``ids, speakers, labels, ...``), a feature vector per utterance in
COSMIC's IEMOCAP file (``speakers, labels, roberta1, ...``), whose items 7-9 are three id
collections where MMGCN's file has two and an extra item.

Splits: the file's own validation ids where it has them (COSMIC); otherwise, in a MELD
layout whose training ids include MELD's official dev dialogues (integer ids 1039-1152,
files that merged train and dev), those dialogues; otherwise a seeded ``valid_fraction`` of
the training dialogues.
"""
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from dsgdn_pyg.data.corpus import DialogueCorpus
from dsgdn_pyg.datasets.safe_pickle import load as safe_load
from dsgdn_pyg.data.validate import build_dialogue, feature_matrix, label_vector, speaker_indices
from dsgdn_pyg.datasets.base import DialogueCorpusDataset, ProcessedCorpus, random_valid_split

IEMOCAP_LABELS = ('happy', 'sad', 'neutral', 'angry', 'excited', 'frustrated')
MELD_LABELS = ('neutral', 'surprise', 'fear', 'sadness', 'joy', 'disgust', 'anger')
#: MELD's official dev dialogues (integer ids), used as the validation split of files that
#: merged them into the training ids.
MELD_DEV_IDS = range(1039, 1153)
#: IEMOCAP's speaker codes, numbered as the published code's one-hot speaker masks.
IEMOCAP_SPEAKERS = {'M': 0, 'F': 1}
ROBERTA_LAYERS = ('roberta1', 'roberta2', 'roberta3', 'roberta4')
TEXT_FEATURE_CHOICES = ROBERTA_LAYERS + ('mean',)

FEATURE_ROLES = ('text', 'audio', 'visual') + ROBERTA_LAYERS
ID_ROLES = ('train_ids', 'valid_ids', 'test_ids')


@dataclass(frozen=True)
class Layout:
    r"""A pickle layout: the role of each tuple item, the corpus it holds and its origin."""
    name: str
    roles: Tuple[str, ...]
    corpus: str  # 'iemocap' or 'meld'
    description: str

    @property
    def label_names(self) -> Tuple[str, ...]:
        return IEMOCAP_LABELS if self.corpus == 'iemocap' else MELD_LABELS

    @property
    def text_layers(self) -> Tuple[str, ...]:
        return tuple(r for r in self.roles if r in ROBERTA_LAYERS) or ('text',)

    @property
    def modalities(self) -> Dict[str, Tuple[str, ...]]:
        out = {'t': self.text_layers}
        for m, role in (('a', 'audio'), ('v', 'visual')):
            if role in self.roles:
                out[m] = (role,)
        return out


LAYOUTS: Tuple[Layout, ...] = (
    Layout('dialoguegcn-iemocap-9',
           ('ids', 'speakers', 'labels', 'text', 'audio', 'visual', 'sentences', 'train_ids',
            'test_ids'),
           'iemocap', '9-tuple of DialogueRNN/DialogueGCN/MMGCN (IEMOCAP)'),
    Layout('mmgcn-meld-10',
           ('ids', 'speakers', 'labels', 'text', 'audio', 'visual', 'sentences', 'train_ids',
            'test_ids', 'extra'),
           'meld', '10-tuple of MMGCN (MELD)'),
    Layout('cosmic-iemocap-10',
           ('speakers', 'labels') + ROBERTA_LAYERS + ('sentences',) + ID_ROLES[:1]
           + ('test_ids', 'valid_ids'),
           'iemocap', '10-tuple of COSMIC (IEMOCAP, four RoBERTa layers)'),
    Layout('cosmic-meld-11',
           ('speakers', 'labels', 'sentiment') + ROBERTA_LAYERS
           + ('sentences', 'train_ids', 'test_ids', 'valid_ids'),
           'meld', '11-tuple of COSMIC (MELD, four RoBERTa layers)'),
    Layout('sdt-iemocap-12',
           ('ids', 'speakers', 'labels') + ROBERTA_LAYERS
           + ('audio', 'visual', 'sentences', 'train_ids', 'test_ids'),
           'iemocap', '12-tuple of SDT/AMB-DSGDN (IEMOCAP)'),
    Layout('sdt-meld-13',
           ('ids', 'speakers', 'labels') + ROBERTA_LAYERS
           + ('audio', 'visual', 'sentences', 'train_ids', 'test_ids', 'extra'),
           'meld', '13-tuple of SDT/AMB-DSGDN (MELD)'),
)


# --------------------------------------------------------------------------------------------
# Classifying items

def _is_id(value: Any) -> bool:
    return isinstance(value, (str, bytes, int, np.integer, np.str_)) and \
        not isinstance(value, bool)


def _value_kind(value: Any) -> Tuple[str, Optional[int]]:
    # Kind of one per-dialogue value: ('vectors', width), ('integers', None), ('strings',
    # None), ('empty', None) or ('other', None).
    if isinstance(value, np.ndarray):
        if value.ndim == 2 and value.dtype.kind in 'fiub':
            return 'vectors', int(value.shape[1])
        if value.ndim == 1 and value.dtype.kind in 'iu':
            return 'integers', None
        if value.ndim == 1 and value.dtype.kind in 'US':
            return 'strings', None
        value = list(value) if value.ndim == 1 else value
    if not isinstance(value, (list, tuple)):
        return 'other', None
    if len(value) == 0:
        return 'empty', None
    first = value[0]
    if all(isinstance(v, (str, bytes, np.str_)) for v in value):
        return 'strings', None
    if np.ndim(first) == 1:
        try:
            return 'vectors', int(np.shape(first)[0])
        except (TypeError, IndexError):
            return 'other', None
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) or
           isinstance(v, (float, np.floating)) and float(v).is_integer() for v in value):
        return 'integers', None
    return 'other', None


def describe_item(item: Any) -> Tuple[str, Optional[int]]:
    r"""Classifies one tuple item: ``('ids', None)`` for an id collection,
    ``('dict:<kind>', width)`` for a per-dialogue dict whose first non-empty value is of
    kind ``vectors`` (with its width), ``integers`` or ``strings``, and ``('other', None)``.
    """
    if isinstance(item, Mapping):
        for value in item.values():
            kind, width = _value_kind(value)
            if kind != 'empty':
                return f'dict:{kind}', width
        return 'dict:empty', None
    if isinstance(item, (list, tuple, set, frozenset)) and all(_is_id(v) for v in item):
        return 'ids', None
    if isinstance(item, np.ndarray) and item.ndim == 1 and item.dtype.kind in 'iuUS':
        return 'ids', None
    return 'other', None


_ROLE_KINDS = {
    'labels': ('dict:integers',),
    'speakers': ('dict:strings', 'dict:vectors', 'dict:integers'),
    'ids': ('dict:integers', 'dict:strings', 'dict:other', 'dict:vectors', 'dict:empty'),
    'sentences': ('dict:strings', 'dict:other', 'dict:empty'),
    'sentiment': ('dict:integers',),
    **{r: ('dict:vectors',) for r in FEATURE_ROLES},
    **{r: ('ids',) for r in ID_ROLES},
}


def _matches(layout: Layout, kinds: Sequence[Tuple[str, Optional[int]]]) -> bool:
    if len(layout.roles) != len(kinds):
        return False
    for role, (kind, _) in zip(layout.roles, kinds):
        if role != 'extra' and kind not in _ROLE_KINDS[role]:
            return False
    widths = {kinds[i][1] for i, r in enumerate(layout.roles) if r in ROBERTA_LAYERS}
    return len(widths) <= 1


def detect_layout(obj: Any, source: str = '<pickle>') -> Layout:
    r"""The :class:`Layout` of an unpickled feature file (see the module docstring).

    Raises:
        ValueError: If the object is not a tuple/list, or no layout (or several) fits it.
    """
    if not isinstance(obj, (tuple, list)):
        raise ValueError(f"{source}: unknown layout: the file holds a {type(obj).__name__}, "
                         f"expected a tuple of per-dialogue dicts and id lists")
    kinds = [describe_item(item) for item in obj]
    found = [layout for layout in LAYOUTS if _matches(layout, kinds)]
    if len(found) == 1:
        return found[0]
    items = ', '.join(f'{i}: {k}' + (f'[{w}]' if w is not None else '')
                      for i, (k, w) in enumerate(kinds))
    known = '; '.join(f"{l.name} = {l.description}: ({', '.join(l.roles)})" for l in LAYOUTS)
    if not found:
        raise ValueError(f"{source}: unknown layout: a {len(obj)}-item tuple with items "
                         f"[{items}] fits none of the known layouts ({known})")
    raise ValueError(f"{source}: ambiguous layout: items [{items}] fit "
                     f"{[l.name for l in found]}")


# --------------------------------------------------------------------------------------------
# Reading a file

def _id_list(ids: Any) -> List[Any]:
    if isinstance(ids, (set, frozenset)):
        # Sets have no order (and string hashing is randomised): sort for determinism.
        return sorted(ids, key=lambda v: (type(v).__name__, v))
    return [v.item() if isinstance(v, np.generic) else v for v in ids]


def _check_text_feature(layout: Layout, text_feature: Optional[str]) -> Tuple[str, ...]:
    layers = layout.text_layers
    if len(layers) == 1:
        if text_feature not in (None, 'text'):
            raise ValueError(f"'text_feature' is {text_feature!r}, but layout {layout.name} "
                             f"has a single text feature; the option applies to layouts with "
                             f"four RoBERTa layers")
        return layers
    text_feature = text_feature or 'roberta1'
    if text_feature not in TEXT_FEATURE_CHOICES:
        raise ValueError(f"'text_feature' must be one of {TEXT_FEATURE_CHOICES}, got "
                         f"{text_feature!r}")
    return layers if text_feature == 'mean' else (text_feature,)


def _splits(source: str, layout: Layout, fields: Mapping[str, Any], valid_fraction: float,
            seed: int) -> Tuple[Dict[str, List[Any]], str]:
    train = _id_list(fields['train_ids'])
    test = _id_list(fields['test_ids'])
    overlap = set(train) & set(test)
    if overlap:
        raise ValueError(f"{source}: dialogue {sorted(overlap, key=str)[0]!r} is listed in "
                         f"both 'train_ids' and 'test_ids' ({len(overlap)} dialogues overlap)")
    if 'valid_ids' in fields:
        valid = _id_list(fields['valid_ids'])
        if set(valid) & set(test):
            raise ValueError(f"{source}: dialogue {sorted(set(valid) & set(test), key=str)[0]!r} "
                             f"is listed in both 'valid_ids' and 'test_ids'")
        held = set(valid)
        return {'train': [d for d in train if d not in held], 'valid': valid,
                'test': test}, 'file'
    if layout.corpus == 'meld' and all(isinstance(d, int) for d in train):
        dev = [d for d in train if d in MELD_DEV_IDS]
        if dev and len(dev) < len(train):
            return {'train': [d for d in train if d not in MELD_DEV_IDS], 'valid': dev,
                    'test': test}, 'meld-dev'
    train, valid = random_valid_split(train, valid_fraction, seed)
    return {'train': train, 'valid': valid, 'test': test}, 'random'


def read_feature_pickle(path: str, text_feature: Optional[str] = None,
                        valid_fraction: float = 0.1, seed: int = 0,
                        label_names: Optional[Sequence[str]] = None) -> ProcessedCorpus:
    r"""Reads and validates a feature pickle (see :func:`load_feature_pickle` for the
    arguments); the result is what :class:`FeaturePickleDataset` caches."""
    obj = safe_load(path)
    layout = detect_layout(obj, path)
    fields = dict(zip(layout.roles, obj))
    layers = _check_text_feature(layout, text_feature)
    names = tuple(label_names) if label_names is not None else layout.label_names
    if not names or len(set(names)) != len(names):
        raise ValueError(f"'label_names' must be distinct names, got {label_names!r}")

    splits_ids, valid_source = _splits(path, layout, fields, valid_fraction, seed)
    speakers_dict = fields['speakers']
    fixed = None
    if describe_item(speakers_dict)[0] == 'dict:strings':
        names_used = {s for v in speakers_dict.values() for s in v}
        if names_used <= set(IEMOCAP_SPEAKERS):
            fixed = IEMOCAP_SPEAKERS

    modalities = dict(layout.modalities, t=layers)
    needed = ['speakers', 'labels'] + [r for roles in modalities.values() for r in roles]
    splits: Dict[str, List[Any]] = {}
    for split, ids in splits_ids.items():
        dialogues = []
        for dialogue_id in ids:
            for role in needed:
                if dialogue_id not in fields[role]:
                    raise ValueError(f"{path}: dialogue {dialogue_id!r} is listed in "
                                     f"'{split}_ids' but absent from field '{role}'")
            labels = label_vector(path, dialogue_id, list(fields['labels'][dialogue_id]),
                                  len(names))
            speakers = speaker_indices(path, dialogue_id, list(speakers_dict[dialogue_id]),
                                       fixed)
            # Each layer is checked under its own name before the layers are averaged.
            features = {m: _mean([feature_matrix(path, dialogue_id, r, fields[r][dialogue_id],
                                                 len(labels)) for r in roles])
                        for m, roles in modalities.items()}
            dialogues.append(build_dialogue(path, dialogue_id, speakers, labels, features))
        splits[split] = dialogues
    meta = {'layout': layout.name, 'layout_description': layout.description,
            'corpus': layout.corpus, 'valid_split': valid_source,
            'text_feature': 'mean' if len(layers) > 1 else layers[0]}
    return ProcessedCorpus(splits, list(names), meta)


def _mean(matrices: List[np.ndarray]) -> np.ndarray:
    return matrices[0] if len(matrices) == 1 else np.mean(np.stack(matrices), axis=0)


class FeaturePickleDataset(DialogueCorpusDataset):
    r"""A community feature pickle as a cached :class:`~torch_geometric.data.InMemoryDataset`
    of dialogues (see the module docstring for the layouts and the detection rule).

    Args:
        path (str): The ``.pkl`` file.
        root (str, optional): Cache root. (default: ``$DSGDN_PYG_CACHE`` or
            ``~/.cache/dsgdn-pyg``)
        text_feature (str, optional): For layouts with four RoBERTa layers: ``'roberta1'``
            .. ``'roberta4'`` or ``'mean'`` of the four. (default: :obj:`'roberta1'`)
        valid_fraction (float): Share of training dialogues held out when the file has no
            validation ids. (default: :obj:`0.1`)
        seed (int): Seed of that hold-out. (default: :obj:`0`)
        label_names (List[str], optional): Class names overriding the layout's published
            ones (IEMOCAP's six or MELD's seven), for files with another label set.
            (default: :obj:`None`)
        force_reload (bool): Process even if cached. (default: :obj:`False`)
        log (bool): Print while processing. (default: :obj:`True`)
    """
    kind = 'pickle'

    def __init__(self, path: str, root: Optional[str] = None,
                 text_feature: Optional[str] = None, valid_fraction: float = 0.1,
                 seed: int = 0, label_names: Optional[Sequence[str]] = None,
                 force_reload: bool = False, log: bool = True):
        options = dict(text_feature=text_feature, valid_fraction=float(valid_fraction),
                       seed=int(seed),
                       label_names=list(label_names) if label_names is not None else None)
        super().__init__(path, root=root, options=options, force_reload=force_reload, log=log)

    def read(self) -> ProcessedCorpus:
        return read_feature_pickle(self.source, **self.options)


def load_feature_pickle(path: str, seed: int = 0, text_feature: Optional[str] = None,
                        valid_fraction: float = 0.1,
                        label_names: Optional[Sequence[str]] = None,
                        root: Optional[str] = None, force_reload: bool = False,
                        log: bool = True) -> DialogueCorpus:
    r"""Loads a community feature pickle (``load_corpus('pickle:PATH', ...)``).

    Args:
        path (str): The ``.pkl`` file.
        seed (int): Seed of the validation hold-out (files without validation ids).
            (default: :obj:`0`)
        text_feature (str, optional): ``'roberta1'`` .. ``'roberta4'`` or ``'mean'``, for
            layouts with four RoBERTa layers. (default: :obj:`'roberta1'`)
        valid_fraction (float): Share of training dialogues held out. (default: :obj:`0.1`)
        label_names (List[str], optional): Override of the published class names.
            (default: :obj:`None`)
        root (str, optional): Cache root. (default: :obj:`None`)
        force_reload (bool): Process even if cached. (default: :obj:`False`)
        log (bool): Print while processing. (default: :obj:`True`)
    """
    dataset = FeaturePickleDataset(path, root=root, text_feature=text_feature,
                                   valid_fraction=valid_fraction, seed=seed,
                                   label_names=label_names, force_reload=force_reload,
                                   log=log)
    return dataset.to_corpus(f'pickle:{path}')


__all__ = [
    'FeaturePickleDataset',
    'IEMOCAP_LABELS',
    'LAYOUTS',
    'Layout',
    'MELD_LABELS',
    'describe_item',
    'detect_layout',
    'load_feature_pickle',
    'read_feature_pickle',
]
