import pytest

from benchmarks.train_throughput import COLUMNS, evaluate_targets
from benchmarks.common import markdown_table


def test_evaluate_targets():
    results = {
        'iemocap': dict(sparse=dict(train_utt_per_s=1400.0, peak_rss_mb=800.0),
                        ratios=dict(train_speedup=3.0, peak_rss=0.5)),
        'long-400': dict(sparse=dict(train_ms_per_utt=2.0)),
        'long-10000': dict(sparse=dict(train_ms_per_utt=3.2, peak_rss_mb=1500.0)),
    }
    verdicts = {t['target']: (t['value'], t['met']) for t in evaluate_targets(results)}
    assert verdicts['iemocap: sparse train utt/s >= 2.5x dense'] == (3.0, True)
    assert verdicts['iemocap: sparse peak memory <= 0.4x dense'] == (0.5, False)
    assert verdicts['iemocap: sparse peak memory <= 760 MB'] == (800.0, False)
    assert verdicts['long-1600: sparse train utt/s >= 10x dense'] == (None, None)
    assert verdicts['long-10000: train time per utterance <= 1.5x long-400'] == (
        pytest.approx(1.6), False)


def test_results_table_has_one_row_per_scenario():
    result = dict(scenario='iemocap', num_utterances=1234,
                  sparse=dict(train_utt_per_s=1500.0, peak_rss_mb=700.0, gemm_fraction=0.1234),
                  ratios=dict(train_speedup=3.0))
    table = markdown_table([result], COLUMNS).splitlines()
    assert len(table) == 3 and table[1] == '|' + '---|' * len(COLUMNS)
    cells = [c.strip() for c in table[2].strip('|').split('|')]
    by_name = dict(zip([name for name, _ in COLUMNS], cells))
    assert by_name['scenario'] == 'iemocap' and by_name['utterances'] == '1,234'
    assert by_name['sparse train utt/s'] == '1,500.0' and by_name['dense train utt/s'] == '-'
    assert by_name['train speed-up'] == '3.00x' and by_name['sparse % of GEMM'] == '12.3'
