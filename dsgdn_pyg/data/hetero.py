r"""Heterogeneous cross-modal dialogue graphs (Sync-TVA) as PyG
:class:`~torch_geometric.data.HeteroData`.

One node type per modality (:obj:`'t'`, :obj:`'a'`, :obj:`'v'`), one node per utterance in each.
Two families of edge types:

* within a modality, :obj:`(m, 'within', m)`: the windowed speaker-typed dialogue graph of
  :func:`~dsgdn_pyg.data.dialogue_edges` (relation ids 1..5),
* across modalities, :obj:`(m1, 'cross', m2)` for every ordered pair :math:`m_1 \neq m_2`: an
  edge from utterance :math:`j` of :math:`m_1` to utterance :math:`i` of :math:`m_2` where
  :math:`|i - j| \le k` (:obj:`cross_window`; :math:`k = 0` links the modalities of the same
  utterance only). These edges carry the same relation ids, so :math:`k = 0` gives only
  self-loop ids (1) and :math:`k > 0` also tells past/future and same/other speaker apart.
"""
from typing import Dict, List, Optional, Sequence, Tuple

from torch import Tensor
from torch_geometric.data import Data, HeteroData
from torch_geometric.transforms import BaseTransform

from .corpus import MODALITIES, feature_key
from .graph import dialogue_edges

EdgeType = Tuple[str, str, str]

#: Relation names of the two edge families.
WITHIN = 'within'
CROSS = 'cross'


def _check_modalities(modalities: Sequence[str]) -> List[str]:
    modalities = list(modalities)
    unknown = [m for m in modalities if m not in MODALITIES]
    if not modalities or unknown or len(set(modalities)) != len(modalities):
        raise ValueError(f"'modalities' must be a non-empty list of distinct modalities among "
                         f"{MODALITIES}, got {modalities!r}")
    return [m for m in MODALITIES if m in modalities]


def cross_modal_edge_types(modalities: Sequence[str]) -> List[EdgeType]:
    r"""The edge types of the cross-modal graph over :obj:`modalities`, in a fixed order:
    :obj:`(m, 'within', m)` per modality, then :obj:`(m1, 'cross', m2)` for every ordered pair
    of different modalities.

    Args:
        modalities (Sequence[str]): A non-empty subset of :obj:`('t', 'a', 'v')`.
    """
    modalities = _check_modalities(modalities)
    types = [(m, WITHIN, m) for m in modalities]
    types += [(m1, CROSS, m2) for m1 in modalities for m2 in modalities if m1 != m2]
    return types


def cross_modal_edges(
    speakers: Tensor,
    window: int,
    modalities: Sequence[str],
    cross_window: int = 0,
) -> Dict[EdgeType, Tuple[Tensor, Tensor]]:
    r"""The typed edges of the heterogeneous cross-modal graph of one dialogue.

    Within modality :math:`m` the edges :math:`j \to i` are those of
    :func:`~dsgdn_pyg.data.dialogue_edges` with window :obj:`window`. Between two different
    modalities :math:`m_1 \to m_2` there is an edge from utterance :math:`j` (a node of
    :math:`m_1`) to utterance :math:`i` (a node of :math:`m_2`) for every
    :math:`|i - j| \le k` with :math:`k` = :obj:`cross_window`, typed with the same relation ids
    (these are exactly the edges of :obj:`dialogue_edges(speakers, cross_window)`). Every
    modality shares one set of within-modality edges and one set of cross edges; the tensors
    are built once, vectorised, in :math:`O(L \cdot (w + k))`.

    Args:
        speakers (torch.Tensor): Speaker id of every utterance, shape :obj:`[L]`.
        window (int): Window :math:`w \ge 0` of the within-modality edges.
        modalities (Sequence[str]): The node types, a non-empty subset of
            :obj:`('t', 'a', 'v')`.
        cross_window (int, optional): Window :math:`k \ge 0` of the cross-modal edges.
            (default: :obj:`0`)

    Returns:
        Dict[Tuple[str, str, str], (torch.Tensor, torch.Tensor)]: :obj:`(edge_index,
        edge_type)` per edge type of :func:`cross_modal_edge_types`; row 0 of
        :obj:`edge_index` indexes the source node type, row 1 the target node type.
    """
    modalities = _check_modalities(modalities)
    if int(cross_window) != cross_window or cross_window < 0:
        raise ValueError(f"'cross_window' must be a non-negative integer, got {cross_window!r}")
    within = dialogue_edges(speakers, window)
    cross = dialogue_edges(speakers, int(cross_window)) if len(modalities) > 1 else None
    out: Dict[EdgeType, Tuple[Tensor, Tensor]] = {}
    for edge_type in cross_modal_edge_types(modalities):
        out[edge_type] = within if edge_type[1] == WITHIN else cross
    return out


