r"""Training and inference throughput of AMB-DSGDN on a CUDA device (or the CPU, for comparison),
on the trainer's own path: the dialogues' graphs built once (``train.data.prepare_dialogues``),
batches collated on the host (``train.data.collate``), then ``train.step.train_step`` with the
trainer's optimizer, autocast and loss scaler.

    python benchmarks/cuda_steps.py --scenario iemocap --batch-sizes 16,64,120 --json out.json
    python benchmarks/cuda_steps.py --scenario long-10000 --precisions float32,amp

``iemocap``: 120 dialogues of N(48, 20) utterances clipped to 8..110, batches of 16 (or those
of ``--batch-sizes``), the sparse model against the dense one
(:class:`~dsgdn_pyg.models.DenseAMBDSGDN`, same parameters); ``sparse`` runs the graph blocks as
the model does by default on the device (modalities stacked on CUDA, one by one on the
CPU), ``sparse-stacked`` and ``sparse-one-by-one`` force either way
(``AMBDSGDN.stack_modalities``). ``long-10000``: one dialogue of 10,000 utterances, encoder
context +-20, activation checkpointing, sparse model only. Feature widths t=1024, a=1582,
v=342, hidden 512, window 20. ``amp`` is ``--amp``'s precision (``train.step.amp_dtype``:
bfloat16 on Ampere and later). Times are medians over the timed steps after warm-up steps, with the device synchronised around each; the peak is
``torch.cuda.max_memory_allocated`` (on the CPU, the process's peak resident memory).
"""
import argparse
import json
import statistics
import time

import torch

from dsgdn_pyg.data import make_dialogue
from dsgdn_pyg.memory import release_large_allocations
from dsgdn_pyg.models import AMBDSGDN, DenseAMBDSGDN
from dsgdn_pyg.profile import max_rss_mb
from dsgdn_pyg.train.data import collate, prepare_dialogues
from dsgdn_pyg.train.optim import adam
from dsgdn_pyg.train.step import amp_dtype, autocast, grad_scaler, train_step

DIMS = {'t': 1024, 'a': 1582, 'v': 342}
WINDOW = 20


def scenario(name: str) -> dict:
    if name == 'iemocap':
        gen = torch.Generator().manual_seed(0)
        lengths = (torch.randn(120, generator=gen) * 20 + 48).round().clamp(8, 110).long()
        return dict(lengths=lengths.tolist(), batch_sizes=[16], context_window=None,
                    checkpoint=False, dense=True)
    if name == 'long-10000':
        return dict(lengths=[10_000], batch_sizes=[1], context_window=20, checkpoint=True,
                    dense=False)
    raise SystemExit(f"unknown scenario {name!r}")


def dialogues(lengths, context_window, seed=0):
    gen = torch.Generator().manual_seed(seed)
    raw = []
    for k, length in enumerate(lengths):
        features = {m: torch.randn(length, d, generator=gen) for m, d in DIMS.items()}
        raw.append(make_dialogue(f'd{k}', torch.randint(0, 2, (length, ), generator=gen),
                                 torch.randint(0, 6, (length, ), generator=gen), features))
    transform = AMBDSGDN.dialogue_transform(WINDOW, context_window=context_window)
    return prepare_dialogues(raw, 'tav', WINDOW, transform)


def sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def measure(model, batches, device, amp, train, warmup, steps):
    optimizer = adam(model.parameters(), lr=1e-4) if train else None
    scaler = grad_scaler(device, amp) if train else None
    model.train(train)
    times = []
    for i in range(warmup + steps):
        batch = batches[i % len(batches)]
        sync(device)
        start = time.perf_counter()
        if train:
            train_step(model, batch, optimizer, scaler, amp)
        else:
            with torch.no_grad(), autocast(device, amp):
                model(batch)
        sync(device)
        if i >= warmup:
            times.append((time.perf_counter() - start, batch.num_nodes))
    return {'median_step_s': statistics.median(t for t, _ in times),
            'utterances_per_s': sum(n for _, n in times) / sum(t for t, _ in times),
            'median_batch_utterances': statistics.median(n for _, n in times)}


def run(model, batches, device, precision, train, args):
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
    try:
        out = measure(model, batches, device, precision == 'amp', train, args.warmup,
                      args.steps)
    except Exception as e:  # one failed run is reported, the others still run
        return {'error': f'{type(e).__name__}: {e}'.splitlines()[0][:300]}
    out['peak_gb'] = (torch.cuda.max_memory_allocated(device) if device.type == 'cuda'
                      else max_rss_mb() * 2**20) / 1e9
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--scenario', default='iemocap', choices=['iemocap', 'long-10000'])
    parser.add_argument('--batch-sizes', default=None,
                        help="dialogues per batch, comma-separated (default: the scenario's)")
    parser.add_argument('--impls', default='sparse,sparse-one-by-one,dense',
                        help='of sparse, sparse-stacked, sparse-one-by-one, dense')
    parser.add_argument('--precisions', default='float32,amp',
                        help='float32 and/or amp (CUDA only)')
    parser.add_argument('--device', default='cuda')
    parser.add_argument('--steps', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--json', default=None, metavar='PATH',
                        help='also write the results there')
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == 'cpu':
        release_large_allocations()  # as the command line does

    shape = scenario(args.scenario)
    sizes = [int(s) for s in args.batch_sizes.split(',')] if args.batch_sizes else \
        shape['batch_sizes']
    precisions = [p for p in args.precisions.split(',') if p == 'float32' or
                  device.type == 'cuda']
    data = dialogues(shape['lengths'], shape['context_window'])
    torch.manual_seed(0)
    sparse = AMBDSGDN(DIMS, 6, 2, context_window=shape['context_window'],
                      checkpoint_activations=shape['checkpoint']).to(device)
    sparse.set_epoch(10**6)  # modality dropout active, as in a late epoch
    impls = args.impls.split(',')
    # The sparse variants share the model; each sets how its graph blocks run.
    stacking = {'sparse': None, 'sparse-stacked': True, 'sparse-one-by-one': False}
    models = {name: sparse for name in stacking if name in impls}
    if shape['dense'] and 'dense' in impls:
        models['dense'] = DenseAMBDSGDN(sparse, WINDOW)
    result = {'scenario': args.scenario, 'device': str(device),
              'device_name': torch.cuda.get_device_name(device) if device.type == 'cuda'
              else 'cpu', 'torch': torch.__version__,
              'amp_dtype': str(amp_dtype(device)).replace('torch.', ''),
              'num_parameters': sum(p.numel() for p in sparse.parameters()), 'runs': {}}
    for size in sizes:
        batches = [b.to(device) for b in collate(data, size)]
        # Equal batches only: a short last batch would be timed at another shape.
        batches = [b for b in batches if b.num_graphs == size] or batches
        for name, model in models.items():
            sparse.stack_modalities = stacking.get(name)
            for precision in precisions:
                for train in (True, False):
                    key = (f"{name} {precision} {'train' if train else 'inference'} "
                           f"batch {size}")
                    out = result['runs'][key] = run(model, batches, device, precision, train,
                                                    args)
                    line = f"{key:40s} " + (out['error'] if 'error' in out else
                                            f"{out['utterances_per_s']:10,.0f} utt/s  step "
                                            f"{out['median_step_s'] * 1e3:8.1f} ms  peak "
                                            f"{out['peak_gb']:.2f} GB")
                    print(line, flush=True)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=1)
    failed = [k for k, v in result['runs'].items() if 'error' in v]
    if failed:
        raise SystemExit(f"failed runs: {', '.join(failed)}")


if __name__ == '__main__':
    main()
