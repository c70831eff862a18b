r"""Data-parallel training on :mod:`torch.distributed`, the way PyG trains on many small graphs
(``examples/multi_gpu/distributed_batching.py``): one process per device, each with a share of
every global batch, gradients summed by :class:`~torch.nn.parallel.DistributedDataParallel`.

A process started by ``torchrun`` (``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` in its
environment) joins the process group in :func:`distributed_context`: gloo on the CPU, NCCL on
CUDA with device ``cuda:LOCAL_RANK``. A step of :math:`N` processes computes what one process
computes on the whole global batch (see :func:`dsgdn_pyg.loss.multimodal_loss` and
:class:`~dsgdn_pyg.nn.adaptive_modality_dropout.AdaptiveModalityDropout`); the processes agree
on the settings and on the success of every setup step, so that a mistake on one ends all of
them with its message instead of leaving the others waiting. Collectives time out after
:obj:`TIMEOUT`, and ``torchrun`` ends the other processes when one dies.

``dsgdn-pyg train --nproc-per-node N`` (:func:`launch`) starts ``torchrun --standalone`` with
``python -m dsgdn_pyg.train`` (:mod:`dsgdn_pyg.train.__main__`) as the program of every process.
"""
import contextlib
import datetime
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import torch
import torch.distributed as dist
from torch import Tensor

from dsgdn_pyg.io import atomic_write_text
from dsgdn_pyg.train.checkpoint import config_differences
from dsgdn_pyg.train.config import ConfigError, TrainConfig
from dsgdn_pyg.train.data import (ShardedBatchSampler, collate_shard, derived_seed,
                                  resolve_device, step_seed)

#: How long a collective (and joining the group) waits for the other processes. A process
#: that hangs (rather than dies, which torchrun notices at once) ends the run after this.
#: Override with the environment variable ``DSGDN_PYG_DIST_TIMEOUT`` (seconds).
TIMEOUT = datetime.timedelta(minutes=10)


class DistributedError(RuntimeError):
    r"""Another process of a data-parallel run failed, or the launched processes did."""


def _timeout() -> datetime.timedelta:
    raw = os.environ.get('DSGDN_PYG_DIST_TIMEOUT')
    return TIMEOUT if not raw else datetime.timedelta(seconds=float(raw))


def launched_by_torchrun() -> bool:
    r"""Whether this process is one of a ``torchrun`` (or compatible) launch."""
    return 'WORLD_SIZE' in os.environ and 'RANK' in os.environ


def _sum(tensor: Tensor) -> Tensor:
    out = tensor.clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out


