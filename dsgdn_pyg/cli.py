r"""The ``dsgdn-pyg`` command line: a thin click layer over :mod:`dsgdn_pyg.train`.

User mistakes (bad option values, unknown datasets, missing or mismatched checkpoints) end
with an ``Error: ...`` message and a non-zero exit status, never with a traceback.
"""
import json
import os
import sys
from typing import Any, Dict, Iterable, Optional, Tuple

import click
from click.core import ParameterSource

from dsgdn_pyg import __version__

EXPLICIT_SOURCES = (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT,
                    ParameterSource.PROMPT)


def _option_name(field: str) -> str:
    return '--' + field.replace('_', '-')


def _config_error(error: Exception, explicit: Iterable[str] = ()) -> click.ClickException:
    r"""A :class:`~dsgdn_pyg.train.ConfigError` as a click usage error, naming the option
    if the faulty value came from the command line."""
    field = getattr(error, 'field', None)
    if field is not None and field in set(explicit):
        return click.BadParameter(error.detail, param_hint=f"'{_option_name(field)}'")
    return click.UsageError(str(error))


def _parse_data_options(values: Iterable[str]) -> Dict[str, Any]:
    options: Dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition('=')
        if not sep or not key.strip():
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}",
                                     param_hint="'--data-option'")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw  # a bare string, e.g. length_distribution=gamma
        options[key.strip().replace('-', '_')] = value
    return options


@click.group(context_settings={'help_option_names': ['-h', '--help']})
@click.version_option(__version__, '--version', prog_name='dsgdn-pyg')
def main():
    r"""AMB-DSGDN for multimodal emotion recognition in conversation, on PyTorch Geometric.

    Start with `dsgdn-pyg train --out runs/first`, then `dsgdn-pyg evaluate --checkpoint
    runs/first/best.pt`.
    """


# (option declarations, click keyword arguments); the parameter name is the TrainConfig field.
_TRAIN_OPTIONS = [
    (('--dataset', ), dict(type=str, metavar='NAME',
                           help='Dataset: synthetic-iemocap, synthetic-meld or KIND:PATH. '
                                '[default: synthetic-iemocap]')),
    (('--modalities', ), dict(type=str, metavar='t,a,v',
                              help='Modalities to use. [default: all the dataset has]')),
    (('--window', ), dict(type=int, help='Dialogue graph window. [default: dataset preset]')),
    (('--epochs', ), dict(type=int, help='Training epochs. [default: dataset preset]')),
    (('--lr', ), dict(type=float, help='Adam learning rate. [default: dataset preset]')),
    (('--weight-decay', ), dict(type=float, help='Adam weight decay. [default: preset]')),
    (('--batch-size', ), dict(type=int, help='Dialogues per batch. [default: preset]')),
    (('--dropout', ), dict(type=float, help='Dropout rate. [default: preset]')),
    (('--hidden-channels', ), dict(type=int, help='Hidden width. [default: 512]')),
    (('--heads', ), dict(type=int, help='Differential attention heads. [default: 2]')),
    (('--q-base', ), dict(type=float, help='Modality dropout base rate. [default: preset]')),
    (('--md-lambda', ), dict(type=float, help='Modality dropout scale. [default: preset]')),
    (('--p-exe', ), dict(type=float, help='Modality dropout execution probability. '
                                          '[default: preset]')),
    (('--warmup-epochs', ), dict(type=int, help='Epochs before modality dropout starts. '
                                                '[default: preset]')),
    (('--modality-dropout/--no-modality-dropout', ), dict(
        default=None, help='Adaptive modality dropout. [default: on]')),
    (('--class-weights/--no-class-weights', ), dict(
        default=None, help='Inverse-frequency class weights. [default: preset]')),
    (('--graph/--no-graph', ), dict(default=None,
                                    help='Relational graph blocks (off = ablation). '
                                         '[default: on]')),
    (('--conv', ), dict(type=click.Choice(['diffgat', 'gat']),
                        help='Graph attention operator (gat = ablation). [default: diffgat]')),
    (('--fusion-weights', ), dict(type=str, metavar='t=W,a=W,v=W',
                                  help='Fixed fusion weights (ablation). [default: sum]')),
    (('--seed', ), dict(type=int, help='Seed of initialisation, dropout and shuffling. '
                                       '[default: 0]')),
    (('--data-seed', ), dict(type=int, help='Seed of the dataset loader. [default: 0]')),
    (('--device', ), dict(type=str, metavar='auto|cpu|cuda',
                          help='Device; auto = CUDA if available. [default: auto]')),
    (('--num-threads', ), dict(type=int, help='CPU threads of PyTorch; more only pays on '
                                              'an idle many-core machine. [default: 1 on CPU]')),
    (('--amp/--no-amp', ), dict(default=None, help='Mixed precision (CUDA only). '
                                                   '[default: off]')),
    (('--select-on', ), dict(type=click.Choice(['valid', 'test']),
                             help="Split that selects the best epoch; 'test' is the authors' "
                                  "protocol, not a fair estimate. [default: valid]")),
    (('--patience', ), dict(type=int, help='Early stopping patience in epochs, 0 = off. '
                                           '[default: off]')),
    (('--out', ), dict(type=click.Path(file_okay=False), metavar='DIR',
                       help='Output directory (metrics.json, log.jsonl, best.pt, last.pt). '
                            'Without it nothing is written.')),
    (('--resume', ), dict(is_flag=True, default=None,
                          help='Continue from DIR/last.pt (start fresh if there is none).')),
    (('--quiet', '-q'), dict(is_flag=True, default=None, help='Print only errors.')),
    (('--num-dialogues', ), dict(type=int, help='Dataset size knob (synthetic data).')),
    (('--feature-dims', ), dict(type=str, metavar='t=D,a=D,v=D',
                                help='Feature widths (synthetic data).')),
]


