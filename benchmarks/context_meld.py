"""Dialogue context in the encoder's input, and the graph on top, on MELD (issue 22): test
weighted F1 / accuracy over training seeds, every model selected on MELD dev.

    python benchmarks/context_meld.py --dataset meld-csv:../shared/data/meld --seeds 0,1,2 \
        --json benchmarks/results/context_meld.json

Rows, in this order (partial results are written after each): the fine-tuned encoder
reading P previous and F following turns (``--context``, default 3,1), target-pooled, under
AMB-DSGDN, the same features without graph and under a logistic regression; the same encoder
fine-tuned without context (the default: no graph, LR, AMB-DSGDN); the causal variant of
the default (``no-context-causal``: the same no-context features under a causal AMB-DSGDN,
which reads past turns only); the causal variant of the context rows (``causal``: an encoder
fine-tuned on past turns only, under a causal AMB-DSGDN); the context features under
Sync-TVA. The default's rows alone, and its causal variant, on features fine-tuned once
(``--set text_encoder=mpnet``: the same rows with all-mpnet-base-v2, their names prefixed
``mpnet:``):

    python benchmarks/context_meld.py --dataset meld-csv:../shared/data/meld --seeds 0,1,2 \
        --rows no-context,no-context-causal --json benchmarks/results/context_meld_default.json

The encoders are
fine-tuned once (seed 0; cached by content in ``$DSGDN_PYG_CACHE``); the seeds are those of
the models on top. Reports each stage's time (fine-tuning per epoch as recorded when the
encoder was fine-tuned, embedding, training per seed), the 1-minute load average, and the
per-class F1 of fear and disgust.
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
                               seed_rows_table, seeds_and_settings)
from dsgdn_pyg.datasets import load_corpus  # noqa: E402
from dsgdn_pyg.io import atomic_write_text  # noqa: E402
from dsgdn_pyg.train import TrainConfig, train  # noqa: E402

RARE = ('fear', 'disgust')
GROUPS = ('context', 'no-context', 'no-context-causal', 'causal', 'sync-tva')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--dataset', default='meld-csv:../shared/data/meld')
    parser.add_argument('--context', default='3,1', help='P,F of the context rows')
    parser.add_argument('--rows', default='context,no-context,causal,sync-tva',
                        help=f"groups of rows to run (of {', '.join(GROUPS)}); they run in "
                             f"that order")
    add_seed_run_arguments(parser, set_help='a TrainConfig field for every row, e.g. lr=5e-4')
    args = parser.parse_args()
    seeds, settings = seeds_and_settings(args)
    results = {'command': 'python ' + ' '.join(sys.argv), 'dataset': args.dataset,
               'seeds': seeds, 'settings': settings,
               'machine': f'{platform.machine()}, {os.cpu_count()} CPUs (shared)',
               'stages': {}, 'encoders': {}, 'rows': {}}

    def save():
        if args.json:
            atomic_write_text(args.json, json.dumps(results, indent=1))

    def corpus_of(name, **overrides):
        config = TrainConfig(dataset=args.dataset, quiet=True, **dict(settings, **overrides))
        start, load = time.perf_counter(), os.getloadavg()[0]
        corpus = load_corpus(args.dataset, seed=0, **config.loader_options())
        info = corpus.meta['text_featurizer'].get('info', {})
        results['encoders'][name] = {
            'text_context': config.text_context, 'text_pooling': config.text_pooling,
            'max_seq_length': corpus.meta['text_featurizer'].get('max_seq_length'),
            'finetune_valid_wa_f1': info.get('valid_weighted_f1'),
            'finetune_epoch_seconds': info.get('epoch_seconds'),
            'finetune_seconds': info.get('seconds'),
            'train_word_pieces': info.get('train_word_pieces')}
        results['stages'][f'{name}: load (fine-tune if not cached) + embed'] = {
            'seconds': round(time.perf_counter() - start, 1), 'load_1min': load}
        save()
        return corpus

    def lr_row(name, corpus):
        start, load = time.perf_counter(), os.getloadavg()[0]
        results['rows'][name] = [context_free_baseline(corpus, standardize=False)]
        results['stages'][name] = {'seconds': round(time.perf_counter() - start, 1),
                                   'load_1min': load}
        save()

    def model_rows(name, corpus, **overrides):
        runs = []
        for seed in seeds:
            config = TrainConfig(dataset=args.dataset, seed=seed, quiet=True,
                                 **dict(settings, **overrides))
            start, load = time.perf_counter(), os.getloadavg()[0]
            metrics = train(config, corpus=corpus)
            runs.append({'seed': seed, 'best_epoch': metrics['best_epoch'],
                         'valid_wa_f1': metrics['valid']['wa_f1'],
                         'test_wa_f1': metrics['test']['wa_f1'],
                         'test_wa_acc': metrics['test']['wa_acc'],
                         'per_class_f1': metrics['test']['per_class_f1'],
                         'seconds': round(time.perf_counter() - start, 1), 'load_1min': load})
            print(f"{name:44s} seed {seed}: valid {runs[-1]['valid_wa_f1']:.2f} test wF1 "
                  f"{runs[-1]['test_wa_f1']:.2f} ({runs[-1]['seconds']:.0f} s, load "
                  f"{load:.1f})", flush=True)
            results['rows'][name] = runs
            save()

    # Another encoder (--set text_encoder=mpnet) names its rows, and none is the default's.
    encoder = settings.get('text_encoder')
    tag = f'{encoder}: ' if encoder else ''
    default = '' if encoder else ' (default)'
    groups = args.rows.split(',')
    unknown = sorted(set(groups) - set(GROUPS))
    if unknown:  # a misspelt group would otherwise run nothing, silently
        parser.error(f"--rows: unknown group(s) {', '.join(unknown)}; expected {', '.join(GROUPS)}")
    c = {'text_context': args.context}
    past = args.context.split(',')[0]
    if 'context' in groups or 'sync-tva' in groups:
        context = corpus_of(f'context {args.context}', **c)
    if 'context' in groups:
        model_rows(f'{tag}context {args.context} + AMB-DSGDN', context, **c)
        model_rows(f'{tag}context {args.context}, no graph', context, graph=False, **c)
        lr_row(f'{tag}context {args.context}, LR on the encoder features', context)
    if 'no-context' in groups or 'no-context-causal' in groups:
        # text_context 0: the features of the default `train` command (the same cache key).
        alone = corpus_of('no context', text_context=0)
    if 'no-context' in groups:
        model_rows(f'{tag}no context, no graph', alone, text_context=0, graph=False)
        lr_row(f'{tag}no context, LR on the encoder features', alone)
        model_rows(f'{tag}no context + AMB-DSGDN{default}', alone, text_context=0)
    if 'no-context-causal' in groups:
        # The default reads no context in its encoder, so its causal variant differs only in
        # the graph: no edge from a following utterance.
        model_rows(f'{tag}causal: no context + causal AMB-DSGDN', alone, text_context=0,
                   causal=True)
    if 'causal' in groups:
        causal = corpus_of(f'causal (context {past},0)', causal=True, text_context=past)
        model_rows(f'{tag}causal: context {past},0 + causal AMB-DSGDN', causal, causal=True,
                   text_context=past)
    if 'sync-tva' in groups:
        model_rows(f'{tag}context {args.context} + Sync-TVA', context, model='sync-tva', **c)

    print(f"\n{args.dataset}, text only, seeds {args.seeds}, selected on valid\n")
    print(seed_rows_table(results['rows'], RARE))
    print('\n| encoder | dev wF1 per fine-tuning epoch | s per epoch |\n|---|---|---|')
    for name, e in results['encoders'].items():
        print(f"| {name} | {e['finetune_valid_wa_f1']} | {e['finetune_epoch_seconds']} |")
    print('\n| stage | seconds | load (1 min) |\n|---|---|---|')
    for stage, s in results['stages'].items():
        print(f"| {stage} | {s['seconds']} | {s['load_1min']:.1f} |")
    save()


if __name__ == '__main__':
    main()
