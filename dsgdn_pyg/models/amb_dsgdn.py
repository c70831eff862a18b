from typing import Any, Dict, List, NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.checkpoint import checkpoint
from torch_geometric.data import Batch
from torch_geometric.utils.sparse import index2ptr

from ..data.corpus import MODALITIES, feature_key
from ..data.graph import (NUM_RELATIONS, PAST_RELATIONS, DialogueGraph, banded_csr,
                          relation_subgraph)
from ..nn.adaptive_modality_dropout import AdaptiveModalityDropout
from ..nn.diff_gat_conv import target_sorted_edge_index
from ..nn.diff_rgcn import DiffRGCN
from ..nn.diff_rgcn_stacked import stack_blocks, stackable, stacked_graph_blocks
# fast_dropout: the dropout fast path of this package (a cheaper random mask on the CPU).
from ..nn.functional import fast_dropout, stacked_linear
from ..nn.utterance_encoder import UtteranceEncoder
from ..nn.utterance_encoder_stacked import dialogue_positions, encode_stacked, stack_encoders
from .incremental import IncrementalCache, IncrementalLayers, IncrementalStep


class ModelOutput(NamedTuple):
    fused: Tensor  # [N, C] fused logits
    logits: Dict[str, Tensor]  # unimodal logits [N, C] per modality
    keep: Tensor  # [N] bool: False where the utterance's dialogue lost every modality


def check_common_args(feature_dims: Dict[str, int], conv: str) -> None:
    r"""The argument checks every model of this package shares."""
    unknown = [m for m in feature_dims if m not in MODALITIES]
    if not feature_dims or unknown:
        raise ValueError(f"'feature_dims' must map a non-empty subset of {MODALITIES} to "
                         f"widths, got {feature_dims!r}")
    if conv not in ('diffgat', 'gat'):
        raise ValueError(f"'conv' must be 'diffgat' or 'gat', got {conv!r}")


def reset_submodules(model: torch.nn.Module) -> None:
    r"""Resets the parameters of every submodule of :obj:`model` that has
    :meth:`reset_parameters`."""
    for module in model.modules():
        if module is not model and hasattr(module, 'reset_parameters'):
            module.reset_parameters()


def model_repr(model: torch.nn.Module, **shown: Any) -> str:
    r"""``Name(modalities=..., hidden=..., classes=..., NAME=VALUE, ...)``: the repr every
    model of this package shares, from its :meth:`config`, then the settings :obj:`shown`."""
    config = model.config()
    settings = ''.join(f', {name}={value!r}' for name, value in shown.items())
    return (f"{type(model).__name__}(modalities={''.join(model.modalities)}, "
            f"hidden={config['hidden_channels']}, classes={config['num_classes']}{settings})")


