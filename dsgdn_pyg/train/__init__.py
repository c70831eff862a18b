r"""Training, checkpoints and inference of AMB-DSGDN."""
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .config import ConfigError, TrainConfig, parse_modalities, preset_defaults, read_toml
from .trainer import train
from .inference import evaluate, load_model, predict, write_predictions

__all__ = [
    'CheckpointError',
    'ConfigError',
    'TrainConfig',
    'evaluate',
    'load_checkpoint',
    'load_model',
    'parse_modalities',
    'predict',
    'preset_defaults',
    'read_toml',
    'save_checkpoint',
    'train',
    'write_predictions',
]
