r"""Training and checkpoints of AMB-DSGDN (inference: :mod:`dsgdn_pyg.inference`).

The names below are imported on first use, so that the command line can read the settings
(:mod:`dsgdn_pyg.train.config`) to build its options without importing torch.
"""
from dsgdn_pyg.lazy import lazy_exports

# Public name -> module of this package that defines it.
_EXPORTS = {
    'CheckpointError': 'checkpoint',
    'ConfigError': 'config',
    'TrainConfig': 'config',
    'load_checkpoint': 'checkpoint',
    'parse_modalities': 'config',
    'preset_defaults': 'config',
    'read_toml': 'config_file',
    'save_checkpoint': 'checkpoint',
    'train': 'trainer',
}

__all__ = list(_EXPORTS)


__getattr__ = lazy_exports(__name__, _EXPORTS)
