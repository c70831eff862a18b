r"""Emotions of your own conversations: transcripts (and recordings) in, one prediction per
utterance out, from a checkpoint of ``dsgdn-pyg train``.

>>> from dsgdn_pyg import predict_dialogues
>>> talk = [{'speaker': 'Ann', 'text': 'I got the job!'},
...         {'speaker': 'Bob', 'text': 'No way! That is amazing.'}]
>>> result, = predict_dialogues('runs/meld/best.pt', [talk])    # doctest: +SKIP
>>> result.predicted, result.confidence                          # doctest: +SKIP

The text is featurised by the checkpoint's own stored text encoder
(:func:`dsgdn_pyg.text.text_encoder_from_state`), recordings by openSMILE with the checkpoint's
feature set and scaling (:mod:`dsgdn_pyg.audio`), so new dialogues go through exactly the
pipeline the training data went through.
"""
import os
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np
import torch

from dsgdn_pyg.data.validate import build_dialogue, speaker_indices
from dsgdn_pyg.datasets.transcript import Transcript, as_transcripts
from dsgdn_pyg.io import atomic_write

from dsgdn_pyg.inference.attention import (AttentionLink, AttentionRecorder, attention_links,
                                           last_graph_convs)
from dsgdn_pyg.inference.loading import Checkpoint


@dataclass
class DialoguePrediction:
    r"""The prediction for one dialogue.

    Attributes:
        dialogue_id (str): The dialogue's id.
        speakers, texts (List[str]): Per utterance, in order.
        labels (List[str]): The given labels (``''`` where none).
        label_names (List[str]): The classes, in the order of :obj:`probabilities`' columns.
        probabilities (np.ndarray): ``[L, C]`` softmax of the fused logits.
        attention (List[AttentionLink], optional): With ``attention=True`` and AMB-DSGDN,
            every edge of the last graph layer (the output :class:`DiffGATConv` of the
            inter- and the intra-speaker block) with its signed weight.
    """
    dialogue_id: str
    speakers: List[str]
    texts: List[str]
    labels: List[str]
    label_names: List[str]
    probabilities: np.ndarray
    attention: Optional[List[AttentionLink]] = None

    @property
    def predicted(self) -> List[str]:
        return [self.label_names[i] for i in self.probabilities.argmax(axis=1)]

    @property
    def confidence(self) -> List[float]:
        return [float(p) for p in self.probabilities.max(axis=1)]

    def rows(self) -> List[Dict[str, Any]]:
        r"""One dict per utterance: ``dialogue``, ``position``, ``speaker``, ``text``,
        ``label`` (only when any utterance of the dialogue has one), ``predicted`` and
        ``prob_<class>`` for every class."""
        has_labels = any(self.labels)
        out = []
        for i, (speaker, text) in enumerate(zip(self.speakers, self.texts)):
            row: Dict[str, Any] = {'dialogue': self.dialogue_id, 'position': i,
                                   'speaker': speaker, 'text': text}
            if has_labels:
                row['label'] = self.labels[i]
            row['predicted'] = self.predicted[i]
            row.update({f'prob_{name}': round(float(p), 6)
                        for name, p in zip(self.label_names, self.probabilities[i])})
            out.append(row)
        return out


# --------------------------------------------------------------------------------------------
# Features of new dialogues

def _check_modalities(payload: Mapping[str, Any], source: str) -> None:
    from dsgdn_pyg.train.checkpoint import CheckpointError

    modalities = list(payload['modalities'])
    if 'v' in modalities and not payload.get('video_features'):
        raise CheckpointError(f"checkpoint {source!r} uses visual features that did not come "
                              f"from video clips (it stores no video extractor); train on a "
                              f"csv: dataset with a 'video' column, or train without 'v'")
    if 't' in modalities and not payload.get('text_featurizer'):
        raise CheckpointError(f"checkpoint {source!r} was trained on {payload['dataset']!r}, "
                              f"whose text features did not come from transcripts (it "
                              f"stores no text encoder); train on a csv: or meld-csv: "
                              f"dataset to predict from text")
    if 'a' in modalities and not payload.get('audio_features'):
        raise CheckpointError(f"checkpoint {source!r} uses audio features that did not come "
                              f"from recordings (it stores no openSMILE feature scaling); "
                              f"train on a csv: dataset with an 'audio' column, or train "
                              f"with --modalities t")


