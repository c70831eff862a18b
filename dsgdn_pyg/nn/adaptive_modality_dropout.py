r"""Adaptive modality dropout (AMB-DSGDN paper, section 4.6, Alg. 2).

Modalities that currently classify better than the others are dropped more often, per
dialogue, so that the fused model cannot lean on them alone. Everything runs on the device of
the features: the decision whether to drop at all is a sampled tensor combined with
:func:`torch.where`, so a training step never waits on the host.

In data-parallel training (:meth:`AdaptiveModalityDropout.set_step`) every process holds a
share of the global batch: the scores are computed from counts summed over the processes, and
the random draws are made for the whole global batch from a generator seeded the same way on
every process, each process keeping the columns of its own dialogues, so that all processes
take the decision one process would take on the whole batch.
"""
from typing import Callable, Dict, Optional, Sequence, Tuple

import torch
from torch import Tensor

from dsgdn_pyg.metrics import f1_counts, weighted_f1_from_counts


def modality_drop_probabilities(
    perf: Tensor,
    q_base: float,
    lam: float,
    eps: float = 1e-5,
) -> Tensor:
    r"""Drop probability of each modality from the modalities' scores (paper eq. 20--24).

    For modalities :math:`m \neq j`, :math:`r_{mj} = p_m / (p_j + \epsilon) - 1`;
    :math:`\hat{r}_m = \mathrm{softmax}_j(\mathrm{ReLU}(r_{mj}))`;
    :math:`\bar{r}_m = \sum_j \hat{r}_{mj} r_{mj} / (M - 1)`; and
    :math:`q_m = \mathrm{clip}(q_\mathrm{base}(1 + \lambda \bar{r}_m), 0, 1)` where
    :math:`\bar{r}_m > 0`, else :math:`q_m = 0` -- as in the published implementation, only
    modalities that beat the others are dropped. With a single modality nothing is dropped.

    Args:
        perf (torch.Tensor): Score of each modality ``[M]``, e.g. weighted F1.
        q_base (float): Base drop probability :math:`q_\mathrm{base}`.
        lam (float): Scaling factor :math:`\lambda`.
        eps (float, optional): Smoothing :math:`\epsilon` of the ratio. (default: :obj:`1e-5`)

    Returns:
        torch.Tensor: Drop probabilities ``[M]`` in ``[0, 1]``.
    """
    if perf.dim() != 1 or perf.numel() == 0:
        raise ValueError(f"'perf' must be a non-empty vector [M] (got shape {tuple(perf.shape)})")
    if not perf.is_floating_point():
        raise ValueError(f"'perf' must be a floating tensor (got dtype {perf.dtype})")
    num_modalities = perf.numel()
    if num_modalities == 1:
        return torch.zeros_like(perf)

    ratio = perf.unsqueeze(1) / (perf.unsqueeze(0) + eps) - 1  # [M, M], r[m, j]
    others = ~torch.eye(num_modalities, dtype=torch.bool, device=perf.device)
    # Softmax over j != m only: the diagonal gets weight exactly 0.
    logits = ratio.relu().masked_fill(~others, float('-inf'))
    weight = logits.softmax(dim=1)
    mean_ratio = (weight * ratio).masked_fill(~others, 0).sum(dim=1) / (num_modalities - 1)

    q = (q_base * (1 + lam * mean_ratio)).clamp(0, 1)
    return torch.where(mean_ratio > 0, q, torch.zeros_like(q))


def expectation_scale(q: Tensor, dims: Sequence[int], eps: float = 1e-5) -> Tensor:
    r"""The factor :math:`1 / (1 - \theta)`, :math:`\theta = \sum_m d_m q_m / \sum_m d_m`,
    that keeps the expected total feature mass after dropping (paper eq. 26).

    :math:`\theta` is detached, so no gradient flows through it (paper eq. 27); the scores it
    comes from are computed from arg-max predictions and carry no gradient anyway, so this is
    all the paper's custom autograd function achieves. :math:`1 - \theta` is clamped to at
    least :obj:`eps` (it only reaches 0 if every modality is always dropped, which
    :func:`modality_drop_probabilities` never produces).

    Args:
        q (torch.Tensor): Drop probabilities ``[M]``.
        dims (Sequence[int]): Feature width :math:`d_m` of each modality.
        eps (float, optional): Lower bound of :math:`1 - \theta`. (default: :obj:`1e-5`)
    """
    if q.dim() != 1 or q.numel() != len(dims) or len(dims) == 0:
        raise ValueError(f"'q' of shape {tuple(q.shape)} and 'dims' of length {len(dims)} must "
                         f"describe the same (non-zero) number of modalities")
    if any(d <= 0 for d in dims):
        raise ValueError(f"'dims' must be positive (got {list(dims)})")
    # Python weights rather than a tensor of dims: building that tensor on an accelerator
    # would be a blocking host-to-device copy.
    total = float(sum(dims))
    weight = [d / total for d in dims]
    theta = sum(q.detach()[i] * w for i, w in enumerate(weight))
    return 1.0 / (1 - theta).clamp_min(eps)


