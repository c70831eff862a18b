r"""Live emotion recognition: a causal AMB-DSGDN fed one utterance at a time.

:class:`StreamingRecognizer` returns the class probabilities of every utterance as it is
pushed, equal (to float rounding) to a full forward pass of the causal model over the dialogue
so far, at a cost that does not grow with the dialogue. It keeps, per open dialogue and per
layer, the states of the last utterances that layer can still attend to: the graph analogue of
a Transformer's key/value cache.

* A graph block (:class:`~dsgdn_pyg.nn.DiffRGCN`) of window :math:`w` is run by the block
  itself on the new utterance alone (:meth:`DiffRGCN.combine <dsgdn_pyg.nn.DiffRGCN.combine>`).
  Each of its :class:`~dsgdn_pyg.nn.DiffGATConv` layers projects only the new utterance
  (:meth:`DiffGATConv.project <dsgdn_pyg.nn.DiffGATConv.project>`: its projection and
  source and target scores in one matrix product) and attends to it and to the cached
  projected rows of the last :math:`w` utterances, over the local edges of the new utterance
  (self-loop, intra- or inter-speaker past), with the layer's own single-target path
  (:meth:`DiffGATConv.attend <dsgdn_pyg.nn.DiffGATConv.attend>`, a dense softmax over
  :math:`\le w + 1` rows). In a causal graph an utterance's layer input depends only on its
  past, so the cached rows are exactly what a full pass computes for them. The layers' terms
  that do not depend on the input (folded attention vectors, :math:`\lambda`, relation
  scores) are computed once, and again only when the parameters change. Other attention
  layers (the GAT ablation) are called with a bipartite ``(sources, target)`` input of their
  cached inputs through a forward pre-hook (registered for the duration of one push). Nothing
  of the layers' or the block's arithmetic is copied here.
* The audio/visual encoder runs :meth:`UtteranceEncoder.step
  <dsgdn_pyg.nn.UtteranceEncoder.step>` on the keys and values of the last
  :obj:`context_window` utterances. With :obj:`context_window=None` the causal encoder attends
  to the whole past, so its cache grows with the dialogue (two :math:`d_h` rows per utterance
  and modality) and so does its (small) cost; every other cache is bounded by :math:`w`.

Speakers are names (any hashable: ``'agent'``, ``'M'``, ``3``), numbered within each
dialogue in order of first appearance, as the dataset loaders number them (or by a fixed
:obj:`speaker_ids` mapping); a dialogue with more speakers than the model's
:obj:`num_speakers` is refused.
"""
from collections import deque
from contextlib import contextmanager
from typing import Any, Deque, Dict, Hashable, Iterator, List, Mapping, Optional, Tuple, Union

import numpy as np
import torch
from torch import Tensor
from torch_geometric.nn.conv import MessagePassing

from dsgdn_pyg.data.graph import INTER_PAST, INTRA_PAST, SELF_LOOP
from dsgdn_pyg.io import parse_json
from dsgdn_pyg.models import AMBDSGDN
from dsgdn_pyg.nn.diff_gat_conv import DiffGATTerms
from dsgdn_pyg.text.context import context_input, encoder_context

Features = Mapping[str, Any]


class StreamInputError(ValueError):
    r"""Bad input to :meth:`StreamingRecognizer.push`; :obj:`field` names the offending field
    (``'speaker'``, ``'text'``, ``'features.a'``, ...)."""
    def __init__(self, message: str, field: Optional[str] = None):
        super().__init__(message)
        self.field = field

#: The relations of the new utterance's edges in each subgraph of a causal model.
_SUBGRAPHS = {'inter': (SELF_LOOP, INTER_PAST), 'intra': (SELF_LOOP, INTRA_PAST)}


