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
