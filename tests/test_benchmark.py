import json
import math
import sys

import pytest
import torch
from click.testing import CliRunner
from torch_geometric.data import Batch

from dsgdn_pyg import benchmark as bm
from dsgdn_pyg.cli import main

DIMS = {'t': 12, 'a': 10, 'v': 6}
TINY = dict(num_dialogues=5, batch_size=2, hidden_channels=16, feature_dims=DIMS, window=3)
TINY_CLI = ['--num-dialogues', 4, '--batch-size', 2, '--hidden-channels', 16, '--feature-dims',
            't=12,a=10,v=6', '--window', 3, '--num-threads', 1]


def normal_cdf(x):
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def test_clipped_normal_lengths_follow_the_clipped_distribution():
    lengths = bm.clipped_normal_lengths(20000, 48, 20, 8, 110, seed=1)
    assert len(lengths) == 20000 and all(isinstance(v, int) for v in lengths)
    assert min(lengths) == 8 and max(lengths) == 110
    # Rounding then clipping puts every draw below 8.5 at 8 and every draw >= 109.5 at 110.
    assert lengths.count(8) / 20000 == pytest.approx(normal_cdf((8.5 - 48) / 20), abs=0.004)
    assert lengths.count(110) / 20000 == pytest.approx(1 - normal_cdf((109.5 - 48) / 20),
                                                       abs=0.001)
    below_48 = sum(v < 48 for v in lengths) / 20000  # P(X < 47.5), untouched by clipping
    assert below_48 == pytest.approx(normal_cdf(-0.5 / 20), abs=0.015)
    assert bm.clipped_normal_lengths(20000, 48, 20, 8, 110, seed=1) == lengths
    assert bm.clipped_normal_lengths(20000, 48, 20, 8, 110, seed=2) != lengths


@pytest.mark.parametrize('kwargs, fragment', [
    (dict(num_dialogues=0), "'num_dialogues'"),
    (dict(low=0), "'low'"),
    (dict(low=20, high=10), "'high'"),
])
def test_clipped_normal_lengths_rejects_bad_arguments(kwargs, fragment):
    args = {**dict(num_dialogues=3, mean=48, std=20, low=8, high=110), **kwargs}
    with pytest.raises(ValueError, match=fragment):
        bm.clipped_normal_lengths(**args)


def test_scenarios_have_the_stated_shapes():
    iemocap = bm.make_scenario('iemocap')
    assert len(iemocap.lengths) == 120 and 8 <= min(iemocap.lengths)
    assert max(iemocap.lengths) <= 110
    assert iemocap.lengths == tuple(bm.clipped_normal_lengths(120, 48, 20, 8, 110, 0))
    assert iemocap.feature_dims == {'t': 1024, 'a': 1582, 'v': 342}
    assert (iemocap.hidden_channels, iemocap.window, iemocap.batch_size) == (512, 20, 16)
    assert iemocap.steps == iemocap.num_batches == 8  # 7 batches of 16 and one of 8
    assert iemocap.context_window is None and iemocap.dense_reason is None

    long_400, long_1600 = bm.make_scenario('long-400'), bm.make_scenario('long-1600')
    assert long_400.lengths == (400, ) * 4 and long_400.context_window == 20
    assert long_1600.lengths == (1600, ) * 4 and long_1600.batch_size == 2
    assert long_1600.dense_reason is None

    long_10000 = bm.make_scenario('long-10000')
    assert long_10000.lengths == (10000, ) and long_10000.context_window == 20
    # int64 relation ids of one 10,000 x 10,000 dialogue: 8e8 bytes.
    assert '1×10,000×10,000' in long_10000.dense_reason
    assert '0.80 GB' in long_10000.dense_reason

    small = bm.make_scenario('long-10000', length=30, context_window=5)
    assert small.lengths == (30, ) and small.context_window == 5
    assert small.name == 'long-10000'


@pytest.mark.parametrize('name, overrides, fragment', [
    ('nope', {}, "'name'"),
    ('iemocap', dict(hidden_channels=1), "'hidden_channels'"),
    ('iemocap', dict(window=-1), "'window'"),
    ('iemocap', dict(length=10), "'length'"),
    ('long-400', dict(context_window=-2), "'context_window'"),
    ('long-400', dict(feature_dims={'t': 0}), "'feature_dims'"),
    ('long-400', dict(batch_size=0), "'batch_size'"),
    ('long-400', dict(colour='red'), 'colour'),
])
def test_make_scenario_rejects_bad_overrides(name, overrides, fragment):
    with pytest.raises(ValueError, match=fragment):
        bm.make_scenario(name, **overrides)


