r"""Run configuration of the trainer: :class:`TrainConfig`, per-dataset presets and parsers.

Values are resolved in this order (first wins): an explicit argument (a command-line option
or a keyword of :class:`TrainConfig`), a value from a TOML file, the preset of the dataset
(:func:`preset_defaults`), the dataclass default.
"""
import dataclasses
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from dsgdn_pyg.data.corpus import MODALITIES

try:  # Python >= 3.11
    import tomllib
except ImportError:  # pragma: no cover
    import tomli as tomllib


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


#: Published settings of the authors' runs (METHOD.md).
PUBLISHED_IEMOCAP: Dict[str, Any] = dict(
    lr=6.8e-5, dropout=0.5, weight_decay=5e-5, batch_size=16, epochs=61, warmup_epochs=60,
    q_base=0.3, md_lambda=0.9, p_exe=0.5, window=20, class_weights=True, hidden_channels=512)
PUBLISHED_MELD: Dict[str, Any] = dict(
    lr=5e-5, dropout=0.11, weight_decay=7.5e-5, batch_size=64, epochs=20, warmup_epochs=0,
    q_base=0.2, md_lambda=0.9, p_exe=0.2, window=6, class_weights=False, hidden_channels=512)
#: Text-only transcript corpora (csv:DIR, meld-csv:DIR) on fine-tuned sentence-encoder
#: features, chosen on MELD's dev split only (benchmarks/transcript_preset.py; the README's
#: section "Real conversations" gives the search and why).
#: Chosen on MELD's dev split (benchmarks/transcript_preset.py, mean of seeds 0-2): hidden 512
#: 59.50, hidden 128 59.00, hidden 128 with window 10 59.22; single seeds: class weights
#: 56.3, dropout 0.5 57.2, window 2 58.5, lr 1e-4 58.4.
TRANSCRIPTS: Dict[str, Any] = dict(PUBLISHED_MELD, lr=3e-4, dropout=0.3, weight_decay=1e-4,
                                   batch_size=32, epochs=15, window=6, class_weights=False,
                                   hidden_channels=512)

#: A default run on the synthetic IEMOCAP-like corpus must finish in minutes on a 2-core CPU,
#: where one epoch of the full-size model takes ~15 s: the published 61 epochs at lr 6.8e-5
#: are out of reach. At lr 2e-4 and dropout 0.2 the weighted F1 plateaus after 4-7 epochs and
#: the graph blocks earn a clear margin over the no-graph variant (README); at 6.8e-4 and
#: dropout 0.5 both variants peaked after 1-2 epochs and tied within a point. Modality
#: dropout runs after 3 warm-up epochs (the published run switched it on only for its last).
FAST_SYNTHETIC_IEMOCAP: Dict[str, Any] = dict(lr=2e-4, dropout=0.2, epochs=10, warmup_epochs=3)

#: The architectures a run can train (keys of :obj:`dsgdn_pyg.models.MODELS`).
MODEL_NAMES = ('amb-dsgdn', 'sync-tva')

# Fields whose dataclass default is None = "take it from the dataset preset".
PRESET_FIELDS = ('epochs', 'lr', 'weight_decay', 'batch_size', 'dropout', 'q_base',
                 'md_lambda', 'p_exe', 'warmup_epochs', 'window', 'class_weights',
                 'hidden_channels')


#: Fine-tuning epochs of a sentence encoder on a transcript corpus (the better one is kept).
DEFAULT_TEXT_FINETUNE_EPOCHS = 2


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


