"""Does context help? AMB-DSGDN against its own no-graph variant and a context-free logistic
regression on the same features, over several training seeds (model selected on valid).

    python benchmarks/context_baselines.py --dataset synthetic-iemocap --seeds 0,1,2
    python benchmarks/context_baselines.py --dataset meld-csv:../shared/data/meld --seeds 0,1,2 \
        --set lr=5e-4 --set dropout=0.5

Prints a Markdown table (test weighted F1 / accuracy, mean ± std) and, with --json, writes
every run's metrics.
"""
import argparse
import json
import os
import sys
import time

# The checkout: benchmarks.common, and dsgdn_pyg where it is not installed.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import (add_seed_run_arguments, context_free_baseline,  # noqa: E402
                               mean_std, seeds_and_settings, sweep_seeds)
from dsgdn_pyg.datasets import load_corpus  # noqa: E402
from dsgdn_pyg.train import TrainConfig  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--dataset', default='synthetic-iemocap')
    parser.add_argument('--modalities', default=None, help="e.g. 't' (default: all)")
    parser.add_argument('--epochs', type=int, default=None)
    add_seed_run_arguments(parser, set_help='any TrainConfig field for both variants, e.g. lr=5e-4')
    args = parser.parse_args()
    seeds, settings = seeds_and_settings(args)

    corpus = load_corpus(args.dataset, seed=0, **settings.get('data_options', {}))
    modalities = list(args.modalities.split(',')) if args.modalities else corpus.modalities
    results = {'dataset': args.dataset, 'modalities': modalities, 'seeds': seeds,
               'settings': settings, 'runs': {}}
    start = time.perf_counter()
    results['logistic_regression'] = context_free_baseline(corpus, modalities, max_iter=2000)

    variants = {'AMB-DSGDN': {}, 'AMB-DSGDN without graph': {'graph': False}}
    for name, overrides in variants.items():
        runs = sweep_seeds(
            lambda seed: TrainConfig(dataset=args.dataset, modalities=modalities, seed=seed,
                                     epochs=args.epochs, quiet=True, **settings, **overrides),
            seeds, corpus,
            say=lambda r: print(f"{name:26s} seed {r['seed']}: test wF1 {r['test_wa_f1']:.2f}  "
                                f"(best epoch {r['best_epoch']})", flush=True))
        results['runs'][name] = runs
    results['elapsed_s'] = time.perf_counter() - start

    lr = results['logistic_regression']
    print(f"\nDataset {args.dataset}, modalities {''.join(modalities)}, seeds {args.seeds}, "
          f"settings {settings or 'preset'}, selected on valid\n")
    print('| model | test weighted F1 | test accuracy |')
    print('|---|---|---|')
    for name, runs in results['runs'].items():
        print(f"| {name} | {mean_std([r['test_wa_f1'] for r in runs])} | "
              f"{mean_std([r['test_wa_acc'] for r in runs])} |")
    print(f"| logistic regression, context-free (C={lr['C']}) | {lr['test_wa_f1']:.2f} | "
          f"{lr['test_wa_acc']:.2f} |")
    print(f"\n{results['elapsed_s']:.0f} s")
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=1)


if __name__ == '__main__':
    main()
