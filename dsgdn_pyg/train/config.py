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
import math
import re
import textwrap
import typing
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from dsgdn_pyg.text.choice import check_text_encoder  # torch-free

try:  # Python >= 3.11
    import tomllib
except ImportError:  # pragma: no cover
    import tomli as tomllib

# The modality letters of dsgdn_pyg.data.MODALITIES, spelled out so that importing the
# settings (the command line does, to build its options) does not import torch; a test
# checks that the two agree.
MODALITIES = ('t', 'a', 'v')

#: The architectures a run can train (keys of :obj:`dsgdn_pyg.models.MODELS`).
MODEL_NAMES = ('amb-dsgdn', 'sync-tva')


class ConfigError(ValueError):
    r"""A run setting is invalid, or does not fit the data it is applied to.

    Args:
        message (str): The full message.
        field (str, optional): The :class:`TrainConfig` field at fault, if one is.
        detail (str, optional): The message without the field name.
    """
    def __init__(self, message: str, field: Optional[str] = None,
                 detail: Optional[str] = None):
        super().__init__(message)
        self.field = field
        self.detail = detail if detail is not None else message


def _fail(name: str, message: str):
    raise ConfigError(f"'{name}' {message}", field=name, detail=message)


# Presets #######################################################################################

#: Published settings of the authors' runs. For IEMOCAP, lr, batch size, weight decay,
#: q_base and p_exe are those of the AMB-DSGDN paper (Wang et al., "AMB-DSGDN: Adaptive
#: Modality-Balanced Dynamic Semantic Graph Differential Network for Multimodal Emotion
#: Recognition", arXiv:2603.10043, section 5.4 "Implementation Details", which trains for 100
#: epochs); the other values, and the MELD settings, are the authors' run settings, which the
#: paper does not list.
PUBLISHED_IEMOCAP: Dict[str, Any] = dict(
    lr=6.8e-5, dropout=0.5, weight_decay=5e-5, batch_size=16, epochs=61, warmup_epochs=60,
    q_base=0.3, md_lambda=0.9, p_exe=0.5, window=20, class_weights=True, hidden_channels=512)
PUBLISHED_MELD: Dict[str, Any] = dict(
    lr=5e-5, dropout=0.11, weight_decay=7.5e-5, batch_size=64, epochs=20, warmup_epochs=0,
    q_base=0.2, md_lambda=0.9, p_exe=0.2, window=6, class_weights=False, hidden_channels=512)

#: Text-only transcript corpora (``csv:DIR``, ``meld-csv:DIR``) on fine-tuned sentence-encoder
#: features, chosen on MELD's dev split only (``benchmarks/transcript_preset.py``, mean dev
#: weighted F1 of seeds 0-2: hidden 512 59.50, hidden 128 59.00, hidden 128 with window 10
#: 59.22; single seeds: class weights 56.3, dropout 0.5 57.2, window 2 58.5, lr 1e-4 58.4).
TRANSCRIPTS: Dict[str, Any] = dict(PUBLISHED_MELD, lr=3e-4, dropout=0.3, weight_decay=1e-4,
                                   batch_size=32, epochs=15, window=6, class_weights=False,
                                   hidden_channels=512)

#: Fine-tuning epochs of a sentence encoder on a transcript corpus (the better one is kept).
DEFAULT_TEXT_FINETUNE_EPOCHS = 2

#: A default run on the synthetic IEMOCAP-like corpus must finish in minutes on a CPU: the
#: published 61 epochs at lr 6.8e-5 are out of reach. At lr 2e-4 and dropout 0.2 the weighted
#: F1 plateaus after 4-7 epochs and the graph blocks earn a clear margin over the no-graph
#: variant (README); at 6.8e-4 and dropout 0.5 both variants peaked after 1-2 epochs and tied
#: within a point. Modality dropout runs after 3 warm-up epochs (the published run switched
#: it on only for its last).
FAST_SYNTHETIC_IEMOCAP: Dict[str, Any] = dict(lr=2e-4, dropout=0.2, epochs=10, warmup_epochs=3)


def is_transcript_dataset(dataset: Any) -> bool:
    r"""Whether :obj:`dataset` names dialogue CSVs (``csv:DIR`` or ``meld-csv:DIR``)."""
    return isinstance(dataset, str) and dataset.split(':', 1)[0] in ('csv', 'meld-csv')


