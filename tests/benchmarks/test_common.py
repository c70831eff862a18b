import os
import sys

from benchmarks.common import (REPOSITORY, check_targets, disturbed_warning, fmt,
                               least_disturbed, lookup, markdown_table, ratio,
                               run_in_subprocess)


def test_fmt_and_ratio():
    assert fmt(None) == '-' and fmt(1234.5678, 2) == '1,234.57' and fmt(0.5, 2, 'x') == '0.50x'
    assert ratio(3.0, 2.0) == 1.5 and ratio(None, 2.0) is None and ratio(1.0, 0.0) is None


def test_lookup_and_targets():
    record = {'a': {'b': 2.0}}
    assert lookup(record, 'a', 'b') == 2.0 and lookup(record, 'a', 'c') is None
    targets = check_targets([('b >= 1', lookup(record, 'a', 'b'), lambda v: v >= 1),
                             ('c <= 1', lookup(record, 'c'), lambda v: v <= 1)])
    assert [(t['target'], t['value'], t['met']) for t in targets] == [
        ('b >= 1', 2.0, True), ('c <= 1', None, None)]


def test_markdown_table():
    rows = [dict(name='x', value=1.0), dict(name='y', value=None)]
    table = markdown_table(rows, [('name', lambda r: r['name']),
                                  ('value', lambda r: fmt(r['value']))])
    assert table.splitlines() == ['| name | value |', '|---|---|', '| x | 1.0 |', '| y | - |']


def test_disturbed_warning():
    assert disturbed_warning([], 0.1) is None
    assert '>= 10% of the cores during: a (20%)' in disturbed_warning(['a (20%)'], 0.1)


def test_context_free_baseline_chooses_c_on_valid():
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score

    from benchmarks.common import context_free_baseline, utterance_matrix
    from dsgdn_pyg.datasets import load_corpus

    corpus = load_corpus('synthetic-meld', seed=0, num_dialogues=40,
                         feature_dims={'t': 8, 'a': 4, 'v': 4})
    grid = (0.01, 1.0)
    result = context_free_baseline(corpus, ('t', 'a'), standardize=False, c_grid=grid)
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = (utterance_matrix(corpus.split(s), ('t', 'a'))
                                                for s in ('train', 'valid', 'test'))
    assert x_tr.shape[1] == 12 and (y_tr >= 0).all()
    valid = {c: f1_score(y_va, LogisticRegression(C=c, max_iter=3000).fit(x_tr, y_tr)
                         .predict(x_va), average='weighted') for c in grid}
    best = max(grid, key=lambda c: valid[c])
    assert result['C'] == best
    pred = LogisticRegression(C=best, max_iter=3000).fit(x_tr, y_tr).predict(x_te)
    assert np.isclose(result['test_wa_f1'], 100 * f1_score(y_te, pred, average='weighted'))
    assert set(result['per_class_f1']) == set(corpus.label_names)


def test_seed_run_arguments():
    import argparse

    from benchmarks.common import add_seed_run_arguments, seeds_and_settings

    parser = argparse.ArgumentParser()
    add_seed_run_arguments(parser)
    assert seeds_and_settings(parser.parse_args([])) == ([0, 1, 2], {})
    args = parser.parse_args(['--seeds', '1,2', '--set', 'lr=5e-4', '--set', 'batch-size=8'])
    assert seeds_and_settings(args) == ([1, 2], {'lr': 5e-4, 'batch_size': 8})


def test_run_in_subprocess_returns_the_last_json_line_of_a_fresh_process():
    # The measuring process imports benchmarks/ from this checkout wherever it starts; the
    # failures (killed, exit status, no JSON, timed out) are tested in test_scenario_runner.
    code = ('import benchmarks.common as c, json, os; print("log line"); '
            'print(json.dumps(dict(pid=os.getpid(), repository=c.REPOSITORY)))')
    result = run_in_subprocess([sys.executable, '-c', code])
    assert result['pid'] != os.getpid() and result['repository'] == REPOSITORY
    assert os.path.isfile(os.path.join(REPOSITORY, 'benchmarks', 'common.py'))


def test_least_disturbed_redoes_disturbed_measurements_and_keeps_the_calmest(monkeypatch):
    import dsgdn_pyg.profile as profile
    waits = []
    monkeypatch.setattr(profile, 'wait_until_idle', lambda threshold, wait: waits.append(wait))

    def measurements(*fractions):
        results = iter([{'foreign_cpu_fraction': f} if f is not None else {'error': 'died'}
                        for f in fractions])
        return lambda: next(results)

    # Without waiting: one attempt, however disturbed.
    assert least_disturbed(measurements(0.5)) == {'foreign_cpu_fraction': 0.5, 'attempts': 1}
    assert waits == []
    # Waiting: disturbed attempts are redone (1 + retries at most), the calmest is kept.
    result = least_disturbed(measurements(0.5, 0.3, 0.4), 10.0, 0.1, retries=2)
    assert result == {'foreign_cpu_fraction': 0.3, 'attempts': 3} and waits == [10.0] * 3
    # An idle attempt ends them, and so does a failed one.
    assert least_disturbed(measurements(0.5, 0.05, 0.0), 1.0, 0.1)['attempts'] == 2
    assert least_disturbed(measurements(0.5, None, 0.0), 1.0, 0.1) == {'error': 'died',
                                                                       'attempts': 2}
