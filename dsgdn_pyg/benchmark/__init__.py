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

Modules: :mod:`~dsgdn_pyg.benchmark.dataset` (the first), :mod:`~dsgdn_pyg.benchmark.scenarios`
(shapes, data, models, the step), :mod:`~dsgdn_pyg.benchmark.flops` (useful and GEMM FLOP/s),
:mod:`~dsgdn_pyg.benchmark.runner` (one process per implementation) and
:mod:`~dsgdn_pyg.benchmark.report`. ``python -m dsgdn_pyg.benchmark NAME IMPL OPTIONS_JSON`` is
the measuring process: it runs :func:`run_scenario` and prints its result as one JSON line.
"""
from dsgdn_pyg.benchmark.dataset import (  # noqa: F401
    benchmark,
)
from dsgdn_pyg.benchmark.scenarios import (  # noqa: F401
    IMPLEMENTATIONS,
    SCENARIO_NAMES,
    IEMOCAP_FEATURE_DIMS,
    DEFAULT_NUM_THREADS,
    STEADY_STATE_EPOCH,
    IDLE_THRESHOLD,
    Scenario,
    clipped_normal_lengths,
    dense_size_reason,
    iemocap_scenario,
    long_scenario,
    SCENARIO_FACTORIES,
    make_scenario,
    scenario_dialogues,
    scenario_batches,
    build_model,
    train_step,
)
from dsgdn_pyg.benchmark.flops import (  # noqa: F401
    count_flops,
    useful_flops_per_dialogue,
    linear_shapes,
    gemm_flops_per_s,
)
from dsgdn_pyg.benchmark.runner import (  # noqa: F401
    max_rss_mb,
    busy_cpu_seconds,
    foreign_cpu_fraction,
    wait_until_idle,
    machine_info,
    run_scenario,
    worker_command,
    run_in_subprocess,
    RESULT_KEYS,
    benchmark_scenario,
)
from dsgdn_pyg.benchmark.report import (  # noqa: F401
    format_scenario_result,
    evaluate_targets,
    markdown_table,
)

__all__ = [
    'benchmark',
    'IMPLEMENTATIONS',
    'SCENARIO_NAMES',
    'IEMOCAP_FEATURE_DIMS',
    'DEFAULT_NUM_THREADS',
    'STEADY_STATE_EPOCH',
    'IDLE_THRESHOLD',
    'Scenario',
    'clipped_normal_lengths',
    'dense_size_reason',
    'iemocap_scenario',
    'long_scenario',
    'SCENARIO_FACTORIES',
    'make_scenario',
    'scenario_dialogues',
    'scenario_batches',
    'build_model',
    'train_step',
    'count_flops',
    'useful_flops_per_dialogue',
    'linear_shapes',
    'gemm_flops_per_s',
    'max_rss_mb',
    'busy_cpu_seconds',
    'foreign_cpu_fraction',
    'wait_until_idle',
    'machine_info',
    'run_scenario',
    'worker_command',
    'run_in_subprocess',
    'RESULT_KEYS',
    'benchmark_scenario',
    'format_scenario_result',
    'evaluate_targets',
    'markdown_table',
]
