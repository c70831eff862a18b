import math

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.utils import to_dense_batch


def sinusoidal_positions(position: Tensor, channels: int) -> Tensor:
    r"""Sinusoidal encoding (paper eq. 2) of integer positions, shape :obj:`[*, channels]`."""
    half = torch.arange(0, channels, 2, device=position.device, dtype=torch.float32)
    freq = torch.exp(-math.log(10000.0) * half / channels)
    angle = position.to(torch.float32).unsqueeze(-1) * freq
    out = torch.zeros(*position.shape, channels, device=position.device)
    out[..., 0::2] = torch.sin(angle)
    out[..., 1::2] = torch.cos(angle[..., :channels // 2])
    return out


class UtteranceEncoder(torch.nn.Module):
    r"""The context encoder of the audio and visual streams (paper eq. 2-6): sinusoidal position
    encoding and a speaker embedding are added, then a one-layer Transformer encoder attends
    within each dialogue

    .. math::
        \mathbf{H} &= \mathbf{X} + \mathrm{Dropout}(\mathrm{MHA}(\mathbf{X}))

        \mathbf{X}^{\prime} &= \mathbf{H} + \mathrm{Dropout}(\mathbf{W}_2\,
        \mathrm{GELU}(\mathbf{W}_1 \mathrm{LN}(\mathbf{H})))

    with a key padding mask, so that utterances never attend across dialogues.

    Args:
        channels (int): Width :math:`d_h`.
        num_speakers (int): Number of speaker ids; the embedding has one more (padding) row.
        heads (int, optional): Attention heads. (default: :obj:`8`)
        dropout (float, optional): Dropout. (default: :obj:`0.1`)

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, d_h)`, speaker ids
          :math:`(|\mathcal{V}|)`, batch vector :math:`(|\mathcal{V}|)` (nodes of one dialogue
          contiguous and in order)
        - **output:** node features :math:`(|\mathcal{V}|, d_h)`
    """
    def __init__(self, channels: int, num_speakers: int, heads: int = 8, dropout: float = 0.1):
        super().__init__()
        self.channels = channels
        self.num_speakers = num_speakers
        self.speaker_emb = torch.nn.Embedding(num_speakers + 1, channels)
        self.attn = torch.nn.MultiheadAttention(channels, heads, dropout=dropout,
                                                batch_first=True)
        self.norm = torch.nn.LayerNorm(channels)
        self.lin1 = torch.nn.Linear(channels, channels)
        self.lin2 = torch.nn.Linear(channels, channels)
        self.dropout = dropout

    def reset_parameters(self):
        self.speaker_emb.reset_parameters()
        self.attn._reset_parameters()
        self.norm.reset_parameters()
        self.lin1.reset_parameters()
        self.lin2.reset_parameters()

    def forward(self, x: Tensor, speaker: Tensor, batch: Tensor, batch_size: int) -> Tensor:
        dense, mask = to_dense_batch(x, batch, batch_size=batch_size)  # [B, L, d], [B, L]
        position = torch.arange(dense.size(1), device=x.device)
        dense = dense + sinusoidal_positions(position, self.channels).to(x.dtype)
        spk, _ = to_dense_batch(speaker, batch, fill_value=self.num_speakers,
                                batch_size=batch_size)
        dense = dense + self.speaker_emb(spk)

        attn, _ = self.attn(dense, dense, dense, key_padding_mask=~mask, need_weights=False)
        h = dense + F.dropout(attn, self.dropout, self.training)
        ffn = self.lin2(F.gelu(self.lin1(self.norm(h))))
        h = h + F.dropout(ffn, self.dropout, self.training)
        return h[mask]

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.channels}, '
                f'num_speakers={self.num_speakers}, heads={self.attn.num_heads})')
