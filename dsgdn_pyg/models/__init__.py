r"""The models: :class:`AMBDSGDN`, its dense reference :class:`DenseAMBDSGDN` and
:class:`SyncTVA`; each declares its settings in a torch-free file beside it
(:class:`AMBDSGDNSettings`, :class:`SyncTVASettings`), registered in
:obj:`~dsgdn_pyg.models.registry.MODEL_SETTINGS`.

The names below are imported on first use, so that the command line can read the model
settings without importing torch.
"""
from typing import Any

from dsgdn_pyg.lazy import lazy_exports

# Public name -> module of this package that defines it.
_EXPORTS = {
    'AMBDSGDN': 'amb_dsgdn',
    'ModelOutput': 'amb_dsgdn',
    'DenseAMBDSGDN': 'dense_amb_dsgdn',
    'SyncTVA': 'sync_tva',
    'ModelSettings': 'model_settings',
    'AMBDSGDNSettings': 'amb_dsgdn_settings',
    'SyncTVASettings': 'sync_tva_settings',
    'MODEL_SETTINGS': 'registry',
    'model_settings': 'registry',
    'model_class': 'registry',
    'build_model': 'registry',
    'dialogue_transform': 'registry',
}
_lazy = lazy_exports(__name__, _EXPORTS)


def __getattr__(name: str) -> Any:
    if name == 'MODELS':
        # The model classes by name (imports them): the registry's, resolved.
        from dsgdn_pyg.models.registry import MODEL_SETTINGS
        return {key: settings.model_class() for key, settings in MODEL_SETTINGS.items()}
    return _lazy(name)


__all__ = list(_EXPORTS) + ['MODELS']


def __dir__():
    # The lazy names too, for dir() and the API reference (autodoc lists a module's members).
    return sorted(set(globals()) | set(__all__))
