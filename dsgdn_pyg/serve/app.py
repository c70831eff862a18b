r"""The FastAPI application of ``dsgdn-pyg serve``.

Routes: ``GET /healthz`` (open), ``GET /v1/model``, ``POST /v1/predict``, ``WebSocket
/v1/stream`` and FastAPI's ``/docs``. Every refusal is a 4xx with ``{"error": "...",
"field": ...}``; the work goes through one :class:`~dsgdn_pyg.serve.batching.MicroBatcher`.
"""
import asyncio
import json
import os
import time
from contextlib import asynccontextmanager
from typing import Any, Dict, List, Optional

from dsgdn_pyg import __version__
from dsgdn_pyg.inference.streaming import line_error
from dsgdn_pyg.serve import require_serve
from dsgdn_pyg.serve.access import (KEY_MESSAGE, AccessLog, authorized, configure_access_log,
                                    log_line)
from dsgdn_pyg.serve.batching import MicroBatcher, QueueFull
from dsgdn_pyg.serve.engine import CloseJob, Engine, PredictJob, PushJob
from dsgdn_pyg.serve.limits import RequestError, parse_body, predict_transcripts
from dsgdn_pyg.serve.sessions import StreamSocket

# OpenAPI: the body is read by hand (limits first, the CLI's messages), so it is described here.
_PREDICT_BODY = {'required': True, 'content': {'application/json': {'schema': {
    'type': 'object', 'required': ['dialogues'], 'properties': {'dialogues': {
        'type': 'array', 'items': {'type': 'array', 'items': {
            'type': 'object', 'required': ['speaker', 'text'],
            'properties': {'speaker': {'type': 'string'}, 'text': {'type': 'string'}}}}}}},
    'example': {'dialogues': [[{'speaker': 'Ann', 'text': 'I got the job!'},
                               {'speaker': 'Bob', 'text': 'No way!'}]]}}}}


#: The environment variable through which ``dsgdn-pyg serve --workers N`` hands its checked
#: settings to the N processes uvicorn starts (each imports :func:`worker_app`).
WORKER_ENV = 'DSGDN_PYG_SERVE_WORKER'


def worker_options(model: str, settings: Dict[str, Any], device: str,
                   speaker_ids: Optional[Dict[str, int]], api_keys: Optional[List[str]],
                   log_text: bool, quiet: bool, num_threads: int) -> str:
    r"""What one server process needs to build its application (:func:`worker_app`), as the
    JSON of :data:`WORKER_ENV`. The keys travel in the environment of the server's own
    processes, never on a command line."""
    return json.dumps(dict(model=model, settings=settings, device=device,
                           speaker_ids=speaker_ids, api_keys=api_keys, log_text=log_text,
                           quiet=quiet, num_threads=num_threads))


def worker_app() -> Any:
    r"""The application of one of ``--workers N`` server processes (a uvicorn factory): its
    own model, batcher and streamed dialogues, from :data:`WORKER_ENV`."""
    import torch

    from dsgdn_pyg.serve.settings import ServeSettings

    options = json.loads(os.environ[WORKER_ENV])
    torch.set_num_threads(options['num_threads'])
    engine = Engine(options['model'], ServeSettings(**options['settings']), options['device'],
                    options['speaker_ids'])
    engine.warm_up()
    configure_access_log(options['quiet'])
    return create_app(engine, options['api_keys'], options['log_text'])


