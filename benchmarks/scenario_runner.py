r"""Measuring one implementation in this process (:func:`run_scenario`) and each in its own
process (:func:`benchmark_scenario`), so that a peak memory is that implementation's own;
:func:`format_scenario_result` prints the result. ``dsgdn-pyg benchmark --scenario NAME`` runs
:func:`benchmark_scenario`; ``python -m benchmarks.scenario_runner NAME IMPL OPTIONS_JSON``
(from the repository's root) is the measuring process.
"""
import json
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch
from torch_geometric.data import Batch, Data

from benchmarks.common import least_disturbed, run_in_subprocess
from benchmarks.scenarios import (DEFAULT_NUM_THREADS, IDLE_THRESHOLD,  # noqa: F401
                                  IMPLEMENTATIONS, SCENARIO_NAMES, STEADY_STATE_EPOCH,
                                  Scenario, build_model, clipped_normal_lengths, make_scenario,
                                  scenario_batches, scenario_dialogues)
from dsgdn_pyg.models import AMBDSGDN
from dsgdn_pyg.profile import (count_flops, cpu_readings, current_rss_mb, foreign_cpu_fraction,
                               gemm_flops_per_s, linear_shapes, max_rss_mb)
from dsgdn_pyg.train.optim import adam
from dsgdn_pyg.train.step import train_step


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

    # The data lives once, as the batches (the trainer holds the dataset and one batch).
    batches = scenario_batches(scenario, scenario_dialogues(scenario))
    rss_data = current_rss_mb()
    model, sparse = build_model(scenario, impl)
    optimizer = adam(model.parameters(), lr=1e-4)
    model.train()
    sparse.set_epoch(STEADY_STATE_EPOCH)
    order = [i % len(batches) for i in range(warmup_steps + steps)]

    torch.manual_seed(scenario.seed)
    # Every step pays for its batch's index structures, as with the trainer's freshly
    # collated batches, though the batches here are reused.
    for i in order[:warmup_steps]:
        train_step(model, batches[i], optimizer)
    # The part that does not grow with the batch: the libraries, the data, the parameters,
    # their gradients and Adam's moments (all there after a step).
    rss_fixed = current_rss_mb()
    readings = cpu_readings()
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
        peak_rss_mb=peak_rss, rss_at_start_mb=rss_start, rss_after_data_mb=rss_data,
        rss_fixed_mb=rss_fixed, rss_growing_mb=peak_rss - rss_fixed,
        train_steps=steps, warmup_steps=warmup_steps, train_utterances=train_utterances,
        train_seconds=train_seconds, train_ms_per_utt=1e3 * train_seconds / train_utterances,
        infer_utterances=scenario.num_utterances, infer_seconds=infer_seconds,
        num_parameters=sum(p.numel() for p in model.parameters()),
        foreign_cpu_fraction=foreign)
    if flops:
        model.train()
        dialogues = scenario_dialogues(scenario)
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


def worker_command(name: str, impl: str, options: Dict[str, Any]) -> List[str]:
    r"""The command line of the process that measures one implementation."""
    return [sys.executable, '-m', 'benchmarks.scenario_runner', name, impl, json.dumps(options)]


def measure_in_subprocess(name: str, impl: str, timeout_s: Optional[float] = None,
                          **options: Any) -> Dict[str, Any]:
    r"""Runs :func:`run_scenario` in a fresh Python process and returns its result, or
    :obj:`{'error': reason}` if the process failed, was killed (e.g. out of memory) or timed
    out (see :func:`benchmarks.common.run_in_subprocess`)."""
    return run_in_subprocess(worker_command(name, impl, options), timeout_s)


RESULT_KEYS = ('train_utt_per_s', 'infer_ms_per_utt', 'peak_rss_mb')


