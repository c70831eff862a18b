r"""What every command shares: the options generated from the settings' declarations, the
KEY=VALUE options, and the one mapping of the package's user errors onto click errors.

User mistakes (bad option values, unknown datasets, missing or mismatched checkpoints) end
with an ``Error: ...`` message and a non-zero exit status, never with a traceback.
"""
import functools
import sys
from contextlib import contextmanager
from typing import Any, Dict, Iterable, Iterator, Optional, Tuple, Type

import click
from click.core import ParameterSource

from dsgdn_pyg.builtin import builtin_names
# Torch-free: the settings' declarations, from which the options are generated.
from dsgdn_pyg.train.config import (ConfigError, default_text, parse_key_values, setting_of,
                                    settings, value_type)

EXPLICIT_SOURCES = (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT,
                    ParameterSource.PROMPT)
# Where a command keeps the line to print if the user interrupts it (ctx.meta key).
INTERRUPTED = 'dsgdn_pyg.interrupted'


def option_name(field: str) -> str:
    r"""The command-line option of a :class:`~dsgdn_pyg.train.TrainConfig` field."""
    return setting_of(next(f for f in settings() if f.name == field)).option or \
        '--' + field.replace('_', '-')


def explicit_values(ctx: click.Context, values: Dict[str, Any]) -> Dict[str, Any]:
    r"""The parameters of :obj:`values` that the user gave (not left to their defaults)."""
    return {name: value for name, value in values.items()
            if ctx.get_parameter_source(name) in EXPLICIT_SOURCES}


def given_flags(ctx: click.Context, flags: Dict[str, str]) -> list:
    r"""The flags (values of :obj:`flags`) whose parameters (keys) the user gave."""
    return [flag for name, flag in flags.items()
            if ctx.get_parameter_source(name) in EXPLICIT_SOURCES]


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
        name = option_name(f.name)
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
        # Read by user_errors: a faulty value of these options is blamed on the option.
        func.setting_fields = set(getattr(func, 'setting_fields', ())) | {f.name for f in fields}
        return func
    return decorate


class _Blamed(Exception):
    r"""An error of one option's value or of one file, on its way to :func:`user_errors`."""

    def __init__(self, error: BaseException, option: Optional[str], prefix: Optional[str],
                 usage: bool):
        super().__init__(str(error))
        self.error, self.option, self.prefix, self.usage = error, option, prefix, usage


@contextmanager
def blame(option: Optional[str] = None, prefix: Optional[str] = None, usage: bool = False,
          errors: Tuple[Type[BaseException], ...] = (ValueError,),
          unless: Tuple[Type[BaseException], ...] = ()) -> Iterator[None]:
    r"""Inside it, :obj:`errors` (but not :obj:`unless`) are the user's: reported as a bad
    value of :obj:`option`, as a usage error (:obj:`usage`), or as ``Error: PREFIX: reason``
    (:obj:`prefix`, for files that cannot be read or written), by :func:`user_errors`."""
    try:
        yield
    except errors as e:
        if isinstance(e, unless):
            raise
        raise _Blamed(e, option, prefix, usage) from None


# Errors that end a command with ``Error: ...`` (exit status 1): (module, class).
_FAILURES = (('dsgdn_pyg.train.checkpoint', 'CheckpointError'),
             ('dsgdn_pyg.train.distributed', 'DistributedError'),
             ('dsgdn_pyg.io', 'DiskFullError'))


