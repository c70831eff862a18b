r"""Run configuration of the trainer: :class:`TrainConfig`, per-dataset presets and parsers.

Every setting is declared once, as a field of :class:`TrainConfig` made with :func:`setting`:
its default, its help text, what it accepts (a check, or choices) and how its command-line
option looks. The ``dsgdn-pyg train`` options, their ``--help`` text and defaults, the
validation of every value (from Python, a TOML file or the command line) and the ``Args``
section of :class:`TrainConfig`'s docstring are all generated from these declarations.

Values are resolved in this order (first wins): an explicit argument (a command-line option
or a keyword of :class:`TrainConfig`), a value from a TOML file, the preset of the dataset
(:func:`preset_defaults`), the dataclass default.

The run settings hold, as flat fields, the settings that each model declares
(:class:`~dsgdn_pyg.models.ModelSettings` subclasses, registered in
:obj:`~dsgdn_pyg.models.registry.MODEL_SETTINGS`) and those of each dataset kind
(:mod:`dsgdn_pyg.datasets.settings`): ``--q-base`` and ``q_base = 0.2`` stay flat, and a
value given for a model or a dataset kind that the run does not use is refused, naming its
owner. :meth:`TrainConfig.model_settings` gives the model's own settings, which build it.

How to add a setting
--------------------
Add one field to the dataclass that owns it: a run setting here, a model's setting to its
settings class (e.g. :class:`~dsgdn_pyg.models.AMBDSGDNSettings`), a dataset kind's to
:mod:`dsgdn_pyg.datasets.settings`; nothing else is written by hand, no command-line option
and no validation code::

    causal: bool = setting(False, 'Attend only to past utterances.')
    text_encoder: str = setting('tfidf', 'Text features.', choices=('tfidf', 'minilm'))
    nproc_per_node: int = setting(1, 'Training processes.', check=integer(1), metavar='N')

The annotation gives the option's type (``bool`` becomes ``--causal/--no-causal``);
:obj:`check` (:func:`integer`, :func:`number`, :func:`one_of`, or any function that returns
the accepted value or raises :class:`ValueError` with the reason) or :obj:`choices` says what
is valid; :obj:`parse` turns command-line text such as ``'t,a,v'`` into the value. A value
that depends on the dataset gets :obj:`None` as default, ``preset=True`` and an entry in the
preset dicts (:mod:`dsgdn_pyg.train.presets`). Checks that involve several fields go to
:func:`check_combinations`. A field written the plain dataclass way (``causal: bool =
False``) still gets an option and the check of its type, but ``tests/train/test_config.py``
fails until it is declared with :func:`setting`.
"""
import dataclasses
import difflib
import json
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from dsgdn_pyg.datasets.settings import DATASET_SETTINGS, dataset_settings
from dsgdn_pyg.models.registry import MODEL_SETTINGS
from dsgdn_pyg.names import MODALITIES  # noqa: F401
from dsgdn_pyg.settings import include_settings
# The parts of the settings, re-exported: this module was their one home.
from dsgdn_pyg.settings.checks import (TYPE_CHECKS, Check, ConfigError, _boolean,  # noqa: F401
                                       _check_feature_dims, _check_fusion_weights,
                                       _dataset_name, _device, _directory, _fail,
                                       _format_pairs, _loader_options, _patience, integer,
                                       number, one_of, parse_feature_dims,
                                       parse_fusion_weights, parse_key_values,
                                       parse_modalities, parse_setting_value)
from dsgdn_pyg.settings.declaration import (Setting, accepts_none, setting,  # noqa: F401
                                            setting_of, show_value, value_type)
from dsgdn_pyg.settings import declaration as _declaration
from dsgdn_pyg.train.presets import (  # noqa: F401
    DEFAULT_TEXT_FINETUNE_EPOCHS, FAST_SYNTHETIC_IEMOCAP, DEFAULT_TEXT_CONTEXT,
    DEFAULT_TEXT_POOLING, PRESET_EXAMPLES, PUBLISHED_IEMOCAP, PUBLISHED_MELD, TRANSCRIPTS,
    is_transcript_dataset, preset_defaults)
