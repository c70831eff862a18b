r"""``dsgdn-pyg export``."""
import os

import click

from dsgdn_pyg.cli.options import user_errors


@click.command()
@click.option('--checkpoint', required=True, metavar='PATH',
              help='A best.pt or last.pt written by `dsgdn-pyg train` (or a run folder: its '
                   'best.pt).')
@click.option('--out', required=True, type=click.Path(file_okay=False), metavar='DIR',
              help='The model folder to write (an existing model folder is replaced).')
@click.option('--half', is_flag=True,
              help='The compact folder: weights in float16, a fine-tuned minilm or mpnet '
                   'encoder as a delta over the base weights of its extra (LoRA exactly, a '
                   'full fine-tune as a low-rank SVD) instead of a copy (~100 MB -> ~5 MB).')
@click.option('--rank', type=click.IntRange(1), default=64, show_default=True,
              help="With --half: the SVD rank of a full fine-tune's delta.")
@user_errors
def export(checkpoint: str, out: str, half: bool, rank: int):
    r"""Write a checkpoint's model as one self-contained folder: config.json, the weights
    as safetensors, the text encoder (fine-tuned weights and tokenizer, or TF-IDF
    vocabulary and SVD), a model card README.md. Copy it anywhere; use it with
    `dsgdn-pyg predict --model DIR`."""
    from dsgdn_pyg.inference.model_folder import export_model, resolve_model_path

    source = resolve_model_path(checkpoint)
    if os.path.isdir(source):
        source = os.path.join(source, 'best.pt') if os.path.isfile(
            os.path.join(source, 'best.pt')) else source
    config = export_model(source, out, half=half, rank=rank)
    size = sum(os.path.getsize(os.path.join(out, *name.split('/'))) for name in config['files'])
    click.echo(f"wrote model folder {out} ({len(config['files']) + 1} files, "
               f"{size / 1e6:.1f} MB) from {source}")
