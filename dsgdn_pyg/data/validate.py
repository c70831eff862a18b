r"""The checks that turn raw per-dialogue fields (feature vectors, labels, speakers) into a
validated dialogue :class:`~torch_geometric.data.Data` (:func:`build_dialogue`, through
:func:`~dsgdn_pyg.data.make_dialogue`); every error names the source, the dialogue and the
field.
"""
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np
import torch
from torch_geometric.data import Data

from dsgdn_pyg.data.corpus import MODALITIES, MODALITY_NAMES, feature_key, make_dialogue

SPLITS = ('train', 'valid', 'test')


def feature_matrix(source: str, dialogue_id: Any, field: str, values: Any,
                   length: int) -> np.ndarray:
    r"""Per-utterance feature vectors (a 2-D array, or a list of vectors) as a float32
    ``[length, D]`` array, after checking that every utterance has the same width, that
    there is one row per utterance and that all values are finite.

    Raises:
        ValueError: Naming :obj:`source`, the dialogue and :obj:`field`.
    """
    where = f"{source}: dialogue {dialogue_id!r}: field '{field}'"
    if length == 0:
        raise ValueError(f"{source}: dialogue {dialogue_id!r} is empty (no utterances)")
    if isinstance(values, np.ndarray) and values.ndim == 2:
        matrix = values
    else:
        rows = list(values)
        widths = []
        for i, row in enumerate(rows):
            shape = np.shape(row)
            if len(shape) != 1:
                raise ValueError(f"{where}: utterance {i} is not a feature vector (shape "
                                 f"{shape})")
            widths.append(shape[0])
        for i, width in enumerate(widths):
            if width != widths[0]:
                raise ValueError(f"{where}: utterance {i} has {width} features but utterance "
                                 f"0 has {widths[0]}; every utterance needs the same width")
        try:
            matrix = np.asarray(rows, dtype=np.float64) if rows else np.zeros((0, 1))
        except (TypeError, ValueError) as e:
            raise ValueError(f"{where}: values are not numbers ({e})") from None
    if matrix.shape[0] != length:
        raise ValueError(f"{where}: has {matrix.shape[0]} utterances but 'labels' has "
                         f"{length}; every per-utterance field needs one entry per utterance")
    try:
        matrix = np.asarray(matrix, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: values are not numbers ({e})") from None
    if matrix.shape[1] == 0:
        raise ValueError(f"{where}: has zero features per utterance")
    finite = np.isfinite(matrix)
    if not finite.all():
        row, col = np.argwhere(~finite)[0]
        raise ValueError(f"{where}: utterance {row} has a non-finite value "
                         f"({matrix[row, col]}) at feature {col}; NaN and inf are not allowed")
    return matrix


def label_vector(source: str, dialogue_id: Any, values: Sequence[Any], num_classes: int,
                 field: str = 'labels') -> np.ndarray:
    r"""Integer labels in ``[-1, num_classes)`` (``-1`` = unlabelled) as an int64 array.

    Raises:
        ValueError: For a non-integer or out-of-range label, naming the dialogue and field.
    """
    where = f"{source}: dialogue {dialogue_id!r}: field '{field}'"
    labels = np.zeros(len(values), dtype=np.int64)
    for i, value in enumerate(values):
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{where}: utterance {i} has label {value!r}, not an "
                             f"integer") from None
        if not number.is_integer():
            raise ValueError(f"{where}: utterance {i} has label {value!r}, not an integer")
        if not -1 <= number < num_classes:
            raise ValueError(f"{where}: utterance {i} has label {int(number)}, out of range "
                             f"for {num_classes} classes (0..{num_classes - 1}, or -1 for "
                             f"unlabelled)")
        labels[i] = int(number)
    return labels


