import atexit
import os
import shutil
import tempfile

import pytest

# matplotlib creates its config directory (~/.config/matplotlib) when it is first imported,
# which may happen while the test modules are collected, before any fixture runs.
if 'MPLCONFIGDIR' not in os.environ:
    os.environ['MPLCONFIGDIR'] = tempfile.mkdtemp(prefix='dsgdn-pyg-tests-mpl-')
    atexit.register(shutil.rmtree, os.environ['MPLCONFIGDIR'], ignore_errors=True)  # no litter
import torch

try:  # the property-based tests: no example database in the checkout, no per-example deadline
    # (a shared machine's load would break a timing limit)
    from hypothesis import settings as _hypothesis_settings
    _hypothesis_settings.register_profile('dsgdn-pyg', database=None, deadline=None)
    _hypothesis_settings.load_profile('dsgdn-pyg')
except ImportError:  # the [test] extra brings it; without it those tests are skipped
    pass


@pytest.fixture(scope='session', autouse=True)
def private_caches(tmp_path_factory):
    """Every cache of the run in a temporary directory, so that a test run writes nothing
    under $HOME: the package's own (datasets, fine-tuned encoders: $DSGDN_PYG_CACHE) and
    matplotlib's font cache and config ($MPLCONFIGDIR). Set in os.environ, so that the
    subprocesses a test starts (the CLI, torchrun) inherit them; a test that sets its own
    (monkeypatch.setenv) still wins for its duration."""
    root = tmp_path_factory.mktemp('caches')
    names = {'DSGDN_PYG_CACHE': root / 'dsgdn-pyg', 'MPLCONFIGDIR': root / 'matplotlib'}
    previous = {name: os.environ.get(name) for name in names}
    for name, path in names.items():
        path.mkdir()
        os.environ[name] = str(path)
    yield root
    for name, value in previous.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture
def one_thread():
    # Tiny models are all per-op overhead: on a shared 2-core machine a second intra-op thread
    # makes every op wait for the other (10-20x slower here).
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope='session')
def tiny_checkpoint(tmp_path_factory):
    """(checkpoint path, its MELD-like corpus directory): one epoch of a tiny model."""
    from tiny_checkpoint import train_tiny

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    directory = tmp_path_factory.mktemp('tiny')
    try:
        return train_tiny(directory), directory / 'meld'
    finally:
        torch.set_num_threads(previous)


def _device_param(name: str):
    if name.startswith('cuda'):
        return pytest.param(name, marks=pytest.mark.skipif(
            not torch.cuda.is_available(), reason='CUDA is not available here (CPU build of '
            'torch or no GPU); benchmarks/gpu_check.sh runs these on a GPU machine'))
    return pytest.param(name)


#: The devices a test that matters on an accelerator runs on: always the CPU, and CUDA, which
#: is skipped with a reason where it is absent. Use the ``device`` fixture, or
#: ``@pytest.mark.parametrize('device', DEVICES)``.
DEVICES = [_device_param('cpu'), _device_param('cuda')]


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    return torch.device(request.param)
