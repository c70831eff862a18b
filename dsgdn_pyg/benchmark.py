r"""Throughput of training steps and inference, in utterances per second.

Two benchmarks:

* :func:`benchmark` times the sparse :class:`~dsgdn_pyg.models.AMBDSGDN` on a dataset preset
  with the run settings of :class:`~dsgdn_pyg.train.TrainConfig` (``dsgdn-pyg benchmark``).
* :func:`benchmark_scenario` compares the sparse model with the dense (padded
  :obj:`[B, L, L]`) one on synthetic dialogues of fixed shapes (:func:`make_scenario`), each
  implementation in its own process so that its peak memory is its own
  (``dsgdn-pyg benchmark --scenario NAME``, ``benchmarks/train_throughput.py``). It also
  reports the useful FLOP/s (the unpadded work) as a fraction of the machine's GEMM FLOP/s at
  the model's matrix shapes.

``python -m dsgdn_pyg.benchmark NAME IMPL OPTIONS_JSON`` is the measuring process: it runs
:func:`run_scenario` and prints its result as one JSON line.
"""
import itertools
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch_geometric
from torch.utils.flop_counter import FlopCounterMode
from torch_geometric.data import Batch, Data
from torch_geometric.loader import DataLoader

from dsgdn_pyg.data import DialogueGraph, make_dialogue
from dsgdn_pyg.loss import multimodal_loss
from dsgdn_pyg.models import AMBDSGDN
from dsgdn_pyg.train.config import TrainConfig, check_against_corpus
from dsgdn_pyg.train.trainer import (collate, epoch_generator, load_dataset, model_kwargs,
                                     prepare_splits, resolve_device, torch_threads)


