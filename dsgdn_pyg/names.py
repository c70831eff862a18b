r"""The names the command line needs before it imports torch and that live outside the
package or behind torch, in one torch-free module: tests check that each agrees with the
registry it mirrors. (The model names come from the torch-free model registry itself,
:obj:`dsgdn_pyg.models.registry.MODEL_SETTINGS`.)"""

#: The modality letters (:obj:`dsgdn_pyg.data.MODALITIES`).
MODALITIES = ('t', 'a', 'v')

#: The paper's experiments (``benchmarks.experiments.EXPERIMENT_NAMES``).
EXPERIMENT_NAMES = ('modalities', 'ablation', 'window', 'heads', 'warmup', 'dropout-grid',
                    'noise', 'long', 'imbalance', 'overhead')

#: The synthetic shapes of ``dsgdn-pyg benchmark --scenario`` (``benchmarks.scenarios``).
SCENARIO_NAMES = ('iemocap', 'long-400', 'long-1600', 'long-10000')

#: The implementations a scenario compares.
IMPLEMENTATIONS = ('sparse', 'dense')
