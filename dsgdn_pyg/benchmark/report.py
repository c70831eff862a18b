r"""Text and Markdown reports of scenario results, and the issue's targets."""
from typing import Any, Dict, List, Optional, Sequence


from dsgdn_pyg.benchmark.scenarios import IMPLEMENTATIONS

def _fmt(value: Optional[float], digits: int = 1, suffix: str = '') -> str:
    return '-' if value is None else f'{value:,.{digits}f}{suffix}'


def format_scenario_result(result: Dict[str, Any]) -> str:
    r"""Human-readable lines of a :func:`benchmark_scenario` result."""
    lines = [f"{result['description']} ({result['num_threads']} threads)"]
    for impl in IMPLEMENTATIONS:
        if impl in result:
            r = result[impl]
            line = f"{impl:6s} train {r['train_utt_per_s']:10.1f} utt/s"
            if r.get('runs', 1) > 1:
                runs = r['train_utt_per_s_runs']
                line += f" (median of {len(runs)} runs, {min(runs):.1f}..{max(runs):.1f})"
            line += (f", inference {r['infer_ms_per_utt']:.3f} ms/utt, peak RSS "
                     f"{r['peak_rss_mb']:.0f} MB")
            if 'gemm_fraction' in r:
                line += (f", useful {r['useful_flops_per_s'] / 1e9:.2f} GFLOP/s = "
                         f"{100 * r['gemm_fraction']:.1f}% of GEMM "
                         f"{r['gemm_flops_per_s'] / 1e9:.1f} GFLOP/s")
            lines.append(line)
        elif impl in result['skipped']:
            lines.append(f"{impl:6s} not run: {result['skipped'][impl]}")
    ratios = result.get('ratios')
    if ratios:
        lines.append(f"sparse vs dense: train {ratios['train_speedup']:.2f}x faster, inference "
                     f"{ratios['infer_speedup']:.2f}x faster, peak memory "
                     f"{ratios['peak_rss']:.2f}x")
    return '\n'.join(lines)


def _get(results: Dict[str, Dict[str, Any]], scenario: str, *keys: str) -> Optional[float]:
    value: Any = results.get(scenario)
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def evaluate_targets(results: Dict[str, Dict[str, Any]]) -> List[Dict[str, Any]]:
    r"""The issue's targets against :func:`benchmark_scenario` results keyed by scenario name:
    each with its measured value and whether it is met (:obj:`None` if not measured)."""
    def ratio(num, den):
        return num / den if num is not None and den else None

    checks = [
        ('iemocap: sparse train utt/s >= 2.5x dense',
         _get(results, 'iemocap', 'ratios', 'train_speedup'), lambda v: v >= 2.5),
        ('iemocap: sparse peak memory <= 0.4x dense',
         _get(results, 'iemocap', 'ratios', 'peak_rss'), lambda v: v <= 0.4),
        ('iemocap: sparse train >= 1,350 utt/s',
         _get(results, 'iemocap', 'sparse', 'train_utt_per_s'), lambda v: v >= 1350),
        ('iemocap: sparse peak memory <= 760 MB',
         _get(results, 'iemocap', 'sparse', 'peak_rss_mb'), lambda v: v <= 760),
        ('long-1600: sparse train utt/s >= 10x dense',
         _get(results, 'long-1600', 'ratios', 'train_speedup'), lambda v: v >= 10),
        ('long-10000: peak memory of the training step < 2 GB (2,048 MB)',
         _get(results, 'long-10000', 'sparse', 'peak_rss_mb'), lambda v: v < 2048),
        ('long-10000: train time per utterance <= 1.5x long-400',
         ratio(_get(results, 'long-10000', 'sparse', 'train_ms_per_utt'),
               _get(results, 'long-400', 'sparse', 'train_ms_per_utt')), lambda v: v <= 1.5),
    ]
    return [dict(target=name, value=value, met=None if value is None else bool(ok(value)))
            for name, value, ok in checks]


def markdown_table(results: Sequence[Dict[str, Any]]) -> str:
    r"""One Markdown row per :func:`benchmark_scenario` result."""
    def impl(key: str, digits: int, scale: float = 1.0):
        def get(result, name):
            value = _get({'r': result}, 'r', name, key)
            return _fmt(None if value is None else value * scale, digits)
        return get

    def ratio(key: str):
        return lambda result, _: _fmt(_get({'r': result}, 'r', 'ratios', key), 2, 'x')

    columns = [
        ('scenario', lambda result, _: result['scenario']),
        ('utterances', lambda result, _: f"{result['num_utterances']:,}"),
        ('sparse train utt/s', lambda r, _: impl('train_utt_per_s', 1)(r, 'sparse')),
        ('dense train utt/s', lambda r, _: impl('train_utt_per_s', 1)(r, 'dense')),
        ('train speed-up', ratio('train_speedup')),
        ('sparse infer ms/utt', lambda r, _: impl('infer_ms_per_utt', 3)(r, 'sparse')),
        ('dense infer ms/utt', lambda r, _: impl('infer_ms_per_utt', 3)(r, 'dense')),
        ('sparse peak MB', lambda r, _: impl('peak_rss_mb', 0)(r, 'sparse')),
        ('dense peak MB', lambda r, _: impl('peak_rss_mb', 0)(r, 'dense')),
        ('peak sparse/dense', ratio('peak_rss')),
        ('sparse train ms/utt', lambda r, _: impl('train_ms_per_utt', 3)(r, 'sparse')),
        ('useful GFLOP/s sparse', lambda r, _: impl('useful_flops_per_s', 2, 1e-9)(r, 'sparse')),
        ('useful GFLOP/s dense', lambda r, _: impl('useful_flops_per_s', 2, 1e-9)(r, 'dense')),
        ('GEMM GFLOP/s', lambda r, _: impl('gemm_flops_per_s', 1, 1e-9)(r, 'sparse')),
        ('sparse % of GEMM', lambda r, _: impl('gemm_fraction', 1, 100)(r, 'sparse')),
        ('dense % of GEMM', lambda r, _: impl('gemm_fraction', 1, 100)(r, 'dense')),
    ]
    lines = ['| ' + ' | '.join(name for name, _ in columns) + ' |',
             '|' + '---|' * len(columns)]


    for result in results:
        lines.append('| ' + ' | '.join(fmt(result, None) for _, fmt in columns) + ' |')
    return '\n'.join(lines)
