"""The accuracy cost of causality: AMB-DSGDN reading the whole dialogue against the same model
reading only the past (``causal=True``, what `dsgdn-pyg stream` runs), over several training
seeds, each selected on the validation split.

    python benchmarks/causal_accuracy.py --dataset synthetic-iemocap --seeds 0,1,2 \
        --json benchmarks/results/causal_accuracy_synthetic_iemocap.json
    python benchmarks/causal_accuracy.py --dataset meld-csv:../shared/data/meld --seeds 0,1,2 \
        --set text_encoder=tfidf --set lr=5e-4 --set dropout=0.5 --set weight_decay=7.5e-5 \
        --set batch_size=64 --set epochs=20 \
        --json benchmarks/results/causal_accuracy_meld_csv.json

Runs the two variants seed by seed (full, then causal), so that an interrupted run still holds
paired results; the JSON is rewritten after every run. Prints a Markdown table of test
weighted F1 / accuracy (mean ± std) and the paired difference causal - full.
"""
import argparse
import json
import os
import sys
import time

# The checkout: benchmarks.common, and dsgdn_pyg where it is not installed.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import (add_seed_run_arguments, aggregate, format_mean_std,  # noqa: E402
                               mean_std, seeds_and_settings, sweep_seeds)
from dsgdn_pyg.datasets import load_corpus  # noqa: E402
from dsgdn_pyg.io import atomic_write_text  # noqa: E402
from dsgdn_pyg.train import TrainConfig  # noqa: E402

VARIANTS = {'full context': {}, 'causal (past only)': {'causal': True}}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--dataset', default='synthetic-iemocap')
    add_seed_run_arguments(parser, set_help='any TrainConfig field for both variants, e.g. lr=5e-4')
    args = parser.parse_args()
    seeds, settings = seeds_and_settings(args)

    corpus = load_corpus(args.dataset, seed=0, **settings.get('data_options', {}))
    results = {'dataset': args.dataset, 'seeds': seeds, 'settings': settings,
               'selected_on': 'valid', 'runs': {name: [] for name in VARIANTS}}
    start = time.perf_counter()
    for seed in seeds:  # the variants of a seed side by side: a paired comparison
        for name, overrides in VARIANTS.items():
            results['runs'][name] += sweep_seeds(
                lambda s: TrainConfig(dataset=args.dataset, seed=s, quiet=True, **settings,
                                      **overrides), [seed], corpus,
                say=lambda r: print(f"{name:20s} seed {r['seed']}: test wF1 "
                                    f"{r['test_wa_f1']:.2f}  acc {r['test_wa_acc']:.2f}  "
                                    f"(best epoch {r['best_epoch']})", flush=True))
            results['elapsed_s'] = time.perf_counter() - start
            if args.json:
                os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
                atomic_write_text(args.json, json.dumps(results, indent=1))

    full, causal = (results['runs'][name] for name in VARIANTS)
    paired = [c['test_wa_f1'] - f['test_wa_f1'] for f, c in zip(full, causal)]
    results['causal_minus_full_wa_f1'] = aggregate(paired)
    if args.json:
        atomic_write_text(args.json, json.dumps(results, indent=1))
    print(f"\nDataset {args.dataset}, seeds {args.seeds}, settings {settings or 'preset'}, "
          f"selected on valid\n")
    print('| model | test weighted F1 | test accuracy |')
    print('|---|---|---|')
    for name, runs in results['runs'].items():
        print(f"| {name} | {mean_std([r['test_wa_f1'] for r in runs])} | "
              f"{mean_std([r['test_wa_acc'] for r in runs])} |")
    print(f"\ncausal - full, paired by seed: "
          f"{format_mean_std(results['causal_minus_full_wa_f1'])} weighted F1")
    print(f"{results['elapsed_s']:.0f} s")


if __name__ == '__main__':
    main()
