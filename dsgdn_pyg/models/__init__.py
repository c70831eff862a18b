from typing import Any, Callable, Dict

import torch

from .amb_dsgdn import AMBDSGDN, ModelOutput
from .dense_amb_dsgdn import DenseAMBDSGDN
from .sync_tva import SyncTVA

#: The architectures by the name :class:`~dsgdn_pyg.train.TrainConfig` uses (``--model``).
MODELS: Dict[str, type] = {'amb-dsgdn': AMBDSGDN, 'sync-tva': SyncTVA}


def model_class(name: str) -> type:
    r"""The model class registered as :obj:`name` in :obj:`MODELS`."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of {', '.join(MODELS)}")
    return MODELS[name]


def build_model(name: str, **kwargs: Any) -> torch.nn.Module:
    r"""Builds the model registered as :obj:`name` from its keyword arguments (e.g. the
    :meth:`config` stored in a checkpoint)."""
    return model_class(name)(**kwargs)


def dialogue_transform(name: str, window: int, model_config: Dict[str, Any]) -> Callable:
    r"""The transform that turns a dialogue :class:`~torch_geometric.data.Data` into the input
    graph of model :obj:`name`: the model class's static :obj:`dialogue_transform(window,
    **model_config)` if it has one, else :class:`~dsgdn_pyg.data.DialogueGraph` of
    :obj:`window` (AMB-DSGDN's typed dialogue graph)."""
    make = getattr(model_class(name), 'dialogue_transform', None)
    if make is None:
        from ..data import DialogueGraph
        return DialogueGraph(window)
    return make(window, **model_config)


__all__ = [
    'AMBDSGDN',
    'ModelOutput',
    'DenseAMBDSGDN',
    'SyncTVA',
    'MODELS',
    'model_class',
    'build_model',
    'dialogue_transform',
]
