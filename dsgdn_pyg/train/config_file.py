r"""Run settings from a TOML file, and their resolution over the presets and defaults.
Torch-free."""
from typing import Any, Dict, Mapping, Optional

try:  # Python >= 3.11
    import tomllib
except ImportError:  # pragma: no cover
    import tomli as tomllib

from dsgdn_pyg.settings.checks import ConfigError
from dsgdn_pyg.train.config import TrainConfig, config_fields, unknown_setting

def read_toml(path: str) -> Dict[str, Any]:
    r"""Reads a TOML file of :class:`TrainConfig` values.

    Keys are field names, with ``_`` or ``-`` (``batch-size`` = ``batch_size``); a ``[train]``
    table may hold them instead of the top level. A ``[csv]`` table (the column mapping of a
    ``csv:DIR`` dataset) becomes ``data_options['csv']``; a ``[data_options]`` table holds other
    loader options. An unknown key raises :class:`ConfigError` naming it and the closest field.
    """
    try:
        with open(path, 'rb') as f:
            raw = tomllib.load(f)
    except OSError as e:
        raise ConfigError(f"cannot read config file {path!r}: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path!r} is not valid TOML: {e}") from None
    raw = dict(raw)
    # Loader settings live in their own tables: [csv] is the column mapping of a dialogue CSV
    # dataset, [data_options] any other keyword of the loader.
    data_options: Dict[str, Any] = {}
    for table in ('data_options', 'data-options', 'csv'):
        if table in raw:
            if not isinstance(raw[table], dict):
                raise ConfigError(f"config file {path!r}: [{table}] must be a table")
            if table == 'csv':
                data_options['csv'] = raw.pop(table)
            else:
                data_options.update(raw.pop(table))
    if set(raw) == {'train'} and isinstance(raw['train'], dict):
        raw = raw['train']
    names = set(config_fields())
    values: Dict[str, Any] = {'data_options': data_options} if data_options else {}
    for key, value in raw.items():
        name = key.replace('-', '_')
        if name not in names:
            raise unknown_setting(key, f"config file {path!r} has ")
        if name in values:
            raise ConfigError(f"config file {path!r} sets {name!r} twice")
        values[name] = value
    return values


def resolve_config(explicit: Optional[Mapping[str, Any]] = None,
                   file_values: Optional[Mapping[str, Any]] = None) -> TrainConfig:
    r"""Builds a :class:`TrainConfig` from explicit values over file values over the preset
    of the resulting dataset over the dataclass defaults."""
    merged = dict(file_values or {})
    merged.update(explicit or {})
    for key in merged:
        if key not in config_fields():
            raise unknown_setting(key)
    return TrainConfig(**merged)
