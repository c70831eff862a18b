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
# Torch-free: the settings' declarations, from which the options are generated.
from dsgdn_pyg.train.config import (ConfigError, check_value, config_fields, default_text,
                                    parse_key_values, parse_setting_value, read_toml,
                                    resolve_config, setting_of, settings, unknown_setting,
                                    value_type)

EXPLICIT_SOURCES = (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT,
                    ParameterSource.PROMPT)


def _option_name(field: str) -> str:
    r"""The command-line option of a :class:`~dsgdn_pyg.train.TrainConfig` field."""
    return setting_of(next(f for f in settings() if f.name == field)).option or \
        '--' + field.replace('_', '-')


def _config_error(error: Exception, explicit: Iterable[str] = ()) -> click.ClickException:
    r"""A :class:`~dsgdn_pyg.train.ConfigError` as a click usage error, naming the option
    if the faulty value came from the command line."""
    field = getattr(error, 'field', None)
    if field is not None and field in set(explicit):
        return click.BadParameter(error.detail, param_hint=f"'{_option_name(field)}'")
    return click.UsageError(str(error))


def _parse_data_options(values: Iterable[str]) -> Dict[str, Any]:
    try:
        return parse_key_values(values)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="'--data-option'") from None


def setting_options(*names: str, help: Optional[Dict[str, str]] = None):
    r"""Decorator: one click option per :class:`~dsgdn_pyg.train.TrainConfig` field (all of
    them if no :obj:`names`), generated from the field's declaration
    (:func:`dsgdn_pyg.train.config.setting`). Every option defaults to :obj:`None`, so that a
    value given on the command line can be told from one left to the file, the preset or the
    dataclass; the help shows the default that applies. :obj:`help` replaces the help text
    of some fields."""
    fields = [f for f in settings() if not names or f.name in names]

    def option(f):
        meta = setting_of(f)
        name = _option_name(f.name)
        text = (help or {}).get(f.name, meta.help)
        kwargs: Dict[str, Any] = dict(default=None, metavar=meta.metavar,
                                      help=f'{text} [default: {default_text(f)}]')
        kind = value_type(f)
        if kind is bool and meta.switch:
            name = f'{name}/--no-{name[2:]}'
        elif kind is bool:
            kwargs['is_flag'] = True
        elif meta.repeatable:
            kwargs.update(multiple=True, type=str, help=text)
        elif meta.choices:
            kwargs['type'] = click.Choice(meta.choices)
        else:
            kwargs['type'] = {int: click.INT, float: click.FLOAT}.get(kind, click.STRING)
        return click.option(name, *([meta.short] if meta.short else []), f.name, **kwargs)

    def decorate(func):
        for f in reversed(fields):
            func = option(f)(func)
        return func
    return decorate


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


@main.command()
@click.option('--config', 'config_file', type=click.Path(dir_okay=False), metavar='FILE.toml',
              help='TOML file of settings (keys = option names); options given here win.')
@setting_options()
@click.pass_context
def train(ctx: click.Context, config_file: Optional[str], **options):
    r"""Train AMB-DSGDN and report the test scores of the selected epoch.

    Settings come from, in order of precedence: the options given here, the --config file
    (keys = the option names), the dataset's preset (the published settings; "dataset preset"
    below lists its values for synthetic-iemocap, IEMOCAP, MELD and transcripts), the built-in
    defaults.
    """
    from dsgdn_pyg.train import CheckpointError, train as run
    from dsgdn_pyg.train.distributed import DistributedError

    explicit = {name: value for name, value in options.items()
                if ctx.get_parameter_source(name) in EXPLICIT_SOURCES}
    try:
        file_values = read_toml(config_file) if config_file else {}
    except ConfigError as e:
        raise click.BadParameter(str(e), param_hint="'--config'") from None
    if 'data_options' in explicit:  # adds to the file's loader options
        explicit['data_options'] = {**dict(file_values.get('data_options') or {}),
                                    **_parse_data_options(explicit['data_options'])}
    try:
        config = resolve_config(explicit, file_values)
    except ConfigError as e:
        raise _config_error(e, explicit) from None
    try:
        metrics = run(config)
    except ConfigError as e:
        raise _config_error(e, explicit) from None
    except (CheckpointError, DistributedError) as e:
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
    from dsgdn_pyg.train import CheckpointError
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
@click.option('--video-column', metavar='NAME',
              help='With --input: video clips (relative to the file), for a model trained '
                   'with video (their sound track serves as audio without --audio-column).')
@click.option('--plot', metavar='PNG', help='With --input: draw each dialogue as a timeline '
              'with its predictions and strongest attention links (needs matplotlib).')
