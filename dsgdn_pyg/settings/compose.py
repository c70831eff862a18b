r"""Settings made of parts: each model and each dataset kind declares its own settings as a
small dataclass, and the run settings (:class:`~dsgdn_pyg.train.TrainConfig`) hold them all as
flat fields, so that command-line options and TOML keys stay flat (``--q-base``,
``q_base = 0.2``). :func:`include_settings` adds the parts' fields to the run settings;
:func:`check_scope` refuses a value given for a part that does not apply to the run (a
Sync-TVA setting on AMB-DSGDN, a transcript setting on synthetic data). Torch-free."""
import dataclasses
from typing import Any, Callable, Dict, Iterator, Optional, Sequence, Tuple

from dsgdn_pyg.settings.checks import _fail
from dsgdn_pyg.settings.declaration import setting_of


def include_settings(anchor: str, parts: Sequence[type]) -> Callable[[type], type]:
    r"""Class decorator, applied before :func:`dataclasses.dataclass`: adds the fields of every
    settings dataclass of :obj:`parts` (each name once, in the parts' order) right after the
    field :obj:`anchor` of the decorated class.

    Raises:
        TypeError: Two parts declare the same name differently, or a part redeclares a field
            of the class.
    """
    def decorate(cls: type) -> type:
        own = dict(cls.__dict__.get('__annotations__', {}))
        added: Dict[str, dataclasses.Field] = {}
        for part in parts:
            for f in dataclasses.fields(part):
                if f.name in own:
                    raise TypeError(f"{part.__name__} redeclares {cls.__name__}.{f.name}")
                if f.name in added and not _same_declaration(added[f.name], f):
                    raise TypeError(f"{part.__name__}.{f.name} is declared differently by "
                                    f"another part of {cls.__name__}")
                added.setdefault(f.name, f)
        annotations = {}
        for name, kind in own.items():
            annotations[name] = kind
            if name == anchor:
                for f in added.values():
                    annotations[f.name] = f.type
                    setattr(cls, f.name, dataclasses.field(
                        default=f.default, default_factory=f.default_factory,
                        metadata=f.metadata))
        cls.__annotations__ = annotations
        return cls
    return decorate


def _same_declaration(a: dataclasses.Field, b: dataclasses.Field) -> bool:
    return (a.type == b.type and a.default == b.default
            and a.default_factory == b.default_factory and setting_of(a) == setting_of(b))


def part_fields(parts: Sequence[type]) -> Dict[str, Tuple[dataclasses.Field, Tuple[type, ...]]]:
    r"""Every field name of :obj:`parts`, with its field and the parts that declare it."""
    found: Dict[str, Tuple[dataclasses.Field, Tuple[type, ...]]] = {}
    for part in parts:
        for f in dataclasses.fields(part):
            field, owners = found.get(f.name, (f, ()))
            found[f.name] = (field, owners + (part,))
    return found


def _unset(f: dataclasses.Field, value: Any) -> bool:
    # A value the run would have without the user: the default, or an empty/zero/off value
    # where the default is None (0 and None both mean "no text context"). A preset setting
    # is never foreign: it comes with the dataset's preset, which configs of several models
    # share (the modality-dropout settings of a MELD run under Sync-TVA are ignored).
    if value is None or setting_of(f).preset:
        return True
    default = f.default_factory() if f.default is dataclasses.MISSING else f.default
    return value == default or (default is None and not value and value is not True)


def foreign_values(config: Any, chosen: Optional[type],
                   parts: Sequence[type]) -> Iterator[Tuple[str, Any, Tuple[type, ...]]]:
    r"""``(field, value, owners)`` for each field of :obj:`parts` that the :obj:`chosen` part
    (:obj:`None`: none applies) does not declare and that :obj:`config` sets."""
    own = {f.name for f in dataclasses.fields(chosen)} if chosen is not None else set()
    for name, (f, owners) in part_fields(parts).items():
        value = getattr(config, name)
        if name not in own and not _unset(f, value):
            yield name, value, owners


def check_scope(config: Any, chosen: Optional[type], parts: Sequence[type],
                refusal: Callable[[Tuple[type, ...], Any], str]) -> None:
    r"""Raises :class:`~dsgdn_pyg.settings.ConfigError` naming the first field of
    :obj:`parts` that :obj:`config` sets although the :obj:`chosen` part has no such setting;
    :obj:`refusal(owners, value)` says why."""
    for name, value, owners in foreign_values(config, chosen, parts):
        _fail(name, refusal(owners, value))
