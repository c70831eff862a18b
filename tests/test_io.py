import json
import os

import pytest
import torch

from dsgdn_pyg.io import atomic_torch_save, atomic_write, atomic_write_text


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / 'metrics.json'
    atomic_write_text(path, '{"old": 1}')

    def broken(f):
        f.write(b'{"new": ')
        raise RuntimeError('disk full')

    with pytest.raises(RuntimeError, match='disk full'):
        atomic_write(path, broken)
    assert json.loads(path.read_text()) == {'old': 1}
    assert os.listdir(tmp_path) == ['metrics.json']


def test_writes_create_the_directory_and_replace_the_file(tmp_path):
    path = tmp_path / 'new' / 'dir' / 'x.pt'
    atomic_torch_save({'w': torch.arange(3)}, path)
    assert torch.equal(torch.load(path, weights_only=True)['w'], torch.arange(3))
    atomic_write_text(path, 'text ü')
    assert path.read_text(encoding='utf-8') == 'text ü'
    assert os.listdir(path.parent) == ['x.pt']
    # The usual permissions (0o666 less the umask), not mkstemp's owner-only ones.
    mask = os.umask(0o022)
    os.umask(mask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~mask


class _FullDisk:
    r"""A file on a disk with :obj:`room` bytes left: a longer write fails with ENOSPC, as
    on a full disk (the real file object underneath keeps what was written before)."""
    def __init__(self, raw, room):
        self.raw, self.room = raw, room

    def write(self, data):
        if len(data) > self.room:
            import errno
            raise OSError(errno.ENOSPC, 'No space left on device')
        self.room -= len(data)
        return self.raw.write(data)

    def __getattr__(self, name):
        return getattr(self.raw, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.raw.close()


def full_disk(monkeypatch, room=100):
    r"""Makes every atomic write of dsgdn_pyg.io see a disk with :obj:`room` bytes left."""
    import dsgdn_pyg.io as io_module
    fdopen = os.fdopen
    monkeypatch.setattr(io_module.os, 'fdopen',
                        lambda fd, mode: _FullDisk(fdopen(fd, mode), room))


@pytest.mark.parametrize('save', ['torch', 'text'])
def test_disk_full_says_so_naming_the_file_and_keeps_the_old_one(tmp_path, monkeypatch, save):
    from dsgdn_pyg.io import DiskFullError
    path = tmp_path / 'best.pt'
    atomic_torch_save({'w': torch.arange(3)}, path)
    full_disk(monkeypatch)
    with pytest.raises(DiskFullError) as info:
        if save == 'torch':  # torch.save reports the failed write as "unexpected pos"
            atomic_torch_save({'w': torch.zeros(10_000)}, path)
        else:
            atomic_write_text(path, 'x' * 10_000)
    assert str(info.value).startswith(f"no space left on device while writing {str(path)!r}")
    assert isinstance(info.value, OSError) and info.value.filename == str(path)
    monkeypatch.undo()
    assert torch.equal(torch.load(path, weights_only=True)['w'], torch.arange(3))
    assert os.listdir(tmp_path) == ['best.pt']  # no temporary file left behind


def test_json_lines_skips_blank_lines_and_names_the_bad_one(tmp_path):
    from dsgdn_pyg.io import json_lines
    path = tmp_path / 'x.jsonl'
    path.write_text('{"a": 1}\n\n  \n[2]\n')
    assert list(json_lines(path, 'unused')) == [(1, {'a': 1}), (4, [2])]
    path.write_text('{"a": 1}\n{oops\n')
    with pytest.raises(ValueError, match=r"^x.jsonl@2: Expecting"):
        list(json_lines(path, '{path.name}@{line}: {error}'))
