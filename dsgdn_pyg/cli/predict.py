r"""``dsgdn-pyg predict``."""
from typing import Dict, Optional, Tuple

import click

from dsgdn_pyg.cli.options import (blame, given_flags, inference_options, parse_data_options,
                                   user_errors)


@click.command()
@inference_options
@click.option('--output', required=True, metavar='PATH',
              help='One row per utterance with the predicted label and the probability of '
                   'every class: CSV, or JSON lines for a .jsonl path.')
@click.option('--input', 'inputs', multiple=True, metavar='FILE',
              help='Your own transcript (CSV or .jsonl), instead of --dataset; repeatable.')
@click.option('--text-column', metavar='NAME', help="With --input: the text column. "
              "[default: the checkpoint's [csv] mapping, else MELD's 'Utterance']")
@click.option('--speaker-column', metavar='NAME', help='With --input: the speaker column.')
@click.option('--dialogue-column', metavar='NAME',
              help='With --input: the dialogue id column (absent: one dialogue per file).')
@click.option('--label-column', metavar='NAME',
              help='With --input: true labels, to print scores (optional).')
@click.option('--audio-column', metavar='NAME',
              help='With --input: recordings (WAV/FLAC, relative to the file), for a model '
                   'trained with audio.')
@click.option('--plot', metavar='PNG', help='With --input: draw each dialogue as a timeline '
              'with its predictions and strongest attention links (needs matplotlib).')
@click.pass_context
@user_errors
def predict(ctx: click.Context, checkpoint: str, dataset: Optional[str], split: str,
            data_option: Tuple[str, ...], device: str, output: str, inputs: Tuple[str, ...],
            plot: Optional[str], **columns: Optional[str]):
    r"""Predict the emotion of every utterance: of your own transcripts (--input talk.csv)
    or of a dataset split, and write a CSV (or JSON lines)."""
    _refuse_overwriting(output, {'--checkpoint': checkpoint,
                                 **{f'--input {path}': path for path in inputs}})
    if inputs:
        clash = given_flags(ctx, {'dataset': '--dataset', 'split': '--split',
                                  'data_option': '--data-option'})
        if clash:
            raise click.UsageError(f"--input cannot be combined with {', '.join(clash)}")
        return _predict_transcripts(checkpoint, inputs, output, device, plot,
                                    {k[:-len('_column')]: v for k, v in columns.items()})
    given = [f"--{k.replace('_', '-')}" for k, v in columns.items() if v is not None]
    if given or plot:
        raise click.UsageError(f"{', '.join(given + (['--plot'] if plot else []))} only "
                               f"apply with --input")
    from dsgdn_pyg.inference.evaluate import predict as run
    from dsgdn_pyg.inference.predict import write_prediction_rows

    rows = run(checkpoint, dataset=dataset, split=split,
               data_options=parse_data_options(data_option), device=device)
    if not rows:
        raise click.ClickException(f"the {split} split has no utterances")
    with blame(prefix=f"cannot write {output!r}", errors=(OSError,)):
        write_prediction_rows(rows, output)
    click.echo(f"wrote {len(rows)} predictions to {output}")


def _predict_transcripts(checkpoint: str, inputs: Tuple[str, ...], output: str, device: str,
                         plot: Optional[str], columns: Dict[str, Optional[str]]):
    from dsgdn_pyg.inference.predict import (predict_dialogues, prediction_scores,
                                             transcripts_of_checkpoint, write_prediction_rows)

    with blame(errors=(ValueError, OSError, ImportError)):
        dialogues, _ = transcripts_of_checkpoint(checkpoint, inputs, **columns)
        predictions = predict_dialogues(checkpoint, dialogues, device=device,
                                        attention=plot is not None)
    rows = [row for p in predictions for row in p.rows()]
    with blame(prefix=f"cannot write {output!r}", errors=(OSError,)):
        write_prediction_rows(rows, output)
    click.echo(f"wrote {len(rows)} predictions ({len(predictions)} dialogue(s)) to {output}")
    scores = prediction_scores(predictions)
    if scores is not None:
        click.echo(f"{scores['num_utterances']} labelled utterances: weighted F1 "
                   f"{scores['wa_f1']:.2f}, accuracy {scores['wa_acc']:.2f}")
    if plot:
        from dsgdn_pyg.plot import plot_paths, plot_prediction
        with blame(errors=(ImportError, OSError)):
            for prediction, path in zip(predictions, plot_paths(plot, predictions)):
                plot_prediction(prediction, path)
                click.echo(f"wrote {path}")
    return predictions


def _refuse_overwriting(output: str, sources: Dict[str, str]) -> None:
    r"""Refuses an --output that is one of the command's own files (before anything runs):
    writing it would replace a transcript or the trained model with the predictions."""
    import os

    for flag, path in sources.items():
        same = os.path.abspath(output) == os.path.abspath(path)
        try:
            same = same or os.path.samefile(output, path)
        except OSError:  # either does not exist (yet): then only the spelling can match
            pass
        if same:
            raise click.BadParameter(f"{output!r} is the file of {flag}; writing the "
                                     f"predictions there would replace it; choose another "
                                     f"path", param_hint="'--output'")
