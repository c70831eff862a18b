import json
import sys

import pytest
from torch_geometric.data import Batch

from benchmarks import scenario_runner as bm
from benchmarks import scenario_runner as runner
from dsgdn_pyg.profile import count_flops

DIMS = {'t': 12, 'a': 10, 'v': 6}
TINY = dict(num_dialogues=5, batch_size=2, hidden_channels=16, feature_dims=DIMS, window=3)


def test_run_scenario_counts_the_timed_batches():
    scenario = bm.make_scenario('iemocap', **TINY)
    result = bm.run_scenario('iemocap', 'sparse', steps=4, warmup_steps=1, num_threads=1,
                             gemm_min_seconds=0.005, **TINY)
    lengths = scenario.lengths
    batch_sizes = [sum(lengths[0:2]), sum(lengths[2:4]), lengths[4]]
    # 3 batches; warm-up on batch 0, then batches 1, 2, 0, 1.
    timed = [1, 2, 0, 1]
    assert result['train_utterances'] == sum(batch_sizes[i] for i in timed)
    assert result['infer_utterances'] == sum(lengths)
    assert result['train_utt_per_s'] == pytest.approx(result['train_utterances'] /
                                                      result['train_seconds'])
    # The kernel's high-water mark folds in per-CPU batched counters (a fraction of a MiB of
    # slack; 0.13 MiB seen): the peak holds the start within that.
    assert result['peak_rss_mb'] >= result['rss_at_start_mb'] - 1 > 0
    # The resident memory after the warm-up step (it can fall: freed pages go back) is
    # under the peak, which the growing part is measured up to.
    assert result['peak_rss_mb'] >= result['rss_fixed_mb'] - 1
    assert result['rss_growing_mb'] == pytest.approx(result['peak_rss_mb'] -
                                                     result['rss_fixed_mb'])
    # Useful FLOPs: one count per dialogue (no padding), summed over the timed steps.
    _, sparse = bm.build_model(scenario, 'sparse')
    per_dialogue = [count_flops(lambda d=d: bm.train_step(sparse, Batch.from_data_list(
        [d]), None)) for d in bm.scenario_dialogues(scenario)]
    per_batch = [sum(per_dialogue[0:2]), sum(per_dialogue[2:4]), per_dialogue[4]]
    assert result['useful_flops'] == sum(per_batch[i] for i in timed)
    assert result['gemm_fraction'] == pytest.approx(result['useful_flops_per_s'] /
                                                    result['gemm_flops_per_s'])
    with pytest.raises(ValueError, match='dense cannot run'):
        bm.run_scenario('long-10000', 'dense', length=20, hidden_channels=16,
                        feature_dims=DIMS, context_window=None)


def test_benchmark_scenario_combines_both_implementations(monkeypatch):
    calls = []

    def in_process(name, impl, timeout_s=None, **options):
        calls.append((impl, options['flops']))
        return bm.run_scenario(name, impl, gemm_min_seconds=0.005, **options)

    monkeypatch.setattr(runner, 'measure_in_subprocess', in_process)
    result = bm.benchmark_scenario('iemocap', steps=1, num_threads=1, **TINY)
    assert calls == [('sparse', True), ('dense', False)]  # dense reuses sparse's FLOP count
    sparse, dense = result['sparse'], result['dense']
    assert result['skipped'] == {}
    assert result['ratios']['train_speedup'] == pytest.approx(sparse['train_utt_per_s'] /
                                                              dense['train_utt_per_s'])
    assert result['ratios']['peak_rss'] == pytest.approx(sparse['peak_rss_mb'] /
                                                         dense['peak_rss_mb'])
    assert dense['useful_flops_per_s'] == pytest.approx(sparse['useful_flops_per_utt'] *
                                                        dense['train_utt_per_s'])
    assert 'iemocap' in bm.format_scenario_result(result)