def _train_options(func):
    for decls, kwargs in reversed(_TRAIN_OPTIONS):
        func = click.option(*decls, **kwargs)(func)
    return func


@main.command()
@click.option('--config', 'config_file', type=click.Path(dir_okay=False), metavar='FILE.toml',
              help='TOML file of settings (keys = option names); options given here win.')
@_train_options
@click.option('--data-option', 'data_option', multiple=True, metavar='KEY=VALUE',
              help='Further dataset loader option (VALUE parsed as JSON if it can be); '
                   'repeatable.')
@click.pass_context
def train(ctx: click.Context, config_file: Optional[str], data_option: Tuple[str, ...],
          **options):
    r"""Train AMB-DSGDN and report the test scores of the selected epoch.

    Settings come from, in order of precedence: the options given here, the --config file,
    the dataset's published preset, the built-in defaults.
    """
    from dsgdn_pyg.train import CheckpointError, ConfigError, read_toml, train as run
    from dsgdn_pyg.train.config import resolve_config

    explicit = {name: value for name, value in options.items()
                if ctx.get_parameter_source(name) in EXPLICIT_SOURCES}
    try:
        file_values = read_toml(config_file) if config_file else {}
    except ConfigError as e:
        raise click.BadParameter(str(e), param_hint="'--config'") from None
    if data_option:
        explicit['data_options'] = {**dict(file_values.get('data_options') or {}),
                                    **_parse_data_options(data_option)}
    try:
        config = resolve_config(explicit, file_values)
    except ConfigError as e:
        raise _config_error(e, explicit) from None
    try:
        metrics = run(config)
    except ConfigError as e:
        raise _config_error(e, explicit) from None
    except CheckpointError as e:
        raise click.ClickException(str(e)) from None
    except KeyboardInterrupt:
        hint = f"; continue with --resume --out {config.out}" if config.out else ''
        click.echo(f"interrupted{hint}", err=True)
        sys.exit(130)
    if config.out and not config.quiet:
        click.echo(f"wrote {os.path.join(config.out, 'metrics.json')}")
    return metrics


def _common_inference_options(func):
    func = click.option('--device', default='auto', show_default=True,
                        metavar='auto|cpu|cuda', help='Device.')(func)
    func = click.option('--data-option', 'data_option', multiple=True, metavar='KEY=VALUE',
                        help='Loader option for --dataset; repeatable.')(func)
    func = click.option('--split', type=click.Choice(['train', 'valid', 'test']),
                        default='test', show_default=True, help='Split to score.')(func)
    func = click.option('--dataset', metavar='NAME',
                        help="Dataset; default: the checkpoint's own, with its options.")(func)
    func = click.option('--checkpoint', required=True, metavar='PATH',
                        help='A best.pt or last.pt written by `dsgdn-pyg train`.')(func)
    return func


def _run_inference(function, checkpoint, dataset, split, data_option, device):
    from dsgdn_pyg.train import CheckpointError, ConfigError
    try:
        return function(checkpoint, dataset=dataset, split=split,
                        data_options=_parse_data_options(data_option), device=device)
    except CheckpointError as e:
        raise click.ClickException(str(e)) from None
    except ConfigError as e:
        raise click.UsageError(str(e)) from None


