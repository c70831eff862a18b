r"""Audio features of recorded utterances, computed with openSMILE (the optional ``[audio]``
extra: ``pip install dsgdn-pyg[audio]``).

A transcript CSV may name, per utterance, an audio file (WAV or FLAC; a path relative to the
CSV). Each file becomes one vector of openSMILE *functionals* (statistics over the whole
utterance) of a selectable feature set (:obj:`AUDIO_FEATURE_SETS`): eGeMAPS (88 values, the
default), ComParE_2016 (6,373) or emobase (988). The vectors are then standardised with the mean
and standard deviation of the training split (:func:`fit_audio_standardizer`), because the raw
functionals range from ~0.01 to thousands of Hz; that state is stored with the dataset and in
every checkpoint, so new recordings are scaled as the training ones were.
"""
import os
import warnings
from typing import Any, Dict, List, Mapping, Sequence

import numpy as np

from dsgdn_pyg.lookup import lookup_name

#: Names accepted for the ``audio_features`` option -> openSMILE's feature set.
AUDIO_FEATURE_SETS = {
    'eGeMAPS': 'eGeMAPSv02',
    'ComParE_2016': 'ComParE_2016',
    'emobase': 'emobase',
}
DEFAULT_AUDIO_FEATURES = 'eGeMAPS'
AUDIO_FORMAT = 'dsgdn-pyg-audio-features'


def _opensmile():
    try:
        import opensmile
    except ImportError:
        raise ImportError("audio features need openSMILE, which is not installed: "
                          "pip install dsgdn-pyg[audio]") from None
    return opensmile


def check_feature_set(name: str) -> str:
    r"""The openSMILE feature set of :obj:`name` (a key of :obj:`AUDIO_FEATURE_SETS`)."""
    return lookup_name(AUDIO_FEATURE_SETS, name, 'audio feature set')


def make_smile(name: str = DEFAULT_AUDIO_FEATURES):
    r"""The :class:`opensmile.Smile` extractor of feature set :obj:`name` (functionals)."""
    opensmile = _opensmile()
    return opensmile.Smile(feature_set=getattr(opensmile.FeatureSet, check_feature_set(name)),
                           feature_level=opensmile.FeatureLevel.Functionals)


def audio_features(paths: Sequence[str], where: Sequence[str],
                   name: str = DEFAULT_AUDIO_FEATURES) -> np.ndarray:
    r"""The raw openSMILE functionals of each audio file, ``[N, D]`` float32.

    Args:
        paths (Sequence[str]): Audio files (WAV, FLAC).
        where (Sequence[str]): Per file, where it was named (e.g. ``"talk.csv, line 3"``),
            for error messages.
        name (str): Feature set, a key of :obj:`AUDIO_FEATURE_SETS`. (default: ``'eGeMAPS'``)

    Raises:
        FileNotFoundError: A file does not exist (naming it and :obj:`where`).
        ValueError: openSMILE cannot read a file (naming it and :obj:`where`).
    """
    smile = make_smile(name)
    rows: List[np.ndarray] = []
    for path, place in zip(paths, where):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{place}: audio file {path!r} does not exist")
        try:
            # A recording with no (or too few) samples: openSMILE warns "Segment too short,
            # filling with NaN" and returns NaN; the error below says so, naming the file.
            with warnings.catch_warnings():
                warnings.filterwarnings('ignore', message='Segment too short')
                frame = smile.process_file(path)
        except Exception as e:  # openSMILE/audiofile raise many types for a bad file
            raise ValueError(f"{place}: cannot read audio file {path!r}: "
                             f"{type(e).__name__}: {e}") from None
        row = frame.to_numpy(dtype=np.float32)[0]
        if not np.isfinite(row).all():
            raise ValueError(f"{place}: audio file {path!r} is empty or too short (openSMILE "
                             f"computes no features from it)")
        rows.append(row)
    width = len(make_smile(name).feature_names) if not rows else rows[0].shape[0]
    return np.stack(rows) if rows else np.zeros((0, width), dtype=np.float32)