class CrossModalGraph(BaseTransform):
    r"""Turns a dialogue :class:`~torch_geometric.data.Data` into the heterogeneous cross-modal
    graph of Sync-TVA, a :class:`~torch_geometric.data.HeteroData` (see
    :func:`cross_modal_edges`).

    Node type :obj:`m` holds :obj:`x` = the dialogue's :obj:`x_m` (one node per utterance, in
    utterance order). Edge type :obj:`(src, rel, dst)` holds :obj:`edge_index` and
    :obj:`edge_type` (the relation ids). The dialogue-level fields stay global: :obj:`y` and
    :obj:`speaker` (``[L]``, concatenated in batch order by
    :class:`~torch_geometric.data.Batch`), :obj:`dialogue_id` and :obj:`num_utterances`.
    PyG's :class:`~torch_geometric.loader.DataLoader` batches the result, offsetting every
    :obj:`edge_index` per node type.

    Args:
        window (int): Window :math:`w \ge 0` of the within-modality edges.
        modalities (Sequence[str], optional): Node types to build; :obj:`None` takes every
            modality the dialogue has. (default: :obj:`None`)
        cross_window (int, optional): Window :math:`k \ge 0` of the cross-modal edges.
            (default: :obj:`0`)
    """
    def __init__(self, window: int, modalities: Optional[Sequence[str]] = None,
                 cross_window: int = 0) -> None:
        if int(window) != window or window < 0:
            raise ValueError(f"'window' must be a non-negative integer, got {window!r}")
        if int(cross_window) != cross_window or cross_window < 0:
            raise ValueError(f"'cross_window' must be a non-negative integer, got "
                             f"{cross_window!r}")
        self.window = int(window)
        self.modalities = _check_modalities(modalities) if modalities is not None else None
        self.cross_window = int(cross_window)

    def forward(self, data: Data) -> HeteroData:
        present = [m for m in MODALITIES if feature_key(m) in data]
        modalities = self.modalities if self.modalities is not None else present
        missing = [m for m in modalities if m not in present]
        if missing or not modalities:
            raise ValueError(f"dialogue {getattr(data, 'dialogue_id', '?')!r} has modalities "
                             f"{present} but the graph needs {modalities}")
        length = data.speaker.numel()
        out = HeteroData()
        for m in modalities:
            x = data[feature_key(m)]
            if x.size(0) != length:
                raise ValueError(f"dialogue {getattr(data, 'dialogue_id', '?')!r}: "
                                 f"'{feature_key(m)}' has {x.size(0)} rows but 'speaker' "
                                 f"has {length}")
            out[m].x = x
        for edge_type, (edge_index, rel) in cross_modal_edges(
                data.speaker, self.window, modalities, self.cross_window).items():
            out[edge_type].edge_index = edge_index
            out[edge_type].edge_type = rel
        out.y = data.y
        out.speaker = data.speaker
        out.num_utterances = length
        if 'dialogue_id' in data:
            out.dialogue_id = data.dialogue_id
        return out

    def __repr__(self) -> str:
        mods = ''.join(self.modalities) if self.modalities is not None else 'all'
        return (f'{self.__class__.__name__}(window={self.window}, modalities={mods}, '
                f'cross_window={self.cross_window})')
