r"""Rebuilding a stored text encoder from its :meth:`state_dict`."""
from typing import Any, Mapping

from dsgdn_pyg.text.sentence import SENTENCE_FORMAT, SentenceEncoder
from dsgdn_pyg.text.tfidf import TFIDF_FORMAT, TfidfFeaturizer


def text_encoder_from_state(state: Mapping[str, Any]):
    r"""The text encoder whose :meth:`state_dict` is :obj:`state` (dispatched on its
    ``'format'`` entry)."""
    if isinstance(state, Mapping) and state.get('format') == TFIDF_FORMAT:
        return TfidfFeaturizer.from_state_dict(state)
    if isinstance(state, Mapping) and state.get('format') == SENTENCE_FORMAT:
        return SentenceEncoder.from_state_dict(state)
    fmt = state.get('format') if isinstance(state, Mapping) else type(state).__name__
    raise ValueError(f"unknown text encoder state (format {fmt!r})")
