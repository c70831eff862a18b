r"""The models a run can train, by the name ``--model`` takes: one line per model, its
settings class (:class:`~dsgdn_pyg.models.ModelSettings`), which names the model class.
Torch-free: a model class is imported when it is built."""
from typing import Any, Callable, Dict

from dsgdn_pyg.lookup import lookup_name
from dsgdn_pyg.models.amb_dsgdn_settings import AMBDSGDNSettings
from dsgdn_pyg.models.model_settings import ModelSettings
from dsgdn_pyg.models.sync_tva_settings import SyncTVASettings

#: Settings class by model name (``--model``); the first is the default.
MODEL_SETTINGS: Dict[str, type] = {
    AMBDSGDNSettings.name: AMBDSGDNSettings,
    SyncTVASettings.name: SyncTVASettings,
}


def model_settings(name: str) -> type:
    r"""The settings class of the model registered as :obj:`name`."""
    return lookup_name(MODEL_SETTINGS, name, 'model')


def model_class(name: str) -> type:
    r"""The model class registered as :obj:`name` in :obj:`MODEL_SETTINGS`."""
    return model_settings(name).model_class()


def build_model(name: str, **kwargs: Any):
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
        from dsgdn_pyg.data import DialogueGraph
        return DialogueGraph(window)
    return make(window, **model_config)


__all__ = ['MODELS', 'MODEL_SETTINGS', 'ModelSettings', 'build_model', 'dialogue_transform',
           'model_class', 'model_settings']


def __getattr__(name: str) -> Any:
    if name == 'MODELS':  # the model classes by name: imported (with torch) when read
        return {key: settings.model_class() for key, settings in MODEL_SETTINGS.items()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
