r"""Loading the model of a checkpoint written by :func:`dsgdn_pyg.train.train`.

A checkpoint records the model configuration, the dataset with its loader options, the
window and the modalities, so the model and its data pipeline are rebuilt from the file
alone (:mod:`dsgdn_pyg.inference.evaluate`).
"""
import os
from typing import Any, Dict, Mapping, Tuple, Union

import torch

from dsgdn_pyg.models import MODELS, build_model
from dsgdn_pyg.inference.model_folder import load_payload
from dsgdn_pyg.train.checkpoint import CheckpointError

Checkpoint = Union[str, os.PathLike, Mapping[str, Any]]


def checkpoint_payload(checkpoint: Checkpoint) -> Tuple[Dict[str, Any], str]:
    r"""The payload of a checkpoint file, a model folder or a run folder
    (:func:`~dsgdn_pyg.inference.model_folder.load_payload`), and where it came from."""
    return load_payload(checkpoint)


def checkpoint_model_name(payload: Mapping[str, Any]) -> str:
    r"""The architecture a checkpoint holds; checkpoints written before the model registry
    existed hold no ``'model_name'`` and are AMB-DSGDN."""
    return str(payload.get('model_name', 'amb-dsgdn'))


def model_from_checkpoint(checkpoint: Checkpoint,
               map_location: Any = 'cpu') -> Tuple[torch.nn.Module, Dict[str, Any]]:
    r"""Rebuilds the model of a checkpoint, in evaluation mode.

    Args:
        checkpoint (str or dict): Path of a ``.pt`` file, or a loaded checkpoint.
        map_location: Device for the weights. (default: :obj:`'cpu'`)

    Returns:
        (torch.nn.Module, dict): The model (the class named by the checkpoint's
        ``'model_name'``, see :obj:`dsgdn_pyg.models.MODELS`) and the checkpoint payload.
    """
    payload, source = checkpoint_payload(checkpoint)
    name = checkpoint_model_name(payload)
    if name not in MODELS:
        raise CheckpointError(f"checkpoint {source!r} holds a model {name!r} this dsgdn-pyg "
                              f"does not know (known: {', '.join(MODELS)})")
    try:
        model = build_model(name, **payload['model_config'])
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"checkpoint {source!r} holds a model configuration this "
                              f"dsgdn-pyg cannot build: {e}") from None
    try:
        model.load_state_dict(payload['model_state'])
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise CheckpointError(f"checkpoint {source!r}: the weights do not fit the model "
                              f"configuration it records: {first}") from None
    return model.to(map_location).eval(), payload
