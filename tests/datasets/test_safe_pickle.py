import collections
import os
import pickle
import pickletools

import numpy as np
import pytest

from dsgdn_pyg.datasets import safe_pickle
from dsgdn_pyg.datasets.safe_pickle import UnsafePickleError

from fixtures import python2_array_pickle


class WritesMarker:
    """Unpickling this with the standard unpickler writes a marker file."""
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return os.system, (f'touch {self.path}',)


class OpensFile:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return open, (self.path, 'w')


def globals_in(data: bytes):
    """Every global a pickle stream names (GLOBAL opcode, or STACK_GLOBAL after two strings)."""
    names, strings = [], []
    for opcode, arg, _ in pickletools.genops(data):
        if opcode.name == 'GLOBAL':
            names.append(tuple(arg.split(' ', 1)))
        elif opcode.name == 'STACK_GLOBAL':
            names.append((strings[-2], strings[-1]))
        elif isinstance(arg, str):
            strings.append(arg)
    return names


@pytest.mark.parametrize('protocol', [0, 2, 4, 5])
def test_round_trip_of_feature_like_objects(tmp_path, protocol):
    rng = np.random.default_rng(0)
    obj = (
        {'Ses01F_impro01': [rng.standard_normal(4).astype(np.float32) for _ in range(3)]},
        {'Ses01F_impro01': ['M', 'F', 'M']},
        collections.OrderedDict([(1, [0, 2, 6]), (2, [1])]),
        collections.defaultdict(list, {'a': [1]}),
        {1: np.arange(6, dtype=np.int64).reshape(2, 3), 2: np.float64(2.5), 3: np.int32(7)},
        [{'x', 'y'}, frozenset([1]), (1.5, None, True), b'bytes', bytearray(b'ba'), 3 + 4j,
         range(3), slice(1, 5)],
    )
    path = tmp_path / 'f.pkl'
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    out = safe_pickle.load(path)
    expected = pickle.loads(path.read_bytes())  # the trusted reference
    assert out[1] == expected[1] and out[2] == expected[2] and out[5] == expected[5]
    assert isinstance(out[2], collections.OrderedDict)
    assert isinstance(out[3], collections.defaultdict) and out[3].default_factory is list
    for a, b in zip(out[0]['Ses01F_impro01'], expected[0]['Ses01F_impro01']):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert np.array_equal(out[4][1], expected[4][1]) and out[4][1].dtype == np.int64
    assert out[4][2] == 2.5 and type(out[4][2]) is np.float64
    assert out[4][3] == 7 and type(out[4][3]) is np.int32


def test_python2_pickle_loads_with_latin1():
    data = python2_array_pickle([1.5, 2.0, -3.0])
    # The stream really is Python 2 style: __builtin__ names, numpy.core, a byte str buffer.
    assert ('__builtin__', 'dict') in globals_in(data)
    assert ('numpy.core.multiarray', '_reconstruct') in globals_in(data)
    out = safe_pickle.loads(data)
    assert list(out) == ['Ses01F_impro01']
    assert out['Ses01F_impro01'].dtype == np.float64
    assert out['Ses01F_impro01'].tolist() == [1.5, 2.0, -3.0]


@pytest.mark.parametrize('protocol', [0, 2, 5])
def test_refuses_os_system_and_runs_nothing(tmp_path, protocol):
    marker = tmp_path / 'marker'
    path = tmp_path / 'evil.pkl'
    path.write_bytes(pickle.dumps({'features': [WritesMarker(marker)]}, protocol=protocol))
    # The file really would run os.system under the standard unpickler.
    assert any(name == 'system' for _, name in globals_in(path.read_bytes()))
    with pytest.raises(UnsafePickleError) as info:
        safe_pickle.load(path)
    message = str(info.value)
    assert str(path) in message and 'system' in message
    assert not marker.exists()
    assert isinstance(info.value, ValueError)


def test_refuses_builtins_outside_the_allowlist(tmp_path):
    target = tmp_path / 'created'
    path = tmp_path / 'evil.pkl'
    path.write_bytes(pickle.dumps([OpensFile(target)], protocol=2))
    # open is io.open; Python 3.12 pickles it as '_io.open', earlier ones as 'io.open'.
    with pytest.raises(UnsafePickleError, match=r"'(_?io|builtins|__builtin__)\.open'"):
        safe_pickle.load(path)
    assert not target.exists()
    for name in ('eval', 'exec', 'getattr', '__import__'):
        data = b'\x80\x02c__builtin__\n' + name.encode() + b'\n.'
        with pytest.raises(UnsafePickleError, match=name):
            safe_pickle.loads(data)


def test_refuses_other_modules_and_classes(tmp_path):
    for module, name in [('subprocess', 'Popen'), ('numpy', 'load'), ('numpy.testing', 'assert_'),
                         ('collections', 'namedtuple'), ('torch', 'load'),
                         (__name__, 'WritesMarker')]:
        data = b'\x80\x02c' + module.encode() + b'\n' + name.encode() + b'\n.'
        with pytest.raises(UnsafePickleError, match=f'{module}.{name}'):
            safe_pickle.loads(data, source='x.pkl')


@pytest.mark.parametrize('content', [b'', b'\x80\x02}q\x00(X\x01\x00\x00\x00a',
                                     b'speaker,label\nM,1\n', b'\x89PNG\r\n\x1a\n'])
def test_truncated_or_not_a_pickle(tmp_path, content):
    path = tmp_path / 'broken.pkl'
    path.write_bytes(content)
    # Garbage may stop at any opcode (a PNG starts with PERSID); all that matters is a
    # ValueError that names the file.
    with pytest.raises(ValueError, match='broken.pkl'):
        safe_pickle.load(path)


def test_truncated_real_feature_pickle(tmp_path):
    data = pickle.dumps({'Ses01F_impro01': np.zeros((3, 4))}, protocol=2)
    for cut in (len(data) // 3, len(data) - 1):
        path = tmp_path / f'cut{cut}.pkl'
        path.write_bytes(data[:cut])
        with pytest.raises(ValueError, match=f'cut{cut}.pkl.*(truncated|not a readable)'):
            safe_pickle.load(path)
