r"""The data pipeline of training and inference: loading a corpus, building the model's input
graphs once, batching, the device and thread settings, and the model's constructor arguments.

The trainer, :mod:`dsgdn_pyg.train.inference`, the experiments and the benchmarks import these,
so that every path prepares dialogues the same way.
"""
import contextlib
import copy
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
from torch_geometric.data import Batch, Data

from dsgdn_pyg.data import DialogueCorpus, DialogueGraph, feature_key
from dsgdn_pyg.data.corpus import MODALITIES
from dsgdn_pyg.datasets import load_corpus
from dsgdn_pyg.text.sentence import cpu_threads
from dsgdn_pyg.train.config import ConfigError, TrainConfig



def load_dataset(name: str, data_seed: int = 0,
                 options: Optional[Dict[str, Any]] = None) -> DialogueCorpus:
    r"""Loads a corpus with :func:`~dsgdn_pyg.datasets.load_corpus`; a bad name or option
    raises :class:`~dsgdn_pyg.train.config.ConfigError`."""
    try:
        return load_corpus(name, seed=data_seed, **(options or {}))
    except (ValueError, TypeError, OSError) as e:
        raise ConfigError(f"cannot load dataset {name!r}: {e}") from None


def prepare_dialogues(dialogues: Sequence[Data], modalities: Sequence[str],
                      window: int, transform: Optional[Callable[[Data], Any]] = None
                      ) -> List[Data]:
    r"""Copies of the dialogues holding only the features of :obj:`modalities`, with the
    model's input graph built once by :obj:`transform` (default: AMB-DSGDN's
    :class:`~dsgdn_pyg.data.DialogueGraph` of :obj:`window`; see
    :func:`dsgdn_pyg.models.dialogue_transform`).

    The input dialogues are not modified; feature tensors are shared, not copied.
    """
    if transform is None:
        transform = DialogueGraph(window)
    dropped = [feature_key(m) for m in MODALITIES if m not in modalities]
    out = []
    for data in dialogues:
        data = copy.copy(data)
        for key in dropped:
            if key in data:
                del data[key]
        out.append(transform(data))
    return out


def prepare_splits(corpus: DialogueCorpus, modalities: Sequence[str], window: int,
                   splits: Sequence[str] = ('train', 'valid', 'test'),
                   transform: Optional[Callable[[Data], Any]] = None) -> Dict[str, List[Data]]:
    r""":func:`prepare_dialogues` for each split of :obj:`corpus`."""
    return {s: prepare_dialogues(corpus.split(s), modalities, window, transform)
            for s in splits}


def collate(dialogues: Sequence[Data], batch_size: int) -> List[Batch]:
    r"""Fixed (unshuffled) batches of :obj:`batch_size` dialogues, for evaluation."""
    return [Batch.from_data_list(list(dialogues[i:i + batch_size]))
            for i in range(0, len(dialogues), batch_size)]


def resolve_device(name: str) -> torch.device:
    r"""``'auto'`` -> CUDA if available, else CPU; a CUDA device that is not there raises
    :class:`~dsgdn_pyg.train.config.ConfigError`."""
    if name == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    device = torch.device(name)
    if device.type == 'cuda':
        if not torch.cuda.is_available():
            detail = f"is {name!r} but CUDA is not available here; use 'cpu' or 'auto'"
            raise ConfigError(f"'device' {detail}", field='device', detail=detail)
        if device.index is not None and device.index >= torch.cuda.device_count():
            detail = f"is {name!r} but only {torch.cuda.device_count()} CUDA device(s) exist"
            raise ConfigError(f"'device' {detail}", field='device', detail=detail)
    return device


@contextlib.contextmanager
def torch_threads(num_threads: Optional[int], device: torch.device):
    r"""Runs a block with :obj:`num_threads` PyTorch CPU threads, restoring the previous count.

    :obj:`None` means 1 for a CPU run and no change otherwise. This model runs many small
    sparse kernels, and on a CPU shared with other processes (the typical 2-core machine)
    every kernel waits for a descheduled second thread: a default run took 540 s with two
    threads and 72 s with one. Ask for more threads explicitly on an idle many-core machine.
    """
    if num_threads is None and device.type == 'cpu':
        num_threads = 1
    with cpu_threads(num_threads):
        yield


def model_kwargs(config: TrainConfig, corpus: DialogueCorpus,
                 modalities: Sequence[str]) -> Dict[str, Any]:
    r"""The constructor arguments of the run's model (:obj:`config.model`, a key of
    :obj:`dsgdn_pyg.models.MODELS`)."""
    common = dict(
        feature_dims={m: corpus.feature_dims[m] for m in modalities},
        num_classes=corpus.num_classes,
        num_speakers=corpus.num_speakers,
        hidden_channels=config.hidden_channels,
        heads=config.heads,
        dropout=config.dropout,
        conv=config.conv,
    )
    if config.model == 'sync-tva':
        # The modality-dropout and fusion-weight settings are AMB-DSGDN's; --no-graph drops
        # the heterogeneous graph layers.
        return dict(common, num_layers=2 if config.graph else 0,
                    cross_window=config.cross_window)
    return dict(
        common,
        graph=config.graph,
        modality_dropout=config.modality_dropout,
        q_base=config.q_base,
        md_lambda=config.md_lambda,
        p_exe=config.p_exe,
        warmup_epochs=config.warmup_epochs,
        fusion_weights=config.fusion_weights,
        context_window=config.context_window,
        checkpoint_activations=config.checkpoint_activations,
    )


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    r"""The generator that shuffles the training dialogues of one epoch.

    Seeded from ``(seed, epoch)`` alone, so that the batch order of an epoch does not depend on
    what ran before it (which is what makes resuming exact).
    """
    state = np.random.SeedSequence([seed, epoch]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))
