r"""The loaded model behind the server, and what the worker thread does with a batch: the
``/v1/predict`` requests' dialogues in one forward pass, then the streamed lines in arrival
order, each through the protocol of ``dsgdn-pyg stream``.

Nothing here knows HTTP: :mod:`~dsgdn_pyg.serve.app` turns requests into jobs and results
into responses.
"""
import logging
import os
from itertools import islice
from dataclasses import dataclass
from typing import Any, Callable, Dict, Hashable, List, Mapping, Optional, Sequence, Tuple

from dsgdn_pyg.datasets.transcript import Transcript
from dsgdn_pyg.inference.predict import DialoguePrediction, DialoguePredictor
from dsgdn_pyg.inference.streaming import (StreamingRecognizer, line_dialogue, line_error,
                                           parse_line, process_item)
from dsgdn_pyg.text.context import encoder_context

from dsgdn_pyg.serve.limits import RequestError, stream_refusal
from dsgdn_pyg.serve.sessions import Sessions, StreamSocket
from dsgdn_pyg.serve.settings import ServeSettings, settings_summary

log = logging.getLogger('dsgdn_pyg.serve')


@dataclass
class PredictJob:
    r"""The dialogues of one ``/v1/predict`` request."""
    transcripts: List[Transcript]

    @property
    def size(self) -> int:
        return len(self.transcripts)


@dataclass
class PushJob:
    r"""Line :obj:`number` of a WebSocket."""
    socket: StreamSocket
    line: str
    number: int
    size: int = 1


@dataclass
class CloseJob:
    r"""A WebSocket has closed: free its dialogues (queued after its last lines)."""
    socket: StreamSocket
    size: int = 1


