"""Typed, windowed dialogue graphs (paper eq. 7-8) as sparse PyG edge lists."""
from typing import Optional, Tuple

import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.transforms import BaseTransform

#: Relation ids of the AMB-DSGDN paper's eq. (7)-(8) (section 4.4 "Graph Construction and
#: Representation"); 0 is reserved for "no edge" in the dense form.
SELF_LOOP = 1
INTRA_PAST = 2
INTRA_FUTURE = 3
INTER_FUTURE = 4
INTER_PAST = 5
NUM_RELATIONS = 6  # ids 0..5, so an embedding of the ids has 6 rows

RELATION_NAMES = {
    SELF_LOOP: 'self-loop',
    INTRA_PAST: 'intra-speaker past',
    INTRA_FUTURE: 'intra-speaker future',
    INTER_FUTURE: 'inter-speaker future',
    INTER_PAST: 'inter-speaker past',
}

SUBGRAPH_RELATIONS = {
    'intra': (SELF_LOOP, INTRA_PAST, INTRA_FUTURE),
    'inter': (SELF_LOOP, INTER_FUTURE, INTER_PAST),
}

#: The relations a causal model keeps: an utterance hears itself and its past only.
PAST_RELATIONS = (SELF_LOOP, INTRA_PAST, INTER_PAST)


def dialogue_edges(speakers: Tensor, window: int,
                   causal: bool = False) -> Tuple[Tensor, Tensor]:
    r"""Builds the typed edges of one dialogue within a window of :obj:`window` utterances.

    An edge :math:`j \to i` exists for every pair with :math:`|i - j| \le w`. Its relation id is

    .. math::
        r_{ij} = \begin{cases}
        1 & i = j \\
        2 & j < i,\ s_i = s_j \quad \text{(intra-speaker past)} \\
        3 & j > i,\ s_i = s_j \quad \text{(intra-speaker future)} \\
        4 & j > i,\ s_i \neq s_j \quad \text{(inter-speaker future)} \\
        5 & j < i,\ s_i \neq s_j \quad \text{(inter-speaker past)}
        \end{cases}

    Edges are returned sorted by target, then by source, so that :obj:`edge_index[1]` is a valid
    CSR row order. Time and memory are :math:`O(L \cdot w)`; no :math:`L \times L` tensor is built.

    Args:
        speakers (torch.Tensor): Speaker id of every utterance, shape :obj:`[L]`.
        window (int): The window :math:`w \ge 0`.
        causal (bool, optional): Keep only the edges from the past and the self-loops
            (relations 1, 2, 5: :obj:`PAST_RELATIONS`). (default: :obj:`False`)

    Returns:
        (edge_index, edge_type): :obj:`edge_index[0]` holds the source utterance :math:`j`,
        :obj:`edge_index[1]` the target :math:`i`; :obj:`edge_type` the relation ids.
    """
    speakers = torch.as_tensor(speakers)
    if speakers.dim() != 1:
        raise ValueError(f"'speakers' must be one-dimensional, got shape {tuple(speakers.shape)}")
    if speakers.numel() == 0:
        raise ValueError("'speakers' is empty: a dialogue needs at least one utterance")
    if int(window) != window or window < 0:
        raise ValueError(f"'window' must be a non-negative integer, got {window!r}")
    window = int(window)
    length = speakers.numel()
    device = speakers.device

    window = min(window, length - 1)
    offsets = torch.arange(-window, 1 if causal else window + 1, device=device)
    dst = torch.arange(length, device=device).view(-1, 1).expand(-1, offsets.numel())
    src = dst + offsets.view(1, -1)
    valid = (src >= 0) & (src < length)
    dst, src = dst[valid], src[valid]

    same = speakers[src] == speakers[dst]
    past = src < dst
    edge_type = torch.where(
        same,
        torch.where(past, INTRA_PAST, INTRA_FUTURE),
        torch.where(past, INTER_PAST, INTER_FUTURE),
    )
    edge_type = torch.where(src == dst, SELF_LOOP, edge_type)
    return torch.stack([src, dst], dim=0), edge_type