class _Dialogue:
    r"""What one open dialogue keeps between pushes."""
    def __init__(self, window: int, context_window: Optional[int], text_context: int = 0):
        self.speaker_ids: Dict[Hashable, int] = {}
        self.position = 0
        self.speakers: Deque[int] = deque(maxlen=window)  # of the last w utterances
        # Per graph attention layer (by module name), the last w utterances: for a DiffGATConv
        # its DiffGATConv.project() rows, [w, D], utterance i in slot i % w (the slot speakers
        # in slot_speakers); for another layer (the GAT ablation) its inputs, oldest first.
        self.layers: Dict[str, Union[Deque[Tensor], Tensor]] = {}
        self.slot_speakers: List[Optional[int]] = [None] * window
        # The buffers that hold those rows of a DiffGATConv, plus a row for the new utterance.
        self.sources: Dict[str, Tensor] = {}
        self.window = window
        # Keys and values of each encoder (by modality), last K utterances (all if K is None).
        self.encoder: Dict[str, Deque[Tuple[Tensor, Tensor]]] = {}
        self.context_window = context_window
        # (speaker, text) of the last utterances, for a text encoder that reads them.
        self.turns: Deque[Tuple[Hashable, str]] = deque(maxlen=text_context)

    def layer_cache(self, name: str) -> Deque[Tensor]:
        if name not in self.layers:
            self.layers[name] = deque(maxlen=self.window)
        return self.layers[name]

    def encoder_cache(self, m: str) -> Deque[Tuple[Tensor, Tensor]]:
        if m not in self.encoder:
            self.encoder[m] = deque(maxlen=self.context_window)
        return self.encoder[m]


