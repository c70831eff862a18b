r"""What the benchmark scripts share: number formatting, Markdown tables, target verdicts,
the command line and machine of a run, a measurement in a process of its own, mean ± std over
seeds, and the context-free baseline (a logistic regression on each utterance's own features).

The measuring tools (peak memory, load of the machine, FLOP counts) are in
:mod:`dsgdn_pyg.profile`.
"""
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

#: The checkout this module is in (its parent folder holds benchmarks/ and dsgdn_pyg/).
REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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


def run_in_subprocess(command: Sequence[str],
                      timeout_s: Optional[float] = None) -> Dict[str, Any]:
    r"""Runs :obj:`command`, a measuring process that prints its result as a JSON object on
    its last line of output, in a fresh process (so that its peak memory is its own) with
    this checkout first on its :obj:`PYTHONPATH`, and returns that result, or
    :obj:`{'error': reason}` if the process failed, was killed (e.g. out of memory) or timed
    out."""
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(p for p in (REPOSITORY, env.get('PYTHONPATH')) if p)
    try:
        proc = subprocess.run(list(command), capture_output=True, text=True, timeout=timeout_s,
                              env=env)
    except subprocess.TimeoutExpired:
        return dict(error=f'timed out after {timeout_s:g} s')
    if proc.returncode != 0:
        return dict(error=_failure_reason(proc.returncode, proc.stderr))
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return dict(error=f'no JSON result on its last line; stdout ended '
                          f'{proc.stdout[-200:]!r}')


def least_disturbed(measure: Callable[[], Dict[str, Any]], wait_idle_s: float = 0.0,
                    idle_threshold: float = 0.1, retries: int = 2) -> Dict[str, Any]:
    r"""The result of :obj:`measure`, a measurement that reports the share of the cores
    other processes used during it as ``foreign_cpu_fraction`` (or fails with an ``error``).
    With :obj:`wait_idle_s` > 0, every attempt first waits up to that long for the cores to
    be idle (:func:`dsgdn_pyg.profile.wait_until_idle`), and one that others disturbed
    anyway (a fraction of :obj:`idle_threshold` or more) is redone up to :obj:`retries` times;
    the least disturbed attempt is returned, with their number under ``attempts``. A failed
    attempt ends them."""
    from dsgdn_pyg.profile import wait_until_idle  # torch, which the tables here do not need

    attempts = []
    for _ in range(1 + (retries if wait_idle_s > 0 else 0)):
        if wait_idle_s > 0:
            wait_until_idle(idle_threshold, wait_idle_s)
        attempts.append(measure())
        if 'error' in attempts[-1] or attempts[-1]['foreign_cpu_fraction'] < idle_threshold:
            break
    result = min(attempts, key=lambda r: r.get('foreign_cpu_fraction', 0.0))
    result['attempts'] = len(attempts)
    return result


def _failure_reason(returncode: int, stderr: str) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f'signal {-returncode}'
        hint = ' (out of memory?)' if -returncode == signal.SIGKILL else ''
        return f'killed by {name}{hint}'
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return f"exit status {returncode}: {lines[-1].strip() if lines else 'no error output'}"


def utterance_matrix(dialogues, modalities: Sequence[str] = ('t', )):
    r"""Each labelled utterance's own features (the modalities concatenated) and its label."""
    import numpy as np
    x = np.concatenate([np.concatenate([d[f'x_{m}'].numpy() for m in modalities], axis=1)
                        for d in dialogues])
    y = np.concatenate([d.y.numpy() for d in dialogues])
    keep = y >= 0
    return x[keep], y[keep]


def context_free_baseline(corpus, modalities: Sequence[str] = ('t', ), standardize: bool = True,
                          c_grid: Sequence[float] = (0.01, 0.1, 1.0, 10.0),
                          max_iter: int = 3000) -> Dict[str, Any]:
    r"""A logistic regression on each utterance's own features (no context), C chosen on the
    valid split's weighted F1; test weighted F1, accuracy and per-class F1 in %.
    :obj:`standardize` scales the features on the training split first."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.preprocessing import StandardScaler

    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = (utterance_matrix(corpus.split(s), modalities)
                                                for s in ('train', 'valid', 'test'))
    if standardize:
        scaler = StandardScaler().fit(x_tr)
        x_tr, x_va, x_te = (scaler.transform(x) for x in (x_tr, x_va, x_te))
    best = None
    for c in c_grid:
        clf = LogisticRegression(C=c, max_iter=max_iter).fit(x_tr, y_tr)
        score = f1_score(y_va, clf.predict(x_va), average='weighted')
        if best is None or score > best[0]:
            best = (score, c, clf)
    pred = best[2].predict(x_te)
    per_class = f1_score(y_te, pred, average=None, labels=range(corpus.num_classes))
    return {'C': best[1], 'valid_wa_f1': 100 * best[0],
            'test_wa_f1': 100 * f1_score(y_te, pred, average='weighted'),
            'test_wa_acc': 100 * accuracy_score(y_te, pred),
            'per_class_f1': {n: 100 * float(f) for n, f in zip(corpus.label_names, per_class)}}


def add_seed_run_arguments(parser, set_help: str = 'any TrainConfig field, e.g. lr=5e-4'):
    r"""The options of the scripts that train over seeds: ``--seeds 0,1,2``, repeatable
    ``--set FIELD=VALUE`` and ``--json PATH``; :func:`seeds_and_settings` reads them."""
    parser.add_argument('--seeds', default='0,1,2')
    parser.add_argument('--set', action='append', default=[], metavar='FIELD=VALUE',
                        help=set_help)
    parser.add_argument('--json', default=None, help='write all results to this file')


def seeds_and_settings(args) -> Tuple[List[int], Dict[str, Any]]:
    r"""The seeds and the TrainConfig settings of :func:`add_seed_run_arguments`' options."""
    from dsgdn_pyg.train.config import parse_key_values
    return [int(s) for s in args.seeds.split(',')], parse_key_values(args.set)


