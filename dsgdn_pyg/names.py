r"""The names the command line needs before it imports torch, in one torch-free module: tests
check that each agrees with the registry it mirrors."""

#: The modality letters (:obj:`dsgdn_pyg.data.MODALITIES`).
MODALITIES = ('t', 'a', 'v')

#: The architectures a run can train (the keys of :obj:`dsgdn_pyg.models.MODELS`).
MODEL_NAMES = ('amb-dsgdn', 'sync-tva')

#: The paper's experiments (``benchmarks.experiments.EXPERIMENT_NAMES``).
EXPERIMENT_NAMES = ('modalities', 'ablation', 'window', 'heads', 'warmup', 'dropout-grid',
                    'noise', 'long', 'imbalance', 'overhead')

#: The synthetic shapes of ``dsgdn-pyg benchmark --scenario`` (``benchmarks.scenarios``).
SCENARIO_NAMES = ('iemocap', 'long-400', 'long-1600', 'long-10000')

#: The implementations a scenario compares.
IMPLEMENTATIONS = ('sparse', 'dense')
