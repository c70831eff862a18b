r"""Evaluation and prediction of a checkpoint on a dataset split.

Another dataset than the run's own can be given, as long as it has the modalities, feature
widths and labels the model was trained on.
"""
import csv
import io
import os
from typing import Any, Dict, List, Optional, Union

import torch

from dsgdn_pyg.data import DialogueCorpus
from dsgdn_pyg.inference.loading import (Checkpoint, checkpoint_model_name, checkpoint_payload,
                                         model_from_checkpoint)
from dsgdn_pyg.metrics import classification_metrics, format_confusion
from dsgdn_pyg.models import dialogue_transform
from dsgdn_pyg.train.checkpoint import CheckpointError, atomic_write
from dsgdn_pyg.train.data import (collate, load_dataset, prepare_dialogues, resolve_device,
                                  torch_threads)
from dsgdn_pyg.train.step import predict_logits

SPLITS = ('train', 'valid', 'test')


def _check_corpus(payload: Dict[str, Any], corpus: DialogueCorpus, source: str) -> None:
    missing = [m for m in payload['modalities'] if m not in corpus.feature_dims]
    if missing:
        raise CheckpointError(f"checkpoint {source!r} uses modalities "
                              f"{','.join(payload['modalities'])} but dataset {corpus.name!r} has "
                              f"only {','.join(corpus.modalities)}")
    dims = {m: int(corpus.feature_dims[m]) for m in payload['modalities']}
    expected = payload['model_config']['feature_dims']
    if dims != {m: int(d) for m, d in expected.items()}:
        raise CheckpointError(f"checkpoint {source!r} was trained on feature widths {expected} "
                              f"but dataset {corpus.name!r} has {dims}")
    if list(corpus.label_names) != list(payload['label_names']):
        raise CheckpointError(f"checkpoint {source!r} predicts labels {payload['label_names']} "
                              f"but dataset {corpus.name!r} has {corpus.label_names}")
    if corpus.num_speakers > payload['model_config']['num_speakers']:
        raise CheckpointError(f"checkpoint {source!r} was built for at most "
                              f"{payload['model_config']['num_speakers']} speakers per dialogue "
                              f"but dataset {corpus.name!r} has {corpus.num_speakers}")


