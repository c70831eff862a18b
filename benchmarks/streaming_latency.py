"""Latency of live recognition: milliseconds per pushed utterance of
:class:`dsgdn_pyg.inference.streaming.StreamingRecognizer` at dialogue positions 10, 100, 1,000 and
10,000, against recomputing the causal model over the whole dialogue so far for every new
utterance, and the time to embed one transcript with the TF-IDF featurizer.

    python benchmarks/streaming_latency.py --json benchmarks/results/streaming_latency.json

The model is a randomly initialised causal AMB-DSGDN at IEMOCAP sizes (features t 1024,
a 1582, v 342; hidden 512; graph window 20; encoder context window 20; 6 classes): latency
does not depend on the weights' values. One dialogue of two alternating speakers with random
features is pushed utterance by utterance up to the last position + --samples; "at position
p" are the pushes of utterances p .. p + samples - 1. The recompute runs the model's ordinary
forward pass over the prefix ending at the new utterance (graph built beforehand, not timed,
which favours the recompute), --recompute-samples times per position (fewer at 10,000).
Everything on one PyTorch thread; every time is reported as CPU time of that thread and as
wall-clock time (see Clock). The floor of a push on this machine, one matrix-vector product
per weight matrix of the model (a push reads every weight once), is measured in the same run.
The accuracy cost of causality is measured by benchmarks/causal_accuracy.py.
"""
import argparse
import json
import os
import platform
import time

import numpy as np
import torch

from dsgdn_pyg.data import make_dialogue
from dsgdn_pyg.io import atomic_write_text
from dsgdn_pyg.models import AMBDSGDN
from dsgdn_pyg.inference.streaming import StreamingRecognizer

DIMS = {'t': 1024, 'a': 1582, 'v': 342}


def percentiles(seconds, cpu_seconds=None):
    ms = np.asarray(seconds) * 1e3
    out = {'p50_ms': float(np.percentile(ms, 50)), 'p99_ms': float(np.percentile(ms, 99)),
           'mean_ms': float(ms.mean()), 'n': int(ms.size)}
    if cpu_seconds is not None:
        cpu = np.asarray(cpu_seconds) * 1e3
        out.update(cpu_p50_ms=float(np.percentile(cpu, 50)),
                   cpu_p99_ms=float(np.percentile(cpu, 99)), cpu_mean_ms=float(cpu.mean()))
    return out


class Clock:
    r"""Wall-clock and CPU time of the calling thread (all of the work with one PyTorch
    thread). On a shared, overloaded machine the wall clock also counts the time other
    processes held the core; the CPU time is what the work itself took."""
    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.thread_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.thread_time() - self.cpu


def cache_bytes(recognizer, dialogue):
    state = recognizer._dialogues[dialogue].cache
    rows = [t for q in state.layers.values() for t in q]
    rows += [t for q in state.encoder.values() for kv in q for t in kv]
    return sum(t.numel() * t.element_size() for t in rows)


def weight_read_floor(model, samples):
    r"""Time of one row through every weight matrix of the model (one matrix-vector product
    each, embedding tables left out): a push must read every weight once, so on a CPU whose
    caches cannot hold the model this bounds a push's time from below."""
    weights = [p.detach() for name, p in model.named_parameters()
               if p.dim() == 2 and not name.endswith('_emb.weight')]
    rows = [torch.randn(1, w.size(1)) for w in weights]
    wall, cpu = [], []
    for k in range(samples + 5):
        with torch.no_grad(), Clock() as clock:
            for w, x in zip(weights, rows):
                torch.nn.functional.linear(x, w)
        if k >= 5:  # after a warm-up
            wall.append(clock.wall)
            cpu.append(clock.cpu)
    return dict(percentiles(wall, cpu), matrices=len(weights),
                megabytes=sum(w.numel() * w.element_size() for w in weights) / 1e6)