def preset_defaults(dataset: str) -> Dict[str, Any]:
    r"""The published hyper-parameters for a dataset (a dict of :class:`TrainConfig` fields).

    Transcript datasets (``csv:DIR``, ``meld-csv:DIR``) get :obj:`TRANSCRIPTS`;
    ``'synthetic-meld'`` and any other name containing ``'meld'`` get the MELD settings; every
    other name gets the IEMOCAP settings. ``'synthetic-iemocap'`` additionally gets a
    shorter schedule with a higher learning rate (:obj:`FAST_SYNTHETIC_IEMOCAP`) so that a
    default run finishes in minutes on a CPU.

    Args:
        dataset (str): A dataset name, e.g. ``'synthetic-iemocap'``.
    """
    if is_transcript_dataset(dataset):
        return dict(TRANSCRIPTS)
    if 'meld' in str(dataset).lower():
        return dict(PUBLISHED_MELD)
    preset = dict(PUBLISHED_IEMOCAP)
    if dataset == 'synthetic-iemocap':
        preset.update(FAST_SYNTHETIC_IEMOCAP)
    return preset


#: The presets as the help text lists them: (label, dataset name that selects it).
PRESET_EXAMPLES = (('synthetic-iemocap', 'synthetic-iemocap'), ('IEMOCAP', 'iemocap'),
                   ('MELD', 'meld'), ('transcripts', 'csv:DIR'))


# Checks: each returns the accepted (normalised) value or raises ValueError with the reason ####

Check = Callable[[Any], Any]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def _described(check: Check, text: str) -> Check:
    check.text = text  # what the value must be, for messages and help
    return check


def integer(minimum: int) -> Check:
    r"""Accepts an integer :math:`\geq` :obj:`minimum`."""
    def check(value):
        if not _is_int(value) or value < minimum:
            raise ValueError(f"must be an integer >= {minimum}, got {value!r}")
        return value
    return _described(check, f'integer >= {minimum}')


def number(minimum: float = 0.0, maximum: float = math.inf, positive: bool = False,
           below_maximum: bool = False) -> Check:
    r"""Accepts a finite number in :obj:`[minimum, maximum]` (:obj:`> minimum` if
    :obj:`positive`, :obj:`< maximum` if :obj:`below_maximum`)."""
    if maximum == math.inf:
        text = ('a positive number' if positive and minimum == 0 else
                'a non-negative number' if minimum == 0 else f'a number >= {minimum:g}')
    else:
        text = f"a number in [{minimum:g}, {maximum:g}{')' if below_maximum else ']'}"

    def check(value):
        if (not _is_number(value) or value < minimum or (positive and value == minimum)
                or value > maximum or (below_maximum and value == maximum)):
            raise ValueError(f"must be {text}, got {value!r}")
        return value
    return _described(check, text)


def one_of(*choices: str) -> Check:
    r"""Accepts one of :obj:`choices`."""
    def check(value):
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(map(repr, choices))}, got {value!r}")
        return value
    return _described(check, ' or '.join(choices))


def _boolean(value):
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {value!r}")
    return value


def _dataset_name(value):
    if not isinstance(value, str) or not value:
        raise ValueError(f"must be a non-empty name, got {value!r}")
    return value


def _device(value):
    if not isinstance(value, str) or not re.fullmatch(r'auto|cpu|cuda(:\d+)?', value):
        raise ValueError(f"must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {value!r}")
    return value


def _patience(value):
    if not _is_int(value) or value < 0:
        raise ValueError(f"must be a non-negative integer (0 = off), got {value!r}")
    return value or None


def _directory(value):
    if not str(value):
        raise ValueError("must be a directory path or None, got ''")
    return str(value)


def _loader_options(value):
    if not isinstance(value, Mapping):
        raise ValueError(f"must be a mapping of loader options, got {value!r}")
    return dict(value)


def _integer(value):
    if not _is_int(value):
        raise ValueError(f"must be an integer, got {value!r}")
    return value


def _finite(value):
    if not _is_number(value):
        raise ValueError(f"must be a finite number, got {value!r}")
    return value


def _text(value):
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {value!r}")
    return value


def _anything(value):
    return value