def _dialogue_audio(d: Transcript, state: Mapping[str, Any], source: str) -> np.ndarray:
    # Each utterance's recording, or else the sound track of its clip.
    from dsgdn_pyg.audio import audio_features, standardize_audio

    for u in d.utterances:
        if not u.audio and u.video is None:
            raise ValueError(f"{u.where}: field 'audio' is empty; the model uses audio, so "
                             f"every utterance needs its recording (or a video clip)")
    recorded = [k for k, u in enumerate(d.utterances) if u.audio]
    out = np.zeros((len(d.utterances), len(state['mean'])), dtype=np.float32)
    if recorded:
        raw = audio_features([d.utterances[k].audio for k in recorded],
                             [d.utterances[k].where for k in recorded], state['feature_set'])
        out[recorded] = standardize_audio(raw, state)
    if len(recorded) < len(d.utterances):
        from dsgdn_pyg.video.modality import clip_modalities
        filmed = [k for k, u in enumerate(d.utterances) if not u.audio]
        out[filmed] = clip_modalities([d.utterances[k].video for k in filmed], {'a': state},
                                      source)['a']
    return out


def checkpoint_text_encoder(payload: Mapping[str, Any], device: Any = 'cpu'):
    r"""The text encoder of a checkpoint, on :obj:`device` (a sentence encoder embeds
    there; TF-IDF always on the CPU)."""
    from dsgdn_pyg.text import text_encoder_from_state

    return text_encoder_from_state(payload['text_featurizer'], device)


def dialogue_graphs(payload: Mapping[str, Any], transcripts: Sequence[Transcript],
                    source: str = '<checkpoint>', text_encoder: Any = None,
                    device: Any = 'cpu') -> List[Any]:
    r"""The :class:`~torch_geometric.data.Data` of each transcript, featurised as the
    checkpoint's training data was (before the model's graph transform), by
    :obj:`text_encoder` (default: the checkpoint's, :func:`checkpoint_text_encoder`, on
    :obj:`device`)."""
    from dsgdn_pyg.text.context import embed_dialogues
    from dsgdn_pyg.train.checkpoint import CheckpointError

    _check_modalities(payload, source)
    modalities = list(payload['modalities'])
    if 'v' in modalities:  # before any file is read
        from dsgdn_pyg.video.modality import check_extractor
        check_extractor(payload['video_features'], f"checkpoint {source!r}")
    label_index = {name: i for i, name in enumerate(payload['label_names'])}
    max_speakers = int(payload['model_config']['num_speakers'])
    features: Dict[str, List[np.ndarray]] = {}
    if 't' in modalities:
        encoder = (text_encoder if text_encoder is not None
                   else checkpoint_text_encoder(payload, device))
        # With the previous utterances if the encoder was trained with them.
        turns = [[(u.speaker, u.text) for u in d.utterances] for d in transcripts]
        flat = np.asarray(embed_dialogues(encoder, turns), dtype=np.float32)
        sizes = np.cumsum([len(d.utterances) for d in transcripts])[:-1]
        features['t'] = np.split(flat, sizes)
    if 'a' in modalities:
        features['a'] = [_dialogue_audio(d, payload['audio_features'], source)
                         for d in transcripts]
    if 'v' in modalities:
        from dsgdn_pyg.video.modality import clip_modalities
        features['v'] = []
        for d in transcripts:
            for u in d.utterances:
                if u.video is None:
                    raise ValueError(f"{u.where}: field 'video' is empty; the model uses "
                                     f"video, so every utterance needs its clip")
            features['v'].append(clip_modalities([u.video for u in d.utterances],
                                                 {'v': payload['video_features']},
                                                 f"checkpoint {source!r}")['v'])
    out = []
    for k, d in enumerate(transcripts):
        labels = []
        for u in d.utterances:
            if u.label and u.label not in label_index:
                raise ValueError(f"{u.where}: field 'label': {u.label!r} is not a label of "
                                 f"the model (labels: {', '.join(label_index)})")
            labels.append(label_index.get(u.label, -1) if u.label else -1)
        speakers = speaker_indices(d.source, d.dialogue_id, [u.speaker for u in d.utterances])
        if max(speakers) + 1 > max_speakers:
            raise CheckpointError(f"{d.source}: dialogue {d.dialogue_id!r} has "
                                  f"{max(speakers) + 1} speakers but checkpoint {source!r} "
                                  f"was built for at most {max_speakers}")
        out.append(build_dialogue(d.source, d.dialogue_id, speakers, np.asarray(labels),
                                  {m: features[m][k] for m in modalities}))
    return out


# --------------------------------------------------------------------------------------------
# Prediction

