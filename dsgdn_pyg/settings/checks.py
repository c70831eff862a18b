r"""The checks of the run settings (each returns the accepted, normalised value or raises
:class:`ValueError` with the reason), :class:`ConfigError`, and the parsers of setting values
given as text: one ``KEY=VALUE`` parser (:func:`parse_key_values`), modality lists and
modality maps. Torch-free."""
import json
import math
import re
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from dsgdn_pyg.names import MODALITIES

class ConfigError(ValueError):
    r"""A run setting is invalid, or does not fit the data it is applied to.

    Args:
        message (str): The full message.
        field (str, optional): The :class:`TrainConfig` field at fault, if one is.
        detail (str, optional): The message without the field name.
    """
    def __init__(self, message: str, field: Optional[str] = None,
                 detail: Optional[str] = None):
        super().__init__(message)
        self.field = field
        self.detail = detail if detail is not None else message


def _fail(name: str, message: str):
    raise ConfigError(f"'{name}' {message}", field=name, detail=message)


# Checks: each returns the accepted (normalised) value or raises ValueError with the reason ####

Check = Callable[[Any], Any]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def _described(check: Check, text: str) -> Check:
    check.text = text  # what the value must be, for messages and help
    return check


def integer(minimum: int) -> Check:
    r"""Accepts an integer :math:`\geq` :obj:`minimum`."""
    def check(value):
        if not _is_int(value) or value < minimum:
            raise ValueError(f"must be an integer >= {minimum}, got {value!r}")
        return value
    return _described(check, f'integer >= {minimum}')


def number(minimum: float = 0.0, maximum: float = math.inf, positive: bool = False,
           below_maximum: bool = False) -> Check:
    r"""Accepts a finite number in :obj:`[minimum, maximum]` (:obj:`> minimum` if
    :obj:`positive`, :obj:`< maximum` if :obj:`below_maximum`)."""
    if maximum == math.inf:
        text = ('a positive number' if positive and minimum == 0 else
                'a non-negative number' if minimum == 0 else f'a number >= {minimum:g}')
    else:
        text = f"a number in [{minimum:g}, {maximum:g}{')' if below_maximum else ']'}"

    def check(value):
        if (not _is_number(value) or value < minimum or (positive and value == minimum)
                or value > maximum or (below_maximum and value == maximum)):
            raise ValueError(f"must be {text}, got {value!r}")
        return value
    return _described(check, text)


def one_of(*choices: str) -> Check:
    r"""Accepts one of :obj:`choices`."""
    def check(value):
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(map(repr, choices))}, got {value!r}")
        return value
    return _described(check, ' or '.join(choices))


def _boolean(value):
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {value!r}")
    return value


def _dataset_name(value):
    if not isinstance(value, str) or not value:
        raise ValueError(f"must be a non-empty name, got {value!r}")
    return value


def _device(value):
    if not isinstance(value, str) or not re.fullmatch(r'auto|cpu|cuda(:\d+)?', value):
        raise ValueError(f"must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {value!r}")
    return value


def _patience(value):
    if not _is_int(value) or value < 0:
        raise ValueError(f"must be a non-negative integer (0 = off), got {value!r}")
    return value or None


def _directory(value):
    if not str(value):
        raise ValueError("must be a directory path or None, got ''")
    return str(value)


def _loader_options(value):
    if not isinstance(value, Mapping):
        raise ValueError(f"must be a mapping of loader options, got {value!r}")
    return dict(value)


def _integer(value):
    if not _is_int(value):
        raise ValueError(f"must be an integer, got {value!r}")
    return value


def _finite(value):
    if not _is_number(value):
        raise ValueError(f"must be a finite number, got {value!r}")
    return value


def _text(value):
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {value!r}")
    return value


def _anything(value):
    return value


#: The check of a field declared without one, by its annotated type.
TYPE_CHECKS: Dict[type, Check] = {bool: _boolean, int: _integer, float: _finite, str: _text}


# Parsers ######################################################################################

