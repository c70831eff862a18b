r"""Runs an experiment: one :func:`dsgdn_pyg.train.train` call per (variant, seed), reusing
finished runs, then the post-hoc evaluations, the aggregation over seeds and the reports.

Layout of the output directory ``OUT``::

    OUT/<variant>/seed<k>/   metrics.json, log.jsonl, best.pt, last.pt (the trainer's files)
    OUT/<experiment>.json    every per-seed number, the configurations, the summaries
    OUT/<experiment>.md      the Markdown table (also printed)
    OUT/<experiment>.png     the figure, if the paper has one and matplotlib is installed

A run whose ``metrics.json`` says ``finished: true`` with the same configuration is reused
rather than retrained, and an interrupted run continues from its ``last.pt``; so an
experiment can be restarted, and experiments that share a variant (``full`` in ``ablation``,
``noise``, ``long`` and ``imbalance``) share its runs when given the same ``OUT``.
"""
import dataclasses
import json
import os
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from dsgdn_pyg.data import DialogueCorpus
from benchmarks.common import sweep_seeds
from benchmarks.experiments.evaluation import length_scores, measure_overhead, noise_scores
from benchmarks.experiments.grids import (EXPERIMENTS, LONG_DIALOGUES, NOISE_LEVELS,
                                         QUICK_EPOCHS, QUICK_NOISE_LEVELS, Experiment,
                                         ExperimentError, Variant)
from benchmarks.experiments.report import (COLUMNS, aggregate, confusion_section,
                                          result_table, write_figure)
from dsgdn_pyg.io import atomic_write_text
from dsgdn_pyg.lookup import lookup_name
from dsgdn_pyg.train import CheckpointError, TrainConfig, train
from dsgdn_pyg.train.config import check_against_corpus
from dsgdn_pyg.train.data import load_dataset

#: Fields that may differ between a finished run and the configuration asking for it.
IGNORED_FIELDS = ('out', 'resume', 'quiet', 'device', 'num_threads')
#: Fields the runner sets per run; an experiment's base configuration cannot choose them.
RESERVED_FIELDS = ('seed', 'out', 'resume')
#: Timed training steps of the ``overhead`` experiment (quick, full).
OVERHEAD_STEPS = (3, 10)
X_LABELS = {'window': 'graph window w', 'heads': 'differential attention heads',
            'warmup': 'modality dropout warm-up (epochs)',
            'noise': 'noise level (x feature standard deviation)'}

Echo = Callable[[str], None]


def parse_seeds(value: Union[str, Sequence[int]]) -> List[int]:
    r"""Parses ``'0,1,2'`` (or a list) into distinct non-negative integer seeds."""
    if isinstance(value, str):
        items = [s.strip() for s in value.split(',') if s.strip()]
        try:
            seeds = [int(s) for s in items]
        except ValueError:
            raise ValueError(f"'seeds' must be comma-separated integers like '0,1,2', got "
                             f"{value!r}") from None
    else:
        seeds = list(value)
        if any(not isinstance(s, int) or isinstance(s, bool) for s in seeds):
            raise ValueError(f"'seeds' must hold integers, got {seeds!r}")
    if not seeds:
        raise ValueError(f"'seeds' must name at least one seed, got {value!r}")
    if any(s < 0 for s in seeds):
        raise ValueError(f"'seeds' must be non-negative, got {seeds}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"'seeds' names a seed twice: {seeds}")
    return seeds


def get_experiment(name: str) -> Experiment:
    r"""The :class:`~benchmarks.experiments.grids.Experiment` called :obj:`name`."""
    return lookup_name(EXPERIMENTS, name, 'experiment', ExperimentError)


def quick_config(base: TrainConfig, epochs: Optional[int] = QUICK_EPOCHS) -> TrainConfig:
    r""":obj:`base` with at most :obj:`epochs` epochs and a modality dropout warm-up of at
    most ``epochs - 1`` (so that it still switches on); :obj:`None` keeps :obj:`base`."""
    if epochs is None:
        return base
    epochs = min(base.epochs, epochs)
    return dataclasses.replace(base, epochs=epochs,
                               warmup_epochs=min(base.warmup_epochs, max(epochs - 1, 0)))


def config_differences(old: Dict[str, Any], new: Dict[str, Any],
                       ignore: Sequence[str] = IGNORED_FIELDS) -> Dict[str, Tuple[Any, Any]]:
    r"""``{field: (old, new)}`` for the fields where two configuration dicts differ.

    A field that :obj:`old` lacks (it was written before the field existed) matches a new
    value equal to the field's :class:`~dsgdn_pyg.train.TrainConfig` default."""
    missing = object()
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)
                if f.default is not dataclasses.MISSING}
    diff = {}
    for key in sorted(set(old) | set(new)):
        if key in ignore:
            continue
        a, b = old.get(key, missing), new.get(key, missing)
        if a is missing and key in defaults and b == defaults[key]:
            continue
        if a != b:
            diff[key] = (None if a is missing else a, None if b is missing else b)
    return diff


