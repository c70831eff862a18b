r"""Videos named by a CSV corpus as its visual (and audio) modality: the ``[csv]`` mapping's
video keys, the training split's scaling, and the checks a checkpoint's state gets before new
clips are featurised with it (see :mod:`dsgdn_pyg.video`)."""
import os
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from dsgdn_pyg.video.clips import Clip, video_audio_features, video_features
from dsgdn_pyg.video.faces import (EXTRACTOR, FACE_CHOICES, VIDEO_FORMAT, VideoOptions,
                                   extractor_identity)

#: ``[csv]`` keys of the video modality: ``video``, ``video_start``, ``video_end`` are column
#: names; the others are values.
VIDEO_FIELDS = ('video', 'video_start', 'video_end', 'video_fps', 'video_face',
                'video_landmarks', 'video_audio')
_OPTION_KEYS = {'video_fps': 'fps', 'video_face': 'face', 'video_landmarks': 'landmarks'}


def check_video_mapping(mapping: Mapping[str, Any]) -> None:
    r"""Checks the video keys of a ``[csv]`` mapping (raises :class:`ValueError`)."""
    for key in ('video', 'video_start', 'video_end'):
        value = mapping.get(key)
        if value is not None and not (isinstance(value, str) and value):
            raise ValueError(f"the '[csv]' mapping's '{key}' must be a column name, got "
                             f"{value!r}")
    if not mapping.get('video'):
        given = [k for k in VIDEO_FIELDS[1:] if mapping.get(k) is not None]
        if given:
            raise ValueError(f"the '[csv]' mapping sets {given} but no 'video' column")
        return
    if not isinstance(mapping.get('video_audio', True), bool):
        raise ValueError(f"the '[csv]' mapping's 'video_audio' must be true or false, got "
                         f"{mapping['video_audio']!r}")
    if not isinstance(mapping.get('video_landmarks', True), bool):
        raise ValueError(f"the '[csv]' mapping's 'video_landmarks' must be true or false, "
                         f"got {mapping['video_landmarks']!r}")
    try:
        video_options(mapping)
    except ValueError as e:
        raise ValueError(f"the '[csv]' mapping: {e} (face: {', '.join(FACE_CHOICES)})") \
            from None


def video_options(mapping: Mapping[str, Any]) -> VideoOptions:
    r"""The :class:`VideoOptions` of a ``[csv]`` mapping (``video_fps``, ``video_face``,
    ``video_landmarks``; defaults elsewhere)."""
    return VideoOptions(**{field: mapping[key] for key, field in _OPTION_KEYS.items()
                           if mapping.get(key) is not None})


def _seconds(value: Optional[str], field: str, place: str) -> Optional[float]:
    text = (value or '').strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        raise ValueError(f"{place}: field '{field}': {value!r} is not a number of seconds") \
            from None
    if not np.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{place}: field '{field}': {value!r} is not a time >= 0 s")
    return seconds


def make_clip(base: str, cell: Optional[str], start: Optional[str], end: Optional[str],
              place: str) -> Clip:
    r"""A video cell (a path relative to the file :obj:`base` that names it) with its
    start/end cells (seconds, empty = the file's start/end) as a :class:`Clip`."""
    cell = (cell or '').strip()
    if not cell:
        raise ValueError(f"{place}: field 'video' is empty; every utterance needs its clip")
    path = os.path.join(os.path.dirname(os.path.abspath(base)), cell)
    return Clip(path, _seconds(start, 'video_start', place), _seconds(end, 'video_end', place),
                place)


def clip_of_value(value: Any, where: str) -> Optional[Clip]:
    r"""A ``video`` value of a Python or JSON record as a :class:`Clip`: a path (relative to
    the working directory), or ``{"path": ..., "start": seconds, "end": seconds}`` (start
    and end optional); :obj:`None` stays :obj:`None`."""
    if value is None:
        return None
    here = os.path.join(os.getcwd(), '')
    if isinstance(value, (str, os.PathLike)):
        return make_clip(here, os.fspath(value), None, None, where)
    if isinstance(value, Mapping) and isinstance(value.get('path'), (str, os.PathLike)) \
            and not set(value) - {'path', 'start', 'end'}:
        times = ['' if value.get(k) is None else str(value[k]) for k in ('start', 'end')]
        return make_clip(here, os.fspath(value['path']), *times, where)
    raise ValueError(f"{where}: field 'video' must be a path or an object with 'path' (and "
                     f"'start', 'end' in seconds), got {value!r}")


