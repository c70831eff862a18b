r"""The data pipeline of training and inference: loading a corpus, building the model's input
graphs once, batching (:class:`ShardedBatchSampler` for training, in one or several
processes), the device and thread settings, and the model's constructor arguments.

The trainer, :mod:`dsgdn_pyg.inference`, the experiments and the benchmarks import these,
so that every path prepares dialogues the same way.
"""
import contextlib
import copy
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Sequence

import numpy as np
import torch
from torch_geometric import EdgeIndex
from torch_geometric.data import Batch, Data

from dsgdn_pyg.data import DialogueCorpus, DialogueGraph, feature_key
from dsgdn_pyg.data.corpus import MODALITIES
from dsgdn_pyg.data.graph import SUBGRAPH_RELATIONS
from dsgdn_pyg.datasets import UnknownLoaderOption, load_corpus
from dsgdn_pyg.nn.diff_gat_conv import target_sorted_edge_index
from dsgdn_pyg.text.sentence import cpu_threads
from dsgdn_pyg.train.config import ConfigError, TrainConfig, config_fields


def load_dataset(name: str, data_seed: int = 0,
                 options: Optional[Dict[str, Any]] = None) -> DialogueCorpus:
    r"""Loads a corpus with :func:`~dsgdn_pyg.datasets.load_corpus`; a bad name or option
    raises :class:`~dsgdn_pyg.train.config.ConfigError`."""
    try:
        return load_corpus(name, seed=data_seed, **(options or {}))
    except UnknownLoaderOption as e:
        detail = f"does not apply to dataset {name!r} (its loader takes no such option)"
        field = e.option if e.option in config_fields() else None
        raise ConfigError(f"{e.option!r} {detail}" if field else f"cannot load dataset "
                          f"{name!r}: {e}", field=field, detail=detail) from None
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
    return [batch_of(dialogues[i:i + batch_size])
            for i in range(0, len(dialogues), batch_size)]


def batch_of(dialogues: Sequence[Data]) -> Batch:
    r"""The PyG batch of :obj:`dialogues`, with what the model's step would otherwise work out
    on the device (reading it back to the host) done here, on the host: the longest
    dialogue's length :obj:`max_num_nodes` (the whole-dialogue encoder pads to it), and the
    typed subgraphs of :class:`~dsgdn_pyg.data.DialogueGraph` as
    :class:`~torch_geometric.EdgeIndex` objects sorted by target (the form the graph layers
    take, so they neither check nor sort them in the step)."""
    batch = Batch.from_data_list(list(dialogues))
    batch.max_num_nodes = max(int(d.num_nodes) for d in dialogues)
    for name in SUBGRAPH_RELATIONS:
        key = f'{name}_edge_index'
        if key in batch and not isinstance(batch[key], EdgeIndex):
            batch[key], batch[f'{name}_edge_type'] = target_sorted_edge_index(
                batch[key], batch[f'{name}_edge_type'], (batch.num_nodes, batch.num_nodes))
    return batch


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
    sparse kernels, and on a CPU shared with other processes every kernel waits for a
    descheduled second thread (measured: docs/usage.md, "Training settings"). Ask for more threads
    explicitly on an idle many-core machine.
    """
    if num_threads is None and device.type == 'cpu':
        num_threads = 1
    with cpu_threads(num_threads):
        yield


def model_kwargs(config: TrainConfig, corpus: DialogueCorpus,
                 modalities: Sequence[str]) -> Dict[str, Any]:
    r"""The constructor arguments of the run's model (:obj:`config.model`): the data's shape
    and the model's own settings (:meth:`TrainConfig.model_settings`)."""
    return dict(feature_dims={m: corpus.feature_dims[m] for m in modalities},
                num_classes=corpus.num_classes, num_speakers=corpus.num_speakers,
                **config.model_settings().model_kwargs())


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    r"""The generator that shuffles the training dialogues of one epoch.

    Seeded from ``(seed, epoch)`` alone, so that the batch order of an epoch does not depend on
    what ran before it (which is what makes resuming exact).
    """
    return torch.Generator().manual_seed(derived_seed(seed, epoch))


def derived_seed(*values: int) -> int:
    r"""A 64-bit seed that depends on :obj:`values` alone (numpy's ``SeedSequence``), for
    random streams that must not depend on what ran before them."""
    state = np.random.SeedSequence(list(values)).generate_state(2, dtype=np.uint32)
    return int(state[0]) << 32 | int(state[1])


