r"""A trained model in Python: ``dsgdn_pyg.load_model(DIR)``.

>>> import dsgdn_pyg
>>> model = dsgdn_pyg.load_model('meld-minilm')   # built in; or a folder # doctest: +SKIP
>>> [result] = model.predict([[{'speaker': 'Ann', 'text': 'I got the job!'},
...                            {'speaker': 'Bob', 'text': 'No way!'}]])  # doctest: +SKIP
>>> result.predicted, result.confidence                               # doctest: +SKIP
>>> live = model.stream()            # a causal model only              # doctest: +SKIP
>>> live.label(live.push('Ann', text='Hi!', dialogue='call-1'))       # doctest: +SKIP
"""
import os
from typing import Any, Dict, Hashable, List, Mapping, Optional, Sequence, Tuple, Union

from dsgdn_pyg.inference.model_folder import export_model, load_payload

PathLike = Union[str, os.PathLike]


class Model:
    r"""A trained model: a model folder (:func:`~dsgdn_pyg.inference.model_folder.export_model`),
    a run folder of ``dsgdn-pyg train``, a ``best.pt``/``last.pt`` checkpoint or the name
    of a built-in model (:mod:`dsgdn_pyg.builtin`, e.g. ``'meld-minilm'``).

    The network and its text encoder are loaded at the first :meth:`predict` and kept, so
    that later calls only compute.

    Args:
        path (str or dict): Where the model is (or a loaded checkpoint payload).
    """
    def __init__(self, path: Union[PathLike, Mapping[str, Any]]):
        self.payload, self.source = load_payload(path)
        self._loaded: Optional[Tuple[Any, Any, Any]] = None  # (device, network, text encoder)

    @property
    def label_names(self) -> List[str]:
        return list(self.payload['label_names'])

    @property
    def modalities(self) -> List[str]:
        return list(self.payload['modalities'])

    @property
    def window(self) -> int:
        return int(self.payload['window'])

    @property
    def config(self) -> Dict[str, Any]:
        r"""The architecture's settings (``model_config``)."""
        return dict(self.payload['model_config'])

    def predict(self, dialogues: Sequence[Any], device: str = 'auto',
                batch_size: Optional[int] = None, attention: bool = False) -> List[Any]:
        r"""The :class:`~dsgdn_pyg.inference.predict.DialoguePrediction` of each dialogue (utterance
        dicts with ``'speaker'`` and ``'text'``, see
        :func:`~dsgdn_pyg.inference.predict.predict_dialogues`)."""
        from dsgdn_pyg.inference.loading import model_from_checkpoint
        from dsgdn_pyg.inference.predict import checkpoint_text_encoder, predict_dialogues
        from dsgdn_pyg.train.data import resolve_device

        torch_device = resolve_device(device)
        if self._loaded is None or self._loaded[0] != torch_device:
            network, _ = model_from_checkpoint(self.payload, map_location=torch_device)
            encoder = (checkpoint_text_encoder(self.payload, torch_device)
                       if self.payload.get('text_featurizer') else None)
            self._loaded = (torch_device, network, encoder)
        return predict_dialogues(self.payload, dialogues, device=device,
                                 batch_size=batch_size, attention=attention,
                                 text_encoder=self._loaded[2], model=self._loaded[1])

    def stream(self, speaker_ids: Optional[Mapping[Hashable, int]] = None,
               device: str = 'cpu'):
        r"""A :class:`~dsgdn_pyg.inference.streaming.StreamingRecognizer` (causal AMB-DSGDN only):
        ``push(speaker, text=..., dialogue=...)`` returns each utterance's probabilities as
        it arrives."""
        from dsgdn_pyg.inference.streaming import StreamingRecognizer

        return StreamingRecognizer.from_checkpoint(self.payload, map_location=device,
                                                   speaker_ids=speaker_ids)

    def evaluate(self, dataset: Optional[str] = None, split: str = 'test',
                 **kwargs) -> Dict[str, Any]:
        r""":func:`dsgdn_pyg.train.evaluate` of this model."""
        from dsgdn_pyg.inference.evaluate import evaluate

        return evaluate(self.payload, dataset=dataset, split=split, **kwargs)

    def export(self, out: PathLike) -> Dict[str, Any]:
        r"""Writes this model as a model folder (returns its ``config.json``)."""
        return export_model(self.payload, out)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.source!r}: "
                f"{self.payload.get('model_name', 'amb-dsgdn')}, modalities "
                f"{','.join(self.modalities)}, {len(self.label_names)} labels)")


def load_model(path: Union[PathLike, Mapping[str, Any]]) -> Model:
    r"""The :class:`Model` at :obj:`path` (model folder, run folder, checkpoint, or the name
    of a built-in model such as ``'meld-minilm'``)."""
    return Model(path)


__all__ = ['Model', 'load_model']
