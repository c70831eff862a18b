r"""Post-hoc evaluations of trained runs (test-time noise, long dialogues) and the
measurements of the ``overhead`` experiment.

Scores always come from :func:`dsgdn_pyg.inference.evaluate` on a modified copy of the run's
corpus (noisy test features, or only the long test dialogues), so there is one evaluation
path in the package.
"""
import copy
import dataclasses
from typing import Any, Dict, List, Sequence

import torch
from torch import Tensor
from torch_geometric.data import Data

from dsgdn_pyg.data import DialogueCorpus, feature_key
from dsgdn_pyg.models import build_model, dialogue_transform
from dsgdn_pyg.profile import benchmark, count_flops
from dsgdn_pyg.inference.evaluate import evaluate
from dsgdn_pyg.train import TrainConfig
from dsgdn_pyg.train.data import (collate, model_kwargs, prepare_dialogues, resolve_device,
                                  torch_threads)


def feature_std(dialogues: Sequence[Data], modalities: Sequence[str]) -> Dict[str, Tensor]:
    r"""The standard deviation of every feature dimension over all utterances of
    :obj:`dialogues` (population form, ``ddof = 0``), per modality.

    Args:
        dialogues (Sequence[Data]): Usually the training split.
        modalities (Sequence[str]): Modalities to measure.

    Returns:
        Dict[str, Tensor]: ``{m: std [D_m]}``.
    """
    if not dialogues:
        raise ValueError("'dialogues' is empty: no feature statistics to measure")
    out = {}
    for m in modalities:
        key = feature_key(m)
        missing = [d.dialogue_id for d in dialogues if key not in d]
        if missing:
            raise ValueError(f"modality {m!r} is missing from {len(missing)} dialogue(s), "
                             f"e.g. {missing[0]!r}")
        x = torch.cat([d[key] for d in dialogues]).double()
        out[m] = x.std(dim=0, correction=0).to(dialogues[0][key].dtype)
    return out


def add_feature_noise(dialogues: Sequence[Data], std: Dict[str, Tensor], level: float,
                      generator: torch.Generator) -> List[Data]:
    r"""Copies of :obj:`dialogues` whose features of every modality in :obj:`std` carry
    Gaussian noise :math:`\epsilon \sim \mathcal{N}(0, (\text{level} \cdot \sigma_d)^2)` per
    feature dimension :math:`d`.

    The noise of a dialogue is ``level * std * randn(L, D)`` drawn from :obj:`generator` in
    dialogue order, then modality order of :obj:`std`; the inputs are not modified.

    Args:
        dialogues (Sequence[Data]): Dialogues to perturb (usually the test split).
        std (Dict[str, Tensor]): Per-dimension standard deviations (:func:`feature_std`).
        level (float): Noise scale in multiples of :obj:`std`, >= 0.
        generator (torch.Generator): Source of the noise (CPU).
    """
    if not isinstance(level, (int, float)) or isinstance(level, bool) or level < 0:
        raise ValueError(f"'level' must be a non-negative number, got {level!r}")
    out = []
    for data in dialogues:
        data = copy.copy(data)
        for m, sigma in std.items():
            key = feature_key(m)
            x = data[key]
            if x.size(-1) != sigma.numel():
                raise ValueError(f"'std[{m!r}]' has {sigma.numel()} entries but dialogue "
                                 f"{data.dialogue_id!r} has {x.size(-1)} features")
            noise = torch.randn(x.shape, generator=generator, dtype=x.dtype)
            data[key] = x + level * sigma.to(x.dtype) * noise
        out.append(data)
    return out


def with_test_split(corpus: DialogueCorpus, test: List[Data]) -> DialogueCorpus:
    r"""A shallow copy of :obj:`corpus` whose test split is :obj:`test`."""
    return dataclasses.replace(corpus, test=list(test))


def dialogues_by_length(dialogues: Sequence[Data], min_length: int,
                        max_length: int) -> List[Data]:
    r"""The dialogues with :obj:`min_length` <= number of utterances <= :obj:`max_length`."""
    if min_length > max_length:
        raise ValueError(f"'min_length' ({min_length}) must not exceed 'max_length' "
                         f"({max_length})")
    return [d for d in dialogues if min_length <= d.num_nodes <= max_length]


def _scores(metrics: Dict[str, Any]) -> Dict[str, Any]:
    return {'wa_f1': metrics['wa_f1'], 'wa_acc': metrics['wa_acc'],
            'num_utterances': metrics['num_utterances'],
            'per_class_f1': metrics['per_class_f1']}


