r"""The training-throughput scenarios: synthetic dialogues of fixed shapes, the sparse and
the dense model on them, and one training step."""
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch_geometric.data import Batch, Data

from dsgdn_pyg.data import DialogueGraph, make_dialogue
from dsgdn_pyg.models import AMBDSGDN
from dsgdn_pyg.train.data import collate
from dsgdn_pyg.names import IMPLEMENTATIONS, SCENARIO_NAMES  # noqa: F401 (re-exported)

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
    r"""The dialogues in order, :obj:`scenario.batch_size` per batch, collated as the trainer
    collates them (:func:`dsgdn_pyg.train.data.collate`)."""
    return collate(dialogues, scenario.batch_size)


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
