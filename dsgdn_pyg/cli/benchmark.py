r"""``dsgdn-pyg benchmark``."""
import json
from typing import Any, Dict, Optional, Tuple

import click

from dsgdn_pyg.cli.options import (blame, explicit_values, given_flags, setting_options,
                                   user_errors)
from dsgdn_pyg.cli.studies import study
from dsgdn_pyg.names import IMPLEMENTATIONS, SCENARIO_NAMES
from dsgdn_pyg.train.config import check_value

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


@click.command()
@click.option('--scenario', type=click.Choice(SCENARIO_NAMES),
              help='Compare the sparse and dense models on synthetic dialogues of fixed '
                   'shapes, each in its own process (CPU); without it, time the sparse model '
                   'on --dataset.')
@click.option('--impl', 'impls', multiple=True, type=click.Choice(IMPLEMENTATIONS),
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
@user_errors
def benchmark(ctx: click.Context, scenario: Optional[str], impls: Tuple[str, ...],
              steps: Optional[int], repeats: int, quiet: bool, as_json: bool, **settings):
    r"""Time training steps and inference (utterances per second).

    Without --scenario: the sparse model on a dataset preset. With --scenario: the sparse
    against the dense model on synthetic dialogues (iemocap: 120 dialogues of N(48, 20)
    utterances clipped to 8..110, batch 16; long-400: 4 of 400, batch 1; long-1600: 4 of
    1,600, batch 2; long-10000: one of 10,000, sparse only), with peak memory and useful FLOP/s
    against the machine's GEMM FLOP/s.
    """
    from dsgdn_pyg.profile import benchmark as run
    from dsgdn_pyg.train import TrainConfig

    explicit = explicit_values(ctx, settings)
    if scenario is not None:
        return _benchmark_scenario(scenario, impls, steps, repeats, quiet, as_json, explicit)
    scenario_only = given_flags(ctx, _SCENARIO_ONLY)
    if scenario_only:
        raise click.UsageError(f"{', '.join(scenario_only)} only apply with --scenario")
    steps = 5 if steps is None else steps
    result = run(TrainConfig(**explicit), steps=steps)
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
    r"""``benchmark --scenario``: :func:`benchmarks.scenario_runner.benchmark_scenario`."""
    runner = study('scenario_runner')

    if 'dataset' in explicit:
        raise click.UsageError("--dataset and --scenario exclude each other (a scenario makes "
                               "its own synthetic dialogues)")
    if explicit.pop('device', 'auto') not in ('auto', 'cpu'):
        raise click.BadParameter("--scenario runs on the CPU", param_hint="'--device'")
    # The checks of the training settings of the same names.
    overrides = {name: check_value(name, value) for name, value in explicit.items()}
    num_threads = overrides.pop('num_threads', None) or 2
    with blame(usage=True):
        runner.make_scenario(scenario, **overrides)
    log = None if quiet else (lambda message: click.echo(message, err=True))
    result = runner.benchmark_scenario(scenario, impls or IMPLEMENTATIONS, steps=steps,
                                num_threads=num_threads, repeats=repeats, log=log, **overrides)
    if not quiet:
        click.echo(runner.format_scenario_result(result))
    if as_json:
        click.echo(json.dumps(result))
    return result
