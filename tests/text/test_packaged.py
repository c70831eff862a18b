"""The packaged encoders: the mpnet archive, cut into pieces across five wheels, read as one
stream and unpacked once into the cache (synthetic pieces, then the real wheels where the
[mpnet] extra is installed), and the error that names the missing extra."""
import hashlib
import io
import os
import random
import zipfile
from importlib import metadata

import numpy as np
import pytest

from dsgdn_pyg.text import packaged
from dsgdn_pyg.text.packaged import _Pieces, mpnet_path, packaged_path


def _cut(data: bytes, sizes, folder):
    paths, start = [], 0
    for i, size in enumerate(sizes):
        path = folder / f'archive.zip.{i + 1:03d}'
        path.write_bytes(data[start:start + size])
        paths.append(os.fspath(path))
        start += size
    return paths


def test_pieces_read_as_their_concatenation(tmp_path):
    rng = random.Random(0)
    data = bytes(rng.getrandbits(8) for _ in range(10_000))
    paths = _cut(data, [3_000, 1, 4_999, 2_000], tmp_path)
    reference = io.BytesIO(data)  # independent: the pieces joined in memory
    with _Pieces(paths) as stream:
        for _ in range(300):
            whence = rng.choice([io.SEEK_SET, io.SEEK_CUR, io.SEEK_END])
            offset = rng.randrange(-12_000, 12_000) if whence != io.SEEK_SET else \
                rng.randrange(0, 12_000)
            expected_pos = max(0, {io.SEEK_SET: 0, io.SEEK_CUR: reference.tell(),
                                   io.SEEK_END: len(data)}[whence] + offset)
            reference.seek(expected_pos)
            assert stream.seek(offset, whence) == expected_pos
            n = rng.randrange(0, 6_000)
            assert stream.read(n) == reference.read(n)  # across piece boundaries
            assert stream.tell() == reference.tell()


def _fake_mpnet(tmp_path, monkeypatch, files):
    buffer = io.BytesIO()
    # Stored, as the real archive's weights are: damage is found by the CRCs.
    with zipfile.ZipFile(buffer, 'w', zipfile.ZIP_STORED) as archive:
        archive.writestr('all-mpnet-base-v2/', '')
        for name, content in files.items():
            archive.writestr(f'all-mpnet-base-v2/{name}', content)
    data = buffer.getvalue()
    third = len(data) // 3
    pieces = tmp_path / 'wheels'
    pieces.mkdir()
    # Five pieces, an empty and a one-byte one among them.
    paths = _cut(data, [third, third, 0, 1, len(data) - 2 * third - 1], pieces)
    parts = dict(zip(packaged.MPNET_PARTS, paths))
    monkeypatch.setattr(packaged, 'mpnet_version', lambda: '9.9.9')
    monkeypatch.setattr(packaged, '_part_path', parts.__getitem__)
    return paths


FILES = {'modules.json': b'[]', '1_Pooling/config.json': b'{"pooling_mode_mean_tokens": true}',
         'model.safetensors': os.urandom(200_000), 'desktop.ini': b'[.ShellClassInfo]'}


def test_mpnet_unpacks_once_into_the_cache(tmp_path, monkeypatch):
    _fake_mpnet(tmp_path, monkeypatch, FILES)
    root = tmp_path / 'cache'
    path = mpnet_path(os.fspath(root))
    assert path == os.fspath(root / 'packaged-models' / 'all-mpnet-base-v2-9.9.9')
    for name, content in FILES.items():  # every file of the archive's folder, as it is
        with open(os.path.join(path, *name.split('/')), 'rb') as f:
            assert f.read() == content
    assert os.listdir(root / 'packaged-models') == ['all-mpnet-base-v2-9.9.9']  # no scratch

    def no_second_unpacking(name):
        raise AssertionError(f'the pieces were read again ({name})')
    monkeypatch.setattr(packaged, '_part_path', no_second_unpacking)
    assert mpnet_path(os.fspath(root)) == path


def test_a_damaged_piece_leaves_nothing_behind(tmp_path, monkeypatch):
    paths = _fake_mpnet(tmp_path, monkeypatch, FILES)
    with open(paths[1], 'r+b') as f:  # zero bytes inside the weights
        f.seek(os.path.getsize(paths[1]) // 2)
        f.write(b'\x00' * 64)
    root = tmp_path / 'cache'
    with pytest.raises(ValueError, match=r'damaged.*CRC.*--force-reinstall'):
        mpnet_path(os.fspath(root))
    assert os.listdir(root / 'packaged-models') == []


def test_missing_mpnet_extra_says_what_to_install(monkeypatch):
    def absent(name):
        raise metadata.PackageNotFoundError(name)
    monkeypatch.setattr(packaged.metadata, 'version', absent)
    with pytest.raises(ImportError, match=r'pip install dsgdn-pyg\[mpnet\]'):
        packaged_path('mpnet')
    with pytest.raises(ValueError, match='not a packaged encoder'):
        packaged_path('roberta')


def _mpnet_installed():
    try:
        metadata.version(packaged.MPNET_PARTS[0])
    except metadata.PackageNotFoundError:
        return False
    return True


@pytest.mark.skipif(not _mpnet_installed(), reason='the [mpnet] extra is not installed')
@pytest.mark.usefixtures('one_thread')
def test_real_mpnet_wheels(tmp_path, monkeypatch):
    pytest.importorskip('sentence_transformers', reason='the [text] extra is not installed')
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    path = mpnet_path(os.fspath(tmp_path))
    # Independent of the stream: the five pieces joined in memory, opened by zipfile.
    joined = bytearray()
    for distribution in packaged.MPNET_PARTS:
        with open(packaged._part_path(distribution), 'rb') as f:
            joined += f.read()
    with zipfile.ZipFile(io.BytesIO(joined)) as archive:
        expected = hashlib.sha256(archive.read('all-mpnet-base-v2/model.safetensors'))
    del joined
    with open(os.path.join(path, 'model.safetensors'), 'rb') as f:
        assert hashlib.sha256(f.read()).hexdigest() == expected.hexdigest()

    from sentence_transformers import SentenceTransformer

    from dsgdn_pyg.text import SentenceEncoder
    monkeypatch.setenv('DSGDN_PYG_CACHE', os.fspath(tmp_path))
    sentences = ['Oh my God, you are kidding!', 'okay']
    reference = SentenceTransformer(path, device='cpu')
    reference.max_seq_length = 48
    encoder = SentenceEncoder('mpnet', max_seq_length=48)
    out = encoder.embed(sentences)
    assert out.shape == (2, 768)
    # Same weights, same inputs: equal up to float32 summation order.
    np.testing.assert_allclose(out, reference.encode(sentences, convert_to_numpy=True),
                               atol=1e-5)
