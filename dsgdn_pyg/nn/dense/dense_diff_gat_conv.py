from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ..diff_gat_conv import DiffGATConv
from ..functional import fast_dropout


class DenseDiffGATConv(torch.nn.Module):
    r"""The dense form of :class:`~dsgdn_pyg.nn.DiffGATConv` on padded dialogues, as the
    published implementation computes it: :math:`B \times L \times L` relation ids and their
    :math:`B \times L \times L \times 10` embedding, masked scores and a batched matrix
    product.

    It owns no parameters: it reads them from the :class:`DiffGATConv` it wraps, so the two
    compute the same function and can be compared in tests and benchmarks.

    Args:
        conv (DiffGATConv): The sparse layer whose parameters are used. Its :obj:`in_channels`
            must be an integer (no bipartite input) and it must score no :obj:`edge_dim`
            features.

    Shapes:
        - **input:** node features :math:`(B, L, F_{in})`, relation ids :math:`(B, L, L)` where
          entry :math:`[b, i, j]` is the id of the edge :math:`j \to i` and :obj:`0` means no
          edge, optional node mask :math:`(B, L)`
        - **output:** node features :math:`(B, L, H * F_{out})` (or :math:`(B, L, F_{out})` if
          :obj:`concat=False`) and coefficients :math:`(B, L, L, H)`
    """
    def __init__(self, conv: DiffGATConv):
        super().__init__()
        if not isinstance(conv.in_channels, int):
            raise ValueError("DenseDiffGATConv needs a DiffGATConv with integer 'in_channels'")
        if conv.edge_dim is not None:
            raise ValueError("DenseDiffGATConv needs a DiffGATConv without 'edge_dim'")
        self.conv = conv

    def forward(self, x: Tensor, rel: Tensor,
                mask: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        conv = self.conv
        H, C = conv.heads, conv.out_channels
        B, L, _ = x.shape
        if rel.shape != (B, L, L):
            raise ValueError(f"'rel' must have shape [B, L, L] = [{B}, {L}, {L}], "
                             f"got {tuple(rel.shape)}")

        h = conv.lin(x).view(B, L, H, 2, C // 2)
        score_dst = (h * conv.att_dst).sum(dim=-1)  # [B, L, H, 2]
        score_src = (h * conv.att_src).sum(dim=-1)
        # score[b, i, j, h, k]: target i, source j.
        score = score_dst.unsqueeze(2) + score_src.unsqueeze(1)
        if conv.rel_emb is not None:
            # As published: a B x L x L x relation_dim embedding, then its projection. (The
            # sparse layer projects the few embedding rows once and looks the scores up.)
            score = score + conv.lin_rel(conv.rel_emb(rel)).view(B, L, L, H, 2)
        score = F.leaky_relu(score, conv.negative_slope)

        edge = rel > 0
        if mask is not None:
            edge = edge & mask.unsqueeze(1) & mask.unsqueeze(2)
        score = score.masked_fill(~edge[..., None, None], float('-inf'))
        alpha_branch = torch.softmax(score, dim=2)
        # Rows without any edge (padding) give NaN; they aggregate nothing.
        alpha_branch = alpha_branch.masked_fill(~edge[..., None, None], 0.0)

        alpha = alpha_branch[..., 0] - conv.differential_lambda() * alpha_branch[..., 1]
        # The same dropout fast path as the sparse layer (dsgdn_pyg.nn.functional).
        alpha = fast_dropout(alpha, p=conv.dropout, training=conv.training)  # [B, L, L, H]

        out = torch.einsum('bijh,bjhc->bihc', alpha, h.view(B, L, H, C))
        out = F.layer_norm(out, (C, )) * conv.norm_weight + conv.norm_bias
        out = out * (1.0 - conv.lambda_init)
        out = out.reshape(B, L, H * C) if conv.concat else out.mean(dim=2)
        if conv.bias is not None:
            out = out + conv.bias
        return out, alpha

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}({self.conv})'
