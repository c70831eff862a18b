from typing import Dict

import torch
from torch import Tensor
from torch_geometric.data import Batch
from torch_geometric.utils import to_dense_batch

from ..data.corpus import feature_key
from ..data.graph import PAST_RELATIONS, SUBGRAPH_RELATIONS, dense_dialogue_relations
from ..nn.dense import DenseDiffRGCN
from .amb_dsgdn import AMBDSGDN, ModelOutput


class DenseAMBDSGDN(torch.nn.Module):
    r"""AMB-DSGDN computed the way the published implementation computes it: every dialogue
    of a batch padded to the longest, :math:`B \times L \times L` relation ids built from the
    speakers, and dense masked attention in every graph block and in the audio/visual
    Transformer (projections included, on all :math:`B \times L` rows).

    It owns no parameters: it runs the :class:`~dsgdn_pyg.models.AMBDSGDN` it wraps, so the
    two compute the same function (tested in evaluation mode, outputs and gradients) and the
    dense one is the comparison of the benchmarks. Modality dropout, the classifiers and the
    fusion are per utterance and shared (:meth:`AMBDSGDN.fuse`).

    Args:
        model (AMBDSGDN): The sparse model whose parameters are used (graph blocks, if any,
            with :obj:`conv="diffgat"`).
        window (int): The dialogue graph window :math:`w` (the sparse model reads it from the
            graph of its input batch, the dense one builds its relation ids from it).

    Shapes:
        - **input:** the same PyG :class:`~torch_geometric.data.Batch` of dialogues as the
          sparse model (only the features, :obj:`speaker`, :obj:`y` and :obj:`batch` are read)
        - **output:** the same :class:`~dsgdn_pyg.models.amb_dsgdn.ModelOutput`
    """
    def __init__(self, model: AMBDSGDN, window: int):
        super().__init__()
        if int(window) != window or window < 0:
            raise ValueError(f"'window' must be a non-negative integer, got {window!r}")
        self.model = model
        self.window = int(window)
        if model.inter is not None:
            self.inter = torch.nn.ModuleDict({m: DenseDiffRGCN(b)
                                              for m, b in model.inter.items()})
            self.intra = torch.nn.ModuleDict({m: DenseDiffRGCN(b)
                                              for m, b in model.intra.items()})
        else:
            self.inter = self.intra = None

    def forward(self, data: Batch) -> ModelOutput:
        model = self.model
        batch = data.batch if getattr(data, 'batch', None) is not None else \
            data.speaker.new_zeros(data.num_nodes)
        num_graphs = int(data.num_graphs) if hasattr(data, 'num_graphs') else 1
        speaker, mask = to_dense_batch(data.speaker, batch, batch_size=num_graphs)
        if self.inter is not None:
            rel = dense_dialogue_relations(speaker, mask, self.window)
            if model.causal:
                rel = _keep_relations(rel, PAST_RELATIONS)
            inter = _keep_relations(rel, SUBGRAPH_RELATIONS['inter'])
            intra = _keep_relations(rel, SUBGRAPH_RELATIONS['intra'])

        xs: Dict[str, Tensor] = {}
        for m in model.modalities:
            x, _ = to_dense_batch(data[feature_key(m)], batch, batch_size=num_graphs)
            x = model.proj[m](x)
            if m in model.encoder:
                x = model.encoder[m].forward_padded(x, speaker, mask)
            if self.inter is not None:
                x = self.inter[m](x, inter, mask)
                x = self.intra[m](x, intra, mask)
            if m in model.gate:
                x = torch.sigmoid(model.gate[m](x)) * x
            xs[m] = x[mask]
        return model.fuse(xs, data.y, batch, num_graphs)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}({self.model}, window={self.window})'


def _keep_relations(rel: Tensor, relations) -> Tensor:
    keep = torch.zeros_like(rel, dtype=torch.bool)
    for r in relations:
        keep |= rel == r
    return rel.masked_fill(~keep, 0)
