r"""The base class of the on-disk loaders: the processed cache (a PyG
:class:`~torch_geometric.data.InMemoryDataset`). The checks that turn raw per-dialogue
fields into validated dialogues are in :mod:`dsgdn_pyg.data.validate`.

Cache layout. A source (a feature file, or a directory of CSVs) is processed once into
``<root>/<kind>/<name>/processed/<key>.pt``, where ``<key>`` is a hash of the content of
every source file, the loader options and :obj:`PROCESSED_FORMAT_VERSION`; changing a file
or an option therefore processes again, into another file, and ``force_reload=True``
processes regardless. ``raw_dir`` is the folder of the user's own files: they are read in
place, never copied. ``<root>`` defaults to ``$DSGDN_PYG_CACHE``, else
``~/.cache/dsgdn-pyg``.

A processed file is a plain dict of tensors, strings and numbers written with
:func:`torch.save` (atomically: a temporary file moved into place with :func:`os.replace`)
and read back with ``weights_only=True``, so opening the cache runs no code either.
"""
import hashlib
import io
import json
import math
import os
import sys
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch_geometric.data import Data, InMemoryDataset

from dsgdn_pyg.data.corpus import DialogueCorpus
from dsgdn_pyg.data.validate import SPLITS, check_widths, num_speakers
from dsgdn_pyg.io import atomic_torch_save, default_cache_root, file_digest

PathLike = Union[str, os.PathLike]

#: Bump when the processing changes, so that stale cache files are not reused.
PROCESSED_FORMAT_VERSION = 1


def value_digest(value: Any) -> str:
    r"""SHA-256 of a value :func:`torch.save` can write (a dict of tensors and lists, ...)."""
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return hashlib.sha256(buffer.getvalue()).hexdigest()


def random_valid_split(train_ids: Sequence[Any], fraction: float,
                       seed: int) -> Tuple[List[Any], List[Any]]:
    r"""Holds out ``round(fraction * len(train_ids))`` training dialogues (at least one when
    :obj:`fraction` > 0 and there are two or more), drawn with
    ``numpy.random.default_rng(seed)``. Both parts keep the original order.

    Returns:
        (train, valid)
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"'valid_fraction' must be in [0, 1), got {fraction!r}")
    n = len(train_ids)
    size = int(round(fraction * n))
    if fraction > 0 and n >= 2:
        size = min(max(size, 1), n - 1)
    chosen = set(np.random.default_rng(seed).permutation(n)[:size].tolist())
    train = [d for i, d in enumerate(train_ids) if i not in chosen]
    valid = [d for i, d in enumerate(train_ids) if i in chosen]
    return train, valid


# --------------------------------------------------------------------------------------------
# The processed cache

class ProcessedCorpus(NamedTuple):
    r"""What a loader's :meth:`DialogueCorpusDataset.read` returns."""
    splits: Dict[str, List[Data]]  # 'train'/'valid'/'test' -> dialogues
    label_names: List[str]
    meta: Dict[str, Any]  # tensors, strings, numbers, lists and dicts only


