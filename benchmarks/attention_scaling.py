r"""Forward+backward time and peak memory of ONE attention layer against dialogue length.

Compares, at :obj:`d = 512` (one head) and window 20:

* ``sparse``: :class:`dsgdn_pyg.nn.DiffGATConv` on the windowed edge list (CSR aggregation),
* ``dense``: :class:`dsgdn_pyg.nn.DenseDiffGATConv` on padded :obj:`[B, L, L]` relation ids,
  sharing the parameters of a ``sparse`` layer (the published formulation),
* ``gat``: PyG's :class:`~torch_geometric.nn.conv.GATConv` with its defaults on the same
  :obj:`edge_index` (it drops and re-adds the self-loops the graph already has).

Every (implementation, case) pair runs in a fresh Python process of its own
(:func:`benchmarks.common.run_in_subprocess`, as in the scenario runner), so that its peak
resident memory belongs to it alone; each starts Python and imports torch first, a few seconds
that no timing includes. Inputs (including the dense relation tensor) are built before the
memory baseline and outside the timed region. One more process per case times the three implementations in turn, step by step,
so that their ratios stay fair when other processes share the cores. Before any timing, the
sparse and dense layers are checked to compute the same outputs on every case.

Usage::

    python benchmarks/attention_scaling.py                 # full run, ~4 min on 2 idle cores
    python benchmarks/attention_scaling.py --quick         # L in {50, 400} + batch, < 1 min
    python benchmarks/attention_scaling.py --json out.json --repeats 10 --lengths 50,100
    python benchmarks/attention_scaling.py --wait-idle 300 # on a shared machine
    python benchmarks/attention_scaling.py --profile       # torch.profiler of the sparse layer
"""
import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from typing import Callable, Dict, List, Optional, Tuple

import torch
from torch import Tensor
from torch_geometric.nn import GATConv

# The checkout: benchmarks.common, and dsgdn_pyg where it is not installed.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import (command_line, disturbed_warning, fmt,  # noqa: E402
                               least_disturbed, machine_line, markdown_table, ratio,
                               run_in_subprocess, verdict)
from dsgdn_pyg.data import NUM_RELATIONS, dialogue_edges  # noqa: E402
from dsgdn_pyg.nn import DenseDiffGATConv, DiffGATConv  # noqa: E402
from dsgdn_pyg.profile import (cpu_readings, current_rss_mb, foreign_cpu_fraction,  # noqa
                               machine_info, max_rss_mb, reset_peak_rss)

CHANNELS = 512
WINDOW = 20
IMPLEMENTATIONS = ('sparse', 'dense', 'gat')
DEFAULT_LENGTHS = (50, 100, 400, 1600, 6400)
QUICK_LENGTHS = (50, 400)
BATCH_SIZE = 16
BATCH_LENGTH_MEAN, BATCH_LENGTH_STD = 48.0, 20.0
BATCH_LENGTH_MIN, BATCH_LENGTH_MAX = 8, 110
SEED = 0
SANITY_ATOL = 1e-4
# One iteration longer than this marks a big case: its repeats are capped to keep the full run
# within the time budget.
SLOW_ITERATION_S = 1.0
BIG_CASE_REPEATS = 3
# Length of the dialogue whose single step pages in the kernels before the "warm" baseline.
KERNEL_WARMUP_LENGTH = 50


@dataclass(frozen=True)
class Case:
    r"""One benchmark input: a batch of dialogues given by their lengths.

    Args:
        name (str): Label in the table, e.g. :obj:`"L=400"` or :obj:`"iemocap-batch"`.
        lengths (tuple of int): Number of utterances of every dialogue.
    """
    name: str
    lengths: Tuple[int, ...]

    @property
    def num_nodes(self) -> int:
        return sum(self.lengths)


def single_dialogue_case(length: int) -> Case:
    return Case(f'L={length}', (length, ))


def iemocap_like_case(seed: int = SEED) -> Case:
    r"""16 dialogue lengths drawn from :math:`\mathcal{N}(48, 20)`, rounded, clipped to
    :obj:`[8, 110]` (the length profile of IEMOCAP)."""
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.normal(BATCH_LENGTH_MEAN, BATCH_LENGTH_STD, (BATCH_SIZE, ), generator=gen)
    lengths = lengths.round().clamp(BATCH_LENGTH_MIN, BATCH_LENGTH_MAX).long()
    return Case(f'iemocap-batch-{BATCH_SIZE}', tuple(int(v) for v in lengths))


