r"""Atomic file writes and the cache root, shared by the dataset cache, the text encoders
and the trainer.

Every file is written to a temporary file in the target directory and moved into place with
:func:`os.replace`, so a reader never sees a half-written file, even after a crash.
"""
import hashlib
import io
import os
import tempfile
from typing import Any, Callable, Union

import torch

PathLike = Union[str, os.PathLike]
CACHE_ENV = 'DSGDN_PYG_CACHE'


def default_cache_root() -> str:
    r"""``$DSGDN_PYG_CACHE`` if set, else ``~/.cache/dsgdn-pyg``."""
    return os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser('~'), '.cache',
                                                      'dsgdn-pyg')


def file_digest(path: PathLike) -> str:
    r"""SHA-256 of a file's content (hex)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def atomic_write(path: PathLike, write: Callable[[io.BufferedWriter], None]) -> None:
    r"""Calls :obj:`write` on a binary file that becomes :obj:`path` only once complete.

    The temporary file lives in the same directory (so :func:`os.replace` is atomic), which
    is created if needed, and is removed if :obj:`write` fails.

    Args:
        path (str): Destination.
        write (Callable): Receives the open binary file object.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f'.{os.path.basename(path)}.',
                               suffix='.tmp')
    try:
        # mkstemp creates the file readable by the owner only; give it the usual permissions.
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, 'wb') as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_text(path: PathLike, text: str) -> None:
    r"""Writes :obj:`text` (UTF-8) to :obj:`path` atomically."""
    atomic_write(path, lambda f: f.write(text.encode('utf-8')))


def atomic_torch_save(obj: Any, path: PathLike) -> None:
    r""":func:`torch.save` of :obj:`obj` to :obj:`path`, atomically."""
    atomic_write(path, lambda f: torch.save(obj, f))
