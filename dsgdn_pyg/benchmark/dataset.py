r"""Throughput of training steps and inference on a dataset preset, with the run settings
of :class:`~dsgdn_pyg.train.TrainConfig` (``dsgdn-pyg benchmark`` without a scenario)."""
import itertools
import platform
import time
from typing import Any, Dict, Optional

import torch
import torch_geometric
from torch_geometric.loader import DataLoader

from dsgdn_pyg.models import build_model, dialogue_transform
from dsgdn_pyg.train.config import TrainConfig, check_against_corpus
from dsgdn_pyg.train.optim import adam
from dsgdn_pyg.train.step import train_step
from dsgdn_pyg.train.data import (collate, epoch_generator, load_dataset, model_kwargs,
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
    kwargs = model_kwargs(config, corpus, modalities)
    splits = prepare_splits(corpus, modalities, config.window, ('train', 'test'),
                            transform=dialogue_transform(config.model, config.window, kwargs))

    torch.manual_seed(config.seed)
    model = build_model(config.model, **kwargs).to(device)
    optimizer = adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    model.train()
    model.set_epoch(config.warmup_epochs)
    loader = DataLoader(splits['train'], batch_size=config.batch_size, shuffle=True,
                        generator=epoch_generator(config.seed, 0))
    batches = [b.to(device) for b in itertools.islice(itertools.cycle(loader),
                                                      warmup_steps + steps)]

    def step(batch):
        train_step(model, batch, optimizer)

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
        'model': f'{type(model).__name__} (sparse)',
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