def finished_metrics(config: TrainConfig) -> Optional[Dict[str, Any]]:
    r"""The ``metrics.json`` of a finished run of :obj:`config` in :obj:`config.out`, or
    :obj:`None` if there is none; a finished run of another configuration raises
    :class:`ExperimentError` (rather than being overwritten)."""
    path = os.path.join(config.out, 'metrics.json')
    try:
        with open(path) as f:
            metrics = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise ExperimentError(f"cannot read {path}: {e}") from None
    if not metrics.get('finished'):
        return None
    diff = config_differences(metrics.get('config', {}), config.to_dict())
    if diff:
        shown = ', '.join(f'{k}: {a!r} there, {b!r} here' for k, (a, b) in diff.items())
        raise ExperimentError(f"{config.out} holds a finished run of another configuration "
                              f"({shown}); use another --out or remove that directory")
    return metrics


def train_or_reuse(config: TrainConfig,
                   corpus: Optional[DialogueCorpus] = None) -> Tuple[Dict[str, Any], bool]:
    r"""The metrics of a run of :obj:`config` (which must have :obj:`out`): reused if a
    finished run of the same configuration is there, else trained (continuing from
    ``last.pt`` if an interrupted run left one).

    Returns:
        (dict, bool): The metrics and whether they were reused.
    """
    if config.out is None:
        raise ValueError("'config.out' must be set: experiment runs keep their checkpoints")
    metrics = finished_metrics(config)
    if metrics is not None:
        return metrics, True
    try:
        return train(dataclasses.replace(config, resume=True), corpus=corpus), False
    except CheckpointError as e:
        raise ExperimentError(f"{e}; use another --out or remove {config.out}") from None


def _training_record(metrics: Dict[str, Any], out: str, reused: bool) -> Dict[str, Any]:
    test, valid = metrics['test'], metrics['valid']
    return {
        'seed': metrics['seed'], 'run_dir': out, 'reused': reused,
        'best_epoch': metrics['best_epoch'], 'epochs_run': metrics['epochs_run'],
        'valid_wa_f1': valid['wa_f1'], 'valid_wa_acc': valid['wa_acc'],
        'test_wa_f1': test['wa_f1'], 'test_wa_acc': test['wa_acc'],
        'per_class_f1': test['per_class_f1'], 'confusion': test['confusion'],
        'elapsed_s': metrics['elapsed_s'], 'modalities': metrics['modalities'],
        'config': metrics['config'],
    }


