"""dsgdn-pyg: AMB-DSGDN for multimodal emotion recognition in conversation, on PyTorch Geometric."""
from dsgdn_pyg.lazy import lazy_package

__version__ = '0.1.0'
__all__ = ['Model', '__version__', 'load_model', 'predict_dialogues']

# Imported on first use, so that `import dsgdn_pyg` (and the CLI's start) stays light.
lazy_package(globals(), {'inference.predict': 'predict_dialogues',
                         'inference.model': 'Model load_model'})
