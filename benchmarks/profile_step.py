r"""Where a training step of the sparse AMB-DSGDN model spends its time: torch.profiler on one
batch of a :mod:`train_throughput` scenario (by default the ``iemocap`` batch closest to 731
utterances), with the share of the matrix products, the operators that take the most
time, and the package's dropout against torch's on a feature-sized tensor.

Usage::

    python benchmarks/profile_step.py                    # iemocap, 2 threads
    python benchmarks/profile_step.py --num-threads 1 --rows 30
    python benchmarks/profile_step.py --device cuda      # launches, syncs, copies per step

On CUDA it reports, per step, the host's time against the GPU kernels' time and the calls that
say whether the host drives the step: kernel launches, stream synchronisations and copies.
"""
import argparse
import os
import sys
import time

try:
    import dsgdn_pyg  # noqa: F401
except ImportError:  # not pip-installed: run from a checkout
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from benchmarks.scenario_runner import (STEADY_STATE_EPOCH, build_model, make_scenario,  # noqa: E402
                                 scenario_batches, scenario_dialogues, train_step)
from dsgdn_pyg.memory import release_large_allocations  # noqa: E402
from dsgdn_pyg.nn.functional import fast_dropout as dropout  # noqa: E402
from dsgdn_pyg.train.optim import adam  # noqa: E402

GEMMS = ('aten::mm', 'aten::addmm', 'aten::bmm')


def median_ms(function, repeats: int) -> float:
    r"""Median wall milliseconds of :obj:`function` over :obj:`repeats` calls, after two."""
    for _ in range(2):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1e3 * sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--scenario', default='iemocap')
    parser.add_argument('--batch', type=int, default=None,
                        help="index of the scenario's batch (default: the one closest to 731 "
                        "utterances)")
    parser.add_argument('--num-threads', type=int, default=2)
    parser.add_argument('--steps', type=int, default=3, help='profiled steps (default: 3)')
    parser.add_argument('--rows', type=int, default=20, help='operators listed (default: 20)')
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args()
    device = torch.device(args.device)

    release_large_allocations()
    torch.set_num_threads(args.num_threads)
    scenario = make_scenario(args.scenario)
    batches = scenario_batches(scenario, scenario_dialogues(scenario))
    index = args.batch if args.batch is not None else \
        min(range(len(batches)), key=lambda i: abs(batches[i].num_nodes - 731))
    batch = batches[index].to(device)
    model, sparse = build_model(scenario, 'sparse')
    model = model.to(device)
    optimizer = adam(model.parameters(), lr=1e-4)
    model.train()
    sparse.set_epoch(STEADY_STATE_EPOCH)
    torch.manual_seed(scenario.seed)

    def step():
        train_step(model, batch, optimizer)
        if device.type == 'cuda':
            torch.cuda.synchronize(device)

    if device.type == 'cuda':
        return profile_cuda(step, batch.num_nodes, args)

    step_ms = median_ms(step, 5)
    print(f'{args.scenario} batch {index}: {batch.num_nodes} utterances, '
          f'{torch.get_num_threads()} threads: {step_ms:.0f} ms per training step '
          f'(median of 5), {1e3 * batch.num_nodes / step_ms:.0f} utt/s')

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(args.steps):
            step()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    gemm = sum(e.self_cpu_time_total for e in events if e.key in GEMMS)
    print(f'profiled {args.steps} steps: {total / 1e3 / args.steps:.0f} ms per step of '
          f'operator self time, matrix products {100 * gemm / total:.0f} %')
    print(events.table(sort_by='self_cpu_time_total', row_limit=args.rows))

    x = torch.randn(batch.num_nodes, 512, requires_grad=True)
    grad = torch.randn_like(x)
    for p in (0.5, 0.2):
        ours = median_ms(lambda: dropout(x, p).backward(grad), 50)
        torchs = median_ms(lambda: F.dropout(x, p).backward(grad), 50)
        print(f'dropout p={p} of [{batch.num_nodes}, 512], forward + backward: package '
              f'{ours:.2f} ms, torch {torchs:.2f} ms')


# The CUDA runtime calls that tell whether the host drives the step.
LAUNCHES = ('cudaLaunchKernel', 'cudaLaunchKernelExC', 'cuLaunchKernel', 'cuLaunchKernelEx')
SYNCS = ('cudaStreamSynchronize', 'cudaDeviceSynchronize', 'cudaEventSynchronize')
COPIES = ('cudaMemcpyAsync', 'cudaMemcpy')


def profile_cuda(step, num_nodes: int, args) -> None:
    step_ms = median_ms(step, 10)
    print(f'{args.scenario}: {num_nodes} utterances per step, {step_ms:.1f} ms per training '
          f'step (median of 10), {1e3 * num_nodes / step_ms:,.0f} utt/s')
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(args.steps):
            step()
    events = prof.key_averages()
    cpu = sum(e.self_cpu_time_total for e in events)
    gpu = sum(getattr(e, 'self_device_time_total', getattr(e, 'self_cuda_time_total', 0))
              for e in events)

    def calls(names):
        return sum(e.count for e in events if e.key in names) / args.steps

    print(f'per step: host {cpu / 1e3 / args.steps:.1f} ms, GPU kernels '
          f'{gpu / 1e3 / args.steps:.1f} ms; kernel launches {calls(LAUNCHES):.0f}, stream '
          f'synchronisations {calls(SYNCS):.0f}, copies {calls(COPIES):.0f}')
    sort = 'self_device_time_total' if hasattr(events[0], 'self_device_time_total') else \
        'self_cuda_time_total'
    print(events.table(sort_by=sort, row_limit=args.rows))


if __name__ == '__main__':
    main()
