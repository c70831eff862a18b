r"""Run configuration of the trainer: :class:`TrainConfig`, per-dataset presets and parsers.

Every setting is declared once, as a field of :class:`TrainConfig` made with :func:`setting`:
its default, its help text, what it accepts (a check, or choices) and how its command-line
option looks. The ``dsgdn-pyg train`` options, their ``--help`` text and defaults, the
validation of every value (from Python, a TOML file or the command line) and the ``Args``
section of :class:`TrainConfig`'s docstring are all generated from these declarations.

Values are resolved in this order (first wins): an explicit argument (a command-line option
or a keyword of :class:`TrainConfig`), a value from a TOML file, the preset of the dataset
(:func:`preset_defaults`), the dataclass default.

How to add a training option
----------------------------
Add one field to :class:`TrainConfig` and use it (e.g. in
:func:`dsgdn_pyg.train.data.model_kwargs` or the trainer); nothing else is written by hand,
no command-line option and no validation code::

    causal: bool = setting(False, 'Attend only to past utterances.')
    text_encoder: str = setting('tfidf', 'Text features.', choices=('tfidf', 'minilm'))
    nproc_per_node: int = setting(1, 'Training processes.', check=integer(1), metavar='N')

The annotation gives the option's type (``bool`` becomes ``--causal/--no-causal``);
:obj:`check` (:func:`integer`, :func:`number`, :func:`one_of`, or any function that returns
the accepted value or raises :class:`ValueError` with the reason) or :obj:`choices` says what
is valid; :obj:`parse` turns command-line text such as ``'t,a,v'`` into the value. A value
that depends on the dataset gets :obj:`None` as default, ``preset=True`` and an entry in the
preset dicts below. Checks that involve several fields go to :func:`check_combinations`.
A field written the plain dataclass way (``causal: bool = False``) still gets an option and
the check of its type, but ``tests/train/test_config.py`` fails until it is declared with
:func:`setting`.
"""
import dataclasses
import difflib
import json
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from dsgdn_pyg.names import MODALITIES, MODEL_NAMES  # noqa: F401
from dsgdn_pyg.text.choice import check_text_encoder  # torch-free
# The parts of the settings, re-exported: this module was their one home.
from dsgdn_pyg.train.checks import (TYPE_CHECKS, Check, ConfigError, _boolean,  # noqa: F401
                                    _check_feature_dims, _check_fusion_weights,
                                    _dataset_name, _device, _directory, _fail, _format_pairs,
                                    _loader_options, _patience, integer, number, one_of,
                                    parse_feature_dims, parse_fusion_weights, parse_key_values,
                                    parse_modalities, parse_setting_value, text_context)
from dsgdn_pyg.train.declaration import (Setting, accepts_none, args_section,  # noqa: F401
                                         default_text, setting, setting_of, value_type)
from dsgdn_pyg.train.presets import (DEFAULT_TEXT_FINETUNE_EPOCHS, FAST_SYNTHETIC_IEMOCAP,  # noqa: F401,E501
                                     DEFAULT_TEXT_CONTEXT, DEFAULT_TEXT_POOLING, PRESET_EXAMPLES,
                                     PUBLISHED_IEMOCAP, PUBLISHED_MELD, TRANSCRIPTS,
                                     is_transcript_dataset, preset_defaults)
from dsgdn_pyg.train.validation import (check_against_corpus, check_combinations,  # noqa: F401
                                        check_field, validate_config)