class StreamingRecognizer:
    r"""Recognises the emotion of each utterance of live dialogues as it arrives, with a causal
    :class:`~dsgdn_pyg.models.AMBDSGDN` (trained with ``causal=True``, ``--causal``).

    :meth:`push` returns what a full forward pass of the model over the dialogue so far gives
    for the new utterance (tested to :math:`10^{-5}`), in time and memory bounded by the graph
    window :obj:`window` and the encoder's :obj:`context_window`, not by the dialogue's length.
    Dialogues are independent and keyed by any hashable id.

    Args:
        model (AMBDSGDN): A causal AMB-DSGDN; it is put in evaluation mode.
        window (int): The dialogue graph window :math:`w` it was trained with.
        label_names (List[str], optional): Class names, for :meth:`label`.
            (default: :obj:`None` = ``'0'``, ``'1'``, ...)
        text_encoder (optional): An encoder with ``transform(texts) -> [N, D]`` (see
            :func:`dsgdn_pyg.text.text_encoder_from_state`) that turns :obj:`text` into the
            text features; one with a ``context`` of :math:`K` previous utterances gets the
            last :math:`K` texts of the dialogue with their speakers
            (:mod:`dsgdn_pyg.text.context`). (default: :obj:`None`)
        speaker_ids (Mapping, optional): Fixed speaker ids by name, for a model trained on
            data whose loader fixed them (e.g. IEMOCAP pickles: ``{'M': 0, 'F': 1}``); other
            names are refused. :obj:`None` numbers the speakers of each dialogue in order of
            appearance. (default: :obj:`None`)

    Example::

        recognizer = StreamingRecognizer.from_checkpoint('runs/causal/best.pt')
        p = recognizer.push('agent', text='How can I help you?', dialogue='call-1')
        recognizer.label(p)
    """
    def __init__(self, model: AMBDSGDN, window: int, label_names: Optional[List[str]] = None,
                 text_encoder: Any = None,
                 speaker_ids: Optional[Mapping[Hashable, int]] = None):
        if not isinstance(model, AMBDSGDN):
            raise TypeError(f"streaming runs an AMBDSGDN, got {type(model).__name__}")
        if not model.causal:
            raise ValueError("streaming needs a causal model (AMBDSGDN(causal=True), "
                             "`dsgdn-pyg train --causal`): this one reads future utterances")
        if int(window) != window or window < 0:
            raise ValueError(f"'window' must be a non-negative integer, got {window!r}")
        config = model.config()
        if label_names is not None and len(label_names) != config['num_classes']:
            raise ValueError(f"'label_names' has {len(label_names)} names but the model has "
                             f"{config['num_classes']} classes")
        self.model = model.eval()
        self.window = int(window)
        self.context_window = config['context_window']
        self.num_speakers = int(config['num_speakers'])
        self.feature_dims = {m: int(d) for m, d in config['feature_dims'].items()}
        self.label_names = [str(n) for n in label_names] if label_names is not None else \
            [str(i) for i in range(config['num_classes'])]
        self.text_encoder = text_encoder
        self.media_states: Dict[str, Any] = {}
        if speaker_ids is not None:
            bad = {k: v for k, v in speaker_ids.items()
                   if not isinstance(v, int) or not 0 <= v < self.num_speakers}
            if bad:
                raise ValueError(f"'speaker_ids' must map names to ids in [0, "
                                 f"{self.num_speakers}), got {bad}")
            speaker_ids = dict(speaker_ids)
        self.speaker_ids = speaker_ids
        self._dialogues: Dict[Hashable, _Dialogue] = {}
        # DiffGATConv layers run on cached DiffGATConv.project() rows (DiffGATConv.attend),
        # with their input-independent terms computed once (_refresh_terms), not per push.
        self._lean: Dict[torch.nn.Module, Tuple[str, Optional[DiffGATTerms]]] = {}
        self._terms_of: Tuple[Tuple[int, int], ...] = ()
        self._parameter_tables: List[Dict[str, Any]] = []
        # The attention layers of every graph block, by their name in the model.
        self._layers: Dict[str, Dict[str, List[Tuple[str, MessagePassing]]]] = {}
        if model.inter is not None:
            for sub in _SUBGRAPHS:
                blocks = getattr(model, sub)
                self._layers[sub] = {
                    m: [(f'{sub}.{m}.{name}', module)
                        for name, module in blocks[m].named_modules()
                        if isinstance(module, MessagePassing)]
                    for m in model.modalities}
            if config['conv'] == 'diffgat':
                self._lean = {module: (name, None)
                              for blocks in self._layers.values()
                              for layers in blocks.values() for name, module in layers}
                self._refresh_terms()

    @classmethod
    def from_checkpoint(cls, checkpoint: Union[str, Mapping[str, Any]], map_location: Any = 'cpu',
                        speaker_ids: Optional[Mapping[Hashable, int]] = None,
                        ) -> 'StreamingRecognizer':
        r"""The recognizer of a checkpoint written by :func:`dsgdn_pyg.train.train` (a path or
        the loaded payload), with its window, label names and, for transcripts, its own text
        featurizer; :obj:`speaker_ids` as in the constructor."""
        from dsgdn_pyg.inference.loading import checkpoint_model_name, model_from_checkpoint
        from dsgdn_pyg.train.checkpoint import CheckpointError

        model, payload = model_from_checkpoint(checkpoint, map_location=map_location)
        if not isinstance(model, AMBDSGDN):
            raise CheckpointError(f"streaming runs AMB-DSGDN checkpoints, this one holds "
                                  f"{checkpoint_model_name(payload)!r}")
        if not model.causal:
            where = checkpoint if isinstance(checkpoint, str) else '<checkpoint>'
            raise CheckpointError(f"checkpoint {where!r} holds a model that reads future "
                                  f"utterances; train one for streaming with --causal")
        text_encoder = None
        if payload.get('text_featurizer') and 't' in model.modalities:
            from dsgdn_pyg.text import text_encoder_from_state
            text_encoder = text_encoder_from_state(payload['text_featurizer'])
        recognizer = cls(model, int(payload['window']), payload.get('label_names'),
                         text_encoder, speaker_ids)
        # The scaling of features from video clips (a pushed line's 'video' field).
        recognizer.media_states = {m: payload[key] for m, key in (('v', 'video_features'),
                                                                  ('a', 'audio_features'))
                                   if payload.get(key) and m in model.modalities}
        if 'v' in recognizer.media_states:  # refused now, not at the first clip
            from dsgdn_pyg.video.modality import check_extractor
            try:
                check_extractor(recognizer.media_states['v'], f"checkpoint {checkpoint!r}"
                                if isinstance(checkpoint, str) else 'the checkpoint')
            except ValueError as e:
                raise CheckpointError(str(e)) from None
        return recognizer

    @property
    def modalities(self) -> List[str]:
        r"""The modalities every push must provide (``'t'`` as :obj:`text` if the
        recognizer has a text encoder)."""
        return list(self.model.modalities)

    @property
    def dialogues(self) -> List[Hashable]:
        r"""The ids of the open dialogues."""
        return list(self._dialogues)

    def reset(self, dialogue: Optional[Hashable] = None) -> None:
        r"""Forgets dialogue :obj:`dialogue` (its next push starts a new one), or every
        dialogue if :obj:`None`."""
        if dialogue is None:
            self._dialogues.clear()
        else:
            self._dialogues.pop(dialogue, None)

    def position(self, dialogue: Hashable) -> int:
        r"""How many utterances of :obj:`dialogue` have been pushed (0 if it is not open)."""
        state = self._dialogues.get(dialogue)
        return 0 if state is None else state.position

    def label(self, probabilities: Tensor) -> str:
        r"""The name of the most probable class."""
        return self.label_names[int(torch.as_tensor(probabilities).argmax())]

    def push(self, speaker: Hashable, features: Optional[Features] = None,
             text: Optional[str] = None, dialogue: Hashable = 'default') -> Tensor:
        r"""Adds the next utterance of :obj:`dialogue` and returns its class probabilities.

        Args:
            speaker (hashable): Who speaks; numbered within the dialogue in order of first
                appearance.
            features (Mapping[str, array], optional): One feature vector per modality
                (``'t'``, ``'a'``, ``'v'``), each as long as the model's input width.
            text (str, optional): The transcript, embedded by the text encoder as ``'t'``.
            dialogue (hashable, optional): The dialogue it belongs to. (default: ``'default'``)

        Returns:
            torch.Tensor: The probabilities of the classes, shape :obj:`[C]`.

        Raises:
            StreamInputError: For a missing, superfluous or malformed modality, a speaker
                beyond the model's :obj:`num_speakers` (a :class:`ValueError` whose
                :obj:`field` names the field). The dialogue is then unchanged.
        """
        if self.model.training:
            raise RuntimeError("the model was put in training mode after the recognizer was "
                               "made; call model.eval() (dropout would change every output)")
        try:
            state = self._dialogues.get(dialogue)
        except TypeError:
            raise StreamInputError(f"field 'dialogue' must be an id (string or number), got "
                                   f"{type(dialogue).__name__}", 'dialogue') from None
        if state is None:
            state = _Dialogue(self.window, self.context_window,
                              encoder_context(self.text_encoder))
        if self._lean:
            self._refresh_terms()
        speaker_id = self._speaker_id(state, speaker, dialogue)
        inputs = self._inputs(features, text, speaker, state)
        pending_layers: Dict[str, Tensor] = {}
        pending_encoder: Dict[str, Tuple[Tensor, Tensor]] = {}
        model = self.model
        # Recognition only: no autograd graph is kept between pushes, and inference mode spares
        # the bookkeeping of autograd on each of the few hundred small operations of a push.
        # The caches are inference tensors, so they are written in inference mode only.
        with torch.inference_mode():
            param = next(model.parameters())
            device, dtype = param.device, param.dtype
            spk = torch.tensor([speaker_id], device=device)
            position = torch.tensor([state.position], device=device)
            if model.inter is None:
                edges = {}
            elif self._lean:
                edges = _slot_edges(state, speaker_id, device)
            else:
                edges = {sub: _local_edges(state.speakers, speaker_id, relations, device)
                         for sub, relations in _SUBGRAPHS.items()}
            xs: Dict[str, Tensor] = {}
            for m in model.modalities:
                x = model.proj[m](inputs[m].to(device, dtype))
                if m in model.encoder:
                    cache = state.encoder_cache(m)
                    past = None
                    if cache:
                        past = (torch.cat([k for k, _ in cache]), torch.cat([v for _, v in cache]))
                    x, pending_encoder[m] = model.encoder[m].step(x, spk, position, past)
                for sub, (edge_index, edge_type) in edges.items():  # inter, then intra
                    block = getattr(model, sub)[m]
                    if self._lean:  # edge_index is the source mask over [past slots, new]
                        x = block.combine(x, self._attend(state, edge_index, edge_type,
                                                          pending_layers))
                        continue
                    with _bipartite(self._layers[sub][m], state, pending_layers):
                        x = block(x, edge_index, edge_type)
                xs[m] = model.gated(m, x)
            batch = torch.zeros(1, dtype=torch.long, device=device)
            y = torch.full((1, ), -1, dtype=torch.long, device=device)
            fused = model.fuse(xs, y, batch, 1).fused
            probabilities = torch.softmax(fused[0], dim=-1)

        # Committed only now, so that a failed push leaves the dialogue as it was.
        slot = state.position % self.window if self.window else 0
        with torch.inference_mode():  # the cache rows are inference tensors
            for name, row in pending_layers.items():
                if not self._lean:
                    state.layer_cache(name).append(row)
                elif self.window:
                    state.layers[name][slot] = row[0]
        if self.window:
            state.slot_speakers[slot] = speaker_id
        for m, kv in pending_encoder.items():
            state.encoder_cache(m).append(kv)
        state.speaker_ids.setdefault(speaker, speaker_id)
        state.speakers.append(speaker_id)
        if text is not None and state.turns.maxlen:
            state.turns.append((speaker, text))
        state.position += 1
        self._dialogues[dialogue] = state
        return probabilities.cpu().clone()  # an ordinary tensor, not an inference tensor

    def _parameter_versions(self) -> Tuple[Tuple[int, int], ...]:
        # Which tensors the layers hold and how often they were changed in place: new weights
        # (load_state_dict, an optimiser step) invalidate the terms. Read from the modules'
        # own parameter tables, as Module.parameters() costs ~0.1 ms per push here.
        if not self._parameter_tables:
            self._parameter_tables = [module._parameters for layer in self._lean
                                      for module in layer.modules()]
        return tuple((id(p), p._version) for table in self._parameter_tables
                     for p in table.values() if p is not None)

    def _refresh_terms(self) -> None:
        versions = self._parameter_versions()
        if versions == self._terms_of:
            return
        with torch.no_grad():
            self._lean = {layer: (name, layer.inference_terms())
                          for layer, (name, _) in self._lean.items()}
        self._terms_of = versions

    def _attend(self, state: _Dialogue, mask: Tensor, edge_type: Tensor,
                pending: Dict[str, Tensor]):
        r"""The DiffGATConv of a block on the new utterance: its projected row joins the
        cached rows of the last w utterances as sources."""
        def conv(layer: torch.nn.Module, x: Tensor) -> Tensor:
            name, terms = self._lean[layer]
            row = layer.project(x, terms)
            pending[name] = row
            sources = state.sources.get(name)
            if sources is None:  # the cache (first w rows) and a last row for the new one
                sources = state.sources[name] = row.new_zeros(self.window + 1, row.size(1))
                state.layers[name] = sources[:self.window]
            sources[self.window] = row[0]
            return layer.attend(sources, row, mask, edge_type, terms)
        return conv

    def _speaker_id(self, state: _Dialogue, speaker: Hashable, dialogue: Hashable) -> int:
        try:
            known = state.speaker_ids.get(speaker)
        except TypeError:
            raise StreamInputError(f"dialogue {dialogue!r}: field 'speaker' must be a name "
                                   f"(string or number), got {type(speaker).__name__}",
                                   'speaker') from None
        if known is not None:
            return known
        if self.speaker_ids is not None:
            if speaker not in self.speaker_ids:
                raise StreamInputError(f"dialogue {dialogue!r}: field 'speaker': unknown "
                                       f"speaker {speaker!r} (known: "
                                       f"{', '.join(map(repr, self.speaker_ids))})", 'speaker')
            return self.speaker_ids[speaker]
        if len(state.speaker_ids) >= self.num_speakers:
            raise StreamInputError(
                f"dialogue {dialogue!r}: field 'speaker': {speaker!r} would be speaker "
                f"{len(state.speaker_ids) + 1} of the dialogue, but the model knows at most "
                f"{self.num_speakers} per dialogue ({', '.join(map(repr, state.speaker_ids))} "
                f"so far)", 'speaker')
        # Not registered here: only a push that succeeds (push's commit) adds the speaker.
        return len(state.speaker_ids)

    def _inputs(self, features: Optional[Features], text: Optional[str], speaker: Hashable,
                state: _Dialogue) -> Dict[str, Tensor]:
        features = dict(features or {})
        if text is not None:
            if self.text_encoder is None or 't' not in self.feature_dims:
                raise StreamInputError("field 'text': this model has no text encoder (it was "
                                       "not trained on transcripts); give 'features' instead",
                                       'text')
            if 't' in features:
                raise StreamInputError("give the text modality as 'text' or as "
                                       "'features.t', not both", 'features.t')
            if not isinstance(text, str):
                raise StreamInputError(f"field 'text' must be a string, got "
                                       f"{type(text).__name__}", 'text')
            if encoder_context(self.text_encoder):
                text = context_input(speaker, text, state.turns)
            features['t'] = self.text_encoder.transform([text])[0]
        unknown = [m for m in features if m not in self.feature_dims]
        if unknown:
            raise StreamInputError(f"field 'features.{unknown[0]}': the model uses modalities "
                                   f"{','.join(self.feature_dims)} only",
                                   f'features.{unknown[0]}')
        inputs = {}
        for m, width in self.feature_dims.items():
            if m not in features:
                field = 'text' if m == 't' and self.text_encoder is not None else \
                    f'features.{m}'
                raise StreamInputError(f"field '{field}' is missing: the model needs "
                                       f"modalities {','.join(self.feature_dims)}", field)
            try:
                x = torch.as_tensor(np.asarray(features[m], dtype=np.float32))
            except (TypeError, ValueError):
                raise StreamInputError(f"field 'features.{m}' must be a list of numbers",
                                       f'features.{m}') from None
            if x.dim() != 1 or x.numel() != width:
                raise StreamInputError(f"field 'features.{m}' must hold {width} numbers, got "
                                       f"shape {tuple(x.shape)}", f'features.{m}')
            if not bool(torch.isfinite(x).all()):
                raise StreamInputError(f"field 'features.{m}' holds a NaN or infinite value",
                                       f'features.{m}')
            inputs[m] = x.view(1, -1)
        return inputs

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(window={self.window}, '
                f'context_window={self.context_window}, modalities={",".join(self.modalities)}, '
                f'open_dialogues={len(self._dialogues)})')