def predict_dialogues(checkpoint: Checkpoint, dialogues: Sequence[Any],
                      device: str = 'auto', batch_size: Optional[int] = None,
                      attention: bool = False, text_encoder: Any = None,
                      model: Optional[torch.nn.Module] = None) -> List[DialoguePrediction]:
    r"""Predicts the emotion of every utterance of new dialogues.

    Args:
        checkpoint (str or dict): A ``best.pt``/``last.pt`` of ``dsgdn-pyg train`` (path or
            loaded payload). Its text encoder (and audio, video scaling) featurise the
            dialogues.
        dialogues (list): Each a list of utterance dicts (``'text'``, ``'speaker'``, optional
            ``'label'``, ``'audio'``, a recording's path, for a model that uses audio, and
            ``'video'``, a clip's path or ``{'path', 'start', 'end'}``, for one that uses
            video or takes its audio from the clips),
            a dict ``{'id': ..., 'utterances': [...]}``, or a
            :class:`~dsgdn_pyg.datasets.transcript.Transcript` (as
            :func:`~dsgdn_pyg.datasets.transcript.read_transcripts` reads from files).
        device (str): ``'auto'``, ``'cpu'`` or ``'cuda'``. (default: :obj:`'auto'`)
        batch_size (int, optional): Dialogues per forward pass; :obj:`None` = the run's.
            (default: :obj:`None`)
        attention (bool): Also return the signed attention of the last graph layer
            (AMB-DSGDN only; :obj:`None` for other models). (default: :obj:`False`)
        text_encoder, model (optional): The checkpoint's text encoder and model, already
            loaded (what :class:`~dsgdn_pyg.inference.model.Model` keeps between calls, so
            that a second call loads nothing). (default: :obj:`None`)

    Returns:
        List[DialoguePrediction]: One per dialogue, in input order.

    Raises:
        ValueError: Bad input, naming the file (or dialogue), line and field.
        CheckpointError: A checkpoint that cannot featurise transcripts.
    """
    transcripts = _transcripts(dialogues)  # bad input is refused before the model loads
    return DialoguePredictor(checkpoint, device, model, text_encoder).predict(
        transcripts, batch_size, attention)


def _transcripts(dialogues: Sequence[Any]) -> List[Transcript]:
    transcripts = as_transcripts(dialogues)
    if not transcripts:
        raise ValueError("'dialogues' is empty: nothing to predict")
    return transcripts


class DialoguePredictor:
    r"""A checkpoint's model, text encoder and graph transform, loaded once, for predicting
    many calls' dialogues (:func:`predict_dialogues` is one call of it; a server keeps one).

    Args:
        checkpoint (str or dict): As for :func:`predict_dialogues`.
        device (str): ``'auto'``, ``'cpu'`` or ``'cuda'``. (default: :obj:`'auto'`)
        model, text_encoder (optional): The checkpoint's model and text encoder, already
            loaded (:obj:`None`: loaded here; the text encoder on :obj:`device`).
            (default: :obj:`None`)
    """
    def __init__(self, checkpoint: Checkpoint, device: str = 'auto',
                 model: Optional[torch.nn.Module] = None, text_encoder: Any = None):
        from dsgdn_pyg.models import dialogue_transform
        from dsgdn_pyg.inference.loading import (checkpoint_model_name, checkpoint_payload,
                                                 model_from_checkpoint)
        from dsgdn_pyg.train.data import resolve_device

        self.source = '<checkpoint>' if isinstance(checkpoint, Mapping) else \
            os.fspath(checkpoint)
        self.device = resolve_device(device)
        if model is None:
            model, self.payload = model_from_checkpoint(checkpoint, map_location=self.device)
        else:  # already built from this checkpoint: only its payload is read
            self.payload, _ = checkpoint_payload(checkpoint)
        self.model = model
        self.window = int(self.payload['window'])
        self.transform = dialogue_transform(checkpoint_model_name(self.payload), self.window,
                                            self.payload['model_config'])
        self.text_encoder = text_encoder
        if text_encoder is None and 't' in self.payload['modalities'] and \
                self.payload.get('text_featurizer'):
            self.text_encoder = checkpoint_text_encoder(self.payload, self.device)

    def graphs(self, transcripts: Sequence[Transcript]) -> List[Any]:
        r"""The model's input graphs of :obj:`transcripts` (:func:`dialogue_graphs`, then the
        graph transform); bad input raises as :func:`predict_dialogues` says."""
        from dsgdn_pyg.train.data import prepare_dialogues

        graphs = dialogue_graphs(self.payload, transcripts, self.source, self.text_encoder,
                                 self.device)
        return prepare_dialogues(graphs, self.payload['modalities'], self.window,
                                 self.transform)

    def probabilities(self, graphs: Sequence[Any], batch_size: int) -> np.ndarray:
        r"""``[N, C]`` class probabilities (float64) of every utterance of :obj:`graphs`, in
        order, :obj:`batch_size` dialogues per forward pass. Each graph is its own component
        of a batch, so batching changes nothing but float rounding."""
        return self._forward(graphs, batch_size)[0]

    def _forward(self, graphs: Sequence[Any], batch_size: int,
                 recorder: Optional[AttentionRecorder] = None):
        from dsgdn_pyg.train.data import collate, torch_threads
        from dsgdn_pyg.train.step import predict_logits

        batches = collate(graphs, batch_size)
        with torch_threads(None, self.device):
            _, logits = predict_logits(self.model, batches, self.device)
            links = attention_links(recorder, batches) if recorder else None
        return torch.softmax(logits.double(), dim=-1).numpy(), links

    def predict(self, dialogues: Sequence[Any], batch_size: Optional[int] = None,
                attention: bool = False) -> List[DialoguePrediction]:
        r""":func:`predict_dialogues` with this loaded model."""
        transcripts = _transcripts(dialogues)
        graphs = self.graphs(transcripts)
        if batch_size is None:
            batch_size = int(self.payload['train_config'].get('batch_size', 16))
        recorder = AttentionRecorder(last_graph_convs(self.model)) if attention else None
        try:
            probs, links = self._forward(graphs, batch_size, recorder)
        finally:
            if recorder is not None:
                recorder.remove()
        return self.results(transcripts, probs, links)

    def results(self, transcripts: Sequence[Transcript], probs: np.ndarray,
                links: Optional[List[List[AttentionLink]]] = None
                ) -> List[DialoguePrediction]:
        r"""One :class:`DialoguePrediction` per transcript from the rows of :obj:`probs`."""
        out, offset = [], 0
        for k, d in enumerate(transcripts):
            length = len(d.utterances)
            out.append(DialoguePrediction(
                d.dialogue_id, [u.speaker for u in d.utterances],
                [u.text for u in d.utterances], [u.label for u in d.utterances],
                list(self.payload['label_names']), probs[offset:offset + length],
                links[k] if links is not None else None))
            offset += length
        return out


