r"""The incremental forward of a causal :class:`~dsgdn_pyg.models.AMBDSGDN`
(:meth:`AMBDSGDN.forward_incremental <dsgdn_pyg.models.AMBDSGDN.forward_incremental>`): what
one dialogue keeps between utterances (:class:`IncrementalCache`), and how each layer runs on
the new utterance with it -- the graph analogue of a Transformer's key/value cache.

* The graph blocks (:class:`~dsgdn_pyg.nn.DiffRGCN`) of window :math:`w` run on the new
  utterance alone. Each :class:`~dsgdn_pyg.nn.DiffGATConv` projects only the new utterance
  (its projection and source and target scores in one matrix product, as
  :meth:`DiffGATConv.project <dsgdn_pyg.nn.DiffGATConv.project>`) and attends to it and to the
  cached projected rows of the last :math:`w` utterances, over the local edges of the new
  utterance (self-loop, intra- or inter-speaker past), with the layer's own single-target
  arithmetic (:func:`~dsgdn_pyg.nn.diff_gat_incremental.attend_stacked`, which
  :meth:`DiffGATConv.attend <dsgdn_pyg.nn.DiffGATConv.attend>` is: a dense softmax over
  :math:`\le w + 1` rows). The modalities' blocks have equal shapes and see the same edges, so
  a step runs all of them at once, their weights stacked (:class:`StackedBlock`: the
  arithmetic of :meth:`DiffRGCN.combine <dsgdn_pyg.nn.DiffRGCN.combine>` in evaluation mode,
  tested against the full pass), half the operations of one modality after the other. In a
  causal graph an utterance's layer input depends only on its past, so the cached rows are
  exactly what a full pass computes for them. The layers' terms that do not depend on the
  input (folded attention vectors, :math:`\lambda`, relation scores) are computed and stacked
  once, and again only when the parameters change. Other attention layers (the GAT ablation)
  run in :meth:`DiffRGCN.combine` per modality, called with a bipartite ``(sources, target)``
  input of their cached inputs through a forward pre-hook (registered for one step).
* The audio/visual encoder runs :meth:`UtteranceEncoder.step
  <dsgdn_pyg.nn.UtteranceEncoder.step>` on the keys and values of the last
  :obj:`context_window` utterances. With :obj:`context_window=None` the causal encoder attends
  to the whole past, so its cache grows with the dialogue (two :math:`d_h` rows per utterance
  and modality); every other cache is bounded by :math:`w`.
"""
from collections import deque
from contextlib import contextmanager
from typing import Deque, Dict, Iterator, List, Optional, Tuple, Union

import torch
from torch import Tensor
from torch_geometric.nn.conv import MessagePassing

from ..data.graph import INTER_PAST, INTRA_PAST, SELF_LOOP
from ..nn.diff_gat_incremental import attend_stacked
from ..nn.diff_rgcn_stacked import StackedBlock, StackedConv, combine_stacked, stack_blocks

#: The relations of the new utterance's edges in each subgraph of a causal model.
SUBGRAPHS = {'inter': (SELF_LOOP, INTER_PAST), 'intra': (SELF_LOOP, INTRA_PAST)}


class IncrementalCache:
    r"""What one dialogue keeps between calls of :meth:`AMBDSGDN.forward_incremental`: the
    states of the last utterances each layer can still attend to.

    Args:
        window (int): The dialogue graph window :math:`w` the model was trained with.
        context_window (int, optional): The model's encoder window (:obj:`None`: all).
    """
    def __init__(self, window: int, context_window: Optional[int]):
        if int(window) != window or window < 0:
            raise ValueError(f"'window' must be a non-negative integer, got {window!r}")
        self.window = int(window)
        self.context_window = context_window
        self.position = 0  # utterances seen
        self.speakers: Deque[int] = deque(maxlen=self.window)  # of the last w utterances
        # Per graph attention layer (by module name), the last w utterances: for a DiffGATConv
        # its DiffGATConv.project() rows, [w, D], utterance i in slot i % w (the slot speakers
        # in slot_speakers); for another layer (the GAT ablation) its inputs, oldest first.
        self.layers: Dict[str, Union[Deque[Tensor], Tensor]] = {}
        self.slot_speakers: List[Optional[int]] = [None] * self.window
        # The buffers that hold those rows of a DiffGATConv, plus a row for the new utterance.
        self.sources: Dict[str, Tensor] = {}
        # Keys and values of each encoder (by modality), last K utterances (all if K is None).
        self.encoder: Dict[str, Deque[Tuple[Tensor, Tensor]]] = {}

    def layer_cache(self, name: str) -> Deque[Tensor]:
        if name not in self.layers:
            self.layers[name] = deque(maxlen=self.window)
        return self.layers[name]

    def encoder_cache(self, m: str) -> Deque[Tuple[Tensor, Tensor]]:
        if m not in self.encoder:
            self.encoder[m] = deque(maxlen=self.context_window)
        return self.encoder[m]


