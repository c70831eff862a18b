r"""The run folder (``train --out DIR``): one run writes it at a time.

Two runs writing the same folder would mix their files (``metrics.json`` of one seed,
``best.pt`` of the other), so a run holds ``DIR/.lock`` while it writes: a file naming the
owner's process id, locked with :func:`fcntl.flock`. The kernel drops that lock when its
process ends, however it ends, so a lock file left by a killed run is recognised as stale and
taken over (with a message); a lock held by a live run makes the second run stop before it
writes anything.
"""
import contextlib
import fcntl
import os
import socket
from typing import Any, Callable, Iterator, Optional

from dsgdn_pyg.train.checkpoint import CheckpointError
from dsgdn_pyg.train.config import ConfigError

LOCK_NAME = '.lock'


class RunFolderBusy(CheckpointError):
    r"""Another live run holds the run folder's lock."""


def check_run_folder(out: Optional[str]) -> None:
    r"""Raises :class:`~dsgdn_pyg.train.config.ConfigError` (field ``out``) if :obj:`out`
    exists and is not a directory."""
    if out and os.path.exists(out) and not os.path.isdir(out):
        detail = f"{out!r} is a file, not a directory (the run writes best.pt, last.pt, " \
                 f"metrics.json and log.jsonl into it); give a new or existing directory"
        raise ConfigError(f"'out': {detail}", field='out', detail=detail)


def _owner(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    return os.read(fd, 256).decode('utf-8', 'replace').strip()


@contextlib.contextmanager
def run_folder_lock(out: str, echo: Optional[Callable[[str], None]] = None) -> Iterator[str]:
    r"""Creates :obj:`out` if needed and holds its lock for the duration of the block.

    Args:
        out (str): The run folder.
        echo (Callable, optional): Receives the message when a stale lock is taken over.

    Raises:
        ConfigError: If :obj:`out` is a file.
        RunFolderBusy: If a live process holds the lock.
    """
    check_run_folder(out)
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, LOCK_NAME)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _owner(fd)
            os.close(fd)
            raise RunFolderBusy(f"{out!r} is being written by another run (process "
                                f"{owner or '?'}, lock file {path}); wait for it to finish or "
                                f"give another --out") from None
        # The file may have been removed by the owner that just finished (after this open):
        # then the lock is on a file nobody else sees; open the path again.
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        stale = _owner(fd)
        if stale and echo is not None:
            echo(f"taking over the stale lock {path} of process {stale}, which is no longer "
                 f"running")
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"{os.getpid()} on {socket.gethostname()}\n".encode())
        yield path
    finally:
        try:
            os.unlink(path)  # before the lock goes, so that no one locks a removed file
        finally:
            os.close(fd)


@contextlib.contextmanager
def locked_run_folder(out: Optional[str], context: Any,
                      echo: Optional[Callable[[str], None]] = None) -> Iterator[None]:
    r""":func:`run_folder_lock` on the main process of :obj:`context` (a
    :class:`~dsgdn_pyg.train.distributed.DistributedContext`: rank 0 alone writes the folder);
    if it fails, every process fails. Nothing without :obj:`out`."""
    with contextlib.ExitStack() as stack:
        if out:
            with context.agree(f"locking {out}"):
                if context.is_main:
                    stack.enter_context(run_folder_lock(out, echo))
        yield
