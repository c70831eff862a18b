r"""Inference from a checkpoint written by :func:`dsgdn_pyg.train.train`: loading its model
(:mod:`~dsgdn_pyg.inference.loading`), scoring or predicting a dataset split
(:mod:`~dsgdn_pyg.inference.evaluate`), predicting your own conversations
(:mod:`~dsgdn_pyg.inference.predict`) and recognising a live one
(:mod:`~dsgdn_pyg.inference.streaming`).

The names below are imported on first use, so that ``import dsgdn_pyg.inference`` stays light.
The functions :func:`~dsgdn_pyg.inference.evaluate.evaluate` and
:func:`~dsgdn_pyg.inference.evaluate.predict` are imported from their module: the names
``evaluate`` and ``predict`` of this package are its modules.
"""
from dsgdn_pyg.lazy import lazy_exports

# Public name -> module of this package that defines it.
_EXPORTS = {
    'DialoguePrediction': 'predict',
    'StreamingRecognizer': 'streaming',
    'checkpoint_model_name': 'loading',
    'model_from_checkpoint': 'loading',
    'predict_dialogues': 'predict',
}

__all__ = list(_EXPORTS)


__getattr__ = lazy_exports(__name__, _EXPORTS)
