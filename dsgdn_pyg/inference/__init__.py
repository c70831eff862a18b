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
from dsgdn_pyg.lazy import lazy_package

lazy_package(globals(), {
    'loading': 'checkpoint_model_name model_from_checkpoint',
    'predict': 'DialoguePrediction predict_dialogues',
    'streaming': 'StreamingRecognizer',
})
