r"""One step of the model on a batch, shared by training, evaluation, inference and the
benchmarks, so that all of them run the model the same way (device, mixed precision)."""
from typing import Callable, Dict, Optional, Sequence, Tuple

import torch
from torch import Tensor
from torch_geometric.data import Batch

from dsgdn_pyg.loss import multimodal_loss


def amp_dtype(device: torch.device) -> torch.dtype:
    r"""The half precision of ``--amp`` on :obj:`device`: bfloat16 where the GPU computes in
    it natively (compute capability 8.0 and up: its range is float32's, so no loss scaling is
    needed), float16 elsewhere (with a :func:`grad_scaler`)."""
    if device.type == 'cuda' and torch.cuda.get_device_capability(device)[0] >= 8:
        return torch.bfloat16
    return torch.float16


def autocast(device: torch.device, enabled: bool):
    r"""Autocast to :func:`amp_dtype` on :obj:`device` if :obj:`enabled` (``--amp``). The
    package's sparse kernels, which have no half-precision versions, compute in float32
    inside it (:mod:`dsgdn_pyg.nn.functional`)."""
    dtype = amp_dtype(device) if enabled else torch.float16  # unused when disabled
    return torch.autocast(device_type=device.type, dtype=dtype, enabled=enabled)


def grad_scaler(device: torch.device, amp: bool) -> 'torch.amp.GradScaler':
    r"""The loss scaler of a run: active only for float16 autocast, whose narrow range would
    let small gradients underflow; bfloat16 and float32 need none."""
    enabled = amp and amp_dtype(device) == torch.float16
    return torch.amp.GradScaler(device.type, enabled=enabled)


@torch.no_grad()
def predict_logits(model: torch.nn.Module, batches: Sequence[Batch], device: torch.device,
                   amp: bool = False) -> Tuple[Tensor, Tensor]:
    r"""Labels ``[N]`` and fused logits ``[N, C]`` (float, on the CPU) of all utterances of
    :obj:`batches`, in batch order, with :obj:`model` in evaluation mode."""
    was_training = model.training
    model.eval()
    ys, logits = [], []
    for batch in batches:
        batch = batch.to(device)
        with autocast(device, amp):
            out = model(batch)
        ys.append(batch.y)
        logits.append(out.fused.float())
    model.train(was_training)
    return torch.cat(ys).cpu(), torch.cat(logits).cpu()


def train_step(model: torch.nn.Module, batch: Batch,
               optimizer: Optional[torch.optim.Optimizer] = None,
               scaler: Optional['torch.amp.GradScaler'] = None, amp: bool = False,
               class_weight: Optional[Tensor] = None, focal_gamma: float = 0.0,
               all_reduce: Optional[Callable[[Tensor], Tensor]] = None
               ) -> Tuple[Tensor, Dict[str, Tensor]]:
    r"""One training step on a batch already on the model's device: the forward pass (in
    :func:`autocast` with :obj:`amp`), :func:`~dsgdn_pyg.loss.multimodal_loss` on the kept
    utterances (with :obj:`class_weight`, :obj:`focal_gamma` and, in data-parallel training,
    :obj:`all_reduce`), the backward pass (through :obj:`scaler` if given) and, if an
    :obj:`optimizer` is given, its step. The trainer and the benchmarks run this one function.

    Returns:
        (loss, parts): The loss and its parts (:func:`~dsgdn_pyg.loss.multimodal_loss`).
    """
    device = batch.y.device
    with autocast(device, amp):
        out = model(batch)
    loss, parts = multimodal_loss(out.fused.float(),
                                  {m: v.float() for m, v in out.logits.items()},
                                  batch.y, mask=out.keep, class_weight=class_weight,
                                  focal_gamma=focal_gamma, all_reduce=all_reduce)
    if optimizer is not None:
        optimizer.zero_grad(set_to_none=True)
    if scaler is None:
        loss.backward()
        if optimizer is not None:
            optimizer.step()
    else:
        scaler.scale(loss).backward()
        if optimizer is not None:
            scaler.step(optimizer)
            scaler.update()
    return loss, parts
