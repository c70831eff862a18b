"""AMB-DSGDN against Sync-TVA on the same data and settings, over several training seeds
(model selected on valid): test weighted F1 / accuracy mean ± std and per-class F1.

    python benchmarks/compare_models.py --dataset synthetic-meld --seeds 0,1,2 \
        --json benchmarks/results/compare_synthetic_meld.json
    python benchmarks/compare_models.py --dataset meld-csv:../shared/data/meld --modalities t \
        --seeds 0,1,2 --set lr=5e-4 --set dropout=0.5 \
        --json benchmarks/results/compare_meld_csv.json

``--set FIELD=VALUE`` sets any TrainConfig field for both models (JSON values); ``--set-sync-tva``
and ``--set-amb-dsgdn`` set one for one model only. Each run uses the trainer's default of one
PyTorch thread on a CPU; runs go one after the other.
"""
import argparse
import json
import os
import statistics
import sys
import time

# The checkout: benchmarks.common, and dsgdn_pyg where it is not installed.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import mean_std, sweep_seeds  # noqa: E402
from dsgdn_pyg.train import TrainConfig  # noqa: E402
from dsgdn_pyg.train.config import parse_key_values  # noqa: E402
from dsgdn_pyg.train.data import load_dataset  # noqa: E402

MODELS = ('amb-dsgdn', 'sync-tva')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--dataset', default='synthetic-meld')
    parser.add_argument('--seeds', default='0,1,2')
    parser.add_argument('--modalities', default=None, help="e.g. 't' (default: all)")
    parser.add_argument('--models', default=','.join(MODELS))
    parser.add_argument('--set', action='append', default=[], metavar='FIELD=VALUE')
    parser.add_argument('--set-amb-dsgdn', action='append', default=[], metavar='FIELD=VALUE')
    parser.add_argument('--set-sync-tva', action='append', default=[], metavar='FIELD=VALUE')
    parser.add_argument('--json', default=None, help='write all results to this file')
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(',')]
    models = args.models.split(',')
    settings = parse_key_values(args.set)
    per_model = {'amb-dsgdn': parse_key_values(args.set_amb_dsgdn),
                 'sync-tva': parse_key_values(args.set_sync_tva)}
    modalities = args.modalities.split(',') if args.modalities else None

    # One corpus for every run (a CSV corpus is featurised once).
    probe = TrainConfig(dataset=args.dataset, modalities=modalities, **settings)
    corpus = load_dataset(probe.dataset, probe.data_seed, probe.loader_options())
    label_names = list(corpus.label_names)
    results = {'dataset': args.dataset, 'modalities': modalities or corpus.modalities,
               'seeds': seeds, 'settings': settings, 'per_model_settings': per_model,
               'label_names': label_names, 'runs': {}}
    start = time.perf_counter()
    for name in models:
        runs = sweep_seeds(
            lambda seed: TrainConfig(dataset=args.dataset, model=name, modalities=modalities,
                                     seed=seed, quiet=True, **{**settings, **per_model[name]}),
            seeds, corpus,
            say=lambda r: print(f"{name:10s} seed {r['seed']}: test wF1 {r['test_wa_f1']:.2f}  "
                                f"(best epoch {r['best_epoch']}, {r['elapsed_s']:.0f} s)",
                                flush=True))
        results['runs'][name] = runs
    results['elapsed_s'] = time.perf_counter() - start

    print(f"\nDataset {args.dataset}, modalities {''.join(results['modalities'])}, seeds "
          f"{args.seeds}, settings {settings or 'preset'} {per_model}, selected on valid\n")
    print('| model | parameters | test weighted F1 | test accuracy | '
          + ' | '.join(f'F1 {c}' for c in label_names) + ' | s / run |')
    print('|---' * (5 + len(label_names)) + '|')
    for name, runs in results['runs'].items():
        per_class = [mean_std([r['per_class_f1'][c] for r in runs]) for c in label_names]
        seconds = statistics.mean(r['elapsed_s'] for r in runs)
        print(f"| {name} | {runs[0]['num_parameters']:,} | "
              f"{mean_std([r['test_wa_f1'] for r in runs])} | "
              f"{mean_std([r['test_wa_acc'] for r in runs])} | " + ' | '.join(per_class)
              + f' | {seconds:.0f} |')
    print(f"\n{results['elapsed_s']:.0f} s in total")
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=1)


if __name__ == '__main__':
    main()