def benchmark_scenario(name: str, impls: Sequence[str] = IMPLEMENTATIONS,
                       steps: Optional[int] = None, warmup_steps: Optional[int] = None,
                       num_threads: int = DEFAULT_NUM_THREADS, wait_idle_s: float = 0.0,
                       idle_threshold: float = IDLE_THRESHOLD, retries: int = 2,
                       timeout_s: Optional[float] = None, repeats: int = 1,
                       mmap_threshold: Optional[int] = None,
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
        repeats (int, optional): Rounds of measurements, alternating the implementations;
            each implementation reports its run of median training throughput, with the
            throughput of every run under :obj:`"train_utt_per_s_runs"`. (default: :obj:`1`)
        mmap_threshold (int, optional): glibc mmap threshold in bytes of every measuring
            process (:func:`dsgdn_pyg.memory.release_large_allocations`). (default: the
            command line's, 4 MB)
        log (callable, optional): Receives progress lines.
        **overrides: Scenario overrides (see :func:`make_scenario`).

    Returns:
        dict: ``{"scenario": name, "sparse": {...}, "dense": {...}, "skipped": {impl:
        reason}, "ratios": {...}, "description": ..., "num_threads": ...}``; every present
        implementation has ``train_utt_per_s``, ``infer_ms_per_utt`` and ``peak_rss_mb``.
    """
    if repeats < 1:
        raise ValueError(f"'repeats' must be at least 1, got {repeats}")
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
    if mmap_threshold is not None:
        options['mmap_threshold'] = mmap_threshold
    runs: Dict[str, List[Dict[str, Any]]] = {}
    # Rounds alternate the implementations, so that a slow spell of the machine does not
    # land on one of them only.
    for _ in range(repeats):
        for impl in dict.fromkeys(impls):
            if impl in result['skipped']:
                continue
            if impl == 'dense' and scenario.dense_reason is not None:
                result['skipped'][impl] = scenario.dense_reason
                log(f'{scenario.name}/{impl}: not run: {scenario.dense_reason}')
                continue
            # Dense counts the same useful FLOPs as sparse; count them only without sparse,
            # and once.
            flops = (impl == 'sparse' or 'sparse' not in impls) and impl not in runs
            measured = _measure(scenario.name, impl, options, flops, wait_idle_s,
                                idle_threshold, retries, timeout_s, log)
            if 'error' in measured:
                result['skipped'][impl] = measured['error']
                runs.pop(impl, None)
                log(f"{scenario.name}/{impl}: failed: {measured['error']}")
                continue
            runs.setdefault(impl, []).append(measured)
            log(f"{scenario.name}/{impl}: {measured['train_utt_per_s']:.1f} utt/s train, "
                f"{measured['infer_ms_per_utt']:.3f} ms/utt inference, peak "
                f"{measured['peak_rss_mb']:.0f} MB")
    for impl, measured in runs.items():
        result[impl] = _median_run(measured)
    _add_ratios(result)
    return result


def _measure(name: str, impl: str, options: Dict[str, Any], flops: bool, wait_idle_s: float,
             idle_threshold: float, retries: int, timeout_s: Optional[float],
             log: Callable[[str], None]) -> Dict[str, Any]:
    def attempt() -> Dict[str, Any]:
        log(f'{name}/{impl}: running')
        return measure_in_subprocess(name, impl, timeout_s, flops=flops, **options)

    return least_disturbed(attempt, wait_idle_s, idle_threshold, retries)


def _median_run(runs: List[Dict[str, Any]]) -> Dict[str, Any]:
    # The run of median training throughput (the lower middle one of an even count), with
    # every run's throughput and peak alongside; the FLOP counts come from the first run.
    ordered = sorted(runs, key=lambda r: r['train_utt_per_s'])
    median = dict(ordered[(len(ordered) - 1) // 2])
    for key in ('useful_flops', 'useful_flops_per_utt', 'gemm_flops_per_s', 'gemm_rows',
                'gemm_shapes'):
        if key in runs[0]:
            median[key] = runs[0][key]
    if 'useful_flops' in median:
        median['useful_flops_per_s'] = median['useful_flops'] / median['train_seconds']
        median['gemm_fraction'] = median['useful_flops_per_s'] / median['gemm_flops_per_s']
    median['runs'] = len(runs)
    median['train_utt_per_s_runs'] = [r['train_utt_per_s'] for r in runs]
    median['peak_rss_mb_runs'] = [r['peak_rss_mb'] for r in runs]
    return median


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




def format_scenario_result(result: Dict[str, Any]) -> str:
    r"""Human-readable lines of a :func:`benchmark_scenario` result."""
    lines = [f"{result['description']} ({result['num_threads']} threads)"]
    for impl in IMPLEMENTATIONS:
        if impl in result:
            r = result[impl]
            line = f"{impl:6s} train {r['train_utt_per_s']:10.1f} utt/s"
            if r.get('runs', 1) > 1:
                runs = r['train_utt_per_s_runs']
                line += f" (median of {len(runs)} runs, {min(runs):.1f}..{max(runs):.1f})"
            line += (f", inference {r['infer_ms_per_utt']:.3f} ms/utt, peak RSS "
                     f"{r['peak_rss_mb']:.0f} MB")
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


def _worker_main(argv: Sequence[str]) -> None:
    r"""The measuring process: prints :func:`run_scenario`'s result as one JSON line."""
    from dsgdn_pyg.memory import DEFAULT_MMAP_THRESHOLD, release_large_allocations

    name, impl, options = argv
    options = json.loads(options)
    # As in the command line, for both implementations alike.
    threshold = options.pop('mmap_threshold', None) or DEFAULT_MMAP_THRESHOLD
    release_large_allocations(threshold)
    result = run_scenario(name, impl, **options)
    result['mmap_threshold'] = threshold
    print(json.dumps(result))


if __name__ == '__main__':
    _worker_main(sys.argv[1:])
