r"""``dsgdn-pyg predict``."""
from typing import Any, Dict, List, Optional, Sequence, Tuple

import click

from dsgdn_pyg.cli.options import (blame, chosen_model, given_flags, inference_options,
                                   parse_data_options, user_errors)


@click.command()
@inference_options
@click.option('--output', metavar='PATH|-',
              help='Write one row per utterance with the predicted label and the probability '
                   'of every class: CSV, or JSON lines for a .jsonl path; - = standard '
                   'output. [default: a table on the terminal]')
@click.option('--format', 'fmt', type=click.Choice(['table', 'csv', 'jsonl']),
              help='table, csv or jsonl. [default: table on the terminal; for --output PATH '
                   'its extension]')
@click.option('--input', 'inputs', multiple=True, metavar='FILE',
              help='Your own transcript (CSV or .jsonl), instead of --dataset; repeatable.')
@click.option('--text-column', metavar='NAME', help="With --input: the text column. "
              "[default: the model's [csv] mapping, else MELD's 'Utterance']")
@click.option('--speaker-column', metavar='NAME', help='With --input: the speaker column.')
@click.option('--dialogue-column', metavar='NAME',
              help='With --input: the dialogue id column (absent: one dialogue per file).')
@click.option('--label-column', metavar='NAME',
              help='With --input: true labels, to print scores (optional).')
@click.option('--audio-column', metavar='NAME',
              help='With --input: recordings (WAV/FLAC, relative to the file), for a model '
                   'trained with audio.')
@click.option('--video-column', metavar='NAME',
              help='With --input: video clips (relative to the file), for a model trained '
                   'with video (their sound track serves as audio without --audio-column).')
@click.option('--plot', metavar='PNG', help='With --input: draw each dialogue as a timeline '
              'with its predictions and strongest attention links (needs matplotlib).')
@click.option('--quiet', '-q', is_flag=True,
              help='Print only the predictions and errors: no remarks (which built-in model '
                   'predicts, scores, files written).')
@click.pass_context
@user_errors
def predict(ctx: click.Context, checkpoint: Optional[str], model_dir: Optional[str],
            dataset: Optional[str], split: str, data_option: Tuple[str, ...], device: str,
            output: Optional[str], fmt: Optional[str], inputs: Tuple[str, ...],
            plot: Optional[str], quiet: bool, **columns: Optional[str]):
    r"""Predict the emotion of every utterance: of your own transcripts (--input talk.csv)
    or of a dataset split; print a table, or write CSV (or JSON lines). With --input and
    no model, the built-in model meld-minilm (MELD, 7 emotions) predicts."""
    from dsgdn_pyg.builtin import BUILTIN_MODELS, DEFAULT_MODEL

    defaulted = inputs and checkpoint is None and model_dir is None
    checkpoint = chosen_model(checkpoint, model_dir, DEFAULT_MODEL if inputs else None)
    if defaulted and not quiet:
        click.echo(f"using the built-in model {DEFAULT_MODEL} ({BUILTIN_MODELS[DEFAULT_MODEL]}"
                   f"); --model DIR for your own", err=True)
    to_stdout = output in (None, '-')
    if not to_stdout:
        _refuse_overwriting(output, {'--checkpoint': checkpoint,
                                     **{f'--input {path}': path for path in inputs}})
    if fmt == 'table' and not to_stdout:
        raise click.UsageError('--format table is for the terminal; give --format csv or '
                               'jsonl with --output PATH')
    fmt = fmt or ('table' if to_stdout else
                  'jsonl' if output.lower().endswith(('.jsonl', '.ndjson')) else 'csv')
    if inputs:
        clash = given_flags(ctx, {'dataset': '--dataset', 'split': '--split',
                                  'data_option': '--data-option'})
        if clash:
            raise click.UsageError(f"--input cannot be combined with {', '.join(clash)}")
        return _predict_transcripts(checkpoint, inputs, output, fmt, device, plot,
                                    {k[:-len('_column')]: v for k, v in columns.items()})
    given = [f"--{k.replace('_', '-')}" for k, v in columns.items() if v is not None]
    if given or plot:
        raise click.UsageError(f"{', '.join(given + (['--plot'] if plot else []))} only "
                               f"apply with --input")
    from dsgdn_pyg.inference.evaluate import predict as run

    rows = run(checkpoint, dataset=dataset, split=split,
               data_options=parse_data_options(data_option), device=device)
    if not rows:
        raise click.ClickException(f"the {split} split has no utterances")
    if fmt == 'table':
        click.echo(_split_table(rows), nl=False)
    else:
        _emit(rows, output, fmt)
    _note(f"{len(rows)} predictions" if to_stdout else
          f"wrote {len(rows)} predictions to {output}", to_stdout)


def _predict_transcripts(checkpoint: str, inputs: Tuple[str, ...], output: Optional[str],
                         fmt: str, device: str, plot: Optional[str],
                         columns: Dict[str, Optional[str]]):
    from dsgdn_pyg.inference.output import prediction_table
    from dsgdn_pyg.inference.predict import (predict_dialogues, prediction_scores,
                                             transcripts_of_checkpoint)

    with blame(errors=(ValueError, OSError, ImportError)):
        dialogues, payload = transcripts_of_checkpoint(checkpoint, inputs, **columns)
        predictions = predict_dialogues(payload, dialogues, device=device,
                                        attention=plot is not None)
    rows = [row for p in predictions for row in p.rows()]
    to_stdout = output in (None, '-')
    if fmt == 'table':
        click.echo(prediction_table(predictions), nl=False)
    else:
        _emit(rows, output, fmt)
    if not to_stdout:
        _note(f"wrote {len(rows)} predictions ({len(predictions)} dialogue(s)) to {output}",
              to_stdout)
    scores = prediction_scores(predictions)
    if scores is not None:
        _note(f"{scores['num_utterances']} labelled utterances: weighted F1 "
              f"{scores['wa_f1']:.2f}, accuracy {scores['wa_acc']:.2f}", to_stdout)
    if plot:
        from dsgdn_pyg.plot import plot_paths, plot_prediction
        with blame(errors=(ImportError, OSError)):
            for prediction, path in zip(predictions, plot_paths(plot, predictions)):
                plot_prediction(prediction, path)
                _note(f"wrote {path}", to_stdout)
    return predictions


def _emit(rows: Sequence[Dict[str, Any]], output: Optional[str], fmt: str) -> None:
    from dsgdn_pyg.inference.output import rows_text
    from dsgdn_pyg.io import atomic_write_text

    text = rows_text(rows, fmt)
    if output in (None, '-'):
        click.echo(text, nl=False)
        return
    import os
    with blame(prefix=f"cannot write {output!r}", errors=(OSError,)):
        os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
        atomic_write_text(output, text)


def _note(line: str, to_stdout: bool) -> None:
    # Next to predictions on standard output, remarks go to standard error; --quiet: none.
    if not click.get_current_context().params.get('quiet'):
        click.echo(line, err=to_stdout)


def _split_table(rows: List[Dict[str, Any]]) -> str:
    r"""A dataset split's rows (no speakers or texts) as a table."""
    from dsgdn_pyg.inference.output import aligned

    cells = [[str(r['dialogue_id']), str(r['utterance']), r['label'], r['predicted'],
              f"{100 * r['prob_' + r['predicted']]:.0f}%"] for r in rows]
    return aligned(['dialogue', '#', 'label', 'predicted', 'conf.'], cells, right={1, 4})


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