_LINE_KEYS = ('dialogue', 'speaker', 'text', 'features', 'video', 'id', 'end')


def process_line(recognizer: StreamingRecognizer, line: str,
                 number: int) -> Optional[Dict[str, Any]]:
    r"""Runs one JSON line of the ``dsgdn-pyg stream`` protocol and returns the JSON-able answer
    (:obj:`None` for a blank line).

    An utterance is ``{"dialogue": ID, "speaker": NAME, "text": "..."}`` or, for a
    feature-based model, ``{"dialogue": ID, "speaker": NAME, "features": {"t": [...], ...}}``;
    a model trained on video clips takes ``"video": PATH`` (or ``{"path": PATH, "start": S,
    "end": S}``) for its visual and audio features
    (:obj:`"dialogue"` defaults to ``"default"``; an optional :obj:`"id"` is echoed); the
    answer holds the line number, the dialogue, the utterance's index in it, the most probable
    label and every class probability. ``{"dialogue": ID, "end": true}`` closes a dialogue
    and frees its state. A bad line is answered with ``{"line": N, "error": "...", "field":
    F}`` and changes nothing.
    """
    if not line.strip():
        return None

    def error(message: str, field: Optional[str]) -> Dict[str, Any]:
        return {'line': number, 'error': f"line {number}: {message}", 'field': field}

    try:
        item = parse_json(line)
    except ValueError as e:
        return error(f"not valid JSON ({e})", None)
    if not isinstance(item, dict):
        return error(f"expected a JSON object, got {type(item).__name__}", None)
    unknown = [k for k in item if k not in _LINE_KEYS]
    if unknown:
        return error(f"unknown field {unknown[0]!r} (known: {', '.join(_LINE_KEYS)})",
                     unknown[0])
    dialogue = item.get('dialogue', 'default')
    if isinstance(dialogue, bool) or not isinstance(dialogue, (str, int)):
        return error(f"field 'dialogue' must be a string or an integer, got {dialogue!r}",
                     'dialogue')
    answer: Dict[str, Any] = {'line': number, 'dialogue': dialogue}
    if 'id' in item:
        answer['id'] = item['id']
    if 'end' in item:
        if item['end'] is not True or set(item) - {'dialogue', 'end', 'id'}:
            return error("field 'end' must be true, on a line with only 'dialogue' (and 'id')",
                         'end')
        recognizer.reset(dialogue)
        return dict(answer, ended=True)
    speaker = item.get('speaker')
    if isinstance(speaker, bool) or not isinstance(speaker, (str, int)):
        return error(f"field 'speaker' must be a string or an integer, got {speaker!r}",
                     'speaker')
    features = item.get('features')
    if features is not None and not isinstance(features, dict):
        return error(f"field 'features' must be an object of modality: list of numbers, got "
                     f"{type(features).__name__}", 'features')
    if 'video' in item:  # a clip: the visual (and audio) features of the utterance
        from dsgdn_pyg.video.modality import stream_clip_features
        try:
            features = stream_clip_features(item['video'], recognizer.media_states, features)
        except (ValueError, OSError, ImportError) as e:
            return error(str(e), 'video')
    index = recognizer.position(dialogue)
    try:
        probabilities = recognizer.push(speaker, features=features, text=item.get('text'),
                                        dialogue=dialogue)
    except StreamInputError as e:
        return error(str(e), e.field)
    values = probabilities.tolist()
    return dict(answer, index=index, speaker=speaker, label=recognizer.label(probabilities),
                probabilities=dict(zip(recognizer.label_names, values)))


