r"""Data-parallel training throughput with 1 and N processes on the same global batches, and
the largest parameter difference between the runs.

    python benchmarks/ddp_throughput.py --nproc 1,2 --epochs 2 \
        --json benchmarks/results/ddp_throughput.json

Every run is ``torchrun --standalone --nproc-per-node N`` of the trainer
(``python -m dsgdn_pyg.train``) on synthetic-iemocap with the full-size model
(hidden 512, 13 M parameters) and batches of 16 dialogues, one PyTorch thread per process,
dropout 0 (its masks are drawn per process; without it the N-process run computes what one
process computes, so the final parameters can be compared). Throughput is the training
utterances of an epoch over the epoch's training time (``train_seconds`` of ``log.jsonl``,
evaluation excluded); the first epoch includes warm-up, so the last epoch is reported.

With ``--reference-threads 2``, one more one-process run with two PyTorch threads gives the
scale of the difference that summing in another order alone makes after the same steps
(Adam turns rounding differences of near-zero gradients into steps of up to lr).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import torch

from dsgdn_pyg.datasets import load_corpus
from dsgdn_pyg.train import TrainConfig, load_checkpoint


def run(nproc: int, config: TrainConfig, work: str, tag: str = '') -> dict:
    out = os.path.join(work, f'n{nproc}{tag}')
    config_path = out + '.json'
    with open(config_path, 'w') as f:
        json.dump(TrainConfig(**{**config.to_dict(), 'out': out}).to_dict(), f)
    start = time.perf_counter()
    subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone',
                    f'--nproc-per-node={nproc}', '-m', 'dsgdn_pyg.train',
                    config_path, out + '.metrics.json'], check=True)
    wall = time.perf_counter() - start
    log = [json.loads(line) for line in open(os.path.join(out, 'log.jsonl'))]
    return {'out': out, 'wall_s': wall, 'epochs': log}


def worst_difference(a: str, b: str) -> dict:
    sa, sb = load_checkpoint(a)['model_state'], load_checkpoint(b)['model_state']
    worst, worst_key, key_bias = 0.0, None, 0.0
    for key in sa:
        diff = (sa[key] - sb[key]).abs()
        if key.endswith('in_proj_bias'):  # [query; key; value] biases
            key_bias = max(key_bias, diff.chunk(3)[1].max().item())
            diff = torch.cat([diff.chunk(3)[0], diff.chunk(3)[2]])
        if diff.numel() and diff.max().item() > worst:
            worst, worst_key = diff.max().item(), key
    return {'worst': worst, 'worst_parameter': worst_key, 'attention_key_bias': key_bias}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--nproc', default='1,2')
    parser.add_argument('--epochs', type=int, default=2)
    parser.add_argument('--reference-threads', type=int, default=0)
    parser.add_argument('--json', metavar='PATH')
    args = parser.parse_args()
    config = TrainConfig(dataset='synthetic-iemocap', epochs=args.epochs, dropout=0.0,
                         device='cpu', num_threads=1, quiet=True)
    corpus = load_corpus(config.dataset, seed=config.data_seed)
    utterances = sum(d.num_nodes for d in corpus.train)
    result = {'config': config.to_dict(), 'train_dialogues': len(corpus.train),
              'train_utterances': utterances, 'cpu_count': os.cpu_count(),
              'load_before': os.getloadavg(), 'runs': {}}
    with tempfile.TemporaryDirectory() as work:
        counts = [int(n) for n in args.nproc.split(',')]
        for n in counts:
            r = run(n, config, work)
            last = r['epochs'][-1]
            entry = {'wall_s': r['wall_s'],
                     'train_seconds_per_epoch': [e['train_seconds'] for e in r['epochs']],
                     'utterances_per_s': utterances / last['train_seconds'],
                     'loss_per_epoch': [e['loss'] for e in r['epochs']],
                     'test_wa_f1_per_epoch': [e['test_wa_f1'] for e in r['epochs']]}
            result['runs'][str(n)] = entry
            print(f"{n} process(es): {entry['utterances_per_s']:.0f} utt/s in the last epoch "
                  f"({last['train_seconds']:.1f} s), wall {r['wall_s']:.0f} s", flush=True)
            result['runs'][str(n)]['checkpoint'] = os.path.join(r['out'], 'last.pt')
        for n in counts[1:]:
            diff = worst_difference(result['runs'][str(counts[0])]['checkpoint'],
                                    result['runs'][str(n)]['checkpoint'])
            result['runs'][str(n)]['parameter_difference'] = diff
            print(f"{n} vs {counts[0]} process(es): worst parameter difference "
                  f"{diff['worst']:.2e} ({diff['worst_parameter']}); attention key biases "
                  f"{diff['attention_key_bias']:.2e}")
        if args.reference_threads:
            threads = TrainConfig(**{**config.to_dict(), 'num_threads': args.reference_threads})
            r = run(1, threads, work, tag=f't{args.reference_threads}')
            diff = worst_difference(result['runs'][str(counts[0])]['checkpoint'],
                                    os.path.join(r['out'], 'last.pt'))
            result['reference_threads'] = {'num_threads': args.reference_threads,
                                           'parameter_difference': diff,
                                           'loss_per_epoch': [e['loss'] for e in r['epochs']]}
            print(f"1 process, {args.reference_threads} threads vs 1 thread: worst parameter "
                  f"difference {diff['worst']:.2e} ({diff['worst_parameter']})")
        for entry in result['runs'].values():
            del entry['checkpoint']
    result['load_after'] = os.getloadavg()
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=2)


if __name__ == '__main__':
    main()
