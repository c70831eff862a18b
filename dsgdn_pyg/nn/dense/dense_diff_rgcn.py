from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from ..diff_rgcn import DiffRGCN
from ..functional import fast_dropout
from .dense_diff_gat_conv import DenseDiffGATConv


class DenseDiffRGCN(torch.nn.Module):
    r"""The dense form of :class:`~dsgdn_pyg.nn.DiffRGCN` on padded dialogues with
    :math:`B \times L \times L` relation ids, as the published implementation computes it.

    It owns no parameters: it runs the :class:`DiffRGCN` it wraps through
    :class:`~dsgdn_pyg.nn.DenseDiffGATConv`, so the two compute the same function.

    Args:
        block (DiffRGCN): The sparse block whose parameters are used (:obj:`conv="diffgat"`).

    Shapes:
        - **input:** node features :math:`(B, L, d_h)`, relation ids :math:`(B, L, L)`
          (:obj:`0` = no edge), optional node mask :math:`(B, L)`
        - **output:** node features :math:`(B, L, d_h)`
    """
    def __init__(self, block: DiffRGCN):
        super().__init__()
        if block.conv_type != 'diffgat':
            raise ValueError(f"DenseDiffRGCN needs a DiffRGCN with conv='diffgat', got "
                             f"{block.conv_type!r}")
        self.block = block
        self.att = DenseDiffGATConv(block.att)
        self.out_att = DenseDiffGATConv(block.out_att)

    def forward(self, x: Tensor, rel: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        block = self.block
        # The same dropout fast path and activations as DiffRGCN.
        h, _ = self.att(fast_dropout(x, block.dropout, block.training), rel, mask)
        h, _ = self.out_att(fast_dropout(F.gelu(h), block.dropout, block.training), rel, mask)
        h = block.lin(F.gelu(F.gelu(h)))
        return block.norm(x + h)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}({self.block})'
