r"""Training objective of AMB-DSGDN (paper section 4.7, eq. 31--33).

:math:`\mathcal{L} = \mathcal{L}_\mathrm{fusion} + \sum_m \alpha_m \mathcal{L}_m` with
:math:`\alpha_m = \mathcal{L}_m / 10` kept in the graph, as in the published implementation
(so the auxiliary term is :math:`\mathcal{L}_m^2 / 10`).

All reductions are masked weighted sums with a guarded denominator: no boolean indexing and
no host synchronisation, and a batch without a single labelled utterance still gives a loss
connected to the graph (with value and gradient 0).

In data-parallel training each process holds a share of the batch; :func:`multimodal_loss`
takes the sum over processes as an argument, so that every mean is normalised by the global
weight of the valid utterances (one process is the case where that sum is the identity).
"""
from typing import Callable, Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


def masked_nll_sums(logits: Tensor, y: Tensor, valid: Tensor,
                    class_weight: Optional[Tensor] = None,
                    focal_gamma: float = 0.0) -> Tuple[Tensor, Tensor]:
    r"""The numerator :math:`\sum_i w_{y_i} \ell_i` and denominator :math:`\sum_i w_{y_i}` of
    :func:`masked_nll` (0-dim tensors), over the valid rows; the arguments are those of
    :func:`masked_nll`. Logits with leading dimensions ``[..., N, C]`` (several terms on the
    same labels) give a numerator per term ``[...]``."""
    # Invalid rows may hold -1: clamp so that the gather stays in range, their weight is 0.
    target = torch.where(valid, y, torch.zeros_like(y))
    index = target.unsqueeze(-1).expand(*logits.shape[:-1], 1)
    nll = -F.log_softmax(logits, dim=-1).gather(-1, index).squeeze(-1)  # [..., N]
    if focal_gamma != 0:
        # 1 - p from the log-probability (-expm1 is exact where p is close to 1); the floor
        # keeps the gradient of (1 - p)^gamma finite for gamma < 1 when p rounds to 1.
        nll = (-torch.expm1(-nll)).clamp_min(1e-12).pow(focal_gamma) * nll
    weight = valid.to(nll.dtype)
    if class_weight is not None:
        weight = weight * class_weight.to(nll.dtype)[target]
    return (weight * nll).sum(-1), weight.sum()


def _guarded(total: Tensor) -> Tensor:
    return torch.where(total > 0, total, torch.ones_like(total))


def masked_nll(
    logits: Tensor,
    y: Tensor,
    valid: Tensor,
    class_weight: Optional[Tensor] = None,
    focal_gamma: float = 0.0,
) -> Tensor:
    r"""Mean negative log-likelihood of :obj:`log_softmax(logits)` over the valid rows.

    With :obj:`class_weight`, the mean is weighted like
    :obj:`torch.nn.functional.nll_loss(weight=..., reduction='mean')`:
    :math:`\sum_i w_{y_i} \ell_i / \sum_i w_{y_i}`. Returns 0 (connected to :obj:`logits`) if
    the total weight is 0.

    With :obj:`focal_gamma` :math:`\gamma > 0`, each row's term is the focal loss of
    `Lin et al. (2017) <https://arxiv.org/abs/1708.02002>`_,
    :math:`\ell_i = -(1 - p_{i,y_i})^{\gamma} \log p_{i,y_i}`, which down-weights the
    utterances the model already gets right (most of them from the majority classes); the
    normalisation stays :math:`\sum_i w_{y_i}`. :math:`\gamma = 0` is the plain NLL.

    Args:
        logits (torch.Tensor): Logits ``[N, C]``.
        y (torch.Tensor): Labels ``[N]``; rows with ``valid`` False may hold anything.
        valid (torch.Tensor): Boolean ``[N]``.
        class_weight (torch.Tensor, optional): Weight per class ``[C]``. (default: :obj:`None`)
        focal_gamma (float, optional): Focusing parameter :math:`\gamma \ge 0`.
            (default: :obj:`0.0`)
    """
    numerator, total = masked_nll_sums(logits, y, valid, class_weight, focal_gamma)
    return numerator / _guarded(total)