def _click_error(error: BaseException, explicit: Iterable[str]) -> Optional[click.ClickException]:
    r"""The click error of one of the package's user errors; :obj:`None` for a bug."""
    if isinstance(error, _Blamed):
        if error.option:
            return click.BadParameter(str(error), param_hint=f"'{error.option}'")
        if error.prefix:
            e = error.error
            return click.ClickException(f"{error.prefix}: {getattr(e, 'strerror', None) or e}")
        return click.UsageError(str(error)) if error.usage else click.ClickException(str(error))
    if isinstance(error, ConfigError):
        field = getattr(error, 'field', None)
        if field is not None and field in set(explicit):
            return click.BadParameter(error.detail, param_hint=f"'{option_name(field)}'")
        return click.UsageError(str(error))
    # Only a command that ran them can meet these: their modules are imported by then.
    experiments = sys.modules.get('benchmarks.experiments.grids')
    if experiments is not None and isinstance(error, experiments.ExperimentError):
        return click.UsageError(str(error))
    for module, name in _FAILURES:
        kind = getattr(sys.modules.get(module), name, None)
        if kind is not None and isinstance(error, kind):
            return click.ClickException(str(error))
    return None


def user_errors(func):
    r"""Decorator of a command: the package's user errors (:class:`ConfigError`,
    ``CheckpointError``, ``DistributedError``, ``ExperimentError`` and what :func:`blame`
    marks) become click errors (``Error: ...``, exit status 1 or 2), naming the option where
    the faulty value came from the command line; an interrupt prints the line the command
    left in ``ctx.meta[INTERRUPTED]`` and exits with status 130."""
    @functools.wraps(func)
    def command(*args, **kwargs):
        ctx = click.get_current_context()
        try:
            return func(*args, **kwargs)
        except KeyboardInterrupt:
            click.echo(ctx.meta.get(INTERRUPTED, 'interrupted'), err=True)
            sys.exit(130)
        except Exception as e:
            fields = getattr(ctx.command.callback, 'setting_fields', ())
            explicit = explicit_values(ctx, {name: None for name in fields})
            mapped = _click_error(e, explicit)
            if mapped is None:
                raise
            raise mapped from None
    return command


def parse_data_options(values: Iterable[str]) -> Dict[str, Any]:
    r"""``--data-option KEY=VALUE`` items as loader options."""
    with blame('--data-option'):
        return parse_key_values(values)


def inference_options(func):
    r"""Decorator: the options of the commands that score a checkpoint on a dataset split."""
    func = click.option('--device', default='auto', show_default=True,
                        metavar='auto|cpu|cuda', help='Device.')(func)
    func = click.option('--data-option', 'data_option', multiple=True, metavar='KEY=VALUE',
                        help='Loader option for --dataset; repeatable.')(func)
    func = click.option('--split', type=click.Choice(['train', 'valid', 'test']),
                        default='test', show_default=True, help='Split to score.')(func)
    func = click.option('--dataset', metavar='NAME',
                        help="Dataset; default: the checkpoint's own, with its options.")(func)
    return model_options(func)


def model_options(func, what: str = 'A'):
    r"""Decorator: ``--model DIR`` (a model folder or a run folder) and ``--checkpoint PATH``
    (a ``best.pt``/``last.pt``); the command receives both and takes one with
    :func:`chosen_model`."""
    func = click.option('--model', 'model_dir', metavar='DIR|NAME',
                        help=f'{what} model folder (`dsgdn-pyg export`, or DIR/model of '
                             f'`dsgdn-pyg train --out DIR`), a run folder, or a built-in '
                             f'model: {builtin_names()}.')(func)
    func = click.option('--checkpoint', metavar='PATH',
                        help=f'{what} best.pt or last.pt written by `dsgdn-pyg train` '
                             f'(instead of --model).')(func)
    return func


def chosen_model(checkpoint: Optional[str], model_dir: Optional[str],
                 default: Optional[str] = None) -> str:
    r"""The one of ``--checkpoint`` and ``--model`` that was given (:obj:`default` if
    neither was and there is one)."""
    if checkpoint is None and model_dir is None and default is not None:
        return default
    if (checkpoint is None) == (model_dir is None):
        raise click.UsageError('give the model with --model DIR (or --checkpoint PATH), '
                               'exactly one of them')
    return checkpoint if checkpoint is not None else model_dir