def checkpoint_columns(payload: Mapping[str, Any],
                       **columns: Optional[str]) -> Dict[str, Any]:
    r"""The transcript columns of a checkpoint: the ``[csv]`` mapping it was trained with
    (MELD's by default), with :obj:`columns` (``text=``, ``speaker=``, ...) replacing fields."""
    from dsgdn_pyg.datasets.transcript import transcript_columns

    options = payload.get('data_options') or {}
    kind = str(payload.get('dataset', '')).split(':', 1)[0]
    mapping = options.get('csv') if kind in ('csv', 'meld-csv') else None
    return transcript_columns(mapping, **columns)


def transcripts_of_checkpoint(checkpoint: Checkpoint, paths: Sequence[Union[str, os.PathLike]],
                              **columns: Optional[str]):
    r"""Reads transcript files with a checkpoint's columns (:func:`checkpoint_columns`).

    Returns:
        (List[Transcript], dict): The dialogues, and the loaded checkpoint (pass it to
        :func:`predict_dialogues` to avoid reading the file twice).
    """
    from dsgdn_pyg.datasets.transcript import read_transcripts
    from dsgdn_pyg.inference.model_folder import load_payload

    payload, _ = load_payload(checkpoint)
    dialogues = read_transcripts(paths, checkpoint_columns(payload, **columns),
                                 need_audio='a' in payload['modalities'],
                                 need_video='v' in payload['modalities'])
    return dialogues, payload


def prediction_scores(predictions: Sequence[DialoguePrediction]) -> Optional[Dict[str, Any]]:
    r""":func:`~dsgdn_pyg.metrics.classification_metrics` over the labelled utterances
    (``wa_f1``, ``wa_acc`` in percent, ...), or :obj:`None` when none is labelled."""
    from dsgdn_pyg.metrics import classification_metrics

    if not predictions:
        return None
    names = predictions[0].label_names
    index = {name: i for i, name in enumerate(names)}
    y = [index[l] if l else -1 for p in predictions for l in p.labels]
    if all(v < 0 for v in y):
        return None
    pred = [int(i) for p in predictions for i in p.probabilities.argmax(axis=1)]
    return classification_metrics(torch.tensor(y), torch.tensor(pred), names)


def write_prediction_rows(rows: Sequence[Mapping[str, Any]], path: Union[str, os.PathLike]
                          ) -> None:
    r"""Writes prediction rows atomically: JSON lines for a ``.jsonl``/``.ndjson`` path,
    else CSV (header = the union of the rows' keys, in order of appearance)."""
    from dsgdn_pyg.inference.output import rows_text

    if not rows:
        raise ValueError("'rows' is empty: nothing to write")
    path = os.fspath(path)
    text = rows_text(rows, 'jsonl' if path.lower().endswith(('.jsonl', '.ndjson')) else 'csv')
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    atomic_write(path, lambda f: f.write(text.encode('utf-8')))


__all__ = [
    'AttentionLink',
    'DialoguePrediction',
    'DialoguePredictor',
    'checkpoint_columns',
    'dialogue_graphs',
    'predict_dialogues',
    'prediction_scores',
    'transcripts_of_checkpoint',
    'write_prediction_rows',
]
