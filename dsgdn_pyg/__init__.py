"""dsgdn-pyg: AMB-DSGDN for multimodal emotion recognition in conversation, on PyTorch Geometric."""
__version__ = '0.1.0'
