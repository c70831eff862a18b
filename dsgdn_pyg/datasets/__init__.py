r"""Datasets: every loader returns a :class:`dsgdn_pyg.data.corpus.DialogueCorpus`;
:func:`load_corpus` finds one by name (:mod:`~dsgdn_pyg.datasets.registry`), and the dataset
kinds with options declare them in :mod:`~dsgdn_pyg.datasets.settings`.

The names below are imported on first use, so that the command line can read the dataset
settings without importing torch.
"""
from dsgdn_pyg.lazy import lazy_package

lazy_package(globals(), {
    'registry': 'DATASETS PATH_LOADERS UnknownLoaderOption available_datasets load_corpus',
    'synthetic': 'SYNTHETIC_PRESETS SyntheticConfig make_synthetic_corpus',
})