def _local_edges(past_speakers: Deque[int], speaker: int, relations: Tuple[int, ...],
                 device: torch.device) -> Tuple[Tensor, Tensor]:
    r"""The edges of the new utterance in a subgraph: sources are the last :math:`w`
    utterances (oldest first) and the new one (last), the target is the new one (index 0)."""
    types = [INTRA_PAST if s == speaker else INTER_PAST for s in past_speakers] + [SELF_LOOP]
    src = [j for j, t in enumerate(types) if t in relations]
    edge_index = torch.tensor([src, [0] * len(src)], dtype=torch.long, device=device)
    edge_type = torch.tensor([types[j] for j in src], dtype=torch.long, device=device)
    return edge_index, edge_type


def _slot_edges(state: _Dialogue, speaker: int,
                device: torch.device) -> Dict[str, Tuple[Tensor, Tensor]]:
    r"""The edges of the new utterance in each subgraph, for :meth:`DiffGATConv.attend`: a
    source mask and the relation of every source, the sources being the cached slots of the
    last :math:`w` utterances (empty ones masked) and the new utterance (last)."""
    types = [0 if s is None else INTRA_PAST if s == speaker else INTER_PAST
             for s in state.slot_speakers] + [SELF_LOOP]
    edge_type = torch.tensor(types, dtype=torch.long, device=device)
    return {sub: (torch.tensor([t in relations for t in types], device=device), edge_type)
            for sub, relations in _SUBGRAPHS.items()}


@contextmanager
def _bipartite(layers: List[Tuple[str, MessagePassing]], state: _Dialogue,
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
            past = state.layers.get(name)
            sources = torch.cat([*past, x]) if past else x
            return ((sources, x), ) + tuple(args[1:])
        return prepend_past

    handles = [module.register_forward_pre_hook(hook(name)) for name, module in layers]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


__all__ = ['StreamingRecognizer', 'StreamInputError', 'process_line']
