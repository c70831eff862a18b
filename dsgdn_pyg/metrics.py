r"""Classification metrics.

Two flavours:

* :func:`weighted_f1` -- scikit-learn's weighted F1 written with torch ops, so that it can run
  inside a training step on the accelerator without a device-to-host synchronisation (it is
  used by :class:`dsgdn_pyg.nn.adaptive_modality_dropout.AdaptiveModalityDropout` on every
  batch).
* :func:`classification_metrics` / :func:`format_confusion` -- the evaluation report, computed
  with scikit-learn on numpy arrays.
"""
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from torch import Tensor


def weighted_f1(
    pred: Tensor,
    target: Tensor,
    num_classes: int,
    mask: Optional[Tensor] = None,
    dtype: Optional[torch.dtype] = None,
) -> Tensor:
    r"""Support-weighted F1 score, as ``sklearn.metrics.f1_score(average='weighted')``.

    Per class :math:`c`, :math:`F1_c = 2\,TP_c / (2\,TP_c + FP_c + FN_c)` (0 when precision and
    recall are both 0), and the score is :math:`\sum_c n_c F1_c / \sum_c n_c` with :math:`n_c`
    the number of valid targets of class :math:`c`. Classes without support get weight 0; if no
    entry is valid the score is 0 (scikit-learn's ``zero_division`` result).

    Everything is computed with comparisons and sums, so the result stays on the device and no
    host synchronisation happens. Leading dimensions of :obj:`pred` are batch dimensions, e.g.
    the predictions of :math:`M` modalities ``[M, N]`` give ``[M]`` scores.

    Args:
        pred (torch.Tensor): Predicted labels ``[..., N]``. A prediction outside
            ``[0, num_classes)`` counts as wrong (as scikit-learn would, since such a class
            has no support).
        target (torch.Tensor): True labels, broadcastable to :obj:`pred`. Entries ``< 0`` are
            ignored. Entries ``>= num_classes`` are not checked (that would need a sync) and
            are silently ignored as well.
        num_classes (int): Number of classes :math:`C`.
        mask (torch.Tensor, optional): Boolean mask broadcastable to :obj:`pred`; ``False``
            entries are ignored. (default: :obj:`None`)
        dtype (torch.dtype, optional): Floating dtype of the result.
            (default: :obj:`torch.get_default_dtype()`)

    Returns:
        torch.Tensor: The scores, shape ``pred.shape[:-1]`` (0-dim for a 1-D :obj:`pred`).
    """
    return weighted_f1_from_counts(f1_counts(pred, target, num_classes, mask, dtype))


def f1_counts(pred: Tensor, target: Tensor, num_classes: int, mask: Optional[Tensor] = None,
              dtype: Optional[torch.dtype] = None) -> Tensor:
    r"""The counts :func:`weighted_f1` is computed from: true positives, predictions and
    support per class, ``[..., 3, C]`` (arguments as in :func:`weighted_f1`).

    Counts of several shares of a batch add up to those of the whole batch, which is how
    data-parallel training computes the score of a global batch (an all-reduced sum).
    """
    if num_classes < 1:
        raise ValueError(f"'num_classes' must be positive (got {num_classes})")
    if pred.dim() < 1:
        raise ValueError(f"'pred' must have at least one dimension (got shape {tuple(pred.shape)})")
    if pred.is_floating_point() or target.is_floating_point():
        raise ValueError(f"'pred' and 'target' must hold integer labels "
                         f"(got dtypes {pred.dtype} and {target.dtype})")
    if target.dim() < 1 or target.size(-1) != pred.size(-1):
        raise ValueError(f"'target' of shape {tuple(target.shape)} does not match 'pred' of "
                         f"shape {tuple(pred.shape)} in the last dimension")
    dtype = torch.get_default_dtype() if dtype is None else dtype
    if not dtype.is_floating_point:
        raise ValueError(f"'dtype' must be a floating dtype (got {dtype})")

    valid = target >= 0
    if mask is not None:
        if mask.dim() < 1 or mask.size(-1) != pred.size(-1):
            raise ValueError(f"'mask' of shape {tuple(mask.shape)} does not match 'pred' of "
                             f"shape {tuple(pred.shape)} in the last dimension")
        valid = valid & mask.bool()
    valid = valid.unsqueeze(-1)

    # One-hot by comparison rather than F.one_hot: the latter validates its input on the host.
    classes = torch.arange(num_classes, device=pred.device)
    pred_hot = (pred.unsqueeze(-1) == classes) & valid  # [..., N, C]
    true_hot = (target.unsqueeze(-1) == classes) & valid

    true_pos = (pred_hot & true_hot).sum(-2).to(dtype)  # [..., C]
    pred_count = pred_hot.sum(-2).to(dtype)
    support = true_hot.sum(-2).to(dtype)
    return torch.stack(torch.broadcast_tensors(true_pos, pred_count, support), dim=-2)


