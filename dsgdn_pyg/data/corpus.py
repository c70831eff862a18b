"""The in-memory form every dataset in dsgdn-pyg is turned into.

A dialogue is one :class:`torch_geometric.data.Data` with one node per utterance:

* ``x_t``, ``x_a``, ``x_v`` -- float features per modality, ``[L, D_m]`` (only the
  modalities the corpus has),
* ``speaker`` -- ``[L]`` long, the speaker's index *within the dialogue* (0, 1, ...),
* ``y`` -- ``[L]`` long labels (``-1`` marks an unlabelled utterance),
* ``dialogue_id`` -- a string,
* ``num_nodes`` -- ``L``.

Graph edges (``edge_index``, ``edge_type``) are added by
:class:`dsgdn_pyg.data.DialogueGraph`, because the window is a per-run setting.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Sequence

import torch
from torch import Tensor
from torch_geometric.data import Data

from dsgdn_pyg.names import MODALITIES

MODALITY_NAMES = {'t': 'text', 'a': 'audio', 'v': 'visual'}


def feature_key(modality: str) -> str:
    """The attribute of a dialogue :class:`Data` that holds a modality's features."""
    if modality not in MODALITIES:
        raise ValueError(f"unknown modality {modality!r}; expected one of {MODALITIES}")
    return f'x_{modality}'


def make_dialogue(
    dialogue_id: str,
    speaker: Sequence[int],
    y: Sequence[int],
    features: Dict[str, Tensor],
) -> Data:
    """Builds one dialogue :class:`Data`, checking that every field has the same length."""
    speaker = torch.as_tensor(speaker, dtype=torch.long)
    y = torch.as_tensor(y, dtype=torch.long)
    length = speaker.numel()
    if length == 0:
        raise ValueError(f"dialogue {dialogue_id!r}: empty dialogue (no utterances)")
    if y.numel() != length:
        raise ValueError(f"dialogue {dialogue_id!r}: field 'y' has {y.numel()} entries "
                         f"but 'speaker' has {length}")
    data = Data(speaker=speaker, y=y, dialogue_id=str(dialogue_id), num_nodes=length)
    for m, x in features.items():
        x = torch.as_tensor(x, dtype=torch.float32)
        if x.dim() != 2 or x.size(0) != length:
            raise ValueError(f"dialogue {dialogue_id!r}: field '{feature_key(m)}' has shape "
                             f"{tuple(x.shape)}, expected [{length}, D]")
        data[feature_key(m)] = x
    return data


@dataclass
class DialogueCorpus:
    """Train/valid/test dialogues plus what a model needs to know about them."""
    name: str
    train: List[Data]
    valid: List[Data]
    test: List[Data]
    label_names: List[str]
    feature_dims: Dict[str, int]  # modality -> width, e.g. {'t': 1024, 'a': 1582, 'v': 342}
    num_speakers: int  # max speakers in any dialogue (speaker ids are < num_speakers)
    meta: Dict[str, object] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    @property
    def modalities(self) -> List[str]:
        return [m for m in MODALITIES if m in self.feature_dims]

    def split(self, name: str) -> List[Data]:
        if name not in ('train', 'valid', 'test'):
            raise ValueError(f"unknown split {name!r}; expected train, valid or test")
        return getattr(self, name)

    def __repr__(self) -> str:
        dims = ', '.join(f'{m}={d}' for m, d in self.feature_dims.items())
        return (f'{self.__class__.__name__}({self.name!r}, train={len(self.train)}, '
                f'valid={len(self.valid)}, test={len(self.test)}, '
                f'classes={self.num_classes}, dims=({dims}))')