class Engine:
    r"""A model folder (or checkpoint) loaded once for every request: its
    :class:`~dsgdn_pyg.inference.predict.DialoguePredictor` and, for a causal AMB-DSGDN, the
    streamed dialogues (:class:`~dsgdn_pyg.serve.sessions.Sessions`).

    Args:
        model (str): The model, as ``--model`` resolves it.
        settings (ServeSettings): Limits and batching.
        device (str): ``'auto'``, ``'cpu'`` or ``'cuda'``. (default: :obj:`'cpu'`)
        speaker_ids (Mapping, optional): Fixed speaker ids of streamed dialogues (as
            ``dsgdn-pyg stream --speaker-ids``). (default: :obj:`None`)
    """
    def __init__(self, model: str, settings: ServeSettings, device: str = 'cpu',
                 speaker_ids: Optional[Mapping[Hashable, int]] = None):
        from dsgdn_pyg.train.checkpoint import CheckpointError

        self.settings = settings
        self.predictor = DialoguePredictor(model, device)
        self.payload = self.predictor.payload
        self.labels = [str(name) for name in self.payload['label_names']]
        self.sessions = Sessions(settings.max_open_dialogues, settings.idle_timeout_s)
        try:
            self.streaming: Optional[StreamingRecognizer] = StreamingRecognizer.from_checkpoint(
                self.payload, map_location=self.predictor.device, speaker_ids=speaker_ids)
            self.stream_error: Optional[str] = None
        except CheckpointError as e:  # predictions only: /v1/stream says why
            self.streaming, self.stream_error = None, str(e)
        self.summary = card_summary(self.predictor.source)  # read once, not per request
        encoder = self.streaming.text_encoder if self.streaming is not None else None
        # An encoder reading no context embeds a push's text as it is: prefetchable.
        self.texts = PrefetchedTexts(encoder) if encoder is not None and \
            encoder_context(encoder) == (0, 0) else None

    # --- what a client learns of the model -------------------------------------------------

    def info(self) -> Dict[str, Any]:
        r"""``GET /v1/model``: labels, modalities, causal or not, text encoder, the model
        card's summary, whether it streams, and the request limits."""
        payload = self.payload
        return {'model': str(payload.get('model_name', 'amb-dsgdn')),
                'labels': self.labels, 'modalities': list(payload['modalities']),
                'causal': bool(payload['model_config'].get('causal', False)),
                'window': int(payload['window']),
                'encoder': encoder_summary(payload.get('text_featurizer')),
                'summary': self.summary,
                'streaming': self.streaming is not None, 'stream_error': self.stream_error,
                'limits': settings_summary(self.settings)}

    def warm_up(self) -> None:
        r"""Runs one short dialogue through both paths before the first client, so that no
        client waits for PyTorch's first-call set-up (0.8 s here). A model that cannot take
        text (features only) is left cold."""
        from dsgdn_pyg.datasets.transcript import as_transcripts

        hello = [{'speaker': 'A', 'text': 'Hello!'}, {'speaker': 'B', 'text': 'Hi.'}]
        try:
            self.predictor.probabilities(self.predictor.graphs(as_transcripts([hello])), 1)
        except (ValueError, OSError, ImportError):
            pass
        if self.streaming is not None and self.streaming.text_encoder is not None:
            socket = self.open_socket()
            try:  # fixed speaker ids (--speaker-ids) may not know these names: then cold
                for utterance in hello:
                    socket.recognizer.push(utterance['speaker'], text=utterance['text'])
            except ValueError:
                pass

    # --- the worker thread -----------------------------------------------------------------

    def run_batch(self, jobs: Sequence[Any],
                  deliver: Optional[Callable[[int, Any], None]] = None) -> List[Any]:
        r"""One result per job: a stream answer (:obj:`None` for a blank line), or a
        ``/v1/predict`` response body (or a :class:`~dsgdn_pyg.serve.limits.RequestError`).
        The streamed lines run first, in arrival order, each answer handed to
        :obj:`deliver` ``(index, answer)`` as soon as it is computed: a live conversation
        does not wait for the batch's whole dialogues."""
        results: List[Any] = [None] * len(jobs)
        self._run_lines(jobs, results, deliver)
        predicts = [(i, job) for i, job in enumerate(jobs) if isinstance(job, PredictJob)]
        graphs, good = self._featurise(predicts, results)
        if graphs:  # every request's dialogues in one forward pass
            probabilities = self.predictor.probabilities(graphs, len(graphs))
            predictions = iter(self.predictor.results(
                [d for _, job in good for d in job.transcripts], probabilities))
            for i, job in good:
                results[i] = predict_body(self.labels,
                                          list(islice(predictions, len(job.transcripts))))
        return results

    def _run_lines(self, jobs: Sequence[Any], results: List[Any],
                   deliver: Optional[Callable[[int, Any], None]]) -> None:
        lines = {i: self._parse(job) for i, job in enumerate(jobs) if isinstance(job, PushJob)}
        if self.texts is not None:  # the texts of the lines the model will see
            self.texts.prefetch([item['text'] for item, _ in lines.values()
                                 if item is not None and isinstance(item.get('text'), str)])
        for i, job in enumerate(jobs):  # in arrival order: a socket's lines, then its close
            if isinstance(job, PushJob):
                results[i] = self.push(job, *lines[i])
                if deliver is not None:
                    deliver(i, results[i])
            elif isinstance(job, CloseJob):
                results[i] = self.sessions.close_socket(job.socket)

    def _parse(self, job: PushJob) -> Tuple[Optional[Dict[str, Any]], Optional[Dict[str, Any]]]:
        # The line's JSON object, or the answer it gets without the model: a refusal within
        # the server's limits, or the protocol's own error (both None for a blank line).
        item, error = parse_line(job.line, job.number)
        refusal = stream_refusal(job.line, item, job.number, self.settings)
        return (None, refusal) if refusal is not None else (item, error)

    def _featurise(self, predicts: List[Tuple[int, PredictJob]], results: List[Any]):
        r"""The input graphs of every request's dialogues, in order, and the requests they
        belong to. One call for all (one text encoder pass: far faster than one a request);
        if that fails, one a request, so that a bad request fails alone (its result a
        :class:`RequestError`)."""
        transcripts = [d for _, job in predicts for d in job.transcripts]
        try:
            return (self.predictor.graphs(transcripts) if transcripts else []), predicts
        except (ValueError, OSError, ImportError):
            pass
        graphs: List[Any] = []
        good = []
        for i, job in predicts:
            try:
                graphs += self.predictor.graphs(job.transcripts)
                good.append((i, job))
            except (ValueError, OSError, ImportError) as e:  # the request's own fault
                results[i] = RequestError(422, str(e))
        return graphs, good

    def push(self, job: PushJob, item: Optional[Dict[str, Any]],
             answer: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
        r"""The answer to one streamed line, as ``dsgdn-pyg stream`` answers it, within the
        server's limits (the open dialogues' bound, text length, no file paths): :obj:`item`
        is the parsed line, or :obj:`None` with the :obj:`answer` it gets without the model
        (see :meth:`_parse`)."""
        if item is None:
            return answer
        recognizer = job.socket.recognizer
        dialogue = line_dialogue(item)
        if dialogue is not None and 'end' not in item and recognizer.position(dialogue) == 0 \
                and self.sessions.full():
            return line_error(job.number, f"{len(self.sessions)} dialogues are open, the "
                                          f"server's limit; end one with {{\"dialogue\": ID, "
                                          f"\"end\": true}} or retry later", 'dialogue')
        try:
            answer = process_item(recognizer, item, job.number)
        except Exception:  # a bug: this line fails, the socket and the server go on
            log.exception('stream line %d failed', job.number)
            return line_error(job.number, 'the server failed on this line', None)
        if answer is not None and 'error' not in answer:
            key = (job.socket, answer['dialogue'])
            if answer.get('ended'):
                self.sessions.end(key)
            else:
                self.sessions.touch(key)
        return answer

    def open_socket(self) -> StreamSocket:
        r"""A new WebSocket's state: its own recognizer over the shared model."""
        return StreamSocket(self.streaming.fork(self.texts))


class PrefetchedTexts:
    r"""A text encoder reading no context, with the texts of a batch's pushes embedded
    beforehand in one call (:meth:`prefetch`): each push then finds its row instead of
    calling the encoder for one text, whose fixed cost per call (TF-IDF: 1 ms, most of it
    input validation) is a third of a push. A TF-IDF row depends on its own text only, so
    it is the same in one call for many; a sentence encoder pads a batch to its longest
    text (equal to float rounding). Anything else goes to the encoder itself."""
    def __init__(self, encoder: Any):
        self.encoder = encoder
        self.rows: Dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:  # what the recognizer reads of the encoder
        if name == 'encoder':
            raise AttributeError(name)
        return getattr(self.encoder, name)

    def prefetch(self, texts: Sequence[str]) -> None:
        unique = list(dict.fromkeys(texts))
        self.rows = dict(zip(unique, self.encoder.transform(unique))) if unique else {}

    def transform(self, texts: Sequence[str]) -> Any:
        if len(texts) == 1 and texts[0] in self.rows:
            return self.rows[texts[0]][None]
        return self.encoder.transform(texts)


def predict_body(labels: List[str], predictions: Sequence[DialoguePrediction]
                 ) -> Dict[str, Any]:
    r"""The ``/v1/predict`` response: ``{"labels", "dialogues": [{"utterances": [{"label",
    "probabilities": {class: p}}]}]}``."""
    dialogues = []
    for prediction in predictions:
        utterances = [{'label': name, 'probabilities': dict(zip(labels, row.tolist()))}
                      for name, row in zip(prediction.predicted, prediction.probabilities)]
        dialogues.append({'utterances': utterances})
    return {'labels': labels, 'dialogues': dialogues}


def encoder_summary(state: Optional[Mapping[str, Any]]) -> Optional[Dict[str, Any]]:
    r"""What a client may know of the text encoder: its kind, base model and context."""
    if not state:
        return None
    return {key: state[key] for key in ('format', 'model', 'context') if key in state}


def card_summary(source: str) -> Optional[str]:
    r"""The first paragraph of a model folder's card (``README.md``) below its title;
    :obj:`None` for a checkpoint file."""
    from dsgdn_pyg.inference.model_folder import CARD_FILE, resolve_model_path

    try:  # a name, a run folder, a model folder (a built-in one's name too)
        source = resolve_model_path(source)
    except (OSError, ValueError):
        return None
    path = os.path.join(source, CARD_FILE)
    if not os.path.isfile(path):
        return None
    with open(path, encoding='utf-8') as f:
        paragraphs = [p.strip() for p in f.read().split('\n\n')]
    text = [p for p in paragraphs if p and not p.startswith('#')]
    return ' '.join(text[0].split()) if text else None
