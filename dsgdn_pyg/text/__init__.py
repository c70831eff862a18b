r"""Text encoders: utterance strings to feature matrices.

Every encoder has ``transform(texts) -> np.ndarray [N, D]`` (float32), ``out_channels`` and
``state_dict()``; :func:`text_encoder_from_state` rebuilds the encoder a dataset or checkpoint
stored, so new transcripts are embedded exactly as the training data was. A sentence encoder
may read each utterance with the previous ones of its dialogue (its ``context``);
:func:`~dsgdn_pyg.text.context.embed_dialogues` gives every encoder its inputs.
"""
from typing import Any, Mapping

from dsgdn_pyg.text.context import embed_dialogues
from dsgdn_pyg.text.sentence import SENTENCE_FORMAT, SentenceEncoder, text_extra_available
from dsgdn_pyg.text.tfidf import DEFAULT_SVD_DIM, TFIDF_FORMAT, TfidfFeaturizer


def text_encoder_from_state(state: Mapping[str, Any]):
    r"""The text encoder whose :meth:`state_dict` is :obj:`state` (dispatched on its
    ``'format'`` entry)."""
    if isinstance(state, Mapping) and state.get('format') == TFIDF_FORMAT:
        return TfidfFeaturizer.from_state_dict(state)
    if isinstance(state, Mapping) and state.get('format') == SENTENCE_FORMAT:
        return SentenceEncoder.from_state_dict(state)
    fmt = state.get('format') if isinstance(state, Mapping) else type(state).__name__
    raise ValueError(f"unknown text encoder state (format {fmt!r})")


__all__ = ['DEFAULT_SVD_DIM', 'SentenceEncoder', 'embed_dialogues', 'TfidfFeaturizer', 'text_encoder_from_state',
           'text_extra_available']