def test_scenario_dialogues_are_seeded_and_shaped():
    scenario = bm.make_scenario('iemocap', **TINY)
    dialogues = bm.scenario_dialogues(scenario)
    assert [d.num_nodes for d in dialogues] == list(scenario.lengths)
    for d in dialogues:
        assert set(d.speaker.tolist()) <= {0, 1} and set(d.y.tolist()) <= set(range(6))
        assert {m: getattr(d, f'x_{m}').size(1) for m in DIMS} == DIMS
        assert d.edge_index.size(1) > 0
    again = bm.scenario_dialogues(scenario)
    assert all(torch.equal(a.x_a, b.x_a) for a, b in zip(dialogues, again))
    batches = bm.scenario_batches(scenario, dialogues)
    assert [b.num_graphs for b in batches] == [2, 2, 1]


def test_flop_count_of_a_linear_model_matches_a_hand_count():
    n, f_in, f_out = 7, 5, 3
    lin = torch.nn.Linear(f_in, f_out)
    x = torch.randn(n, f_in, requires_grad=True)
    # Forward x @ W^T, backward dL/dx = g @ W and dL/dW = g^T @ x: three n*f_in*f_out products,
    # 2 FLOPs (multiply, add) per multiply-add.
    assert bm.count_flops(lambda: lin(x).sum().backward()) == 3 * 2 * n * f_in * f_out
    with torch.no_grad():
        assert bm.count_flops(lambda: lin(x)) == 2 * n * f_in * f_out


def test_flop_count_includes_sparse_csr_products():
    dense = torch.tensor([[0., 2., 0.], [1., 0., 3.], [0., 0., 4.]])
    csr = dense.to_sparse_csr()  # 4 stored entries
    x = torch.randn(3, 6)
    assert bm.count_flops(lambda: torch.sparse.mm(csr, x)) == 2 * 4 * 6
    a, b = torch.randn(3, 5), torch.randn(5, 3)
    assert bm.count_flops(lambda: torch.sparse.sampled_addmm(csr, a, b)) == 2 * 4 * 5