def dense_dialogue_relations(speaker: Tensor, mask: Tensor, window: int) -> Tensor:
    r"""The relation ids of :func:`dialogue_edges` as the dense :math:`B \times L \times L`
    tensor of the published implementation: entry :obj:`[b, i, j]` is the id of the edge
    :math:`j \to i` of dialogue :math:`b`, and :obj:`0` where there is none (outside the
    window or padding). Quadratic in :math:`L`; for dense reference models and benchmarks.

    Args:
        speaker (torch.Tensor): Padded speaker ids, shape :obj:`[B, L]`.
        mask (torch.Tensor): Node mask, shape :obj:`[B, L]` (:obj:`False` = padding).
        window (int): The window :math:`w \ge 0`.
    """
    if int(window) != window or window < 0:
        raise ValueError(f"'window' must be a non-negative integer, got {window!r}")
    if speaker.dim() != 2 or mask.shape != speaker.shape:
        raise ValueError(f"'speaker' and 'mask' must both be [B, L], got "
                         f"{tuple(speaker.shape)} and {tuple(mask.shape)}")
    position = torch.arange(speaker.size(1), device=speaker.device)
    dst, src = position.view(-1, 1), position.view(1, -1)
    same = speaker.unsqueeze(2) == speaker.unsqueeze(1)
    past = (src < dst).unsqueeze(0)
    rel = torch.where(same, torch.where(past, INTRA_PAST, INTRA_FUTURE),
                      torch.where(past, INTER_PAST, INTER_FUTURE))
    rel = torch.where((src == dst).unsqueeze(0), SELF_LOOP, rel)
    edge = ((dst - src).abs() <= window).unsqueeze(0) & mask.unsqueeze(2) & mask.unsqueeze(1)
    return rel.masked_fill(~edge, 0)


def banded_csr(ptr: Tensor, window: int, causal: bool = False) -> Tuple[Tensor, Tensor]:
    r"""The CSR pattern of the edges :math:`j \to i` with :math:`|i - j| \le w` inside each
    dialogue of a batch (the context of a windowed attention), without relation ids; with
    :obj:`causal=True` only those with :math:`i - w \le j \le i`.

    Built vectorised in :math:`O(N \cdot w)`; rows (targets) and, within a row, columns
    (sources) are in increasing order.

    Args:
        ptr (torch.Tensor): Dialogue offsets of the batch, shape :obj:`[B + 1]` (``batch.ptr``).
        window (int): The window :math:`w \ge 0`.
        causal (bool, optional): Only the past and the node itself. (default: :obj:`False`)

    Returns:
        (crow, col): Row pointers :obj:`[N + 1]` and source indices :obj:`[E]`.
    """
    if int(window) != window or window < 0:
        raise ValueError(f"'window' must be a non-negative integer, got {window!r}")
    if ptr.dim() != 1 or ptr.numel() < 1:
        raise ValueError(f"'ptr' must be a one-dimensional offset vector, got shape "
                         f"{tuple(ptr.shape)}")
    lengths = ptr.diff()
    num_nodes = ptr[-1]
    node = torch.arange(int(num_nodes), device=ptr.device)
    start = torch.repeat_interleave(ptr[:-1], lengths, output_size=node.numel())
    end = torch.repeat_interleave(ptr[1:], lengths, output_size=node.numel())
    first = torch.maximum(node - window, start)
    last = torch.minimum(node + (1 if causal else window + 1), end)
    counts = last - first
    crow = torch.zeros(node.numel() + 1, dtype=torch.long, device=ptr.device)
    crow[1:] = counts.cumsum(0)
    num_edges = int(crow[-1])
    row = torch.repeat_interleave(node, counts, output_size=num_edges)
    col = first[row] + torch.arange(num_edges, device=ptr.device) - crow[:-1][row]
    return crow, col