@dataclass
class TrainConfig:
    r"""Every setting of a training run.

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
    num_dialogues: Optional[int] = setting(None, 'Dataset size knob (synthetic data).',
                                           check=integer(3), unset='the dataset\'s')
    feature_dims: Optional[Dict[str, int]] = setting(
        None, 'Feature widths (synthetic data).', check=_check_feature_dims,
        parse=parse_feature_dims, metavar='t=D,a=D,v=D', unset="the dataset's")
    data_options: Dict[str, Any] = setting(
        None, 'Further dataset loader option (VALUE parsed as JSON if it can be); repeatable.',
        factory=dict, check=_loader_options, metavar='KEY=VALUE', unset='none',
        option='--data-option', repeatable=True)
    data_seed: int = setting(0, 'Seed of the dataset loader (synthetic data, validation split).',
                             check=integer(0))
    text_encoder: Optional[str] = setting(
        None, 'Text features of csv:/meld-csv: transcripts: tfidf, minilm (all-MiniLM-L6-v2, '
        'shipped offline by the [text] extra), or a sentence-transformers model name or folder.',
        check=check_text_encoder, metavar='tfidf|minilm|NAME_OR_PATH',
        unset='transcripts: minilm with the [text] extra, else tfidf')
    text_finetune_epochs: Optional[int] = setting(
        None, 'Fine-tune the sentence encoder K epochs on the training utterances (epoch '
        'selected on valid) before embedding; 0 = frozen.', check=integer(0), metavar='K',
        unset=f'transcripts: {DEFAULT_TEXT_FINETUNE_EPOCHS} for a sentence encoder, 0 for tfidf')
    text_context: Optional[Any] = setting(
        None, 'The sentence encoder reads each utterance with up to P previous and F following '
        'turns of its dialogue and their speakers, the utterance marked (fine-tuning, '
        'features, predict, stream); 0 = the utterance alone; a causal model takes F = 0.',
        check=text_context, parse=text_context, metavar='P[,F]',
        unset=f'transcripts with a sentence encoder: {DEFAULT_TEXT_CONTEXT[0]},'
              f'{DEFAULT_TEXT_CONTEXT[1]} (F = 0 with --causal), else 0')
    text_pooling: str = setting(
        DEFAULT_TEXT_POOLING, 'With text context: the embedding is the mean over the '
        "utterance's own word pieces (target) or over the whole input (mean).",
        choices=('target', 'mean'))
    # Model.
    model: str = setting('amb-dsgdn', 'Architecture.', choices=MODEL_NAMES)
    window: Optional[int] = setting(None, 'Dialogue graph window w.', check=integer(0),
                                    preset=True)
    hidden_channels: Optional[int] = setting(None, 'Hidden width d_h.', check=integer(1),
                                             preset=True)
    heads: int = setting(2, 'Parallel differential attention heads.', check=integer(1))
    dropout: Optional[float] = setting(None, 'Dropout rate of the model.',
                                       check=number(0, 1, below_maximum=True), preset=True)
    context_window: Optional[int] = setting(
        None, 'AMB-DSGDN: the audio/visual Transformer attends only within +-K utterances '
        '(linear in dialogue length).', check=integer(0), metavar='K', unset='whole dialogue')
    cross_window: int = setting(0, 'Sync-TVA: cross-modal edges also join utterances up to K '
                                'positions apart.', check=integer(0), metavar='K')
    checkpoint_activations: bool = setting(
        False, 'Recompute the encoder and graph blocks in backward: less memory for more time '
        '(long dialogues; measured in the README).')
    causal: bool = setting(
        False, 'AMB-DSGDN only: nothing reads the future (past relations 1, 2, 5 only, a causal '
        'audio/visual encoder), so the model can run live (dsgdn-pyg stream).')
    graph: bool = setting(True, 'Relational graph blocks (off = ablation).')
    conv: str = setting('diffgat', 'Graph attention operator (gat = ablation).',
                        choices=('diffgat', 'gat'))
    fusion_weights: Optional[Dict[str, float]] = setting(
        None, 'Fixed fusion weights (ablation).', check=_check_fusion_weights,
        parse=parse_fusion_weights, metavar='t=W,a=W,v=W',
        unset='learned (sum)')
    # Modality dropout.
    modality_dropout: bool = setting(True, 'Adaptive modality dropout.')
    q_base: Optional[float] = setting(None, 'Base drop probability of modality dropout.',
                                      check=number(0, 1), preset=True)
    md_lambda: Optional[float] = setting(None, 'Scale lambda of modality dropout.',
                                         check=number(0), preset=True)
    p_exe: Optional[float] = setting(None, 'Probability of executing modality dropout on a '
                                     'batch.', check=number(0, 1), preset=True)
    warmup_epochs: Optional[int] = setting(None, 'Epochs before modality dropout starts.',
                                           check=integer(0), preset=True)
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
    amp: bool = setting(False, 'Mixed precision (float16 autocast, gradient scaling), CUDA '
                        'only.')
    out: Optional[str] = setting(None, 'Output directory (metrics.json, log.jsonl, best.pt, '
                                 'last.pt).', check=_directory, metavar='DIR',
                                 unset='dsgdn-pyg train: runs/<dataset>-<date-time>; '
                                       'Python: nothing is written')
    resume: bool = setting(False, 'Continue from DIR/last.pt (start fresh if there is none).',
                           switch=False)
    quiet: bool = setting(False, 'Print only errors.', switch=False,
                          short='-q')

    def __post_init__(self):
        if is_transcript_dataset(self.dataset):
            if self.text_encoder is None:
                from dsgdn_pyg.text import text_extra_available
                self.text_encoder = 'minilm' if text_extra_available() else 'tfidf'
            if self.text_finetune_epochs is None:
                self.text_finetune_epochs = (0 if self.text_encoder == 'tfidf'
                                             else DEFAULT_TEXT_FINETUNE_EPOCHS)
            if self.text_context is None and self.text_encoder != 'tfidf':
                past, future = DEFAULT_TEXT_CONTEXT
                self.text_context = [past, future] if future and not self.causal else past
        if self.text_context is None:
            self.text_context = 0
        preset = preset_defaults(self.dataset if isinstance(self.dataset, str) else '')
        for f in settings():
            if setting_of(f).preset and getattr(self, f.name) is None:
                setattr(self, f.name, preset[f.name])
        validate_config(self)

    def to_dict(self) -> Dict[str, Any]:
        r"""A JSON-able copy (``TrainConfig(**config.to_dict())`` is an equal config)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def loader_options(self) -> Dict[str, Any]:
        r"""The keyword arguments for :func:`~dsgdn_pyg.datasets.load_corpus` (besides the
        name and seed)."""
        options = dict(self.data_options)
        if self.num_dialogues is not None:
            options['num_dialogues'] = self.num_dialogues
        if self.feature_dims is not None:
            options['feature_dims'] = dict(self.feature_dims)
        if self.text_encoder is not None:
            options.setdefault('text_encoder', self.text_encoder)
        if self.text_finetune_epochs is not None:
            options.setdefault('text_finetune_epochs', self.text_finetune_epochs)
        if self.text_context:  # 0 is the loaders' default: the same cache as before
            options.setdefault('text_context', self.text_context)
            options.setdefault('text_pooling', self.text_pooling)
        if self.quiet and is_transcript_dataset(self.dataset):
            options.setdefault('log', False)  # no fine-tuning or embedding progress bars
        return options


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
