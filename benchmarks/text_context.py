"""Context in the sentence encoder's input (``text_context`` = K previous utterances with
their speakers), measured on MELD's *dev* split only: the fine-tuned encoder's own validation
weighted F1 (what fine-tuning selects the epoch on) and, with ``--graph``, AMB-DSGDN's best
validation weighted F1 on the features (the transcript preset). The test split is neither
printed nor stored, so it cannot steer the choice.

    python benchmarks/text_context.py --dataset meld-csv:../shared/data/meld --contexts 0,1 \
        --graph --json benchmarks/results/text_context_meld.json

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


def finetuned(directory, k):
    # Stage 1, the encoder alone: exactly the fine-tuning the dataset runs (same inputs and
    # options, hence the same cache entry), without embedding every split.
    from dsgdn_pyg.datasets.csv_format import (MELD_LABELS, labelled_inputs, read_dialogue_rows,
                                               resolve_mapping)
    from dsgdn_pyg.text.context import context_max_seq_length
    from dsgdn_pyg.text.finetune import finetune_encoder

    mapping = resolve_mapping()
    groups = {s: read_dialogue_rows(os.path.join(directory, name), mapping)
              for s, name in mapping['files'].items() if s in ('train', 'valid')}
    ids = {s: list(g) for s, g in groups.items()}
    index = {name: i for i, name in enumerate(MELD_LABELS)}
    train = labelled_inputs(groups, ids, index, 'train', k)
    valid = labelled_inputs(groups, ids, index, 'valid', k)
    return finetune_encoder(*train, *valid, num_classes=len(index), model='minilm',
                            epochs=DEFAULT_TEXT_FINETUNE_EPOCHS,
                            max_seq_length=context_max_seq_length(k))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--dataset', default='meld-csv:../shared/data/meld')
    parser.add_argument('--contexts', default='0,1', help='values of K, comma-separated')
    parser.add_argument('--seed', type=int, default=0, help='AMB-DSGDN training seed')
    parser.add_argument('--graph', action='store_true', help='also train AMB-DSGDN')
    parser.add_argument('--json', default=None)
    args = parser.parse_args()
    kind, _, directory = args.dataset.partition(':')
    if kind != 'meld-csv':
        parser.error('--dataset must be meld-csv:DIR')
    results = {'dataset': args.dataset, 'split': 'valid (MELD dev)', 'seed': args.seed,
               'machine': f'{platform.machine()}, {os.cpu_count()} cores, shared', 'runs': {}}
    contexts = [int(v) for v in args.contexts.split(',')]

    def save():
        if args.json:
            atomic_write_text(args.json, json.dumps(results, indent=1))

    for k in contexts:
        start = time.perf_counter()
        encoder = finetuned(directory, k)
        info = encoder.info
        results['runs'][str(k)] = {
            'context': k, 'max_seq_length': encoder.max_seq_length,
            'finetune_valid_wa_f1': info['valid_weighted_f1'],
            'selected_epoch': info['selected_epoch'],
            'encoder_valid_wa_f1': max(info['valid_weighted_f1']),
            'finetune_seconds': info.get('seconds'),
            'stage_seconds': round(time.perf_counter() - start, 1)}
        print(f"K={k}: fine-tuned encoder valid wF1 per epoch "
              f"{[round(f, 2) for f in info['valid_weighted_f1']]}", flush=True)
        save()
    for k in contexts if args.graph else ():
        start = time.perf_counter()
        corpus = load_corpus(args.dataset, seed=0, text_encoder='minilm',
                             text_finetune_epochs=DEFAULT_TEXT_FINETUNE_EPOCHS,
                             text_context=k)
        run = results['runs'][str(k)]
        run['features_seconds'] = round(time.perf_counter() - start, 1)
        start = time.perf_counter()
        metrics = train(TrainConfig(dataset=args.dataset, seed=args.seed, quiet=True,
                                    text_context=k), corpus=corpus)
        run.update(amb_dsgdn_valid_wa_f1=metrics['valid']['wa_f1'],
                   amb_dsgdn_best_epoch=metrics['best_epoch'],
                   amb_dsgdn_seconds=round(time.perf_counter() - start, 1))
        print(f"K={k}: AMB-DSGDN (seed {args.seed}) valid wF1 "
              f"{metrics['valid']['wa_f1']:.2f} (epoch {metrics['best_epoch']})", flush=True)
        save()


if __name__ == '__main__':
    main()
