r"""How a setting is declared (:func:`setting`, :class:`Setting` in a dataclass field's
metadata), read back (its type, default text and docstring line) and checked
(:func:`check_field`). The run settings (:class:`~dsgdn_pyg.train.TrainConfig`), each model's
settings (:class:`~dsgdn_pyg.models.ModelSettings`) and each dataset kind's are declared this
way; the command line, its ``--help``, the validation and the docs are generated from the
declarations. Torch-free."""
import dataclasses
import textwrap
import typing
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence, Tuple, Union

from dsgdn_pyg.settings.checks import TYPE_CHECKS, Check, ConfigError, _anything, _fail, one_of


@dataclass(frozen=True)
class Setting:
    r"""What the command line, the docs and the validation need to know about one
    setting (a field of :class:`~dsgdn_pyg.train.TrainConfig`, of a model's or of a dataset
    kind's settings dataclass) (stored in the field's :obj:`metadata['setting']`).

    Args:
        help (str): One sentence for ``--help`` and the docstring.
        check (callable, optional): Returns the accepted value or raises
            :class:`ValueError`; :obj:`None` = the check of the annotated type
            (:obj:`TYPE_CHECKS`).
        choices (tuple of str, optional): The valid values (a command-line choice).
        parse (callable, optional): Turns a string (command line, ``--set``) into the value.
        switch (bool): A boolean as ``--name/--no-name``; :obj:`False` = ``--name`` only.
        metavar (str, optional): The value's name in ``--help``.
        short (str, optional): A one-letter alias, e.g. ``'-q'``.
        preset (bool): The default comes from the dataset's preset.
        unset (str, optional): What :obj:`None` means, for the help text.
        option (str, optional): The option's name where it is not ``--field-name``.
        repeatable (bool): The option may be given several times, each a ``KEY=VALUE``
            item (:func:`parse_key_values`).
    """
    help: str
    check: Optional[Check] = None
    choices: Optional[Tuple[str, ...]] = None
    parse: Optional[Callable[[str], Any]] = None
    switch: bool = True
    metavar: Optional[str] = None
    short: Optional[str] = None
    preset: bool = False
    unset: Optional[str] = None
    option: Optional[str] = None
    repeatable: bool = False


def setting(default: Any, help: str, *, factory: Optional[Callable[[], Any]] = None,
            check: Optional[Check] = None, choices: Optional[Sequence[str]] = None,
            **options: Any) -> Any:
    r"""A settings dataclass field with its :class:`Setting` (see
    :mod:`dsgdn_pyg.train.config` for examples).

    Args:
        default: The dataclass default (:obj:`None` for a preset field).
        help (str): The help text.
        factory (callable, optional): Default factory for mutable defaults.
        check (callable, optional): See :class:`Setting`; :obj:`one_of(*choices)` if
            :obj:`choices` are given, else the check of the annotated type.
        choices (sequence of str, optional): The valid values.
        **options: The other :class:`Setting` attributes.
    """
    if check is None and choices is not None:
        check = one_of(*choices)
    meta = Setting(help=help, check=check,
                   choices=None if choices is None else tuple(choices), **options)
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata={'setting': meta})
    return dataclasses.field(default=default, metadata={'setting': meta})


def setting_of(f: dataclasses.Field) -> Setting:
    r"""The :class:`Setting` of a field. A field declared without :func:`setting` still works
    (its name as help, the check of its type), but ``tests/train/test_config.py`` fails until
    it is declared."""
    return f.metadata.get('setting') or Setting(help=f.name.replace('_', ' ').capitalize() + '.')


def value_type(f: dataclasses.Field) -> type:
    r"""The annotated type of a field without :obj:`Optional` (e.g. :obj:`int` for
    :obj:`Optional[int]`, :obj:`list` for :obj:`List[str]`)."""
    kind = f.type
    if typing.get_origin(kind) is Union:
        kind = next(a for a in typing.get_args(kind) if a is not type(None))
    return typing.get_origin(kind) or kind


def accepts_none(f: dataclasses.Field) -> bool:
    return typing.get_origin(f.type) is Union and type(None) in typing.get_args(f.type)


def default_text(f: dataclasses.Field,
                 preset_text: Optional[Callable[[dataclasses.Field], str]] = None) -> str:
    r"""The default of a field as ``--help`` shows it: the value, or for a preset field
    :obj:`preset_text(f)` (the run settings list every preset's value) or
    ``'dataset preset'``."""
    meta = setting_of(f)
    if meta.preset:
        return preset_text(f) if preset_text is not None else 'dataset preset'
    default = f.default_factory() if f.default is dataclasses.MISSING else f.default
    if default is None or default == {}:
        return meta.unset or 'none'
    return show_value(default)


def show_value(value: Any) -> str:
    r"""A setting's value as ``--help`` shows it (``on``/``off``, ``%g``)."""
    if isinstance(value, bool):
        return 'on' if value else 'off'
    return f'{value:g}' if isinstance(value, float) else str(value)


def check_field(f: dataclasses.Field, value: Any) -> Any:
    r"""The value of field :obj:`f` as its declaration accepts it (parsed from a string where
    the field has a parser, normalised); raises :class:`ConfigError` naming the field."""
    meta = setting_of(f)
    if value is None and accepts_none(f):
        return None
    check = meta.check or TYPE_CHECKS.get(value_type(f), _anything)
    try:
        if isinstance(value, str) and meta.parse is not None:
            value = meta.parse(value)
        return check(value)
    except ConfigError:
        raise
    except ValueError as e:
        _fail(f.name, str(e))


def args_section(fields: Sequence[dataclasses.Field],
                 preset_text: Optional[Callable[[dataclasses.Field], str]] = None) -> str:
    r"""The ``Args`` section of a settings dataclass's docstring, from its declarations."""
    lines = ['', '    Args:']
    for f in fields:
        meta = setting_of(f)
        kind = getattr(value_type(f), '__name__', str(value_type(f)))
        lines.append(textwrap.fill(f'{f.name} ({kind}): {meta.help} (default: '
                                   f'{default_text(f, preset_text)})', 96,
                                   initial_indent=' ' * 8, subsequent_indent=' ' * 12))
    return '\n'.join(lines) + '\n'