def create_app(engine: Engine, api_keys: Optional[List[str]] = None,
               log_text: bool = False) -> Any:
    r"""The application serving :obj:`engine` (its settings bound the requests).

    Args:
        engine (Engine): The loaded model.
        api_keys (List[str], optional): Keys for ``Authorization: Bearer``; :obj:`None`: no
            key needed. (default: :obj:`None`)
        log_text (bool): Put the texts of ``/v1/predict`` in the access log.
            (default: :obj:`False`)
    """
    require_serve()
    from fastapi import Depends, FastAPI, Request, WebSocket
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException

    settings = engine.settings
    sockets: Dict[StreamSocket, asyncio.Queue] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher = MicroBatcher(engine.run_batch, settings.max_batch, settings.max_wait_ms,
                               settings.max_queue, size=lambda job: job.size)
        batcher.start()
        app.state.batcher = batcher
        sweeper = asyncio.get_running_loop().create_task(_end_idle(batcher, engine, sockets))
        try:
            yield
        finally:
            sweeper.cancel()
            await batcher.stop()

    app = FastAPI(title='dsgdn-pyg', version=__version__, lifespan=lifespan,
                  description='Emotion recognition in conversation (AMB-DSGDN).')
    app.add_middleware(AccessLog)

    async def refused(request: Request, error: Exception) -> JSONResponse:
        if isinstance(error, HTTPException):  # FastAPI's own: 404, 405
            error = RequestError(error.status_code, str(error.detail), headers=error.headers)
        elif isinstance(error, RequestValidationError):
            error = RequestError(422, '; '.join(str(e.get('msg')) for e in error.errors()))
        elif not isinstance(error, RequestError):  # a bug: uvicorn logs the traceback
            error = RequestError(500, 'the server failed on this request')
        return JSONResponse(error.body(), error.status, headers=error.headers)

    for kind in (RequestError, HTTPException, RequestValidationError, Exception):
        app.add_exception_handler(kind, refused)

    def key(request: Request) -> None:
        if not authorized(request.headers.get('authorization'), api_keys):
            raise RequestError(401, KEY_MESSAGE, headers={'WWW-Authenticate': 'Bearer'})

    @app.get('/healthz')
    async def healthz() -> Dict[str, Any]:
        r"""200 while the model is loaded: the open streamed dialogues and waiting jobs."""
        return {'status': 'ok', 'open_dialogues': len(engine.sessions),
                'waiting': app.state.batcher.waiting}

    @app.get('/v1/model', dependencies=[Depends(key)])
    async def model() -> Dict[str, Any]:
        r"""The labels, modalities, causal or not, text encoder, model card summary and
        the request limits."""
        return engine.info()

    @app.post('/v1/predict', dependencies=[Depends(key)], openapi_extra={
        'requestBody': _PREDICT_BODY})
    async def predict(request: Request) -> JSONResponse:
        r"""Every utterance's label and class probabilities, as ``dsgdn-pyg predict``."""
        body = parse_body(await _read_body(request, settings.max_body_bytes))
        transcripts = predict_transcripts(body, settings)
        request.state.utterances = sum(len(d.utterances) for d in transcripts)
        if log_text:
            request.state.texts = [[u.text for u in d.utterances] for d in transcripts]
        try:
            future = app.state.batcher.submit(PredictJob(transcripts))
        except QueueFull:
            raise RequestError(503, f"the server is busy ({app.state.batcher.waiting} "
                                    f"requests wait); retry shortly",
                               headers={'Retry-After': '1'}) from None
        return JSONResponse(await future)

    @app.websocket('/v1/stream')
    async def stream(websocket: WebSocket) -> None:
        r"""The ``dsgdn-pyg stream`` protocol: one JSON message in, one out."""
        started = time.perf_counter()
        if not authorized(websocket.headers.get('authorization'), api_keys):
            await websocket.close(code=1008, reason='missing or wrong API key')
            return log_line(route='/v1/stream', status=403, utterances=0, latency_ms=0.0)
        await websocket.accept()
        if engine.streaming is None:
            await websocket.send_text(json.dumps(
                {'error': f"this model cannot stream: {engine.stream_error}"}))
            return await websocket.close(code=1003)
        socket = engine.open_socket()
        outbox: asyncio.Queue = asyncio.Queue(settings.max_pipelined)
        sockets[socket] = outbox
        writer = asyncio.get_running_loop().create_task(_write(websocket, outbox))
        try:
            await _read(websocket, socket, outbox, app.state.batcher)
        finally:
            del sockets[socket]
            writer.cancel()
            app.state.batcher.submit(CloseJob(socket), force=True)  # after its last lines
            log_line(route='/v1/stream', status=101, utterances=socket.lines,
                     latency_ms=round(1000 * (time.perf_counter() - started), 2))

    return app


async def _read_body(request: Any, limit: int) -> bytes:
    r"""The body, refused with 413 as soon as it exceeds :obj:`limit` bytes."""
    declared = request.headers.get('content-length', '')
    if declared.isdigit() and int(declared) > limit:
        raise RequestError(413, f"the body has {declared} bytes; the limit is {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(413, f"the body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b''.join(chunks)


async def _read(websocket: Any, socket: StreamSocket, outbox: asyncio.Queue,
                batcher: MicroBatcher) -> None:
    r"""Queues each message's answer (a future) in order, until the client leaves; a full
    outbox stops the reading (back-pressure on a client that does not read its answers)."""
    while True:
        message = await websocket.receive()
        if message['type'] == 'websocket.disconnect':
            return
        text = message.get('text')
        if text is None:
            text = (message.get('bytes') or b'').decode('utf-8', errors='replace')
        socket.lines += 1
        try:
            answer = batcher.submit(PushJob(socket, text, socket.lines))
        except QueueFull:
            answer = _done(line_error(socket.lines, 'the server is busy; send the line '
                                                    'again shortly', None))
        await outbox.put(answer)


async def _write(websocket: Any, outbox: asyncio.Queue) -> None:
    r"""Sends the answers in the order of the lines (none for a blank line). Once the
    client is gone it only empties the outbox, so that the reader is never blocked on it."""
    connected = True
    while True:
        answer = await (await outbox.get())
        if answer is not None and connected:
            try:
                await websocket.send_text(json.dumps(answer))
            except Exception:  # gone: the reader learns it from its next receive
                connected = False


def _done(value: Any) -> asyncio.Future:
    future = asyncio.get_running_loop().create_future()
    future.set_result(value)
    return future


async def _end_idle(batcher: MicroBatcher, engine: Engine,
                    sockets: Dict[StreamSocket, asyncio.Queue]) -> None:
    r"""Every so often, ends the idle dialogues and tells their sockets
    (``{"dialogue": ID, "ended": true, "idle": true}``)."""
    interval = min(1.0, engine.settings.idle_timeout_s / 2)
    while True:
        await asyncio.sleep(interval)
        for socket, dialogue in await batcher.call(engine.sessions.end_idle):
            outbox = sockets.get(socket)
            if outbox is not None and not outbox.full():
                outbox.put_nowait(_done({'dialogue': dialogue, 'ended': True, 'idle': True}))