from dsgdn_pyg.train.validation import (check_against_corpus, check_combinations,  # noqa: F401
                                        check_field, check_scopes, validate_config)

#: The architectures a run can train (``--model``), the registry's.
MODEL_NAMES = tuple(MODEL_SETTINGS)


def preset_text(f: dataclasses.Field) -> str:
    r"""The default of a preset field as ``--help`` shows it: every preset's value
    (``'dataset preset: synthetic-iemocap 10, IEMOCAP 61, MELD 20, ...'``)."""
    values = ', '.join(f'{label} {show_value(preset_defaults(name)[f.name])}'
                       for label, name in PRESET_EXAMPLES)
    return f'dataset preset: {values}'


def default_text(f: dataclasses.Field) -> str:
    r"""The default of a run setting as ``--help`` shows it (:func:`preset_text` for a preset
    field)."""
    return _declaration.default_text(f, preset_text)


def args_section(fields) -> str:
    r"""The ``Args`` section of the run settings' docstring."""
    return _declaration.args_section(fields, preset_text)


@dataclass
@include_settings('model', list(MODEL_SETTINGS.values()))
@include_settings('data_seed', DATASET_SETTINGS)
class TrainConfig:
    r"""Every setting of a training run: its own (data, optimisation, run) and, as flat
    fields, those of every registered model and dataset kind (a value for a model or a
    dataset kind the run does not use is refused).

    Fields left at :obj:`None` whose default is the dataset preset are filled from
    :func:`preset_defaults` of :obj:`dataset`, so ``TrainConfig(dataset='synthetic-meld')``
    trains with the MELD settings. Strings are parsed where a field takes a list or a mapping
    (``modalities='t,a'``, ``fusion_weights='t=0.8,a=0.1,v=0.1'``).
    """
    # Data.
    dataset: str = setting('synthetic-iemocap', 'Dataset: synthetic-iemocap, synthetic-meld or '
                           'KIND:PATH (see README).', check=_dataset_name, metavar='NAME')
    modalities: Optional[List[str]] = setting(
        None, 'Modalities to use, a subset of t (text), a (audio), v (visual).',
        check=parse_modalities, metavar='t,a,v', unset='all the dataset has')
    data_options: Dict[str, Any] = setting(
        None, 'Further dataset loader option (VALUE parsed as JSON if it can be); repeatable.',
        factory=dict, check=_loader_options, metavar='KEY=VALUE', unset='none',
        option='--data-option', repeatable=True)
    data_seed: int = setting(0, 'Seed of the dataset loader (synthetic data, validation split).',
                             check=integer(0))
    # The settings of every dataset kind follow (include_settings), then the model.
    # Model: the settings of every registered model follow (include_settings).
    model: str = setting(MODEL_NAMES[0], 'Architecture.', choices=MODEL_NAMES)
    # Optimisation.
    epochs: Optional[int] = setting(None, 'Training epochs.', check=integer(1), preset=True)
    lr: Optional[float] = setting(None, 'Adam learning rate.', check=number(0, positive=True),
                                  preset=True)
    weight_decay: Optional[float] = setting(None, 'Adam weight decay.', check=number(0),
                                            preset=True)
    batch_size: Optional[int] = setting(None, 'Dialogues per batch.', check=integer(1),
                                        preset=True)
    class_weights: Optional[bool] = setting(None, 'Inverse-frequency class weights from the '
                                            'training split.', preset=True)
    focal_gamma: float = setting(0.0, 'Focusing parameter gamma of a focal loss; 0 = plain '
                                 '(weighted) negative log-likelihood.', check=number(0))
    seed: int = setting(0, 'Seed of initialisation, dropout and shuffling.', check=integer(0))
    select_on: str = setting('valid', "Split whose weighted F1 selects the best epoch; 'test' "
                             "is the authors' protocol, not a fair estimate.",
                             choices=('valid', 'test'))
    patience: Optional[int] = setting(None, 'Stop after this many epochs without improvement; '
                                      '0 = never.', check=_patience, unset='off')
    # Run.
    device: str = setting('auto', 'Device; auto = CUDA if available.', check=_device,
                          metavar='auto|cpu|cuda[:N]')
    num_threads: Optional[int] = setting(
        None, 'CPU threads of PyTorch during the run (restored afterwards); more only pays '
        'on an idle many-core machine.', check=integer(1), unset='1 on CPU, unchanged on CUDA')
    nproc_per_node: Optional[int] = setting(
        None, 'Train with this many data-parallel processes on this machine (one per GPU, or '
        'CPU processes), started through torchrun; a process already started by torchrun '
        'ignores it.', check=integer(1), metavar='N', unset='one process')
    amp: bool = setting(False, 'Mixed precision, CUDA only: bfloat16 autocast (float16 with '
                        'loss scaling before Ampere); the sparse kernels stay float32. Not '
                        'yet measured faster than float32: docs/gpu.md.')
    out: Optional[str] = setting(None, 'Output directory (metrics.json, log.jsonl, best.pt, '
                                 'last.pt).', check=_directory, metavar='DIR',
                                 unset='dsgdn-pyg train: runs/<dataset>-<date-time>; '
                                       'Python: nothing is written')
    resume: bool = setting(False, 'Continue from DIR/last.pt (start fresh if there is none).',
                           switch=False)
    quiet: bool = setting(False, 'Print only errors.', switch=False,
                          short='-q')

    def __post_init__(self):
        check_scopes(self)
        kind = dataset_settings(self.dataset)
        if kind is not None:
            kind.fill(self)
        if self.text_context is None:
            self.text_context = 0
        preset = preset_defaults(self.dataset if isinstance(self.dataset, str) else '')
        for f in settings():
            if setting_of(f).preset and getattr(self, f.name) is None:
                setattr(self, f.name, preset[f.name])
        validate_config(self)

    def model_settings(self):
        r"""The settings of the run's model (a :class:`~dsgdn_pyg.models.ModelSettings`),
        which build it."""
        return MODEL_SETTINGS[self.model].from_config(self)

    def to_dict(self) -> Dict[str, Any]:
        r"""A JSON-able copy (``TrainConfig(**config.to_dict())`` is an equal config)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def loader_options(self) -> Dict[str, Any]:
        r"""The keyword arguments for :func:`~dsgdn_pyg.datasets.load_corpus` (besides the
        name and seed): the data options with the dataset kind's settings."""
        kind = dataset_settings(self.dataset)
        options = dict(self.data_options)
        return options if kind is None else kind.loader_options(self, options)