@dataclass
class TrainConfig:
    r"""Every setting of a training run.

    Fields left at :obj:`None` that have a published value (:obj:`PRESET_FIELDS`) are filled
    from :func:`preset_defaults` of :obj:`dataset`, so ``TrainConfig(dataset='synthetic-meld')``
    trains with the MELD settings.

    Args:
        dataset (str): Dataset name for :func:`dsgdn_pyg.datasets.load_corpus`.
            (default: :obj:`'synthetic-iemocap'`)
        model (str): The architecture, a key of :obj:`dsgdn_pyg.models.MODELS`:
            ``'amb-dsgdn'`` or ``'sync-tva'``. (default: :obj:`'amb-dsgdn'`)
        modalities (List[str], optional): Modalities to use, a subset of ``t``, ``a``, ``v``
            (a string ``'t,a'`` is parsed). :obj:`None` = all the corpus has.
        window (int): Dialogue graph window :math:`w`. (default: preset)
        epochs (int): Number of epochs. (default: preset)
        lr (float): Adam learning rate. (default: preset)
        weight_decay (float): Adam weight decay. (default: preset)
        batch_size (int): Dialogues per batch. (default: preset)
        dropout (float): Dropout rate of the model. (default: preset)
        hidden_channels (int): Hidden width :math:`d_h`. (default: preset)
        heads (int): Parallel differential attention heads. (default: :obj:`2`)
        context_window (int, optional): If set, the audio/visual Transformer of AMB-DSGDN
            attends only to utterances within :math:`\pm K` positions, which makes the whole
            model linear in dialogue length; :obj:`None` attends to the whole dialogue, as
            published. (default: :obj:`None`)
        cross_window (int): Sync-TVA only: cross-modal edges also join the modalities of
            utterances up to this many positions apart; :obj:`0` joins only those of the same
            utterance. (default: :obj:`0`)
        checkpoint_activations (bool): Recompute the encoder and graph blocks in the backward
            pass instead of keeping their activations: about half the memory for 1.5x the
            time on long dialogues. (default: :obj:`False`)
        q_base (float): Base drop probability of modality dropout. (default: preset)
        md_lambda (float): Scale :math:`\lambda` of modality dropout. (default: preset)
        p_exe (float): Probability of executing modality dropout on a batch. (default: preset)
        warmup_epochs (int): Epochs before modality dropout starts. (default: preset)
        modality_dropout (bool): Use adaptive modality dropout. (default: :obj:`True`)
        class_weights (bool): Inverse-frequency class weights from the training split.
            (default: preset)
        focal_gamma (float): Focusing parameter :math:`\gamma` of a focal loss on every
            classifier; :obj:`0` is the plain (weighted) negative log-likelihood.
            (default: :obj:`0.0`)
        graph (bool): Use the relational graph blocks (False = ablation). (default: :obj:`True`)
        conv (str): ``'diffgat'`` or ``'gat'`` (ablation). (default: :obj:`'diffgat'`)
        fusion_weights (Dict[str, float], optional): Fixed fusion weights (ablation), e.g.
            ``{'t': 0.8, 'a': 0.1, 'v': 0.1}``; a string ``'t=0.8,a=0.1,v=0.1'`` is parsed.
            (default: :obj:`None`)
        seed (int): Seed of the model initialisation, dropout and shuffling. (default: :obj:`0`)
        data_seed (int): Seed passed to the dataset loader (synthetic data, validation split),
            kept apart from :obj:`seed` so that several seeds train on the same data.
            (default: :obj:`0`)
        device (str): ``'auto'`` (CUDA if available), ``'cpu'``, ``'cuda'`` or ``'cuda:N'``.
            (default: :obj:`'auto'`)
        num_threads (int, optional): CPU threads of PyTorch during the run (restored
            afterwards); :obj:`None` = 1 on a CPU run (many small sparse kernels gain little
            from more threads and lose a lot on a shared CPU), unchanged on CUDA.
            (default: :obj:`None`)
        amp (bool): Mixed precision (float16 autocast and gradient scaling), CUDA only.
            (default: :obj:`False`)
        select_on (str): Split whose weighted F1 selects the best epoch, ``'valid'`` or
            ``'test'`` (the authors' protocol, not a fair estimate). (default: :obj:`'valid'`)
        patience (int, optional): Stop after this many epochs without improvement of the
            selection metric; :obj:`None` or 0 = never. (default: :obj:`None`)
        out (str, optional): Output directory; :obj:`None` writes nothing. (default: :obj:`None`)
        resume (bool): Continue from ``out/last.pt`` if it exists. (default: :obj:`False`)
        quiet (bool): Print nothing but errors. (default: :obj:`False`)
        num_dialogues (int, optional): Data-size knob passed to the loader (synthetic corpora).
            (default: :obj:`None`)
        feature_dims (Dict[str, int], optional): Feature widths passed to the loader
            (synthetic corpora); a string ``'t=64,a=32,v=32'`` is parsed. (default: :obj:`None`)
        text_encoder (str, optional): Text features of a transcript dataset (``csv:``,
            ``meld-csv:``): ``'tfidf'``, ``'minilm'`` or a sentence-transformers model name or
            folder. :obj:`None` = ``'minilm'`` when the ``[text]`` extra is installed, else
            ``'tfidf'``. (default: :obj:`None`)
        text_finetune_epochs (int, optional): Epochs of fine-tuning the sentence encoder on
            the training utterances (epoch selected on valid) before embedding; 0 = frozen.
            :obj:`None` = :obj:`DEFAULT_TEXT_FINETUNE_EPOCHS` for a sentence encoder.
            (default: :obj:`None`)
        data_options (Dict[str, Any]): Further keyword arguments of the loader.
            (default: :obj:`{}`)
    """
    dataset: str = 'synthetic-iemocap'
    model: str = 'amb-dsgdn'
    modalities: Optional[List[str]] = None
    window: Optional[int] = None
    epochs: Optional[int] = None
    lr: Optional[float] = None
    weight_decay: Optional[float] = None
    batch_size: Optional[int] = None
    dropout: Optional[float] = None
    hidden_channels: Optional[int] = None
    heads: int = 2
    context_window: Optional[int] = None
    checkpoint_activations: bool = False
    cross_window: int = 0
    q_base: Optional[float] = None
    md_lambda: Optional[float] = None
    p_exe: Optional[float] = None
    warmup_epochs: Optional[int] = None
    modality_dropout: bool = True
    class_weights: Optional[bool] = None
    focal_gamma: float = 0.0
    graph: bool = True
    conv: str = 'diffgat'
    fusion_weights: Optional[Dict[str, float]] = None
    seed: int = 0
    data_seed: int = 0
    device: str = 'auto'
    num_threads: Optional[int] = None
    amp: bool = False
    select_on: str = 'valid'
    patience: Optional[int] = None
    out: Optional[str] = None
    resume: bool = False
    quiet: bool = False
    num_dialogues: Optional[int] = None
    feature_dims: Optional[Dict[str, int]] = None
    text_encoder: Optional[str] = None
    text_finetune_epochs: Optional[int] = None
    data_options: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if is_transcript_dataset(self.dataset):
            if self.text_encoder is None:
                from dsgdn_pyg.text import text_extra_available
                self.text_encoder = 'minilm' if text_extra_available() else 'tfidf'
            if self.text_finetune_epochs is None:
                self.text_finetune_epochs = (0 if self.text_encoder == 'tfidf'
                                             else DEFAULT_TEXT_FINETUNE_EPOCHS)
        preset = preset_defaults(self.dataset if isinstance(self.dataset, str) else '')
        for name in PRESET_FIELDS:
            if getattr(self, name) is None:
                setattr(self, name, preset[name])
        if isinstance(self.modalities, str):
            self.modalities = parse_modalities(self.modalities)
        if isinstance(self.fusion_weights, str):
            self.fusion_weights = parse_fusion_weights(self.fusion_weights)
        if isinstance(self.feature_dims, str):
            self.feature_dims = parse_feature_dims(self.feature_dims)
        if self.patience == 0:
            self.patience = None
        if self.out is not None:
            self.out = str(self.out)
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
        if self.quiet and is_transcript_dataset(self.dataset):
            options.setdefault('log', False)  # no fine-tuning or embedding progress bars
        return options


