r"""Training throughput, inference time and peak memory of the whole AMB-DSGDN model: the sparse
implementation (PyG batches, windowed edge lists) against the dense one (padded :obj:`[B, L, L]`
relation ids, the published formulation), on synthetic dialogues of fixed shapes.

Scenarios (:func:`dsgdn_pyg.benchmark.make_scenario`; features 1024/1582/342, hidden 512,
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
import shlex
import sys
import time
from typing import Any, Dict, List, Optional

try:
    import dsgdn_pyg  # noqa: F401
except ImportError:  # not pip-installed: run from a checkout
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dsgdn_pyg.benchmark import (DEFAULT_NUM_THREADS, IDLE_THRESHOLD, IMPLEMENTATIONS,  # noqa
                                 SCENARIO_NAMES, benchmark_scenario, evaluate_targets,
                                 format_scenario_result, machine_info, markdown_table)

DEFAULT_JSON = os.path.join('benchmarks', 'results', 'train_throughput.json')


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

    command = ' '.join(shlex.quote(a) for a in
                       ['python', 'benchmarks/train_throughput.py',
                        *(sys.argv[1:] if argv is None else argv)])
    info = dict(machine_info(), num_threads=args.num_threads)
    print(f"Machine: {info['cpu_model']}, {info['cpu_count']} cores, torch {info['torch']}, "
          f"PyG {info['torch_geometric']}, Python {info['python']}, "
          f"torch.set_num_threads({args.num_threads})")
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
    print('\n' + markdown_table(results) + '\n')
    verdicts = {True: 'MET', False: 'NOT MET', None: 'not run'}
    for target in targets:
        value = '-' if target['value'] is None else f"{target['value']:.3g}"
        print(f"- {target['target']}: {value} -> {verdicts[target['met']]}")
    disturbed = [f"{r['scenario']}/{impl} ({100 * r[impl]['foreign_cpu_fraction']:.0f}%)"
                 for r in results for impl in IMPLEMENTATIONS
                 if impl in r and r[impl]['foreign_cpu_fraction'] >= args.idle_threshold]
    if disturbed:
        print(f'\nWARNING: other processes used >= {100 * args.idle_threshold:.0f}% of the '
              f"cores during: {', '.join(disturbed)}; those timings are inflated")
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