def speaker_indices(source: str, dialogue_id: Any, values: Sequence[Any],
                    fixed: Optional[Mapping[str, int]] = None) -> List[int]:
    r"""Per-utterance speakers as indices within the dialogue.

    * strings: :obj:`fixed` maps them if given (e.g. IEMOCAP's ``{'M': 0, 'F': 1}``),
      otherwise they are numbered in order of first appearance in the dialogue;
    * one-hot vectors (lists or arrays): the index of the one;
    * non-negative integers: taken as the index.

    Raises:
        ValueError: For a vector that is not one-hot, a negative index or an unknown type,
            naming the dialogue and the field ``speakers``.
    """
    where = f"{source}: dialogue {dialogue_id!r}: field 'speakers'"
    order: Dict[str, int] = {}
    indices = []
    for i, value in enumerate(values):
        if isinstance(value, (str, bytes)):
            name = value.decode('latin1') if isinstance(value, bytes) else value
            if fixed is not None:
                if name not in fixed:
                    raise ValueError(f"{where}: utterance {i} has speaker {name!r}; expected "
                                     f"one of {sorted(fixed)}")
                indices.append(fixed[name])
            else:
                indices.append(order.setdefault(name, len(order)))
        elif np.ndim(value) == 1:
            vector = np.asarray(value, dtype=np.float64)
            ones = np.flatnonzero(vector)
            if len(ones) != 1 or vector[ones[0]] != 1:
                raise ValueError(f"{where}: utterance {i} has speaker vector "
                                 f"{vector.tolist()}, which is not one-hot")
            indices.append(int(ones[0]))
        elif np.ndim(value) == 0 and float(value).is_integer() and float(value) >= 0:
            indices.append(int(value))
        else:
            raise ValueError(f"{where}: utterance {i} has speaker {value!r}; expected a name, "
                             f"a one-hot vector or a non-negative integer")
    return indices


def build_dialogue(source: str, dialogue_id: Any, speakers: Sequence[int],
                   labels: np.ndarray, features: Mapping[str, Any]) -> Data:
    r"""Checks the lengths of a dialogue's fields and builds its :class:`Data`.

    Args:
        source (str): File name for error messages.
        dialogue_id: The dialogue's id (stored as a string).
        speakers (Sequence[int]): Speaker index per utterance.
        labels (np.ndarray): Label per utterance (checked with :func:`label_vector`).
        features (Mapping[str, Any]): Modality (``'t'``, ``'a'``, ``'v'``) -> per-utterance
            vectors, checked with :func:`feature_matrix`; the field name in messages is the
            modality's name, e.g. ``'text'``.
    """
    length = len(labels)
    if length == 0 and len(speakers) == 0:
        raise ValueError(f"{source}: dialogue {dialogue_id!r} is empty (no utterances)")
    if len(speakers) != length:
        raise ValueError(f"{source}: dialogue {dialogue_id!r}: field 'speakers' has "
                         f"{len(speakers)} entries but 'labels' has {length}")
    matrices = {m: feature_matrix(source, dialogue_id, MODALITY_NAMES[m], x, length)
                for m, x in features.items()}
    return make_dialogue(str(dialogue_id), speakers, labels,
                         {m: torch.from_numpy(x) for m, x in matrices.items()})


def check_widths(source: str, splits: Mapping[str, Sequence[Data]]) -> Dict[str, int]:
    r"""The feature width per modality, after checking that every dialogue has the same
    modalities and widths.

    Raises:
        ValueError: Naming the first dialogue that differs, and the field.
    """
    dims: Optional[Dict[str, int]] = None
    first = None
    for split in SPLITS:
        for data in splits.get(split, []):
            here = {m: data[feature_key(m)].size(1) for m in MODALITIES
                    if feature_key(m) in data}
            if dims is None:
                dims, first = here, data.dialogue_id
                continue
            for m in sorted(set(dims) | set(here)):
                if m not in here or m not in dims:
                    state = ('missing', 'present') if m not in here else ('present', 'missing')
                    raise ValueError(f"{source}: dialogue {data.dialogue_id!r}: field "
                                     f"'{MODALITY_NAMES[m]}' is {state[0]} but {state[1]} in "
                                     f"dialogue {first!r}; every dialogue needs the same "
                                     f"modalities")
                if here[m] != dims[m]:
                    raise ValueError(f"{source}: dialogue {data.dialogue_id!r}: field "
                                     f"'{MODALITY_NAMES[m]}' has {here[m]} features per "
                                     f"utterance but dialogue {first!r} has {dims[m]}")
    if dims is None:
        raise ValueError(f"{source}: no dialogues")
    return dims


def num_speakers(splits: Mapping[str, Sequence[Data]]) -> int:
    r"""``max(speaker) + 1`` over all dialogues."""
    return max((int(d.speaker.max()) + 1 for s in splits.values() for d in s), default=1)