def noise_scores(checkpoint: str, corpus: DialogueCorpus, modalities: Sequence[str],
                 levels: Sequence[float], noise_seed: int = 0,
                 device: str = 'auto') -> List[Dict[str, Any]]:
    r"""Test scores of :obj:`checkpoint` with Gaussian noise of each level added to every
    used modality of the test split (:func:`add_feature_noise`, standard deviations measured
    on the training split).

    Every level starts from a generator seeded with :obj:`noise_seed`, so the levels scale
    the same draw: the curve measures the level, not a new sample of noise.
    """
    std = feature_std(corpus.train, modalities)
    rows = []
    for level in levels:
        generator = torch.Generator().manual_seed(noise_seed)
        noisy = add_feature_noise(corpus.test, std, float(level), generator)
        metrics = evaluate(checkpoint, corpus=with_test_split(corpus, noisy), device=device)
        rows.append({'level': float(level), **_scores(metrics)})
    return rows


def length_scores(checkpoint: str, corpus: DialogueCorpus, min_length: int, max_length: int,
                  device: str = 'auto') -> List[Dict[str, Any]]:
    r"""Test scores of :obj:`checkpoint` on all test dialogues and on those of
    :obj:`min_length` to :obj:`max_length` utterances (scores are :obj:`None` when no
    dialogue has such a length)."""
    rows = []
    for subset, dialogues in (('all', list(corpus.test)),
                              (f'{min_length}-{max_length}',
                               dialogues_by_length(corpus.test, min_length, max_length))):
        row: Dict[str, Any] = {'subset': subset, 'num_dialogues': len(dialogues)}
        if dialogues:
            metrics = evaluate(checkpoint, corpus=with_test_split(corpus, dialogues),
                               device=device)
            row.update(_scores(metrics))
        else:
            row.update(wa_f1=None, wa_acc=None, num_utterances=0, per_class_f1=None)
        rows.append(row)
    return rows


def inference_flops(model: torch.nn.Module, batches: Sequence[Any]) -> int:
    r"""Floating point operations of one evaluation-mode forward pass over :obj:`batches`,
    counted by :func:`dsgdn_pyg.profile.count_flops`: the dense products that
    :class:`torch.utils.flop_counter.FlopCounterMode` knows (projections, linear layers,
    attention) plus the sparse CSR products of :class:`~dsgdn_pyg.nn.DiffGATConv`. PyG's
    scatter-based message passing (GATConv) and element-wise operations are not counted.
    """
    was_training = model.training
    model.eval()

    def forward():
        with torch.no_grad():
            for batch in batches:
                model(batch)

    flops = count_flops(forward)
    model.train(was_training)
    return flops


def measure_overhead(config: TrainConfig, corpus: DialogueCorpus, modalities: Sequence[str],
                     steps: int = 10) -> Dict[str, Any]:
    r"""Parameters, FLOPs per test utterance, inference milliseconds per utterance and
    training utterances per second of an initialised model of :obj:`config`.

    The timings come from :func:`dsgdn_pyg.profile.benchmark` (:obj:`steps` timed training
    steps with modality dropout active, one timed inference pass over the test split).
    """
    device = resolve_device(config.device)
    with torch_threads(config.num_threads, device):
        kwargs = model_kwargs(config, corpus, modalities)
        torch.manual_seed(config.seed)
        model = build_model(config.model, **kwargs).to(device)
        test = prepare_dialogues(corpus.test, modalities, config.window,
                                 dialogue_transform(config.model, config.window, kwargs))
        batches = [b.to(device) for b in collate(test, config.batch_size)]
        flops = inference_flops(model, batches)
    utterances = sum(int(b.num_nodes) for b in batches)
    timing = benchmark(config, steps=steps)
    return {
        'num_parameters': sum(p.numel() for p in model.parameters()),
        'mflops_per_utterance': flops / utterances / 1e6,
        'inference_ms_per_utterance': 1000.0 * timing['inference_seconds']
        / timing['inference_utterances'],
        'train_utterances_per_s': timing['train_utterances_per_s'],
        'inference_utterances_per_s': timing['inference_utterances_per_s'],
        'test_utterances': utterances,
        'benchmark': timing,
    }


__all__ = ['add_feature_noise', 'dialogues_by_length', 'feature_std', 'inference_flops',
           'length_scores', 'measure_overhead', 'noise_scores', 'with_test_split']