@main.command()
@_common_inference_options
@click.option('--json', 'json_path', metavar='PATH',
              help="Also write the metrics as JSON ('-' = standard output).")
def evaluate(checkpoint: str, dataset: Optional[str], split: str, data_option: Tuple[str, ...],
             device: str, json_path: Optional[str]):
    r"""Score a checkpoint: classification report and confusion matrix."""
    from dsgdn_pyg.train import evaluate as run
    from dsgdn_pyg.train.checkpoint import atomic_write_text

    metrics = _run_inference(run, checkpoint, dataset, split, data_option, device)
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


@main.command()
@_common_inference_options
@click.option('--output', required=True, metavar='CSV',
              help='CSV file: one row per utterance with the predicted label and the '
                   'probability of every class.')
def predict(checkpoint: str, dataset: Optional[str], split: str, data_option: Tuple[str, ...],
            device: str, output: str):
    r"""Predict the emotion of every utterance of a split and write a CSV."""
    from dsgdn_pyg.train import predict as run, write_predictions

    rows = _run_inference(run, checkpoint, dataset, split, data_option, device)
    if not rows:
        raise click.ClickException(f"the {split} split has no utterances")
    try:
        write_predictions(rows, output)
    except OSError as e:
        raise click.ClickException(f"cannot write {output!r}: {e.strerror or e}") from None
    click.echo(f"wrote {len(rows)} predictions to {output}")


@main.command()
@click.option('--dataset', default='synthetic-iemocap', show_default=True, metavar='NAME',
              help='Dataset preset.')
@click.option('--steps', default=5, show_default=True, type=int, help='Timed training steps.')
@click.option('--batch-size', type=int, help='Dialogues per batch. [default: preset]')
@click.option('--hidden-channels', default=512, show_default=True, type=int,
              help='Hidden width.')
@click.option('--window', type=int, help='Dialogue graph window. [default: preset]')
@click.option('--num-dialogues', type=int, help='Dataset size knob (synthetic data).')
@click.option('--device', default='auto', show_default=True, metavar='auto|cpu|cuda',
              help='Device.')
@click.option('--num-threads', type=int, help='CPU threads of PyTorch. [default: 1 on CPU]')
@click.option('--seed', default=0, show_default=True, type=int, help='Seed.')
@click.option('--json', 'as_json', is_flag=True,
              help='Print the results as one JSON object on the last line.')
@click.pass_context
def benchmark(ctx: click.Context, dataset: str, steps: int, batch_size: Optional[int],
              hidden_channels: int, window: Optional[int], num_dialogues: Optional[int],
              device: str, num_threads: Optional[int], seed: int, as_json: bool):
    r"""Time training steps and inference of the sparse model (utterances per second)."""
    from dsgdn_pyg.benchmark import benchmark as run
    from dsgdn_pyg.train import ConfigError, TrainConfig

    if steps < 1:
        raise click.BadParameter(f"must be >= 1, got {steps}", param_hint="'--steps'")
    values = dict(dataset=dataset, batch_size=batch_size, hidden_channels=hidden_channels,
                  window=window, num_dialogues=num_dialogues, device=device,
                  num_threads=num_threads, seed=seed)
    explicit = [name for name in values if ctx.get_parameter_source(name) in EXPLICIT_SOURCES]
    try:
        config = TrainConfig(**{k: v for k, v in values.items() if v is not None})
        result = run(config, steps=steps)
    except ConfigError as e:
        raise _config_error(e, explicit) from None
    click.echo(f"{result['model']} on {result['dataset']} ({result['device']}, "
               f"{result['num_threads']} threads, hidden "
               f"{result['hidden_channels']}, batch {result['batch_size']} dialogues, "
               f"{result['num_parameters']:,} parameters)")
    click.echo(f"train:     {result['train_utterances_per_s']:10.1f} utterances/s "
               f"({steps} steps, {result['train_seconds']:.2f}s)")
    click.echo(f"inference: {result['inference_utterances_per_s']:10.1f} utterances/s "
               f"({result['inference_utterances']} utterances, "
               f"{result['inference_seconds']:.2f}s)")
    if as_json:
        click.echo(json.dumps(result))
    return result


if __name__ == '__main__':
    main(prog_name='dsgdn-pyg')
