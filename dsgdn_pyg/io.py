r"""Atomic file writes and the cache root, shared by the dataset cache, the text encoders
and the trainer.

Every file is written to a temporary file in the target directory and moved into place with
:func:`os.replace`, so a reader never sees a half-written file, even after a crash.
"""
import errno
import hashlib
import io
import json
import os
import struct
import tempfile
from typing import Any, Callable, Dict, Iterator, Mapping, Optional, Tuple, Union

import torch

PathLike = Union[str, os.PathLike]
CACHE_ENV = 'DSGDN_PYG_CACHE'


def default_cache_root() -> str:
    r"""``$DSGDN_PYG_CACHE`` if set, else ``~/.cache/dsgdn-pyg``."""
    return os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser('~'), '.cache',
                                                      'dsgdn-pyg')


def parse_json(text: str) -> Any:
    r""":func:`json.loads`, whose every failure is a :class:`ValueError`: a document nested
    too deeply for the parser (100,000 ``[``: a :class:`RecursionError`, which would end a
    live stream) included."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def json_lines(path: PathLike, invalid: str, encoding: str = 'utf-8') -> Iterator[Tuple[int, Any]]:
    r"""``(line number, value)`` for each non-blank line of the JSON-lines file :obj:`path`;
    a line that is no JSON raises :class:`ValueError` with :obj:`invalid` formatted with
    ``path``, ``line`` and ``error`` (each reader words its own message)."""
    with open(path, encoding=encoding) as f:
        for number, text in enumerate(f, start=1):
            if not text.strip():
                continue
            try:
                value = parse_json(text)
            except ValueError as e:
                raise ValueError(invalid.format(path=path, line=number, error=e)) from None
            yield number, value


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
    f = None
    try:
        # mkstemp creates the file readable by the owner only; give it the usual permissions.
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, 'wb') as raw:
            f = _WriteErrors(raw)
            write(f)  # type: ignore[arg-type]
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        error = f.error if f is not None and f.error is not None else e
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            raise DiskFullError(path) from None
        if error is not e:  # torch.save reports a failed write as a RuntimeError
            raise error from None
        raise


class DiskFullError(OSError):
    r"""A write that ran out of space; the file it was to replace is unchanged."""
    def __init__(self, path: str):
        super().__init__(errno.ENOSPC, f"no space left on device while writing {path!r} "
                         f"(nothing was replaced; free some space and run again)", path)

    def __str__(self) -> str:
        return self.strerror


class _WriteErrors:
    r"""A binary file that remembers the :class:`OSError` of a failed write: :func:`torch.save`
    turns it into a ``RuntimeError: ... unexpected pos`` that does not say the disk is full."""
    def __init__(self, raw: io.BufferedWriter):
        self.raw = raw
        self.error: Optional[OSError] = None

    def write(self, data) -> int:
        try:
            return self.raw.write(data)
        except OSError as e:
            self.error = e
            raise

    def __getattr__(self, name: str):
        return getattr(self.raw, name)


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


# The safetensors format (https://huggingface.co/docs/safetensors), written and read here so
# that a model folder needs no package beyond torch: an 8-byte little-endian header length,
# a JSON header {name: {dtype, shape, data_offsets}}, then the raw little-endian bytes.
_SAFETENSORS_DTYPES = {
    torch.float64: 'F64', torch.float32: 'F32', torch.float16: 'F16', torch.bfloat16: 'BF16',
    torch.int64: 'I64', torch.int32: 'I32', torch.int16: 'I16', torch.int8: 'I8',
    torch.uint8: 'U8', torch.bool: 'BOOL',
}
_SAFETENSORS_TYPES = {name: dtype for dtype, name in _SAFETENSORS_DTYPES.items()}


def safetensors_bytes(tensors: Mapping[str, torch.Tensor],
                      metadata: Optional[Mapping[str, str]] = None) -> bytes:
    r"""The safetensors encoding of :obj:`tensors` (CPU copies; shared storage is fine)."""
    header: Dict[str, Any] = {'__metadata__': dict(metadata)} if metadata else {}
    chunks, offset = [], 0
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        if tensor.dtype not in _SAFETENSORS_DTYPES:
            raise ValueError(f"tensor {name!r} has dtype {tensor.dtype}, which safetensors "
                             f"cannot hold")
        data = tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() \
            else b''
        header[name] = {'dtype': _SAFETENSORS_DTYPES[tensor.dtype],
                        'shape': list(tensor.shape),
                        'data_offsets': [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    encoded = json.dumps(header, separators=(',', ':')).encode('utf-8')
    encoded += b' ' * (-len(encoded) % 8)  # the format aligns the data to 8 bytes
    return struct.pack('<Q', len(encoded)) + encoded + b''.join(chunks)


def read_safetensors(path: PathLike) -> Dict[str, torch.Tensor]:
    r"""The tensors of a safetensors file (no code runs: the format holds only numbers).

    Raises:
        ValueError: The file is truncated or not safetensors (naming it).
    """
    path = os.fspath(path)
    with open(path, 'rb') as f:
        data = f.read()
    try:
        (length,) = struct.unpack('<Q', data[:8])
        header = json.loads(data[8:8 + length].decode('utf-8'))
        body = memoryview(data)[8 + length:]
        out = {}
        for name, entry in header.items():
            if name == '__metadata__':
                continue
            start, stop = entry['data_offsets']
            if stop > len(body):
                raise ValueError('truncated')
            dtype = _SAFETENSORS_TYPES[entry['dtype']]
            flat = torch.frombuffer(bytearray(body[start:stop]), dtype=torch.uint8) \
                if stop > start else torch.zeros(0, dtype=torch.uint8)
            out[name] = flat.view(dtype).reshape(entry['shape'])
    except (struct.error, ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not a readable safetensors file ({e})") from None
    return out
