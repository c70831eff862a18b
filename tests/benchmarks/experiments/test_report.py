import numpy as np
import pytest

from benchmarks.experiments.report import aggregate, format_mean_std


def test_aggregate_matches_numpy():
    values = [70.1, 68.4, 71.9, 69.0]
    summary = aggregate(values)
    assert summary['mean'] == pytest.approx(np.mean(values))
    assert summary['std'] == pytest.approx(np.std(values, ddof=1))
    assert format_mean_std(summary) == f'{np.mean(values):.2f} ± {np.std(values, ddof=1):.2f}'
    one = aggregate([65.4321])
    assert one['std'] is None and format_mean_std(one) == '65.43'
    assert aggregate([None, 3.0, 5.0])['mean'] == 4.0
    assert format_mean_std(aggregate([None])) == '—'