def drop_modalities(
    xs: Dict[str, Tensor],
    q: Tensor,
    batch: Tensor,
    num_graphs: int,
    p_exe: float,
    generator: Optional[torch.Generator] = None,
    eps: float = 1e-5,
    positions: Optional[Tensor] = None,
    num_positions: Optional[int] = None,
) -> Tuple[Dict[str, Tensor], Tensor, Tensor]:
    r"""Drops whole modalities per dialogue and rescales (paper Alg. 2, lines 11--19).

    With probability :obj:`p_exe` (one draw for the batch), every modality :math:`m` of every
    dialogue :math:`b` is kept with probability :math:`1 - q_m`
    (:math:`M_{m,b} \sim \mathrm{Bernoulli}(1 - q_m)`) and the features become
    :math:`M_{m,b} x / (1 - \theta)` (:func:`expectation_scale`); otherwise they pass
    unchanged and :math:`M = 1`. The execute decision is a device tensor combined with
    :func:`torch.where`, so nothing is read back to the host. Both random draws are made on
    every call, so the generator advances identically whatever the outcome.

    Args:
        xs (Dict[str, torch.Tensor]): Node features ``[N, d_m]`` per modality, in the order
            of :obj:`q`.
        q (torch.Tensor): Drop probability per modality ``[M]`` (treated as a constant).
        batch (torch.Tensor): Dialogue index of each node ``[N]``.
        num_graphs (int): Number of dialogues :math:`B`.
        p_exe (float): Probability of dropping at all.
        generator (torch.Generator, optional): Source of randomness, on the features'
            device. (default: :obj:`None`)
        eps (float, optional): Lower bound of :math:`1 - \theta`. (default: :obj:`1e-5`)
        positions (torch.Tensor, optional): Position of each of the :math:`B` dialogues in a
            larger batch of :obj:`num_positions` dialogues (data-parallel training): the masks
            are drawn for the larger batch and dialogue :math:`b` takes column
            ``positions[b]``, so its draw does not depend on how the batch was split.
            (default: :obj:`None` = positions ``0..B-1`` of a batch of :math:`B`)
        num_positions (int, optional): Size of the larger batch. (default: :obj:`None`)

    Returns:
        (Dict[str, torch.Tensor], torch.Tensor, torch.Tensor): The features, ``keep`` ``[B]``
        (``True`` where at least one modality of the dialogue survived) and the 0-dim bool
        execute flag.
    """
    names = list(xs)
    if q.dim() != 1 or q.numel() != len(names):
        raise ValueError(f"'q' has shape {tuple(q.shape)}, expected [{len(names)}] "
                         f"(one entry per modality in 'xs')")
    q = q.detach()
    device = q.device

    execute = torch.rand((), generator=generator, device=device) < p_exe
    columns = num_graphs if positions is None else num_positions
    if positions is not None and (num_positions is None or positions.shape != (num_graphs, )):
        raise ValueError(f"'positions' must have shape [{num_graphs}] and come with "
                         f"'num_positions' (got {tuple(positions.shape)}, {num_positions})")
    keep_prob = (1 - q).unsqueeze(1).expand(len(names), columns).contiguous()
    sampled = torch.bernoulli(keep_prob, generator=generator)  # [M, columns]
    if positions is not None:
        sampled = sampled[:, positions.to(device)]  # [M, B]
    mask = torch.where(execute, sampled, torch.ones_like(sampled))

    dims = [xs[m].size(1) for m in names]
    scale = torch.where(execute, expectation_scale(q, dims, eps),
                        torch.ones((), dtype=q.dtype, device=device))

    out: Dict[str, Tensor] = {}
    for i, m in enumerate(names):
        factor = (mask[i] * scale)[batch].to(xs[m].dtype)  # [N]
        out[m] = xs[m] * factor.unsqueeze(-1)
    keep = mask.sum(dim=0) > 0
    return out, keep, execute


