from benchmarks.common import (check_targets, disturbed_warning, fmt, lookup, markdown_table,
                               ratio)


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