def stream_clip_features(value: Any, states: Mapping[str, Mapping[str, Any]],
                         features: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    r""":obj:`features` (a pushed utterance's ``features`` object) with the modalities that
    a ``video`` value (:func:`clip_of_value`) provides under :obj:`states` (a checkpoint's
    ``{'v': video state, 'a': audio state}`` of the modalities its model uses) added.

    Raises:
        ValueError: No state, the modalities are given twice, or the clip is bad.
    """
    features = dict(features or {})
    wanted = {m: state for m, state in states.items() if m not in features}
    if not states:
        raise ValueError("field 'video': this model takes no features from video clips (it "
                         "was not trained on a 'video' or 'audio' column)")
    if not wanted:
        raise ValueError(f"field 'video': the clip would give modalities "
                         f"{','.join(states)}, which 'features' already holds")
    clip = clip_of_value(value, "field 'video'")
    features.update({m: x[0] for m, x in clip_modalities([clip], wanted).items()})
    return features


def fit_video_standardizer(features: np.ndarray, options: VideoOptions) -> Dict[str, Any]:
    r"""The state that scales the training split's raw clip features to zero mean and unit
    variance per column, with the extractor's identity (:func:`extractor_identity`)."""
    from dsgdn_pyg.audio import column_scaling

    return {'format': VIDEO_FORMAT, **extractor_identity(options), **column_scaling(features)}


def check_extractor(state: Mapping[str, Any], source: str = 'the checkpoint') -> VideoOptions:
    r"""The :class:`VideoOptions` of a stored state, after checking that this installation
    extracts what the state's training data was extracted with.

    Raises:
        ValueError: Another format, extractor, extractor version or feature version.
    """
    if state.get('format') != VIDEO_FORMAT or state.get('extractor') != EXTRACTOR:
        raise ValueError(f"{source}: unknown video feature state (format "
                         f"{state.get('format')!r}, extractor {state.get('extractor')!r})")
    options = VideoOptions(**state['options'])
    here = extractor_identity(options)
    for key, what in (('version', 'mediapipe'), ('feature_version', 'the video features')):
        if here[key] != state[key]:
            raise ValueError(f"{source} was trained on video features of {what} version "
                             f"{state[key]}, but this installation has {here[key]}; install "
                             f"that version (pip install mediapipe=={state['version']}) or "
                             f"retrain, as other features would be scaled wrongly")
    return options


def standardize_video(features: np.ndarray, state: Mapping[str, Any]) -> np.ndarray:
    r"""Raw clip features scaled by a :func:`fit_video_standardizer` state."""
    from dsgdn_pyg.audio import apply_scaling

    return apply_scaling(features, state, f"video features ({state['extractor']})")


def clip_modalities(clips: Sequence[Clip], states: Mapping[str, Mapping[str, Any]],
                    source: str = 'the checkpoint',
                    cache_root: Optional[str] = None) -> Dict[str, np.ndarray]:
    r"""The scaled features of new clips, by modality: ``'v'`` with ``states['v']`` (a
    :func:`fit_video_standardizer` state), ``'a'`` from the clips' audio with
    ``states['a']`` (a :func:`~dsgdn_pyg.audio.fit_audio_standardizer` state)."""
    from dsgdn_pyg.audio import standardize_audio

    out = {}
    if 'v' in states:
        options = check_extractor(states['v'], source)
        out['v'] = standardize_video(video_features(clips, options, cache_root), states['v'])
    if 'a' in states:
        raw = video_audio_features(clips, states['a']['feature_set'], cache_root)
        out['a'] = standardize_audio(raw, states['a'])
    return out


def add_video_modality(splits: Mapping[str, Sequence[Any]],
                       dialogue_ids: Mapping[str, Sequence[str]],
                       groups: Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]],
                       paths: Mapping[str, str], mapping: Mapping[str, Any],
                       with_audio: bool, log: bool = False
                       ) -> Tuple[Dict[str, Any], Optional[Dict[str, Any]]]:
    r"""Sets ``x_v`` (and, with :obj:`with_audio`, ``x_a`` from the same files' audio) of
    every dialogue of a CSV corpus from the clips its ``video`` column names, standardised on
    the training split. Each row holds ``'video'``, ``'video_start'``, ``'video_end'`` cells
    and its ``'line'``; :obj:`log` shows progress. Returns the visual and the audio scaling
    states."""
    import torch

    from dsgdn_pyg.audio import (DEFAULT_AUDIO_FEATURES, fit_audio_standardizer,
                                 standardize_audio)

    options = video_options(mapping)
    name = mapping.get('audio_features', DEFAULT_AUDIO_FEATURES)
    order = [(split, d) for split in splits for d in dialogue_ids[split]]
    clips = [make_clip(paths[split], row['video'], row.get('video_start'), row.get('video_end'),
                       f"{paths[split]}: dialogue {d!r}, line {row['line']}")
             for split, d in order for row in groups[split][d]]
    quiet = not log
    # One pass over every clip of the corpus (the models load once), then cut per dialogue.
    cuts = np.cumsum([len(groups[split][d]) for split, d in order])[:-1]
    raw = {'v': np.split(video_features(clips, options, progress=not quiet), cuts)}
    if with_audio:
        raw['a'] = np.split(video_audio_features(clips, name, progress=not quiet), cuts)
    where = {key: k for k, key in enumerate(order)}

    def train_rows(m: str) -> np.ndarray:
        return np.concatenate([raw[m][where['train', d]] for d in dialogue_ids['train']])

    states = {'v': fit_video_standardizer(train_rows('v'), options)}
    if with_audio:
        states['a'] = fit_audio_standardizer(train_rows('a'), name)
    scale = {'v': standardize_video, 'a': standardize_audio}
    for split, dialogues in splits.items():
        for data, d in zip(dialogues, dialogue_ids[split]):
            for m, state in states.items():
                setattr(data, f'x_{m}', torch.from_numpy(scale[m](raw[m][where[split, d]],
                                                                   state)))
    return states['v'], states.get('a')


__all__ = [
    'VIDEO_FIELDS',
    'add_video_modality',
    'clip_of_value',
    'check_extractor',
    'check_video_mapping',
    'clip_modalities',
    'fit_video_standardizer',
    'make_clip',
    'standardize_video',
    'stream_clip_features',
    'video_options',
]
