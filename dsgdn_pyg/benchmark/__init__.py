r"""Throughput of training steps and inference, in utterances per second: what
``dsgdn-pyg benchmark`` runs.

* :func:`benchmark` (:mod:`~dsgdn_pyg.benchmark.dataset`) times the sparse
  :class:`~dsgdn_pyg.models.AMBDSGDN` on a dataset preset with the run settings of
  :class:`~dsgdn_pyg.train.TrainConfig` (``dsgdn-pyg benchmark``).
* :func:`benchmark_scenario` (:mod:`~dsgdn_pyg.benchmark.runner`) compares the sparse model
  with the dense (padded :obj:`[B, L, L]`) one on synthetic dialogues of fixed shapes
  (:mod:`~dsgdn_pyg.benchmark.scenarios`), each implementation in its own process so that its
  peak memory is its own (``dsgdn-pyg benchmark --scenario NAME``). It also reports the useful
  FLOP/s (the unpadded work) as a fraction of the machine's GEMM FLOP/s at the model's matrix
  shapes. ``python -m dsgdn_pyg.benchmark NAME IMPL OPTIONS_JSON`` is the measuring process.

The measuring tools (memory, machine load, FLOPs) are in :mod:`dsgdn_pyg.profile`; the
benchmark scripts, their targets and reports in ``benchmarks/`` of the repository.
"""
from dsgdn_pyg.benchmark.dataset import benchmark
from dsgdn_pyg.benchmark.runner import (benchmark_scenario, format_scenario_result,
                                        run_in_subprocess, run_scenario,
                                        useful_flops_per_dialogue, worker_command)
from dsgdn_pyg.benchmark.scenarios import (DEFAULT_NUM_THREADS, IDLE_THRESHOLD,
                                           IMPLEMENTATIONS, SCENARIO_NAMES,
                                           STEADY_STATE_EPOCH, Scenario, build_model,
                                           clipped_normal_lengths, make_scenario,
                                           scenario_batches, scenario_dialogues, train_step)

__all__ = [
    'benchmark',
    'benchmark_scenario',
    'format_scenario_result',
    'run_in_subprocess',
    'run_scenario',
    'useful_flops_per_dialogue',
    'worker_command',
    'DEFAULT_NUM_THREADS',
    'IDLE_THRESHOLD',
    'IMPLEMENTATIONS',
    'SCENARIO_NAMES',
    'STEADY_STATE_EPOCH',
    'Scenario',
    'build_model',
    'clipped_normal_lengths',
    'make_scenario',
    'scenario_batches',
    'scenario_dialogues',
    'train_step',
]
