r"""A live service: ``dsgdn-pyg serve --model DIR`` answers predictions over HTTP and streams
over a WebSocket, for many conversations at once, on FastAPI and uvicorn (the ``[serve]``
extra).

:mod:`~dsgdn_pyg.serve.settings` declares the server's settings and reads its keys,
:mod:`~dsgdn_pyg.serve.limits` checks what a request brings, :mod:`~dsgdn_pyg.serve.access`
checks keys and writes the access log,
:mod:`~dsgdn_pyg.serve.batching` gathers concurrent work into one forward pass on one worker
thread, :mod:`~dsgdn_pyg.serve.sessions` keeps the streamed dialogues' state (bounded, freed
when idle), :mod:`~dsgdn_pyg.serve.engine` runs a batch with the loaded model, and
:mod:`~dsgdn_pyg.serve.app` is the FastAPI application. Nothing here is imported by the rest
of the package, and FastAPI is imported only when a server is made.
"""
import importlib.util

SERVE_EXTRA = 'pip install "dsgdn-pyg[serve]"'


def require_serve() -> None:
    r"""Raises :class:`ImportError` with one line naming the extra to install when FastAPI,
    uvicorn or websockets is missing."""
    missing = [name for name in ('fastapi', 'uvicorn', 'websockets')
               if importlib.util.find_spec(name) is None]
    if missing:
        raise ImportError(f"the server needs {', '.join(missing)}: {SERVE_EXTRA}")