# Inputs ##########################################################################################


def sparse_inputs(case: Case, seed: int = SEED) -> Dict[str, Tensor]:
    r"""Node features :obj:`x [N, 512]`, the window-20 typed edges of every dialogue
    concatenated with node offsets (a PyG batch), :obj:`batch [N]` and an upstream gradient
    :obj:`grad [N, 512]`. Speakers are two, each utterance's drawn uniformly at random, so
    turns alternate at random."""
    gen = torch.Generator().manual_seed(seed)
    edge_indices, edge_types, batch = [], [], []
    offset = 0
    for i, length in enumerate(case.lengths):
        speakers = torch.randint(0, 2, (length, ), generator=gen)
        edge_index, edge_type = dialogue_edges(speakers, WINDOW)
        edge_indices.append(edge_index + offset)
        edge_types.append(edge_type)
        batch.append(torch.full((length, ), i, dtype=torch.long))
        offset += length
    x = torch.randn(offset, CHANNELS, generator=gen)
    grad = torch.randn(offset, CHANNELS, generator=gen)
    return dict(x=x, edge_index=torch.cat(edge_indices, dim=1),
                edge_type=torch.cat(edge_types), batch=torch.cat(batch), grad=grad)


def dense_inputs(inputs: Dict[str, Tensor], num_graphs: int) -> Dict[str, Tensor]:
    r"""The padded form of :func:`sparse_inputs`: :obj:`x [B, L, 512]`, relation ids
    :obj:`rel [B, L, L]` (:obj:`rel[b, i, j]` is the id of edge :math:`j \to i`, 0 = none),
    :obj:`mask [B, L]` and the padded upstream gradient (zero on padding)."""
    batch, edge_index = inputs['batch'], inputs['edge_index']
    counts = torch.bincount(batch, minlength=num_graphs)
    ptr = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
    max_length = int(counts.max())
    local = torch.arange(batch.numel()) - ptr[batch]  # position of every node in its dialogue

    def pad(values: Tensor) -> Tensor:
        out = values.new_zeros(num_graphs, max_length, values.size(-1))
        out[batch, local] = values
        return out

    src, dst = edge_index
    rel = torch.zeros(num_graphs, max_length, max_length, dtype=torch.long)
    rel[batch[dst], local[dst], local[src]] = inputs['edge_type']
    mask = torch.zeros(num_graphs, max_length, dtype=torch.bool)
    mask[batch, local] = True
    return dict(x=pad(inputs['x']), rel=rel, mask=mask, grad=pad(inputs['grad']))


def make_diff_conv(seed: int = SEED) -> DiffGATConv:
    torch.manual_seed(seed)
    return DiffGATConv(CHANNELS, CHANNELS, heads=1, num_relations=NUM_RELATIONS)


def make_step(impl: str, case: Case, seed: int = SEED) -> Tuple[Callable[[], None],
                                                                List[Tensor]]:
    r"""Builds the layer and inputs of :obj:`impl` and returns :obj:`(step, leaves)`, where
    :obj:`step()` runs one forward+backward and :obj:`leaves` are the tensors whose
    :obj:`.grad` must be cleared between steps."""
    inputs = sparse_inputs(case, seed)
    if impl == 'sparse':
        conv = make_diff_conv(seed)
        x = inputs['x'].requires_grad_()
        edge_index, edge_type, grad = inputs['edge_index'], inputs['edge_type'], inputs['grad']

        def step() -> None:
            conv(x, edge_index, edge_type).backward(grad)

        return step, [x, *conv.parameters()]

    if impl == 'dense':
        dense = DenseDiffGATConv(make_diff_conv(seed))
        padded = dense_inputs(inputs, len(case.lengths))
        del inputs
        x = padded['x'].requires_grad_()
        rel, mask, grad = padded['rel'], padded['mask'], padded['grad']

        def step() -> None:
            out, _ = dense(x, rel, mask)
            out.backward(grad)

        return step, [x, *dense.parameters()]

    if impl == 'gat':
        torch.manual_seed(seed)
        conv = GATConv(CHANNELS, CHANNELS, heads=1)
        x = inputs['x'].requires_grad_()
        edge_index, grad = inputs['edge_index'], inputs['grad']

        def step() -> None:
            conv(x, edge_index).backward(grad)

        return step, [x, *conv.parameters()]

    raise ValueError(f"'impl' must be one of {IMPLEMENTATIONS}, got {impl!r}")


