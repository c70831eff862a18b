import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

# fast_dropout: the dropout fast path of this package (a cheaper random mask on the CPU).
from .functional import fast_dropout
# The forward pass, shared with several encoders at once (dialogue_positions and
# sinusoidal_positions re-exported).
from .utterance_encoder_stacked import (dialogue_positions, full_attention,  # noqa: F401
                                        sinusoidal_positions, window_attention)


class UtteranceEncoder(torch.nn.Module):
    r"""The context encoder of the audio and visual streams (paper eq. 2-6): sinusoidal position
    encoding and a speaker embedding are added, then a one-layer Transformer encoder attends
    within each dialogue

    .. math::
        \mathbf{H} &= \mathbf{X} + \mathrm{Dropout}(\mathrm{MHA}(\mathbf{X}))

        \mathbf{X}^{\prime} &= \mathbf{H} + \mathrm{Dropout}(\mathbf{W}_2\,
        \mathrm{GELU}(\mathbf{W}_1 \mathrm{LN}(\mathbf{H})))

    Utterances never attend across dialogues. With :obj:`context_window=None` (as published)
    every utterance attends to its whole dialogue, computed on the padded batch with a key
    padding mask (quadratic in dialogue length). With :obj:`context_window=K` utterance
    :math:`i` attends only to :math:`\{j : |i - j| \le K\}` of its dialogue, computed on the
    packed batch as sparse attention over those edges (scores by SDDMM, segment softmax,
    aggregation by sparse matrix product), which is linear in dialogue length. Both use the
    same parameters, and positions are unbounded (no position table). With :obj:`causal=True`
    utterance :math:`i` attends only to itself and its past (within :math:`K` if set), so that
    nothing it computes depends on a later utterance.

    Args:
        channels (int): Width :math:`d_h`.
        num_speakers (int): Number of speaker ids; the embedding has one more (padding) row.
        heads (int, optional): Attention heads. (default: :obj:`8`)
        dropout (float, optional): Dropout. (default: :obj:`0.1`)
        context_window (int, optional): Attend within :math:`\pm K` utterances only;
            :obj:`None` attends to the whole dialogue. (default: :obj:`None`)
        causal (bool, optional): Attend to the past and the utterance itself only.
            (default: :obj:`False`)

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, d_h)`, speaker ids
          :math:`(|\mathcal{V}|)`, batch vector :math:`(|\mathcal{V}|)` (nodes of one dialogue
          contiguous and in order), and for :obj:`context_window=K` the dialogue offsets
          :math:`(B + 1)` or a precomputed window pattern
          (:func:`dsgdn_pyg.data.banded_csr`, causal for a causal encoder); optionally the
          position of every node in its dialogue :math:`(|\mathcal{V}|)` (default: counted
          from the first node of its dialogue in the batch)
        - **output:** node features :math:`(|\mathcal{V}|, d_h)`
    """
    def __init__(self, channels: int, num_speakers: int, heads: int = 8, dropout: float = 0.1,
                 context_window: Optional[int] = None, causal: bool = False):
        super().__init__()
        if context_window is not None and (int(context_window) != context_window
                                           or context_window < 0):
            raise ValueError(f"'context_window' must be a non-negative integer or None, got "
                             f"{context_window!r}")
        self.channels = channels
        self.num_speakers = num_speakers
        self.context_window = context_window
        self.causal = bool(causal)
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

    def forward(self, x: Tensor, speaker: Tensor, batch: Tensor, batch_size: int,
                ptr: Optional[Tensor] = None,
                window_csr: Optional[Tuple[Tensor, Tensor]] = None,
                position: Optional[Tensor] = None,
                max_num_nodes: Optional[int] = None) -> Tensor:
        if position is None:
            position = dialogue_positions(batch, batch_size)
        x = self._embed(x, speaker, position)
        q, k, v = self._qkv(x)
        if self.context_window is None:
            if max_num_nodes is None:  # the longest dialogue: read on the host (a GPU sync)
                max_num_nodes = int(position.max()) + 1 if position.numel() > 0 else 0
            # Projections and feed-forward run on the packed rows; only the attention core is
            # padded, node n at row batch[n] * L + position[n].
            out = full_attention(q, k, v, batch * max_num_nodes + position, batch_size,
                                 max_num_nodes, self.causal, self.attn.dropout, self.training)
        else:
            if window_csr is None:
                if ptr is None:
                    raise ValueError("a windowed UtteranceEncoder needs the dialogue offsets "
                                     "'ptr' or a precomputed 'window_csr'")
                from ..data.graph import banded_csr  # nn does not import data at module load
                window_csr = banded_csr(ptr, self.context_window, self.causal)
            out = window_attention(q, k, v, window_csr, self.attn.dropout, self.training)
        return self._feed_forward(x, self.attn.out_proj(out.reshape(x.size(0), -1)))

    def _embed(self, x: Tensor, speaker: Tensor, position: Tensor) -> Tensor:
        x = x + sinusoidal_positions(position, self.channels).to(x.dtype)
        return x + self.speaker_emb(speaker)

    def _qkv(self, x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        attn = self.attn
        heads = attn.num_heads
        return F.linear(x, attn.in_proj_weight, attn.in_proj_bias).view(
            x.size(0), 3, heads, self.channels // heads).unbind(dim=1)

    def step(self, x: Tensor, speaker: Tensor, position: Tensor,
             past: Optional[Tuple[Tensor, Tensor]] = None) -> Tuple[Tensor, Tuple[Tensor, Tensor]]:
        r"""Incremental inference of a causal encoder: the output of one new utterance given
        the keys and values of the utterances it attends to (its past within
        :obj:`context_window`), computed like :meth:`forward` computes that utterance's row.

        Args:
            x (torch.Tensor): The new utterance's features, :math:`(1, d_h)`.
            speaker (torch.Tensor): Its speaker id, :math:`(1)`.
            position (torch.Tensor): Its position in the dialogue, :math:`(1)`.
            past ((torch.Tensor, torch.Tensor), optional): Keys and values of the past
                utterances it attends to, each :math:`(P, \mathrm{heads}, d_h / \mathrm{heads})`,
                oldest first; :obj:`None` for the first utterance.

        Returns:
            (out, (key, value)): The output :math:`(1, d_h)` and the new utterance's key and
            value (each :math:`(1, \mathrm{heads}, d_h / \mathrm{heads})`) for the cache of
            the next steps.
        """
        if not self.causal:
            raise ValueError("step() needs a causal encoder: a non-causal utterance attends to "
                             "the future")
        if x.dim() != 2 or x.size(0) != 1:
            raise ValueError(f"step() takes one utterance [1, {self.channels}], got "
                             f"{tuple(x.shape)}")
        x = self._embed(x, speaker, position)
        q, k, v = self._qkv(x)  # [1, heads, c]
        keys, values = (k, v) if past is None else (torch.cat([past[0], k]),
                                                    torch.cat([past[1], v]))
        score = (keys * q).sum(dim=-1) / math.sqrt(q.size(-1))  # [P + 1, heads]
        alpha = torch.softmax(score, dim=0)
        out = (alpha.unsqueeze(-1) * values).sum(dim=0).reshape(1, self.channels)
        return self._feed_forward(x, self.attn.out_proj(out)), (k, v)

    def forward_padded(self, x: Tensor, speaker: Tensor, mask: Tensor) -> Tensor:
        r"""The published computation on a padded batch: everything, projections included,
        on :math:`B \times L` rows (:math:`(B, L, d_h)` features, :math:`(B, L)` speaker ids
        and node mask), with an :math:`L \times L` band mask for :obj:`context_window` and a
        triangular one if :obj:`causal`; the dense reference of
        :class:`~dsgdn_pyg.models.DenseAMBDSGDN`."""
        position = torch.arange(x.size(1), device=x.device)
        x = x + sinusoidal_positions(position, self.channels).to(x.dtype)
        x = x + self.speaker_emb(speaker.masked_fill(~mask, self.num_speakers))
        band = None
        offset = position.view(-1, 1) - position.view(1, -1)  # query minus key position
        if self.context_window is not None:
            band = offset.abs() > self.context_window
        if self.causal:
            band = offset < 0 if band is None else band | (offset < 0)
        attn, _ = self.attn(x, x, x, key_padding_mask=~mask, attn_mask=band,
                            need_weights=False)
        return self._feed_forward(x, attn)

    def _feed_forward(self, x: Tensor, attn: Tensor) -> Tensor:
        h = x + fast_dropout(attn, self.dropout, self.training)
        ffn = self.lin2(F.gelu(self.lin1(self.norm(h))))
        return h + fast_dropout(ffn, self.dropout, self.training)

    def __repr__(self) -> str:
        window = '' if self.context_window is None else \
            f', context_window={self.context_window}'
        causal = ', causal=True' if self.causal else ''
        return (f'{self.__class__.__name__}({self.channels}, '
                f'num_speakers={self.num_speakers}, heads={self.attn.num_heads}{window}'
                f'{causal})')
