r"""The models: :class:`AMBDSGDN`, its dense reference :class:`DenseAMBDSGDN` and
:class:`SyncTVA`; each declares its settings in a torch-free file beside it
(:class:`AMBDSGDNSettings`, :class:`SyncTVASettings`), registered in
:obj:`~dsgdn_pyg.models.registry.MODEL_SETTINGS`.

The names below are imported on first use, so that the command line can read the model
settings without importing torch.
"""
from dsgdn_pyg.lazy import lazy_package

lazy_package(globals(), {
    'amb_dsgdn': 'AMBDSGDN ModelOutput',
    'amb_dsgdn_settings': 'AMBDSGDNSettings',
    'dense_amb_dsgdn': 'DenseAMBDSGDN',
    'model_settings': 'ModelSettings',
    'registry': 'MODELS MODEL_SETTINGS build_model dialogue_transform model_class model_settings',
    'sync_tva': 'SyncTVA',
    'sync_tva_settings': 'SyncTVASettings',
})