class AMBDSGDN(torch.nn.Module):
    r"""AMB-DSGDN, the adaptive modality-balanced dynamic semantic graph differential network
    of `"AMB-DSGDN: Adaptive Modality-Balanced Dynamic Semantic Graph Differential Network for
    Multimodal Emotion Recognition" <https://arxiv.org/abs/2603.10043>`_, on PyG batches of
    dialogues.

    Per modality :math:`m`: a linear projection to :obj:`hidden_channels`; for audio and visual
    a position and speaker embedding and a one-layer Transformer
    (:class:`~dsgdn_pyg.nn.utterance_encoder.UtteranceEncoder`); a :class:`~dsgdn_pyg.nn.DiffRGCN`
    block on the inter-speaker subgraph, then one on the intra-speaker subgraph; for audio and
    visual a sigmoid gate :math:`\mathbf{x} \leftarrow \sigma(\mathbf{W}\mathbf{x}) \odot
    \mathbf{x}`; adaptive modality dropout (training only); a classifier
    (ReLU, dropout, linear) per modality; the logits are fused by a (weighted) sum.

    Args:
        feature_dims (Dict[str, int]): Input width per modality (keys among :obj:`'t'`,
            :obj:`'a'`, :obj:`'v'`); the model uses exactly these modalities.
        num_classes (int): Number of emotion classes.
        num_speakers (int): Number of speaker ids (per dialogue).
        hidden_channels (int, optional): Hidden width :math:`d_h`. (default: :obj:`512`)
        heads (int, optional): Parallel attention heads per graph block. (default: :obj:`2`)
        dropout (float, optional): Dropout. (default: :obj:`0.5`)
        graph (bool, optional): If :obj:`False`, no graph blocks (the paper's "without
            relational subgraphs" ablation). (default: :obj:`True`)
        conv (str, optional): :obj:`"diffgat"` or :obj:`"gat"` (plain GATConv ablation).
            (default: :obj:`"diffgat"`)
        modality_dropout (bool, optional): Use adaptive modality dropout. (default: :obj:`True`)
        q_base (float, optional): Base drop probability. (default: :obj:`0.3`)
        md_lambda (float, optional): Scaling :math:`\lambda` of Alg. 2. (default: :obj:`0.9`)
        p_exe (float, optional): Probability of applying the dropout to a batch.
            (default: :obj:`0.5`)
        warmup_epochs (int, optional): Epochs before modality dropout starts.
            (default: :obj:`0`)
        fusion_weights (Dict[str, float], optional): Fixed weights of the unimodal logits in the
            fusion (the paper's "extreme imbalance" study); :obj:`None` sums them.
            (default: :obj:`None`)
        encoder_heads (int, optional): Heads of the audio/visual Transformer.
            (default: :obj:`8`)
        context_window (int, optional): If set, the audio/visual Transformer attends only
            within :math:`\pm K` utterances (sparse attention on the packed batch), so that
            the whole model is linear in dialogue length; :obj:`None` attends to the whole
            dialogue, as published. (default: :obj:`None`)
        checkpoint_activations (bool, optional): If :obj:`True`, the encoder and graph blocks
            keep only their inputs during training and recompute their insides in the backward
            pass (:func:`torch.utils.checkpoint.checkpoint`, dropout masks reproduced): less
            memory for more time (measured on long dialogues: docs/results.md, "Speed, memory
            and long dialogues"). (default: :obj:`False`)
        causal (bool, optional): If :obj:`True`, nothing reads the future: the graph blocks
            keep only the self-loops and the past relations (ids 1, 2, 5; edges of other
            relations in the input are ignored) and the audio/visual Transformer attends to
            the utterance and its past (within :obj:`context_window` if set). The output of an
            utterance then depends only on the dialogue up to it, what
            :meth:`forward_incremental` computes one utterance at a time (and
            :class:`~dsgdn_pyg.inference.streaming.StreamingRecognizer` with it).
            (default: :obj:`False`)
        input_dropout (float, optional): Dropout of the input features of every modality,
            before their projection (training only). Features from an encoder fine-tuned on
            the training split fit that split far better than unseen dialogues, so without it
            the model learns to trust them more than it can at test time (measured on MELD:
            benchmarks/README.md, "transcript_preset"). (default: :obj:`0.0`)
    """
    #: Whether the modalities run at once, stacked: the audio and visual encoders
    #: (:mod:`dsgdn_pyg.nn.utterance_encoder_stacked`), the graph blocks
    #: (:mod:`dsgdn_pyg.nn.diff_rgcn_stacked`), the gates and the classifiers, as batched
    #: operations instead of one modality after the other: the same arithmetic (tested to
    #: rounding) in about a third of the operations, with other dropout masks. :obj:`None`
    #: stacks on CUDA, where a step is bound by its kernel launches; on a CPU the modalities
    #: one by one measured faster (benchmarks/README.md) and keep a seed's results as they
    #: were.
    stack_modalities: Optional[bool] = None

    def __init__(
        self,
        feature_dims: Dict[str, int],
        num_classes: int,
        num_speakers: int,
        hidden_channels: int = 512,
        heads: int = 2,
        dropout: float = 0.5,
        graph: bool = True,
        conv: str = 'diffgat',
        modality_dropout: bool = True,
        q_base: float = 0.3,
        md_lambda: float = 0.9,
        p_exe: float = 0.5,
        warmup_epochs: int = 0,
        fusion_weights: Optional[Dict[str, float]] = None,
        encoder_heads: int = 8,
        context_window: Optional[int] = None,
        checkpoint_activations: bool = False,
        causal: bool = False,
        input_dropout: float = 0.0,
    ):
        super().__init__()
        check_common_args(feature_dims, conv)
        if not 0 <= input_dropout < 1:
            raise ValueError(f"'input_dropout' must be in [0, 1), got {input_dropout!r}")
        if fusion_weights is not None and set(fusion_weights) != set(feature_dims):
            raise ValueError(f"'fusion_weights' must have one weight per modality "
                             f"{sorted(feature_dims)}, got {sorted(fusion_weights)}")
        if num_classes < 2 or num_speakers < 1 or hidden_channels < 2:
            raise ValueError(f"need num_classes >= 2, num_speakers >= 1, hidden_channels >= 2, "
                             f"got {num_classes}, {num_speakers}, {hidden_channels}")
        self._config = dict(
            feature_dims=dict(feature_dims), num_classes=num_classes, num_speakers=num_speakers,
            hidden_channels=hidden_channels, heads=heads, dropout=dropout, graph=graph,
            conv=conv, modality_dropout=modality_dropout, q_base=q_base, md_lambda=md_lambda,
            p_exe=p_exe, warmup_epochs=warmup_epochs,
            fusion_weights=dict(fusion_weights) if fusion_weights is not None else None,
            encoder_heads=encoder_heads, context_window=context_window,
            checkpoint_activations=checkpoint_activations, causal=bool(causal),
            input_dropout=float(input_dropout))
        self.causal = bool(causal)
        self.input_dropout = float(input_dropout)
        self.modalities: List[str] = [m for m in MODALITIES if m in feature_dims]
        self.num_classes = num_classes
        self.dropout = dropout
        self.fusion_weights = fusion_weights

        def per_modality(make, which=None):
            return torch.nn.ModuleDict({m: make(m) for m in self.modalities
                                        if which is None or m in which})

        self.proj = per_modality(lambda m: torch.nn.Linear(feature_dims[m], hidden_channels))
        self.encoder = per_modality(
            lambda m: UtteranceEncoder(hidden_channels, num_speakers, encoder_heads, dropout,
                                       context_window, causal=self.causal),
            which=('a', 'v'))
        self.context_window = context_window
        self.checkpoint_activations = checkpoint_activations
        if graph:
            def block(_):
                return DiffRGCN(hidden_channels, heads, dropout, NUM_RELATIONS, conv)
            self.inter = per_modality(block)
            self.intra = per_modality(block)
        else:
            self.inter = self.intra = None
        self.gate = per_modality(lambda m: torch.nn.Linear(hidden_channels, hidden_channels),
                                 which=('a', 'v'))
        self.classifier = per_modality(lambda m: torch.nn.Linear(hidden_channels, num_classes))
        self.modality_dropout = (AdaptiveModalityDropout(q_base, md_lambda, p_exe, warmup_epochs)
                                 if modality_dropout else None)

    def config(self) -> dict:
        """The keyword arguments that rebuild this architecture."""
        return {k: (dict(v) if isinstance(v, dict) else v) for k, v in self._config.items()}

    def set_epoch(self, epoch: int) -> None:
        """Tells the modality dropout the current (0-based) training epoch."""
        if self.modality_dropout is not None:
            self.modality_dropout.set_epoch(epoch)

    def reset_parameters(self):
        reset_submodules(self)

    def gated(self, m: str, x: Tensor) -> Tensor:
        r"""The sigmoid gate of audio and visual, :math:`\sigma(\mathbf{W}\mathbf{x}) \odot
        \mathbf{x}`; text passes unchanged."""
        return torch.sigmoid(self.gate[m](x)) * x if m in self.gate else x

    def classify(self, m: str, x: Tensor) -> Tensor:
        return self.classifier[m](fast_dropout(F.relu(x), self.dropout, self.training))

    def _gated_stacked(self, xs: Dict[str, Tensor]) -> Dict[str, Tensor]:
        # gated() of every gated modality at once.
        gated = [m for m in xs if m in self.gate]
        if not gated:
            return xs
        x = torch.stack([xs[m] for m in gated])
        gate = stacked_linear(x, [self.gate[m] for m in gated])
        return {**xs, **dict(zip(gated, (torch.sigmoid(gate) * x).unbind(0)))}

    def _classify_stacked(self, xs: Dict[str, Tensor]) -> Tensor:
        # classify() of every modality at once: [M, N, C].
        x = fast_dropout(F.relu(torch.stack(list(xs.values()))), self.dropout, self.training)
        return stacked_linear(x, [self.classifier[m] for m in xs])

    def _stacks(self, device: torch.device) -> bool:
        if self.stack_modalities is not None:
            return bool(self.stack_modalities)
        return device.type == 'cuda'

    def forward(self, data: Batch) -> ModelOutput:
        batch = data.batch if getattr(data, 'batch', None) is not None else \
            data.speaker.new_zeros(data.num_nodes)
        num_graphs = int(data.num_graphs) if hasattr(data, 'num_graphs') else 1
        window_csr = position = None
        if len(self.encoder) > 0:
            position = dialogue_positions(batch, num_graphs)  # once for both encoders
            if self.context_window is not None:
                window_csr = self._context_csr(data, batch)
        # The longest dialogue, which the whole-dialogue encoder pads to: the collate function
        # (dsgdn_pyg.train.data.collate) writes it on the host; without it the encoder reads it
        # from the device.
        max_num_nodes = getattr(data, 'max_num_nodes', None)
        if self.inter is not None:
            num_nodes = batch.numel()
            inter = self._graph_input(_subgraph(data, 'inter', self.causal), num_nodes)
            intra = self._graph_input(_subgraph(data, 'intra', self.causal), num_nodes)

        stack = self._stacks(batch.device)
        xs: Dict[str, Tensor] = {}
        for m in self.modalities:
            x = getattr(data, feature_key(m), None)
            if x is None:
                raise ValueError(f"the batch has no '{feature_key(m)}' features but the model "
                                 f"was built for modalities {self.modalities}")
            x = self.proj[m](fast_dropout(x, self.input_dropout, self.training))
            if not stack:  # one modality after the other, as published
                if m in self.encoder:
                    x = self._run(self.encoder[m], x, data.speaker, batch, num_graphs,
                                  None, window_csr, position, max_num_nodes)
                if self.inter is not None:
                    x = self._run(self.inter[m], x, *inter)
                    x = self._run(self.intra[m], x, *intra)
                x = self.gated(m, x)
            xs[m] = x
        if stack:
            encoded = [m for m in xs if m in self.encoder]
            if encoded:
                h = self._run(encode_stacked,
                              stack_encoders([self.encoder[m] for m in encoded]),
                              torch.stack([xs[m] for m in encoded]), data.speaker, batch,
                              num_graphs, window_csr, position, max_num_nodes, self.training)
                xs.update(zip(encoded, h.unbind(0)))
            if self.inter is not None:
                xs = self._graphs_stacked(xs, inter, intra)
            xs = self._gated_stacked(xs)
        return self.fuse(xs, data.y, batch, num_graphs)

    def _graphs_stacked(self, xs: Dict[str, Tensor], inter: tuple,
                        intra: tuple) -> Dict[str, Tensor]:
        # The inter-, then the intra-speaker block of every modality, all modalities at once
        # (they see the same graph). The GAT ablation, and blocks an explainer or a recorder
        # observes (their hooks expect each layer to be called), run one by one.
        blocks = [self.inter[m] for m in xs] + [self.intra[m] for m in xs]
        if not stackable(blocks):
            return {m: self._run(self.intra[m], self._run(self.inter[m], x, *inter), *intra)
                    for m, x in xs.items()}
        first, second = stack_blocks(blocks, groups=2)
        h = torch.stack(list(xs.values()))  # [M, N, d]
        h = self._run(stacked_graph_blocks, first, h, *inter, self.training)
        h = self._run(stacked_graph_blocks, second, h, *intra, self.training)
        return dict(zip(xs, h.unbind(0)))

    def incremental_cache(self, window: int) -> IncrementalCache:
        r"""An empty :class:`~dsgdn_pyg.models.incremental.IncrementalCache` for a new
        dialogue of :meth:`forward_incremental`, for the graph window :obj:`window` the model
        was trained with."""
        return IncrementalCache(window, self.context_window)

    def forward_incremental(self, x: Dict[str, Tensor], speaker: int,
                            cache: IncrementalCache) -> Tensor:
        r"""The fused logits :math:`(1, C)` of the next utterance of a dialogue: what
        :meth:`forward` gives for it on the dialogue so far (causal model only; tested to
        :math:`10^{-5}`), in time bounded by the graph window and :obj:`context_window`, not
        by the dialogue's length (:mod:`dsgdn_pyg.models.incremental`). In evaluation mode.

        Args:
            x (Dict[str, torch.Tensor]): The utterance's features per modality,
                :math:`(1, F_m)` each.
            speaker (int): Its speaker id within the dialogue.
            cache (IncrementalCache): The dialogue's cache (:meth:`incremental_cache`),
                updated only when the step succeeds.
        """
        if not self.causal:
            raise ValueError("forward_incremental() needs a causal model (causal=True): this "
                             "one reads future utterances")
        if self.training:
            raise RuntimeError("forward_incremental() runs in evaluation mode; call "
                               "model.eval() (dropout would change every output)")
        layers = self.__dict__.get('_incremental_layers')
        if layers is None:
            layers = self.__dict__['_incremental_layers'] = IncrementalLayers(self)
        layers.refresh()
        # Recognition only: no autograd graph is kept between steps, and inference mode spares
        # the bookkeeping of autograd on each of the few hundred small operations of a step.
        with torch.inference_mode():
            param = next(self.parameters())
            device, dtype = param.device, param.dtype
            step = IncrementalStep(layers, cache, speaker, device, self.inter is not None)
            xs: Dict[str, Tensor] = {}
            for m in self.modalities:
                h = self.proj[m](x[m].to(device, dtype))
                if m in self.encoder:
                    h = step.encode(m, self.encoder[m], h)
                xs[m] = h
            if self.inter is not None and layers.stacked:  # every modality's blocks at once
                xs = step.graphs(xs)
            elif self.inter is not None:  # inter, then intra, as in forward
                xs = {m: step.graph('intra', m, self.intra[m],
                                    step.graph('inter', m, self.inter[m], h))
                      for m, h in xs.items()}
            xs = {m: self.gated(m, h) for m, h in xs.items()}
            batch = torch.zeros(1, dtype=torch.long, device=device)
            y = torch.full((1, ), -1, dtype=torch.long, device=device)
            fused = self.fuse(xs, y, batch, 1).fused
        step.commit()  # only now, so that a failed step leaves the dialogue as it was
        return fused

    @staticmethod
    def dialogue_transform(window: int, context_window: Optional[int] = None,
                           causal: bool = False, **kwargs) -> DialogueGraph:
        r"""The transform that turns a dialogue into this model's input graph (the typed
        dialogue graph, and the context edges of a windowed encoder; only the past ones for a
        causal model); takes the model's :meth:`config` as keyword arguments (others are
        ignored)."""
        return DialogueGraph(window, context_window=context_window, causal=causal)

    def _context_csr(self, data: Batch, batch: Tensor) -> Tuple[Tensor, Tensor]:
        # Shared by both encoders. Built with the dataset (DialogueGraph(context_window=K)),
        # the pattern costs no host synchronisation here; built from the offsets, it does.
        edge_index = getattr(data, 'context_edge_index', None)
        if edge_index is not None:
            if self.causal:  # the context of a non-causal transform would show the future
                edge_index = edge_index[:, edge_index[0] <= edge_index[1]]
            return index2ptr(edge_index[1], batch.numel()), edge_index[0]
        ptr = getattr(data, 'ptr', None)
        if ptr is None:
            ptr = batch.new_tensor([0, batch.numel()])
        return banded_csr(ptr, self.context_window, self.causal)

    def _graph_input(self, graph: Tuple[Tensor, Tensor], num_nodes: int):
        # Built once per batch for the layers of all modalities: sorted by target, with what
        # DiffGATConv derives from it kept on the EdgeIndex object (the GATConv ablation gets
        # the plain edges).
        if self._config['conv'] != 'diffgat':
            return graph
        edge_index, edge_type = graph
        return target_sorted_edge_index(edge_index, edge_type, (num_nodes, num_nodes))

    def _run(self, function, *args):
        if self.checkpoint_activations and self.training and torch.is_grad_enabled():
            return checkpoint(function, *args, use_reentrant=False)
        return function(*args)

    def fuse(self, xs: Dict[str, Tensor], y: Tensor, batch: Tensor,
             num_graphs: int) -> ModelOutput:
        r"""Adaptive modality dropout (training only), the unimodal classifiers and the
        fusion, on the node-level representations :obj:`xs` of every modality."""
        keep = torch.ones(batch.numel(), dtype=torch.bool, device=batch.device)
        stack = self._stacks(batch.device) and len(xs) > 1
        if self.modality_dropout is not None and self.modality_dropout.active:
            with torch.no_grad():
                probe = (dict(zip(xs, self._classify_stacked(xs).unbind(0))) if stack else
                         {m: self.classify(m, x) for m, x in xs.items()})
            xs, keep_graph = self.modality_dropout(xs, probe, y, batch, num_graphs)
            keep = keep_graph[batch]

        weights = self.fusion_weights or {}
        stacked = self._classify_stacked(xs) if stack else None  # [M, N, C]
        logits = (dict(zip(xs, stacked.unbind(0))) if stack else
                  {m: self.classify(m, x) for m, x in xs.items()})
        if stack and not weights:
            fused = stacked.sum(dim=0)
        else:  # weights as Python numbers: no copy to the device
            fused = sum(weights.get(m, 1.0) * logits[m] for m in self.modalities)
        return ModelOutput(fused, logits, keep)

    def __repr__(self) -> str:
        c = self._config
        return model_repr(self, graph=c['graph'], conv=c['conv'],
                          modality_dropout=c['modality_dropout'],
                          context_window=c['context_window'],
                          **({'causal': True} if c.get('causal') else {}))


def _subgraph(data: Batch, name: str, causal: bool = False):
    edge_index = getattr(data, f'{name}_edge_index', None)
    if edge_index is not None:
        edge_type = data[f'{name}_edge_type']
    elif getattr(data, 'edge_index', None) is None:
        raise ValueError("the batch has no dialogue graph: apply "
                         "dsgdn_pyg.data.DialogueGraph(window) to every dialogue first")
    else:
        edge_index, edge_type = relation_subgraph(data.edge_index, data.edge_type, name)
    if causal:
        return _past_only(edge_index, edge_type)
    return edge_index, edge_type


def _past_only(edge_index: Tensor, edge_type: Tensor) -> Tuple[Tensor, Tensor]:
    keep = torch.zeros_like(edge_type, dtype=torch.bool)
    for rel in PAST_RELATIONS:
        keep |= edge_type == rel
    if not keep.is_cuda and bool(keep.all()):  # already past-only: no copy
        return edge_index, edge_type
    return edge_index[:, keep], edge_type[keep]
