r"""Training throughput, inference time and peak memory of the whole AMB-DSGDN model: the sparse
implementation (PyG batches, windowed edge lists) against the dense one (padded :obj:`[B, L, L]`
relation ids, the published formulation), on synthetic dialogues of fixed shapes.

Scenarios (:func:`benchmarks.scenarios.make_scenario`; features 1024/1582/342, hidden 512,
window 20, 2 speakers, 6 classes, Adam, modality dropout active):

* ``iemocap``: 120 dialogues, lengths N(48, 20) clipped to 8..110, 16 dialogues per batch,
* ``long-400``: 4 dialogues of 400 utterances, one per batch, encoder context +-20,
* ``long-1600``: 4 dialogues of 1,600 utterances, two per batch, whole-dialogue encoder,
* ``long-10000``: one dialogue of 10,000 utterances, encoder context +-20, sparse only.

Every (scenario, implementation) runs in its own Python process, which generates its data, so
that its peak resident memory (``ru_maxrss``) is its own. The useful FLOPs are those of the
sparse model's training step on every dialogue alone (the unpadded work, counted with
``torch.utils.flop_counter``); divided by the time per step of each implementation and by the
``torch.mm`` FLOP/s measured at the model's matrix shapes, they give the fraction of the
machine's GEMM speed each implementation turns into useful work.

Usage::

    python benchmarks/train_throughput.py                       # all scenarios
    python benchmarks/train_throughput.py --scenarios iemocap --steps 16
    python benchmarks/train_throughput.py --wait-idle 300       # on a shared machine
"""
import argparse
import json
import os
import sys
import time
from typing import Any, Dict, List, Optional

# The checkout: benchmarks.common, and dsgdn_pyg where it is not installed.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import (check_targets, command_line, disturbed_warning,  # noqa: E402
                               fmt, lookup, machine_line, markdown_table, ratio, verdict)
from benchmarks.scenario_runner import (DEFAULT_NUM_THREADS, IDLE_THRESHOLD,  # noqa: E402
                                 IMPLEMENTATIONS, SCENARIO_NAMES, benchmark_scenario,
                                 format_scenario_result)
from dsgdn_pyg.profile import machine_info  # noqa: E402

DEFAULT_JSON = os.path.join('benchmarks', 'results', 'train_throughput.json')


def evaluate_targets(results: Dict[str, Dict[str, Any]]) -> List[Dict[str, Any]]:
    r"""The targets of the speed work (issue 5) against :func:`benchmark_scenario` results
    keyed by scenario name: each with its measured value and whether it is met."""
    return check_targets([
        ('iemocap: sparse train utt/s >= 2.5x dense',
         lookup(results, 'iemocap', 'ratios', 'train_speedup'), lambda v: v >= 2.5),
        ('iemocap: sparse peak memory <= 0.4x dense',
         lookup(results, 'iemocap', 'ratios', 'peak_rss'), lambda v: v <= 0.4),
        ('iemocap: sparse train >= 1,350 utt/s',
         lookup(results, 'iemocap', 'sparse', 'train_utt_per_s'), lambda v: v >= 1350),
        ('iemocap: sparse peak memory <= 760 MB',
         lookup(results, 'iemocap', 'sparse', 'peak_rss_mb'), lambda v: v <= 760),
        ('long-1600: sparse train utt/s >= 10x dense',
         lookup(results, 'long-1600', 'ratios', 'train_speedup'), lambda v: v >= 10),
        ('long-10000: peak memory of the training step < 2 GB (2,048 MB)',
         lookup(results, 'long-10000', 'sparse', 'peak_rss_mb'), lambda v: v < 2048),
        ('long-10000: train time per utterance <= 1.5x long-400',
         ratio(lookup(results, 'long-10000', 'sparse', 'train_ms_per_utt'),
               lookup(results, 'long-400', 'sparse', 'train_ms_per_utt')), lambda v: v <= 1.5),
    ])