def resolve_audio_path(csv_path: str, cell: str, place: str) -> str:
    r"""An audio cell as a path: relative paths are relative to the file that names them."""
    cell = (cell or '').strip()
    if not cell:
        raise ValueError(f"{place}: field 'audio' is empty; every utterance needs its "
                         f"recording")
    return os.path.join(os.path.dirname(os.path.abspath(csv_path)), cell)


def column_scaling(features: np.ndarray) -> Dict[str, List[float]]:
    r"""``{'mean', 'std'}`` per column of :obj:`features` (a training split's raw values),
    constant columns (std 0) with std 1 so that they are only centred."""
    features = np.asarray(features, dtype=np.float64)
    std = features.std(axis=0)
    return {'mean': features.mean(axis=0).astype(np.float32).tolist(),
            'std': np.where(std > 1e-8, std, 1.0).astype(np.float32).tolist()}


def apply_scaling(features: np.ndarray, state: Mapping[str, Any], what: str) -> np.ndarray:
    r""":obj:`features` scaled by a :func:`column_scaling` state; :obj:`what` names the
    features for the width-mismatch error."""
    mean = np.asarray(state['mean'], dtype=np.float32)
    if features.shape[1] != mean.shape[0]:
        raise ValueError(f"{what} have {features.shape[1]} values per utterance but the "
                         f"stored scaling expects {mean.shape[0]}")
    return ((features - mean) / np.asarray(state['std'], dtype=np.float32)).astype(np.float32)


def fit_audio_standardizer(features: np.ndarray,
                           name: str = DEFAULT_AUDIO_FEATURES) -> Dict[str, Any]:
    r"""The state that scales :obj:`features` (the training split's raw functionals) to zero
    mean and unit variance per column; constant columns are only centred."""
    return {'format': AUDIO_FORMAT, 'feature_set': name, **column_scaling(features)}


def standardize_audio(features: np.ndarray, state: Mapping[str, Any]) -> np.ndarray:
    r"""Raw functionals scaled by a :func:`fit_audio_standardizer` state."""
    if state.get('format') != AUDIO_FORMAT:
        raise ValueError(f"unknown audio feature state (format {state.get('format')!r})")
    return apply_scaling(features, state, f"audio features ({state['feature_set']})")


def dialogue_audio(path: str, dialogue_id: str, rows: Sequence[Mapping[str, Any]],
                   name: str = DEFAULT_AUDIO_FEATURES) -> np.ndarray:
    r"""The raw functionals of one dialogue's utterances: :obj:`rows` as read from the
    transcript :obj:`path` (``'audio'`` cell and ``'line'`` number each)."""
    places = [f"{path}: dialogue {dialogue_id!r}, line {row['line']}" for row in rows]
    files = [resolve_audio_path(path, row['audio'], place) for row, place in zip(rows, places)]
    return audio_features(files, places, name)


def add_audio_modality(splits: Mapping[str, Sequence[Any]],
                       dialogue_ids: Mapping[str, Sequence[str]],
                       groups: Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]],
                       paths: Mapping[str, str], mapping: Mapping[str, Any]) -> Dict[str, Any]:
    r"""Sets ``x_a`` of every dialogue of a CSV corpus from the recordings its ``audio``
    column names, standardised on the training split; returns the standardizer state."""
    import torch

    name = mapping.get('audio_features', DEFAULT_AUDIO_FEATURES)
    raw = {split: [dialogue_audio(paths[split], d, groups[split][d], name)
                   for d in dialogue_ids[split]] for split in splits}
    state = fit_audio_standardizer(np.concatenate(raw['train']), name)
    for split, dialogues in splits.items():
        for data, features in zip(dialogues, raw[split]):
            data.x_a = torch.from_numpy(standardize_audio(features, state))
    return state


__all__ = [
    'add_audio_modality',
    'apply_scaling',
    'column_scaling',
    'dialogue_audio',
    'AUDIO_FEATURE_SETS',
    'DEFAULT_AUDIO_FEATURES',
    'audio_features',
    'check_feature_set',
    'fit_audio_standardizer',
    'make_smile',
    'resolve_audio_path',
    'standardize_audio',
]