def weighted_f1_from_counts(counts: Tensor) -> Tensor:
    r""":func:`weighted_f1` from the output of :func:`f1_counts`."""
    true_pos, pred_count, support = counts.unbind(-2)

    # 2TP / (2TP + FP + FN) = 2TP / (#predicted + #true); 0/0 -> 0.
    denom = pred_count + support
    f1 = torch.where(denom > 0, 2 * true_pos / denom.clamp_min(1), torch.zeros_like(denom))
    total = support.sum(-1)
    score = (f1 * support).sum(-1) / total.clamp_min(1)
    # Broadcasting may have added leading dims from target/mask; that is the intended shape.
    return score


def _as_numpy(values: Any, name: str) -> np.ndarray:
    if isinstance(values, Tensor):
        values = values.detach().cpu().numpy()
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"'{name}' must be one-dimensional (got shape {array.shape})")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        if not np.all(np.equal(np.mod(array, 1), 0)):
            raise ValueError(f"'{name}' must hold integer labels (got dtype {array.dtype})")
    return array.astype(np.int64)


def classification_metrics(
    y_true: Any,
    y_pred: Any,
    label_names: Sequence[str],
) -> Dict[str, Any]:
    r"""The evaluation report of this project, computed with scikit-learn.

    Entries with ``y_true < 0`` (unlabelled utterances) are ignored.

    Args:
        y_true (array-like or torch.Tensor): True labels ``[N]``.
        y_pred (array-like or torch.Tensor): Predicted labels ``[N]``.
        label_names (Sequence[str]): Class names, index = label.

    Returns:
        dict: with keys

        * ``'wa_f1'`` -- weighted F1 in percent,
        * ``'wa_acc'`` -- accuracy in percent,
        * ``'per_class_f1'`` -- ``{label name: F1 in percent}`` for every class,
        * ``'confusion'`` -- ``C x C`` list of lists, rows = true, columns = predicted,
        * ``'support'`` -- ``{label name: number of valid utterances of that class}``,
        * ``'num_utterances'`` -- number of valid utterances.

        All scores are 0 when there is no valid utterance.
    """
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    label_names = [str(name) for name in label_names]
    num_classes = len(label_names)
    if num_classes == 0:
        raise ValueError("'label_names' must not be empty")
    y_true = _as_numpy(y_true, 'y_true')
    y_pred = _as_numpy(y_pred, 'y_pred')
    if y_true.shape != y_pred.shape:
        raise ValueError(f"'y_true' has {y_true.size} entries but 'y_pred' has {y_pred.size}")
    valid = y_true >= 0
    y_true, y_pred = y_true[valid], y_pred[valid]
    if y_true.size and y_true.max() >= num_classes:
        raise ValueError(f"'y_true' holds label {int(y_true.max())} but there are only "
                         f"{num_classes} label names")

    labels = list(range(num_classes))
    if y_true.size == 0:
        wa_f1 = wa_acc = 0.0
        per_class = np.zeros(num_classes)
    else:
        wa_f1 = float(f1_score(y_true, y_pred, average='weighted', zero_division=0))
        wa_acc = float(accuracy_score(y_true, y_pred))
        per_class = f1_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    # Explicit labels so that unseen classes still get a row and a column (and a prediction
    # outside the label set is left out of the table, but still counts as wrong above).
    confusion = confusion_matrix(y_true, y_pred, labels=labels) if y_true.size else \
        np.zeros((num_classes, num_classes), dtype=np.int64)
    support = np.bincount(y_true, minlength=num_classes)

    return {
        'wa_f1': 100.0 * wa_f1,
        'wa_acc': 100.0 * wa_acc,
        'per_class_f1': {name: 100.0 * float(f) for name, f in zip(label_names, per_class)},
        'confusion': [[int(v) for v in row] for row in confusion],
        'support': {name: int(n) for name, n in zip(label_names, support)},
        'num_utterances': int(y_true.size),
    }


def format_confusion(confusion: Sequence[Sequence[int]], label_names: Sequence[str]) -> str:
    r"""Renders a confusion matrix as a fixed-width text table.

    Rows are true labels, columns predicted labels (the layout of
    :func:`classification_metrics`).

    Args:
        confusion (Sequence[Sequence[int]]): ``C x C`` counts.
        label_names (Sequence[str]): Class names, index = label.
    """
    label_names = [str(name) for name in label_names]
    rows: List[List[int]] = [[int(v) for v in row] for row in confusion]
    num_classes = len(label_names)
    if len(rows) != num_classes or any(len(row) != num_classes for row in rows):
        raise ValueError(f"'confusion' must be {num_classes} x {num_classes} to match "
                         f"'label_names' (got {len(rows)} rows of lengths "
                         f"{[len(row) for row in rows]})")

    corner = 'true \\ pred'
    first = max([len(corner)] + [len(name) for name in label_names])
    width = max([len(name) for name in label_names] +
                [len(str(v)) for row in rows for v in row] + [1])
    lines = [corner.ljust(first) + ' | ' + ' '.join(name.rjust(width) for name in label_names)]
    lines.append('-' * len(lines[0]))
    for name, row in zip(label_names, rows):
        lines.append(name.ljust(first) + ' | ' + ' '.join(str(v).rjust(width) for v in row))
    return '\n'.join(lines)