@click.pass_context
def predict(ctx: click.Context, checkpoint: str, dataset: Optional[str], split: str,
            data_option: Tuple[str, ...], device: str, output: str, inputs: Tuple[str, ...],
            plot: Optional[str], **columns: Optional[str]):
    r"""Predict the emotion of every utterance: of your own transcripts (--input talk.csv)
    or of a dataset split, and write a CSV (or JSON lines)."""
    if inputs:
        clash = [flag for name, flag in [('dataset', '--dataset'), ('split', '--split'),
                                         ('data_option', '--data-option')]
                 if ctx.get_parameter_source(name) in EXPLICIT_SOURCES]
        if clash:
            raise click.UsageError(f"--input cannot be combined with {', '.join(clash)}")
        return _predict_transcripts(checkpoint, inputs, output, device, plot,
                                    {k[:-len('_column')]: v for k, v in columns.items()})
    given = [f"--{k.replace('_', '-')}" for k, v in columns.items() if v is not None]
    if given or plot:
        raise click.UsageError(f"{', '.join(given + (['--plot'] if plot else []))} only "
                               f"apply with --input")
    from dsgdn_pyg.predict import write_prediction_rows
    from dsgdn_pyg.train import predict as run

    rows = _run_inference(run, checkpoint, dataset, split, data_option, device)
    if not rows:
        raise click.ClickException(f"the {split} split has no utterances")
    try:
        write_prediction_rows(rows, output)
    except OSError as e:
        raise click.ClickException(f"cannot write {output!r}: {e.strerror or e}") from None
    click.echo(f"wrote {len(rows)} predictions to {output}")


def _predict_transcripts(checkpoint: str, inputs: Tuple[str, ...], output: str, device: str,
                         plot: Optional[str], columns: Dict[str, Optional[str]]):
    from dsgdn_pyg.predict import (predict_dialogues, prediction_scores,
                                   transcripts_of_checkpoint, write_prediction_rows)
    from dsgdn_pyg.train import CheckpointError, ConfigError

    try:
        dialogues, _ = transcripts_of_checkpoint(checkpoint, inputs, **columns)
        predictions = predict_dialogues(checkpoint, dialogues, device=device,
                                        attention=plot is not None)
    except (CheckpointError, ConfigError, ValueError, OSError, ImportError) as e:
        raise click.ClickException(str(e)) from None
    rows = [row for p in predictions for row in p.rows()]
    try:
        write_prediction_rows(rows, output)
    except OSError as e:
        raise click.ClickException(f"cannot write {output!r}: {e.strerror or e}") from None
    click.echo(f"wrote {len(rows)} predictions ({len(predictions)} dialogue(s)) to {output}")
    scores = prediction_scores(predictions)
    if scores is not None:
        click.echo(f"{scores['num_utterances']} labelled utterances: weighted F1 "
                   f"{scores['wa_f1']:.2f}, accuracy {scores['wa_acc']:.2f}")
    if plot:
        from dsgdn_pyg.plot import plot_paths, plot_prediction
        try:
            for prediction, path in zip(predictions, plot_paths(plot, predictions)):
                plot_prediction(prediction, path)
                click.echo(f"wrote {path}")
        except (ImportError, OSError) as e:
            raise click.ClickException(str(e)) from None
    return predictions


# The settings `benchmark` shares with `train`, and what they mean with --scenario.
_BENCHMARK_SETTINGS = {
    'dataset': 'Dataset preset to time (not with --scenario).',
    'batch_size': "Dialogues per batch; with --scenario: the scenario's.",
    'hidden_channels': 'Hidden width.',
    'window': "Dialogue graph window; with --scenario: the scenario's (20).",
    'num_dialogues': "Dataset/scenario size knob.",
    'feature_dims': 'With --scenario: feature widths (t=1024,a=1582,v=342).',
    'context_window': 'With --scenario: the audio/visual encoder attends within +-K '
                      "utterances (the scenario's: whole dialogue; 20 for long-400 and "
                      'long-10000).',
    'device': 'Device (--scenario runs on the CPU).',
    'num_threads': 'CPU threads of PyTorch; 2 with --scenario.',
    'seed': 'Seed.',
}
_SCENARIO_ONLY = {'impls': '--impl', 'feature_dims': '--feature-dims',
                  'context_window': '--context-window', 'repeats': '--repeats',
                  'quiet': '--quiet'}


@main.command()
@click.option('--checkpoint', required=True, metavar='PATH',
              help='A best.pt or last.pt of a causal model (`dsgdn-pyg train --causal`).')
@click.option('--input', 'input_path', default='-', show_default=True, metavar='FILE|-',
              help='JSON lines to read; - = standard input.')
