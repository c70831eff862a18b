r"""Datasets: every loader returns a :class:`dsgdn_pyg.data.corpus.DialogueCorpus`;
:func:`load_corpus` finds one by name (:mod:`~dsgdn_pyg.datasets.registry`), and the dataset
kinds with options declare them in :mod:`~dsgdn_pyg.datasets.settings`.

The names below are imported on first use, so that the command line can read the dataset
settings without importing torch.
"""
from dsgdn_pyg.lazy import lazy_exports

# Public name -> module of this package that defines it.
_EXPORTS = {
    'DATASETS': 'registry',
    'PATH_LOADERS': 'registry',
    'SYNTHETIC_PRESETS': 'synthetic',
    'SyntheticConfig': 'synthetic',
    'UnknownLoaderOption': 'registry',
    'available_datasets': 'registry',
    'load_corpus': 'registry',
    'make_synthetic_corpus': 'synthetic',
}

__all__ = list(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)


def __dir__():
    # The lazy names too, for dir() and the API reference (autodoc lists a module's members).
    return sorted(set(globals()) | set(__all__))
