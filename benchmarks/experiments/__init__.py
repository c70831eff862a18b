r"""The experiments of the AMB-DSGDN paper (section 6) as reproducible commands.

``run_experiment('ablation', TrainConfig(dataset='synthetic-iemocap'), seeds='0,1,2',
out='runs/experiments')`` trains every variant of the experiment with
:func:`dsgdn_pyg.train.train`, aggregates over seeds and writes a JSON file, a Markdown table
and, where the paper has a figure and matplotlib is installed, a PNG. The grids live in
:mod:`benchmarks.experiments.grids`; ``dsgdn-pyg experiment NAME`` is the command line.
"""
from .grids import (EXPERIMENT_NAMES, EXPERIMENTS, QUICK_EPOCHS, Experiment, ExperimentError,
                    Variant)
from .runner import (RESERVED_FIELDS, config_differences, parse_seeds, run_experiment,
                     train_or_reuse)

__all__ = [
    'EXPERIMENTS',
    'EXPERIMENT_NAMES',
    'Experiment',
    'ExperimentError',
    'QUICK_EPOCHS',
    'RESERVED_FIELDS',
    'Variant',
    'config_differences',
    'parse_seeds',
    'run_experiment',
    'train_or_reuse',
]
