r"""What every model of the package declares: its settings, as a small dataclass that builds
the model (:class:`ModelSettings`). Torch-free: the command line reads the declarations to
build its options, and the model class is imported only when a model is built.

How to add a model
------------------
Write the model (a :class:`torch.nn.Module` taking ``feature_dims``, ``num_classes``,
``num_speakers`` and keyword settings) in its own file, declare its settings in a torch-free
file beside it, and add it to :obj:`dsgdn_pyg.models.registry.MODEL_SETTINGS` (one line)::

    @dataclass
    class ToySettings(ModelSettings):
        name: ClassVar[str] = 'toy'                       # --model toy
        label: ClassVar[str] = 'Toy'                      # in messages
        model_path: ClassVar[str] = 'my_package.toy:Toy'  # imported when built
        depth: int = setting(2, 'Toy: layers.', check=integer(1))

        def model_kwargs(self):
            return dict(super().model_kwargs(), depth=self.depth)

Its fields become run settings (``--depth``, ``depth = 3`` in a TOML file, with their help and
checks), refused with a clear error when another model is trained.
"""
import dataclasses
import importlib
from dataclasses import dataclass
from typing import Any, ClassVar, Dict, Optional

from dsgdn_pyg.settings import check_field, integer, number, setting


@dataclass
class ModelSettings:
    r"""The settings every graph model here shares, and how a model is built from its
    settings. Subclasses add their own fields (made with :func:`~dsgdn_pyg.settings.setting`)
    and name the model: :obj:`name` (the ``--model`` choice), :obj:`label` (for messages) and
    :obj:`model_path` (``'module:Class'``). Fields left at :obj:`None` with a dataset preset
    are filled by the run settings (:class:`~dsgdn_pyg.train.TrainConfig`).
    """
    name: ClassVar[str] = ''
    label: ClassVar[str] = ''
    model_path: ClassVar[str] = ''

    window: Optional[int] = setting(None, 'Dialogue graph window w.', check=integer(0),
                                    preset=True)
    hidden_channels: Optional[int] = setting(None, 'Hidden width d_h.', check=integer(1),
                                             preset=True)
    heads: int = setting(2, 'Parallel differential attention heads.', check=integer(1))
    dropout: Optional[float] = setting(None, 'Dropout rate of the model.',
                                       check=number(0, 1, below_maximum=True), preset=True)
    graph: bool = setting(True, 'Relational graph blocks (off = ablation).')
    conv: str = setting('diffgat', 'Graph attention operator (gat = ablation).',
                        choices=('diffgat', 'gat'))

    def __post_init__(self):
        for f in dataclasses.fields(self):
            setattr(self, f.name, check_field(f, getattr(self, f.name)))

    @classmethod
    def from_config(cls, config: Any) -> 'ModelSettings':
        r"""This model's settings, read from the run settings :obj:`config`."""
        return cls(**{f.name: getattr(config, f.name) for f in dataclasses.fields(cls)})

    def model_kwargs(self) -> Dict[str, Any]:
        r"""The model's constructor arguments besides the data's (:obj:`feature_dims`,
        :obj:`num_classes`, :obj:`num_speakers`); :obj:`window` belongs to the input graph
        (the model's :obj:`dialogue_transform`)."""
        return dict(hidden_channels=self.hidden_channels, heads=self.heads,
                    dropout=self.dropout, conv=self.conv)

    @classmethod
    def model_class(cls) -> type:
        r"""The model class (:obj:`model_path`), imported now."""
        module, _, name = cls.model_path.partition(':')
        return getattr(importlib.import_module(module), name)

    def build(self, feature_dims: Dict[str, int], num_classes: int, num_speakers: int):
        r"""The model, built from these settings for data of the given shape."""
        return self.model_class()(feature_dims=dict(feature_dims), num_classes=num_classes,
                                  num_speakers=num_speakers, **self.model_kwargs())