# Measurement #####################################################################################


def warm_up(step: Callable[[], None], leaves: List[Tensor], warmup: int) -> bool:
    r"""Runs up to :obj:`warmup` untimed steps; stops after the first one if it took longer
    than :obj:`SLOW_ITERATION_S` and returns whether it did (a big case)."""
    for _ in range(warmup):
        for leaf in leaves:
            leaf.grad = None
        start = time.perf_counter()
        step()
        if time.perf_counter() - start > SLOW_ITERATION_S:
            return True
    return False


def timed_step(step: Callable[[], None], leaves: List[Tensor]) -> Tuple[float, float]:
    r"""The wall-clock and the process CPU seconds of one step."""
    for leaf in leaves:
        leaf.grad = None
    start, start_cpu = time.perf_counter(), time.process_time()
    step()
    return time.perf_counter() - start, time.process_time() - start_cpu


def time_steps(step: Callable[[], None], leaves: List[Tensor], repeats: int,
               warmup: int) -> Tuple[List[float], List[float]]:
    r"""Warms up (see :func:`warm_up`), then runs :obj:`repeats` timed steps, at most
    :obj:`BIG_CASE_REPEATS` for a big case. Returns the wall-clock and the process CPU seconds
    of every timed step."""
    if warm_up(step, leaves, warmup):
        repeats = min(repeats, BIG_CASE_REPEATS)
    wall, cpu = zip(*(timed_step(step, leaves) for _ in range(repeats)))
    return list(wall), list(cpu)


def measure(impl: str, case: Case, repeats: int, warmup: int) -> Dict[str, object]:
    r"""Times and memory-profiles one (implementation, case) pair in the calling process.

    Two peaks are taken. :obj:`peak_increase_mb` is the peak RSS over the baseline after
    imports and input creation: it includes the one-off cost of the first call (library code
    paged in, thread pools, BLAS buffers). :obj:`warm_peak_increase_mb` is the peak over the
    RSS after one step on a small dialogue, i.e. the memory the case itself needs.
    """
    rss_import = current_rss_mb()
    step, leaves = make_step(impl, case)
    rss_baseline = current_rss_mb()
    max_rss_baseline = max_rss_mb()
    peak_was_reset = reset_peak_rss()

    warm_step, warm_leaves = make_step(impl, single_dialogue_case(KERNEL_WARMUP_LENGTH))
    warm_step()
    del warm_step, warm_leaves
    max_rss_warm, rss_warm = max_rss_mb(), current_rss_mb()
    reset_peak_rss()

    readings = cpu_readings()
    times, cpu_times = time_steps(step, leaves, repeats, warmup)
    foreign = foreign_cpu_fraction(*readings)
    max_rss_end = max_rss_mb()
    if peak_was_reset:
        peak_increase = max(max_rss_warm, max_rss_end) - rss_baseline
        warm_peak_increase = max_rss_end - rss_warm
    else:  # ru_maxrss may still hold a peak from before the baseline; a lower bound
        peak_increase = max_rss_end - max_rss_baseline
        warm_peak_increase = None
    return dict(
        impl=impl, case=case.name, num_nodes=case.num_nodes, times_s=times,
        median_ms=1e3 * statistics.median(times), min_ms=1e3 * min(times),
        cpu_times_s=cpu_times, median_cpu_ms=1e3 * statistics.median(cpu_times),
        max_warmup=warmup, repeats=len(times), rss_after_import_mb=rss_import,
        input_mb=rss_baseline - rss_import,
        rss_baseline_mb=rss_baseline, max_rss_baseline_mb=max_rss_baseline,
        rss_after_kernel_warmup_mb=rss_warm, peak_rss_mb=max(max_rss_warm, max_rss_end),
        peak_increase_mb=max(peak_increase, 0.0),
        warm_peak_increase_mb=None if warm_peak_increase is None else max(warm_peak_increase,
                                                                          0.0),
        peak_was_reset=peak_was_reset, num_threads=torch.get_num_threads(),
        foreign_cpu_fraction=foreign)


