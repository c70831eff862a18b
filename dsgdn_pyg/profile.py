r"""Profiling helpers: peak and current memory of this process, how busy the machine's other
processes keep its cores, FLOP counts, the machine's matrix-product speed, and the throughput
of training and inference on a dataset preset (:func:`benchmark`, what ``dsgdn-pyg benchmark``
runs without ``--scenario``).

These are what the package's ``dsgdn-pyg benchmark`` and the scripts under ``benchmarks/``
measure with (as :mod:`torch_geometric.profile` is for PyG); the study tooling (the
sparse-against-dense scenarios of ``--scenario``, the paper's experiment grids, result tables
and reports) lives there.
"""
import itertools
import os
import platform
import resource
import time
from typing import Any, Callable, Dict, Optional, Tuple

import torch
import torch_geometric
from torch.utils.flop_counter import FlopCounterMode
from torch.utils.data import DataLoader

from dsgdn_pyg.models import build_model, dialogue_transform
from dsgdn_pyg.train.config import TrainConfig, check_against_corpus
from dsgdn_pyg.train.data import (batch_of, collate, epoch_generator, load_dataset, model_kwargs,
                                  prepare_splits, resolve_device, torch_threads)
from dsgdn_pyg.train.optim import adam
from dsgdn_pyg.train.step import train_step


# Memory #######################################################################################

def max_rss_mb() -> float:
    r"""Peak resident memory of this process so far, in MiB: the kernel's high-water mark as
    :func:`current_rss_mb` reads the current value (``VmHWM`` of ``/proc/self/status``, which
    folds in the resident memory of the moment), so that the two compare like with like.
    :obj:`ru_maxrss` (used where ``/proc`` is absent) is only updated when memory is
    unmapped, and can lag behind the current value."""
    value = _status_mb('VmHWM')
    if value is None:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return value


def current_rss_mb() -> float:
    r"""Resident memory of this process now, in MiB (``VmRSS`` of ``/proc/self/status``)."""
    value = _status_mb('VmRSS')
    if value is None:
        with open('/proc/self/statm') as f:
            resident_pages = int(f.read().split()[1])
        return resident_pages * os.sysconf('SC_PAGE_SIZE') / 2**20
    return value


def _status_mb(field: str) -> Optional[float]:
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(field + ':'):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    r"""Resets the kernel's resident high-water mark (what :func:`max_rss_mb` reports) to the
    current resident memory, so that a peak from before a baseline cannot hide a later one.
    Returns whether the kernel allowed it."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


# Load of the machine ##########################################################################

def busy_cpu_seconds() -> float:
    r"""CPU seconds all processes of the machine have spent busy since boot (/proc/stat;
    :obj:`0.0` where it cannot be read)."""
    try:
        with open('/proc/stat') as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return 0.0
    # user nice system idle iowait irq softirq steal [guest guest_nice, already in user]
    busy = fields[0] + fields[1] + fields[2] + sum(fields[5:8])
    return busy / os.sysconf('SC_CLK_TCK')


def cpu_readings() -> Tuple[float, float, float]:
    r"""The readings :func:`foreign_cpu_fraction` measures from: the machine's busy CPU
    seconds, this process's CPU seconds and the wall clock."""
    return busy_cpu_seconds(), time.process_time(), time.perf_counter()


def foreign_cpu_fraction(busy_start: float, own_start: float, wall_start: float) -> float:
    r"""Share of the machine's cores that OTHER processes kept busy since the given readings
    (:func:`cpu_readings`). Timings taken with a large share are distorted (and OpenMP's
    spin-waiting makes oversubscription far worse than the share suggests)."""
    wall = time.perf_counter() - wall_start
    foreign = (busy_cpu_seconds() - busy_start) - (time.process_time() - own_start)
    return max(foreign, 0.0) / (max(wall, 1e-9) * (os.cpu_count() or 1))


def wait_until_idle(threshold: float, max_wait_s: float, probe_s: float = 1.0) -> float:
    r"""Waits until other processes use less than :obj:`threshold` of the cores over a
    :obj:`probe_s` probe, or :obj:`max_wait_s` has passed. Returns the last probe."""
    deadline = time.perf_counter() + max_wait_s
    while True:
        readings = cpu_readings()
        time.sleep(probe_s)
        fraction = foreign_cpu_fraction(*readings)
        if fraction < threshold or time.perf_counter() >= deadline:
            return fraction


def machine_info() -> Dict[str, Any]:
    r"""CPU model, core count, PyTorch threads, library versions and the platform."""
    cpu_model = platform.processor() or 'unknown'
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    cpu_model = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    return dict(cpu_model=cpu_model, cpu_count=os.cpu_count(),
                num_threads=torch.get_num_threads(), torch=torch.__version__,
                torch_geometric=torch_geometric.__version__, python=platform.python_version(),
                platform=platform.platform())


# FLOPs ########################################################################################

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
    attention), plus the sparse-dense products of CSR matrices, which it does not count.
    PyG's scatter-based message passing and element-wise operations are not counted."""
    mapping = {torch.ops.aten._sparse_addmm: _sparse_addmm_flop,
               torch.ops.aten.sparse_sampled_addmm: _sparse_sampled_addmm_flop}
    with FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        fn()
    return int(counter.get_total_flops())


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
    r"""The machine's :obj:`torch.mm` throughput at a model's matrix shapes.

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


# Throughput on a dataset preset ###############################################################

def _sync(device: torch.device):
    # CUDA kernels run asynchronously: the clock is read once the queued work is done.
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
    # Batched as the trainer batches them (train.data.batch_of: the structures the step
    # would otherwise read back from the device are built on the host).
    loader = DataLoader(splits['train'], batch_size=config.batch_size, shuffle=True,
                        generator=epoch_generator(config.seed, 0), collate_fn=batch_of)
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
