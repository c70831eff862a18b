import pytest
import torch


@pytest.fixture
def one_thread():
    # Tiny models are all per-op overhead: on a shared 2-core machine a second intra-op thread
    # makes every op wait for the other (10-20x slower here).
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