def text_embedding(csv_dir, samples):
    r"""Per-utterance time of TfidfFeaturizer.transform([text]) (the featurizer a MELD
    checkpoint stores: fitted on MELD's training transcripts), on MELD test utterances."""
    import csv

    from dsgdn_pyg.text import TfidfFeaturizer

    def utterances(name):
        with open(os.path.join(csv_dir, name), newline='', encoding='utf-8') as f:
            return [row['Utterance'] for row in csv.DictReader(f)]

    start = time.perf_counter()
    featurizer = TfidfFeaturizer().fit(utterances('train_sent_emo.csv'))
    fit_s = time.perf_counter() - start
    texts = utterances('test_sent_emo.csv')[:samples]
    featurizer.transform(texts[:5])  # warm-up
    wall, cpu = [], []
    for text in texts:
        with Clock() as clock:
            featurizer.transform([text])
        wall.append(clock.wall)
        cpu.append(clock.cpu)
    return dict(percentiles(wall, cpu), out_channels=featurizer.out_channels, fit_s=fit_s,
                corpus=csv_dir)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--positions', default='10,100,1000,10000')
    parser.add_argument('--samples', type=int, default=100,
                        help='timed pushes per position')
    parser.add_argument('--recompute-samples', type=int, default=20,
                        help='timed recomputes per position up to 1,000')
    parser.add_argument('--recompute-samples-long', type=int, default=3,
                        help='timed recomputes at positions above 1,000')
    parser.add_argument('--hidden', type=int, default=512)
    parser.add_argument('--window', type=int, default=20)
    parser.add_argument('--context-window', type=int, default=20)
    parser.add_argument('--text-corpus', default='../shared/data/meld',
                        help='MELD CSV directory for the text-embedding time (skipped if '
                             'absent)')
    parser.add_argument('--json', default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    positions = [int(p) for p in args.positions.split(',')]
    torch.manual_seed(0)
    model = AMBDSGDN(DIMS, num_classes=6, num_speakers=2, hidden_channels=args.hidden,
                     context_window=args.context_window, causal=True).eval()
    recognizer = StreamingRecognizer(model, args.window)
    length = max(positions) + args.samples
    gen = torch.Generator().manual_seed(0)
    features = {m: torch.randn(length, d, generator=gen) for m, d in DIMS.items()}
    speakers = torch.arange(length) % 2

    results = {
        'machine': f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores "
                   f"(shared), torch {torch.__version__}, 1 thread",
        'model': dict(feature_dims=DIMS, hidden_channels=args.hidden, window=args.window,
                      context_window=args.context_window, num_classes=6,
                      weights='random initialisation',
                      parameters=sum(p.numel() for p in model.parameters())),
        'samples': args.samples, 'streaming': {}, 'recompute': {}}

    def save():
        if args.json:
            atomic_write_text(args.json, json.dumps(results, indent=1))

    wall = {p: [] for p in positions}
    cpu = {p: [] for p in positions}
    start = time.perf_counter()
    for i in range(length):
        row = {m: x[i] for m, x in features.items()}
        with Clock() as clock:
            recognizer.push(int(speakers[i]), row)
        for p in positions:
            if p <= i < p + args.samples:
                wall[p].append(clock.wall)
                cpu[p].append(clock.cpu)
        if (i + 1) % 1000 == 0 or i + 1 == length:
            print(f"pushed {i + 1} utterances ({time.perf_counter() - start:.0f} s)",
                  flush=True)
    for p in positions:
        results['streaming'][p] = percentiles(wall[p], cpu[p])
    results['cache_bytes_per_dialogue'] = cache_bytes(recognizer, 'default')
    results['weight_read_floor'] = weight_read_floor(model, args.samples)
    save()

    transform = AMBDSGDN.dialogue_transform(args.window, **model.config())
    for p in positions:
        n = args.recompute_samples if p <= 1000 else args.recompute_samples_long
        wall, cpu = [], []
        for k in range(n):
            end = p + k + 1
            data = transform(make_dialogue('d', speakers[:end], torch.zeros(end),
                                           {m: x[:end] for m, x in features.items()}))
            with torch.inference_mode(), Clock() as clock:
                model(data)
            wall.append(clock.wall)
            cpu.append(clock.cpu)
        results['recompute'][p] = percentiles(wall, cpu)
        print(f"recompute at {p}: {results['recompute'][p]['cpu_p50_ms']:.1f} ms CPU", flush=True)
        save()

    if args.text_corpus and os.path.isdir(args.text_corpus):
        results['text_embedding'] = text_embedding(args.text_corpus, 300)

    print(f"\n{results['machine']}; {results['model']['parameters']:,} parameters "
          f"(random initialisation)\n")
    print('| position | push p50 ms CPU (wall) | push p99 ms CPU (wall) | recompute p50 ms CPU '
          '(wall) | speed-up, CPU p50 |')
    print('|---|---|---|---|---|')
    for p in positions:
        s, r = results['streaming'][p], results['recompute'][p]
        results['recompute'][p]['speedup_cpu_p50'] = r['cpu_p50_ms'] / s['cpu_p50_ms']
        print(f"| {p:,} | {s['cpu_p50_ms']:.2f} ({s['p50_ms']:.2f}) | {s['cpu_p99_ms']:.2f} "
              f"({s['p99_ms']:.2f}) | {r['cpu_p50_ms']:.1f} ({r['p50_ms']:.1f}), n={r['n']} | "
              f"{r['cpu_p50_ms'] / s['cpu_p50_ms']:.0f}x |")
    if 100 in results['streaming'] and 10000 in results['streaming']:
        for key in ('cpu_p50_ms', 'p50_ms'):
            ratio = results['streaming'][10000][key] / results['streaming'][100][key]
            results[f'{key}_10000_over_100'] = ratio
            print(f"\n{key} at 10,000 / at 100: {ratio:.2f}")
    print(f"cache per open dialogue: {results['cache_bytes_per_dialogue'] / 1e6:.2f} MB")
    floor = results['weight_read_floor']
    print(f"one row through every weight matrix ({floor['matrices']}, "
          f"{floor['megabytes']:.1f} MB): p50 {floor['cpu_p50_ms']:.2f} ms CPU "
          f"({floor['p50_ms']:.2f} wall)")
    if 'text_embedding' in results:
        te = results['text_embedding']
        print(f"TF-IDF text embedding ({te['out_channels']}-d): p50 {te['cpu_p50_ms']:.2f} ms "
              f"CPU ({te['p50_ms']:.2f} wall), p99 {te['cpu_p99_ms']:.2f} ms CPU "
              f"({te['p99_ms']:.2f} wall)")
    save()


if __name__ == '__main__':
    main()