@dataclass
class DistributedContext:
    r"""This process's place in a run: rank, number of processes, device.

    One process (:obj:`world_size` 1) is the trivial case: every method then does nothing or
    returns its argument, so the trainer has a single code path.
    """
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device('cpu'))

    @property
    def is_main(self) -> bool:
        r"""Rank 0 alone logs and writes files."""
        return self.rank == 0

    @property
    def all_reduce(self) -> Optional[Callable[[Tensor], Tensor]]:
        r"""The sum of a tensor over the processes, :obj:`None` for one process."""
        return _sum if self.world_size > 1 else None

    def all_gather_object(self, obj: Any) -> List[Any]:
        r"""Every process's :obj:`obj` (picklable), in rank order."""
        if self.world_size == 1:
            return [obj]
        out: List[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    @contextlib.contextmanager
    def agree(self, what: str) -> Iterator[None]:
        r"""Runs a block on every process and makes them agree on its success: if the block
        fails on some process, it fails on all of them, with the first failure's message
        (the failing process re-raises its own exception)."""
        error: Optional[BaseException] = None
        try:
            yield
        except Exception as e:  # noqa: B902 - re-raised below, on this and every other process
            error = e
        if self.world_size > 1:
            message = None if error is None else f"{type(error).__name__}: {error}"
            failures = [(r, m) for r, m in enumerate(self.all_gather_object(message))
                        if m is not None]
            if failures and error is None:
                rank, message = failures[0]
                raise DistributedError(f"process {rank} of {self.world_size} failed while "
                                       f"{what}: {message}")
        if error is not None:
            raise error

    def check_same_settings(self, settings: Mapping[str, Any],
                            ignore: Sequence[str] = ()) -> None:
        r"""Raises :class:`~dsgdn_pyg.train.config.ConfigError` on every process if any
        process runs with other settings than process 0."""
        for rank, other in enumerate(self.all_gather_object(dict(settings))):
            diff = config_differences(other, settings, ignore)
            if diff:
                details = '; '.join(f"{k}: {b!r} here, {a!r} on process {rank}"
                                    for k, (a, b) in diff.items())
                raise ConfigError(f"the {self.world_size} processes of the run were given "
                                  f"different settings (process {self.rank}: {details})")

    def predictions(self, predict: Callable[[Sequence[Any]], Tuple[Tensor, Tensor]],
                    batches: Sequence[Any]) -> Tuple[Tensor, Tensor]:
        r"""Labels and logits of all :obj:`batches`, in order, computed with
        :obj:`predict` (batches -> (labels, logits) on the CPU) on batches ``i`` with
        ``i % world_size == rank`` here and gathered from the other processes."""
        if self.world_size == 1:
            return predict(batches)
        mine = {i: predict([batches[i]]) for i in self.own(len(batches))}
        merged: Dict[int, Tuple[Tensor, Tensor]] = {}
        for part in self.all_gather_object(mine):
            merged.update(part)
        ys, logits = zip(*(merged[i] for i in range(len(batches))))
        return torch.cat(ys), torch.cat(logits)

    def own(self, count: int) -> range:
        r"""The indices of :obj:`count` evaluation batches this process computes."""
        return range(self.rank, count, self.world_size)


def _sum_gradients(state: Any, bucket: dist.GradBucket) -> torch.futures.Future[torch.Tensor]:
    # DDP's default hook averages; every process's loss is already its share of the global
    # mean (multimodal_loss(all_reduce=...)), so the gradients are summed.
    work = dist.all_reduce(bucket.buffer(), group=state, async_op=True)
    return work.get_future().then(lambda future: future.value()[0])


def data_parallel(model: torch.nn.Module, context: DistributedContext) -> torch.nn.Module:
    r""":obj:`model` wrapped in :class:`~torch.nn.parallel.DistributedDataParallel` with
    summed gradients, or :obj:`model` itself for one process."""
    if context.world_size == 1:
        return model
    device_ids = [context.device.index] if context.device.type == 'cuda' else None
    wrapped = torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
    wrapped.register_comm_hook(None, _sum_gradients)
    return wrapped


def _device_for_rank(name: str, local_rank: int) -> torch.device:
    if name not in ('auto', 'cpu', 'cuda'):
        detail = (f"is {name!r}, but each process of a data-parallel run uses the device of its "
                  f"local rank; give 'cuda', 'cpu' or 'auto'")
        raise ConfigError(f"'device' {detail}", field='device', detail=detail)
    device = resolve_device(name)
    if device.type != 'cuda':
        return device
    if local_rank >= torch.cuda.device_count():
        detail = (f"is {name!r}, but local rank {local_rank} has no CUDA device (this node has "
                  f"{torch.cuda.device_count()}); start at most that many processes per node")
        raise ConfigError(f"'device' {detail}", field='device', detail=detail)
    return torch.device('cuda', local_rank)


@contextlib.contextmanager
def distributed_context(device: str) -> Iterator[DistributedContext]:
    r"""The :class:`DistributedContext` of this process for a run on :obj:`device`
    (``'auto'``, ``'cpu'``, ``'cuda'``...).

    Outside ``torchrun`` (or with ``WORLD_SIZE=1``) it is one process on
    :func:`~dsgdn_pyg.train.data.resolve_device`. Under ``torchrun`` the process joins the
    default process group (gloo, or NCCL for CUDA) unless the caller has already initialised
    one, and leaves it at the end if it joined it here.
    """
    if not launched_by_torchrun() or int(os.environ['WORLD_SIZE']) == 1:
        yield DistributedContext(device=resolve_device(device))
        return
    local_rank = int(os.environ.get('LOCAL_RANK', 0))
    # Checked before joining, so that NCCL never sees two processes on one GPU; a process that
    # fails here exits, and torchrun ends the others.
    chosen = _device_for_rank(device, local_rank)
    if chosen.type == 'cuda':
        torch.cuda.set_device(chosen)
    joined = False
    if not dist.is_initialized():
        dist.init_process_group('nccl' if chosen.type == 'cuda' else 'gloo',
                                timeout=_timeout())
        joined = True
    try:
        yield DistributedContext(rank=dist.get_rank(), world_size=dist.get_world_size(),
                                 local_rank=local_rank, device=chosen)
    finally:
        if joined:
            dist.destroy_process_group()


def rank_seed(seed: int, rank: int) -> int:
    r"""The seed of the global RNG (dropout masks) of process :obj:`rank` > 0 after the model
    is built; rank 0 keeps the stream of :obj:`seed`, as one process does."""
    return derived_seed(seed, rank, 2)


@dataclass
class TrainingBatches:
    r"""The training batches of one epoch for this process (:obj:`sampler`'s shares of the
    global batches), each of which first prepares adaptive modality dropout (:obj:`module`,
    if any) for its step: a generator seeded from ``(seed, epoch, step)``
    (:func:`~dsgdn_pyg.train.data.step_seed`), the positions of this process's dialogues in the
    global batch and the sum over the processes. So every process, whatever their number,
    makes the draws one process makes for the whole batch.
    """
    dialogues: Sequence[Any]
    sampler: ShardedBatchSampler
    module: Optional[torch.nn.Module]
    seed: int
    epoch: int
    device: torch.device
    all_reduce: Optional[Callable[[Tensor], Tensor]]

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[Any]:
        try:
            for step, shard in enumerate(self.sampler):
                batch = collate_shard(self.dialogues, shard)
                positions = torch.tensor(shard.positions)
                if self.device.type == 'cuda':
                    # Pinned, so that the copies to the GPU (the trainer's non_blocking
                    # batch.to, the positions' here) do not make the host wait for them.
                    batch = batch.pin_memory()
                    positions = positions.pin_memory().to(self.device, non_blocking=True)
                if self.module is not None:
                    generator = torch.Generator(device=self.device)
                    generator.manual_seed(step_seed(self.seed, self.epoch, step))
                    self.module.set_step(generator, positions, shard.size, self.all_reduce)
                yield batch
        finally:
            if self.module is not None:
                self.module.set_step()


# --------------------------------------------------------------------------------------------
# Launching: dsgdn-pyg train --nproc-per-node N

def launch(config: TrainConfig, nproc_per_node: int) -> Dict[str, Any]:
    r"""Trains :obj:`config` with :obj:`nproc_per_node` processes on this machine, started by
    ``python -m torch.distributed.run --standalone``, and returns rank 0's metrics.

    The processes read the resolved settings from a JSON file, so they run exactly
    :obj:`config`; their output (rank 0's progress, every process's errors) goes to this
    process's stdout and stderr.

    Raises:
        DistributedError: If the processes fail (their messages are above it).
    """
    with tempfile.TemporaryDirectory(prefix='dsgdn-pyg-launch-') as tmp:
        config_path = os.path.join(tmp, 'config.json')
        metrics_path = os.path.join(tmp, 'metrics.json')
        atomic_write_text(config_path, json.dumps(config.to_dict()))
        failures_path = os.path.join(tmp, 'failures.txt')
        command = [sys.executable, '-c', _TORCHRUN, failures_path, '--standalone',
                   f'--nproc-per-node={nproc_per_node}', '-m', 'dsgdn_pyg.train', config_path,
                   metrics_path]
        # torchrun's banner about OMP_NUM_THREADS says it sets 1 when unset: set it here.
        env = dict(os.environ, OMP_NUM_THREADS=os.environ.get('OMP_NUM_THREADS', '1'))
        status = subprocess.call(command, env=env)
        if status != 0 or not os.path.exists(metrics_path):
            how = f"exit status {status}"
            if os.path.exists(failures_path):
                with open(failures_path) as f:
                    how = f.read().strip() or how
            raise DistributedError(f"the {nproc_per_node} training processes failed ({how}); "
                                   f"their messages are above")
        with open(metrics_path) as f:
            return json.load(f)


def lost_peer(error: RuntimeError) -> bool:
    r"""Whether :obj:`error` is a collective that failed because another process is gone."""
    text = str(error)
    return isinstance(error, dist.DistError) or any(
        s in text for s in ('gloo', 'Connection reset by peer', 'Connection closed by peer',
                            'NCCL'))


_TORCHRUN = ('import sys; from dsgdn_pyg.train.distributed import torchrun; '
             'sys.exit(torchrun(sys.argv[1], sys.argv[2:]))')


def torchrun(failures_path: str, argv: Sequence[str]) -> int:
    r"""``torchrun ARGV``, but a failure of its processes ends with the exit status 1 and one
    line in :obj:`failures_path` (which process ended how), instead of torchrun's traceback
    and failure table: the processes have printed their own errors, which these would bury.
    """
    import logging

    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    # Its log line per failed process ("failed (exitcode: 1) local_rank: 0 ...") too.
    logging.getLogger('torch.distributed.elastic').setLevel(logging.CRITICAL)
    try:
        run(parse_args(list(argv)))
    except ChildFailedError as e:
        atomic_write_text(failures_path, ', '.join(
            f"process {rank} " + (f"was killed by {f.signal_name()}" if f.exitcode < 0 else
                                  f"exited with status {f.exitcode}")
            for rank, f in sorted(e.failures.items())))
        return 1
    return 0