def parse_setting_value(raw: str) -> Any:
    r"""The value of a ``KEY=VALUE`` command-line setting: JSON if it parses (numbers, booleans,
    objects), else the bare string (e.g. ``fusion_weights=t=0.8,a=0.1,v=0.1``)."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def config_fields() -> List[str]:
    r"""The names of all :class:`TrainConfig` fields."""
    return [f.name for f in dataclasses.fields(TrainConfig)]


def _fail(name: str, message: str):
    raise ConfigError(f"'{name}' {message}", field=name, detail=message)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def validate_config(config: TrainConfig) -> None:
    r"""Checks every field of :obj:`config`; raises :class:`ConfigError` naming the field.

    Checks that need the data (e.g. whether the corpus has the requested modalities) are
    made by the trainer once the corpus is loaded (:func:`check_against_corpus`).
    """
    c = config
    if not isinstance(c.dataset, str) or not c.dataset:
        _fail('dataset', f"must be a non-empty name, got {c.dataset!r}")
    if c.modalities is not None:
        c.modalities = parse_modalities(c.modalities)
    for name, minimum in (('window', 0), ('epochs', 1), ('batch_size', 1),
                          ('hidden_channels', 1), ('heads', 1), ('warmup_epochs', 0),
                          ('seed', 0), ('data_seed', 0)):
        value = getattr(c, name)
        if not _is_int(value) or value < minimum:
            _fail(name, f"must be an integer >= {minimum}, got {value!r}")
    if not _is_number(c.lr) or c.lr <= 0:
        _fail('lr', f"must be a positive number, got {c.lr!r}")
    if not _is_number(c.weight_decay) or c.weight_decay < 0:
        _fail('weight_decay', f"must be a non-negative number, got {c.weight_decay!r}")
    for name in ('dropout', 'q_base', 'p_exe'):
        value = getattr(c, name)
        if not _is_number(value) or not 0.0 <= value <= 1.0:
            _fail(name, f"must be a number in [0, 1], got {value!r}")
    if c.dropout >= 1.0:
        _fail('dropout', f"must be < 1 (1 drops everything), got {c.dropout!r}")
    if not _is_number(c.md_lambda) or c.md_lambda < 0:
        _fail('md_lambda', f"must be a non-negative number, got {c.md_lambda!r}")
    for name in ('modality_dropout', 'class_weights', 'graph', 'amp', 'resume', 'quiet',
                 'checkpoint_activations'):
        if not isinstance(getattr(c, name), bool):
            _fail(name, f"must be true or false, got {getattr(c, name)!r}")
    if c.model not in MODEL_NAMES:
        _fail('model', f"must be one of {', '.join(map(repr, MODEL_NAMES))}, got {c.model!r}")
    if not _is_int(c.cross_window) or c.cross_window < 0:
        _fail('cross_window', f"must be an integer >= 0, got {c.cross_window!r}")
    if c.model == 'amb-dsgdn' and c.cross_window != 0:
        _fail('cross_window', f"is a Sync-TVA setting; model 'amb-dsgdn' has no cross-modal "
              f"edges (got {c.cross_window!r})")
    if c.model == 'sync-tva':
        for name, off in (('fusion_weights', None), ('context_window', None),
                          ('checkpoint_activations', False)):
            if getattr(c, name) != off:
                _fail(name, f"is an AMB-DSGDN setting; model 'sync-tva' has no use for it "
                      f"(got {getattr(c, name)!r})")
    if c.context_window is not None and (not _is_int(c.context_window)
                                         or c.context_window < 0):
        _fail('context_window', f"must be a non-negative integer or None (whole dialogue), "
              f"got {c.context_window!r}")
    if not _is_number(c.focal_gamma) or c.focal_gamma < 0:
        _fail('focal_gamma', f"must be a non-negative number, got {c.focal_gamma!r}")
    if c.conv not in ('diffgat', 'gat'):
        _fail('conv', f"must be 'diffgat' or 'gat', got {c.conv!r}")
    if c.fusion_weights is not None:
        c.fusion_weights = _check_fusion_weights(c.fusion_weights)
    if not isinstance(c.device, str) or not re.fullmatch(r'auto|cpu|cuda(:\d+)?', c.device):
        _fail('device', f"must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {c.device!r}")
    if c.num_threads is not None and (not _is_int(c.num_threads) or c.num_threads < 1):
        _fail('num_threads', f"must be a positive integer or None, got {c.num_threads!r}")
    if c.select_on not in ('valid', 'test'):
        _fail('select_on', f"must be 'valid' or 'test', got {c.select_on!r}")
    if c.patience is not None and (not _is_int(c.patience) or c.patience < 0):
        _fail('patience', f"must be a non-negative integer (0 = off), got {c.patience!r}")
    if c.out is not None and not c.out:
        _fail('out', "must be a directory path or None, got ''")
    if c.resume and c.out is None:
        _fail('resume', "needs an output directory 'out' holding last.pt")
    if c.num_dialogues is not None and (not _is_int(c.num_dialogues) or c.num_dialogues < 3):
        _fail('num_dialogues', f"must be an integer >= 3, got {c.num_dialogues!r}")
    if c.feature_dims is not None:
        c.feature_dims = _check_feature_dims(c.feature_dims)
    for name in ('text_encoder', 'text_finetune_epochs'):
        if getattr(c, name) is not None and not is_transcript_dataset(c.dataset):
            _fail(name, f"applies only to transcript datasets (csv:DIR, meld-csv:DIR), not "
                        f"{c.dataset!r}")
    if c.text_encoder is not None and (not isinstance(c.text_encoder, str)
                                       or not c.text_encoder):
        _fail('text_encoder', f"must be 'tfidf', 'minilm', a model name or a path, got "
                              f"{c.text_encoder!r}")
    if c.text_finetune_epochs is not None and (not _is_int(c.text_finetune_epochs)
                                               or c.text_finetune_epochs < 0):
        _fail('text_finetune_epochs', f"must be a non-negative integer (0 = frozen), got "
                                      f"{c.text_finetune_epochs!r}")
    if not isinstance(c.data_options, Mapping):
        _fail('data_options', f"must be a mapping of loader options, got {c.data_options!r}")
    c.data_options = dict(c.data_options)


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


def parse_fusion_weights(text: str) -> Dict[str, float]:
    r"""Parses ``'t=0.8,v=0.1,a=0.1'`` into ``{'t': 0.8, 'a': 0.1, 'v': 0.1}``."""
    return _check_fusion_weights(_parse_typed_pairs('fusion_weights', text, float,
                                                    'numeric weight'))


def _check_fusion_weights(weights: Any) -> Dict[str, float]:
    if not isinstance(weights, Mapping) or not weights:
        _fail('fusion_weights', f"must map modalities to weights, got {weights!r}")
    unknown = [m for m in weights if m not in MODALITIES]
    if unknown:
        _fail('fusion_weights', f"has unknown modality {', '.join(map(repr, unknown))}; use "
              f"t, a, v")
    for m, w in weights.items():
        if not _is_number(w) or w < 0:
            _fail('fusion_weights', f"weight of {m!r} must be a non-negative number, got {w!r}")
    if sum(weights.values()) <= 0:
        _fail('fusion_weights', f"must have a positive sum, got {_format_pairs(weights)}")
    return {m: float(weights[m]) for m in MODALITIES if m in weights}


def parse_feature_dims(text: str) -> Dict[str, int]:
    r"""Parses ``'t=64,a=32,v=32'`` into ``{'t': 64, 'a': 32, 'v': 32}``."""
    return _check_feature_dims(_parse_typed_pairs('feature_dims', text, int, 'integer width'))


def _check_feature_dims(dims: Any) -> Dict[str, int]:
    if not isinstance(dims, Mapping) or not dims:
        _fail('feature_dims', f"must map modalities to widths, got {dims!r}")
    unknown = [m for m in dims if m not in MODALITIES]
    if unknown:
        _fail('feature_dims', f"has unknown modality {', '.join(map(repr, unknown))}")
    for m, d in dims.items():
        if not _is_int(d) or d < 1:
            _fail('feature_dims', f"width of {m!r} must be a positive integer, got {d!r}")
    return {m: int(dims[m]) for m in MODALITIES if m in dims}


def read_toml(path: str) -> Dict[str, Any]:
    r"""Reads a TOML file of :class:`TrainConfig` values.

    Keys are field names, with ``_`` or ``-`` (``batch-size`` = ``batch_size``); a ``[train]``
    table may hold them instead of the top level. A ``[csv]`` table (the column mapping of a
    ``csv:DIR`` dataset) becomes ``data_options['csv']``; a ``[data_options]`` table holds other
    loader options. Unknown keys raise :class:`ConfigError`.
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
            raise ConfigError(f"config file {path!r} has unknown key {key!r}; valid keys are "
                              f"{', '.join(sorted(names))}")
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
    unknown = sorted(set(merged) - set(config_fields()))
    if unknown:
        raise ConfigError(f"unknown setting(s) {unknown}")
    return TrainConfig(**merged)