class IncrementalLayers:
    r"""The graph attention layers of a model, by their name in it, and for DiffGATConv
    blocks their stacked form (:class:`StackedBlock`, recomputed when the parameters
    change)."""
    def __init__(self, model: torch.nn.Module):
        self.layers: Dict[str, Dict[str, List[Tuple[str, MessagePassing]]]] = {}
        # DiffGATConv blocks of every modality, per subgraph: they run stacked, on cached
        # projected rows, with their input-independent terms computed once (refresh).
        self.blocks: Dict[str, List[torch.nn.Module]] = {}
        self.stacked: Dict[str, StackedBlock] = {}
        self._terms_of: Tuple[Tuple[int, int], ...] = ()
        self._parameter_tables: List[Dict[str, Tensor]] = []
        if model.inter is None:
            return
        for sub in SUBGRAPHS:
            blocks = getattr(model, sub)
            self.layers[sub] = {
                m: [(f'{sub}.{m}.{name}', module) for name, module in blocks[m].named_modules()
                    if isinstance(module, MessagePassing)]
                for m in model.modalities}
        if model.config()['conv'] == 'diffgat':
            # The modalities' blocks of a subgraph have equal shapes and see the same edges
            # of the new utterance: a step runs them all at once (StackedBlock), about half
            # the operations of one modality after the other.
            self.blocks = {sub: [getattr(model, sub)[m] for m in model.modalities]
                           for sub in SUBGRAPHS}
            self.refresh()

    def _parameter_versions(self) -> Tuple[Tuple[int, int], ...]:
        # Which tensors the layers hold and how often they were changed in place: new weights
        # (load_state_dict, an optimiser step) invalidate the terms. Read from the modules'
        # own parameter tables, as Module.parameters() costs ~0.1 ms per step here.
        if not self._parameter_tables:  # the whole blocks': their linear and norm too
            self._parameter_tables = [module._parameters for blocks in self.blocks.values()
                                      for block in blocks for module in block.modules()]
        return tuple((id(p), p._version) for table in self._parameter_tables
                     for p in table.values() if p is not None)

    def refresh(self) -> None:
        if not self.blocks:
            return
        versions = self._parameter_versions()
        if versions == self._terms_of:
            return
        with torch.no_grad():  # every subgraph's blocks in one stack
            self.stacked = dict(zip(self.blocks, stack_blocks(
                [b for blocks in self.blocks.values() for b in blocks], len(self.blocks))))
        self._terms_of = versions


