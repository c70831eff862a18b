"""Text encoders on real transcripts: frozen and fine-tuned MiniLM, alone and under AMB-DSGDN
and Sync-TVA (model selected on valid, test weighted F1 / accuracy over training seeds).

    python benchmarks/text_encoders.py --dataset meld-csv:../shared/data/meld --seeds 0,1,2 \
        --json benchmarks/results/text_encoders_meld.json

Rows: logistic regression (C chosen on valid) on frozen all-MiniLM-L6-v2; the same on the
fine-tuned encoder's features (the encoder alone, no context); AMB-DSGDN without graph;
AMB-DSGDN; Sync-TVA -- the last three with the dataset's preset (``--set FIELD=VALUE``
overrides) on the fine-tuned features. Reports the time of every stage and the per-class F1
of the rarest classes (MELD: fear, disgust). Fine-tuned encoders and features are cached
(``$DSGDN_PYG_CACHE``), so a second run only trains the graph models; the fine-tuning time
is then the one recorded when the cache was built.
"""
import argparse
import json
import os
import platform
import sys
import time

# The checkout: benchmarks.common, and dsgdn_pyg where it is not installed.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import (add_seed_run_arguments, context_free_baseline,  # noqa: E402
                               mean_std, seeds_and_settings, sweep_seeds)
from dsgdn_pyg.datasets import load_corpus  # noqa: E402
from dsgdn_pyg.io import atomic_write_text  # noqa: E402
from dsgdn_pyg.train import TrainConfig  # noqa: E402
from dsgdn_pyg.train.config import DEFAULT_TEXT_FINETUNE_EPOCHS  # noqa: E402

RARE = ('fear', 'disgust')


def timed_corpus(dataset, **options):
    start = time.perf_counter()
    corpus = load_corpus(dataset, seed=0, **options)
    return corpus, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--dataset', default='meld-csv:../shared/data/meld')
    parser.add_argument('--finetune-epochs', type=int, default=DEFAULT_TEXT_FINETUNE_EPOCHS)
    parser.add_argument('--models', default='no-graph,full,sync-tva',
                        help='graph-model rows to run (no-graph, full, sync-tva)')
    parser.add_argument('--no-lr', action='store_true',
                        help='skip the logistic-regression rows (e.g. to run rows in parallel)')
    add_seed_run_arguments(parser,
                           set_help='a TrainConfig field for the graph models, e.g. lr=5e-4')
    args = parser.parse_args()
    seeds, settings = seeds_and_settings(args)
    results = {'dataset': args.dataset, 'seeds': seeds, 'settings': settings,
               'machine': f'{platform.machine()}, {os.cpu_count()} CPUs (shared, busy)',
               'stages_s': {}, 'rows': {}}

    if not args.no_lr:
        frozen, seconds = timed_corpus(args.dataset, text_encoder='minilm',
                                       text_finetune_epochs=0)
        results['stages_s']['load/embed frozen MiniLM (0 if cached)'] = seconds
        start = time.perf_counter()
        results['rows']['LR on frozen MiniLM'] = [context_free_baseline(frozen, standardize=False)]
        results['stages_s']['LR on frozen MiniLM'] = time.perf_counter() - start

    tuned, seconds = timed_corpus(args.dataset, text_encoder='minilm',
                                  text_finetune_epochs=args.finetune_epochs)
    info = tuned.meta['text_featurizer']['info']
    results['finetune'] = info
    results['stages_s']['load/fine-tune+embed (0 if cached)'] = seconds
    results['stages_s']['fine-tune (recorded)'] = info.get('seconds')
    if not args.no_lr:
        start = time.perf_counter()
        results['rows']['fine-tuned encoder alone (LR, no context)'] = [
            context_free_baseline(tuned, standardize=False)]
        results['stages_s']['LR on fine-tuned'] = time.perf_counter() - start

    variants = {'no-graph': ('AMB-DSGDN without graph', {'graph': False}),
                'full': ('AMB-DSGDN', {}),
                'sync-tva': ('Sync-TVA', {'model': 'sync-tva'})}
    for key in filter(None, args.models.split(',')):
        name, overrides = variants[key]
        start = time.perf_counter()
        runs = sweep_seeds(
            lambda seed: TrainConfig(dataset=args.dataset, seed=seed, quiet=True,
                                     **dict(settings, **overrides)), seeds, tuned,
            say=lambda r: print(f"{name:26s} seed {r['seed']}: valid {r['valid_wa_f1']:.2f} "
                                f"test wF1 {r['test_wa_f1']:.2f} ({r['seconds']:.0f} s)",
                                flush=True))
        results['rows'][name] = runs
        results['stages_s'][f'{name}, {len(seeds)} seeds'] = time.perf_counter() - start
        if args.json:  # partial results survive an interrupted run
            atomic_write_text(args.json, json.dumps(results, indent=1))

    print(f"\n{args.dataset}, text only, seeds {args.seeds}, selected on valid, settings "
          f"{settings or 'preset'}\n")
    print('| model | test weighted F1 | test accuracy | ' +
          ' | '.join(f'F1 {c}' for c in RARE) + ' |')
    print('|---|---|---|' + '---|' * len(RARE))
    for name, runs in results['rows'].items():
        rare = ' | '.join(mean_std([r['per_class_f1'].get(c, float('nan')) for r in runs])
                          for c in RARE)
        print(f"| {name} | {mean_std([r['test_wa_f1'] for r in runs])} | "
              f"{mean_std([r['test_wa_acc'] for r in runs])} | {rare} |")
    print('\n| stage | seconds |\n|---|---|')
    for stage, seconds in results['stages_s'].items():
        print(f'| {stage} | {seconds if seconds is None else round(seconds)} |')
    if args.json:
        atomic_write_text(args.json, json.dumps(results, indent=1))


if __name__ == '__main__':
    main()
