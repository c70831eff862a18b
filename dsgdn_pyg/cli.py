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
    from dsgdn_pyg.train.config import parse_setting_value

    options: Dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition('=')
        if not sep or not key.strip():
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}",
                                     param_hint="'--data-option'")
        options[key.strip().replace('-', '_')] = parse_setting_value(raw)
    return options


@click.group(context_settings={'help_option_names': ['-h', '--help']})
@click.version_option(__version__, '--version', prog_name='dsgdn-pyg')
def main():
    r"""AMB-DSGDN for multimodal emotion recognition in conversation, on PyTorch Geometric.

    Start with `dsgdn-pyg train --out runs/first`, then `dsgdn-pyg evaluate --checkpoint
    runs/first/best.pt`.
    """
    from dsgdn_pyg.memory import release_large_allocations

    # Long dialogues fragment glibc's heap (dsgdn_pyg.memory); costs nothing on short ones.
    release_large_allocations()


# (option declarations, click keyword arguments); the parameter name is the TrainConfig field.
_TRAIN_OPTIONS = [
    (('--dataset', ), dict(type=str, metavar='NAME',
                           help='Dataset: synthetic-iemocap, synthetic-meld or KIND:PATH. '
                                '[default: synthetic-iemocap]')),
    (('--model', ), dict(type=click.Choice(['amb-dsgdn', 'sync-tva']),
                         help='Architecture. [default: amb-dsgdn]')),
    (('--modalities', ), dict(type=str, metavar='t,a,v',
                              help='Modalities to use. [default: all the dataset has]')),
    (('--window', ), dict(type=int, help='Dialogue graph window. [default: dataset preset]')),
    (('--epochs', ), dict(type=int, help='Training epochs. [default: dataset preset]')),
    (('--lr', ), dict(type=float, help='Adam learning rate. [default: dataset preset]')),
    (('--weight-decay', ), dict(type=float, help='Adam weight decay. [default: preset]')),
    (('--batch-size', ), dict(type=int, help='Dialogues per batch. [default: preset]')),
    (('--dropout', ), dict(type=float, help='Dropout rate. [default: preset]')),
    (('--hidden-channels', ), dict(type=int, help='Hidden width. [default: preset]')),
    (('--heads', ), dict(type=int, help='Differential attention heads. [default: 2]')),
    (('--context-window', ), dict(type=int, metavar='K',
                                  help='Audio/visual encoder attends within +-K utterances '
                                       '(linear in dialogue length). [default: whole '
                                       'dialogue]')),
    (('--cross-window', ), dict(type=int, metavar='K',
                                help='Sync-TVA: cross-modal edges also within +-K utterances. '
                                     '[default: 0]')),
    (('--checkpoint-activations/--no-checkpoint-activations', ), dict(
        default=None, help='Recompute activations in backward: about half the memory for '
                           '1.5x the time (long dialogues). [default: off]')),
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
    (('--focal-gamma', ), dict(type=float, help='Focal loss gamma; 0 = plain NLL. '
                                                '[default: 0]')),
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
    (('--text-encoder', ), dict(type=str, metavar='tfidf|minilm|NAME_OR_PATH',
                                help='Text features of csv:/meld-csv: transcripts. [default: '
                                     'minilm with the [text] extra, else tfidf]')),
    (('--text-finetune-epochs', ), dict(type=int, metavar='K',
                                        help='Fine-tune the sentence encoder K epochs on the '
                                             'training utterances; 0 = frozen. [default: 2]')),
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
@click.option('--scenario', type=click.Choice(['iemocap', 'long-400', 'long-1600',
                                               'long-10000']),
              help='Compare the sparse and dense models on synthetic dialogues of fixed '
                   'shapes, each in its own process (CPU); without it, time the sparse model '
                   'on --dataset.')
@click.option('--impl', 'impls', multiple=True, type=click.Choice(['sparse', 'dense']),
              help='With --scenario: implementation to run; repeatable. [default: both, '
                   'dense where it can run]')
@click.option('--dataset', default='synthetic-iemocap', show_default=True, metavar='NAME',
              help='Dataset preset.')
@click.option('--steps', type=int,
              help='Timed training steps. [default: 5; with --scenario, one pass over its '
                   'batches]')
@click.option('--batch-size', type=int, help='Dialogues per batch. [default: preset/scenario]')
@click.option('--hidden-channels', type=int, help='Hidden width. [default: preset]')
@click.option('--window', type=int, help='Dialogue graph window. [default: preset; 20]')
@click.option('--num-dialogues', type=int, help='Dataset/scenario size knob.')
@click.option('--feature-dims', type=str, metavar='t=D,a=D,v=D',
              help='With --scenario: feature widths. [default: t=1024,a=1582,v=342]')
@click.option('--context-window', type=int, metavar='K',
              help='With --scenario: the audio/visual encoder attends within +-K utterances. '
                   '[default: whole dialogue; 20 for long-400 and long-10000]')
@click.option('--device', default='auto', show_default=True, metavar='auto|cpu|cuda',
              help='Device (--scenario runs on the CPU).')
@click.option('--num-threads', type=int,
              help='CPU threads of PyTorch. [default: 1 on CPU; 2 with --scenario]')
@click.option('--seed', default=0, show_default=True, type=int, help='Seed.')
@click.option('--repeats', default=1, show_default=True, type=int,
              help='With --scenario: rounds of measurements alternating the implementations; '
                   'each reports its run of median training throughput.')
@click.option('--quiet', '-q', is_flag=True, help='With --scenario: no progress lines.')
@click.option('--json', 'as_json', is_flag=True,
              help='Print the results as one JSON object on the last line.')
@click.pass_context
def benchmark(ctx: click.Context, scenario: Optional[str], impls: Tuple[str, ...], dataset: str,
              steps: Optional[int], batch_size: Optional[int], hidden_channels: Optional[int],
              window: Optional[int], num_dialogues: Optional[int], feature_dims: Optional[str],
              context_window: Optional[int], device: str, num_threads: Optional[int],
              seed: int, repeats: int, quiet: bool, as_json: bool):
    r"""Time training steps and inference (utterances per second).

    Without --scenario: the sparse model on a dataset preset. With --scenario: the sparse
    against the dense model on synthetic dialogues (iemocap: 120 dialogues of N(48, 20)
    utterances clipped to 8..110, batch 16; long-400: 4 of 400, batch 1; long-1600: 4 of
    1,600, batch 2; long-10000: one of 10,000, sparse only), with peak memory and useful FLOP/s
    against the machine's GEMM FLOP/s.
    """
    from dsgdn_pyg.benchmark import benchmark as run
    from dsgdn_pyg.train import ConfigError, TrainConfig

    if steps is not None and steps < 1:
        raise click.BadParameter(f"must be >= 1, got {steps}", param_hint="'--steps'")
    if scenario is not None:
        return _benchmark_scenario(ctx, scenario, impls, steps, num_threads, repeats, quiet,
                                   as_json,
                                   dict(batch_size=batch_size, hidden_channels=hidden_channels,
                                        window=window, num_dialogues=num_dialogues,
                                        feature_dims=feature_dims,
                                        context_window=context_window, device=device,
                                        seed=seed))
    scenario_only = [flag for name, flag in [('impls', '--impl'), ('feature_dims',
                                                                   '--feature-dims'),
                                             ('context_window', '--context-window'),
                                             ('repeats', '--repeats'), ('quiet', '--quiet')]
                     if ctx.get_parameter_source(name) in EXPLICIT_SOURCES]
    if scenario_only:
        raise click.UsageError(f"{', '.join(scenario_only)} only apply with --scenario")
    steps = 5 if steps is None else steps
    hidden_channels = 512 if hidden_channels is None else hidden_channels
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


def _benchmark_scenario(ctx: click.Context, scenario: str, impls: Tuple[str, ...],
                        steps: Optional[int], num_threads: Optional[int], repeats: int,
                        quiet: bool, as_json: bool,
                        options: Dict[str, Any]) -> Dict[str, Any]:
    r"""``benchmark --scenario``: :func:`dsgdn_pyg.benchmark.benchmark_scenario`."""
    from dsgdn_pyg.benchmark import benchmark_scenario, format_scenario_result, make_scenario
    from dsgdn_pyg.train import ConfigError
    from dsgdn_pyg.train.config import parse_feature_dims

    if ctx.get_parameter_source('dataset') in EXPLICIT_SOURCES:
        raise click.UsageError("--dataset and --scenario exclude each other (a scenario makes "
                               "its own synthetic dialogues)")
    device = options.pop('device')
    if device not in ('auto', 'cpu'):
        raise click.BadParameter(f"--scenario runs on the CPU, got {device!r}",
                                 param_hint="'--device'")
    if num_threads is not None and num_threads < 1:
        raise click.BadParameter(f"must be >= 1, got {num_threads}",
                                 param_hint="'--num-threads'")
    if repeats < 1:
        raise click.BadParameter(f"must be >= 1, got {repeats}", param_hint="'--repeats'")
    overrides = {k: v for k, v in options.items() if v is not None}
    if 'feature_dims' in overrides:
        try:
            overrides['feature_dims'] = parse_feature_dims(overrides['feature_dims'])
        except ConfigError as e:
            raise click.BadParameter(e.detail, param_hint="'--feature-dims'") from None
    try:
        make_scenario(scenario, **overrides)
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    log = None if quiet else (lambda message: click.echo(message, err=True))
    result = benchmark_scenario(scenario, impls or ('sparse', 'dense'), steps=steps,
                                num_threads=2 if num_threads is None else num_threads,
                                repeats=repeats, log=log, **overrides)
    if not quiet:
        click.echo(format_scenario_result(result))
    if as_json:
        click.echo(json.dumps(result))
    return result



def _parse_settings(values: Iterable[str]) -> Dict[str, Any]:
    r"""``--set FIELD=VALUE`` items as TrainConfig values (VALUE parsed as JSON if it can be)."""
    from dsgdn_pyg.experiments import RESERVED_FIELDS
    from dsgdn_pyg.train.config import config_fields, parse_setting_value

    fields = set(config_fields())
    settings: Dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition('=')
        name = key.strip().replace('-', '_')
        if not sep or not name:
            raise click.BadParameter(f"expected FIELD=VALUE, got {item!r}", param_hint="'--set'")
        if name not in fields:
            raise click.BadParameter(f"unknown field {key.strip()!r}; valid fields are "
                                     f"{', '.join(sorted(fields - set(RESERVED_FIELDS)))}",
                                     param_hint="'--set'")
        if name in RESERVED_FIELDS:
            raise click.BadParameter(f"{name!r} is set by the experiment (use --seeds / --out)",
                                     param_hint="'--set'")
        if name in settings:
            raise click.BadParameter(f"sets {name!r} twice", param_hint="'--set'")
        settings[name] = parse_setting_value(raw)
    return settings


# The names of dsgdn_pyg.experiments.EXPERIMENT_NAMES, spelled out so that importing the CLI
# does not import torch (a test checks that the two agree).
EXPERIMENT_NAMES = ('modalities', 'ablation', 'window', 'heads', 'warmup', 'dropout-grid',
                    'noise', 'long', 'imbalance', 'overhead')


@main.command()
@click.argument('name', type=click.Choice(EXPERIMENT_NAMES), metavar='NAME')
@click.option('--dataset', metavar='NAME', help='Dataset. [default: synthetic-iemocap]')
@click.option('--modalities', metavar='t,a,v', help='Modalities of the base run. [default: all '
                                                    'the dataset has]')
@click.option('--seeds', default='0,1,2', show_default=True, metavar='0,1,2',
              help='Training seeds; the table shows mean ± std over them.')
@click.option('--out', required=True, type=click.Path(file_okay=False), metavar='DIR',
              help='Output directory: DIR/<variant>/seed<k> runs (finished ones are reused), '
                   'DIR/NAME.json, DIR/NAME.md and DIR/NAME.png.')
@click.option('--quick', is_flag=True,
              help='Reduced grid, first seed only, at most 4 epochs (unless --epochs).')
@click.option('--quiet', '-q', is_flag=True, help='Print only the table.')
@click.option('--epochs', type=int, help='Training epochs. [default: dataset preset]')
@click.option('--set', 'settings', multiple=True, metavar='FIELD=VALUE',
              help='Any other training setting for every variant, e.g. lr=5e-4; repeatable.')
@click.option('--data-option', 'data_option', multiple=True, metavar='KEY=VALUE',
              help='Dataset loader option (VALUE parsed as JSON if it can be); repeatable.')
def experiment(name: str, dataset: Optional[str], modalities: Optional[str], seeds: str,
               out: str, quick: bool, quiet: bool, epochs: Optional[int],
               settings: Tuple[str, ...], data_option: Tuple[str, ...]):
    r"""Run one of the paper's experiments and print its table (mean ± std over seeds).

    NAME: modalities (table 4), ablation (tables 5-6), window (fig. 3), heads (fig. 4),
    warmup (fig. 5), dropout-grid (table 7), noise (fig. 7), long (fig. 6), imbalance
    (fig. 8), overhead (tables 8-9). Costs: README, section Experiments.
    """
    from dsgdn_pyg.experiments import ExperimentError, parse_seeds, run_experiment
    from dsgdn_pyg.experiments.grids import QUICK_EPOCHS
    from dsgdn_pyg.train import CheckpointError, ConfigError, TrainConfig

    try:
        seed_list = parse_seeds(seeds)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="'--seeds'") from None
    values = _parse_settings(settings)
    explicit = {'dataset': dataset, 'modalities': modalities, 'epochs': epochs}
    for key, value in explicit.items():
        if value is not None:
            if key in values:
                raise click.BadParameter(f"{key!r} is given both as --{key} and in --set",
                                         param_hint="'--set'")
            values[key] = value
    if data_option:
        values['data_options'] = {**dict(values.get('data_options') or {}),
                                  **_parse_data_options(data_option)}
    try:
        config = TrainConfig(**values)
    except ConfigError as e:
        raise _config_error(e, [k for k, v in explicit.items() if v is not None]) from None
    except TypeError as e:
        raise click.UsageError(str(e)) from None
    echo = None if quiet else (lambda line: click.echo(line, err=True))
    try:
        result = run_experiment(name, config, seed_list, out, quick=quick,
                                quick_epochs=None if epochs is not None else QUICK_EPOCHS,
                                echo=echo)
    except (ConfigError, ExperimentError) as e:
        raise click.UsageError(str(e)) from None
    except CheckpointError as e:
        raise click.ClickException(str(e)) from None
    except KeyboardInterrupt:
        click.echo(f"interrupted; run the same command again to continue (finished runs in "
                   f"{out} are reused)", err=True)
        sys.exit(130)
    click.echo(result['markdown'])
    if not quiet:
        click.echo(f"wrote {', '.join(result['files'].values())} "
                   f"({result['elapsed_s']:.0f} s)")
    return result

if __name__ == '__main__':
    main(prog_name='dsgdn-pyg')