@click.option('--num-threads', default=1, show_default=True,
              help='CPU threads of PyTorch.')
@click.option('--speaker-ids', metavar='NAME=ID,...',
              help='Fixed speaker ids (e.g. M=0,F=1 for IEMOCAP pickles). [default: per '
                   'dialogue, in order of appearance]')
def stream(checkpoint: str, input_path: str, num_threads: int, speaker_ids: Optional[str]):
    r"""Recognise emotions live: one JSON line per utterance in, one out, flushed at once.

    In: {"dialogue": "call-1", "speaker": "agent", "text": "..."} (or "features": {"t": [...],
    "a": [...]} for a feature-based model); {"dialogue": "call-1", "end": true} closes a
    dialogue. Out: the line number, dialogue, index, label and every class probability; a bad
    line gets {"line": N, "error": ..., "field": ...} and the stream goes on.
    """
    import torch

    from dsgdn_pyg.streaming import StreamingRecognizer, process_line
    from dsgdn_pyg.train import CheckpointError

    if num_threads < 1:
        raise click.BadParameter(f"must be at least 1, got {num_threads}",
                                 param_hint="'--num-threads'")
    fixed = None
    if speaker_ids:
        name_ids = [item.rpartition('=') for item in speaker_ids.split(',')]
        if any(not name or not sep or not value.strip().isdigit()
               for name, sep, value in name_ids):
            raise click.BadParameter(f"expected NAME=ID,... with integer ids, got "
                                     f"{speaker_ids!r}", param_hint="'--speaker-ids'")
        fixed = {name.strip(): int(value) for name, _, value in name_ids}
    torch.set_num_threads(num_threads)
    try:
        recognizer = StreamingRecognizer.from_checkpoint(checkpoint, speaker_ids=fixed)
    except CheckpointError as e:
        raise click.ClickException(str(e)) from None
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="'--speaker-ids'") from None
    try:
        source = click.open_file(input_path, 'r', encoding='utf-8', errors='replace')
    except OSError as e:
        raise click.ClickException(f"cannot read {input_path!r}: {e.strerror or e}") from None
    with source:
        for number, line in enumerate(source, start=1):
            answer = process_line(recognizer, line, number)
            if answer is not None:
                click.echo(json.dumps(answer))
                sys.stdout.flush()  # the answer goes out while the caller still talks


@main.command()
@click.option('--scenario', type=click.Choice(['iemocap', 'long-400', 'long-1600',
                                               'long-10000']),
              help='Compare the sparse and dense models on synthetic dialogues of fixed '
                   'shapes, each in its own process (CPU); without it, time the sparse model '
                   'on --dataset.')
@click.option('--impl', 'impls', multiple=True, type=click.Choice(['sparse', 'dense']),
              help='With --scenario: implementation to run; repeatable. [default: both, '
                   'dense where it can run]')
@click.option('--steps', type=click.IntRange(min=1),
              help='Timed training steps. [default: 5; with --scenario, one pass over its '
                   'batches]')
@setting_options(*_BENCHMARK_SETTINGS, help=_BENCHMARK_SETTINGS)
@click.option('--repeats', default=1, show_default=True, type=click.IntRange(min=1),
              help='With --scenario: rounds of measurements alternating the implementations; '
                   'each reports its run of median training throughput.')
@click.option('--quiet', '-q', is_flag=True, help='With --scenario: no progress lines.')
@click.option('--json', 'as_json', is_flag=True,
              help='Print the results as one JSON object on the last line.')
@click.pass_context
def benchmark(ctx: click.Context, scenario: Optional[str], impls: Tuple[str, ...],
              steps: Optional[int], repeats: int, quiet: bool, as_json: bool, **settings):
    r"""Time training steps and inference (utterances per second).

    Without --scenario: the sparse model on a dataset preset. With --scenario: the sparse
    against the dense model on synthetic dialogues (iemocap: 120 dialogues of N(48, 20)
    utterances clipped to 8..110, batch 16; long-400: 4 of 400, batch 1; long-1600: 4 of
    1,600, batch 2; long-10000: one of 10,000, sparse only), with peak memory and useful FLOP/s
    against the machine's GEMM FLOP/s.
    """
    from dsgdn_pyg.benchmark import benchmark as run
    from dsgdn_pyg.train import TrainConfig

    explicit = {name: value for name, value in settings.items()
                if ctx.get_parameter_source(name) in EXPLICIT_SOURCES}
    if scenario is not None:
        return _benchmark_scenario(scenario, impls, steps, repeats, quiet, as_json, explicit)
    scenario_only = [flag for name, flag in _SCENARIO_ONLY.items()
                     if ctx.get_parameter_source(name) in EXPLICIT_SOURCES]
    if scenario_only:
        raise click.UsageError(f"{', '.join(scenario_only)} only apply with --scenario")
    steps = 5 if steps is None else steps
    try:
        config = TrainConfig(**explicit)
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


