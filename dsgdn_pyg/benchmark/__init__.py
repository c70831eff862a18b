r"""Throughput of training steps and inference on a dataset preset, in utterances per second:
what ``dsgdn-pyg benchmark`` runs without ``--scenario``
(:func:`~dsgdn_pyg.benchmark.dataset.benchmark`, the configured model with the run settings
of :class:`~dsgdn_pyg.train.TrainConfig`).

The study tooling (the sparse-against-dense scenarios of ``--scenario``, the paper's
experiment grids, result tables and reports) lives in the repository's top-level
``benchmarks/`` folder, as PyG keeps its ``benchmark/``; the measuring tools (memory, machine
load, FLOPs) are in :mod:`dsgdn_pyg.profile`, as PyG's are in ``torch_geometric.profile``.
"""
from dsgdn_pyg.benchmark.dataset import benchmark

__all__ = ['benchmark']
