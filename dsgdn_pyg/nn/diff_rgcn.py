from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.nn import GATConv
from torch_geometric.typing import Adj, OptTensor

from .diff_gat_conv import DiffGATConv
from .functional import fast_dropout


class DiffRGCN(torch.nn.Module):
    r"""The differential relational graph block of AMB-DSGDN (paper section 4.5, eq. 18):
    :obj:`heads` parallel :class:`DiffGATConv` heads, concatenated, an output
    :class:`DiffGATConv`, a fully connected layer, a residual connection and layer normalisation:

    .. math::
        \mathbf{Z} &= \big\Vert_{k=1}^{H} \mathrm{GELU}\left(
        \mathrm{DiffGAT}_k(\mathrm{Dropout}(\mathbf{X}))\right)

        \mathbf{X}^{\prime} &= \mathrm{LayerNorm}\left(\mathbf{X} + \mathbf{W}\,
        \mathrm{GELU}\left(\mathrm{GELU}\left(
        \mathrm{DiffGAT}_{out}(\mathrm{Dropout}(\mathbf{Z}))\right)\right)
        + \mathbf{b}\right)

    The published implementation ends its DiffGAT layer with a GELU and applies another one
    after the output layer; :class:`DiffGATConv` leaves activations to the caller, so this
    block applies both (the output layer's output goes through GELU twice). The
    :obj:`conv="gat"` ablation uses :class:`~torch_geometric.nn.conv.GATConv` as published:
    no activation between the layers, one GELU after the output layer.

    Args:
        channels (int): Input and output width :math:`d_h`.
        heads (int, optional): Number of parallel attention heads :math:`H`. (default: :obj:`2`)
        dropout (float, optional): Dropout of the block input and of the concatenated heads.
            (default: :obj:`0.5`)
        num_relations (int, optional): Number of relation ids embedded in the attention scores;
            :obj:`None` ignores :obj:`edge_type`. (default: :obj:`6`)
        conv (str, optional): :obj:`"diffgat"` or :obj:`"gat"` (PyG's
            :class:`~torch_geometric.nn.conv.GATConv`, relation-blind, for the paper's
            ablation). (default: :obj:`"diffgat"`)

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, d_h)`, edge indices
          :math:`(2, |\mathcal{E}|)`, edge types :math:`(|\mathcal{E}|)`
        - **output:** node features :math:`(|\mathcal{V}|, d_h)`
    """
    def __init__(self, channels: int, heads: int = 2, dropout: float = 0.5,
                 num_relations: Optional[int] = 6, conv: str = 'diffgat'):
        super().__init__()
        if conv not in ('diffgat', 'gat'):
            raise ValueError(f"'conv' must be 'diffgat' or 'gat', got {conv!r}")
        self.channels = channels
        self.heads = heads
        self.dropout = dropout
        self.conv_type = conv
        if conv == 'diffgat':
            # No bias: the normalisation's offset already is one (and checkpoints keep their
            # parameters).
            self.att = DiffGATConv(channels, channels, heads=heads, dropout=dropout,
                                   num_relations=num_relations, bias=False)
            self.out_att = DiffGATConv(heads * channels, channels, heads=1, dropout=dropout,
                                       num_relations=num_relations, bias=False)
        else:
            self.att = GATConv(channels, channels, heads=heads, dropout=dropout,
                               add_self_loops=False)
            self.out_att = GATConv(heads * channels, channels, heads=1, dropout=dropout,
                                   add_self_loops=False)
        self.lin = torch.nn.Linear(channels, channels)
        self.norm = torch.nn.LayerNorm(channels)

    def reset_parameters(self):
        self.att.reset_parameters()
        self.out_att.reset_parameters()
        self.lin.reset_parameters()
        self.norm.reset_parameters()

    def forward(self, x: Tensor, edge_index: Adj, edge_type: OptTensor = None) -> Tensor:
        def conv(layer: torch.nn.Module, h: Tensor) -> Tensor:
            if self.conv_type == 'diffgat':
                return layer(h, edge_index, edge_type)
            return layer(h, edge_index)
        return self.combine(x, conv)

    def combine(self, x: Tensor, conv: Callable[[torch.nn.Module, Tensor], Tensor]) -> Tensor:
        r"""The block around its two attention layers, each run as :obj:`conv(layer, h)`
        (:meth:`forward` runs them on its graph; incremental inference,
        :class:`~dsgdn_pyg.inference.streaming.StreamingRecognizer`, on the rows it keeps)."""
        # fast_dropout: the dropout fast path (cheaper CPU mask; dsgdn_pyg.nn.functional).
        h = self._activate(conv(self.att, fast_dropout(x, self.dropout, self.training)))
        h = self._activate(conv(self.out_att, fast_dropout(h, self.dropout, self.training)))
        h = self.lin(F.gelu(h))
        return self.norm(x + h)

    def _activate(self, h: Tensor) -> Tensor:
        # The published DiffGAT layer ends with a GELU; the GAT ablation has none.
        return F.gelu(h) if self.conv_type == 'diffgat' else h

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.channels}, heads={self.heads}, '
                f'conv={self.conv_type!r})')