def aggregate(values: Sequence[Optional[float]]) -> Dict[str, Any]:
    r"""Mean and standard deviation over seeds.

    The standard deviation is the sample one (``ddof = 1``) and :obj:`None` with fewer than
    two values; :obj:`None` entries (a score that does not exist, e.g. an empty subset) are
    left out.

    Returns:
        dict: ``mean``, ``std``, ``n`` and ``values``.
    """
    present = [float(v) for v in values if v is not None]
    if not present:
        return {'mean': None, 'std': None, 'n': 0, 'values': list(values)}
    array = np.asarray(present, dtype=np.float64)
    std = float(array.std(ddof=1)) if array.size > 1 else None
    return {'mean': float(array.mean()), 'std': std, 'n': int(array.size),
            'values': list(values)}


def format_mean_std(summary: Dict[str, Any], digits: int = 2) -> str:
    r"""``'mean ± std'``, or the mean alone for a single seed, or ``'—'`` without values."""
    if summary['mean'] is None:
        return '—'
    mean = f"{summary['mean']:,.0f}" if digits == 0 else f"{summary['mean']:.{digits}f}"
    # Counts (digits 0) that do not vary over seeds are shown without a "± 0".
    if summary['std'] is None or (digits == 0 and summary['std'] == 0):
        return mean
    return f"{mean} ± {summary['std']:.{digits}f}"


def mean_std(values: Sequence[float]) -> str:
    r"""``mean ± std`` of the values (as the experiments' tables show them)."""
    return format_mean_std(aggregate(values))


def seed_rows_table(rows: Dict[str, Sequence[Dict[str, Any]]],
                    rare: Sequence[str] = ('fear', 'disgust')) -> str:
    r"""A Markdown table of rows of runs over seeds (each with ``test_wa_f1``,
    ``test_wa_acc`` and ``per_class_f1``): seeds, mean ± std of the test weighted F1, accuracy
    and the F1 of the :obj:`rare` classes."""
    def cell(key, runs, label=None):
        values = [r[key] if label is None else r[key].get(label, float('nan')) for r in runs]
        return mean_std(values)
    columns = [('model', lambda item: item[0]), ('seeds', lambda item: str(len(item[1]))),
               ('test weighted F1', lambda item: cell('test_wa_f1', item[1])),
               ('test accuracy', lambda item: cell('test_wa_acc', item[1]))]
    columns += [(f'F1 {c}', lambda item, c=c: cell('per_class_f1', item[1], c)) for c in rare]
    return markdown_table(list(rows.items()), columns)


def seed_record(seed: int, metrics: Dict[str, Any], seconds: float) -> Dict[str, Any]:
    r"""What a seed sweep keeps of one run of :func:`dsgdn_pyg.train.train`: the seed, the
    selected epoch, the valid and test scores, the test F1 per class, the parameters and the
    time."""
    return {'seed': seed, 'best_epoch': metrics['best_epoch'],
            'epochs_run': metrics.get('epochs_run'),
            'valid_wa_f1': metrics['valid']['wa_f1'], 'test_wa_f1': metrics['test']['wa_f1'],
            'test_wa_acc': metrics['test']['wa_acc'],
            'per_class_f1': metrics['test'].get('per_class_f1'),
            'num_parameters': metrics.get('num_parameters'),
            'elapsed_s': metrics.get('elapsed_s'), 'seconds': seconds}


def sweep_seeds(config_of: Callable[[int], Any], seeds: Sequence[int], corpus: Any = None,
                train: Optional[Callable[[Any], Any]] = None,
                record: Callable[[int, Any, float], Dict[str, Any]] = seed_record,
                say: Optional[Callable[[Dict[str, Any]], None]] = None) -> List[Dict[str, Any]]:
    r"""The one seed sweep of every study script and experiment: runs :obj:`train` on
    :obj:`config_of(seed)` for each seed (default: :func:`dsgdn_pyg.train.train` on
    :obj:`corpus`) and returns :obj:`record(seed, result, seconds)` per seed, calling
    :obj:`say` with each record as it comes (progress)."""
    if train is None:
        from dsgdn_pyg.train import train as train_run

        def train(config):
            return train_run(config, corpus=corpus)
    runs = []
    for seed in seeds:
        start = time.perf_counter()
        result = train(config_of(seed))
        runs.append(record(seed, result, time.perf_counter() - start))
        if say is not None:
            say(runs[-1])
    return runs
