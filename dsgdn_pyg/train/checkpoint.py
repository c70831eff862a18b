r"""Checkpoints and atomic file writes.

A checkpoint is a plain ``dict`` of tensors and primitive containers, so that it loads with
``torch.load(..., weights_only=True)`` (no code runs when a checkpoint is opened). Every
file is written to a temporary file in the target directory and moved into place with
:func:`os.replace`, so a reader never sees a half-written file, even after a crash.
"""
import os
from typing import Any, Dict, Iterable, Mapping, Optional, Union

import torch

from dsgdn_pyg.io import atomic_write, atomic_write_text  # noqa: F401 (re-exported)

PathLike = Union[str, os.PathLike]

CHECKPOINT_FORMAT = 'dsgdn-pyg-checkpoint'
CHECKPOINT_VERSION = 1
#: Keys every checkpoint has (``last.pt`` adds optimizer, RNG and bookkeeping state).
REQUIRED_KEYS = ('format', 'format_version', 'model_config', 'model_state', 'label_names',
                 'dataset', 'data_options', 'data_seed', 'window', 'modalities',
                 'train_config', 'epoch')


class CheckpointError(ValueError):
    r"""A checkpoint is missing, unreadable, not a dsgdn-pyg checkpoint, or does not match
    the configuration or data it is used with."""


def save_checkpoint(path: PathLike, payload: Mapping[str, Any]) -> None:
    r"""Saves a checkpoint atomically.

    Args:
        path (str): Destination, e.g. ``'runs/x/best.pt'``.
        payload (dict): Tensors and primitive containers only (anything else would not load
            with ``weights_only=True``).
    """
    payload = dict(payload)
    payload.setdefault('format', CHECKPOINT_FORMAT)
    payload.setdefault('format_version', CHECKPOINT_VERSION)
    atomic_write(path, lambda f: torch.save(payload, f))


def load_checkpoint(path: PathLike, map_location: Any = 'cpu') -> Dict[str, Any]:
    r"""Loads a checkpoint written by :func:`save_checkpoint`.

    Args:
        path (str): The checkpoint file.
        map_location: Where to put the tensors, as in :func:`torch.load`.
            (default: :obj:`'cpu'`)

    Raises:
        CheckpointError: If the file is missing, truncated or corrupted, was not written by
            dsgdn-pyg, or lacks required entries.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise CheckpointError(f"checkpoint {path!r} does not exist")
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint {path!r} is not a file")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # zip, pickle and EOF errors all mean "not a loadable checkpoint"
        raise CheckpointError(f"checkpoint {path!r} cannot be read: it is truncated, corrupted "
                              f"or not a dsgdn-pyg checkpoint ({_load_failure(e)})") from None
    check_format(payload, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, path, 'a dsgdn-pyg checkpoint')
    missing = [key for key in REQUIRED_KEYS if key not in payload]
    if missing:
        raise CheckpointError(f"checkpoint {path!r} lacks the entries {missing}")
    return payload


def check_format(document: Any, fmt: str, version: int, source: str, kind: str) -> None:
    r"""Raises :class:`CheckpointError` unless :obj:`document` is a :obj:`dict` whose
    ``'format'`` entry is :obj:`fmt` and whose ``'format_version'`` is :obj:`version`: the
    first check of every file dsgdn-pyg writes with these two entries (a checkpoint, the
    config of a model folder), before any other entry is read.

    Args:
        document: What the file holds.
        fmt (str): The ``'format'`` entry of such a file.
        version (int): The ``'format_version'`` this dsgdn-pyg reads.
        source (str): The file, as the messages name it.
        kind (str): What such a file is, as in ``'a dsgdn-pyg checkpoint'``.
    """
    if not isinstance(document, dict) or document.get('format') != fmt:
        raise CheckpointError(f"{source!r} is not {kind} (no 'format': {fmt!r} entry)")
    if document.get('format_version') != version:
        raise CheckpointError(f"{source!r} is {kind} of format version "
                              f"{document.get('format_version')!r}; this dsgdn-pyg reads "
                              f"version {version}")


def _load_failure(error: Exception) -> str:
    text = str(error).strip()
    if text.startswith('Weights only load failed'):
        # torch's advice to retry with weights_only=False is wrong for a checkpoint of ours:
        # a genuine one holds nothing but tensors and plain containers.
        return 'it holds objects other than tensors and plain containers'
    return text.splitlines()[0] if text else type(error).__name__


def config_differences(saved: Mapping[str, Any], requested: Mapping[str, Any],
                       ignore: Iterable[str] = ()) -> Dict[str, Any]:
    r"""``{key: (saved, requested)}`` for every key whose values differ (missing = None)."""
    ignore = set(ignore)
    keys = [k for k in dict.fromkeys(list(saved) + list(requested)) if k not in ignore]
    return {k: (saved.get(k), requested.get(k)) for k in keys
            if _normalise(saved.get(k)) != _normalise(requested.get(k))}


def check_config_matches(what: str, saved: Mapping[str, Any], requested: Mapping[str, Any],
                         source: Optional[str] = None, ignore: Iterable[str] = ()) -> None:
    r"""Raises :class:`CheckpointError` listing the differences between two configurations."""
    diff = config_differences(saved, requested, ignore)
    if diff:
        where = f" {source!r}" if source else ''
        details = '; '.join(f"{k}: checkpoint {a!r}, requested {b!r}"
                            for k, (a, b) in diff.items())
        raise CheckpointError(f"checkpoint{where} was made with a different {what} ({details})")


def _normalise(value: Any) -> Any:
    # Tuples and lists, ints and equal floats compare equal after a JSON-like round trip.
    if isinstance(value, Mapping):
        return {str(k): _normalise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normalise(v) for v in value]
    return value