def _impl(impl: str, key: str, digits: int, scale: float = 1.0):
    def cell(result):
        value = lookup(result, impl, key)
        return fmt(None if value is None else value * scale, digits)
    return cell


def _ratio(key: str):
    return lambda result: fmt(lookup(result, 'ratios', key), 2, 'x')


#: The columns of the results table, one row per scenario.
COLUMNS = [
    ('scenario', lambda result: result['scenario']),
    ('utterances', lambda result: f"{result['num_utterances']:,}"),
    ('sparse train utt/s', _impl('sparse', 'train_utt_per_s', 1)),
    ('dense train utt/s', _impl('dense', 'train_utt_per_s', 1)),
    ('train speed-up', _ratio('train_speedup')),
    ('sparse infer ms/utt', _impl('sparse', 'infer_ms_per_utt', 3)),
    ('dense infer ms/utt', _impl('dense', 'infer_ms_per_utt', 3)),
    ('sparse peak MB', _impl('sparse', 'peak_rss_mb', 0)),
    ('dense peak MB', _impl('dense', 'peak_rss_mb', 0)),
    ('peak sparse/dense', _ratio('peak_rss')),
    ('sparse train ms/utt', _impl('sparse', 'train_ms_per_utt', 3)),
    ('useful GFLOP/s sparse', _impl('sparse', 'useful_flops_per_s', 2, 1e-9)),
    ('useful GFLOP/s dense', _impl('dense', 'useful_flops_per_s', 2, 1e-9)),
    ('GEMM GFLOP/s', _impl('sparse', 'gemm_flops_per_s', 1, 1e-9)),
    ('sparse % of GEMM', _impl('sparse', 'gemm_fraction', 1, 100)),
    ('dense % of GEMM', _impl('dense', 'gemm_fraction', 1, 100)),
]


def parse_names(text: str, allowed, what: str) -> List[str]:
    names = [v.strip() for v in text.split(',') if v.strip()]
    unknown = [v for v in names if v not in allowed]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"must be comma-separated {what} among {','.join(allowed)}, got {text!r}")
    return names


