"""The search behind the transcript preset: AMB-DSGDN on the fine-tuned MiniLM features of
MELD (``--text-encoder mpnet``: all-mpnet-base-v2's), each candidate scored by its best
*validation* weighted F1 (MELD's dev split). The test split is not printed; the JSON keeps
each run's test scores for the record, and the choice reads valid only.

    python benchmarks/transcript_preset.py --dataset meld-csv:../shared/data/meld --seeds 0 \
        --json benchmarks/results/transcript_preset_meld.json

Candidates are ``name:FIELD=VALUE,FIELD=VALUE`` (``--candidate``, repeatable), over the
settings of ``--base``; without ``--candidate`` the built-in grid below runs.
"""
import argparse
import json
import os
import sys

# The checkout: benchmarks.common, and dsgdn_pyg where it is not installed.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import aggregate, format_mean_std, sweep_seeds  # noqa: E402
from dsgdn_pyg.datasets import load_corpus  # noqa: E402
from dsgdn_pyg.io import atomic_write_text  # noqa: E402
from dsgdn_pyg.train import TrainConfig  # noqa: E402
from dsgdn_pyg.train.config import DEFAULT_TEXT_FINETUNE_EPOCHS, parse_key_values  # noqa: E402

BASE = 'lr=1e-4,dropout=0.3,weight_decay=1e-4,batch_size=32,epochs=15,window=6,' \
       'class_weights=false,hidden_channels=512'
GRID = [
    'base:',
    'lr3e-4:lr=3e-4',
    'lr3e-5:lr=3e-5,epochs=25',
    'dropout0.5:dropout=0.5',
    'hidden128:hidden_channels=128',
    'window10:window=10',
    'window2:window=2',
    'class_weights:class_weights=true',
]


def parse_settings(text):
    # 'lr=3e-4,window=6': the comma-separated form of --set items.
    return parse_key_values([item.strip() for item in text.split(',') if item.strip()])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--dataset', default='meld-csv:../shared/data/meld')
    parser.add_argument('--seeds', default='0')
    parser.add_argument('--base', default=BASE)
    parser.add_argument('--candidate', action='append', default=None)
    parser.add_argument('--json', default=None)
    parser.add_argument('--text-encoder', default='minilm', help="e.g. 'mpnet' ([mpnet] extra)")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(',')]
    corpus = load_corpus(args.dataset, seed=0, text_encoder=args.text_encoder,
                         text_finetune_epochs=DEFAULT_TEXT_FINETUNE_EPOCHS)
    base = parse_settings(args.base)
    results = {'dataset': args.dataset, 'text_encoder': args.text_encoder, 'base': base,
               'seeds': seeds, 'candidates': {}}
    for candidate in args.candidate or GRID:
        name, _, overrides = candidate.partition(':')
        settings = dict(base, **parse_settings(overrides))
        runs = sweep_seeds(lambda seed: TrainConfig(dataset=args.dataset, seed=seed, quiet=True,
                                                    text_encoder=args.text_encoder,
                                                    **settings), seeds, corpus)
        results['candidates'][name] = {'settings': settings, 'runs': runs}
        summary = format_mean_std(aggregate([r['valid_wa_f1'] for r in runs]))
        print(f"{name:16s} valid wF1 {summary}  best epochs "
              f"{[r['best_epoch'] for r in runs]}  ({sum(r['seconds'] for r in runs):.0f} s)",
              flush=True)
        if args.json:
            atomic_write_text(args.json, json.dumps(results, indent=1))


if __name__ == '__main__':
    main()
