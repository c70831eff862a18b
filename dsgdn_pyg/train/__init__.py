r"""Training and checkpoints of AMB-DSGDN (inference: :mod:`dsgdn_pyg.inference`).

The names below are imported on first use, so that the command line can read the settings
(:mod:`dsgdn_pyg.train.config`) to build its options without importing torch.
"""
from dsgdn_pyg.lazy import lazy_package

lazy_package(globals(), {
    'checkpoint': 'CheckpointError load_checkpoint save_checkpoint',
    'config': 'ConfigError TrainConfig parse_modalities preset_defaults',
    'config_file': 'read_toml',
    'trainer': 'train',
})
