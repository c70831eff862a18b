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
import time

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score

from dsgdn_pyg.datasets import load_corpus
from dsgdn_pyg.experiments.report import aggregate, format_mean_std
from dsgdn_pyg.io import atomic_write_text
from dsgdn_pyg.train import TrainConfig, train
from dsgdn_pyg.train.config import DEFAULT_TEXT_FINETUNE_EPOCHS, parse_setting_value

RARE = ('fear', 'disgust')


def utterances(dialogues):
    x = np.concatenate([d.x_t.numpy() for d in dialogues])
    y = np.concatenate([d.y.numpy() for d in dialogues])
    return x[y >= 0], y[y >= 0]


def logistic_regression(corpus, c_grid=(0.01, 0.1, 1.0, 10.0)):
    """Context-free: each utterance's own (already standardised) features; C on valid."""
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = (utterances(corpus.split(s))
                                                for s in ('train', 'valid', 'test'))
    best = None
    for c in c_grid:
        clf = LogisticRegression(C=c, max_iter=3000).fit(x_tr, y_tr)
        score = f1_score(y_va, clf.predict(x_va), average='weighted')
        if best is None or score > best[0]:
            best = (score, c, clf)
    pred = best[2].predict(x_te)
    per_class = f1_score(y_te, pred, average=None, labels=range(corpus.num_classes))
    return {'C': best[1], 'valid_wa_f1': 100 * best[0],
            'test_wa_f1': 100 * f1_score(y_te, pred, average='weighted'),
            'test_wa_acc': 100 * accuracy_score(y_te, pred),
            'per_class_f1': {n: 100 * float(f) for n, f in zip(corpus.label_names, per_class)}}


def timed_corpus(dataset, **options):
    start = time.perf_counter()
    corpus = load_corpus(dataset, seed=0, **options)
    return corpus, time.perf_counter() - start


def _ms(values):
    return format_mean_std(aggregate(values))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--dataset', default='meld-csv:../shared/data/meld')
    parser.add_argument('--seeds', default='0,1,2')
    parser.add_argument('--finetune-epochs', type=int, default=DEFAULT_TEXT_FINETUNE_EPOCHS)
    parser.add_argument('--models', default='no-graph,full,sync-tva',
                        help='graph-model rows to run (no-graph, full, sync-tva)')
    parser.add_argument('--no-lr', action='store_true',
                        help='skip the logistic-regression rows (e.g. to run rows in parallel)')
    parser.add_argument('--set', action='append', default=[], metavar='FIELD=VALUE',
                        help='a TrainConfig field for the graph models, e.g. lr=5e-4')
    parser.add_argument('--json', default=None, help='write all results to this file')
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(',')]
    settings = {key: parse_setting_value(value)
                for key, _, value in (item.partition('=') for item in args.set)}
    results = {'dataset': args.dataset, 'seeds': seeds, 'settings': settings,
               'machine': f'{platform.machine()}, {os.cpu_count()} CPUs (shared, busy)',
               'stages_s': {}, 'rows': {}}

    if not args.no_lr:
        frozen, seconds = timed_corpus(args.dataset, text_encoder='minilm',
                                       text_finetune_epochs=0)
        results['stages_s']['load/embed frozen MiniLM (0 if cached)'] = seconds
        start = time.perf_counter()
        results['rows']['LR on frozen MiniLM'] = [logistic_regression(frozen)]
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
            logistic_regression(tuned)]
        results['stages_s']['LR on fine-tuned'] = time.perf_counter() - start

    variants = {'no-graph': ('AMB-DSGDN without graph', {'graph': False}),
                'full': ('AMB-DSGDN', {}),
                'sync-tva': ('Sync-TVA', {'model': 'sync-tva'})}
    for key in filter(None, args.models.split(',')):
        name, overrides = variants[key]
        runs, start = [], time.perf_counter()
        for seed in seeds:
            config = TrainConfig(dataset=args.dataset, seed=seed, quiet=True,
                                 **dict(settings, **overrides))
            t0 = time.perf_counter()
            metrics = train(config, corpus=tuned)
            runs.append({'seed': seed, 'best_epoch': metrics['best_epoch'],
                         'valid_wa_f1': metrics['valid']['wa_f1'],
                         'test_wa_f1': metrics['test']['wa_f1'],
                         'test_wa_acc': metrics['test']['wa_acc'],
                         'per_class_f1': metrics['test']['per_class_f1'],
                         'seconds': time.perf_counter() - t0})
            print(f"{name:26s} seed {seed}: valid {runs[-1]['valid_wa_f1']:.2f} test wF1 "
                  f"{runs[-1]['test_wa_f1']:.2f} ({runs[-1]['seconds']:.0f} s)", flush=True)
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
        rare = ' | '.join(_ms([r['per_class_f1'].get(c, float('nan')) for r in runs])
                          for c in RARE)
        print(f"| {name} | {_ms([r['test_wa_f1'] for r in runs])} | "
              f"{_ms([r['test_wa_acc'] for r in runs])} | {rare} |")
    print('\n| stage | seconds |\n|---|---|')
    for stage, seconds in results['stages_s'].items():
        print(f'| {stage} | {seconds if seconds is None else round(seconds)} |')
    if args.json:
        atomic_write_text(args.json, json.dumps(results, indent=1))


if __name__ == '__main__':
    main()