#: The check of a field declared without one, by its annotated type.
TYPE_CHECKS: Dict[type, Check] = {bool: _boolean, int: _integer, float: _finite, str: _text}


# Parsers ######################################################################################

def parse_setting_value(raw: str) -> Any:
    r"""The value of a ``KEY=VALUE`` command-line setting: JSON if it parses (numbers, booleans,
    objects), else the bare string (e.g. ``fusion_weights=t=0.8,a=0.1,v=0.1``)."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # nested too deeply for the parser: not JSON here
        return raw


def parse_key_values(items: Sequence[str]) -> Dict[str, Any]:
    r"""``['KEY=VALUE', ...]`` as a dict (VALUE parsed by :func:`parse_setting_value`, ``-`` in
    KEY read as ``_``); raises :class:`ValueError` naming a malformed item."""
    values: Dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition('=')
        if not sep or not key.strip():
            raise ValueError(f"expected KEY=VALUE, got {item!r}")
        values[key.strip().replace('-', '_')] = parse_setting_value(raw)
    return values


def unknown_setting(key: str, where: str = '', noun: str = 'key') -> ConfigError:
    r"""The error for a :obj:`key` that is no :class:`TrainConfig` field: names it, suggests
    the closest field (:func:`difflib.get_close_matches`) and lists the valid ones; the
    message starts with :obj:`where`."""
    names = config_fields()
    close = difflib.get_close_matches(key.replace('-', '_'), names, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ''
    return ConfigError(f"{where}unknown {noun} {key!r}{hint}; valid {noun}s are "
                       f"{', '.join(sorted(names))}")


def parse_modalities(value: Union[str, Sequence[str]]) -> List[str]:
    r"""Parses ``'t,a,v'`` (or ``'tav'``, or a list) into modality letters in canonical order.

    Raises :class:`ConfigError` for letters other than ``t``, ``a``, ``v``, repeats or an
    empty selection.
    """
    if isinstance(value, str):
        text = value.replace(' ', '')
        letters = text.split(',') if ',' in text else list(text)
    elif isinstance(value, Sequence):
        letters = [str(v).strip() for v in value]
    else:
        _fail('modalities', f"must be a string like 't,a,v' or a list, got {value!r}")
    letters = [m for m in letters if m != '']
    unknown = [m for m in letters if m not in MODALITIES]
    if unknown:
        _fail('modalities', f"has unknown modality {', '.join(map(repr, unknown))}; use letters "
              f"t (text), a (audio), v (visual), e.g. 't,a,v'")
    if not letters:
        _fail('modalities', "must name at least one of t, a, v")
    if len(set(letters)) != len(letters):
        _fail('modalities', f"names a modality twice: {value!r}")
    return [m for m in MODALITIES if m in letters]


def _parse_pairs(name: str, text: str) -> Dict[str, str]:
    pairs: Dict[str, str] = {}
    for item in text.split(','):
        item = item.strip()
        if not item:
            continue
        key, sep, val = item.partition('=')
        if not sep or not key.strip() or not val.strip():
            _fail(name, f"must look like 't=0.8,a=0.1,v=0.1', got {text!r}")
        key = key.strip()
        if key in pairs:
            _fail(name, f"names {key!r} twice in {text!r}")
        pairs[key] = val.strip()
    return pairs


def _format_pairs(pairs: Mapping[str, Any]) -> str:
    return ','.join(f'{k}={v}' for k, v in pairs.items()) or '(none)'


def _parse_typed_pairs(name: str, text: str, cast, what: str) -> Dict[str, Any]:
    values = {}
    for key, val in _parse_pairs(name, text).items():
        try:
            values[key] = cast(val)
        except ValueError:
            _fail(name, f"has a non-{what} {val!r} for {key!r}")
    return values


def _check_modality_map(name: str, values: Any, what: str, valid: Check) -> Dict[str, Any]:
    if not isinstance(values, Mapping) or not values:
        _fail(name, f"must map modalities to {what}s, got {values!r}")
    unknown = [m for m in values if m not in MODALITIES]
    if unknown:
        _fail(name, f"has unknown modality {', '.join(map(repr, unknown))}; use t, a, v")
    for m, v in values.items():
        try:
            valid(v)
        except ValueError as e:
            _fail(name, f"{what} of {m!r} {e}")
    return {m: values[m] for m in MODALITIES if m in values}


def parse_fusion_weights(text: str) -> Dict[str, float]:
    r"""Parses ``'t=0.8,v=0.1,a=0.1'`` into ``{'t': 0.8, 'a': 0.1, 'v': 0.1}``."""
    return _check_fusion_weights(_parse_typed_pairs('fusion_weights', text, float,
                                                    'numeric weight'))


def _check_fusion_weights(weights: Any) -> Dict[str, float]:
    weights = _check_modality_map('fusion_weights', weights, 'weight', number(0))
    if sum(weights.values()) <= 0:
        _fail('fusion_weights', f"must have a positive sum, got {_format_pairs(weights)}")
    return {m: float(w) for m, w in weights.items()}


def parse_feature_dims(text: str) -> Dict[str, int]:
    r"""Parses ``'t=64,a=32,v=32'`` into ``{'t': 64, 'a': 32, 'v': 32}``."""
    return _check_feature_dims(_parse_typed_pairs('feature_dims', text, int, 'integer width'))


def _check_feature_dims(dims: Any) -> Dict[str, int]:
    return {m: int(d) for m, d in
            _check_modality_map('feature_dims', dims, 'width', integer(1)).items()}


# Declarations ##################################################################################

@dataclass(frozen=True)
class Setting:
    r"""What the command line, the docs and the validation need to know about one
    :class:`TrainConfig` field (stored in the field's :obj:`metadata['setting']`).

    Args:
        help (str): One sentence for ``--help`` and the docstring.
        check (callable, optional): Returns the accepted value or raises
            :class:`ValueError`; :obj:`None` = the check of the annotated type
            (:obj:`TYPE_CHECKS`).
        choices (tuple of str, optional): The valid values (a command-line choice).
        parse (callable, optional): Turns a string (command line, ``--set``) into the value.
        switch (bool): A boolean as ``--name/--no-name``; :obj:`False` = ``--name`` only.
        metavar (str, optional): The value's name in ``--help``.
        short (str, optional): A one-letter alias, e.g. ``'-q'``.
        preset (bool): The default comes from the dataset's preset.
        unset (str, optional): What :obj:`None` means, for the help text.
        option (str, optional): The option's name where it is not ``--field-name``.
        repeatable (bool): The option may be given several times, each a ``KEY=VALUE``
            item (:func:`parse_key_values`).
    """
    help: str
    check: Optional[Check] = None
    choices: Optional[Tuple[str, ...]] = None
    parse: Optional[Callable[[str], Any]] = None
    switch: bool = True
    metavar: Optional[str] = None
    short: Optional[str] = None
    preset: bool = False
    unset: Optional[str] = None
    option: Optional[str] = None
    repeatable: bool = False


def setting(default: Any, help: str, *, factory: Optional[Callable[[], Any]] = None,
            check: Optional[Check] = None, choices: Optional[Sequence[str]] = None,
            **options: Any) -> Any:
    r"""A :class:`TrainConfig` field with its :class:`Setting` (see the module docstring).

    Args:
        default: The dataclass default (:obj:`None` for a preset field).
        help (str): The help text.
        factory (callable, optional): Default factory for mutable defaults.
        check (callable, optional): See :class:`Setting`; :obj:`one_of(*choices)` if
            :obj:`choices` are given, else the check of the annotated type.
        choices (sequence of str, optional): The valid values.
        **options: The other :class:`Setting` attributes.
    """
    if check is None and choices is not None:
        check = one_of(*choices)
    meta = Setting(help=help, check=check,
                   choices=None if choices is None else tuple(choices), **options)
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata={'setting': meta})
    return dataclasses.field(default=default, metadata={'setting': meta})


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
    text_context: int = setting(
        0, 'The sentence encoder reads each utterance with the previous K utterances of its '
        'dialogue and their speakers (fine-tuning, features, predict, stream); 0 = the '
        'utterance alone.', check=integer(0), metavar='K')
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
        if self.quiet and is_transcript_dataset(self.dataset):
            options.setdefault('log', False)  # no fine-tuning or embedding progress bars
        return options


def settings() -> Tuple[dataclasses.Field, ...]:
    r"""The fields of :class:`TrainConfig`, each with its :class:`Setting` in
    :obj:`metadata['setting']`."""
    return dataclasses.fields(TrainConfig)


def setting_of(f: dataclasses.Field) -> Setting:
    r"""The :class:`Setting` of a field. A field declared without :func:`setting` still works
    (its name as help, the check of its type), but ``tests/train/test_config.py`` fails until
    it is declared."""
    return f.metadata.get('setting') or Setting(help=f.name.replace('_', ' ').capitalize() + '.')


def config_fields() -> List[str]:
    r"""The names of all :class:`TrainConfig` fields."""
    return [f.name for f in settings()]


def value_type(f: dataclasses.Field) -> type:
    r"""The annotated type of a field without :obj:`Optional` (e.g. :obj:`int` for
    :obj:`Optional[int]`, :obj:`list` for :obj:`List[str]`)."""
    kind = f.type
    if typing.get_origin(kind) is Union:
        kind = next(a for a in typing.get_args(kind) if a is not type(None))
    return typing.get_origin(kind) or kind


def accepts_none(f: dataclasses.Field) -> bool:
    return typing.get_origin(f.type) is Union and type(None) in typing.get_args(f.type)


def default_text(f: dataclasses.Field) -> str:
    r"""The default of a field as ``--help`` shows it: the value, or for a preset field the
    values of every preset (``'dataset preset: synthetic-iemocap 10, IEMOCAP 61, MELD 20'``)."""
    meta = setting_of(f)

    def show(value):
        if isinstance(value, bool):
            return 'on' if value else 'off'
        return f'{value:g}' if isinstance(value, float) else str(value)

    if meta.preset:
        values = ', '.join(f'{label} {show(preset_defaults(name)[f.name])}'
                           for label, name in PRESET_EXAMPLES)
        return f'dataset preset: {values}'
    default = f.default_factory() if f.default is dataclasses.MISSING else f.default
    if default is None or default == {}:
        return meta.unset or 'none'
    return show(default)


def _args_section() -> str:
    lines = ['', '    Args:']
    for f in settings():
        meta = setting_of(f)
        kind = getattr(value_type(f), '__name__', str(value_type(f)))
        lines.append(textwrap.fill(f'{f.name} ({kind}): {meta.help} (default: '
                                   f'{default_text(f)})', 96, initial_indent=' ' * 8,
                                   subsequent_indent=' ' * 12))
    return '\n'.join(lines) + '\n'


TrainConfig.__doc__ += _args_section()

#: The fields whose default is the dataset preset (:obj:`None` = "take the preset's").
PRESET_FIELDS = tuple(f.name for f in settings() if setting_of(f).preset)


# Validation ###################################################################################

def validate_config(config: TrainConfig) -> None:
    r"""Checks every field of :obj:`config` with its declared check (normalising it, e.g.
    ``'t,a'`` to ``['t', 'a']``), then :func:`check_combinations`; raises
    :class:`ConfigError` naming the field.

    Checks that need the data (e.g. whether the corpus has the requested modalities) are
    made by the trainer once the corpus is loaded (:func:`check_against_corpus`).
    """
    for f in settings():
        setattr(config, f.name, check_value(f.name, getattr(config, f.name)))
    check_combinations(config)


def check_value(name: str, value: Any) -> Any:
    r"""The value of field :obj:`name` as :class:`TrainConfig` would accept it (parsed from a
    string where the field has a parser, normalised); raises :class:`ConfigError`. For
    settings that other commands share with training (e.g. ``dsgdn-pyg benchmark``)."""
    f = next(f for f in settings() if f.name == name)
    meta = setting_of(f)
    if value is None and accepts_none(f):
        return None
    check = meta.check or TYPE_CHECKS.get(value_type(f), _anything)
    try:
        if isinstance(value, str) and meta.parse is not None:
            value = meta.parse(value)
        return check(value)
    except ConfigError:
        raise
    except ValueError as e:
        _fail(name, str(e))


def check_combinations(config: TrainConfig) -> None:
    r"""The checks that involve more than one field."""
    c = config
    if c.resume and c.out is None:
        _fail('resume', "needs an output directory 'out' holding last.pt")
    for name in ('text_encoder', 'text_finetune_epochs'):
        if getattr(c, name) is not None and not is_transcript_dataset(c.dataset):
            _fail(name, f"applies only to transcript datasets (csv:DIR, meld-csv:DIR), not "
                        f"{c.dataset!r}")
    if c.text_context and not is_transcript_dataset(c.dataset):
        _fail('text_context', f"applies only to transcript datasets (csv:DIR, meld-csv:DIR), "
              f"not {c.dataset!r}")
    if c.text_context and c.text_encoder == 'tfidf':
        _fail('text_context', "needs a sentence encoder (text_encoder 'minilm' or a model "
              "name or path), not 'tfidf'")
    if c.model == 'amb-dsgdn' and c.cross_window != 0:
        _fail('cross_window', f"is a Sync-TVA setting; model 'amb-dsgdn' has no cross-modal "
              f"edges (got {c.cross_window!r})")
    if c.model == 'sync-tva':
        for name, off in (('fusion_weights', None), ('context_window', None),
                          ('checkpoint_activations', False), ('causal', False)):
            if getattr(c, name) != off:
                _fail(name, f"is an AMB-DSGDN setting; model 'sync-tva' has no use for it "
                      f"(got {getattr(c, name)!r})")


def check_against_corpus(config: TrainConfig, available: Sequence[str]) -> List[str]:
    r"""The modalities a run uses: :obj:`config.modalities` checked against those the corpus
    has (:obj:`available`), or all of them. Also checks that the fusion weights name exactly
    the used modalities."""
    available = [m for m in MODALITIES if m in available]
    modalities = list(available) if config.modalities is None else list(config.modalities)
    missing = [m for m in modalities if m not in available]
    if missing:
        _fail('modalities', f"asks for {','.join(missing)} but dataset {config.dataset!r} has "
              f"only {','.join(available)}")
    if config.fusion_weights is not None and set(config.fusion_weights) != set(modalities):
        _fail('fusion_weights', f"must give one weight per used modality "
              f"({','.join(modalities)}), got {_format_pairs(config.fusion_weights)}")
    return modalities


# Files ########################################################################################

def read_toml(path: str) -> Dict[str, Any]:
    r"""Reads a TOML file of :class:`TrainConfig` values.

    Keys are field names, with ``_`` or ``-`` (``batch-size`` = ``batch_size``); a ``[train]``
    table may hold them instead of the top level. A ``[csv]`` table (the column mapping of a
    ``csv:DIR`` dataset) becomes ``data_options['csv']``; a ``[data_options]`` table holds other
    loader options. An unknown key raises :class:`ConfigError` naming it and the closest field.
    """
    try:
        with open(path, 'rb') as f:
            raw = tomllib.load(f)
    except OSError as e:
        raise ConfigError(f"cannot read config file {path!r}: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path!r} is not valid TOML: {e}") from None
    raw = dict(raw)
    # Loader settings live in their own tables: [csv] is the column mapping of a dialogue CSV
    # dataset, [data_options] any other keyword of the loader.
    data_options: Dict[str, Any] = {}
    for table in ('data_options', 'data-options', 'csv'):
        if table in raw:
            if not isinstance(raw[table], dict):
                raise ConfigError(f"config file {path!r}: [{table}] must be a table")
            if table == 'csv':
                data_options['csv'] = raw.pop(table)
            else:
                data_options.update(raw.pop(table))
    if set(raw) == {'train'} and isinstance(raw['train'], dict):
        raw = raw['train']
    names = set(config_fields())
    values: Dict[str, Any] = {'data_options': data_options} if data_options else {}
    for key, value in raw.items():
        name = key.replace('-', '_')
        if name not in names:
            raise unknown_setting(key, f"config file {path!r} has ")
        if name in values:
            raise ConfigError(f"config file {path!r} sets {name!r} twice")
        values[name] = value
    return values


def resolve_config(explicit: Optional[Mapping[str, Any]] = None,
                   file_values: Optional[Mapping[str, Any]] = None) -> TrainConfig:
    r"""Builds a :class:`TrainConfig` from explicit values over file values over the preset
    of the resulting dataset over the dataclass defaults."""
    merged = dict(file_values or {})
    merged.update(explicit or {})
    for key in merged:
        if key not in config_fields():
            raise unknown_setting(key)
    return TrainConfig(**merged)