def _sync(device: torch.device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def benchmark(config: Optional[TrainConfig] = None, steps: int = 5,
              warmup_steps: int = 1) -> Dict[str, Any]:
    r"""Times :obj:`steps` training steps and one inference pass over the test split.

    Modality dropout is switched on (the model is told the first epoch after warm-up), so
    the steps cost what steady-state training costs.

    Args:
        config (TrainConfig, optional): Dataset, model size, batch size, window, device and
            seed. (default: :obj:`TrainConfig()`)
        steps (int): Timed training steps (batches are reused if the training split has
            fewer). (default: :obj:`5`)
        warmup_steps (int): Untimed steps (and inference passes) first. (default: :obj:`1`)

    Returns:
        dict: ``train_utterances_per_s``, ``inference_utterances_per_s``, the counts and
        seconds behind them, and the settings and versions of the measurement.
    """
    config = TrainConfig() if config is None else config
    if steps < 1 or warmup_steps < 0:
        raise ValueError(f"'steps' must be >= 1 and 'warmup_steps' >= 0, got {steps} and "
                         f"{warmup_steps}")
    device = resolve_device(config.device)
    with torch_threads(config.num_threads, device):
        return _benchmark(config, steps, warmup_steps, device)


def _benchmark(config: TrainConfig, steps: int, warmup_steps: int,
               device: torch.device) -> Dict[str, Any]:
    corpus = load_dataset(config.dataset, config.data_seed, config.loader_options())
    modalities = check_against_corpus(config, corpus.modalities)
    splits = prepare_splits(corpus, modalities, config.window, ('train', 'test'))

    torch.manual_seed(config.seed)
    model = AMBDSGDN(**model_kwargs(config, corpus, modalities)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr,
                                 weight_decay=config.weight_decay)
    model.train()
    model.set_epoch(config.warmup_epochs)
    loader = DataLoader(splits['train'], batch_size=config.batch_size, shuffle=True,
                        generator=epoch_generator(config.seed, 0))
    batches = [b.to(device) for b in itertools.islice(itertools.cycle(loader),
                                                      warmup_steps + steps)]

    def step(batch):
        out = model(batch)
        loss, _ = multimodal_loss(out.fused, out.logits, batch.y, mask=out.keep)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for batch in batches[:warmup_steps]:
        step(batch)
    _sync(device)
    start = time.perf_counter()
    for batch in batches[warmup_steps:]:
        step(batch)
    _sync(device)
    train_seconds = time.perf_counter() - start
    train_utterances = sum(int(b.num_nodes) for b in batches[warmup_steps:])

    test_batches = [b.to(device) for b in collate(splits['test'], config.batch_size)]
    model.eval()
    with torch.no_grad():
        for _ in range(min(warmup_steps, 1)):
            for batch in test_batches:
                model(batch)
        _sync(device)
        start = time.perf_counter()
        for batch in test_batches:
            model(batch)
        _sync(device)
    infer_seconds = time.perf_counter() - start
    infer_utterances = sum(int(b.num_nodes) for b in test_batches)

    return {
        'dataset': config.dataset,
        'model': 'AMBDSGDN (sparse)',
        'device': str(device),
        'hidden_channels': config.hidden_channels,
        'batch_size': config.batch_size,
        'window': config.window,
        'modalities': list(modalities),
        'num_parameters': sum(p.numel() for p in model.parameters()),
        'train_steps': steps,
        'train_utterances': train_utterances,
        'train_seconds': train_seconds,
        'train_utterances_per_s': train_utterances / train_seconds,
        'inference_utterances': infer_utterances,
        'inference_seconds': infer_seconds,
        'inference_utterances_per_s': infer_utterances / infer_seconds,
        'torch': torch.__version__,
        'torch_geometric': torch_geometric.__version__,
        'python': platform.python_version(),
        'num_threads': torch.get_num_threads(),
    }


# Training-throughput scenarios ###################################################################
#
# Synthetic dialogues of fixed shapes, one implementation per process (so that a process's peak
# resident memory is that implementation's own), JSON over stdout between the processes.

IMPLEMENTATIONS = ('sparse', 'dense')
SCENARIO_NAMES = ('iemocap', 'long-400', 'long-1600', 'long-10000')
IEMOCAP_FEATURE_DIMS = {'t': 1024, 'a': 1582, 'v': 342}
DEFAULT_NUM_THREADS = 2
# Modality dropout is active once the epoch reaches the warm-up; any large epoch is steady state.
STEADY_STATE_EPOCH = 10**6
# A measurement counts as disturbed when other processes used this share of the cores.
IDLE_THRESHOLD = 0.1


@dataclass(frozen=True)
class Scenario:
    r"""The shapes of one training-throughput benchmark: synthetic dialogues of the given
    lengths (two speakers, random labels and features), batched in order.

    Args:
        name (str): Scenario name, e.g. :obj:`"iemocap"`.
        lengths (tuple of int): Number of utterances of every dialogue.
        batch_size (int): Dialogues per training batch.
        feature_dims (Dict[str, int]): Feature width per modality.
        hidden_channels (int): Hidden width of the model.
        window (int): Dialogue graph window.
        context_window (int, optional): The model's :obj:`context_window` (audio/visual
            encoder attends within :math:`\pm K` utterances); :obj:`None` = whole dialogue.
        checkpoint_activations (bool): The model's :obj:`checkpoint_activations` (recompute
            the blocks in backward to save memory).
        heads (int): Attention heads per graph block.
        num_classes (int): Emotion classes of the random labels.
        num_speakers (int): Speakers per dialogue.
        steps (int): Default number of timed training steps.
        warmup_steps (int): Default number of untimed training steps first.
        seed (int): Seed of the lengths, speakers, labels and features.
        dense_reason (str, optional): Why the dense implementation cannot run here, if it
            cannot.
    """
    name: str
    lengths: Tuple[int, ...]
    batch_size: int
    feature_dims: Dict[str, int] = field(default_factory=lambda: dict(IEMOCAP_FEATURE_DIMS))
    hidden_channels: int = 512
    window: int = 20
    context_window: Optional[int] = None
    checkpoint_activations: bool = False
    heads: int = 2
    num_classes: int = 6
    num_speakers: int = 2
    steps: int = 8
    warmup_steps: int = 1
    seed: int = 0
    dense_reason: Optional[str] = None

    @property
    def num_utterances(self) -> int:
        return sum(self.lengths)

    @property
    def num_batches(self) -> int:
        return -(-len(self.lengths) // self.batch_size)

    def describe(self) -> str:
        dims = ','.join(f'{m}={d}' for m, d in self.feature_dims.items())
        num = len(self.lengths)
        lengths = (f"{num} dialogue{'s' if num > 1 else ''} of {self.lengths[0]:,}"
                   if len(set(self.lengths)) == 1 else
                   f'{num} dialogues, lengths {min(self.lengths)}..'
                   f'{max(self.lengths)} (mean {self.num_utterances / num:.1f})')
        context = ('whole dialogue' if self.context_window is None else
                   f'+-{self.context_window}')
        if self.checkpoint_activations:
            context += ', activations recomputed in backward'

        return (f'{self.name}: {lengths}, {self.num_utterances:,} utterances, batch '
                f'{self.batch_size} dialogues, dims {dims}, hidden {self.hidden_channels}, '
                f'window {self.window}, encoder context {context}')


def clipped_normal_lengths(num_dialogues: int, mean: float, std: float, low: int, high: int,
                           seed: int = 0) -> List[int]:
    r"""Dialogue lengths drawn from :math:`\mathcal{N}(\mu, \sigma)`, rounded to integers and
    clipped to :obj:`[low, high]`.

    Args:
        num_dialogues (int): Number of lengths.
        mean (float): :math:`\mu`.
        std (float): :math:`\sigma`.
        low (int): Smallest length (at least 1).
        high (int): Largest length.
        seed (int, optional): Seed. (default: :obj:`0`)
    """
    if num_dialogues < 1:
        raise ValueError(f"'num_dialogues' must be >= 1, got {num_dialogues}")
    if not 1 <= low <= high or std < 0:
        raise ValueError(f"need 1 <= 'low' <= 'high' and 'std' >= 0, got low={low}, "
                         f"high={high}, std={std}")
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.normal(float(mean), float(std), (num_dialogues, ), generator=gen)
    return [int(v) for v in lengths.round().clamp(low, high).long()]


def dense_size_reason(lengths: Sequence[int], batch_size: int) -> str:
    r"""The size of the dense implementation's largest :obj:`[B, L, L]` tensor, as the reason
    it is not run."""
    entries, b, longest = 0, 1, 0
    for start in range(0, len(lengths), batch_size):
        chunk = lengths[start:start + batch_size]
        if len(chunk) * max(chunk)**2 > entries:
            b, longest, entries = len(chunk), max(chunk), len(chunk) * max(chunk)**2
    return (f'B×L×L = {b}×{longest:,}×{longest:,} = {entries:.2g} entries: '
            f'{8 * entries / 1e9:.2f} GB for the int64 relation ids alone and '
            f'{4 * entries / 1e9:.2f} GB per float32 attention map, dozens of which the '
            f'backward keeps')


def iemocap_scenario(num_dialogues: int = 120, batch_size: int = 16, seed: int = 0,
                     **overrides: Any) -> Scenario:
    r"""IEMOCAP shapes: :obj:`num_dialogues` dialogues with lengths
    :math:`\mathcal{N}(48, 20)` clipped to :obj:`8..110`, features 1024 (text), 1582 (audio),
    342 (visual), hidden 512, window 20, 16 dialogues per batch; the timed steps default to
    one pass over the batches. Keyword arguments override the other :class:`Scenario`
    fields."""
    lengths = clipped_normal_lengths(num_dialogues, 48.0, 20.0, 8, 110, seed)
    steps = -(-num_dialogues // max(batch_size, 1))
    return Scenario(**{**dict(name='iemocap', lengths=tuple(lengths), batch_size=batch_size,
                              steps=steps, seed=seed), **overrides})


def long_scenario(length: int, num_dialogues: int, batch_size: int = 1, **overrides: Any
                  ) -> Scenario:
    r"""Dialogues of :obj:`length` utterances each (IEMOCAP feature widths, hidden 512, window
    20); keyword arguments override the other :class:`Scenario` fields."""
    if length < 1 or num_dialogues < 1:
        raise ValueError(f"'length' and 'num_dialogues' must be >= 1, got {length} and "
                         f"{num_dialogues}")
    fields = dict(name=f'long-{length}', lengths=(length, ) * num_dialogues,
                  batch_size=batch_size, steps=-(-num_dialogues // max(batch_size, 1)))
    return Scenario(**{**fields, **overrides})


def _long_400(**overrides):
    # Same settings as long-10000 (one dialogue per step, encoder context +-20, activations
    # recomputed in backward): the reference for its time per utterance.
    num = overrides.pop('num_dialogues', 4)
    return long_scenario(overrides.pop('length', 400), num, overrides.pop('batch_size', 1),
                         **{'context_window': 20, 'checkpoint_activations': True,
                            **overrides})


def _long_1600(**overrides):
    num = overrides.pop('num_dialogues', 4)
    return long_scenario(overrides.pop('length', 1600), num, overrides.pop('batch_size', 2),
                         **overrides)


def _long_10000(**overrides):
    num = overrides.pop('num_dialogues', 1)
    length = overrides.pop('length', 10000)
    batch_size = overrides.pop('batch_size', 1)
    fields = dict(context_window=20, checkpoint_activations=True, steps=2,
                  dense_reason=dense_size_reason((length, ) * num, batch_size))
    return long_scenario(length, num, batch_size, **{**fields, **overrides})


SCENARIO_FACTORIES: Dict[str, Callable[..., Scenario]] = {
    'iemocap': iemocap_scenario,
    'long-400': _long_400,
    'long-1600': _long_1600,
    'long-10000': _long_10000,
}


def make_scenario(name: str, **overrides: Any) -> Scenario:
    r"""The :class:`Scenario` called :obj:`name`, with fields overridden.

    * :obj:`"iemocap"`: 120 dialogues, lengths :math:`\mathcal{N}(48, 20)` clipped to
      :obj:`8..110`, batch 16 (:func:`iemocap_scenario`),
    * :obj:`"long-400"`: 4 dialogues of 400 utterances, batch 1, encoder context
      :math:`\pm 20`,
    * :obj:`"long-1600"`: 4 dialogues of 1,600 utterances, batch 2, whole-dialogue encoder,
    * :obj:`"long-10000"`: one dialogue of 10,000 utterances, encoder context :math:`\pm 20`,
      sparse only.

    All use features 1024/1582/342, hidden 512, window 20, 2 speakers, 6 classes.

    Args:
        name (str): One of :obj:`SCENARIO_NAMES`.
        **overrides: :class:`Scenario` fields (e.g. :obj:`hidden_channels`,
            :obj:`feature_dims`, :obj:`context_window`), and :obj:`num_dialogues` (all
            scenarios) or :obj:`length` (the :obj:`long-*` ones).
    """
    if name not in SCENARIO_FACTORIES:
        raise ValueError(f"'name' must be one of {list(SCENARIO_FACTORIES)}, got {name!r}")
    if 'length' in overrides and name == 'iemocap':
        raise ValueError("'length' applies to the long-* scenarios; 'iemocap' draws its "
                         "lengths (use 'num_dialogues')")
    unknown = set(overrides) - {f.name for f in fields(Scenario)} - {'num_dialogues', 'length'}
    if unknown:
        raise ValueError(f"unknown scenario override(s) {sorted(unknown)}")
    # The scenario keeps its name under overrides (e.g. a shorter long-10000 in tests).
    scenario = replace(SCENARIO_FACTORIES[name](**overrides), name=name)
    if scenario.batch_size < 1 or scenario.steps < 1 or scenario.warmup_steps < 0:
        raise ValueError(f"need 'batch_size' >= 1, 'steps' >= 1, 'warmup_steps' >= 0, got "
                         f"{scenario.batch_size}, {scenario.steps}, {scenario.warmup_steps}")
    if scenario.hidden_channels < 2 or scenario.window < 0 or scenario.heads < 1:
        raise ValueError(f"need 'hidden_channels' >= 2, 'window' >= 0, 'heads' >= 1, got "
                         f"{scenario.hidden_channels}, {scenario.window}, {scenario.heads}")
    if scenario.context_window is not None and scenario.context_window < 0:
        raise ValueError(f"'context_window' must be >= 0 or None, got "
                         f"{scenario.context_window}")
    if not scenario.feature_dims or min(scenario.feature_dims.values()) < 1:
        raise ValueError(f"'feature_dims' must map modalities to positive widths, got "
                         f"{scenario.feature_dims}")
    return scenario


def scenario_dialogues(scenario: Scenario) -> List[Data]:
    r"""The scenario's dialogues (seeded): speakers and labels uniform at random, features
    standard normal, each transformed by :class:`~dsgdn_pyg.data.DialogueGraph` (with the
    context edges of :obj:`scenario.context_window`, as the trainer builds them)."""
    gen = torch.Generator().manual_seed(scenario.seed)
    transform = DialogueGraph(scenario.window, context_window=scenario.context_window)
    dialogues = []
    for k, length in enumerate(scenario.lengths):
        speaker = torch.randint(0, scenario.num_speakers, (length, ), generator=gen)
        y = torch.randint(0, scenario.num_classes, (length, ), generator=gen)
        features = {m: torch.randn(length, d, generator=gen)
                    for m, d in scenario.feature_dims.items()}
        dialogues.append(transform(make_dialogue(f'{scenario.name}-{k}', speaker, y, features)))
    return dialogues


def scenario_batches(scenario: Scenario, dialogues: Sequence[Data]) -> List[Batch]:
    r"""The dialogues in order, :obj:`scenario.batch_size` per batch."""
    return [Batch.from_data_list(list(dialogues[i:i + scenario.batch_size]))
            for i in range(0, len(dialogues), scenario.batch_size)]


def build_model(scenario: Scenario, impl: str) -> Tuple[torch.nn.Module, AMBDSGDN]:
    r"""The model of :obj:`impl` (seeded) and the sparse model whose parameters it uses."""
    if impl not in IMPLEMENTATIONS:
        raise ValueError(f"'impl' must be one of {IMPLEMENTATIONS}, got {impl!r}")
    torch.manual_seed(scenario.seed)
    kwargs: Dict[str, Any] = dict(hidden_channels=scenario.hidden_channels,
                                  heads=scenario.heads)
    if scenario.context_window is not None:  # only models that know the option get it
        kwargs['context_window'] = scenario.context_window
    if scenario.checkpoint_activations:
        kwargs['checkpoint_activations'] = True
    sparse = AMBDSGDN(dict(scenario.feature_dims), scenario.num_classes, scenario.num_speakers,
                      **kwargs)
    if impl == 'sparse':
        return sparse, sparse
    from dsgdn_pyg.models.dense_amb_dsgdn import DenseAMBDSGDN
    return DenseAMBDSGDN(sparse, window=scenario.window), sparse


def train_step(model: torch.nn.Module, batch: Batch, optimizer: Optional[torch.optim.Optimizer]
               ) -> None:
    r"""One training step: forward, :func:`~dsgdn_pyg.loss.multimodal_loss` on the kept
    utterances, backward and (if an optimizer is given) an optimizer step."""
    out = model(batch)
    loss, _ = multimodal_loss(out.fused, out.logits, batch.y, mask=out.keep)
    if optimizer is not None:
        optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if optimizer is not None:
        optimizer.step()


# FlopCounterMode counts dense matrix products only; the sparse model's CSR products would be
# missed. These count 2 multiply-adds per stored entry and dense column.
def _sparse_addmm_flop(self, mat1, mat2, *args, out_val=None, **kwargs) -> int:
    return 2 * mat1._nnz() * mat2.size(-1)


def _sparse_sampled_addmm_flop(self, mat1, mat2, *args, out_val=None, **kwargs) -> int:
    return 2 * self._nnz() * mat1.size(-1)


_sparse_addmm_flop._get_raw = True
_sparse_sampled_addmm_flop._get_raw = True


def count_flops(fn: Callable[[], Any]) -> int:
    r"""Floating-point operations of :obj:`fn()` as counted by
    :class:`torch.utils.flop_counter.FlopCounterMode` (matrix products, convolutions,
    attention), plus the sparse-dense products of CSR matrices, which it does not count."""
    mapping = {torch.ops.aten._sparse_addmm: _sparse_addmm_flop,
               torch.ops.aten.sparse_sampled_addmm: _sparse_sampled_addmm_flop}
    with FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        fn()
    return int(counter.get_total_flops())


def useful_flops_per_dialogue(model: AMBDSGDN, dialogues: Sequence[Data],
                              seed: int = 0) -> List[int]:
    r"""FLOPs of a training step's forward and backward (no optimizer step) on every dialogue
    alone: the unpadded work, since a batch of one dialogue pads nothing."""
    torch.manual_seed(seed)
    flops = []
    for dialogue in dialogues:
        batch = Batch.from_data_list([dialogue])
        flops.append(count_flops(lambda: train_step(model, batch, None)))
        model.zero_grad(set_to_none=True)
    return flops


def linear_shapes(model: torch.nn.Module) -> Dict[Tuple[int, int], int]:
    r"""How many of the model's :class:`torch.nn.Linear` layers (and attention input
    projections, and PyG :class:`~torch_geometric.nn.dense.Linear` layers) have each
    :obj:`(in, out)` shape, in order of first appearance."""
    shapes: Dict[Tuple[int, int], int] = {}
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            shape = (module.in_features, module.out_features)
        elif isinstance(module, torch.nn.MultiheadAttention):
            shape = (module.embed_dim, 3 * module.embed_dim)  # the packed q/k/v projection
        elif isinstance(module, torch_geometric.nn.dense.Linear) and module.in_channels > 0:
            shape = (module.in_channels, module.out_channels)
        else:
            continue
        shapes[shape] = shapes.get(shape, 0) + 1
    return shapes


def gemm_flops_per_s(num_rows: int, shapes: Dict[Tuple[int, int], int],
                     min_seconds: float = 0.2, seed: int = 0) -> Dict[str, Any]:
    r"""The machine's :obj:`torch.mm` throughput at the model's matrix shapes.

    Every :obj:`(F_in, F_out)` is timed as :obj:`[num_rows, F_in] @ [F_in, F_out]`, repeated
    for at least :obj:`min_seconds` after one warm-up product. The result is the rate at which
    the model's products would run: all their FLOPs (:math:`2 N F_{in} F_{out}` per product,
    times the number of layers of that shape) over the time they take at the measured rates,
    so that tiny products (the classifiers) weigh by their share of the work.

    Args:
        num_rows (int): :math:`N`, e.g. the utterances of the largest batch.
        shapes (Dict[Tuple[int, int], int]): Layer count per :obj:`(F_in, F_out)`, see
            :func:`linear_shapes`.
        min_seconds (float, optional): Time per shape. (default: :obj:`0.2`)
        seed (int, optional): Seed of the random matrices. (default: :obj:`0`)
    """
    if num_rows < 1 or not shapes:
        raise ValueError(f"need 'num_rows' >= 1 and at least one shape, got {num_rows} and "
                         f"{dict(shapes)}")
    gen = torch.Generator().manual_seed(seed)
    work, seconds_at_rate, per_shape = 0.0, 0.0, []
    for (f_in, f_out), count in shapes.items():
        a = torch.randn(num_rows, f_in, generator=gen)
        b = torch.randn(f_in, f_out, generator=gen)
        torch.mm(a, b)
        reps, start = 0, time.perf_counter()
        while True:
            torch.mm(a, b)
            reps += 1
            seconds = time.perf_counter() - start
            if seconds >= min_seconds:
                break
        flops = 2 * num_rows * f_in * f_out
        rate = flops * reps / seconds
        work += count * flops
        seconds_at_rate += count * flops / rate
        per_shape.append(dict(shape=[num_rows, f_in, f_out], layers=count, flops_per_s=rate))
    return dict(gemm_flops_per_s=work / seconds_at_rate, gemm_rows=num_rows,
                gemm_shapes=per_shape)


def max_rss_mb() -> float:
    r"""Peak resident memory of this process so far (:obj:`ru_maxrss` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def busy_cpu_seconds() -> float:
    r"""CPU seconds all processes of the machine have spent busy since boot (/proc/stat)."""
    try:
        with open('/proc/stat') as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return 0.0
    busy = fields[0] + fields[1] + fields[2] + sum(fields[5:8])
    return busy / os.sysconf('SC_CLK_TCK')


def foreign_cpu_fraction(busy_start: float, own_start: float, wall_start: float) -> float:
    r"""Share of the machine's cores that OTHER processes kept busy since the given readings
    (of :func:`busy_cpu_seconds`, :func:`time.process_time` and :func:`time.perf_counter`)."""
    wall = time.perf_counter() - wall_start
    foreign = (busy_cpu_seconds() - busy_start) - (time.process_time() - own_start)
    return max(foreign, 0.0) / (max(wall, 1e-9) * (os.cpu_count() or 1))


def wait_until_idle(threshold: float, max_wait_s: float, probe_s: float = 1.0) -> float:
    r"""Waits until other processes use less than :obj:`threshold` of the cores over a
    :obj:`probe_s` probe, or :obj:`max_wait_s` has passed. Returns the last probe."""
    deadline = time.perf_counter() + max_wait_s
    while True:
        readings = (busy_cpu_seconds(), time.process_time(), time.perf_counter())
        time.sleep(probe_s)
        fraction = foreign_cpu_fraction(*readings)
        if fraction < threshold or time.perf_counter() >= deadline:
            return fraction


def machine_info() -> Dict[str, Any]:
    r"""CPU model, core count, library versions and the platform."""
    cpu_model = platform.processor() or 'unknown'
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    cpu_model = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    return dict(cpu_model=cpu_model, cpu_count=os.cpu_count(), torch=torch.__version__,
                torch_geometric=torch_geometric.__version__, python=platform.python_version(),
                platform=platform.platform())


def run_scenario(name: str, impl: str, steps: Optional[int] = None,
                 warmup_steps: Optional[int] = None, num_threads: int = DEFAULT_NUM_THREADS,
                 flops: bool = True, gemm_min_seconds: float = 0.1,
                 **overrides: Any) -> Dict[str, Any]:
    r"""Measures one implementation on one scenario in the calling process (CPU).

    Generates the data here (so the peak memory includes it, as it would in training), builds
    the model (seeded; the dense model wraps and shares the sparse one's parameters), runs
    :obj:`warmup_steps` untimed and :obj:`steps` timed training steps with Adam and modality
    dropout active, cycling over the batches in order, then one untimed and one timed
    inference pass over all batches. The peak resident memory is read next; only then are the
    FLOPs counted and the GEMM probe run, so neither shows in it.

    Args:
        name (str): Scenario name (see :func:`make_scenario`).
        impl (str): :obj:`"sparse"` or :obj:`"dense"`.
        steps (int, optional): Timed training steps. (default: the scenario's, one pass over
            the batches)
        warmup_steps (int, optional): Untimed training steps. (default: the scenario's, 1)
        num_threads (int, optional): :func:`torch.set_num_threads`. (default: :obj:`2`)
        flops (bool, optional): Count the useful FLOPs (the sparse model's unpadded training
            step on every dialogue of the timed batches) and run the GEMM probe.
            (default: :obj:`True`)
        gemm_min_seconds (float, optional): Time per shape of the GEMM probe.
            (default: :obj:`0.1`)
        **overrides: Scenario overrides (see :func:`make_scenario`).

    Returns:
        dict: ``train_utt_per_s``, ``infer_ms_per_utt``, ``peak_rss_mb``, the counts and
        seconds behind them, ``useful_flops`` (of the timed steps) with
        ``useful_flops_per_s``, ``gemm_flops_per_s`` and ``gemm_fraction`` if counted, and
        the settings.
    """
    scenario = make_scenario(name, **overrides)
    steps = scenario.steps if steps is None else steps
    warmup_steps = scenario.warmup_steps if warmup_steps is None else warmup_steps
    if steps < 1 or warmup_steps < 0 or num_threads < 1:
        raise ValueError(f"need 'steps' >= 1, 'warmup_steps' >= 0, 'num_threads' >= 1, got "
                         f"{steps}, {warmup_steps}, {num_threads}")
    if impl == 'dense' and scenario.dense_reason is not None:
        raise ValueError(f'dense cannot run {scenario.name}: {scenario.dense_reason}')
    torch.set_num_threads(num_threads)
    rss_start = max_rss_mb()

    dialogues = scenario_dialogues(scenario)
    batches = scenario_batches(scenario, dialogues)
    model, sparse = build_model(scenario, impl)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    model.train()
    sparse.set_epoch(STEADY_STATE_EPOCH)
    order = [i % len(batches) for i in range(warmup_steps + steps)]

    torch.manual_seed(scenario.seed)
    for i in order[:warmup_steps]:
        train_step(model, batches[i], optimizer)
    readings = (busy_cpu_seconds(), time.process_time(), time.perf_counter())
    start = time.perf_counter()
    for i in order[warmup_steps:]:
        train_step(model, batches[i], optimizer)
    train_seconds = time.perf_counter() - start
    timed = order[warmup_steps:]
    train_utterances = sum(int(batches[i].num_nodes) for i in timed)

    model.eval()
    with torch.no_grad():
        model(batches[0])
        start = time.perf_counter()
        for batch in batches:
            model(batch)
        infer_seconds = time.perf_counter() - start
    foreign = foreign_cpu_fraction(*readings)
    peak_rss = max_rss_mb()

    result: Dict[str, Any] = dict(
        scenario=scenario.name, impl=impl, num_threads=torch.get_num_threads(),
        train_utt_per_s=train_utterances / train_seconds,
        infer_ms_per_utt=1e3 * infer_seconds / scenario.num_utterances,
        peak_rss_mb=peak_rss, rss_at_start_mb=rss_start,
        train_steps=steps, warmup_steps=warmup_steps, train_utterances=train_utterances,
        train_seconds=train_seconds, train_ms_per_utt=1e3 * train_seconds / train_utterances,
        infer_utterances=scenario.num_utterances, infer_seconds=infer_seconds,
        num_parameters=sum(p.numel() for p in model.parameters()),
        foreign_cpu_fraction=foreign)
    if flops:
        model.train()
        per_dialogue = useful_flops_per_dialogue(sparse, dialogues, scenario.seed)
        per_batch = [sum(per_dialogue[j:j + scenario.batch_size])
                     for j in range(0, len(dialogues), scenario.batch_size)]
        useful = sum(per_batch[i] for i in timed)
        rows = max(int(b.num_nodes) for b in batches)
        result.update(useful_flops=useful, useful_flops_per_utt=useful / train_utterances,
                      useful_flops_per_s=useful / train_seconds,
                      **gemm_flops_per_s(rows, linear_shapes(sparse), gemm_min_seconds))
        result['gemm_fraction'] = result['useful_flops_per_s'] / result['gemm_flops_per_s']
    return result


def _failure_reason(returncode: int, stderr: str) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f'signal {-returncode}'
        hint = ' (out of memory?)' if -returncode == signal.SIGKILL else ''
        return f'killed by {name}{hint}'
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return f"exit status {returncode}: {lines[-1].strip() if lines else 'no error output'}"


def worker_command(name: str, impl: str, options: Dict[str, Any]) -> List[str]:
    r"""The command line of the process that measures one implementation."""
    return [sys.executable, '-m', 'dsgdn_pyg.benchmark', name, impl, json.dumps(options)]


def run_in_subprocess(name: str, impl: str, timeout_s: Optional[float] = None,
                      **options: Any) -> Dict[str, Any]:
    r"""Runs :func:`run_scenario` in a fresh Python process and returns its result, or
    :obj:`{'error': reason}` if the process failed, was killed (e.g. out of memory) or timed
    out."""
    try:
        proc = subprocess.run(worker_command(name, impl, options), capture_output=True,
                              text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return dict(error=f'timed out after {timeout_s:g} s')
    if proc.returncode != 0:
        return dict(error=_failure_reason(proc.returncode, proc.stderr))
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return dict(error=f'no JSON result on its last line; stdout ended '
                          f'{proc.stdout[-200:]!r}')


RESULT_KEYS = ('train_utt_per_s', 'infer_ms_per_utt', 'peak_rss_mb')


def benchmark_scenario(name: str, impls: Sequence[str] = IMPLEMENTATIONS,
                       steps: Optional[int] = None, warmup_steps: Optional[int] = None,
                       num_threads: int = DEFAULT_NUM_THREADS, wait_idle_s: float = 0.0,
                       idle_threshold: float = IDLE_THRESHOLD, retries: int = 2,
                       timeout_s: Optional[float] = None,
                       log: Optional[Callable[[str], None]] = None,
                       **overrides: Any) -> Dict[str, Any]:
    r"""Measures every implementation of :obj:`impls` on a scenario, each in its own
    process (see :func:`run_scenario`), and combines the results.

    An implementation that cannot run is left out of the result and its reason is given under
    :obj:`"skipped"`: dense on a scenario too large for it (not started), or a process that
    failed, was killed (out of memory) or timed out. The useful FLOPs of the sparse process
    (the unpadded work) are used for every implementation, so that their
    :obj:`gemm_fraction` compare the same work.

    Args:
        name (str): Scenario name (see :func:`make_scenario`).
        impls (sequence of str, optional): Implementations. (default: both)
        steps (int, optional): Timed training steps. (default: the scenario's)
        warmup_steps (int, optional): Untimed steps. (default: the scenario's)
        num_threads (int, optional): PyTorch threads of every process. (default: :obj:`2`)
        wait_idle_s (float, optional): Before every process, wait up to this long for the
            other processes to leave the cores idle, and redo a measurement they disturbed
            up to :obj:`retries` times. (default: :obj:`0.0`, no waiting)
        idle_threshold (float, optional): Share of the cores others may use and still count
            as idle. (default: :obj:`0.1`)
        retries (int, optional): Redos of a disturbed measurement. (default: :obj:`2`)
        timeout_s (float, optional): Time limit per process. (default: none)
        log (callable, optional): Receives progress lines.
        **overrides: Scenario overrides (see :func:`make_scenario`).

    Returns:
        dict: ``{"scenario": name, "sparse": {...}, "dense": {...}, "skipped": {impl:
        reason}, "ratios": {...}, "description": ..., "num_threads": ...}``; every present
        implementation has ``train_utt_per_s``, ``infer_ms_per_utt`` and ``peak_rss_mb``.
    """
    unknown = [impl for impl in impls if impl not in IMPLEMENTATIONS]
    if not impls or unknown:
        raise ValueError(f"'impls' must be a non-empty subset of {IMPLEMENTATIONS}, got "
                         f"{list(impls)}")
    scenario = make_scenario(name, **overrides)  # checks the overrides before any process
    log = log or (lambda message: None)
    result: Dict[str, Any] = dict(
        scenario=scenario.name, description=scenario.describe(),
        num_dialogues=len(scenario.lengths), num_utterances=scenario.num_utterances,
        max_length=max(scenario.lengths), batch_size=scenario.batch_size,
        feature_dims=dict(scenario.feature_dims), hidden_channels=scenario.hidden_channels,
        window=scenario.window, context_window=scenario.context_window,
        num_threads=num_threads, skipped={})
    options = dict(steps=steps, warmup_steps=warmup_steps, num_threads=num_threads,
                   **overrides)
    for impl in dict.fromkeys(impls):
        if impl == 'dense' and scenario.dense_reason is not None:
            result['skipped'][impl] = scenario.dense_reason
            log(f'{scenario.name}/{impl}: not run: {scenario.dense_reason}')
            continue
        # Dense counts the same useful FLOPs as sparse; count them there only without sparse.
        flops = impl == 'sparse' or 'sparse' not in impls
        attempts = []
        for _ in range(1 + (retries if wait_idle_s > 0 else 0)):
            if wait_idle_s > 0:
                wait_until_idle(idle_threshold, wait_idle_s)
            log(f'{scenario.name}/{impl}: running')
            attempts.append(run_in_subprocess(scenario.name, impl, timeout_s,
                                              flops=flops, **options))
            if 'error' in attempts[-1] or \
                    attempts[-1]['foreign_cpu_fraction'] < idle_threshold:
                break
        measured = min(attempts, key=lambda r: r.get('foreign_cpu_fraction', 0.0))
        if 'error' in measured:
            result['skipped'][impl] = measured['error']
            log(f"{scenario.name}/{impl}: failed: {measured['error']}")
            continue
        measured['attempts'] = len(attempts)
        result[impl] = measured
        log(f"{scenario.name}/{impl}: {measured['train_utt_per_s']:.1f} utt/s train, "
            f"{measured['infer_ms_per_utt']:.3f} ms/utt inference, peak "
            f"{measured['peak_rss_mb']:.0f} MB")
    _add_ratios(result)
    return result


def _add_ratios(result: Dict[str, Any]) -> None:
    sparse, dense = result.get('sparse'), result.get('dense')
    if sparse is not None and dense is not None:
        if 'useful_flops_per_utt' in sparse:  # the same useful work for both
            dense['useful_flops_per_utt'] = sparse['useful_flops_per_utt']
            dense['useful_flops_per_s'] = sparse['useful_flops_per_utt'] * \
                dense['train_utt_per_s']
            if 'gemm_flops_per_s' not in dense:
                dense['gemm_flops_per_s'] = sparse['gemm_flops_per_s']
            dense['gemm_fraction'] = dense['useful_flops_per_s'] / dense['gemm_flops_per_s']
        result['ratios'] = dict(
            train_speedup=sparse['train_utt_per_s'] / dense['train_utt_per_s'],
            infer_speedup=dense['infer_ms_per_utt'] / sparse['infer_ms_per_utt'],
            peak_rss=sparse['peak_rss_mb'] / dense['peak_rss_mb'])


def _fmt(value: Optional[float], digits: int = 1, suffix: str = '') -> str:
    return '-' if value is None else f'{value:,.{digits}f}{suffix}'


def format_scenario_result(result: Dict[str, Any]) -> str:
    r"""Human-readable lines of a :func:`benchmark_scenario` result."""
    lines = [f"{result['description']} ({result['num_threads']} threads)"]
    for impl in IMPLEMENTATIONS:
        if impl in result:
            r = result[impl]
            line = (f"{impl:6s} train {r['train_utt_per_s']:10.1f} utt/s, inference "
                    f"{r['infer_ms_per_utt']:.3f} ms/utt, peak RSS {r['peak_rss_mb']:.0f} MB")
            if 'gemm_fraction' in r:
                line += (f", useful {r['useful_flops_per_s'] / 1e9:.2f} GFLOP/s = "
                         f"{100 * r['gemm_fraction']:.1f}% of GEMM "
                         f"{r['gemm_flops_per_s'] / 1e9:.1f} GFLOP/s")
            lines.append(line)
        elif impl in result['skipped']:
            lines.append(f"{impl:6s} not run: {result['skipped'][impl]}")
    ratios = result.get('ratios')
    if ratios:
        lines.append(f"sparse vs dense: train {ratios['train_speedup']:.2f}x faster, inference "
                     f"{ratios['infer_speedup']:.2f}x faster, peak memory "
                     f"{ratios['peak_rss']:.2f}x")
    return '\n'.join(lines)


def _get(results: Dict[str, Dict[str, Any]], scenario: str, *keys: str) -> Optional[float]:
    value: Any = results.get(scenario)
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def evaluate_targets(results: Dict[str, Dict[str, Any]]) -> List[Dict[str, Any]]:
    r"""The issue's targets against :func:`benchmark_scenario` results keyed by scenario name:
    each with its measured value and whether it is met (:obj:`None` if not measured)."""
    def ratio(num, den):
        return num / den if num is not None and den else None

    checks = [
        ('iemocap: sparse train utt/s >= 2.5x dense',
         _get(results, 'iemocap', 'ratios', 'train_speedup'), lambda v: v >= 2.5),
        ('iemocap: sparse peak memory <= 0.4x dense',
         _get(results, 'iemocap', 'ratios', 'peak_rss'), lambda v: v <= 0.4),
        ('iemocap: sparse train >= 1,350 utt/s',
         _get(results, 'iemocap', 'sparse', 'train_utt_per_s'), lambda v: v >= 1350),
        ('iemocap: sparse peak memory <= 760 MB',
         _get(results, 'iemocap', 'sparse', 'peak_rss_mb'), lambda v: v <= 760),
        ('long-1600: sparse train utt/s >= 10x dense',
         _get(results, 'long-1600', 'ratios', 'train_speedup'), lambda v: v >= 10),
        ('long-10000: peak memory of the training step < 2 GB (2,048 MB)',
         _get(results, 'long-10000', 'sparse', 'peak_rss_mb'), lambda v: v < 2048),
        ('long-10000: train time per utterance <= 1.5x long-400',
         ratio(_get(results, 'long-10000', 'sparse', 'train_ms_per_utt'),
               _get(results, 'long-400', 'sparse', 'train_ms_per_utt')), lambda v: v <= 1.5),
    ]
    return [dict(target=name, value=value, met=None if value is None else bool(ok(value)))
            for name, value, ok in checks]


def markdown_table(results: Sequence[Dict[str, Any]]) -> str:
    r"""One Markdown row per :func:`benchmark_scenario` result."""
    def impl(key: str, digits: int, scale: float = 1.0):
        def get(result, name):
            value = _get({'r': result}, 'r', name, key)
            return _fmt(None if value is None else value * scale, digits)
        return get

    def ratio(key: str):
        return lambda result, _: _fmt(_get({'r': result}, 'r', 'ratios', key), 2, 'x')

    columns = [
        ('scenario', lambda result, _: result['scenario']),
        ('utterances', lambda result, _: f"{result['num_utterances']:,}"),
        ('sparse train utt/s', lambda r, _: impl('train_utt_per_s', 1)(r, 'sparse')),
        ('dense train utt/s', lambda r, _: impl('train_utt_per_s', 1)(r, 'dense')),
        ('train speed-up', ratio('train_speedup')),
        ('sparse infer ms/utt', lambda r, _: impl('infer_ms_per_utt', 3)(r, 'sparse')),
        ('dense infer ms/utt', lambda r, _: impl('infer_ms_per_utt', 3)(r, 'dense')),
        ('sparse peak MB', lambda r, _: impl('peak_rss_mb', 0)(r, 'sparse')),
        ('dense peak MB', lambda r, _: impl('peak_rss_mb', 0)(r, 'dense')),
        ('peak sparse/dense', ratio('peak_rss')),
        ('sparse train ms/utt', lambda r, _: impl('train_ms_per_utt', 3)(r, 'sparse')),
        ('useful GFLOP/s sparse', lambda r, _: impl('useful_flops_per_s', 2, 1e-9)(r, 'sparse')),
        ('useful GFLOP/s dense', lambda r, _: impl('useful_flops_per_s', 2, 1e-9)(r, 'dense')),
        ('GEMM GFLOP/s', lambda r, _: impl('gemm_flops_per_s', 1, 1e-9)(r, 'sparse')),
        ('sparse % of GEMM', lambda r, _: impl('gemm_fraction', 1, 100)(r, 'sparse')),
        ('dense % of GEMM', lambda r, _: impl('gemm_fraction', 1, 100)(r, 'dense')),
    ]
    lines = ['| ' + ' | '.join(name for name, _ in columns) + ' |',
             '|' + '---|' * len(columns)]
    for result in results:
        lines.append('| ' + ' | '.join(fmt(result, None) for _, fmt in columns) + ' |')
    return '\n'.join(lines)


def _worker_main(argv: Sequence[str]) -> None:
    from dsgdn_pyg.memory import release_large_allocations

    # As in the command line, for both implementations alike.
    release_large_allocations()
    name, impl, options = argv
    print(json.dumps(run_scenario(name, impl, **json.loads(options))))


if __name__ == '__main__':
    _worker_main(sys.argv[1:])
