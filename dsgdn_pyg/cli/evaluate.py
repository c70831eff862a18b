r"""``dsgdn-pyg evaluate``."""
import json
from typing import Optional, Tuple

import click

from dsgdn_pyg.cli.options import (chosen_model, inference_options, parse_data_options,
                                   user_errors)


@click.command()
@inference_options
@click.option('--json', 'json_path', metavar='PATH',
              help="Also write the metrics as JSON ('-' = standard output).")
@user_errors
def evaluate(checkpoint: Optional[str], model_dir: Optional[str], dataset: Optional[str],
             split: str, data_option: Tuple[str, ...], device: str, json_path: Optional[str]):
    r"""Score a model: classification report and confusion matrix."""
    checkpoint = chosen_model(checkpoint, model_dir)
    from dsgdn_pyg.inference.evaluate import evaluate as run
    from dsgdn_pyg.io import atomic_write_text

    metrics = run(checkpoint, dataset=dataset, split=split,
                  data_options=parse_data_options(data_option), device=device)
    click.echo(f"{checkpoint} (epoch {metrics['epoch']}) on {metrics['dataset']} "
               f"[{split}], {metrics['num_utterances']} utterances: weighted F1 "
               f"{metrics['wa_f1']:.2f}, accuracy {metrics['wa_acc']:.2f}\n")
    click.echo(metrics['report'])
    click.echo('Confusion matrix (rows = true, columns = predicted):')
    click.echo(metrics['confusion_table'])
    if json_path:
        text = json.dumps(metrics, indent=2)
        if json_path == '-':
            click.echo(text)
        else:
            atomic_write_text(json_path, text)
    return metrics