def settings() -> Tuple[dataclasses.Field, ...]:
    r"""The fields of :class:`TrainConfig`, each with its :class:`Setting` in
    :obj:`metadata['setting']`."""
    return dataclasses.fields(TrainConfig)


def config_fields() -> List[str]:
    r"""The names of all :class:`TrainConfig` fields."""
    return [f.name for f in settings()]


def unknown_setting(key: str, where: str = '', noun: str = 'key') -> ConfigError:
    r"""The error for a :obj:`key` that is no :class:`TrainConfig` field: names it, suggests
    the closest field (:func:`difflib.get_close_matches`) and lists the valid ones; the
    message starts with :obj:`where`."""
    names = config_fields()
    close = difflib.get_close_matches(key.replace('-', '_'), names, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ''
    return ConfigError(f"{where}unknown {noun} {key!r}{hint}; valid {noun}s are "
                       f"{', '.join(sorted(names))}")


def check_value(name: str, value: Any) -> Any:
    r"""The value of field :obj:`name` as :class:`TrainConfig` would accept it (parsed from a
    string where the field has a parser, normalised); raises :class:`ConfigError`. For
    settings that other commands share with training (e.g. ``dsgdn-pyg benchmark``)."""
    return check_field(next(f for f in settings() if f.name == name), value)


TrainConfig.__doc__ += args_section(settings())

#: The fields whose default is the dataset preset (:obj:`None` = "take the preset's").
PRESET_FIELDS = tuple(f.name for f in settings() if setting_of(f).preset)
