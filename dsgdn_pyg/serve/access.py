r"""Keys and the access log: who may call the server, and one JSON line per request."""
import hmac
import json
import logging
import time
from typing import Any, Awaitable, Callable, Dict, List, Optional

access_log = logging.getLogger('dsgdn_pyg.serve.access')

KEY_MESSAGE = 'missing or wrong API key: send the header "Authorization: Bearer <key>"'


def authorized(header: Optional[str], keys: Optional[List[str]]) -> bool:
    r"""Whether an ``Authorization`` header carries one of :obj:`keys` (any header if
    :obj:`keys` is :obj:`None`). Every key is compared, each in constant time, so that the
    answer's timing tells nothing of the keys."""
    if keys is None:
        return True
    scheme, _, token = (header or '').partition(' ')
    given = token.strip().encode('utf-8') if scheme.lower() == 'bearer' else b''
    found = False
    for key in keys:
        found |= hmac.compare_digest(given, key.encode('utf-8'))
    return found and bool(given)


def configure_access_log(quiet: bool) -> None:
    r"""The access log's JSON lines on standard error, bare (nothing while :obj:`quiet`); in
    every server process (``--workers`` starts several)."""
    import sys

    access_log.setLevel(logging.WARNING if quiet else logging.INFO)
    access_log.propagate = False
    if not access_log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter('%(message)s'))
        access_log.addHandler(handler)


def log_line(**fields: Any) -> None:
    r"""One access-log line: a JSON object (never a key: no header is ever logged)."""
    if access_log.isEnabledFor(logging.INFO):
        access_log.info(json.dumps(fields, ensure_ascii=False, default=str))


class AccessLog:
    r"""ASGI middleware: after each HTTP request, one JSON line with the route, method,
    status, utterances (what the route recorded in ``request.state``) and latency; the
    texts only where the route recorded them (``--log-text``)."""
    def __init__(self, app: Callable[..., Awaitable[None]]):
        self.app = app

    async def __call__(self, scope: Dict[str, Any], receive: Callable, send: Callable):
        if scope['type'] != 'http':
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), [500]

        async def send_status(message: Dict[str, Any]) -> None:
            if message['type'] == 'http.response.start':
                status[0] = message['status']
            await send(message)
        try:
            await self.app(scope, receive, send_status)
        finally:
            state = scope.get('state') or {}
            fields = {'route': scope.get('path'), 'method': scope.get('method'),
                      'status': status[0], 'utterances': state.get('utterances', 0),
                      'latency_ms': round(1000 * (time.perf_counter() - started), 2)}
            if 'texts' in state:
                fields['texts'] = state['texts']
            log_line(**fields)
