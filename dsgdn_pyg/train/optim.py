r"""The optimizer every training loop of the package uses."""
from typing import Iterable

import torch
from torch_geometric.typing import WITH_PT24


def adam(parameters: Iterable[torch.nn.Parameter], lr: float,
         weight_decay: float = 0.0) -> torch.optim.Adam:
    r"""Adam (with L2 :obj:`weight_decay`, as published), using torch's fused implementation
    where the parameters' device has one (CUDA; CPU from torch 2.4).

    The fused update is one kernel per parameter instead of eight element-wise passes
    (measured: ``benchmarks/README.md``, "Where the time goes"). Its results agree with the
    per-parameter loop to rounding, not bit for bit.
    """
    parameters = list(parameters)
    devices = {p.device.type for p in parameters}
    fused = bool(parameters) and devices <= ({'cpu', 'cuda'} if WITH_PT24 else {'cuda'}) \
        and all(p.is_floating_point() for p in parameters)
    return torch.optim.Adam(parameters, lr=lr, weight_decay=weight_decay,
                            fused=True if fused else None)