def _with_training_transform(payload: Dict[str, Any], dataset: str,
                             data_options: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    # New transcripts must go through the text transform fitted on the training CSVs and keep
    # the training label order; the user may still override either.
    options = dict(data_options or {})
    if dataset.split(':', 1)[0] in ('csv', 'meld-csv') and payload.get('text_featurizer'):
        options.setdefault('text_featurizer', payload['text_featurizer'])
        options.setdefault('label_names', list(payload['label_names']))
    return options


def _run(checkpoint: Checkpoint, dataset: Optional[str], split: str,
         data_options: Optional[Dict[str, Any]], device: str, batch_size: Optional[int],
         corpus: Optional[DialogueCorpus]):
    if split not in SPLITS:
        raise ValueError(f"'split' must be one of {SPLITS}, got {split!r}")
    if corpus is not None and dataset is not None:
        raise ValueError("give 'dataset' or 'corpus', not both")
    payload, source = checkpoint_payload(checkpoint)
    torch_device = resolve_device(device)
    model, payload = model_from_checkpoint(payload, map_location=torch_device)
    if corpus is not None:
        dataset = corpus.name
    elif dataset is None:
        if payload.get('external_corpus'):
            raise CheckpointError(f"checkpoint {source!r} was trained on a corpus passed to "
                                  f"train() ({payload.get('corpus_name')!r}); pass that corpus "
                                  f"or name a dataset")
        # The run's own data: same loader options and seed, hence the same splits.
        dataset, options = payload['dataset'], dict(payload['data_options'])
        if payload.get('model_folder'):  # it carries its text encoder: nothing is refitted
            options = _with_training_transform(payload, dataset, options)
        corpus = load_dataset(dataset, int(payload.get('data_seed', 0)), options,
                              device=torch_device)
    else:
        corpus = load_dataset(dataset, int(payload.get('data_seed', 0)),
                              _with_training_transform(payload, dataset, data_options),
                              device=torch_device)
    _check_corpus(payload, corpus, source)
    window = int(payload['window'])
    transform = dialogue_transform(checkpoint_model_name(payload), window,
                                   payload['model_config'])
    dialogues = prepare_dialogues(corpus.split(split), payload['modalities'], window, transform)
    if batch_size is None:
        batch_size = int(payload['train_config'].get('batch_size', 16))
    with torch_threads(None, torch_device):
        y, logits = predict_logits(model, collate(dialogues, batch_size), torch_device)
    return payload, corpus, dataset, dialogues, y, logits


def evaluate(checkpoint: Checkpoint, dataset: Optional[str] = None, split: str = 'test',
             data_options: Optional[Dict[str, Any]] = None, device: str = 'auto',
             batch_size: Optional[int] = None,
             corpus: Optional[DialogueCorpus] = None) -> Dict[str, Any]:
    r"""Scores a checkpoint on a split.

    Args:
        checkpoint (str or dict): Path of a ``.pt`` file (``best.pt`` or ``last.pt``), or a
            loaded checkpoint.
        dataset (str, optional): Dataset name; :obj:`None` reloads the training run's dataset
            with its options and seed. (default: :obj:`None`)
        split (str): ``'train'``, ``'valid'`` or ``'test'``. (default: :obj:`'test'`)
        data_options (dict, optional): Loader options when :obj:`dataset` is given.
            (default: :obj:`None`)
        device (str): ``'auto'``, ``'cpu'``, ``'cuda'``. (default: :obj:`'auto'`)
        batch_size (int, optional): Dialogues per batch; :obj:`None` = the run's.
            (default: :obj:`None`)
        corpus (DialogueCorpus, optional): Data to score instead of a named dataset, e.g. the
            corpus a run was trained on from Python. (default: :obj:`None`)

    Returns:
        dict: The entries of :func:`~dsgdn_pyg.metrics.classification_metrics` (``wa_f1``,
        ``wa_acc`` in percent, ``per_class_f1``, ``confusion``, ...) plus ``report``
        (scikit-learn's ``classification_report`` text), ``confusion_table`` (text),
        ``dataset``, ``split``, ``epoch`` and ``label_names``.
    """
    from sklearn.metrics import classification_report

    payload, corpus, dataset, _, y, logits = _run(checkpoint, dataset, split, data_options,
                                                  device, batch_size, corpus)
    pred = logits.argmax(dim=-1)
    label_names = list(corpus.label_names)
    metrics = classification_metrics(y, pred, label_names)
    valid = y >= 0
    if bool(valid.any()):
        report = classification_report(y[valid].numpy(), pred[valid].numpy(),
                                       labels=list(range(len(label_names))),
                                       target_names=label_names, digits=4, zero_division=0)
    else:
        report = f'(no labelled utterances in the {split} split)\n'
    metrics.update(report=report, confusion_table=format_confusion(metrics['confusion'],
                                                                   label_names),
                   dataset=dataset, split=split, epoch=int(payload['epoch']),
                   label_names=label_names, modalities=list(payload['modalities']))
    return metrics


def predict(checkpoint: Checkpoint, dataset: Optional[str] = None, split: str = 'test',
            data_options: Optional[Dict[str, Any]] = None, device: str = 'auto',
            batch_size: Optional[int] = None,
            corpus: Optional[DialogueCorpus] = None) -> List[Dict[str, Any]]:
    r"""Predicts every utterance of a split.

    Arguments as in :func:`evaluate`.

    Returns:
        List[dict]: One row per utterance, in dialogue and utterance order: ``dialogue_id``,
        ``utterance`` (index within the dialogue), ``label`` (true label name, ``''`` if
        unlabelled), ``predicted`` (label name) and ``prob_<label>`` for every class (softmax of
        the fused logits).
    """
    _, corpus, _, dialogues, y, logits = _run(checkpoint, dataset, split, data_options, device,
                                              batch_size, corpus)
    label_names = list(corpus.label_names)
    probs = torch.softmax(logits.double(), dim=-1)
    pred = probs.argmax(dim=-1)
    rows: List[Dict[str, Any]] = []
    offset = 0
    # predict_logits keeps the dialogue order and the utterances of a dialogue are contiguous.
    for data in dialogues:
        # One label per utterance; data.num_nodes would count every node type of a
        # heterogeneous (Sync-TVA) graph.
        for i in range(data.y.numel()):
            node = offset + i
            true = int(y[node])
            row = {'dialogue_id': data.dialogue_id, 'utterance': i,
                   'label': label_names[true] if true >= 0 else '',
                   'predicted': label_names[int(pred[node])]}
            row.update({f'prob_{name}': float(p) for name, p in zip(label_names, probs[node])})
            rows.append(row)
        offset += data.y.numel()
    return rows


def write_predictions(rows: List[Dict[str, Any]], path: Union[str, os.PathLike]) -> None:
    r"""Writes :func:`predict` rows as CSV (header = the keys of the first row), atomically."""
    if not rows:
        raise ValueError("'rows' is empty: nothing to write")
    fieldnames = list(rows[0])
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=fieldnames, lineterminator='\n')
    writer.writeheader()
    writer.writerows(rows)
    directory = os.path.dirname(os.path.abspath(os.fspath(path)))
    os.makedirs(directory, exist_ok=True)
    atomic_write(path, lambda f: f.write(text.getvalue().encode('utf-8')))