class DialogueCorpusDataset(InMemoryDataset):
    r"""Base class of the on-disk corpora: an :class:`~torch_geometric.data.InMemoryDataset`
    of dialogues over all splits, processed once per source content and options.

    Subclasses set :attr:`kind`, implement :attr:`raw_file_names` (file names relative to
    :attr:`raw_dir`) and :meth:`read`, which parses and validates the source.

    Args:
        source (str): The file or directory to read.
        root (str, optional): Cache root; :obj:`None` = :func:`default_cache_root`.
            (default: :obj:`None`)
        options (dict, optional): Loader options; JSON-able values, or tensors/dicts of
            tensors (hashed by content). They are part of the cache key.
            (default: :obj:`None`)
        force_reload (bool): Process even if a processed file exists. (default: :obj:`False`)
        log (bool): Print a line to stderr while processing. (default: :obj:`True`)
    """
    kind: str = 'dialogues'

    def __init__(self, source: PathLike, root: Optional[PathLike] = None,
                 options: Optional[Mapping[str, Any]] = None, force_reload: bool = False,
                 log: bool = True):
        self.source = os.path.abspath(os.path.expanduser(os.fspath(source)))
        self.options = dict(options or {})
        if not os.path.exists(self.source):
            raise FileNotFoundError(f"{self.kind} source {self.source!r} does not exist")
        name = os.path.basename(self.source.rstrip(os.sep)) or self.kind
        root = os.fspath(root) if root is not None else default_cache_root()
        self._key: Optional[str] = None
        super().__init__(os.path.join(root, self.kind, name), force_reload=force_reload,
                         log=log)
        self._load_processed(self.processed_paths[0])

    # PyG hooks --------------------------------------------------------------------------
    @property
    def raw_dir(self) -> str:
        # The user's files are read where they are.
        if os.path.isdir(self.source):
            return self.source
        return os.path.dirname(self.source)

    @property
    def raw_file_names(self) -> List[str]:
        return [os.path.basename(self.source)]

    @property
    def processed_file_names(self) -> List[str]:
        return [f'{self.cache_key}.pt']

    def download(self):
        missing = [p for p in self.raw_paths if not os.path.exists(p)]
        raise FileNotFoundError(f"{self.kind} source {self.source!r}: missing file(s) "
                                f"{missing}")

    def _process(self):
        # Replaces PyG's version, which compares pre_transform.pt with torch.load(...,
        # weights_only=False); this cache has no pre-transforms and loads nothing unsafely.
        path = self.processed_paths[0]
        if not self.force_reload and os.path.exists(path):
            return
        if self.log:
            print(f'Processing {self.source} ...', file=sys.stderr)
        self.process()

    def process(self):
        parsed = self.read()
        dialogues: List[Data] = []
        indices: Dict[str, List[int]] = {}
        for split in SPLITS:
            part = parsed.splits.get(split, [])
            indices[split] = list(range(len(dialogues), len(dialogues) + len(part)))
            dialogues.extend(part)
        feature_dims = check_widths(self.source, parsed.splits)
        data, slices = self.collate(dialogues)
        atomic_torch_save({
            'format_version': PROCESSED_FORMAT_VERSION,
            'kind': self.kind,
            'source': self.source,
            'data': data.to_dict(),
            'slices': slices,
            'split_indices': indices,
            'label_names': list(parsed.label_names),
            'feature_dims': feature_dims,
            'num_speakers': num_speakers(parsed.splits),
            'meta': parsed.meta,
        }, self.processed_paths[0])

    def _load_processed(self, path: str):
        try:
            out = torch.load(path, weights_only=True)
        except Exception as e:  # a corrupt cache file is worth re-processing, not a crash
            raise ValueError(f"processed cache file {path!r} cannot be read ({e}); delete it "
                             f"or pass force_reload=True") from None
        if out.get('format_version') != PROCESSED_FORMAT_VERSION:
            raise ValueError(f"processed cache file {path!r} has format version "
                             f"{out.get('format_version')}, expected "
                             f"{PROCESSED_FORMAT_VERSION}; pass force_reload=True")
        self.data = Data.from_dict(out['data'])
        self.slices = out['slices']
        self.split_indices: Dict[str, List[int]] = out['split_indices']
        self.label_names: List[str] = out['label_names']
        self.feature_dims: Dict[str, int] = out['feature_dims']
        self.num_speakers: int = out['num_speakers']
        self.meta: Dict[str, Any] = out['meta']

    # Subclass API -------------------------------------------------------------------------
    def read(self) -> ProcessedCorpus:
        r"""Parses and validates the source (called only when processing)."""
        raise NotImplementedError

    def source_files(self) -> List[str]:
        r"""The files whose content keys the cache (default: :attr:`raw_paths`)."""
        return list(self.raw_paths)

    @property
    def cache_key(self) -> str:
        r"""Hash of the source files' content, the options and the processing version."""
        if self._key is None:
            for path in self.source_files():
                if not os.path.isfile(path):
                    raise FileNotFoundError(f"{self.kind} source: file {path!r} does not "
                                            f"exist")
            digest = hashlib.sha256()
            digest.update(json.dumps({
                'version': PROCESSED_FORMAT_VERSION,
                'kind': self.kind,
                'files': [[os.path.relpath(p, self.raw_dir), file_digest(p)]
                          for p in self.source_files()],
                'options': _canonical(self.options),
            }, sort_keys=True).encode('utf-8'))
            self._key = digest.hexdigest()[:20]
        return self._key

    # Results ------------------------------------------------------------------------------
    def split(self, name: str) -> List[Data]:
        r"""The dialogues of split :obj:`name` (``'train'``, ``'valid'`` or ``'test'``)."""
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; expected one of {SPLITS}")
        return [self.get(i) for i in self.split_indices[name]]

    def to_corpus(self, name: Optional[str] = None) -> DialogueCorpus:
        r"""The dataset as a :class:`~dsgdn_pyg.data.DialogueCorpus`."""
        meta = dict(self.meta)
        meta.update(source=self.source, processed_path=self.processed_paths[0])
        return DialogueCorpus(
            name=name or f'{self.kind}:{self.source}',
            train=self.split('train'), valid=self.split('valid'), test=self.split('test'),
            label_names=list(self.label_names), feature_dims=dict(self.feature_dims),
            num_speakers=int(self.num_speakers), meta=meta)

    def __repr__(self) -> str:
        sizes = ', '.join(f'{s}={len(self.split_indices[s])}' for s in SPLITS)
        return f'{self.__class__.__name__}({self.source!r}, {sizes})'


def _canonical(value: Any) -> Any:
    # JSON-able stand-in of an option value; tensors and arrays are replaced by their hash.
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return {'sha256': value_digest(torch.as_tensor(value))}
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise ValueError(f"loader option value {value!r} of type {type(value).__name__} is not "
                     f"supported; use strings, numbers, booleans, lists or dicts")


def pop_cache_options(options: Dict[str, Any]) -> Tuple[Optional[str], bool]:
    r"""Removes and returns the ``root`` and ``force_reload`` options."""
    root = options.pop('root', None)
    force_reload = options.pop('force_reload', False)
    if not isinstance(force_reload, bool):
        raise ValueError(f"'force_reload' must be true or false, got {force_reload!r}")
    return (os.fspath(root) if root is not None else None), force_reload


__all__ = [
    'DialogueCorpusDataset',
    'PROCESSED_FORMAT_VERSION',
    'ProcessedCorpus',
    'pop_cache_options',
    'random_valid_split',
    'value_digest',
]
