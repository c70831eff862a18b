import os
import time

import pytest
import torch

from dsgdn_pyg import profile
from dsgdn_pyg.datasets import load_corpus
from dsgdn_pyg.models import AMBDSGDN
from dsgdn_pyg.train import TrainConfig

DIMS = {'t': 12, 'a': 10, 'v': 6}


def test_flop_count_of_a_linear_model_matches_a_hand_count():
    n, f_in, f_out = 7, 5, 3
    lin = torch.nn.Linear(f_in, f_out)
    x = torch.randn(n, f_in, requires_grad=True)
    # Forward x @ W^T, backward dL/dx = g @ W and dL/dW = g^T @ x: three n*f_in*f_out products,
    # 2 FLOPs (multiply, add) per multiply-add.
    assert profile.count_flops(lambda: lin(x).sum().backward()) == 3 * 2 * n * f_in * f_out
    with torch.no_grad():
        assert profile.count_flops(lambda: lin(x)) == 2 * n * f_in * f_out


def test_flop_count_includes_sparse_csr_products():
    dense = torch.tensor([[0., 2., 0.], [1., 0., 3.], [0., 0., 4.]])
    csr = dense.to_sparse_csr()  # 4 stored entries
    x = torch.randn(3, 6)
    assert profile.count_flops(lambda: torch.sparse.mm(csr, x)) == 2 * 4 * 6
    a, b = torch.randn(3, 5), torch.randn(5, 3)
    assert profile.count_flops(lambda: torch.sparse.sampled_addmm(csr, a, b)) == 2 * 4 * 5


def test_linear_shapes_and_gemm_probe():
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8),
                                torch.nn.Linear(8, 8))
    assert profile.linear_shapes(model) == {(4, 8): 1, (8, 8): 2}
    probe = profile.gemm_flops_per_s(16, {(4, 8): 1, (8, 8): 2}, min_seconds=0.01)
    rates = [s['flops_per_s'] for s in probe['gemm_shapes']]
    assert [s['shape'] for s in probe['gemm_shapes']] == [[16, 4, 8], [16, 8, 8]]
    # The model's work (512 + 2 * 1024 FLOPs per round) over the time it takes at each rate.
    expected = (2 * 16 * 4 * 8 + 2 * 2 * 16 * 8 * 8) / (2 * 16 * 4 * 8 / rates[0] +
                                                         2 * 2 * 16 * 8 * 8 / rates[1])
    assert probe['gemm_flops_per_s'] == pytest.approx(expected)
    with pytest.raises(ValueError, match="'num_rows'"):
        profile.gemm_flops_per_s(0, {(4, 8): 1})


def test_peak_memory_follows_an_allocation():
    before = profile.max_rss_mb()
    block = torch.ones(64 * 2**20 // 4)  # 64 MiB, written so that it is resident
    now = profile.current_rss_mb()
    assert now >= 60
    # Both figures come from one source (/proc/self/status, whose high-water mark folds in the
    # resident memory of the moment), so the peak read after the current value holds it. The
    # 1 MiB of slack is for the kernel's per-CPU batching of the counters both are read from.
    # (ru_maxrss against statm, two sources, broke on a GPU machine: 1847.09 < 1848.34 - 1.)
    assert profile.max_rss_mb() >= before  # a high-water mark never falls
    assert profile.max_rss_mb() >= now - 1
    # The peak counts the block: a process holding it has at least its size at its peak.
    assert profile.max_rss_mb() >= 64
    del block


def test_foreign_cpu_fraction_is_a_share_of_the_cores():
    readings = profile.cpu_readings()
    time.sleep(0.3)
    # /proc/stat counts in clock ticks (10 ms), hence the tolerance.
    assert 0.0 <= profile.foreign_cpu_fraction(*readings) <= 1.1
    # A threshold above any share is met by the first probe.
    start = time.perf_counter()
    profile.wait_until_idle(threshold=100.0, max_wait_s=5, probe_s=0.01)
    assert time.perf_counter() - start < 2


def test_machine_info():
    info = profile.machine_info()
    assert info['cpu_count'] == os.cpu_count() and info['torch'] == torch.__version__
    assert info['num_threads'] == torch.get_num_threads()


def test_benchmark_counts_and_rates_of_a_tiny_run():
    config = TrainConfig(num_dialogues=12, feature_dims=DIMS, hidden_channels=16, window=3,
                         batch_size=4, device='cpu', num_threads=1, quiet=True)
    result = profile.benchmark(config, steps=3, warmup_steps=1)
    corpus = load_corpus('synthetic-iemocap', seed=0, num_dialogues=12, feature_dims=DIMS)
    # Inference: one pass over the test split.
    assert result['inference_utterances'] == sum(d.num_nodes for d in corpus.test)
    # Training: 3 timed batches of 1 to 4 dialogues cycled from the training split.
    lengths = sorted(d.num_nodes for d in corpus.train)
    assert 3 * lengths[0] <= result['train_utterances'] <= 12 * lengths[-1]
    assert result['train_steps'] == 3
    for split in ('train', 'inference'):
        assert result[f'{split}_utterances_per_s'] == pytest.approx(
            result[f'{split}_utterances'] / result[f'{split}_seconds'])
    torch.manual_seed(0)
    model = AMBDSGDN(DIMS, corpus.num_classes, corpus.num_speakers, hidden_channels=16)
    assert result['num_parameters'] == sum(p.numel() for p in model.parameters())
    assert (result['batch_size'], result['window'], result['num_threads']) == (4, 3, 1)


def test_benchmark_rejects_bad_step_counts():
    with pytest.raises(ValueError, match="'steps'"):
        profile.benchmark(TrainConfig(num_dialogues=12, feature_dims=DIMS, hidden_channels=16),
                          steps=0)
