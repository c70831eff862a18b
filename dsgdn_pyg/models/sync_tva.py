from typing import Dict, List

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import HeteroData
from torch_geometric.nn import GATConv, HeteroConv

from ..data.corpus import MODALITIES
from ..data.graph import NUM_RELATIONS
from ..data.hetero import WITHIN, CrossModalGraph, cross_modal_edge_types
from ..nn.diff_gat_conv import DiffGATConv, target_sorted_edge_index
from ..nn.msde import MSDE
from .amb_dsgdn import ModelOutput, check_common_args, model_repr, reset_submodules


class SyncTVA(torch.nn.Module):
    r"""Sync-TVA, the graph-attention framework with modality-specific dynamic enhancement and
    cross-modal fusion of "Sync-TVA: A Graph-Attention Framework for Multimodal Emotion
    Recognition with Cross-Modal Fusion", on PyG batches of heterogeneous dialogue graphs
    (:class:`~dsgdn_pyg.data.CrossModalGraph`).

    Only a summary of that paper is available to this project (its abstract: "a dynamic
    enhancement module for each modality", "heterogeneous cross-modal graphs to model semantic
    relations across text, audio, and visual features", "a cross-attention fusion mechanism"),
    so the architecture below follows those three components but every detail is our choice:

    1. **Projection**: one :class:`~torch.nn.Linear` per modality to :obj:`hidden_channels`,
       after input dropout.
    2. **MSDE** (:class:`~dsgdn_pyg.nn.MSDE`), one per modality: a gate per utterance
       conditioned on the utterance and its dialogue's mean feature, times a per-dialogue
       squeeze-and-excitation recalibration of the channels, added residually and
       layer-normalised.
    3. **Heterogeneous graph attention**: :obj:`num_layers` :class:`~torch_geometric.nn.HeteroConv`
       layers over node types :obj:`'t'`, :obj:`'a'`, :obj:`'v'` (one node per utterance each).
       Every edge type has its own :class:`~dsgdn_pyg.nn.DiffGATConv`
       (:obj:`heads` heads averaged, the relation id of every edge embedded in the scores):
       :obj:`(m, 'within', m)` on the windowed speaker-typed dialogue graph, and
       :obj:`(m1, 'cross', m2)`, bipartite with :obj:`(hidden, hidden)` inputs, between the
       modalities of the same utterance (or of the utterances within :obj:`cross_window`).
       The outputs of the edge types that end in a node type go through a GELU each (for
       :class:`~dsgdn_pyg.nn.DiffGATConv`) and are summed; then dropout,
       residual, LayerNorm per node type. :obj:`conv='gat'` uses PyG's relation-blind
       :class:`~torch_geometric.nn.conv.GATConv` instead.
    4. **Cross-attention fusion**: per utterance, the :math:`M` modality vectors are tokens; each
       token queries the *other* modalities' tokens with a
       :class:`~torch.nn.MultiheadAttention` (:obj:`fusion_heads` heads; a token's own key is
       masked, so this is cross- not self-attention), residual and LayerNorm. With a single
       modality there is nothing to attend to and the step is skipped.
    5. **Classifier**: the :math:`M` fused tokens are concatenated, then dropout, Linear
       (:math:`M d_h \to d_h`), ReLU, dropout, Linear (:math:`d_h \to C`): the fused logits.

    Besides the fused logits, :meth:`forward` returns unimodal logits per modality from a
    ReLU–dropout–Linear head on each modality's graph output (before fusion). The trainer's
    :func:`~dsgdn_pyg.loss.multimodal_loss` therefore sees the fused NLL plus, for every
    modality, the auxiliary term :math:`\mathcal{L}_m^2 / 10`, which keeps each stream
    discriminative on its own (our answer to the paper's "imbalanced contributions across
    modalities"); class weights and the focal loss apply to every term. No modality dropout;
    :obj:`keep` is all :obj:`True`.

    There is no causal (streaming) mode, unlike :class:`~dsgdn_pyg.models.AMBDSGDN`'s
    :obj:`causal`: the MSDE conditions every utterance on its whole dialogue's mean feature
    and squeeze-and-excitation statistics, and the cross-modal edges of :obj:`cross_window`
    reach forward as well as back, so a past-only Sync-TVA needs prefix (running) statistics
    in MSDE, i.e. a different module rather than a mask, plus incremental inference through
    every edge type of the heterogeneous layers; ``TrainConfig(model='sync-tva',
    causal=True)`` is refused.

    Args:
        feature_dims (Dict[str, int]): Input width per modality (keys among :obj:`'t'`,
            :obj:`'a'`, :obj:`'v'`); the model uses exactly these modalities.
        num_classes (int): Number of emotion classes.
        num_speakers (int): Number of speaker ids per dialogue (recorded for the checkpoint
            checks; speakers enter the model through the relation ids of the graph).
        hidden_channels (int, optional): Hidden width :math:`d_h`, even. (default: :obj:`512`)
        heads (int, optional): Attention heads of every graph convolution. (default: :obj:`2`)
        dropout (float, optional): Dropout. (default: :obj:`0.5`)
        conv (str, optional): :obj:`"diffgat"` or :obj:`"gat"`. (default: :obj:`"diffgat"`)
        cross_window (int, optional): Cross-modal edges link utterances within
            :math:`\pm k`; :obj:`0` = the same utterance only. (default: :obj:`0`)
        num_layers (int, optional): Heterogeneous graph layers; :obj:`0` = no graph
            (ablation). (default: :obj:`2`)
        fusion_heads (int, optional): Heads of the cross-attention fusion; must divide
            :obj:`hidden_channels`. (default: :obj:`4`)
        msde (bool, optional): Use the MSDE modules (:obj:`False` = ablation).
            (default: :obj:`True`)
        msde_reduction (int, optional): Bottleneck factor of the MSDE recalibration.
            (default: :obj:`4`)
    """
    def __init__(
        self,
        feature_dims: Dict[str, int],
        num_classes: int,
        num_speakers: int,
        hidden_channels: int = 512,
        heads: int = 2,
        dropout: float = 0.5,
        conv: str = 'diffgat',
        cross_window: int = 0,
        num_layers: int = 2,
        fusion_heads: int = 4,
        msde: bool = True,
        msde_reduction: int = 4,
    ):
        super().__init__()
        check_common_args(feature_dims, conv)
        if num_classes < 2 or num_speakers < 1:
            raise ValueError(f"need num_classes >= 2 and num_speakers >= 1, got "
                             f"{num_classes} and {num_speakers}")
        if hidden_channels < 2 or hidden_channels % 2 != 0:
            raise ValueError(f"'hidden_channels' must be a positive even number (DiffGATConv "
                             f"splits it in two halves), got {hidden_channels}")
        if fusion_heads < 1 or hidden_channels % fusion_heads != 0:
            raise ValueError(f"'fusion_heads' must divide 'hidden_channels' = "
                             f"{hidden_channels}, got {fusion_heads}")
        if heads < 1 or num_layers < 0:
            raise ValueError(f"need heads >= 1 and num_layers >= 0, got {heads} and "
                             f"{num_layers}")
        if int(cross_window) != cross_window or cross_window < 0:
            raise ValueError(f"'cross_window' must be a non-negative integer, got "
                             f"{cross_window!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"'dropout' must lie in [0, 1), got {dropout}")
        self._config = dict(
            feature_dims=dict(feature_dims), num_classes=num_classes, num_speakers=num_speakers,
            hidden_channels=hidden_channels, heads=heads, dropout=dropout, conv=conv,
            cross_window=int(cross_window), num_layers=num_layers, fusion_heads=fusion_heads,
            msde=msde, msde_reduction=msde_reduction)
        self.modalities: List[str] = [m for m in MODALITIES if m in feature_dims]
        self.num_classes = num_classes
        self.dropout = dropout
        self.conv_type = conv
        self.edge_types = cross_modal_edge_types(self.modalities)
        H = hidden_channels
        self.heads = heads

        def per_modality(make):
            return torch.nn.ModuleDict({m: make(m) for m in self.modalities})

        self.proj = per_modality(lambda m: torch.nn.Linear(feature_dims[m], H))
        self.msde = per_modality(lambda m: MSDE(H, msde_reduction, dropout)) if msde else None
        self.convs = torch.nn.ModuleList(
            [HeteroConv({et: self._make_conv(et, H, heads, dropout) for et in self.edge_types},
                        aggr=None if conv == 'diffgat' else 'sum') for _ in range(num_layers)])
        self.norms = torch.nn.ModuleList(
            [per_modality(lambda m: torch.nn.LayerNorm(H)) for _ in range(num_layers)])
        self.unimodal = per_modality(lambda m: torch.nn.Linear(H, num_classes))
        self.fusion = torch.nn.MultiheadAttention(H, fusion_heads, dropout=dropout,
                                                  batch_first=True)
        self.fusion_norm = torch.nn.LayerNorm(H)
        M = len(self.modalities)
        self.head_hidden = torch.nn.Linear(M * H, H)
        self.head_out = torch.nn.Linear(H, num_classes)
        # A token may not attend to itself: cross-modal attention only.
        self.register_buffer('fusion_mask', torch.eye(M, dtype=torch.bool), persistent=False)

    def _make_conv(self, edge_type, channels: int, heads: int, dropout: float):
        src, rel, dst = edge_type
        in_channels = channels if rel == WITHIN else (channels, channels)
        if self.conv_type == 'diffgat':
            # Heads concatenated, to be averaged after the GELU (see forward). No bias: the
            # normalisation's offset already is one (and checkpoints keep their parameters).
            return DiffGATConv(in_channels, channels, heads=heads, concat=True,
                               dropout=dropout, num_relations=NUM_RELATIONS, bias=False)
        return GATConv(in_channels, channels, heads=heads, concat=False, dropout=dropout,
                       add_self_loops=False)

    @staticmethod
    def dialogue_transform(window: int, feature_dims: Dict[str, int], cross_window: int = 0,
                           **kwargs) -> CrossModalGraph:
        r"""The transform that turns a dialogue into this model's input graph; takes the
        model's :meth:`config` as keyword arguments (others are ignored)."""
        return CrossModalGraph(window, list(feature_dims), cross_window)

    def config(self) -> dict:
        """The keyword arguments that rebuild this architecture."""
        return {k: (dict(v) if isinstance(v, dict) else v) for k, v in self._config.items()}

    def set_epoch(self, epoch: int) -> None:
        """No epoch-dependent behaviour; here for the trainer's model interface."""

    def reset_parameters(self):
        reset_submodules(self)
        # MultiheadAttention's reset is private, so reset_submodules does not see it.
        self.fusion._reset_parameters()

    def _inputs(self, data: HeteroData):
        xs, batches = {}, {}
        for m in self.modalities:
            store = data[m] if m in data.node_types else None
            if store is None or 'x' not in store:
                raise ValueError(f"the batch has no node type {m!r} with features 'x' but the "
                                 f"model was built for modalities {self.modalities}; apply "
                                 f"dsgdn_pyg.data.CrossModalGraph to every dialogue first")
            xs[m] = store.x
            batch = store.get('batch')
            batches[m] = batch if batch is not None else \
                torch.zeros(store.x.size(0), dtype=torch.long, device=store.x.device)
        num_graphs = int(data.num_graphs) if hasattr(data, 'num_graphs') else 1
        return xs, batches, num_graphs

    def _edges(self, data: HeteroData):
        edge_index, edge_type = {}, {}
        for et in self.edge_types:
            if et not in data.edge_types:
                raise ValueError(f"the batch has no edge type {et}; apply "
                                 f"dsgdn_pyg.data.CrossModalGraph to every dialogue first")
            edge_index[et] = data[et].edge_index
            edge_type[et] = data[et].edge_type
            if self.conv_type == 'diffgat':
                # Sorted once per batch for both layers (see target_sorted_edge_index).
                size = (data[et[0]].num_nodes, data[et[2]].num_nodes)
                edge_index[et], edge_type[et] = target_sorted_edge_index(
                    edge_index[et], edge_type[et], size)
        return edge_index, edge_type

    def forward(self, data: HeteroData) -> ModelOutput:
        xs, batches, num_graphs = self._inputs(data)
        num_nodes = {m: x.size(0) for m, x in xs.items()}
        if len(set(num_nodes.values())) != 1:
            raise ValueError(f"every modality needs one node per utterance, got {num_nodes}")

        x_dict: Dict[str, Tensor] = {}
        for m in self.modalities:
            x = self.proj[m](F.dropout(xs[m], self.dropout, self.training))
            if self.msde is not None:
                x = self.msde[m](x, batches[m], num_graphs)
            x_dict[m] = x

        if len(self.convs) > 0:
            edge_index_dict, edge_type_dict = self._edges(data)
            extra = {'edge_type_dict': edge_type_dict} if self.conv_type == 'diffgat' else {}
            for conv, norms in zip(self.convs, self.norms):
                h_in = {m: F.dropout(x, self.dropout, self.training) for m, x in x_dict.items()}
                h_dict = conv(h_in, edge_index_dict, **extra)
                if self.conv_type == 'diffgat':
                    # A GELU on every head of every edge type's DiffGATConv output (it has
                    # none), the mean over the heads, then the sum over the edge types
                    # (HeteroConv stacked them).
                    h_dict = {m: F.gelu(h.view(h.size(0), h.size(1), self.heads, -1))
                              .mean(dim=2).sum(dim=1) for m, h in h_dict.items()}
                x_dict = {m: norms[m](x + F.dropout(h_dict[m], self.dropout, self.training))
                          for m, x in x_dict.items()}

        logits = {m: self.unimodal[m](F.dropout(F.relu(x), self.dropout, self.training))
                  for m, x in x_dict.items()}

        tokens = torch.stack([x_dict[m] for m in self.modalities], dim=1)  # [N, M, H]
        if len(self.modalities) > 1:
            attended, _ = self.fusion(tokens, tokens, tokens, attn_mask=self.fusion_mask,
                                      need_weights=False)
            tokens = self.fusion_norm(tokens + F.dropout(attended, self.dropout,
                                                         self.training))
        h = F.dropout(tokens.flatten(1), self.dropout, self.training)
        h = F.dropout(F.relu(self.head_hidden(h)), self.dropout, self.training)
        fused = self.head_out(h)

        keep = torch.ones(fused.size(0), dtype=torch.bool, device=fused.device)
        return ModelOutput(fused, logits, keep)

    def __repr__(self) -> str:
        c = self._config
        return model_repr(self, layers=c['num_layers'], conv=c['conv'],
                          cross_window=c['cross_window'], msde=c['msde'])
