r"""The settings of the dataset kinds that have options: the generated corpora
(:class:`SyntheticSettings`) and dialogue transcripts (:class:`TranscriptSettings`). Each
becomes run settings (``--num-dialogues``, ``--text-encoder``, ...), refused with a clear
error for a dataset of another kind. Torch-free."""
import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Dict, Optional

from dsgdn_pyg.settings import args_section, integer, setting
from dsgdn_pyg.settings.checks import _check_feature_dims, parse_feature_dims
from dsgdn_pyg.text.choice import check_text_encoder
from dsgdn_pyg.text.context import context_setting

#: Fine-tuning epochs of a sentence encoder on a transcript corpus (the better one is kept).
DEFAULT_TEXT_FINETUNE_EPOCHS = 2
#: Turns (previous, following) a sentence encoder reads around each utterance of a
#: transcript, and its pooling; a causal model reads the previous ones only. On MELD dev
#: (benchmarks/README.md, "Issue 22") 3,1 target-pooled raised the fine-tuned encoder's own
#: weighted F1 (57.27 vs 56.43) but AMB-DSGDN on top did better without it (dev 59.28 vs
#: 58.78, 3 seeds): the graph carries the context, and the encoder reads the utterance alone.
DEFAULT_TEXT_CONTEXT = (0, 0)
DEFAULT_TEXT_POOLING = 'target'


def _text_context(value):
    # Accepts P, "P,F" or [P, F]; stored as P or [P, F].
    try:
        return context_setting(value)
    except ValueError as e:  # the field is named once, by the caller
        raise ValueError(str(e).replace("'text_context' ", '', 1)) from None


@dataclass
class DatasetSettings:
    r"""The settings of a kind of dataset: :obj:`scope` says which datasets they apply to
    (for messages), :meth:`applies_to` decides it."""
    scope: ClassVar[str] = ''

    @classmethod
    def applies_to(cls, dataset: str) -> bool:
        raise NotImplementedError

    @staticmethod
    def fill(config: Any) -> None:
        r"""Fills the defaults that depend on other settings of the run :obj:`config`."""

    @staticmethod
    def loader_options(config: Any, options: Dict[str, Any]) -> Dict[str, Any]:
        r"""The loader's keyword arguments: the run's :obj:`data_options` (:obj:`options`)
        with this kind's settings of the run :obj:`config` added."""
        return options


@dataclass
class SyntheticSettings(DatasetSettings):
    r"""Settings of the generated corpora (``synthetic-iemocap``, ``synthetic-meld``, and
    any other plain name registered in :obj:`dsgdn_pyg.datasets.DATASETS`).
    """
    scope: ClassVar[str] = 'generated corpora such as synthetic-iemocap (names without KIND:)'

    num_dialogues: Optional[int] = setting(None, 'Dataset size knob (synthetic data).',
                                           check=integer(3), unset='the dataset\'s')
    feature_dims: Optional[Dict[str, int]] = setting(
        None, 'Feature widths (synthetic data).', check=_check_feature_dims,
        parse=parse_feature_dims, metavar='t=D,a=D,v=D', unset="the dataset's")

    @classmethod
    def applies_to(cls, dataset: str) -> bool:
        return isinstance(dataset, str) and ':' not in dataset

    @staticmethod
    def loader_options(config: Any, options: Dict[str, Any]) -> Dict[str, Any]:
        options = dict(options)  # these settings win over the same data options
        if config.num_dialogues is not None:
            options['num_dialogues'] = config.num_dialogues
        if config.feature_dims is not None:
            options['feature_dims'] = dict(config.feature_dims)
        return options


