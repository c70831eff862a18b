r"""Process-level memory settings for long dialogues.

glibc's ``malloc`` serves a freed large block's size from its heap from then on (its mmap
threshold adapts upwards, to 32 MB), and a heap only shrinks from the top. A training step
on a long dialogue frees and reallocates activations of tens of MB in a different order
every pass, so the heap fragments and the resident memory grows well past the live tensors
(measured on a 10,000-utterance step: docs/results.md, "Speed, memory and long dialogues"). A fixed
threshold keeps every large tensor in its own mapping, returned to the system when it is
freed.
"""
import ctypes
import ctypes.util
import sys

#: Allocations of at least this many bytes get their own mapping. Tensors of the IEMOCAP
#: shapes (731 x 1024 floats = 3 MB) stay below it, so short dialogues are unaffected.
DEFAULT_MMAP_THRESHOLD = 4 << 20

_M_MMAP_THRESHOLD = -3  # from glibc's malloc.h


def release_large_allocations(threshold: int = DEFAULT_MMAP_THRESHOLD) -> bool:
    r"""Makes glibc's ``malloc`` serve allocations of at least :obj:`threshold` bytes from
    their own memory mapping and return them to the system when freed (``mallopt
    M_MMAP_THRESHOLD``; the same as setting ``MALLOC_MMAP_THRESHOLD_``), for the whole
    process. The command line calls it at start; call it yourself before training on long
    dialogues from Python.

    Returns :obj:`True` if the setting was applied, :obj:`False` where the C library is not
    glibc (macOS, Windows, musl), where it is a no-op.

    Args:
        threshold (int, optional): Size in bytes. (default: 4 MB)
    """
    if not sys.platform.startswith('linux'):
        return False
    name = ctypes.util.find_library('c') or 'libc.so.6'
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, int(threshold)))