def relation_subgraph(edge_index: Tensor, edge_type: Tensor,
                      subgraph: str) -> Tuple[Tensor, Tensor]:
    r"""Selects the intra-speaker (ids 1, 2, 3) or inter-speaker (ids 1, 4, 5) subgraph.

    Args:
        edge_index (torch.Tensor): Edges, shape :obj:`[2, E]`.
        edge_type (torch.Tensor): Relation ids, shape :obj:`[E]`.
        subgraph (str): :obj:`"intra"` or :obj:`"inter"`.
    """
    if subgraph not in SUBGRAPH_RELATIONS:
        raise ValueError(f"'subgraph' must be 'intra' or 'inter', got {subgraph!r}")
    if edge_index.dim() != 2 or edge_index.size(0) != 2 or edge_type.dim() != 1 \
            or edge_type.numel() != edge_index.size(1):
        raise ValueError(f"'edge_index' must be [2, E] and 'edge_type' [E], got "
                         f"{tuple(edge_index.shape)} and {tuple(edge_type.shape)}")
    keep = torch.zeros_like(edge_type, dtype=torch.bool)
    for rel in SUBGRAPH_RELATIONS[subgraph]:
        keep |= edge_type == rel
    return edge_index[:, keep], edge_type[keep]


class DialogueGraph(BaseTransform):
    r"""Adds the windowed typed dialogue graph to a dialogue :class:`~torch_geometric.data.Data`.

    Writes :obj:`edge_index` and :obj:`edge_type` (all five relations) and, when
    :obj:`subgraphs=True`, also :obj:`intra_edge_index`/:obj:`intra_edge_type` and
    :obj:`inter_edge_index`/:obj:`inter_edge_type` (sorted by target, as :obj:`edge_index`),
    so that a model does not have to select them again in every step. With :obj:`context_window=K` it also writes
    :obj:`context_edge_index`, the untyped edges :math:`j \to i` with :math:`|i - j| \le K`
    (sorted by target) that a windowed audio/visual encoder attends over
    (:class:`~dsgdn_pyg.nn.UtteranceEncoder`). With :obj:`causal=True` every edge comes from
    the past or is a self-loop (relations 1, 2, 5; context edges :math:`i - K \le j \le i`),
    the input of a causal (streaming) model. Batching offsets every :obj:`*_edge_index` like
    :obj:`edge_index`.

    Args:
        window (int): The window :math:`w \ge 0`.
        subgraphs (bool, optional): Also store the intra/inter subgraphs. (default: :obj:`True`)
        context_window (int, optional): Also store the context edges of this window.
            (default: :obj:`None`)
        causal (bool, optional): Keep only the past and the self-loops. (default: :obj:`False`)
    """
    def __init__(self, window: int, subgraphs: bool = True,
                 context_window: Optional[int] = None, causal: bool = False) -> None:
        if int(window) != window or window < 0:
            raise ValueError(f"'window' must be a non-negative integer, got {window!r}")
        if context_window is not None and (int(context_window) != context_window
                                           or context_window < 0):
            raise ValueError(f"'context_window' must be a non-negative integer or None, got "
                             f"{context_window!r}")
        self.window = int(window)
        self.subgraphs = subgraphs
        self.context_window = None if context_window is None else int(context_window)
        self.causal = bool(causal)

    def forward(self, data: Data) -> Data:
        edge_index, edge_type = dialogue_edges(data.speaker, self.window, self.causal)
        data.edge_index, data.edge_type = edge_index, edge_type
        if self.subgraphs:
            for name in SUBGRAPH_RELATIONS:
                data[f'{name}_edge_index'], data[f'{name}_edge_type'] = relation_subgraph(
                    edge_index, edge_type, name)
        if self.context_window is not None:
            ptr = torch.tensor([0, data.speaker.numel()])
            crow, col = banded_csr(ptr, self.context_window, self.causal)
            row = torch.repeat_interleave(torch.arange(crow.numel() - 1), crow.diff())
            data.context_edge_index = torch.stack([col, row], dim=0)
        return data

    def __repr__(self) -> str:
        context = '' if self.context_window is None else \
            f', context_window={self.context_window}'
        causal = ', causal=True' if self.causal else ''
        return f'{self.__class__.__name__}(window={self.window}{context}{causal})'
