r"""Training and checkpoints of AMB-DSGDN (inference: :mod:`dsgdn_pyg.inference`).

The names below are imported on first use, so that the command line can read the settings
(:mod:`dsgdn_pyg.train.config`) to build its options without importing torch.
"""
import importlib
from typing import Any

# Public name -> module of this package that defines it.
_EXPORTS = {
    'CheckpointError': 'checkpoint',
    'ConfigError': 'config',
    'TrainConfig': 'config',
    'load_checkpoint': 'checkpoint',
    'parse_modalities': 'config',
    'preset_defaults': 'config',
    'read_toml': 'config',
    'save_checkpoint': 'checkpoint',
    'train': 'trainer',
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f'{__name__}.{_EXPORTS[name]}'), name)