def _summaries(kind: str, records: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    keys = [key for key, _, _ in COLUMNS[kind]]
    if kind == 'train':
        keys.append('elapsed_s')
    return {key: aggregate([r.get(key) for r in records]) for key in keys}


def _sum_confusions(records: Sequence[Dict[str, Any]]) -> List[List[int]]:
    total = [list(row) for row in records[0]['confusion']]
    for record in records[1:]:
        for i, row in enumerate(record['confusion']):
            for j, v in enumerate(row):
                total[i][j] += v
    return total


def run_experiment(name: str, base_config: Optional[TrainConfig] = None,
                   seeds: Union[str, Sequence[int]] = (0, 1, 2), out: str = 'experiments',
                   quick: bool = False, quick_epochs: Optional[int] = QUICK_EPOCHS,
                   echo: Optional[Echo] = print) -> Dict[str, Any]:
    r"""Runs the experiment :obj:`name` and writes ``OUT/<name>.json``, ``.md`` (and
    ``.png``).

    Args:
        name (str): A key of :obj:`~benchmarks.experiments.grids.EXPERIMENTS`.
        base_config (TrainConfig, optional): The settings every variant starts from (dataset,
            epochs, sizes, ...); its :obj:`seed`, :obj:`out` and :obj:`resume` are set per
            run. (default: :obj:`TrainConfig()`)
        seeds (str or List[int]): Training seeds, e.g. ``'0,1,2'``. (default: :obj:`(0, 1, 2)`)
        out (str): Output directory. (default: :obj:`'experiments'`)
        quick (bool): The reduced grid of the experiment, the first seed only and at most
            :obj:`quick_epochs` epochs. (default: :obj:`False`)
        quick_epochs (int, optional): Epoch cap of a quick run; :obj:`None` keeps the base
            epochs. (default: :obj:`4`)
        echo (Callable, optional): Receives one progress line per run; :obj:`None` = silent.
            (default: :obj:`print`)

    Returns:
        dict: What ``OUT/<name>.json`` holds: ``rows`` (one per table row, with ``label``,
        ``summary`` = ``{metric: {mean, std, n, values}}`` and the per-seed ``runs``),
        ``table`` (Markdown), ``variants``, ``seeds``, ``base_config``, ``files``, ...
    """
    start = time.perf_counter()
    experiment = get_experiment(name)
    seeds = parse_seeds(seeds)
    base = TrainConfig() if base_config is None else base_config
    if not out:
        raise ValueError("'out' must be a directory path")
    say = echo if echo is not None else (lambda line: None)
    if quick:
        seeds = seeds[:1]
        base = quick_config(base, quick_epochs)
    base = dataclasses.replace(base, quiet=True, resume=False, out=None, seed=seeds[0])

    corpus = load_dataset(base.dataset, base.data_seed, base.loader_options())
    modalities = check_against_corpus(base, corpus.modalities)
    variants = experiment.grid(base, modalities, quick)
    # Validate every configuration before the first (long) run.
    configs = {(v.name, s): dataclasses.replace(base, **v.overrides, seed=s,
                                                out=os.path.join(out, v.name, f'seed{s}'))
               for v in variants for s in seeds}

    if experiment.kind == 'overhead':
        rows = _overhead_rows(variants, seeds, configs, corpus, quick, say)
    else:
        trained = _train_all(variants, seeds, configs, corpus, say)
        if experiment.kind == 'train':
            rows = _train_rows(variants, trained, plot=experiment.plot)
        elif experiment.kind == 'noise':
            rows = _noise_rows(trained, configs, corpus, quick, say)
        else:
            rows = _long_rows(trained, configs, corpus, say)

    result = {
        'experiment': name, 'title': experiment.title, 'paper': experiment.paper,
        'kind': experiment.kind, 'dataset': base.dataset, 'modalities': modalities,
        'label_names': list(corpus.label_names), 'seeds': seeds, 'quick': quick,
        'base_config': dataclasses.replace(base, seed=0).to_dict(),
        'variants': [v._asdict() for v in variants], 'rows': rows,
    }
    result['table'] = result_table(experiment.kind, rows)
    if experiment.plot == 'confusion':
        result['confusion'] = confusion_section(rows, corpus.label_names)
    result['elapsed_s'] = time.perf_counter() - start
    result['files'] = _write_reports(result, experiment, out)
    return result


def _train_all(variants: Sequence[Variant], seeds: Sequence[int],
               configs: Dict[Tuple[str, int], TrainConfig], corpus: DialogueCorpus,
               say: Echo) -> Dict[str, List[Dict[str, Any]]]:
    trained: Dict[str, List[Dict[str, Any]]] = {}
    total, done = len(variants) * len(seeds), 0
    for variant in variants:
        def progress(record: Dict[str, Any]) -> None:
            nonlocal done
            done += 1
            how = 'reused' if record['reused'] else f"{record['elapsed_s']:.0f} s"
            say(f"[{done}/{total}] {variant.name} seed {record['seed']}: test weighted F1 "
                f"{record['test_wa_f1']:.2f}, accuracy {record['test_wa_acc']:.2f} "
                f"(best epoch {record['best_epoch']}, {how})")

        def record(seed: int, result: Tuple[Dict[str, Any], bool], _: float) -> Dict[str, Any]:
            return _training_record(result[0], configs[(variant.name, seed)].out, result[1])

        trained[variant.name] = sweep_seeds(
            lambda seed: configs[(variant.name, seed)], seeds,
            train=lambda config: train_or_reuse(config, corpus), record=record, say=progress)
    return trained


def _train_rows(variants: Sequence[Variant], trained: Dict[str, List[Dict[str, Any]]],
                plot: Optional[str]) -> List[Dict[str, Any]]:
    rows = []
    for variant in variants:
        records = trained[variant.name]
        row = {'label': variant.label, 'variant': variant.name, 'x': variant.x,
               'summary': _summaries('train', records), 'runs': records}
        if plot == 'confusion':
            row['confusion'] = _sum_confusions(records)
        rows.append(row)
    return rows


def _checkpoint(config: TrainConfig) -> str:
    path = os.path.join(config.out, 'best.pt')
    if not os.path.exists(path):
        raise ExperimentError(f"{path} is missing: the run in {config.out} kept no best "
                              f"checkpoint; remove that directory to retrain it")
    return path


def _noise_rows(trained: Dict[str, List[Dict[str, Any]]],
                configs: Dict[Tuple[str, int], TrainConfig], corpus: DialogueCorpus,
                quick: bool, say: Echo) -> List[Dict[str, Any]]:
    levels = QUICK_NOISE_LEVELS if quick else NOISE_LEVELS
    per_seed = {}
    for record in trained['full']:
        config = configs[('full', record['seed'])]
        per_seed[record['seed']] = noise_scores(_checkpoint(config), corpus,
                                                record['modalities'], levels,
                                                device=config.device)
        say(f"noise seed {record['seed']}: " + ', '.join(
            f"{r['level']:.1f} -> {r['wa_f1']:.2f}" for r in per_seed[record['seed']]))
    rows = []
    for i, level in enumerate(levels):
        records = [{'seed': seed, **scores[i]} for seed, scores in per_seed.items()]
        rows.append({'label': f'{level:.1f}', 'x': level, 'summary': _summaries('noise',
                                                                                records),
                     'runs': records})
    rows[0]['training'] = trained['full']
    return rows


def _long_rows(trained: Dict[str, List[Dict[str, Any]]],
               configs: Dict[Tuple[str, int], TrainConfig], corpus: DialogueCorpus,
               say: Echo) -> List[Dict[str, Any]]:
    low, high = LONG_DIALOGUES
    per_seed = {}
    for record in trained['full']:
        config = configs[('full', record['seed'])]
        per_seed[record['seed']] = length_scores(_checkpoint(config), corpus, low, high,
                                                 device=config.device)
    labels = {'all': 'all', f'{low}-{high}': f'{low}-{high} utterances'}
    rows = []
    for i, subset in enumerate(labels):
        records = [{'seed': seed, **scores[i]} for seed, scores in per_seed.items()]
        rows.append({'label': labels[subset], 'subset': subset,
                     'summary': _summaries('long', records), 'runs': records})
    rows[0]['training'] = trained['full']
    say(f"long: {rows[1]['summary']['num_dialogues']['mean']:.0f} of "
        f"{rows[0]['summary']['num_dialogues']['mean']:.0f} test dialogues have {low}-{high} "
        f"utterances")
    return rows


def _overhead_rows(variants: Sequence[Variant], seeds: Sequence[int],
                   configs: Dict[Tuple[str, int], TrainConfig], corpus: DialogueCorpus,
                   quick: bool, say: Echo) -> List[Dict[str, Any]]:
    steps = OVERHEAD_STEPS[0] if quick else OVERHEAD_STEPS[1]
    rows = []
    for variant in variants:
        records = []
        for seed in seeds:
            config = dataclasses.replace(configs[(variant.name, seed)], out=None)
            modalities = check_against_corpus(config, corpus.modalities)
            record = {'seed': seed, **measure_overhead(config, corpus, modalities, steps)}
            records.append(record)
            say(f"{variant.name} seed {seed}: {record['num_parameters']:,} parameters, "
                f"{record['mflops_per_utterance']:.2f} MFLOPs/utterance, "
                f"{record['inference_ms_per_utterance']:.3f} ms/utterance, "
                f"{record['train_utterances_per_s']:.1f} training utterances/s")
        rows.append({'label': variant.label, 'variant': variant.name,
                     'summary': _summaries('overhead', records), 'runs': records,
                     'steps': steps})
    return rows


def _markdown(result: Dict[str, Any], experiment: Experiment) -> str:
    seeds = ','.join(map(str, result['seeds']))
    lines = [f"## {result['experiment']}: {result['title']} (paper {result['paper']})", '',
             f"Dataset `{result['dataset']}`, modalities {','.join(result['modalities'])}, "
             f"seeds {seeds}{' (quick)' if result['quick'] else ''}, "
             f"{result['base_config']['epochs']} epochs, selected on "
             f"{result['base_config']['select_on']}; mean ± std over seeds (ddof 1).", '',
             result['table']]
    if result.get('confusion'):
        lines += ['', result['confusion']]
    return '\n'.join(lines) + '\n'


def _write_reports(result: Dict[str, Any], experiment: Experiment, out: str) -> Dict[str, str]:
    files = {'json': os.path.join(out, f"{experiment.name}.json"),
             'markdown': os.path.join(out, f"{experiment.name}.md")}
    result['markdown'] = _markdown(result, experiment)
    if experiment.plot is not None:
        png = write_figure(os.path.join(out, f'{experiment.name}.png'), experiment.kind,
                           experiment.plot, f"{experiment.title} ({result['dataset']})",
                           result['rows'], result['label_names'],
                           X_LABELS.get(experiment.name, ''))
        if png is not None:
            files['png'] = png
    atomic_write_text(files['markdown'], result['markdown'])
    result['files'] = files
    atomic_write_text(files['json'], json.dumps(result, indent=1))
    return files