def measure_interleaved(case: Case, repeats: int, warmup: int) -> Dict[str, object]:
    r"""Times all implementations in one process, one step of each in turn (the order rotates
    every round), so that a change in the machine's load hits all of them alike and their
    ratios stay fair on a shared machine. Takes no memory numbers."""
    steps = {impl: make_step(impl, case) for impl in IMPLEMENTATIONS}
    for impl in IMPLEMENTATIONS:
        if warm_up(*steps[impl], warmup):
            repeats = min(repeats, BIG_CASE_REPEATS)
    readings = cpu_readings()
    times: Dict[str, List[float]] = {impl: [] for impl in IMPLEMENTATIONS}
    for round_ in range(repeats):
        shift = round_ % len(IMPLEMENTATIONS)
        for impl in IMPLEMENTATIONS[shift:] + IMPLEMENTATIONS[:shift]:
            times[impl].append(timed_step(*steps[impl])[0])
    return dict(case=case.name, times_s=times, repeats=repeats,
                median_ms={impl: 1e3 * statistics.median(t) for impl, t in times.items()},
                foreign_cpu_fraction=foreign_cpu_fraction(*readings))


def worker_command(case: Case, repeats: int, warmup: int,
                   impl: Optional[str] = None) -> List[str]:
    r"""The command line of the process that runs :func:`measure` of :obj:`impl` on
    :obj:`case`, or :func:`measure_interleaved` if :obj:`impl` is :obj:`None`."""
    job = dict(case=asdict(case), repeats=repeats, warmup=warmup, impl=impl)
    return [sys.executable, '-m', 'benchmarks.attention_scaling', '--worker', json.dumps(job)]


def _worker_main(job_json: str) -> None:
    # The measuring process of worker_command: its result as one JSON line.
    job = json.loads(job_json)
    case = Case(job['case']['name'], tuple(job['case']['lengths']))
    if job['impl'] is None:
        result = measure_interleaved(case, job['repeats'], job['warmup'])
    else:
        result = measure(job['impl'], case, job['repeats'], job['warmup'])
    print(json.dumps(result))


def check_agreement(case: Case) -> Dict[str, float]:
    r"""Runs the sparse and the dense layer once on :obj:`case` and raises if their outputs
    differ by more than :obj:`SANITY_ATOL`, so the timings cannot compare different
    computations. Also reports the largest difference of the input gradients."""
    inputs = sparse_inputs(case)
    conv = make_diff_conv()
    dense = DenseDiffGATConv(conv)
    padded = dense_inputs(inputs, len(case.lengths))

    x = inputs['x'].requires_grad_()
    out_sparse = conv(x, inputs['edge_index'], inputs['edge_type'])
    out_sparse.backward(inputs['grad'])
    x_dense = padded['x'].requires_grad_()
    out_dense, _ = dense(x_dense, padded['rel'], padded['mask'])
    out_dense.backward(padded['grad'])

    mask = padded['mask']
    out_sparse, out_dense = out_sparse.detach(), out_dense.detach()
    out_diff = float((out_sparse - out_dense[mask]).abs().max())
    grad_diff = float((x.grad - x_dense.grad[mask]).abs().max())
    grad_scale = float(x.grad.abs().max())
    if not out_diff < SANITY_ATOL:
        raise RuntimeError(f'{case.name}: sparse and dense outputs differ by {out_diff:.3g} '
                           f'(> {SANITY_ATOL}); the benchmark would compare different things')
    return dict(max_abs_out_diff=out_diff, max_abs_grad_x_diff=grad_diff,
                max_abs_grad_x=grad_scale)


# Report ##########################################################################################


