from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.utils import scatter


class MSDE(torch.nn.Module):
    r"""Modality-specific dynamic enhancement (MSDE) of one modality's utterance features, our
    reading of the module of the same name in "Sync-TVA: A Graph-Attention Framework for
    Multimodal Emotion Recognition with Cross-Modal Fusion" (only a summary of the paper is
    available to this project, not its equations; the design below is ours).

    Each utterance :math:`i` of dialogue :math:`b(i)` is enhanced in the light of its dialogue's
    context :math:`\mathbf{c}_b`, the mean of the dialogue's utterance features, by a
    context-conditioned utterance gate :math:`\mathbf{g}_i` and a per-dialogue channel
    recalibration :math:`\mathbf{s}_b` (squeeze-and-excitation on the context):

    .. math::
        \mathbf{c}_b &= \frac{1}{|b|} \sum_{j \in b} \mathbf{x}_j

        \mathbf{g}_i &= \sigma\left(\mathbf{W}_g [\mathbf{x}_i \,\Vert\, \mathbf{c}_{b(i)}]
        + \mathbf{b}_g\right)

        \mathbf{s}_b &= \sigma\left(\mathbf{W}_2\, \mathrm{ReLU}(\mathbf{W}_1 \mathbf{c}_b
        + \mathbf{b}_1) + \mathbf{b}_2\right)

        \mathbf{x}^{\prime}_i &= \mathrm{LayerNorm}\left(\mathbf{x}_i + \mathrm{Dropout}\left(
        \mathbf{s}_{b(i)} \odot \mathbf{g}_i \odot \mathrm{GELU}(\mathbf{W}_h \mathbf{x}_i
        + \mathbf{b}_h)\right)\right)

    The residual form keeps the input reachable when a gate closes, so the module can learn to
    pass a modality through unchanged; each modality has its own MSDE (no weight sharing).

    Args:
        channels (int): Input and output width :math:`d`.
        reduction (int, optional): Bottleneck factor of the recalibration,
            :math:`\mathbf{W}_1 \in \mathbb{R}^{\lceil d / r \rceil \times d}`.
            (default: :obj:`4`)
        dropout (float, optional): Dropout of the enhancement before the residual sum.
            (default: :obj:`0.0`)

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, d)`, batch vector
          :math:`(|\mathcal{V}|)` *(optional)*
        - **output:** node features :math:`(|\mathcal{V}|, d)`
    """
    def __init__(self, channels: int, reduction: int = 4, dropout: float = 0.0):
        super().__init__()
        if channels < 1:
            raise ValueError(f"'channels' must be positive, got {channels}")
        if reduction < 1:
            raise ValueError(f"'reduction' must be positive, got {reduction}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"'dropout' must lie in [0, 1), got {dropout}")
        self.channels = channels
        self.reduction = reduction
        self.dropout = dropout
        bottleneck = -(-channels // reduction)
        self.lin_gate = torch.nn.Linear(2 * channels, channels)
        self.lin_squeeze = torch.nn.Linear(channels, bottleneck)
        self.lin_excite = torch.nn.Linear(bottleneck, channels)
        self.lin_value = torch.nn.Linear(channels, channels)
        self.norm = torch.nn.LayerNorm(channels)
        self.reset_parameters()

    def reset_parameters(self):
        for module in (self.lin_gate, self.lin_squeeze, self.lin_excite, self.lin_value,
                       self.norm):
            module.reset_parameters()

    def context(self, x: Tensor, batch: Optional[Tensor] = None,
                num_graphs: Optional[int] = None) -> Tensor:
        r"""The dialogue context :math:`\mathbf{c}_b`, shape :obj:`[B, d]`."""
        if batch is None:
            return x.mean(dim=0, keepdim=True)
        if num_graphs is None:
            num_graphs = int(batch.max()) + 1 if batch.numel() > 0 else 1
        return scatter(x, batch, dim=0, dim_size=num_graphs, reduce='mean')

    def forward(self, x: Tensor, batch: Optional[Tensor] = None,
                num_graphs: Optional[int] = None) -> Tensor:
        r"""Enhances :obj:`x`.

        Args:
            x (torch.Tensor): Utterance features :obj:`[N, d]`.
            batch (torch.Tensor, optional): Dialogue index of every utterance :obj:`[N]`;
                :obj:`None` = one dialogue. (default: :obj:`None`)
            num_graphs (int, optional): Number of dialogues; passing it avoids a host
                synchronisation. (default: :obj:`None`)
        """
        if x.dim() != 2 or x.size(-1) != self.channels:
            raise ValueError(f"'x' must have shape [N, {self.channels}], got {tuple(x.shape)}")
        if batch is not None and batch.shape != (x.size(0), ):
            raise ValueError(f"'batch' must have shape [{x.size(0)}], got {tuple(batch.shape)}")
        context = self.context(x, batch, num_graphs)  # [B, d]
        per_node = context.expand(x.size(0), -1) if batch is None else context[batch]
        gate = torch.sigmoid(self.lin_gate(torch.cat([x, per_node], dim=-1)))
        scale = torch.sigmoid(self.lin_excite(F.relu(self.lin_squeeze(context))))
        scale = scale.expand(x.size(0), -1) if batch is None else scale[batch]
        h = scale * gate * F.gelu(self.lin_value(x))
        return self.norm(x + F.dropout(h, self.dropout, self.training))

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.channels}, reduction={self.reduction}, '
                f'dropout={self.dropout})')
