r"""The server's settings, declared once: ``dsgdn-pyg serve`` generates its options from
:class:`ServeSettings`, and the application reads them from it."""
import os
from dataclasses import dataclass, field, fields
from typing import Any, Dict, List, Optional


def _setting(default: Any, help: str, minimum: float = 1) -> Any:
    return field(default=default, metadata={'help': help, 'minimum': minimum})


@dataclass(frozen=True)
class ServeSettings:
    r"""How the server batches, what it accepts and how much it keeps (each field is an
    option of ``dsgdn-pyg serve``, ``max_batch`` is ``--max-batch``)."""
    max_batch: int = _setting(32, 'Most dialogues (and stream pushes) in one forward pass.')
    max_wait_ms: float = _setting(2.0, 'Longest wait for more work before a forward pass, '
                                       'in milliseconds.', minimum=0)
    max_queue: int = _setting(1024, 'Most requests and pushes waiting; past it: 503 with '
                                    'Retry-After.')
    max_connections: int = _setting(1000, 'Most open connections (HTTP and WebSocket); past '
                                          'it uvicorn answers 503.')
    max_body_bytes: int = _setting(1_000_000, 'Largest request body or WebSocket message, '
                                              'in bytes (413 past it).')
    max_dialogues: int = _setting(64, 'Most dialogues in one /v1/predict request.')
    max_utterances: int = _setting(2048, 'Most utterances in one /v1/predict request.')
    max_text_chars: int = _setting(5000, 'Longest utterance text, in characters.')
    max_open_dialogues: int = _setting(10_000, 'Most streamed dialogues open at once, over '
                                               'all sockets.')
    idle_timeout_s: float = _setting(600.0, 'A streamed dialogue with no push for this many '
                                            'seconds is ended and its state freed.', minimum=0.01)
    max_pipelined: int = _setting(64, 'Most unanswered messages of one WebSocket (then it '
                                      'is read no further until answers go out).')

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                    value < f.metadata['minimum'] or value != value:
                raise ValueError(f"'{f.name}' must be a number of at least "
                                 f"{f.metadata['minimum']}, got {value!r}")


def setting_fields() -> List[Any]:
    r"""The dataclass fields of :class:`ServeSettings`, in order."""
    return list(fields(ServeSettings))


def read_api_keys(path: Optional[str]) -> Optional[List[str]]:
    r"""The keys of an ``--api-key-file``: one per line, blank lines and ``#`` comments
    skipped; :obj:`None` without a file (no key needed). A file without a key, or with a
    key of fewer than 16 characters, is refused (the message never shows a key)."""
    if path is None:
        return None
    with open(os.fspath(path), encoding='utf-8') as f:
        lines = [line.strip() for line in f]
    keys = [line for line in lines if line and not line.startswith('#')]
    if not keys:
        raise ValueError(f"{path!r} holds no key (one per line)")
    short = [n for n, line in enumerate(lines, start=1) if line in keys and len(line) < 16]
    if short:
        raise ValueError(f"{path!r}: the key on line {short[0]} is shorter than 16 "
                         f"characters; use a long random one")
    return keys


def settings_summary(settings: ServeSettings) -> Dict[str, Any]:
    r"""The settings as a dictionary (for ``GET /v1/model``: what a client may send)."""
    return {f.name: getattr(settings, f.name) for f in fields(settings)}
