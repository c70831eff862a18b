r"""Rebuild the built-in model ``meld-minilm`` (issue 33) from MELD's transcripts.

    python benchmarks/build_builtin_model.py --data ../shared/data/meld

1. ``dsgdn-pyg train --dataset meld-csv:DATA --seed 0 --out RUN`` (the default: MiniLM
   fine-tuned 2 epochs on MELD's train split, selected on dev; then AMB-DSGDN with the
   transcript preset, selected on dev), unless ``RUN/best.pt`` exists;
2. its compact folder (``dsgdn-pyg export --half --rank 64``: the graph model in float16,
   the fine-tuned encoder as a float16 rank-64 SVD delta over the packaged MiniLM);
3. the folder's MELD dev and test scores (``dsgdn-pyg evaluate``), and the largest change
   of a test probability that float16 weights make (the target: < 1e-3);
4. the same folder, its model card holding those figures, written to
   ``dsgdn_pyg/builtin/meld-minilm/`` (``--out``), whose ``config.json`` records every
   file's SHA-256 (``tests/inference/test_builtin.py`` checks them).

Prints one line per step with its figures. ``--text-finetune lora`` builds from a LoRA run
instead (its adapters are stored exactly).
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILTIN = os.path.join(ROOT, 'dsgdn_pyg', 'builtin', 'meld-minilm')
COMMAND = 'python benchmarks/build_builtin_model.py --data ../shared/data/meld'


def train(data: str, run: str, method: str, seed: int) -> str:
    best = os.path.join(run, 'best.pt')
    if not os.path.isfile(best):
        subprocess.run([sys.executable, '-m', 'dsgdn_pyg.cli', 'train', '--dataset',
                        f'meld-csv:{data}', '--seed', str(seed), '--text-finetune', method,
                        '--out', run], check=True)
    return best


def scores(folder: str, data: str):
    from dsgdn_pyg.inference.evaluate import evaluate

    return {split: evaluate(folder, dataset=f'meld-csv:{data}', split=split, device='cpu')
            for split in ('valid', 'test')}


def half_change(folder: str, best: str, data: str) -> float:
    r"""The largest change of a test probability between the folder's float16 graph weights
    and the checkpoint's float32 ones (the same text encoder for both)."""
    import numpy as np

    from dsgdn_pyg.inference.evaluate import predict
    from dsgdn_pyg.inference.model_folder import load_payload
    from dsgdn_pyg.train.checkpoint import load_checkpoint

    compact, _ = load_payload(folder)
    exact = dict(compact, model_state=load_checkpoint(best)['model_state'])

    def probs(payload):
        rows = predict(payload, dataset=f'meld-csv:{data}', split='test', device='cpu')
        return np.array([[v for k, v in r.items() if k.startswith('prob_')] for r in rows])
    return float(np.abs(probs(compact) - probs(exact)).max())


def notes(results, full_metrics, change: float, rank: int, method: str) -> str:
    valid, test = results['valid']['wa_f1'], results['test']['wa_f1']
    form = ('LoRA adapters (rank 16), stored exactly' if method == 'lora' else
            f'the rank-{rank} truncated SVD of the full fine-tune\'s change of each matrix')
    return f"""## The built-in model `meld-minilm`

Ships inside dsgdn-pyg: `dsgdn-pyg predict --input talk.csv` (the default model),
`dsgdn-pyg predict --model meld-minilm ...`, `dsgdn_pyg.load_model('meld-minilm')`.

- **Made by**: `{COMMAND}`, i.e. `dsgdn-pyg train --dataset meld-csv:../shared/data/meld
  --seed 0` (MiniLM fine-tuned 2 epochs{' with LoRA' if method == 'lora' else ''}, then
  AMB-DSGDN with the transcript preset), then `dsgdn-pyg export --half --rank {rank}`.
- **Training data**: MELD (Poria et al., ACL 2019, https://github.com/declare-lab/MELD),
  the transcripts of its train split only; epochs selected on its dev split. MELD's
  utterances come from the TV series *Friends*; the dataset is distributed under the
  **GPL-3.0** licence.
- **Scores of this folder** (`dsgdn-pyg evaluate --model meld-minilm --dataset
  meld-csv:../shared/data/meld --split valid|test`): MELD dev weighted F1 **{valid:.2f}**,
  test **{test:.2f}** (accuracy {results['test']['wa_acc']:.2f}); the same run before
  compaction: dev {full_metrics['valid']['wa_f1']:.2f}, test
  {full_metrics['test']['wa_f1']:.2f}.
- **Compact form**: the graph model in float16 (largest change of a test probability:
  {change:.1e}), the text encoder as a float16 delta over all-MiniLM-L6-v2 of the `[text]`
  extra's wheel: {form}. Loading needs no download and no adapter library.
- **Limits**: English TV-show dialogue (*Friends*): expect lower scores on other domains,
  registers and languages; MELD's 7 classes only (neutral, surprise, fear, sadness, joy,
  disgust, anger); text only (no audio or video); fear and disgust are rare in MELD and
  rarely predicted; not causal (it reads the whole dialogue), so not for `dsgdn-pyg stream`.
"""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--data', required=True, help="MELD's folder (the three CSVs)")
    parser.add_argument('--run', default=os.path.join('runs', 'builtin-meld-minilm'))
    parser.add_argument('--out', default=BUILTIN)
    parser.add_argument('--rank', type=int, default=64)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--text-finetune', choices=('full', 'lora'), default='full')
    args = parser.parse_args(argv)

    import json

    from dsgdn_pyg.inference.model_folder import export_model

    best = train(args.data, args.run, args.text_finetune, args.seed)
    with open(os.path.join(args.run, 'metrics.json'), encoding='utf-8') as f:
        full_metrics = json.load(f)
    with tempfile.TemporaryDirectory() as tmp:
        staging = os.path.join(tmp, 'meld-minilm')
        export_model(best, staging, half=True, rank=args.rank)
        results = scores(staging, args.data)
        change = half_change(staging, best, args.data)
        print(f"compact folder: dev weighted F1 {results['valid']['wa_f1']:.2f}, test "
              f"{results['test']['wa_f1']:.2f}; float16 weights change a test probability "
              f"by at most {change:.1e}")
    config = export_model(best, args.out, half=True, rank=args.rank,
                          notes=notes(results, full_metrics, change, args.rank,
                                      args.text_finetune))
    size = sum(os.path.getsize(os.path.join(args.out, *name.split('/')))
               for name in config['files'])
    print(f"wrote {args.out}: {len(config['files']) + 1} files, {size / 1e6:.1f} MB")
    for name, digest in config['files'].items():
        print(f"  {name}  sha256 {digest}")
    if shutil.which('du'):
        subprocess.run(['du', '-sh', os.path.join(ROOT, 'dsgdn_pyg')], check=False)


if __name__ == '__main__':
    main()
