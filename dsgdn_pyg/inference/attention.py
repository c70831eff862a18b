r"""The attention of the last graph layer of AMB-DSGDN, recorded during an ordinary forward
pass (``predict_dialogues(..., attention=True)``, the pictures of :mod:`dsgdn_pyg.plot`)."""
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence

import torch


@dataclass
class AttentionLink:
    r"""One edge of the last graph layer: utterance :obj:`source` informs :obj:`target` with
    the signed differential attention :obj:`alpha` (:math:`\alpha^+ - \lambda\alpha^-`);
    :obj:`relation` is the edge type's name (e.g. ``'inter-speaker past'``)."""
    source: int
    target: int
    alpha: float
    relation: str


def last_graph_convs(model: torch.nn.Module) -> Dict[str, torch.nn.Module]:
    r"""The output attention layer of AMB-DSGDN's inter- and intra-speaker blocks, of the
    text modality if the model has it (the strongest one), else its first."""
    from torch_geometric.nn import MessagePassing

    blocks = {'inter': getattr(model, 'inter', None), 'intra': getattr(model, 'intra', None)}
    if any(b is None for b in blocks.values()) or not getattr(model, 'modalities', None):
        return {}
    m = 't' if 't' in model.modalities else model.modalities[0]
    # The block's last message-passing layer, found without relying on attribute names.
    return {name: [mod for mod in block[m].modules() if isinstance(mod, MessagePassing)][-1]
            for name, block in blocks.items()}


class AttentionRecorder:
    r"""Records the inputs of the given attention layers during the model's normal forward
    pass (forward pre-hooks), then calls each layer again on them with
    ``return_attention_weights=True``: nothing depends on the layer's internals."""
    def __init__(self, convs: Mapping[str, torch.nn.Module]):
        self.convs = dict(convs)
        self.calls: Dict[str, List[tuple]] = {name: [] for name in self.convs}
        self.handles = [conv.register_forward_pre_hook(self._hook(name), with_kwargs=True)
                        for name, conv in self.convs.items()]

    def _hook(self, name: str):
        def hook(module, args, kwargs):
            self.calls[name].append((tuple(args), dict(kwargs)))
        return hook

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()

    @torch.no_grad()
    def weights(self, batch_index: int):
        r"""``{name: (edge_index [2, E], alpha [E], edge_type [E] or None)}`` of the
        :obj:`batch_index`-th forward pass (heads averaged)."""
        out = {}
        for name, conv in self.convs.items():
            args, kwargs = self.calls[name][batch_index]
            kwargs = dict(kwargs, return_attention_weights=True)
            _, (edge_index, alpha) = conv(*args, **kwargs)
            edge_type = kwargs.get('edge_type', args[2] if len(args) > 2 else None)
            edge_type = edge_type if torch.is_tensor(edge_type) else None
            out[name] = (edge_index.cpu(), alpha.reshape(alpha.size(0), -1).mean(-1).cpu(),
                         edge_type.cpu() if edge_type is not None else None)
        return out


def _links(edge_index: torch.Tensor, alpha: torch.Tensor, edge_type: Optional[torch.Tensor],
           start: int, stop: int) -> List[AttentionLink]:
    from dsgdn_pyg.data.graph import RELATION_NAMES

    src, dst = edge_index
    keep = ((dst >= start) & (dst < stop)).nonzero().flatten()
    # The kept edges' values as Python numbers in one conversion each, not one per element.
    sources, targets = src[keep].tolist(), dst[keep].tolist()
    weights = alpha[keep].tolist()
    types = edge_type[keep].tolist() if edge_type is not None else [None] * len(sources)
    return [AttentionLink(s - start, t - start, float(a),
                          RELATION_NAMES.get(r, str(r)) if r is not None else '')
            for s, t, a, r in zip(sources, targets, weights, types)]


def attention_links(recorder: AttentionRecorder, batches: Sequence[Any]
                     ) -> Optional[List[List[AttentionLink]]]:
    if not recorder.convs:
        return None
    out = []
    for b, batch in enumerate(batches):
        weights = recorder.weights(b)
        for g in range(batch.num_graphs):
            start, stop = int(batch.ptr[g]), int(batch.ptr[g + 1])
            links = []
            for edge_index, alpha, edge_type in weights.values():
                links += _links(edge_index, alpha, edge_type, start, stop)
            out.append(links)
    return out


__all__ = ['AttentionLink', 'AttentionRecorder', 'attention_links', 'last_graph_convs']
