"""dsgdn-pyg: AMB-DSGDN for multimodal emotion recognition in conversation, on PyTorch Geometric."""
from dsgdn_pyg.lazy import lazy_exports

__version__ = '0.1.0'

# Imported on first use, so that `import dsgdn_pyg` (and the CLI's start) stays light.
__getattr__ = lazy_exports(__name__, {'predict_dialogues': 'inference.predict',
                                      'load_model': 'inference.model',
                                      'Model': 'inference.model'})

__all__ = ['Model', '__version__', 'load_model', 'predict_dialogues']
