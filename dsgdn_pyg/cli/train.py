r"""``dsgdn-pyg train``."""
import dataclasses
import datetime
import os
import re
from typing import Optional

import click

from dsgdn_pyg.cli.options import (INTERRUPTED, blame, explicit_values, parse_data_options,
                                   setting_options, user_errors)
from dsgdn_pyg.train.config import ConfigError
from dsgdn_pyg.train.config_file import read_toml, resolve_config


@click.command()
@click.option('--config', 'config_file', type=click.Path(dir_okay=False), metavar='FILE.toml',
              help='TOML file of settings (keys = option names); options given here win.')
@setting_options()
@click.pass_context
@user_errors
def train(ctx: click.Context, config_file: Optional[str], **options):
    r"""Train AMB-DSGDN and report the test scores of the selected epoch.

    Settings come from, in order of precedence: the options given here, the --config file
    (keys = the option names), the dataset's preset (the published settings; "dataset preset"
    below lists its values for synthetic-iemocap, IEMOCAP, MELD and transcripts), the built-in
    defaults. The run goes to --out DIR (default: a fresh runs/<dataset>-<date-time>/), with
    DIR/model/, the selected epoch's model folder.
    """
    from dsgdn_pyg.train import train as run

    explicit = explicit_values(ctx, options)
    with blame('--config', errors=(ConfigError,)):
        file_values = read_toml(config_file) if config_file else {}
    if 'data_options' in explicit:  # adds to the file's loader options
        explicit['data_options'] = {**dict(file_values.get('data_options') or {}),
                                    **parse_data_options(explicit['data_options'])}
    config = resolve_config(explicit, file_values)
    if config.out is None:  # a run is never lost for a forgotten --out
        config = dataclasses.replace(config, out=fresh_run_dir(config.dataset))
        if not config.quiet:
            click.echo(f"writing the run to {config.out}/ (choose with --out DIR)", err=True)
    ctx.meta[INTERRUPTED] = f"interrupted; continue with --resume --out {config.out}"
    metrics = run(config)
    best = os.path.join(config.out, 'best.pt')
    if os.path.isfile(best):
        from dsgdn_pyg.inference.model_folder import export_model
        export_model(best, os.path.join(config.out, 'model'), metrics=metrics)
    if not config.quiet:
        click.echo(f"wrote {config.out}/: metrics.json, best.pt, last.pt and model/ (the "
                   f"selected epoch's model folder: dsgdn-pyg predict --model "
                   f"{os.path.join(config.out, 'model')} --input talk.csv)")
    return metrics


def fresh_run_dir(dataset: str, now: Optional[datetime.datetime] = None,
                  root: str = 'runs') -> str:
    r"""``runs/<dataset>-<date>-<time>`` (a suffix ``-2``, ``-3``, ... if it exists): the
    dataset's kind and the last part of its path, e.g. ``runs/meld-csv-meld-20261202-0415``."""
    kind, _, path = str(dataset).partition(':')
    name = '-'.join(p for p in (kind, os.path.basename(os.path.normpath(path)) if path else '')
                    if p)
    name = re.sub(r'[^A-Za-z0-9_.-]+', '-', name).strip('-.') or 'run'
    stamp = (now or datetime.datetime.now()).strftime('%Y%m%d-%H%M%S')
    candidate, k = os.path.join(root, f'{name}-{stamp}'), 1
    while os.path.exists(candidate):
        k += 1
        candidate = os.path.join(root, f'{name}-{stamp}-{k}')
    return candidate
