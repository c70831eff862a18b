r"""``dsgdn-pyg experiment``."""
from typing import Any, Dict, Iterable, Optional, Tuple

import click

from dsgdn_pyg.cli.options import (INTERRUPTED, blame, parse_data_options, setting_options,
                                   user_errors)
from dsgdn_pyg.cli.studies import study
from dsgdn_pyg.names import EXPERIMENT_NAMES
from dsgdn_pyg.train.config import ConfigError, config_fields, parse_key_values, unknown_setting


def _parse_settings(values: Iterable[str]) -> Dict[str, Any]:
    r"""``--set FIELD=VALUE`` items as TrainConfig values (VALUE parsed as JSON if it can be)."""
    RESERVED_FIELDS = study('experiments').RESERVED_FIELDS
    with blame('--set'):
        settings = parse_key_values(values, noun='FIELD', unique=True)
    for name in settings:
        if name not in config_fields():
            raise click.BadParameter(str(unknown_setting(name, noun='field')),
                                     param_hint="'--set'")
        if name in RESERVED_FIELDS:
            raise click.BadParameter(f"{name!r} is set by the experiment (use --seeds / --out)",
                                     param_hint="'--set'")
    return settings


@click.command()
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
@click.pass_context
@user_errors
def experiment(ctx: click.Context, name: str, dataset: Optional[str],
               modalities: Optional[str], epochs: Optional[int],
               data_options: Tuple[str, ...], seeds: str, out: str, quick: bool, quiet: bool,
               set_items: Tuple[str, ...]):
    r"""Run one of the paper's experiments and print its table (mean ± std over seeds).

    NAME: modalities (table 4), ablation (tables 5-6), window (fig. 3), heads (fig. 4),
    warmup (fig. 5), dropout-grid (table 7), noise (fig. 7), long (fig. 6), imbalance
    (fig. 8), overhead (tables 8-9). Costs: README, section Experiments.
    """
    experiments = study('experiments')
    from dsgdn_pyg.train import TrainConfig

    with blame('--seeds'):
        seed_list = experiments.parse_seeds(seeds)
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
                                  **parse_data_options(data_options)}
    with blame(usage=True, errors=(TypeError,)):
        config = TrainConfig(**values)
    echo = None if quiet else (lambda line: click.echo(line, err=True))
    ctx.meta[INTERRUPTED] = (f"interrupted; run the same command again to continue (finished "
                             f"runs in {out} are reused)")
    with blame(usage=True, errors=(ConfigError,)):  # of a variant, not of an option
        quick_epochs = None if epochs is not None else experiments.QUICK_EPOCHS
        result = experiments.run_experiment(name, config, seed_list, out, quick=quick,
                                            quick_epochs=quick_epochs, echo=echo)
    click.echo(result['markdown'])
    if not quiet:
        click.echo(f"wrote {', '.join(result['files'].values())} "
                   f"({result['elapsed_s']:.0f} s)")
    return result

