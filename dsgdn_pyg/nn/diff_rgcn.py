from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.nn import GATConv
from torch_geometric.typing import Adj, OptTensor

from .diff_gat_conv import DiffGATConv
from .functional import dropout


class DiffRGCN(torch.nn.Module):
    r"""The differential relational graph block of AMB-DSGDN (paper section 4.5, eq. 18):
    :obj:`heads` parallel :class:`DiffGATConv` heads, concatenated, an output
    :class:`DiffGATConv`, a fully connected layer, a residual connection and layer normalisation:

    .. math::
        \mathbf{Z} &= \big\Vert_{k=1}^{H} \mathrm{DiffGAT}_k(\mathrm{Dropout}(\mathbf{X}))

        \mathbf{X}^{\prime} &= \mathrm{LayerNorm}\left(\mathbf{X} + \mathbf{W}\,
        \mathrm{GELU}\left(\mathrm{DiffGAT}_{out}(\mathrm{Dropout}(\mathbf{Z}))\right)
        + \mathbf{b}\right)

    The GELU after the output layer is applied on top of the one that ends every
    :class:`DiffGATConv`, as in the published implementation.

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
            self.att = DiffGATConv(channels, channels, heads=heads, dropout=dropout,
                                   num_relations=num_relations)
            self.out_att = DiffGATConv(heads * channels, channels, heads=1, dropout=dropout,
                                       num_relations=num_relations)
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
        args = (edge_index, edge_type) if self.conv_type == 'diffgat' else (edge_index, )
        h = self.att(dropout(x, self.dropout, self.training), *args)
        h = self.out_att(dropout(h, self.dropout, self.training), *args)
        h = self.lin(F.gelu(h))
        return self.norm(x + h)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.channels}, heads={self.heads}, '
                f'conv={self.conv_type!r})')