def multimodal_loss(
    fused: Tensor,
    unimodal: Dict[str, Tensor],
    y: Tensor,
    mask: Optional[Tensor] = None,
    class_weight: Optional[Tensor] = None,
    focal_gamma: float = 0.0,
    all_reduce: Optional[Callable[[Tensor], Tensor]] = None,
) -> Tuple[Tensor, Dict[str, Tensor]]:
    r"""The AMB-DSGDN loss :math:`\mathcal{L}_\mathrm{fusion} + \sum_m \mathcal{L}_m \cdot
    (\mathcal{L}_m / 10)`.

    Each term is the (optionally class-weighted) mean NLL of the log-softmax of its logits over
    the utterances with ``y >= 0`` and ``mask`` True. The weight :math:`\mathcal{L}_m / 10` is
    *not* detached, so the gradient of each auxiliary term is
    :math:`2 \mathcal{L}_m / 10 \cdot \nabla \mathcal{L}_m`.

    Args:
        fused (torch.Tensor): Fused logits ``[N, C]``.
        unimodal (Dict[str, torch.Tensor]): Unimodal logits ``[N, C]`` per modality (may be
            empty).
        y (torch.Tensor): Labels ``[N]`` in ``[0, C)``, ``-1`` (any negative) = unlabelled.
            Values ``>= C`` are not checked (that would need a host sync).
        mask (torch.Tensor, optional): Boolean ``[N]``; False rows are excluded, e.g. the
            dialogues dropped by adaptive modality dropout. (default: :obj:`None`)
        class_weight (torch.Tensor, optional): Weight per class ``[C]``, e.g. from
            :func:`inverse_frequency_weights`. (default: :obj:`None`)
        focal_gamma (float, optional): If :math:`\gamma > 0`, every term (fused and
            unimodal) is a focal loss instead of the NLL (see :func:`masked_nll`); :obj:`0`
            gives exactly the plain loss. (default: :obj:`0.0`)
        all_reduce (Callable, optional): In data-parallel training, the sum of a tensor over
            all processes (each holding a share of the batch). Every mean is then the global
            one (global weighted sums over the global weight of the valid utterances) and the
            returned loss has the global value, while its gradient is this process's share:
            the sum of the processes' gradients is the gradient of the loss of the whole batch
            in one process. :obj:`None` is one process. (default: :obj:`None`)

    Returns:
        (torch.Tensor, Dict[str, torch.Tensor]): The total loss, and its parts, detached, for
        logging: ``'fusion'`` and one entry per modality key holding :math:`\mathcal{L}_m`.
    """
    if fused.dim() != 2:
        raise ValueError(f"'fused' must be [N, C] (got shape {tuple(fused.shape)})")
    num_nodes, num_classes = fused.shape
    if y.shape != (num_nodes, ):
        raise ValueError(f"'y' has shape {tuple(y.shape)}, expected [{num_nodes}]")
    if y.is_floating_point():
        raise ValueError(f"'y' must hold integer labels (got dtype {y.dtype})")
    for m, logits in unimodal.items():
        if m == 'fusion':
            raise ValueError("'unimodal' must not use the key 'fusion' (reserved for the "
                             "fused loss in the returned parts)")
        if logits.shape != fused.shape:
            raise ValueError(f"'unimodal[{m!r}]' has shape {tuple(logits.shape)}, expected "
                             f"{tuple(fused.shape)} like 'fused'")
    if class_weight is not None and class_weight.shape != (num_classes, ):
        raise ValueError(f"'class_weight' has shape {tuple(class_weight.shape)}, expected "
                         f"[{num_classes}]")

    valid = y >= 0
    if mask is not None:
        if mask.shape != (num_nodes, ):
            raise ValueError(f"'mask' has shape {tuple(mask.shape)}, expected [{num_nodes}]")
        valid = valid & mask.bool()
    if not focal_gamma >= 0:  # also rejects NaN
        raise ValueError(f"'focal_gamma' must be a non-negative number (got {focal_gamma!r})")

    names = ['fusion', *unimodal]
    # Every term at once, on the logits stacked: [1 + M, N, C] -> numerators [1 + M].
    numerators, total = masked_nll_sums(torch.stack([fused, *unimodal.values()]), y, valid,
                                        class_weight, focal_gamma)
    if all_reduce is not None:
        # One collective for all terms. The global sums enter as constants plus this
        # process's own (differentiable) share, so that the value is global and the gradient
        # only flows into this process's utterances.
        global_sums = all_reduce(torch.cat([numerators.detach(), total.detach().view(1)]))
        numerators = numerators + (global_sums[:-1] - numerators.detach())
        total = global_sums[-1]
    means = numerators / _guarded(total)
    fusion, auxiliary = means.split([1, len(names) - 1])
    loss = fusion.view(())
    for term in (auxiliary * (auxiliary / 10)).unbind():  # added in order, as the sum is written
        loss = loss + term
    parts: Dict[str, Tensor] = dict(zip(names, means.detach().unbind()))
    return loss, parts


def inverse_frequency_weights(y: Tensor, num_classes: int) -> Tensor:
    r"""Inverse-frequency class weights :math:`w_c = N / (C \cdot n_c)`.

    This is scikit-learn's ``compute_class_weight('balanced')``: :math:`N` is the number of
    labelled entries (``y >= 0``), :math:`n_c` the count of class :math:`c`, so a balanced
    set gets weights 1. A class that never occurs gets weight 0 (it cannot contribute to the
    loss on this data anyway, and 0 keeps the vector finite). Without any labelled entry all
    weights are 0.

    Args:
        y (torch.Tensor): Labels of any shape; negative entries are ignored.
        num_classes (int): Number of classes :math:`C`.

    Returns:
        torch.Tensor: ``[C]`` weights in the default floating dtype, on :obj:`y`'s device.
    """
    if num_classes < 1:
        raise ValueError(f"'num_classes' must be positive (got {num_classes})")
    if y.is_floating_point():
        raise ValueError(f"'y' must hold integer labels (got dtype {y.dtype})")
    y = y.reshape(-1)
    dtype = torch.get_default_dtype()
    valid = y >= 0
    # Comparison one-hot: no host-side range check; labels >= num_classes are not counted.
    classes = torch.arange(num_classes, device=y.device)
    counts = ((y.unsqueeze(-1) == classes) & valid.unsqueeze(-1)).sum(0).to(dtype)
    total = counts.sum()
    weight = total / (num_classes * counts.clamp_min(1))
    return torch.where(counts > 0, weight, torch.zeros_like(weight))