def _benchmark_scenario(scenario: str, impls: Tuple[str, ...], steps: Optional[int],
                        repeats: int, quiet: bool, as_json: bool,
                        explicit: Dict[str, Any]) -> Dict[str, Any]:
    r"""``benchmark --scenario``: :func:`dsgdn_pyg.benchmark.benchmark_scenario`."""
    from dsgdn_pyg.benchmark import benchmark_scenario, format_scenario_result, make_scenario

    if 'dataset' in explicit:
        raise click.UsageError("--dataset and --scenario exclude each other (a scenario makes "
                               "its own synthetic dialogues)")
    if explicit.pop('device', 'auto') not in ('auto', 'cpu'):
        raise click.BadParameter("--scenario runs on the CPU", param_hint="'--device'")
    try:  # the checks of the training settings of the same names
        overrides = {name: check_value(name, value) for name, value in explicit.items()}
    except ConfigError as e:
        raise _config_error(e, explicit) from None
    num_threads = overrides.pop('num_threads', None) or 2
    try:
        make_scenario(scenario, **overrides)
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    log = None if quiet else (lambda message: click.echo(message, err=True))
    result = benchmark_scenario(scenario, impls or ('sparse', 'dense'), steps=steps,
                                num_threads=num_threads, repeats=repeats, log=log, **overrides)
    if not quiet:
        click.echo(format_scenario_result(result))
    if as_json:
        click.echo(json.dumps(result))
    return result


def _parse_settings(values: Iterable[str]) -> Dict[str, Any]:
    r"""``--set FIELD=VALUE`` items as TrainConfig values (VALUE parsed as JSON if it can be)."""
    from dsgdn_pyg.experiments import RESERVED_FIELDS

    settings: Dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition('=')
        name = key.strip().replace('-', '_')
        if not sep or not name:
            raise click.BadParameter(f"expected FIELD=VALUE, got {item!r}", param_hint="'--set'")
        if name not in config_fields():
            raise click.BadParameter(str(unknown_setting(key.strip(), noun='field')),
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
@setting_options('dataset', 'modalities', 'epochs', 'data_options')
@click.option('--seeds', default='0,1,2', show_default=True, metavar='0,1,2',
              help='Training seeds; the table shows mean ± std over them.')
@click.option('--out', required=True, type=click.Path(file_okay=False), metavar='DIR',
              help='Output directory: DIR/<variant>/seed<k> runs (finished ones are reused), '
                   'DIR/NAME.json, DIR/NAME.md and DIR/NAME.png.')
@click.option('--quick', is_flag=True,
              help='Reduced grid, first seed only, at most 4 epochs (unless --epochs).')
@click.option('--quiet', '-q', is_flag=True, help='Print only the table.')
@click.option('--set', 'set_items', multiple=True, metavar='FIELD=VALUE',
              help='Any other training setting for every variant, e.g. lr=5e-4; repeatable.')
def experiment(name: str, dataset: Optional[str], modalities: Optional[str],
               epochs: Optional[int], data_options: Tuple[str, ...], seeds: str, out: str,
               quick: bool, quiet: bool, set_items: Tuple[str, ...]):
    r"""Run one of the paper's experiments and print its table (mean ± std over seeds).

    NAME: modalities (table 4), ablation (tables 5-6), window (fig. 3), heads (fig. 4),
    warmup (fig. 5), dropout-grid (table 7), noise (fig. 7), long (fig. 6), imbalance
    (fig. 8), overhead (tables 8-9). Costs: README, section Experiments.
    """
    from dsgdn_pyg.experiments import ExperimentError, parse_seeds, run_experiment
    from dsgdn_pyg.experiments.grids import QUICK_EPOCHS
    from dsgdn_pyg.train import CheckpointError, TrainConfig

    try:
        seed_list = parse_seeds(seeds)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="'--seeds'") from None
    values = _parse_settings(set_items)
    explicit = {'dataset': dataset, 'modalities': modalities, 'epochs': epochs}
    for key, value in explicit.items():
        if value is not None:
            if key in values:
                raise click.BadParameter(f"{key!r} is given both as --{key} and in --set",
                                         param_hint="'--set'")
            values[key] = value
    if data_options:
        values['data_options'] = {**dict(values.get('data_options') or {}),
                                  **_parse_data_options(data_options)}
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