@dataclass
class TranscriptSettings(DatasetSettings):
    r"""Settings of dialogue transcripts (``csv:DIR``, ``meld-csv:DIR``): the text encoder,
    its fine-tuning and the dialogue context it reads.
    """
    scope: ClassVar[str] = 'transcript datasets (csv:DIR, meld-csv:DIR)'

    text_encoder: Optional[str] = setting(
        None, 'Text features of csv:/meld-csv: transcripts: tfidf, minilm (all-MiniLM-L6-v2, '
        'shipped offline by the [text] extra), mpnet (all-mpnet-base-v2, 5x the parameters, '
        'about 4x the time; the [mpnet] extra), or a sentence-transformers model name or '
        'folder.',
        check=check_text_encoder, metavar='tfidf|minilm|mpnet|NAME_OR_PATH',
        unset='transcripts: minilm with the [text] extra, else tfidf')
    text_finetune_epochs: Optional[int] = setting(
        None, 'Fine-tune the sentence encoder K epochs on the training utterances (epoch '
        'selected on valid) before embedding; 0 = frozen.', check=integer(0), metavar='K',
        unset=f'transcripts: {DEFAULT_TEXT_FINETUNE_EPOCHS} for a sentence encoder, 0 for tfidf')
    text_finetune_method: str = setting(
        'full', 'How the sentence encoder is fine-tuned: full (every weight) or lora (LoRA '
        'adapters, with peft; stored as a few MB over the base model by `dsgdn-pyg export '
        '--half`).', choices=('full', 'lora'), option='--text-finetune')
    text_context: Optional[Any] = setting(
        None, 'The sentence encoder reads each utterance with up to P previous and F following '
        'turns of its dialogue and their speakers, the utterance marked (fine-tuning, '
        'features, predict, stream); 0 = the utterance alone; a causal model takes F = 0.',
        check=_text_context, parse=_text_context, metavar='P[,F]',
        unset=f'transcripts with a sentence encoder: {DEFAULT_TEXT_CONTEXT[0]},'
              f'{DEFAULT_TEXT_CONTEXT[1]} (F = 0 with --causal), else 0')
    text_pooling: str = setting(
        DEFAULT_TEXT_POOLING, 'With text context: the embedding is the mean over the '
        "utterance's own word pieces (target) or over the whole input (mean).",
        choices=('target', 'mean'))

    @classmethod
    def applies_to(cls, dataset: str) -> bool:
        return is_transcript_dataset(dataset)

    @staticmethod
    def fill(config: Any) -> None:
        if config.text_encoder is None:
            from dsgdn_pyg.text import text_extra_available
            config.text_encoder = 'minilm' if text_extra_available() else 'tfidf'
        if config.text_finetune_epochs is None:
            config.text_finetune_epochs = (0 if config.text_encoder == 'tfidf'
                                           else DEFAULT_TEXT_FINETUNE_EPOCHS)
        if config.text_context is None and config.text_encoder != 'tfidf':
            past, future = DEFAULT_TEXT_CONTEXT
            causal = getattr(config, 'causal', False)
            config.text_context = [past, future] if future and not causal else past

    @staticmethod
    def loader_options(config: Any, options: Dict[str, Any]) -> Dict[str, Any]:
        # The same data options win over these settings.
        added = dict(text_encoder=config.text_encoder,
                     text_finetune_epochs=config.text_finetune_epochs)
        if config.text_context:  # 0 is the loaders' default: the same cache as before
            added.update(text_context=config.text_context, text_pooling=config.text_pooling)
        if config.text_finetune_method != 'full':  # absent: a full fine-tune's cache stays
            given = options.get('text_finetune') or {}
            options = dict(options, text_finetune={'method': config.text_finetune_method,
                                                   **given})
        if config.quiet:
            added['log'] = False  # no fine-tuning or embedding progress bars
        return dict(added, **options)


def is_transcript_dataset(dataset: Any) -> bool:
    r"""Whether :obj:`dataset` names dialogue CSVs (``csv:DIR`` or ``meld-csv:DIR``)."""
    return isinstance(dataset, str) and dataset.split(':', 1)[0] in ('csv', 'meld-csv')


#: The dataset kinds with settings; at most one applies to a dataset.
DATASET_SETTINGS = (SyntheticSettings, TranscriptSettings)


def dataset_settings(dataset: str) -> Optional[type]:
    r"""The settings class of the kind of :obj:`dataset`, or :obj:`None` if it has none."""
    return next((s for s in DATASET_SETTINGS if s.applies_to(dataset)), None)


for _part in DATASET_SETTINGS:
    _part.__doc__ += args_section(dataclasses.fields(_part))
