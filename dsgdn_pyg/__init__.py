"""dsgdn-pyg: AMB-DSGDN for multimodal emotion recognition in conversation, on PyTorch Geometric."""
from dsgdn_pyg.lazy import lazy_exports

__version__ = '0.1.0'

# Imported on first use, so that `import dsgdn_pyg` (and the CLI's start) stays light.
__getattr__ = lazy_exports(__name__, {'predict_dialogues': 'inference.predict'})

__all__ = ['__version__', 'predict_dialogues']
