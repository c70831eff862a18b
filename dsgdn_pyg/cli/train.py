r"""``dsgdn-pyg train``."""
import os
from contextlib import contextmanager
from typing import Any, Dict, Iterator, Optional

import click

from dsgdn_pyg.cli.options import (INTERRUPTED, blame, explicit_values, parse_data_options,
                                   setting_options, user_errors)
from dsgdn_pyg.train.config import ConfigError, read_toml, resolve_config


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
    defaults.
    """
    from dsgdn_pyg.train import train as run

    explicit = explicit_values(ctx, options)
    with blame('--config', errors=(ConfigError,)):
        file_values = read_toml(config_file) if config_file else {}
    if 'data_options' in explicit:  # adds to the file's loader options
        explicit['data_options'] = {**dict(file_values.get('data_options') or {}),
                                    **parse_data_options(explicit['data_options'])}
    with _naming_the_file(config_file, file_values, explicit):
        config = resolve_config(explicit, file_values)
        hint = f"; continue with --resume --out {config.out}" if config.out else ''
        ctx.meta[INTERRUPTED] = f"interrupted{hint}"
        metrics = run(config)
    if config.out and not config.quiet:
        click.echo(f"wrote {os.path.join(config.out, 'metrics.json')}")
    return metrics


@contextmanager
def _naming_the_file(path: Optional[str], file_values: Dict[str, Any],
                     explicit: Dict[str, Any]) -> Iterator[None]:
    r"""A faulty value that came from the --config file: the error names the file."""
    try:
        yield
    except ConfigError as e:
        if path is None or e.field not in file_values or e.field in explicit:
            raise
        raise ConfigError(f"config file {path!r}: {e}", field=e.field, detail=e.detail) \
            from None
