r"""``dsgdn-pyg stream``."""
import json
import sys
from typing import Optional

import click

from dsgdn_pyg.cli.options import blame, chosen_model, model_options, user_errors
from dsgdn_pyg.settings.checks import split_key_value


def parse_speaker_ids(value: Optional[str]):
    r"""``--speaker-ids NAME=ID,...`` as a dictionary (:obj:`None` if not given)."""
    if not value:
        return None
    try:  # names may hold '=': split at the last one
        name_ids = [split_key_value(item, 'NAME', last=True) for item in value.split(',')]
    except ValueError:
        name_ids = [('', '')]
    if any(not number.strip().isdigit() for _, number in name_ids):
        raise click.BadParameter(f"expected NAME=ID,... with integer ids, got {value!r}",
                                 param_hint="'--speaker-ids'")
    return {name: int(number) for name, number in name_ids}


def model_options_of_causal(func):
    return model_options(func, 'A causal (`dsgdn-pyg train --causal`)')


@click.command()
@model_options_of_causal
@click.option('--input', 'input_path', default='-', show_default=True, metavar='FILE|-',
              help='JSON lines to read; - = standard input.')
@click.option('--num-threads', default=1, show_default=True,
              help='CPU threads of PyTorch.')
@click.option('--speaker-ids', metavar='NAME=ID,...',
              help='Fixed speaker ids (e.g. M=0,F=1 for IEMOCAP pickles). [default: per '
                   'dialogue, in order of appearance]')
@user_errors
def stream(checkpoint: Optional[str], model_dir: Optional[str], input_path: str,
           num_threads: int, speaker_ids: Optional[str]):
    r"""Recognise emotions live: one JSON line per utterance in, one out, flushed at once.

    In: {"dialogue": "call-1", "speaker": "agent", "text": "..."} (or "features": {"t": [...],
    "a": [...]} for a feature-based model; "video": "clip.mp4" or {"path": ..., "start": S,
    "end": S} for one trained on video clips); {"dialogue": "call-1", "end": true} closes a
    dialogue. Out: the line number, dialogue, index, label and every class probability; a bad
    line gets {"line": N, "error": ..., "field": ...} and the stream goes on.
    """
    import torch

    from dsgdn_pyg.inference.streaming import StreamingRecognizer, process_line
    from dsgdn_pyg.train.checkpoint import CheckpointError

    checkpoint = chosen_model(checkpoint, model_dir)
    if num_threads < 1:
        raise click.BadParameter(f"must be at least 1, got {num_threads}",
                                 param_hint="'--num-threads'")
    fixed = parse_speaker_ids(speaker_ids)
    torch.set_num_threads(num_threads)
    # A bad checkpoint is its own error; any other bad value is one of the speaker ids.
    with blame('--speaker-ids', unless=(CheckpointError,)):
        recognizer = StreamingRecognizer.from_checkpoint(checkpoint, speaker_ids=fixed)
    with blame(prefix=f"cannot read {input_path!r}", errors=(OSError,)):
        source = click.open_file(input_path, 'r', encoding='utf-8', errors='replace')
    with source:
        for number, line in enumerate(source, start=1):
            answer = process_line(recognizer, line, number)
            if answer is not None:
                click.echo(json.dumps(answer))
                sys.stdout.flush()  # the answer goes out while the caller still talks
