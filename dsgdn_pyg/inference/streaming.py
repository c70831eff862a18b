r"""Live emotion recognition: a causal AMB-DSGDN fed one utterance at a time.

:class:`StreamingRecognizer` returns the class probabilities of every utterance as it is
pushed, equal (to float rounding) to a full forward pass of the causal model over the dialogue
so far, at a cost that does not grow with the dialogue. It keeps, per open dialogue and per
layer, the states of the last utterances that layer can still attend to: the graph analogue of
a Transformer's key/value cache.

The model computes each utterance itself
(:meth:`AMBDSGDN.forward_incremental <dsgdn_pyg.models.AMBDSGDN.forward_incremental>`, with one
:class:`~dsgdn_pyg.models.incremental.IncrementalCache` per dialogue); this module keeps the
dialogues, numbers their speakers and checks and featurises what comes in.

Speakers are names (any hashable: ``'agent'``, ``'M'``, ``3``), numbered within each
dialogue in order of first appearance, as the dataset loaders number them (or by a fixed
:obj:`speaker_ids` mapping); a dialogue with more speakers than the model's
:obj:`num_speakers` is refused.
"""
import copy
from collections import deque
from typing import Any, Deque, Dict, Hashable, List, Mapping, Optional, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from dsgdn_pyg.io import parse_json
from dsgdn_pyg.models import AMBDSGDN
from dsgdn_pyg.models.incremental import IncrementalCache
from dsgdn_pyg.text.context import encoder_context, live_input

Features = Mapping[str, Any]


class StreamInputError(ValueError):
    r"""Bad input to :meth:`StreamingRecognizer.push`; :obj:`field` names the offending field
    (``'speaker'``, ``'text'``, ``'features.a'``, ...)."""
    def __init__(self, message: str, field: Optional[str] = None):
        super().__init__(message)
        self.field = field

class _Dialogue:
    r"""What one open dialogue keeps between pushes: its speakers' ids, the model's cache and
    the last turns a text encoder with context reads."""
    def __init__(self, cache: IncrementalCache, text_context: int = 0):
        self.speaker_ids: Dict[Hashable, int] = {}
        self.cache = cache
        # (speaker, text) of the last utterances, for a text encoder that reads them.
        self.turns: Deque[Tuple[Hashable, str]] = deque(maxlen=text_context)


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
        if text_encoder is not None and encoder_context(text_encoder)[1]:
            raise ValueError(f"the text encoder reads {encoder_context(text_encoder)[1]} "
                             f"following turns: it cannot run live (train with --causal)")
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
            # A sentence encoder embeds on the model's device too.
            text_encoder = text_encoder_from_state(payload['text_featurizer'], map_location)
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

    def fork(self, text_encoder: Any = None) -> 'StreamingRecognizer':
        r"""A recognizer over the same model and settings with no open dialogue (and
        :obj:`text_encoder` instead of this one's, if given): one per client of a server."""
        other = copy.copy(self)
        other._dialogues = {}
        if text_encoder is not None:
            other.text_encoder = text_encoder
        return other

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
        return 0 if state is None else state.cache.position

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
            state = _Dialogue(self.model.incremental_cache(self.window),
                              encoder_context(self.text_encoder)[0])
        speaker_id = self._speaker_id(state, speaker, dialogue)
        inputs = self._inputs(features, text, speaker, state)
        fused = self.model.forward_incremental(inputs, speaker_id, state.cache)
        state.speaker_ids.setdefault(speaker, speaker_id)  # committed only after a good push
        with torch.inference_mode():
            probabilities = torch.softmax(fused[0], dim=-1)
        if text is not None and state.turns.maxlen:
            state.turns.append((speaker, text))
        self._dialogues[dialogue] = state
        return probabilities.cpu().clone()  # an ordinary tensor, not an inference tensor

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
        # Not registered here: only a push that succeeds adds the speaker (see push).
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
            features['t'] = self.text_encoder.transform(
                [live_input(self.text_encoder, speaker, text, state.turns)])[0]
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
                array = np.asarray(features[m], dtype=np.float32)
            except (TypeError, ValueError):
                raise StreamInputError(f"field 'features.{m}' must be a list of numbers",
                                       f'features.{m}') from None
            if array.ndim != 1 or array.size != width:
                raise StreamInputError(f"field 'features.{m}' must hold {width} numbers, got "
                                       f"shape {tuple(array.shape)}", f'features.{m}')
            # Checked in numpy: a handful of torch operators per push less.
            if not np.isfinite(array).all():
                raise StreamInputError(f"field 'features.{m}' holds a NaN or infinite value",
                                       f'features.{m}')
            inputs[m] = torch.from_numpy(array).view(1, -1)
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
    F}`` and changes nothing. It is :func:`parse_line`, then :func:`process_item`.
    """
    item, error = parse_line(line, number)
    return error if item is None else process_item(recognizer, item, number)


def line_error(number: int, message: str, field: Optional[str]) -> Dict[str, Any]:
    r"""An error answer of the stream protocol: ``{"line", "error", "field"}``."""
    return {'line': number, 'error': f"line {number}: {message}", 'field': field}


def parse_line(line: str, number: int
               ) -> Tuple[Optional[Dict[str, Any]], Optional[Dict[str, Any]]]:
    r"""Line :obj:`number`'s JSON object and :obj:`None`, or :obj:`None` and its error
    answer (both :obj:`None` for a blank line)."""
    if not line.strip():
        return None, None
    try:
        item = parse_json(line)
    except ValueError as e:
        return None, line_error(number, f"not valid JSON ({e})", None)
    if not isinstance(item, dict):
        return None, line_error(number, f"expected a JSON object, got {type(item).__name__}",
                                None)
    return item, None


def line_dialogue(item: Mapping[str, Any]) -> Optional[Hashable]:
    r"""The dialogue a parsed line names (``"default"`` if none); :obj:`None` if it is not a
    string or an integer."""
    dialogue = item.get('dialogue', 'default')
    if isinstance(dialogue, bool) or not isinstance(dialogue, (str, int)):
        return None
    return dialogue


def process_item(recognizer: StreamingRecognizer, item: Mapping[str, Any],
                 number: int) -> Dict[str, Any]:
    r""":func:`process_line` on a line already parsed (:func:`parse_line`)."""
    def error(message: str, field: Optional[str]) -> Dict[str, Any]:
        return line_error(number, message, field)

    unknown = [k for k in item if k not in _LINE_KEYS]
    if unknown:
        return error(f"unknown field {unknown[0]!r} (known: {', '.join(_LINE_KEYS)})",
                     unknown[0])
    dialogue = line_dialogue(item)
    if dialogue is None:
        return error(f"field 'dialogue' must be a string or an integer, got "
                     f"{item.get('dialogue')!r}", 'dialogue')
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


__all__ = ['StreamingRecognizer', 'StreamInputError', 'line_dialogue', 'line_error',
           'parse_line', 'process_item', 'process_line']
