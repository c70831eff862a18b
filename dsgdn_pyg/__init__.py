"""dsgdn-pyg: AMB-DSGDN for multimodal emotion recognition in conversation, on PyTorch Geometric."""
__version__ = '0.1.0'


def __getattr__(name):
    # Imported on first use, so that `import dsgdn_pyg` (and the CLI's start) stays light.
    if name == 'predict_dialogues':
        from dsgdn_pyg.inference.predict import predict_dialogues
        return predict_dialogues
    if name in ('load_model', 'Model'):
        from dsgdn_pyg.inference import model
        return getattr(model, name)
    raise AttributeError(f"module 'dsgdn_pyg' has no attribute {name!r}")


__all__ = ['Model', '__version__', 'load_model', 'predict_dialogues']
