r"""Utterance clips as pooled visual (and openSMILE audio) features, cached by content hash
(see :mod:`dsgdn_pyg.video`)."""
import atexit
import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

from dsgdn_pyg.io import atomic_write, default_cache_root, file_digest
from dsgdn_pyg.video.faces import (AUDIO_RATE, FaceExtractor, VideoOptions, decode_audio,
                                   decode_frames, extractor_identity, pool)

# --------------------------------------------------------------------------------------------
# Clips, cached

@dataclass(frozen=True)
class Clip:
    r"""An utterance's clip: a file, optional start/end seconds, and where it was named
    (e.g. ``"talk.csv: dialogue '3', line 7"``) for error messages."""
    path: str
    start: Optional[float] = None
    end: Optional[float] = None
    where: str = ''


def _cache_file(kind: str, clip: Clip, key: Mapping[str, Any],
                root: Optional[str]) -> Optional[str]:
    if root is None:
        root = default_cache_root()
    if not root:
        return None

    text = json.dumps({'file': file_digest(clip.path), 'start': clip.start, 'end': clip.end,
                       'key': key}, sort_keys=True)
    return os.path.join(root, 'video', f'{kind}-{hashlib.sha256(text.encode()).hexdigest()[:24]}'
                                       f'.npy')


def _cached(kind: str, clip: Clip, key: Mapping[str, Any], root: Optional[str], compute):
    # Keyed by the file's content (not its name or time stamp) and everything that shapes
    # the result; .npy without pickles, written atomically.
    path = _cache_file(kind, clip, key, root)
    if path is not None and os.path.exists(path):
        return np.load(path, allow_pickle=False)
    value = np.asarray(compute(), dtype=np.float32)
    if path is not None:
        atomic_write(path, lambda f: np.save(f, value, allow_pickle=False))
    return value


def _check_clip(clip: Clip, kind: str = 'video') -> None:
    if not os.path.isfile(clip.path):
        raise FileNotFoundError(f"{clip.where}: {kind} file {clip.path!r} does not exist")
    if clip.start is not None and clip.end is not None and clip.end <= clip.start:
        raise ValueError(f"{clip.where}: clip of {clip.path!r} ends ({clip.end:g} s) before "
                         f"it starts ({clip.start:g} s)")


def clip_frames(extractor: FaceExtractor, clip: Clip) -> List[Optional[np.ndarray]]:
    r"""The per-frame vectors of a clip (:obj:`None` where no face was found)."""
    o = extractor.options
    try:
        frames = [extractor.frame_features(image) for _, image in
                  decode_frames(clip.path, o.fps, clip.start, clip.end, o.max_side)]
    except ImportError:
        raise
    except Exception as e:  # FFmpeg raises many types (InvalidDataError, ...) for a bad file
        raise ValueError(f"{clip.where}: cannot read video file {clip.path!r}: "
                         f"{type(e).__name__}: {e}") from None
    if not frames:
        raise ValueError(f"{clip.where}: video file {clip.path!r} has no frame between "
                         f"{clip.start or 0:g} s and "
                         f"{'its end' if clip.end is None else f'{clip.end:g} s'}")
    return frames


_EXTRACTORS: Dict[VideoOptions, FaceExtractor] = {}


def shared_extractor(options: VideoOptions) -> FaceExtractor:
    r"""The process's :class:`FaceExtractor` of :obj:`options`: its models load once (about
    a second), not per dialogue or per streamed utterance."""
    if options not in _EXTRACTORS:
        if len(_EXTRACTORS) >= 2:  # options rarely change within a process
            _EXTRACTORS.pop(next(iter(_EXTRACTORS))).close()
        if not _EXTRACTORS:
            atexit.register(_close_extractors)
        _EXTRACTORS[options] = FaceExtractor(options)
    return _EXTRACTORS[options]


def _close_extractors() -> None:
    while _EXTRACTORS:
        _EXTRACTORS.popitem()[1].close()


def video_features(clips: Sequence[Clip], options: VideoOptions = VideoOptions(),
                   cache_root: Optional[str] = None, progress: bool = False) -> np.ndarray:
    r"""The raw pooled visual features of each clip, ``[N, options.width]`` float32 (see the
    module docstring), cached by content hash under :obj:`cache_root` (default
    ``$DSGDN_PYG_CACHE``; ``''`` disables the cache); :obj:`progress` shows a bar.

    Raises:
        FileNotFoundError: A file does not exist (naming it and the clip's place).
        ValueError: A file cannot be decoded or the clip holds no frame (naming both).
    """
    from tqdm.auto import tqdm

    key = extractor_identity(options)
    rows = []
    for clip in tqdm(clips, desc='video features', unit='clip', disable=not progress):
        _check_clip(clip)
        rows.append(_cached('visual', clip, key, cache_root, lambda clip=clip: pool(
            clip_frames(shared_extractor(options), clip), options.frame_width)))
    return np.stack(rows) if rows else np.zeros((0, options.width), dtype=np.float32)


def video_audio_features(clips: Sequence[Clip], name: str = 'eGeMAPS',
                         cache_root: Optional[str] = None, progress: bool = False
                         ) -> np.ndarray:
    r"""openSMILE functionals (:mod:`dsgdn_pyg.audio`, feature set :obj:`name`) of the audio
    track of each clip, decoded by PyAV to 16 kHz mono; cached and shown as
    :func:`video_features`.

    Raises:
        ValueError: A file has no audio track or cannot be decoded (naming it and the place).
    """
    from dsgdn_pyg.audio import make_smile

    smile = make_smile(name)
    import opensmile
    key = {'opensmile': opensmile.__version__, 'feature_set': name, 'rate': AUDIO_RATE}
    from tqdm.auto import tqdm

    rows = []
    for clip in tqdm(clips, desc='audio of the videos', unit='clip', disable=not progress):
        _check_clip(clip)

        def compute(clip=clip):
            try:
                signal = decode_audio(clip.path, clip.start, clip.end)
            except Exception as e:
                raise ValueError(f"{clip.where}: cannot read the audio of video file "
                                 f"{clip.path!r}: {type(e).__name__}: {e}") from None
            if signal is None or signal.size == 0:
                raise ValueError(f"{clip.where}: video file {clip.path!r} has no audio track "
                                 f"(give the recording in an 'audio' column, or train "
                                 f"without the audio modality)")
            return smile.process_signal(signal, AUDIO_RATE).to_numpy(dtype=np.float32)[0]
        rows.append(_cached(f'audio-{name}', clip, key, cache_root, compute))
    return np.stack(rows) if rows else np.zeros((0, len(smile.feature_names)), np.float32)