class IncrementalStep:
    r"""One utterance's pass through the layers with a dialogue's :class:`IncrementalCache`;
    the new states are kept aside and enter the cache only at :meth:`commit`, so that a
    failed step leaves the dialogue as it was."""
    def __init__(self, layers: IncrementalLayers, cache: IncrementalCache, speaker: int,
                 device: torch.device, graph: bool):
        self.layers, self.cache, self.speaker = layers, cache, speaker
        self.pending_layers: Dict[str, Tensor] = {}
        self.pending_encoder: Dict[str, Tuple[Tensor, Tensor]] = {}
        self.spk = torch.tensor([speaker], device=device)
        self.position = torch.tensor([cache.position], device=device)
        if not graph:
            self.edges = {}
        elif layers.blocks:
            self.edges = _slot_edges(cache, speaker, device)
        else:
            self.edges = {sub: _local_edges(cache.speakers, speaker, relations, device)
                          for sub, relations in SUBGRAPHS.items()}

    def encode(self, m: str, encoder: torch.nn.Module, x: Tensor) -> Tensor:
        r"""The audio/visual encoder of modality :obj:`m` on the new utterance."""
        cache = self.cache.encoder_cache(m)
        past = None
        if cache:
            past = (torch.cat([k for k, _ in cache]), torch.cat([v for _, v in cache]))
        x, self.pending_encoder[m] = encoder.step(x, self.spk, self.position, past)
        return x

    def graph(self, sub: str, m: str, block: torch.nn.Module, x: Tensor) -> Tensor:
        r"""The graph block :obj:`sub` (``'inter'`` or ``'intra'``) of modality :obj:`m`,
        whose attention layers are not DiffGATConv (the GAT ablation): each is called on its
        cached inputs (:meth:`graphs` runs DiffGATConv blocks)."""
        edge_index, edge_type = self.edges[sub]
        with _bipartite(self.layers.layers[sub][m], self.cache, self.pending_layers):
            return block(x, edge_index, edge_type)

    def graphs(self, xs: Dict[str, Tensor]) -> Dict[str, Tensor]:
        r"""Both graph blocks (inter, then intra) of every modality on the new utterance, all
        modalities at once (:class:`StackedBlock`): what :meth:`graph` computes for each."""
        h = torch.stack(list(xs.values()))  # [M, 1, d]
        for sub in SUBGRAPHS:
            h = self._stacked_block(sub, h)
        return dict(zip(xs, h.unbind(0)))

    def _stacked_block(self, sub: str, x: Tensor) -> Tensor:
        # DiffRGCN.combine in evaluation mode, every modality at once (its dropout is off).
        block = self.layers.stacked[sub]
        names = ('att', 'out_att')
        return combine_stacked(block, x, lambda i, h: self._stacked_conv(
            f'{sub}.{names[i]}', block.convs[i], h, sub))

    def _stacked_conv(self, name: str, conv: StackedConv, x: Tensor, sub: str) -> Tensor:
        # The layer at one place of every modality's block: the new rows join the cached rows
        # of the last w utterances as sources ([M, w + 1, D], the new one last).
        cache, window = self.cache, self.cache.window
        row = torch.bmm(x, conv.terms.weight)  # [M, 1, D]: projection and both scores
        self.pending_layers[name] = row
        sources = cache.sources.get(name)
        if sources is None:
            sources = cache.sources[name] = row.new_zeros(row.size(0), window + 1, row.size(2))
            cache.layers[name] = sources[:, :window]
        sources[:, window] = row[:, 0]
        mask, edge_type = self.edges[sub]
        return attend_stacked(conv.terms, sources, row, conv.heads, conv.channels,
                              conv.negative_slope, conv.concat, mask, edge_type, conv.bias)

    def commit(self) -> None:
        r"""The new utterance's states enter the cache (in inference mode: they are
        inference tensors)."""
        cache = self.cache
        slot = cache.position % cache.window if cache.window else 0
        with torch.inference_mode():
            for name, row in self.pending_layers.items():
                if not self.layers.blocks:
                    cache.layer_cache(name).append(row)
                elif cache.window:  # the stacked rows [M, 1, D] of the modalities
                    cache.layers[name][:, slot] = row[:, 0]
        if cache.window:
            cache.slot_speakers[slot] = self.speaker
        for m, kv in self.pending_encoder.items():
            cache.encoder_cache(m).append(kv)
        cache.speakers.append(self.speaker)
        cache.position += 1


def _local_edges(past_speakers: Deque[int], speaker: int, relations: Tuple[int, ...],
                 device: torch.device) -> Tuple[Tensor, Tensor]:
    r"""The edges of the new utterance in a subgraph: sources are the last :math:`w`
    utterances (oldest first) and the new one (last), the target is the new one (index 0)."""
    types = [INTRA_PAST if s == speaker else INTER_PAST for s in past_speakers] + [SELF_LOOP]
    src = [j for j, t in enumerate(types) if t in relations]
    edge_index = torch.tensor([src, [0] * len(src)], dtype=torch.long, device=device)
    edge_type = torch.tensor([types[j] for j in src], dtype=torch.long, device=device)
    return edge_index, edge_type


def _slot_edges(cache: IncrementalCache, speaker: int,
                device: torch.device) -> Dict[str, Tuple[Tensor, Tensor]]:
    r"""The edges of the new utterance in each subgraph, for :meth:`DiffGATConv.attend`: a
    source mask and the relation of every source, the sources being the cached slots of the
    last :math:`w` utterances (empty ones masked) and the new utterance (last)."""
    types = [0 if s is None else INTRA_PAST if s == speaker else INTER_PAST
             for s in cache.slot_speakers] + [SELF_LOOP]
    edge_type = torch.tensor(types, dtype=torch.long, device=device)
    return {sub: (torch.tensor([t in relations for t in types], device=device), edge_type)
            for sub, relations in SUBGRAPHS.items()}


@contextmanager
def _bipartite(layers: List[Tuple[str, MessagePassing]], cache: IncrementalCache,
               pending: Dict[str, Tensor]) -> Iterator[None]:
    r"""While active, each graph attention layer of a block, called on the new utterance
    alone, attends from its cached inputs of the last utterances plus the new input."""
    def hook(name):
        def prepend_past(module, args):
            x = args[0]
            if not isinstance(x, Tensor) or x.size(0) != 1:
                raise RuntimeError(f"streaming expects layer {name} to be called on the new "
                                   f"utterance alone")
            pending[name] = x
            past = cache.layers.get(name)
            sources = torch.cat([*past, x]) if past else x
            return ((sources, x), ) + tuple(args[1:])
        return prepend_past

    handles = [module.register_forward_pre_hook(hook(name)) for name, module in layers]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


__all__ = ['IncrementalCache', 'IncrementalLayers', 'IncrementalStep', 'StackedBlock',
           'SUBGRAPHS']
