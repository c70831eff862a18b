"""Context in the sentence encoder's input (``text_context`` = K previous utterances with
their speakers), measured on MELD's *dev* split only: the fine-tuned encoder's own validation
weighted F1 (what fine-tuning selects the epoch on) and, with ``--graph``, AMB-DSGDN's best
validation weighted F1 on the features (the transcript preset). The test split is neither
printed nor stored, so it cannot steer the choice.

    python benchmarks/text_context.py --dataset meld-csv:../shared/data/meld --contexts 0,2 \
        --graph --json benchmarks/results/text_context_meld.json

Fine-tuned encoders and features are cached by content hash (``$DSGDN_PYG_CACHE``), so K = 0
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--dataset', default='meld-csv:../shared/data/meld')
    parser.add_argument('--contexts', default='0,2', help='values of K, comma-separated')
    parser.add_argument('--seed', type=int, default=0, help='AMB-DSGDN training seed')
    parser.add_argument('--graph', action='store_true', help='also train AMB-DSGDN')
    parser.add_argument('--json', default=None)
    args = parser.parse_args()
    results = {'dataset': args.dataset, 'split': 'valid (MELD dev)', 'seed': args.seed,
               'machine': f'{platform.machine()}, {os.cpu_count()} cores, shared', 'runs': {}}
    for k in (int(v) for v in args.contexts.split(',')):
        start = time.perf_counter()
        corpus = load_corpus(args.dataset, seed=0, text_encoder='minilm',
                             text_finetune_epochs=DEFAULT_TEXT_FINETUNE_EPOCHS,
                             text_context=k)
        state = corpus.meta['text_featurizer']
        info = state['info']
        run = {'context': k, 'max_seq_length': state['max_seq_length'],
               'finetune_valid_wa_f1': info['valid_weighted_f1'],
               'selected_epoch': info['selected_epoch'],
               'encoder_valid_wa_f1': max(info['valid_weighted_f1']),
               'finetune_seconds': info.get('seconds'),
               'load_seconds': round(time.perf_counter() - start, 1)}
        print(f"K={k}: fine-tuned encoder valid wF1 per epoch "
              f"{[round(f, 2) for f in info['valid_weighted_f1']]}", flush=True)
        if args.graph:
            start = time.perf_counter()
            metrics = train(TrainConfig(dataset=args.dataset, seed=args.seed, quiet=True,
                                        text_context=k), corpus=corpus)
            run.update(amb_dsgdn_valid_wa_f1=metrics['valid']['wa_f1'],
                       amb_dsgdn_best_epoch=metrics['best_epoch'],
                       amb_dsgdn_seconds=round(time.perf_counter() - start, 1))
            print(f"K={k}: AMB-DSGDN (seed {args.seed}) valid wF1 "
                  f"{metrics['valid']['wa_f1']:.2f} (epoch {metrics['best_epoch']})",
                  flush=True)
        results['runs'][str(k)] = run
        if args.json:
            atomic_write_text(args.json, json.dumps(results, indent=1))


if __name__ == '__main__':
    main()
