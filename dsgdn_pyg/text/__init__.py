r"""Text encoders: utterance strings to feature matrices.

Every encoder has ``transform(texts) -> np.ndarray [N, D]`` (float32), ``out_channels`` and
``state_dict()``; :func:`text_encoder_from_state` rebuilds the encoder a dataset or checkpoint
stored, so new transcripts are embedded exactly as the training data was. A sentence encoder
may read each utterance with the previous ones of its dialogue (its ``context``);
:func:`~dsgdn_pyg.text.context.embed_dialogues` gives every encoder its inputs;
:mod:`dsgdn_pyg.text.choice` says which encoder a name stands for, and
:mod:`dsgdn_pyg.text.packaged` finds the ones inside the extras' wheels (``minilm``,
``mpnet``).

The names below are imported on first use, so that the torch-free modules of this package
(:mod:`~dsgdn_pyg.text.choice`, :mod:`~dsgdn_pyg.text.context`) can be imported without torch.
"""
from dsgdn_pyg.lazy import lazy_package

__all__ = ['DEFAULT_SVD_DIM', 'SentenceEncoder', 'embed_dialogues', 'TfidfFeaturizer',
           'text_encoder_from_state', 'text_extra_available']

lazy_package(globals(), {
    'context': 'embed_dialogues',
    'sentence': 'SENTENCE_FORMAT SentenceEncoder text_extra_available',
    'state': 'text_encoder_from_state',
    'tfidf': 'DEFAULT_SVD_DIM TFIDF_FORMAT TfidfFeaturizer',
})