def test_linear_shapes_and_gemm_probe():
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8),
                                torch.nn.Linear(8, 8))
    assert bm.linear_shapes(model) == {(4, 8): 1, (8, 8): 2}
    probe = bm.gemm_flops_per_s(16, {(4, 8): 1, (8, 8): 2}, min_seconds=0.01)
    rates = [s['flops_per_s'] for s in probe['gemm_shapes']]
    assert [s['shape'] for s in probe['gemm_shapes']] == [[16, 4, 8], [16, 8, 8]]
    # The model's work (512 + 2 * 1024 FLOPs per round) over the time it takes at each rate.
    expected = (2 * 16 * 4 * 8 + 2 * 2 * 16 * 8 * 8) / (2 * 16 * 4 * 8 / rates[0] +
                                                         2 * 2 * 16 * 8 * 8 / rates[1])
    assert probe['gemm_flops_per_s'] == pytest.approx(expected)
    with pytest.raises(ValueError, match="'num_rows'"):
        bm.gemm_flops_per_s(0, {(4, 8): 1})


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
    assert result['peak_rss_mb'] >= result['rss_at_start_mb'] > 0
    # Useful FLOPs: one count per dialogue (no padding), summed over the timed steps.
    _, sparse = bm.build_model(scenario, 'sparse')
    per_dialogue = [bm.count_flops(lambda d=d: bm.train_step(sparse, Batch.from_data_list(
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

    monkeypatch.setattr(bm.runner, 'run_in_subprocess', in_process)
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
    table = bm.markdown_table([result]).splitlines()
    utterances = sum(bm.clipped_normal_lengths(5, 48, 20, 8, 110, 0))
    assert len(table) == 3 and table[2].startswith(f'| iemocap | {utterances} |')


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

    monkeypatch.setattr(bm.runner, 'run_in_subprocess', fake)
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

    monkeypatch.setattr(bm.runner, 'worker_command', command)
    monkeypatch.setattr(bm.runner, 'run_scenario', None)  # nothing may run in this process
    result = bm.benchmark_scenario('iemocap', impls=['dense'], timeout_s=0.5, **TINY)
    assert 'dense' not in result and 'ratios' not in result
    assert fragment in result['skipped']['dense']


def test_dense_is_not_started_where_it_cannot_run(monkeypatch):
    started = []
    monkeypatch.setattr(bm.runner, 'run_in_subprocess',
                        lambda name, impl, timeout_s=None, **o: started.append(impl) or
                        dict(train_utt_per_s=1.0, infer_ms_per_utt=1.0, peak_rss_mb=1.0,
                             foreign_cpu_fraction=0.0))
    result = bm.benchmark_scenario('long-10000', length=50, **{k: v for k, v in TINY.items()
                                                               if k != 'num_dialogues'})
    assert started == ['sparse'] and 'dense' not in result
    assert result['skipped']['dense'].startswith('B×L×L = 1×50×50')


def test_evaluate_targets():
    results = {
        'iemocap': dict(sparse=dict(train_utt_per_s=1400.0, peak_rss_mb=800.0),
                        ratios=dict(train_speedup=3.0, peak_rss=0.5)),
        'long-400': dict(sparse=dict(train_ms_per_utt=2.0)),
        'long-10000': dict(sparse=dict(train_ms_per_utt=3.2, peak_rss_mb=1500.0)),
    }
    verdicts = {t['target']: (t['value'], t['met']) for t in bm.evaluate_targets(results)}
    assert verdicts['iemocap: sparse train utt/s >= 2.5x dense'] == (3.0, True)
    assert verdicts['iemocap: sparse peak memory <= 0.4x dense'] == (0.5, False)
    assert verdicts['iemocap: sparse peak memory <= 760 MB'] == (800.0, False)
    assert verdicts['long-1600: sparse train utt/s >= 10x dense'] == (None, None)
    assert verdicts['long-10000: train time per utterance <= 1.5x long-400'] == (
        pytest.approx(1.6), False)


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_cli_scenario_json_last_line():
    # One real measuring process, end to end.
    result = invoke('benchmark', '--scenario', 'iemocap', '--impl', 'sparse', *TINY_CLI,
                    '--steps', 1, '--json')
    assert result.exit_code == 0, (result.output, result.stderr)
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data['scenario'] == 'iemocap' and 'dense' not in data
    assert data['num_utterances'] == sum(bm.clipped_normal_lengths(4, 48, 20, 8, 110, 0))
    for key in ('train_utt_per_s', 'infer_ms_per_utt', 'peak_rss_mb', 'gemm_fraction'):
        assert data['sparse'][key] > 0
    assert data['sparse']['num_threads'] == 1 and data['sparse']['train_steps'] == 1
    assert data['sparse']['mmap_threshold'] == 4 << 20  # the command line's setting


def test_worker_applies_the_mmap_threshold(monkeypatch, capsys):
    from dsgdn_pyg.benchmark import __main__ as worker
    import dsgdn_pyg.memory as memory
    applied, received = [], []
    monkeypatch.setattr(memory, 'release_large_allocations', applied.append)
    monkeypatch.setattr(worker, 'run_scenario',
                        lambda name, impl, **options: received.append(options) or {})
    worker._worker_main(['iemocap', 'sparse', json.dumps(dict(steps=1, mmap_threshold=1024))])
    assert applied == [1024] and received == [dict(steps=1)]
    assert json.loads(capsys.readouterr().out) == dict(mmap_threshold=1024)
    sent = []
    monkeypatch.setattr(bm.runner, 'run_in_subprocess',
                        lambda name, impl, timeout_s=None, **o: sent.append(o) or
                        dict(error='stop'))
    bm.benchmark_scenario('iemocap', impls=['sparse'], mmap_threshold=2048, **TINY)
    assert sent[0]['mmap_threshold'] == 2048


@pytest.mark.parametrize('args, fragment', [
    (['--scenario', 'iemocap', '--dataset', 'synthetic-meld'], 'exclude each other'),
    (['--impl', 'dense'], '--impl only apply with --scenario'),
    (['--scenario', 'iemocap', '--hidden-channels', 1], "'hidden_channels'"),
    (['--scenario', 'iemocap', '--feature-dims', 't=x'], "'--feature-dims'"),
    (['--scenario', 'iemocap', '--device', 'cuda'], "'--device'"),
    (['--scenario', 'huge'], "'--scenario'"),
    (['--scenario', 'iemocap', '--repeats', 0], "'--repeats'"),
    (['--repeats', 2], '--repeats only apply with --scenario'),
])
def test_cli_scenario_rejects_bad_options(args, fragment):
    result = invoke('benchmark', *args)
    assert result.exit_code == 2 and 'Traceback' not in result.output
    assert fragment in result.stderr