def test_repeats_alternate_and_report_the_median_run(monkeypatch):
    calls = []
    rates = {'sparse': iter([30.0, 10.0, 20.0]), 'dense': iter([5.0, 7.0, 6.0])}

    def fake(name, impl, timeout_s=None, **options):
        calls.append((impl, options['flops']))
        rate = next(rates[impl])
        record = dict(train_utt_per_s=rate, infer_ms_per_utt=1.0 / rate, peak_rss_mb=rate,
                      train_seconds=100.0 / rate, foreign_cpu_fraction=0.0)
        if options['flops']:
            record.update(useful_flops=1000.0, useful_flops_per_utt=10.0,
                          gemm_flops_per_s=50.0)
        return record

    monkeypatch.setattr(runner, 'measure_in_subprocess', fake)
    result = bm.benchmark_scenario('iemocap', repeats=3, **TINY)
    assert calls == [('sparse', True), ('dense', False)] + [('sparse', False),
                                                           ('dense', False)] * 2
    sparse, dense = result['sparse'], result['dense']
    assert sparse['train_utt_per_s'] == 20.0 and dense['train_utt_per_s'] == 6.0
    assert sparse['train_utt_per_s_runs'] == [30.0, 10.0, 20.0] and sparse['runs'] == 3
    assert sparse['useful_flops_per_s'] == pytest.approx(1000.0 / 5.0)  # the median run's time
    assert sparse['gemm_fraction'] == pytest.approx(200.0 / 50.0)
    assert result['ratios']['train_speedup'] == pytest.approx(20.0 / 6.0)
    assert 'median of 3 runs, 10.0..30.0' in bm.format_scenario_result(result)
    with pytest.raises(ValueError, match="'repeats'"):
        bm.benchmark_scenario('iemocap', repeats=0, **TINY)


@pytest.mark.parametrize('code, fragment', [
    ('import os, signal; os.kill(os.getpid(), signal.SIGKILL)',
     'killed by SIGKILL (out of memory?)'),
    ('import sys; sys.stderr.write("Traceback\\nMemoryError: dense too big\\n"); sys.exit(1)',
     'exit status 1: MemoryError: dense too big'),
    ('print("no json here")', 'no JSON result'),
    ('import time; time.sleep(30)', 'timed out after 0.5 s'),
])
def test_failed_process_is_reported_absent_with_its_reason(monkeypatch, code, fragment):
    def command(name, impl, options):
        return [sys.executable, '-c', code if impl == 'dense' else 'print("{}")']

    monkeypatch.setattr(runner, 'worker_command', command)
    monkeypatch.setattr(runner, 'run_scenario', None)  # nothing may run in this process
    result = bm.benchmark_scenario('iemocap', impls=['dense'], timeout_s=0.5, **TINY)
    assert 'dense' not in result and 'ratios' not in result
    assert fragment in result['skipped']['dense']


def test_dense_is_not_started_where_it_cannot_run(monkeypatch):
    started = []
    monkeypatch.setattr(runner, 'measure_in_subprocess',
                        lambda name, impl, timeout_s=None, **o: started.append(impl) or
                        dict(train_utt_per_s=1.0, infer_ms_per_utt=1.0, peak_rss_mb=1.0,
                             foreign_cpu_fraction=0.0))
    result = bm.benchmark_scenario('long-10000', length=50, **{k: v for k, v in TINY.items()
                                                               if k != 'num_dialogues'})
    assert started == ['sparse'] and 'dense' not in result
    assert result['skipped']['dense'].startswith('B×L×L = 1×50×50')


def test_worker_applies_the_mmap_threshold(monkeypatch, capsys):
    from benchmarks import scenario_runner as worker
    import dsgdn_pyg.memory as memory
    applied, received = [], []
    monkeypatch.setattr(memory, 'release_large_allocations', applied.append)
    monkeypatch.setattr(worker, 'run_scenario',
                        lambda name, impl, **options: received.append(options) or {})
    worker._worker_main(['iemocap', 'sparse', json.dumps(dict(steps=1, mmap_threshold=1024))])
    assert applied == [1024] and received == [dict(steps=1)]
    assert json.loads(capsys.readouterr().out) == dict(mmap_threshold=1024)
    sent = []
    monkeypatch.setattr(runner, 'measure_in_subprocess',
                        lambda name, impl, timeout_s=None, **o: sent.append(o) or
                        dict(error='stop'))
    bm.benchmark_scenario('iemocap', impls=['sparse'], mmap_threshold=2048, **TINY)
    assert sent[0]['mmap_threshold'] == 2048