def parse_setting_value(raw: str) -> Any:
    r"""The value of a ``KEY=VALUE`` command-line setting: JSON if it parses (numbers, booleans,
    objects), else the bare string (e.g. ``fusion_weights=t=0.8,a=0.1,v=0.1``)."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # nested too deeply for the parser: not JSON here
        return raw


def split_key_value(item: str, noun: str = 'KEY', last: bool = False) -> Tuple[str, str]:
    r"""The one ``KEY=VALUE`` split of the package: the stripped key and the raw value, split at
    the first ``=`` (at the last with :obj:`last`, for keys that may hold one); raises
    :class:`ValueError` (``expected KEY=VALUE, got ...``, :obj:`noun` naming the key)."""
    key, sep, raw = item.rpartition('=') if last else item.partition('=')
    if not sep or not key.strip():
        raise ValueError(f"expected {noun}=VALUE, got {item!r}")
    return key.strip(), raw


def parse_key_values(items: Sequence[str], noun: str = 'KEY',
                     unique: bool = False) -> Dict[str, Any]:
    r"""``['KEY=VALUE', ...]`` as a dict (VALUE parsed by :func:`parse_setting_value`, ``-`` in
    KEY read as ``_``); raises :class:`ValueError` naming a malformed item, or with
    :obj:`unique` a key given twice."""
    values: Dict[str, Any] = {}
    for item in items:
        key, raw = split_key_value(item, noun)
        key = key.replace('-', '_')
        if unique and key in values:
            raise ValueError(f"sets {key!r} twice")
        values[key] = parse_setting_value(raw)
    return values


def parse_modalities(value: Union[str, Sequence[str]]) -> List[str]:
    r"""Parses ``'t,a,v'`` (or ``'tav'``, or a list) into modality letters in canonical order.

    Raises :class:`ConfigError` for letters other than ``t``, ``a``, ``v``, repeats or an
    empty selection.
    """
    if isinstance(value, str):
        text = value.replace(' ', '')
        letters = text.split(',') if ',' in text else list(text)
    elif isinstance(value, Sequence):
        letters = [str(v).strip() for v in value]
    else:
        _fail('modalities', f"must be a string like 't,a,v' or a list, got {value!r}")
    letters = [m for m in letters if m != '']
    unknown = [m for m in letters if m not in MODALITIES]
    if unknown:
        _fail('modalities', f"has unknown modality {', '.join(map(repr, unknown))}; use letters "
              f"t (text), a (audio), v (visual), e.g. 't,a,v'")
    if not letters:
        _fail('modalities', "must name at least one of t, a, v")
    if len(set(letters)) != len(letters):
        _fail('modalities', f"names a modality twice: {value!r}")
    return [m for m in MODALITIES if m in letters]


def _parse_pairs(name: str, text: str) -> Dict[str, str]:
    pairs: Dict[str, str] = {}
    for item in text.split(','):
        item = item.strip()
        if not item:
            continue
        try:
            key, val = split_key_value(item)
        except ValueError:
            key, val = '', ''
        if not val.strip():
            _fail(name, f"must look like 't=0.8,a=0.1,v=0.1', got {text!r}")
        if key in pairs:
            _fail(name, f"names {key!r} twice in {text!r}")
        pairs[key] = val.strip()
    return pairs


def _format_pairs(pairs: Mapping[str, Any]) -> str:
    return ','.join(f'{k}={v}' for k, v in pairs.items()) or '(none)'


def _parse_typed_pairs(name: str, text: str, cast, what: str) -> Dict[str, Any]:
    values = {}
    for key, val in _parse_pairs(name, text).items():
        try:
            values[key] = cast(val)
        except ValueError:
            _fail(name, f"has a non-{what} {val!r} for {key!r}")
    return values


def _check_modality_map(name: str, values: Any, what: str, valid: Check) -> Dict[str, Any]:
    if not isinstance(values, Mapping) or not values:
        _fail(name, f"must map modalities to {what}s, got {values!r}")
    unknown = [m for m in values if m not in MODALITIES]
    if unknown:
        _fail(name, f"has unknown modality {', '.join(map(repr, unknown))}; use t, a, v")
    for m, v in values.items():
        try:
            valid(v)
        except ValueError as e:
            _fail(name, f"{what} of {m!r} {e}")
    return {m: values[m] for m in MODALITIES if m in values}


def parse_fusion_weights(text: str) -> Dict[str, float]:
    r"""Parses ``'t=0.8,v=0.1,a=0.1'`` into ``{'t': 0.8, 'a': 0.1, 'v': 0.1}``."""
    return _check_fusion_weights(_parse_typed_pairs('fusion_weights', text, float,
                                                    'numeric weight'))


def _check_fusion_weights(weights: Any) -> Dict[str, float]:
    weights = _check_modality_map('fusion_weights', weights, 'weight', number(0))
    if sum(weights.values()) <= 0:
        _fail('fusion_weights', f"must have a positive sum, got {_format_pairs(weights)}")
    return {m: float(w) for m, w in weights.items()}


def parse_feature_dims(text: str) -> Dict[str, int]:
    r"""Parses ``'t=64,a=32,v=32'`` into ``{'t': 64, 'a': 32, 'v': 32}``."""
    return _check_feature_dims(_parse_typed_pairs('feature_dims', text, int, 'integer width'))


def _check_feature_dims(dims: Any) -> Dict[str, int]:
    return {m: int(d) for m, d in
            _check_modality_map('feature_dims', dims, 'width', integer(1)).items()}
