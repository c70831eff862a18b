r"""The dataset registry: every loader returns a :class:`dsgdn_pyg.data.corpus.DialogueCorpus`.

:func:`load_corpus` resolves a name in two ways:

* a plain name in :obj:`DATASETS` (``'synthetic-iemocap'``, ``'synthetic-meld'``), whose
  factory is called as ``factory(seed=seed, **kwargs)``;
* ``'kind:PATH'``, for corpora read from disk (e.g. ``'pickle:/data/iemocap.pkl'``), whose
  loader in :obj:`PATH_LOADERS` is called as ``loader(path, seed=seed, **kwargs)``.

New loaders register by adding an entry to either dict.
"""
import re
from functools import partial
from typing import Callable, Dict, List

from dsgdn_pyg.data.corpus import DialogueCorpus
from dsgdn_pyg.datasets.synthetic import (
    SYNTHETIC_PRESETS,
    SyntheticConfig,
    make_synthetic_corpus,
)
from dsgdn_pyg.datasets.dialogue_csv import load_dialogue_csv, load_meld_csv
from dsgdn_pyg.datasets.feature_pickles import load_feature_pickle
from dsgdn_pyg.datasets.features_file import load_jsonl, load_npz

# name -> factory(seed=..., **kwargs)
DATASETS: Dict[str, Callable[..., DialogueCorpus]] = {
    name: partial(make_synthetic_corpus, name) for name in SYNTHETIC_PRESETS
}
# kind -> loader(path, seed=..., **kwargs), used for names of the form 'kind:PATH'
PATH_LOADERS: Dict[str, Callable[..., DialogueCorpus]] = {
    'pickle': load_feature_pickle,
    'csv': load_dialogue_csv,
    'meld-csv': load_meld_csv,
    'jsonl': load_jsonl,
    'npz': load_npz,
}


def available_datasets() -> List[str]:
    r"""The names :func:`load_corpus` accepts, with ``'kind:PATH'`` schemes as ``'kind:'``."""
    return sorted(DATASETS) + sorted(f'{kind}:' for kind in PATH_LOADERS)


def load_corpus(name: str, seed: int = 0, **kwargs) -> DialogueCorpus:
    r"""Loads a corpus by name.

    Args:
        name (str): A name from :func:`available_datasets`, or ``'kind:PATH'`` for a
            registered on-disk format.
        seed (int): Seed for whatever the loader draws at random (synthetic data, a
            validation split). (default: :obj:`0`)
        **kwargs: Passed to the loader, e.g. synthetic config overrides.
    """
    try:
        if name in DATASETS:
            return DATASETS[name](seed=seed, **kwargs)
        kind, sep, path = name.partition(':')
        if sep and kind in PATH_LOADERS:
            if not path:
                raise ValueError(f"dataset name {name!r} has an empty path after '{kind}:'")
            return PATH_LOADERS[kind](path, seed=seed, **kwargs)
    except TypeError as e:
        # A loader called with an option it does not have: say which, not Python's
        # "load_feature_pickle() got an unexpected keyword argument ...".
        match = re.search(r"unexpected keyword argument '(\w+)'", str(e))
        if match is None or match.group(1) not in kwargs:
            raise
        raise UnknownLoaderOption(name, match.group(1)) from None
    raise ValueError(f"unknown dataset {name!r}; expected one of {available_datasets()}")


class UnknownLoaderOption(ValueError):
    r"""The loader of a dataset has no option of this name (:obj:`option`)."""
    def __init__(self, name: str, option: str):
        super().__init__(f"dataset {name!r} takes no option {option!r}")
        self.option = option


__all__ = [
    'DATASETS',
    'PATH_LOADERS',
    'SYNTHETIC_PRESETS',
    'SyntheticConfig',
    'UnknownLoaderOption',
    'available_datasets',
    'load_corpus',
    'make_synthetic_corpus',
]
