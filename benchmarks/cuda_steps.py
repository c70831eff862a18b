r"""Training and inference throughput of AMB-DSGDN on a CUDA device (or the CPU, for comparison),
on the shapes of ``dsgdn-pyg benchmark --scenario`` (whose runner times the CPU only).

    python benchmarks/cuda_steps.py --scenario iemocap --json
    python benchmarks/cuda_steps.py --scenario long-10000 --json

``iemocap``: 120 dialogues of N(48, 20) utterances clipped to 8..110, batches of 16, sparse
model against the dense one (:class:`~dsgdn_pyg.models.DenseAMBDSGDN`, same parameters), with
and without AMP. ``long-10000``: one dialogue of 10,000 utterances, encoder context +-20,
activation checkpointing, sparse model only. Feature widths t=1024, a=1582, v=342, hidden 512.
Times are medians over the timed steps after warm-up steps, with the device synchronised; the
peak is ``torch.cuda.max_memory_allocated``.
"""
import argparse
import json
import statistics
import time

import torch
from torch_geometric.data import Batch

from dsgdn_pyg.data import DialogueGraph, make_dialogue
from dsgdn_pyg.loss import multimodal_loss
from dsgdn_pyg.models import AMBDSGDN, DenseAMBDSGDN
from dsgdn_pyg.train.optim import adam

DIMS = {'t': 1024, 'a': 1582, 'v': 342}


def dialogues(lengths, window, context_window, seed=0):
    gen = torch.Generator().manual_seed(seed)
    transform = DialogueGraph(window, context_window=context_window)
    out = []
    for k, length in enumerate(lengths):
        features = {m: torch.randn(length, d, generator=gen) for m, d in DIMS.items()}
        out.append(transform(make_dialogue(
            f'd{k}', torch.randint(0, 2, (length, ), generator=gen),
            torch.randint(0, 6, (length, ), generator=gen), features)))
    return out


def scenario(name):
    if name == 'iemocap':
        gen = torch.Generator().manual_seed(0)
        lengths = (torch.randn(120, generator=gen) * 20 + 48).round().clamp(8, 110).long()
        return dict(lengths=lengths.tolist(), batch_size=16, window=20, context_window=None,
                    checkpoint=False, dense=True)
    if name == 'long-10000':
        return dict(lengths=[10_000], batch_size=1, window=20, context_window=20,
                    checkpoint=True, dense=False)
    raise SystemExit(f"unknown scenario {name!r}")


def sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def measure(model, batches, device, amp, train, warmup, steps):
    optimizer = adam(model.parameters(), lr=1e-4) if train else None
    model.train(train)
    times = []
    for i in range(warmup + steps):
        batch = batches[i % len(batches)]
        sync(device)
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.float16, enabled=amp), \
                torch.set_grad_enabled(train):
            out = model(batch)
        if train:
            loss, _ = multimodal_loss(out.fused.float(),
                                      {m: v.float() for m, v in out.logits.items()},
                                      batch.y, mask=out.keep)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        sync(device)
        if i >= warmup:
            times.append((time.perf_counter() - start, batch.num_nodes))
    seconds = statistics.median(t for t, _ in times)
    utterances = statistics.median(n for _, n in times)
    return {'median_step_s': seconds, 'utterances_per_s': sum(n for _, n in times)
            / sum(t for t, _ in times), 'median_batch_utterances': utterances}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--scenario', default='iemocap', choices=['iemocap', 'long-10000'])
    parser.add_argument('--device', default='cuda')
    parser.add_argument('--steps', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--json', action='store_true')
    args = parser.parse_args()
    device = torch.device(args.device)
    shape = scenario(args.scenario)
    data = dialogues(shape['lengths'], shape['window'], shape['context_window'])
    size = shape['batch_size']
    batches = [Batch.from_data_list(data[i:i + size]).to(device)
               for i in range(0, len(data), size)]
    torch.manual_seed(0)
    sparse = AMBDSGDN(DIMS, 6, 2, context_window=shape['context_window'],
                      checkpoint_activations=shape['checkpoint']).to(device)
    models = {'sparse': sparse}
    if shape['dense']:
        models['dense'] = DenseAMBDSGDN(sparse, shape['window'])
    result = {'scenario': args.scenario, 'device': str(device),
              'device_name': torch.cuda.get_device_name(device) if device.type == 'cuda'
              else 'cpu', 'torch': torch.__version__,
              'num_parameters': sum(p.numel() for p in sparse.parameters()), 'runs': {}}
    for name, model in models.items():
        for amp in ([False, True] if device.type == 'cuda' else [False]):
            for train in (True, False):
                if device.type == 'cuda':
                    torch.cuda.reset_peak_memory_stats(device)
                key = f"{name}{'+amp' if amp else ''} {'train' if train else 'inference'}"
                run = measure(model, batches, device, amp, train, args.warmup, args.steps)
                if device.type == 'cuda':
                    run['peak_gb'] = torch.cuda.max_memory_allocated(device) / 1e9
                result['runs'][key] = run
                if not args.json:
                    print(f"{key:28s} {run['utterances_per_s']:10,.0f} utt/s  "
                          f"step {run['median_step_s'] * 1e3:8.1f} ms"
                          + (f"  peak {run['peak_gb']:.2f} GB" if 'peak_gb' in run else ''),
                          flush=True)
    if args.json:
        print(json.dumps(result))


if __name__ == '__main__':
    main()