def main(argv: Optional[List[str]] = None) -> Dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--scenarios', default=','.join(SCENARIO_NAMES),
                        type=lambda t: parse_names(t, SCENARIO_NAMES, 'scenarios'),
                        help=f"comma-separated (default: {','.join(SCENARIO_NAMES)})")
    parser.add_argument('--impls', default=','.join(IMPLEMENTATIONS),
                        type=lambda t: parse_names(t, IMPLEMENTATIONS, 'implementations'),
                        help='comma-separated (default: sparse,dense; dense is skipped where '
                        'it cannot run)')
    parser.add_argument('--json', metavar='PATH', default=DEFAULT_JSON,
                        help=f'write all raw numbers to PATH (default: {DEFAULT_JSON}; '
                        "'' = do not write)")
    parser.add_argument('--steps', type=int, default=None,
                        help="timed training steps (default: the scenario's, one pass over "
                        'its batches; 2 for long-10000)')
    parser.add_argument('--warmup', type=int, default=None,
                        help='untimed training steps first (default: 1)')
    parser.add_argument('--num-threads', type=int, default=DEFAULT_NUM_THREADS,
                        help=f'torch.set_num_threads of every process (default: '
                        f'{DEFAULT_NUM_THREADS}, the cores of the reference machine)')
    parser.add_argument('--context-window', type=int, default=None, metavar='K',
                        help='override the encoder context of every scenario (default: whole '
                        'dialogue for iemocap and long-1600, 20 for long-400 and long-10000)')
    parser.add_argument('--repeats', type=int, default=1,
                        help='rounds of measurements alternating the implementations; each '
                        'reports its run of median training throughput (default: 1)')
    parser.add_argument('--checkpoint-activations', action=argparse.BooleanOptionalAction,
                        default=None, help='override activation checkpointing of every '
                        'scenario (default: on for long-400 and long-10000 only)')
    parser.add_argument('--mmap-threshold', type=int, default=None, metavar='BYTES',
                        help="glibc's mmap threshold in every measuring process (default: "
                        "4 MB, as the command line sets; lower returns freed memory sooner "
                        "at the cost of page faults)")
    parser.add_argument('--wait-idle', type=float, default=0.0, metavar='SECONDS',
                        help='before every process, wait up to SECONDS for other processes to '
                        'leave the cores idle, and redo a measurement they disturbed (up to '
                        '--retries times) (default: 0, no waiting)')
    parser.add_argument('--idle-threshold', type=float, default=IDLE_THRESHOLD,
                        help='fraction of the cores other processes may use and still count '
                        f'as idle (default: {IDLE_THRESHOLD})')
    parser.add_argument('--retries', type=int, default=2,
                        help='redos of a disturbed measurement with --wait-idle (default: 2)')
    parser.add_argument('--timeout', type=float, default=None, metavar='SECONDS',
                        help='time limit of every process (default: none)')
    args = parser.parse_args(argv)
    for name in ('steps', 'num_threads'):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"'--{name.replace('_', '-')}' must be at least 1, got "
                         f"{getattr(args, name)}")
    if args.warmup is not None and args.warmup < 0:
        parser.error(f"'--warmup' must be at least 0, got {args.warmup}")
    if args.mmap_threshold is not None and args.mmap_threshold < 1:
        parser.error(f"'--mmap-threshold' must be at least 1, got {args.mmap_threshold}")
    if args.repeats < 1:
        parser.error(f"'--repeats' must be at least 1, got {args.repeats}")
    if args.context_window is not None and args.context_window < 0:
        parser.error(f"'--context-window' must be at least 0, got {args.context_window}")

    command = command_line('benchmarks/train_throughput.py', argv)
    info = dict(machine_info(), num_threads=args.num_threads)
    print(machine_line(info))
    print(f'Command: {command}', flush=True)

    start = time.perf_counter()

    def log(message: str) -> None:
        print(f'[{time.perf_counter() - start:7.1f}s] {message}', flush=True)

    overrides = {} if args.context_window is None else dict(context_window=args.context_window)
    if args.checkpoint_activations is not None:
        overrides['checkpoint_activations'] = args.checkpoint_activations
    results = []
    for name in args.scenarios:
        results.append(benchmark_scenario(
            name, args.impls, steps=args.steps, warmup_steps=args.warmup,
            num_threads=args.num_threads, wait_idle_s=args.wait_idle,
            idle_threshold=args.idle_threshold, retries=args.retries, timeout_s=args.timeout,
            repeats=args.repeats, mmap_threshold=args.mmap_threshold, log=log,
            **overrides))
        print(format_scenario_result(results[-1]), flush=True)

    targets = evaluate_targets({r['scenario']: r for r in results})
    print('\n' + markdown_table(results, COLUMNS) + '\n')
    for target in targets:
        value = '-' if target['value'] is None else f"{target['value']:.3g}"
        print(f"- {target['target']}: {value} -> {verdict(target['met'])}")
    warning = disturbed_warning(
        [f"{r['scenario']}/{impl} ({100 * r[impl]['foreign_cpu_fraction']:.0f}%)"
         for r in results for impl in IMPLEMENTATIONS
         if impl in r and r[impl]['foreign_cpu_fraction'] >= args.idle_threshold],
        args.idle_threshold)
    if warning:
        print('\n' + warning)
    elapsed = time.perf_counter() - start
    print(f'\nTotal wall time: {elapsed:.1f} s')

    report = dict(machine=info, command=command, results=results, targets=targets,
                  wall_time_s=elapsed)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(report, f, indent=2)
        print(f'Raw results written to {args.json}')
    return report


if __name__ == '__main__':
    main()