def summarize(cases: List[Case], results: List[Dict[str, object]],
              interleaved: List[Dict[str, object]]) -> List[Dict[str, object]]:
    r"""One row per case with the medians, the same-run ratios (from the isolated and from the
    interleaved timings) and the sparse memory per node."""
    by_key = {(r['impl'], r['case']): r for r in results}
    by_case = {r['case']: r for r in interleaved}
    rows = []
    for case in cases:
        get = {impl: by_key.get((impl, case.name)) for impl in IMPLEMENTATIONS}
        measured = [r for r in [*get.values(), by_case.get(case.name)] if r]
        inter = by_case[case.name]['median_ms'] if case.name in by_case else {}
        ms = {impl: (r['median_ms'] if r else None) for impl, r in get.items()}
        mb = {impl: (r['peak_increase_mb'] if r else None) for impl, r in get.items()}
        sparse_warm_mb = get['sparse']['warm_peak_increase_mb'] if get['sparse'] else None
        rows.append(dict(
            case=case.name, num_graphs=len(case.lengths), num_nodes=case.num_nodes,
            max_length=max(case.lengths), sparse_ms=ms['sparse'], dense_ms=ms['dense'],
            gat_ms=ms['gat'], dense_over_sparse=ratio(ms['dense'], ms['sparse']),
            gat_over_sparse=ratio(ms['gat'], ms['sparse']),
            dense_over_sparse_interleaved=ratio(inter.get('dense'), inter.get('sparse')),
            gat_over_sparse_interleaved=ratio(inter.get('gat'), inter.get('sparse')),
            sparse_peak_mb=mb['sparse'], dense_peak_mb=mb['dense'], gat_peak_mb=mb['gat'],
            sparse_warm_peak_mb=sparse_warm_mb,
            sparse_kb_per_node=ratio(None if mb['sparse'] is None else 1024 * mb['sparse'],
                                      case.num_nodes),
            sparse_warm_kb_per_node=ratio(
                None if sparse_warm_mb is None else 1024 * sparse_warm_mb, case.num_nodes),
            max_foreign_cpu_fraction=max((r['foreign_cpu_fraction'] for r in measured),
                                         default=None)))
    return rows


def scaling_table(rows: List[Dict[str, object]]) -> str:
    r"""The results as a Markdown table, one row per case."""
    def nodes(row: Dict[str, object]) -> str:
        if row['num_graphs'] == 1:
            return str(row['num_nodes'])
        return f"{row['num_nodes']} ({row['num_graphs']} dialogues, max {row['max_length']})"

    def percent(value: Optional[float]) -> str:
        return fmt(None if value is None else 100 * value, 0, '%')

    columns = [
        ('case', lambda row: row['case']),
        ('L (nodes)', nodes),
        ('sparse ms', lambda row: fmt(row['sparse_ms'])),
        ('dense ms', lambda row: fmt(row['dense_ms'])),
        ('GAT ms', lambda row: fmt(row['gat_ms'])),
        ('dense/sparse', lambda row: fmt(row['dense_over_sparse'], 2, 'x')),
        ('GAT/sparse', lambda row: fmt(row['gat_over_sparse'], 2, 'x')),
        ('dense/sparse interleaved', lambda row: fmt(row['dense_over_sparse_interleaved'], 2,
                                                      'x')),
        ('GAT/sparse interleaved', lambda row: fmt(row['gat_over_sparse_interleaved'], 2, 'x')),
        ('sparse peak MB', lambda row: fmt(row['sparse_peak_mb'])),
        ('dense peak MB', lambda row: fmt(row['dense_peak_mb'])),
        ('GAT peak MB', lambda row: fmt(row['gat_peak_mb'])),
        ('sparse KB/node', lambda row: fmt(row['sparse_kb_per_node'])),
        ('sparse warm KB/node', lambda row: fmt(row['sparse_warm_kb_per_node'])),
        ("others' CPU", lambda row: percent(row['max_foreign_cpu_fraction'])),
    ]
    return markdown_table(rows, columns)


def evaluate_targets(rows: List[Dict[str, object]], batch_name: str) -> List[Dict[str, object]]:
    r"""The targets of the issue, each with its measured value (and, for the time targets,
    the value from the interleaved timings) and whether it is met (:obj:`None` if the case
    was not run)."""
    by_case = {row['case']: row for row in rows}

    def value(case: str, key: str) -> Optional[float]:
        return by_case[case][key] if case in by_case else None

    def speed(case: str) -> Tuple[Optional[float], Optional[float]]:
        return (value(case, 'dense_over_sparse'),
                value(case, 'dense_over_sparse_interleaved'))

    checks = [
        ('sparse no slower than dense at L=100 (dense/sparse >= 1)', *speed('L=100'),
         lambda v: v >= 1.0),
        (f'sparse no slower than dense on {batch_name} (dense/sparse >= 1)',
         *speed(batch_name), lambda v: v >= 1.0),
        ('sparse >= 5x faster than dense at L=1600 (dense/sparse >= 5)', *speed('L=1600'),
         lambda v: v >= 5.0),
        ('sparse peak memory per node at L=6400 within 1.5x of L=400 (ratio <= 1.5)',
         ratio(value('L=6400', 'sparse_kb_per_node'), value('L=400', 'sparse_kb_per_node')),
         None, lambda v: v <= 1.5),
        ('same, with the warm peak (first-call overhead excluded)',
         ratio(value('L=6400', 'sparse_warm_kb_per_node'),
                value('L=400', 'sparse_warm_kb_per_node')), None, lambda v: v <= 1.5),
    ]
    return [dict(target=name, value=v, met=None if v is None else bool(ok(v)),
                 value_interleaved=vi, met_interleaved=None if vi is None else bool(ok(vi)))
            for name, v, vi, ok in checks]