class AdaptiveModalityDropout(torch.nn.Module):
    r"""Adaptive modality dropout of AMB-DSGDN (paper section 4.6, Alg. 2).

    On every training batch once :obj:`warmup_epochs` epochs have passed:

    1. :math:`p_m` = weighted F1 of the arg-max of the unimodal logits of modality :math:`m`
       over the labelled utterances of the batch;
    2. drop probabilities :math:`q` from :func:`modality_drop_probabilities`;
    3. with probability :obj:`p_exe`, a mask :math:`M_{m,b} \sim \mathrm{Bernoulli}(1 - q_m)`
       per modality and dialogue multiplies the features, which are then divided by
       :math:`1 - \theta` (:func:`expectation_scale`); otherwise features pass unchanged.

    Dialogues whose modalities were all dropped are reported in the returned ``keep`` mask
    (``False``) so the caller can leave them out of the loss. (With the probabilities of
    :func:`modality_drop_probabilities` the weakest modality always has :math:`q = 0`, so in
    practice every dialogue is kept; the mask is there for the algorithm's sake.)

    The last scores, probabilities and execute flag are kept as tensors in
    :obj:`last_perf`, :obj:`last_q` and :obj:`last_executed` for logging (reading them is the
    caller's sync, not this module's).

    A training loop may fix the randomness of each step and make the module part of a
    data-parallel step with :meth:`set_step`.

    Args:
        q_base (float, optional): Base drop probability. (default: :obj:`0.3`)
        lam (float, optional): Scaling factor :math:`\lambda` of the relative score.
            (default: :obj:`0.9`)
        p_exe (float, optional): Probability of dropping at all on a batch.
            (default: :obj:`0.5`)
        warmup_epochs (int, optional): The module is active from this epoch on (epochs
            counted from 0, set with :meth:`set_epoch`). (default: :obj:`0`)
        eps (float, optional): Smoothing of the score ratio and lower bound of
            :math:`1 - \theta`. (default: :obj:`1e-5`)
    """
    def __init__(
        self,
        q_base: float = 0.3,
        lam: float = 0.9,
        p_exe: float = 0.5,
        warmup_epochs: int = 0,
        eps: float = 1e-5,
    ):
        super().__init__()
        if not 0.0 <= q_base <= 1.0:
            raise ValueError(f"'q_base' must be in [0, 1] (got {q_base})")
        if not 0.0 <= p_exe <= 1.0:
            raise ValueError(f"'p_exe' must be in [0, 1] (got {p_exe})")
        if warmup_epochs < 0:
            raise ValueError(f"'warmup_epochs' must be non-negative (got {warmup_epochs})")
        if not eps > 0:
            raise ValueError(f"'eps' must be positive (got {eps})")
        self.q_base = float(q_base)
        self.lam = float(lam)
        self.p_exe = float(p_exe)
        self.warmup_epochs = int(warmup_epochs)
        self.eps = float(eps)
        self.epoch = 0
        self.last_perf: Optional[Tensor] = None
        self.last_q: Optional[Tensor] = None
        self.last_executed: Optional[Tensor] = None
        self.set_step()

    def reset_parameters(self):
        r"""Resets all learnable parameters of the module (there are none)."""

    def set_epoch(self, epoch: int):
        r"""Tells the module the current (0-based) training epoch."""
        if epoch < 0:
            raise ValueError(f"'epoch' must be non-negative (got {epoch})")
        self.epoch = int(epoch)

    def set_step(
        self,
        generator: Optional[torch.Generator] = None,
        positions: Optional[Tensor] = None,
        num_positions: Optional[int] = None,
        all_reduce: Optional[Callable[[Tensor], Tensor]] = None,
    ):
        r"""Sets the randomness and the share of the global batch of the next training step;
        no arguments restore the defaults (the global RNG, a batch of its own).

        Args:
            generator (torch.Generator, optional): Source of the draws, on the features'
                device; a training loop seeds one per step (e.g. from seed, epoch and step), so
                the draws do not depend on anything run before. (default: :obj:`None`)
            positions (torch.Tensor, optional): Position ``[B]`` of each dialogue of this
                process's batch in the global batch (see :func:`drop_modalities`).
                (default: :obj:`None`)
            num_positions (int, optional): Number of dialogues of the global batch.
                (default: :obj:`None`)
            all_reduce (Callable, optional): Sum of a tensor over the processes; the
                modalities' scores are computed from the summed counts of the global batch.
                (default: :obj:`None`)
        """
        self.generator = generator
        self.positions = positions
        self.num_positions = num_positions
        self.all_reduce = all_reduce

    @property
    def active(self) -> bool:
        r"""Whether :meth:`forward` drops modalities (training mode, warm-up over)."""
        return self.training and self.epoch >= self.warmup_epochs

    def forward(
        self,
        xs: Dict[str, Tensor],
        logits: Dict[str, Tensor],
        y: Tensor,
        batch: Tensor,
        num_graphs: int,
        generator: Optional[torch.Generator] = None,
    ) -> Tuple[Dict[str, Tensor], Tensor]:
        r"""
        Args:
            xs (Dict[str, torch.Tensor]): Node features ``[N, d_m]`` per modality.
            logits (Dict[str, torch.Tensor]): Unimodal classifier logits ``[N, C]`` on the
                current features, same keys as :obj:`xs` (used only through their arg-max).
            y (torch.Tensor): Labels ``[N]``, ``-1`` for unlabelled utterances.
            batch (torch.Tensor): Dialogue index of each node ``[N]``.
            num_graphs (int): Number of dialogues :math:`B` in the batch.
            generator (torch.Generator, optional): Source of randomness, on the features'
                device. (default: :obj:`None`)

        Returns:
            (Dict[str, torch.Tensor], torch.Tensor): The features (the input dict itself when
            inactive) and ``keep`` ``[B]`` bool, ``True`` for dialogues with at least one
            modality kept.
        """
        if len(xs) == 0:
            raise ValueError("'xs' must hold at least one modality")
        if set(logits) != set(xs):
            raise ValueError(f"'logits' has modalities {sorted(logits)} but 'xs' has {sorted(xs)}")
        names = list(xs)
        first = xs[names[0]]
        num_nodes, device = first.size(0), first.device
        for m in names:
            if xs[m].dim() != 2 or xs[m].size(0) != num_nodes:
                raise ValueError(f"'xs[{m!r}]' has shape {tuple(xs[m].shape)}, expected "
                                 f"[{num_nodes}, d]")
            if logits[m].dim() != 2 or logits[m].size(0) != num_nodes:
                raise ValueError(f"'logits[{m!r}]' has shape {tuple(logits[m].shape)}, "
                                 f"expected [{num_nodes}, C]")
        num_classes = logits[names[0]].size(1)
        if any(logits[m].size(1) != num_classes for m in names):
            raise ValueError(f"'logits' disagree on the number of classes: "
                             f"{ {m: logits[m].size(1) for m in names} }")
        if y.shape != (num_nodes, ) or batch.shape != (num_nodes, ):
            raise ValueError(f"'y' {tuple(y.shape)} and 'batch' {tuple(batch.shape)} must both "
                             f"have shape [{num_nodes}]")
        if num_graphs < 1:
            raise ValueError(f"'num_graphs' must be positive (got {num_graphs})")

        if not self.active:
            return xs, torch.ones(num_graphs, dtype=torch.bool, device=device)

        pred = torch.stack([logits[m].detach().argmax(dim=-1) for m in names])  # [M, N]
        dtype = first.dtype if first.is_floating_point() else torch.get_default_dtype()
        # Counts in at least float32: float16 is exact only up to 2048.
        counts = f1_counts(pred, y, num_classes, dtype=torch.promote_types(dtype, torch.float32))
        if self.all_reduce is not None:
            counts = self.all_reduce(counts)
        perf = weighted_f1_from_counts(counts).to(dtype)  # [M]
        q = modality_drop_probabilities(perf, self.q_base, self.lam, self.eps)

        out, keep, execute = drop_modalities(
            xs, q, batch, num_graphs, self.p_exe,
            generator=generator if generator is not None else self.generator, eps=self.eps,
            positions=self.positions, num_positions=self.num_positions)
        self.last_perf, self.last_q, self.last_executed = perf, q, execute
        return out, keep

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(q_base={self.q_base}, lam={self.lam}, '
                f'p_exe={self.p_exe}, warmup_epochs={self.warmup_epochs})')
