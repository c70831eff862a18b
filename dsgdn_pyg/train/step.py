r"""One step of the model on a batch, shared by training, evaluation, inference and the
benchmarks, so that all of them run the model the same way (device, mixed precision)."""
from typing import Sequence, Tuple

import torch
from torch import Tensor
from torch_geometric.data import Batch


def autocast(device: torch.device, enabled: bool):
    r"""Float16 autocast on :obj:`device` if :obj:`enabled` (``--amp``)."""
    return torch.autocast(device_type=device.type, dtype=torch.float16, enabled=enabled)


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
