r"""Rebuilding a stored text encoder from its :meth:`state_dict`."""
from typing import Any, Mapping

import torch

from dsgdn_pyg.text.sentence import SENTENCE_FORMAT, SentenceEncoder
from dsgdn_pyg.text.tfidf import TFIDF_FORMAT, TfidfFeaturizer


def text_encoder_from_state(state: Mapping[str, Any], device: Any = None):
    r"""The text encoder whose :meth:`state_dict` is :obj:`state` (dispatched on its
    ``'format'`` entry); a sentence encoder embeds on :obj:`device` if it is not the CPU
    (TF-IDF always runs on the CPU)."""
    if isinstance(state, Mapping) and state.get('format') == TFIDF_FORMAT:
        return TfidfFeaturizer.from_state_dict(state)
    if isinstance(state, Mapping) and state.get('format') == SENTENCE_FORMAT:
        encoder = SentenceEncoder.from_state_dict(state)
        if device is not None and torch.device(device).type != 'cpu':
            encoder.to(device)
        return encoder
    fmt = state.get('format') if isinstance(state, Mapping) else type(state).__name__
    raise ValueError(f"unknown text encoder state (format {fmt!r})")
