"""Context in the sentence encoder's input (``text_context`` = P previous and F following
turns with their speakers, ``text_pooling`` target or mean), measured on MELD's *dev* split
only: the fine-tuned encoder's own validation
weighted F1 (what fine-tuning selects the epoch on) and, with ``--graph``, AMB-DSGDN's best
validation weighted F1 on the features (the transcript preset). The test split is neither
printed nor stored, so it cannot steer the choice.

    python benchmarks/text_context.py --dataset meld-csv:../shared/data/meld \
        --contexts '0;3,1;5,2' --poolings target,mean --graph \
        --json benchmarks/results/text_context_meld.json

All fine-tunings run first (stage 1: the encoder's own dev F1), then, with ``--graph``, the
features of every split and AMB-DSGDN for each K (stage 2). Fine-tuned encoders and features are cached by content hash (``$DSGDN_PYG_CACHE``), so K = 0
reuses the default run's cache; the fine-tuning time is the one recorded when it was built.
"""
import argparse
import json
import os
import platform
import time

from dsgdn_pyg.datasets import load_corpus
from dsgdn_pyg.io import atomic_write_text
from dsgdn_pyg.train import TrainConfig, train
from dsgdn_pyg.train.config import DEFAULT_TEXT_FINETUNE_EPOCHS


def finetuned(directory, k, pooling='target', epochs=DEFAULT_TEXT_FINETUNE_EPOCHS, **extra):
    # Stage 1, the encoder alone: exactly the fine-tuning the dataset runs (same inputs and
    # options, hence the same cache entry), without embedding every split.
    from dsgdn_pyg.datasets.csv_format import (MELD_LABELS, labelled_inputs, read_dialogue_rows,
                                               resolve_mapping)
    from dsgdn_pyg.text.choice import text_encoder_options
    from dsgdn_pyg.text.finetune import finetune_encoder

    mapping = resolve_mapping()
    groups = {s: read_dialogue_rows(os.path.join(directory, name), mapping)
              for s, name in mapping['files'].items() if s in ('train', 'valid')}
    ids = {s: list(g) for s, g in groups.items()}
    index = {name: i for i, name in enumerate(MELD_LABELS)}
    train = labelled_inputs(groups, ids, index, 'train', k)
    valid = labelled_inputs(groups, ids, index, 'valid', k)
    _, options = text_encoder_options('minilm', epochs, extra, k, pooling)
    return finetune_encoder(*train, *valid, num_classes=len(index), model='minilm',
                            quiet=False, **options)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--dataset', default='meld-csv:../shared/data/meld')
    parser.add_argument('--contexts', default='0;3,1', help="values of P[,F], ';'-separated")
    parser.add_argument('--poolings', default='target', help='text_pooling values, comma-separated')
    parser.add_argument('--epochs', type=int, default=DEFAULT_TEXT_FINETUNE_EPOCHS)
    parser.add_argument('--budget', type=int, default=None, help='max_seq_length (word pieces)')
    parser.add_argument('--seed', type=int, default=0, help='AMB-DSGDN training seed')
    parser.add_argument('--graph', action='store_true', help='also train AMB-DSGDN')
    parser.add_argument('--json', default=None)
    args = parser.parse_args()
    kind, _, directory = args.dataset.partition(':')
    if kind != 'meld-csv':
        parser.error('--dataset must be meld-csv:DIR')
    results = {'dataset': args.dataset, 'split': 'valid (MELD dev)', 'seed': args.seed,
               'machine': f'{platform.machine()}, {os.cpu_count()} cores, shared', 'runs': {}}
    from dsgdn_pyg.text.context import context_setting, parse_context
    contexts = [context_setting(v) for v in args.contexts.split(';')]
    extra = {} if args.budget is None else {'max_seq_length': args.budget}
    runs = [(k, p) for k in contexts for p in (args.poolings.split(',') if sum(
        parse_context(k)) else ['mean'])]

    def save():
        if args.json:
            atomic_write_text(args.json, json.dumps(results, indent=1))

    for k, pooling in runs:
        name = f'{k}/{pooling}'
        start, load = time.perf_counter(), os.getloadavg()[0]
        encoder = finetuned(directory, k, pooling, args.epochs, **extra)
        info = encoder.info
        results['runs'][name] = {
            'context': k, 'pooling': pooling, 'max_seq_length': encoder.max_seq_length,
            'finetune_valid_wa_f1': info['valid_weighted_f1'],
            'selected_epoch': info['selected_epoch'],
            'encoder_valid_wa_f1': max(info['valid_weighted_f1']),
            'finetune_seconds': info.get('seconds'),
            'epoch_seconds': info.get('epoch_seconds'),
            'train_word_pieces': info.get('train_word_pieces'),
            'load_average_1min_at_start': load, 'load_average_1min_at_end': os.getloadavg()[0],
            'stage_seconds': round(time.perf_counter() - start, 1)}
        print(f"{name}: fine-tuned encoder valid wF1 per epoch "
              f"{[round(f, 2) for f in info['valid_weighted_f1']]} "
              f"({info.get('epoch_seconds')} s/epoch)", flush=True)
        save()
    for k, pooling in runs if args.graph else ():
        name = f'{k}/{pooling}'
        start = time.perf_counter()
        corpus = load_corpus(args.dataset, seed=0, text_encoder='minilm',
                             text_finetune_epochs=args.epochs, text_context=k,
                             text_pooling=pooling, text_finetune=extra)
        run = results['runs'][name]
        run['features_seconds'] = round(time.perf_counter() - start, 1)
        for graph in (False, True):
            start = time.perf_counter()
            metrics = train(TrainConfig(dataset=args.dataset, seed=args.seed, quiet=True,
                                        graph=graph), corpus=corpus)
            tag = 'amb_dsgdn' if graph else 'no_graph'
            run.update({f'{tag}_valid_wa_f1': metrics['valid']['wa_f1'],
                        f'{tag}_best_epoch': metrics['best_epoch'],
                        f'{tag}_seconds': round(time.perf_counter() - start, 1)})
            print(f"{name}: {tag} (seed {args.seed}) valid wF1 "
                  f"{metrics['valid']['wa_f1']:.2f} (epoch {metrics['best_epoch']})", flush=True)
            save()


if __name__ == '__main__':
    main()
