r"""What a request may bring: the checks of a ``/v1/predict`` body and of a streamed line
before any work is queued, each failure a :class:`RequestError` with the status and one line
naming what is wrong (the messages of ``dsgdn-pyg predict`` and ``stream`` where they have
one)."""
from typing import Any, Dict, List, Mapping, Optional, Sequence

from dsgdn_pyg.datasets.transcript import Transcript, as_transcripts
from dsgdn_pyg.inference.streaming import line_error
from dsgdn_pyg.io import parse_json

from dsgdn_pyg.serve.settings import ServeSettings

# Fields that name files: a server must not read the paths its clients send.
_FILE_FIELDS = ('audio', 'video')


class RequestError(ValueError):
    r"""A request the server refuses: HTTP :obj:`status`, a one-line message and the
    offending :obj:`field` (or :obj:`None`)."""
    def __init__(self, status: int, message: str, field: Optional[str] = None,
                 headers: Optional[Dict[str, str]] = None):
        super().__init__(message)
        self.status, self.field, self.headers = status, field, headers or {}

    def body(self) -> Dict[str, Any]:
        return {'error': str(self), 'field': self.field}


def parse_body(raw: bytes) -> Any:
    r"""A request body as JSON (400 if it is not)."""
    try:
        return parse_json(raw.decode('utf-8'))
    except UnicodeDecodeError:
        raise RequestError(400, 'the body is not UTF-8 text') from None
    except ValueError as e:
        raise RequestError(400, f'the body is not valid JSON ({e})') from None


def _utterances_of(item: Any) -> Sequence[Any]:
    if isinstance(item, Mapping):
        item = item.get('utterances')
    return item if isinstance(item, list) else []


def predict_transcripts(body: Any, settings: ServeSettings) -> List[Transcript]:
    r"""The dialogues of a ``/v1/predict`` body ``{"dialogues": [...]}``, checked against
    the limits of :obj:`settings` and read as :func:`~dsgdn_pyg.predict_dialogues` reads
    them (422 naming the dialogue, utterance and field otherwise)."""
    if not isinstance(body, dict) or 'dialogues' not in body:
        raise RequestError(422, 'the body must be a JSON object {"dialogues": [[{"speaker": '
                                '..., "text": ...}, ...], ...]}')
    unknown = sorted(set(body) - {'dialogues'})
    if unknown:
        raise RequestError(422, f"unknown field {unknown[0]!r} (known: dialogues)", unknown[0])
    dialogues = body['dialogues']
    if not isinstance(dialogues, list) or not dialogues:
        raise RequestError(422, "field 'dialogues' must be a non-empty list of dialogues",
                           'dialogues')
    if len(dialogues) > settings.max_dialogues:
        raise RequestError(422, f"{len(dialogues)} dialogues in one request; the limit is "
                                f"{settings.max_dialogues}", 'dialogues')
    total = sum(len(_utterances_of(item)) for item in dialogues)
    if total > settings.max_utterances:
        raise RequestError(422, f"{total} utterances in one request; the limit is "
                                f"{settings.max_utterances}", 'dialogues')
    for k, item in enumerate(dialogues):
        # Named as as_transcripts names them.
        name = str(item.get('id', k)) if isinstance(item, Mapping) else str(k)
        for i, utterance in enumerate(_utterances_of(item)):
            if isinstance(utterance, Mapping):
                _check_utterance(utterance, f"dialogue {name!r}: utterance {i}", settings)
    try:
        return as_transcripts(dialogues)
    except ValueError as e:
        raise RequestError(422, str(e)) from None


def _check_utterance(utterance: Mapping[str, Any], where: str,
                     settings: ServeSettings) -> None:
    for key in _FILE_FIELDS:
        if key in utterance:
            raise RequestError(422, f"{where}: field {key!r}: the server reads no files its "
                                    f"clients name; send text (or features to /v1/stream)",
                               key)
    text = utterance.get('text')
    if isinstance(text, str) and len(text) > settings.max_text_chars:
        raise RequestError(422, f"{where}: field 'text' has {len(text)} characters; the "
                                f"limit is {settings.max_text_chars}", 'text')


def stream_refusal(line: str, item: Optional[Mapping[str, Any]], number: int,
                   settings: ServeSettings) -> Optional[Dict[str, Any]]:
    r"""The error answer (worded as ``dsgdn-pyg stream`` words them) for streamed line
    number :obj:`number` (parsed: :obj:`item`) that the server refuses before the model sees
    it: too long, naming a file, or with a text over the limit; :obj:`None` for a line to
    run."""
    if len(line) > settings.max_body_bytes:
        return line_error(number, f"the line has {len(line)} characters; the limit is "
                                  f"{settings.max_body_bytes}", None)
    if item is None:
        return None
    if 'video' in item:
        return line_error(number, "field 'video': the server reads no files its clients "
                                  "name; send 'features'", 'video')
    text = item.get('text')
    if isinstance(text, str) and len(text) > settings.max_text_chars:
        return line_error(number, f"field 'text' has {len(text)} characters; the limit is "
                                  f"{settings.max_text_chars}", 'text')
    return None
