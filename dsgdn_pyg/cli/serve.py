r"""``dsgdn-pyg serve``: the model behind HTTP and a WebSocket (:mod:`dsgdn_pyg.serve`)."""
import os
import signal
from typing import Any, Optional

import click

from dsgdn_pyg.cli.options import blame, chosen_model, model_options, user_errors
from dsgdn_pyg.cli.stream import parse_speaker_ids
from dsgdn_pyg.serve.settings import ServeSettings, read_api_keys, setting_fields


def settings_options(func):
    r"""Decorator: one option per :class:`~dsgdn_pyg.serve.settings.ServeSettings` field
    (``max_batch`` is ``--max-batch``), typed and bounded by its declaration."""
    for f in reversed(setting_fields()):
        low = f.metadata['minimum']
        kind = click.IntRange(min=low) if f.type in (int, 'int') else click.FloatRange(min=low)
        func = click.option('--' + f.name.replace('_', '-'), f.name, type=kind,
                            default=f.default, show_default=True,
                            help=f.metadata['help'])(func)
    return func


@click.command()
@model_options
@click.option('--host', default='127.0.0.1', show_default=True,
              help='Address to listen on (0.0.0.0: every interface).')
@click.option('--port', default=8000, show_default=True, type=click.IntRange(0, 65535),
              help='Port to listen on.')
@click.option('--api-key-file', metavar='FILE',
              help='Keys, one per line: every route but /healthz then needs '
                   '"Authorization: Bearer <key>". [default: no key needed]')
@settings_options
@click.option('--speaker-ids', metavar='NAME=ID,...',
              help='Fixed speaker ids of streamed dialogues (as `dsgdn-pyg stream`).')
@click.option('--device', default='cpu', show_default=True, metavar='auto|cpu|cuda',
              help='Device.')
@click.option('--num-threads', default=1, show_default=True, type=click.IntRange(min=1),
              help='CPU threads of PyTorch (its one worker thread runs every forward pass).')
@click.option('--workers', default=1, show_default=True, type=click.IntRange(min=1),
              help='Server processes, each with its own model, batcher and streamed '
                   'dialogues (a WebSocket stays with one); more use more cores and memory.')
@click.option('--log-text', is_flag=True,
              help='Put the texts of /v1/predict requests in the access log.')
@click.option('--quiet', is_flag=True, help='No access log, only warnings and errors.')
@user_errors
def serve(checkpoint: Optional[str], model_dir: Optional[str], host: str, port: int,
          api_key_file: Optional[str], speaker_ids: Optional[str], device: str,
          num_threads: int, workers: int, log_text: bool, quiet: bool, **values: Any):
    r"""Serve a model over HTTP and WebSocket: POST /v1/predict (as `predict`), WebSocket
    /v1/stream (as `stream`), GET /v1/model, GET /healthz; the API at /docs.

    Concurrent requests share forward passes (--max-batch, --max-wait-ms); SIGTERM finishes
    the requests in flight and exits 0.
    """
    from dsgdn_pyg.serve import require_serve

    with blame(errors=(ImportError,)):
        require_serve()
    model = chosen_model(checkpoint, model_dir)
    fixed = parse_speaker_ids(speaker_ids)
    with blame(prefix=f"cannot read {api_key_file!r}", errors=(OSError,)):
        with blame('--api-key-file'):
            keys = read_api_keys(api_key_file)
    import torch
    import uvicorn

    from dsgdn_pyg.serve.access import configure_access_log
    from dsgdn_pyg.serve.app import create_app
    from dsgdn_pyg.serve.engine import Engine
    from dsgdn_pyg.train.checkpoint import CheckpointError

    torch.set_num_threads(num_threads)
    settings = ServeSettings(**values)
    options = dict(host=host, port=port, log_level='warning' if quiet else 'info',
                   access_log=False, ws_max_size=settings.max_body_bytes,
                   limit_concurrency=settings.max_connections, timeout_graceful_shutdown=30)
    if workers > 1:
        # Each process builds its own engine (worker_app); the model is checked here first,
        # so that a bad one is one error line, not one traceback per process.
        from dsgdn_pyg.inference.model_folder import load_payload, resolve_model_path
        from dsgdn_pyg.serve.app import WORKER_ENV, worker_options

        model = resolve_model_path(model)
        load_payload(model)
        os.environ[WORKER_ENV] = worker_options(model, values, device, fixed, keys,
                                                log_text, quiet, num_threads)
        # uvicorn's supervisor ends its processes on SIGTERM (each drains) and returns.
        uvicorn.run('dsgdn_pyg.serve.app:worker_app', factory=True, workers=workers,
                    **options)
        return
    with blame('--speaker-ids', unless=(CheckpointError,)):
        engine = Engine(model, settings, device, fixed)
    engine.warm_up()
    configure_access_log(quiet)
    server = uvicorn.Server(uvicorn.Config(create_app(engine, keys, log_text), **options))
    # uvicorn drains on SIGTERM, then raises the signal again for the handler it found:
    # this one lets the command end normally (exit status 0) instead of being killed.
    signal.signal(signal.SIGTERM, lambda *_: None)
    server.run()
    if not server.started:
        raise click.ClickException(f"could not serve on {host}:{port} (see above)")