def print_profile(cases: List[Case], steps: int = 20, row_limit: int = 20) -> None:
    r"""Prints torch.profiler's top operators (by self CPU time) over :obj:`steps` sparse
    forward+backward steps on every case."""
    from torch.profiler import ProfilerActivity, profile

    for case in cases:
        step, leaves = make_step('sparse', case)
        warm_up(step, leaves, 3)
        start = time.perf_counter()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(steps):
                timed_step(step, leaves)
        wall_ms = 1e3 * (time.perf_counter() - start) / steps
        print(f'\n### sparse DiffGATConv, {case.name} ({case.num_nodes} nodes): {steps} steps, '
              f'{wall_ms:.1f} ms per step under the profiler\n')
        print(prof.key_averages().table(sort_by='self_cpu_time_total', row_limit=row_limit))


def parse_lengths(text: str) -> Tuple[int, ...]:
    try:
        lengths = tuple(int(v) for v in text.split(',') if v.strip())
    except ValueError:
        lengths = ()
    if not lengths or min(lengths) < 1:
        raise argparse.ArgumentTypeError(
            f'must be comma-separated positive integers, e.g. 50,100, got {text!r}')
    return lengths


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--quick', action='store_true',
                        help=f'only L in {QUICK_LENGTHS} and the batch, 5 repeats')
    parser.add_argument('--json', metavar='PATH', help='write all raw numbers to PATH')
    parser.add_argument('--repeats', type=int, default=None,
                        help='timed steps per measurement (default: 20, or 5 with --quick; '
                        f'at most {BIG_CASE_REPEATS} when one step takes > {SLOW_ITERATION_S} s)')
    parser.add_argument('--warmup', type=int, default=2, help='untimed steps (default: 2)')
    parser.add_argument('--lengths', type=parse_lengths, default=None,
                        help='comma-separated single-dialogue lengths '
                        f'(default: {",".join(map(str, DEFAULT_LENGTHS))})')
    parser.add_argument('--no-batch', action='store_true', help='skip the IEMOCAP-like batch')
    parser.add_argument('--wait-idle', type=float, default=0.0, metavar='SECONDS',
                        help='before every measurement, wait up to SECONDS for other '
                        'processes to leave the cores idle, and redo a measurement they '
                        'disturbed (up to --retries times) (default: 0, no waiting)')
    parser.add_argument('--idle-threshold', type=float, default=0.1,
                        help="fraction of the cores other processes may use and still count "
                        "as idle (default: 0.1)")
    parser.add_argument('--retries', type=int, default=2,
                        help='redos of a disturbed measurement with --wait-idle (default: 2)')
    parser.add_argument('--malloc-mmap-threshold', type=int, default=None, metavar='BYTES',
                        help="run the workers with glibc's MALLOC_MMAP_THRESHOLD_=BYTES: a "
                        'fixed threshold stops freed large tensors from staying resident in '
                        'the heap, so the peak RSS follows the live tensors (default: glibc '
                        'default, a dynamic threshold)')
    parser.add_argument('--profile', action='store_true',
                        help='print torch.profiler tables of the sparse layer at L=100 and on '
                        'the batch, then exit')
    args = parser.parse_args(argv)
    if args.repeats is not None and args.repeats < 1:
        parser.error(f"'--repeats' must be at least 1, got {args.repeats}")
    if args.warmup < 1:
        parser.error(f"'--warmup' must be at least 1, got {args.warmup}")
    repeats = args.repeats or (5 if args.quick else 20)
    lengths = args.lengths or (QUICK_LENGTHS if args.quick else DEFAULT_LENGTHS)

    batch_case = iemocap_like_case()
    cases = [single_dialogue_case(length) for length in lengths]
    if not args.no_batch:
        cases.append(batch_case)

    command = command_line('benchmarks/attention_scaling.py', argv)
    info = machine_info()
    print(machine_line(info))
    print(f'Command: {command}')
    print(f'Layer: d={CHANNELS}, heads=1, window={WINDOW}, num_relations={NUM_RELATIONS}; '
          f'batch lengths: {list(batch_case.lengths)}')

    if args.profile:
        print_profile([single_dialogue_case(100), batch_case])
        return

    if args.malloc_mmap_threshold is not None:  # read by glibc when each worker starts
        os.environ['MALLOC_MMAP_THRESHOLD_'] = str(args.malloc_mmap_threshold)

    start = time.perf_counter()

    def measure_when_idle(label: str, command: List[str]) -> Dict[str, object]:
        result = least_disturbed(lambda: run_in_subprocess(command), args.wait_idle,
                                 args.idle_threshold, args.retries)
        if 'error' in result:
            raise RuntimeError(f"{label} failed in its worker: {result['error']}")
        return result

    def log(message: str) -> None:
        print(f'[{time.perf_counter() - start:6.1f}s] {message}', flush=True)

    sanity, results, interleaved = {}, [], []
    for case in cases:
        sanity[case.name] = check_agreement(case)
        log(f"{case.name}: sparse == dense (max |out diff| = "
            f"{sanity[case.name]['max_abs_out_diff']:.2e}, max |grad x diff| = "
            f"{sanity[case.name]['max_abs_grad_x_diff']:.2e})")
        for impl in IMPLEMENTATIONS:
            result = measure_when_idle(f'{impl} on {case.name}',
                                       worker_command(case, repeats, args.warmup, impl))
            results.append(result)
            log(f"  {impl:6s} {result['median_ms']:9.2f} ms (median of {result['repeats']}), "
                f"peak +{result['peak_increase_mb']:.1f} MB, other processes used "
                f"{100 * result['foreign_cpu_fraction']:.0f}% of the cores")
        result = measure_when_idle(f'interleaved timing of {case.name}',
                                   worker_command(case, repeats, args.warmup))
        interleaved.append(result)
        log('  interleaved ' + ', '.join(f'{impl} {ms:.2f} ms' for impl, ms in
                                         result['median_ms'].items()) +
            f" (medians of {result['repeats']}), other processes used "
            f"{100 * result['foreign_cpu_fraction']:.0f}% of the cores")

    rows = summarize(cases, results, interleaved)
    targets = evaluate_targets(rows, batch_case.name)
    print('\n' + scaling_table(rows) + '\n')
    for target in targets:
        line = f"- {target['target']}: {fmt(target['value'], 3)} -> {verdict(target['met'])}"
        if target['value_interleaved'] is not None:
            line += (f"; interleaved {fmt(target['value_interleaved'], 3)} -> "
                     f"{verdict(target['met_interleaved'])}")
        print(line)
    warning = disturbed_warning(
        [f"{r.get('impl', 'interleaved')}/{r['case']} ({100 * r['foreign_cpu_fraction']:.0f}%)"
         for r in results + interleaved if r['foreign_cpu_fraction'] >= args.idle_threshold],
        args.idle_threshold)
    if warning:
        print('\n' + warning)
    print(f'\nTotal wall time: {time.perf_counter() - start:.1f} s')

    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(dict(machine=info, command=command, channels=CHANNELS, window=WINDOW,
                           num_relations=NUM_RELATIONS, warmup=args.warmup, repeats=repeats,
                           idle_threshold=args.idle_threshold, wait_idle_s=args.wait_idle,
                           malloc_mmap_threshold=args.malloc_mmap_threshold,
                           cases=[asdict(case) for case in cases], sanity=sanity,
                           results=results, interleaved=interleaved, rows=rows,
                           targets=targets,
                           wall_time_s=time.perf_counter() - start), f, indent=2)
        print(f'Raw results written to {args.json}')


if __name__ == '__main__':
    if sys.argv[1:2] == ['--worker']:
        _worker_main(*sys.argv[2:])
    else:
        main()
