r"""What the benchmark scripts share: number formatting, Markdown tables, target verdicts,
the command line and machine of a run, and mean ± std over seeds.

The measuring tools (peak memory, load of the machine, FLOP counts) are in
:mod:`dsgdn_pyg.profile`.
"""
import shlex
import sys
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

#: A table column: its header and the function that formats a row's cell.
Column = Tuple[str, Callable[[Any], str]]


def fmt(value: Optional[float], digits: int = 1, suffix: str = '') -> str:
    r"""A number with thousands separators and :obj:`digits` decimals, ``-`` for
    :obj:`None`."""
    return '-' if value is None else f'{value:,.{digits}f}{suffix}'


def ratio(num: Optional[float], den: Optional[float]) -> Optional[float]:
    r""":obj:`num / den`, or :obj:`None` where either is missing (or :obj:`den` is 0)."""
    return num / den if num is not None and den else None


def lookup(record: Any, *keys: str) -> Any:
    r"""``record[k1][k2]...``, or :obj:`None` where a key is missing."""
    for key in keys:
        if not isinstance(record, dict) or key not in record:
            return None
        record = record[key]
    return record


def markdown_table(rows: Sequence[Any], columns: Sequence[Column]) -> str:
    r"""A Markdown table: one line per row, one cell per column."""
    lines = ['| ' + ' | '.join(name for name, _ in columns) + ' |',
             '|' + '---|' * len(columns)]
    for row in rows:
        lines.append('| ' + ' | '.join(cell(row) for _, cell in columns) + ' |')
    return '\n'.join(lines)


def verdict(met: Optional[bool]) -> str:
    return {True: 'MET', False: 'NOT MET', None: 'not run'}[met]


def check_targets(checks: Sequence[Tuple[str, Optional[float], Callable[[float], bool]]]
                  ) -> List[Dict[str, Any]]:
    r"""``(target, measured value or None, test)`` triples as records with whether each
    target is met (:obj:`None` where it was not measured)."""
    return [dict(target=name, value=value, met=None if value is None else bool(ok(value)))
            for name, value, ok in checks]


def command_line(script: str, argv: Optional[Sequence[str]]) -> str:
    r"""The command that reproduces this run, for the report."""
    args = sys.argv[1:] if argv is None else list(argv)
    return ' '.join(shlex.quote(a) for a in ['python', script, *args])


def machine_line(info: Dict[str, Any]) -> str:
    r"""One line about the machine of :func:`dsgdn_pyg.profile.machine_info`."""
    return (f"Machine: {info['cpu_model']}, {info['cpu_count']} cores, torch {info['torch']}, "
            f"PyG {info['torch_geometric']}, Python {info['python']}, "
            f"{info['num_threads']} PyTorch threads")


def disturbed_warning(disturbed: Sequence[str], threshold: float) -> Optional[str]:
    r"""The warning for measurements during which other processes used at least
    :obj:`threshold` of the cores (each named with its share), or :obj:`None`."""
    if not disturbed:
        return None
    return (f'WARNING: other processes used >= {100 * threshold:.0f}% of the cores during: '
            f"{', '.join(disturbed)}; those timings are inflated")


def mean_std(values: Sequence[float]) -> str:
    r"""``mean ± std`` of the values (as the experiments' tables show them)."""
    from dsgdn_pyg.experiments.report import aggregate, format_mean_std
    return format_mean_std(aggregate(values))
