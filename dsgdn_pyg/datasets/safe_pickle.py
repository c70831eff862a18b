r"""Loading feature pickles without running the code they may contain.

A pickle is a program: every ``GLOBAL``/``STACK_GLOBAL`` opcode imports an object and
``REDUCE`` calls it, so :func:`pickle.load` on a file from the internet can run
``os.system``. The community's feature files only need containers, numbers, strings and
numpy arrays, so :class:`RestrictedUnpickler` resolves nothing but an explicit allowlist of
globals; any other name is refused *before* it is imported, hence before anything could be
called.

Most of these files were written by Python 2 (``cPickle``): their byte strings (numpy
buffers among them) load with ``encoding='latin1'``, numpy's documented choice, and their
module names (``__builtin__``, ``copy_reg``) are translated to Python 3's as
:func:`pickle.load` would.
"""
import _compat_pickle
import io
import collections
import importlib
import os
import pickle
from typing import Any, Callable, Dict, Tuple, Union

PathLike = Union[str, os.PathLike]


class UnsafePickleError(ValueError):
    r"""A pickle refers to a global that is not on the allowlist of
    :class:`RestrictedUnpickler`."""


_SAFE_BUILTINS = ('bool', 'bytearray', 'bytes', 'complex', 'dict', 'float', 'frozenset',
                  'int', 'list', 'range', 'set', 'slice', 'str', 'tuple')


def _numpy_core(submodule: str, name: str) -> Callable[[], Any]:
    # numpy 2 renamed ``numpy.core`` to ``numpy._core``; older files name the former, newer
    # files the latter. Resolve both to whichever this numpy has, without touching the
    # deprecated ``numpy.core`` alias when ``numpy._core`` exists.
    def resolve():
        try:
            module = importlib.import_module(f'numpy._core.{submodule}')
        except ImportError:  # numpy < 2
            module = importlib.import_module(f'numpy.core.{submodule}')
        return getattr(module, name)
    return resolve


def _attribute(module: str, name: str) -> Callable[[], Any]:
    return lambda: getattr(importlib.import_module(module), name)


#: ``(module, name)`` -> a function returning the object. Nothing outside this table is
#: ever imported by :class:`RestrictedUnpickler`.
SAFE_GLOBALS: Dict[Tuple[str, str], Callable[[], Any]] = {
    **{('builtins', name): _attribute('builtins', name) for name in _SAFE_BUILTINS},
    ('collections', 'OrderedDict'): lambda: collections.OrderedDict,
    ('collections', 'defaultdict'): lambda: collections.defaultdict,
    ('collections', 'deque'): lambda: collections.deque,
    # Python 3 writes ``bytes`` (numpy buffers) as _codecs.encode(str, 'latin1') under
    # protocols < 3; it only converts a string to bytes.
    ('_codecs', 'encode'): _attribute('_codecs', 'encode'),
    ('numpy', 'ndarray'): _attribute('numpy', 'ndarray'),
    ('numpy', 'dtype'): _attribute('numpy', 'dtype'),
}
for _core in ('numpy.core', 'numpy._core'):
    SAFE_GLOBALS[(f'{_core}.multiarray', '_reconstruct')] = _numpy_core('multiarray',
                                                                         '_reconstruct')
    SAFE_GLOBALS[(f'{_core}.multiarray', 'scalar')] = _numpy_core('multiarray', 'scalar')
    # Arrays pickled with protocol 5 are rebuilt by ``numeric._frombuffer``.
    SAFE_GLOBALS[(f'{_core}.numeric', '_frombuffer')] = _numpy_core('numeric', '_frombuffer')


def _python3_name(module: str, name: str) -> Tuple[str, str]:
    # The translation pickle.Unpickler.find_class applies to Python 2 pickles
    # (``__builtin__.unicode`` -> ``builtins.str`` and the like).
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


class RestrictedUnpickler(pickle.Unpickler):
    r"""A :class:`pickle.Unpickler` that resolves only the globals in :obj:`SAFE_GLOBALS`:
    basic builtin types and collections, and numpy arrays, dtypes and scalars.

    Args:
        file: A binary file object.
        source (str): Name of the file, for error messages. (default: :obj:`'<pickle>'`)
        encoding (str): How Python 2 byte strings are decoded. (default: :obj:`'latin1'`)
    """
    def __init__(self, file, source: str = '<pickle>', encoding: str = 'latin1'):
        super().__init__(file, encoding=encoding)
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        key = _python3_name(module, name)
        if key not in SAFE_GLOBALS:
            raise UnsafePickleError(
                f"{self.source}: refusing to load global '{module}.{name}'; feature pickles "
                f"may only contain builtin containers, numbers, strings and numpy "
                f"arrays/dtypes/scalars (the file was not executed)")
        return SAFE_GLOBALS[key]()

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"{self.source}: refusing persistent id {pid!r}: not a "
                                f"feature pickle, or not a pickle at all (the file was not "
                                f"executed)")


def loads(data: bytes, source: str = '<bytes>', encoding: str = 'latin1') -> Any:
    r"""Like :func:`load`, for a pickle already in memory."""
    return _load(io.BytesIO(data), source, encoding)


def load(path: PathLike, encoding: str = 'latin1') -> Any:
    r"""Unpickles a file through :class:`RestrictedUnpickler`.

    Args:
        path (str): The pickle file.
        encoding (str): How Python 2 byte strings are decoded. (default: :obj:`'latin1'`)

    Raises:
        UnsafePickleError: If the file refers to a global outside :obj:`SAFE_GLOBALS`.
        ValueError: If the file is empty, truncated or not a pickle.
        FileNotFoundError: If there is no such file.
    """
    source = os.fspath(path)
    with open(source, 'rb') as f:
        return _load(f, source, encoding)


def _load(file, source: str, encoding: str) -> Any:
    try:
        return RestrictedUnpickler(file, source=source, encoding=encoding).load()
    except UnsafePickleError:
        raise
    except EOFError:
        raise ValueError(f"{source}: the file is empty or truncated (pickle data ended "
                         f"early)") from None
    except (pickle.UnpicklingError, ValueError, TypeError, IndexError, KeyError,
            AttributeError, UnicodeDecodeError, MemoryError) as e:
        # A corrupt stream surfaces as any of these, depending on where it breaks.
        raise ValueError(f"{source}: not a readable pickle ({type(e).__name__}: {e}); is "
                         f"the file truncated or of another format?") from None


__all__ = ['RestrictedUnpickler', 'SAFE_GLOBALS', 'UnsafePickleError', 'load', 'loads']