def step_seed(seed: int, epoch: int, step: int) -> int:
    r"""The seed of the random draws of one training step that must not depend on how many
    processes share the step (adaptive modality dropout), from ``(seed, epoch, step)`` alone."""
    return derived_seed(seed, epoch, step, 1)


class Shard(NamedTuple):
    r"""One process's share of a global training batch."""
    #: Dialogue indices of this process, in the order of the global batch.
    indices: List[int]
    #: Their positions in the global batch.
    positions: List[int]
    #: Number of dialogues of the global batch.
    size: int
    #: True if the global batch has fewer dialogues than there are processes and this one got
    #: none: :obj:`indices` then holds a stand-in whose labels :func:`collate_shard` masks, so
    #: that the process still takes part in the step's collectives with a zero gradient.
    padding: bool = False


def shard_batch(batch: Sequence[int], lengths: Sequence[int], rank: int = 0,
                world_size: int = 1) -> Shard:
    r"""Splits a global batch of dialogue indices over :obj:`world_size` processes and returns
    the share of :obj:`rank`.

    The dialogues are dealt by decreasing length (:obj:`lengths` is indexed by dialogue
    index) in serpentine order (0, 1, ..., N-1, N-1, ..., 0), so every process gets
    :math:`\lfloor B/N \rfloor` or :math:`\lceil B/N \rceil` dialogues and about the same
    number of utterances; each share keeps the order of the global batch. One process gets
    the whole batch, in order.
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"'rank' must lie in [0, {world_size}) (got {rank})")
    if not batch:
        raise ValueError("'batch' must hold at least one dialogue")
    by_length = sorted(range(len(batch)), key=lambda p: (-lengths[batch[p]], p))
    cycle = 2 * world_size
    mine = sorted(p for k, p in enumerate(by_length)
                  if min(k % cycle, cycle - 1 - k % cycle) == rank)
    if not mine:
        return Shard([batch[0]], [0], len(batch), padding=True)
    return Shard([batch[p] for p in mine], mine, len(batch))


class ShardedBatchSampler:
    r"""The training batches of one process: global batches of :obj:`batch_size` dialogues in
    a seeded random order, each split over :obj:`world_size` processes by
    :func:`shard_batch` (length-balanced).

    The order of an epoch is a permutation drawn with :func:`epoch_generator` of
    ``(seed, epoch)`` (set with :meth:`set_epoch`, as for torch's ``DistributedSampler``), so
    every process sees the same global batches, and with one process they are exactly those
    of a ``DataLoader(shuffle=True, generator=epoch_generator(seed, epoch))``.

    Args:
        lengths (Sequence[int]): Number of utterances of each dialogue.
        batch_size (int): Dialogues per global batch (the last one may be smaller).
        seed (int): Seed of the order.
        rank (int, optional): This process. (default: :obj:`0`)
        world_size (int, optional): Number of processes. (default: :obj:`1`)
    """
    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int, rank: int = 0,
                 world_size: int = 1):
        if batch_size < 1:
            raise ValueError(f"'batch_size' must be positive (got {batch_size})")
        if not 0 <= rank < world_size:
            raise ValueError(f"'rank' must lie in [0, {world_size}) (got {rank})")
        self.lengths = [int(n) for n in lengths]
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def global_batches(self) -> List[List[int]]:
        r"""The dialogue indices of every global batch of the epoch."""
        order = torch.randperm(len(self.lengths),
                               generator=epoch_generator(self.seed, self.epoch)).tolist()
        return [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]

    def __len__(self) -> int:
        return (len(self.lengths) + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[Shard]:
        for batch in self.global_batches():
            yield shard_batch(batch, self.lengths, self.rank, self.world_size)


def collate_shard(dialogues: Sequence[Data], shard: Shard) -> Batch:
    r"""The batch of a :class:`Shard` (a stand-in has all labels set to -1: no loss, no
    gradient, no part in modality dropout's scores)."""
    items = [dialogues[i] for i in shard.indices]
    if shard.padding:
        stand_in = copy.copy(items[0])
        stand_in.y = torch.full_like(stand_in.y, -1)
        items = [stand_in]
    return batch_of(items)
