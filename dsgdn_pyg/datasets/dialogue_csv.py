r"""Dialogue transcripts in CSV files (one file per split), with text features computed
offline by scikit-learn.

A dialogue is the rows that share the value(s) of the ``dialogue`` column(s), ordered by the
``order`` column. The column mapping is the ``[csv]`` table of the run's TOML file; its
defaults are MELD's (:obj:`MELD_MAPPING`)::

    [csv]
    files = { train = "train_sent_emo.csv", valid = "dev_sent_emo.csv", test = "test_sent_emo.csv" }
    text = "Utterance"
    speaker = "Speaker"
    label = "Emotion"
    order = "Utterance_ID"
    dialogue = "Dialogue_ID"     # or a list of columns, e.g. ["Season", "Episode", "Scene"]
    audio = "Recording"          # optional: audio files -> the audio modality (dsgdn_pyg.audio)
    audio_features = "eGeMAPS"   # optional: eGeMAPS (default), ComParE_2016 or emobase
    video = "Clip"               # optional: video files -> the visual modality, and the
                                 # audio one from their sound track (dsgdn_pyg.video)
    video_start = "Start"        # optional: columns of the clip's start/end in seconds
    video_end = "End"
    video_fps = 5                # optional: frames sampled per second (default 5)
    video_face = "largest"       # optional: the speaker's face: largest, left, right, center

Text features: option ``text_encoder``. A transformer sentence encoder
(:class:`~dsgdn_pyg.text.SentenceEncoder`, ``'minilm'`` or any sentence-transformers model),
optionally fine-tuned on the labelled training utterances first
(:func:`~dsgdn_pyg.text.finetune.finetune_encoder`), or (``'tfidf'``, the default here)
TF-IDF of word 1-2-grams (character 2-5-grams optionally), reduced by a
truncated SVD (:class:`~dsgdn_pyg.text.TfidfFeaturizer`), fitted on the training split only. The fitted
transform is plain arrays (vocabulary, idf, SVD components) stored with the processed
dataset, so new CSVs are featurised identically (loader option ``text_featurizer``).
"""
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np

from dsgdn_pyg.data.corpus import DialogueCorpus
from dsgdn_pyg.data.validate import SPLITS, build_dialogue, speaker_indices
from dsgdn_pyg.datasets.base import DialogueCorpusDataset, ProcessedCorpus, random_valid_split
from dsgdn_pyg.datasets.csv_format import (MELD_LABELS, MELD_MAPPING, dialogue_turns,
                                           label_indices, labelled_inputs, parse_speaker,
                                           read_dialogue_rows, resolve_mapping)
from dsgdn_pyg.io import atomic_torch_save, file_digest
from dsgdn_pyg.text import DEFAULT_SVD_DIM, TfidfFeaturizer, text_encoder_from_state
from dsgdn_pyg.text.choice import make_text_encoder, text_encoder_options
from dsgdn_pyg.text.context import context_setting, embed_dialogues, encoder_context, parse_context

PathLike = Union[str, os.PathLike]


def _load_state(path: str) -> Mapping[str, Any]:
    import torch

    try:
        return torch.load(path, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as e:
        raise ValueError(f"{path}: not a text encoder file ({e})") from None


def read_dialogue_csvs(directory: str, mapping: Mapping[str, Any],
                       featurizer_options: Mapping[str, Any],
                       text_featurizer: Optional[Union[str, Mapping[str, Any]]] = None,
                       label_names: Optional[Sequence[str]] = None,
                       valid_fraction: float = 0.1, seed: int = 0,
                       text_encoder: str = 'tfidf',
                       text_finetune: Optional[Mapping[str, Any]] = None,
                       log: bool = False, text_context=0,
                       text_device: Optional[str] = None) -> ProcessedCorpus:
    r"""Reads, validates and featurises the CSVs of a directory (see
    :func:`load_dialogue_csv` for the arguments); :obj:`mapping` is a resolved mapping
    (:func:`resolve_mapping`). :obj:`text_finetune` holds
    :func:`~dsgdn_pyg.text.finetune.finetune_encoder`'s options (``epochs`` 0 = frozen) and
    its ``cache_root``; :obj:`text_context` = (P, F) turns around each utterance go into a
    sentence encoder's input (:mod:`dsgdn_pyg.text.context`); a sentence encoder is
    fine-tuned and embeds on :obj:`text_device` (:obj:`None`: the CPU)."""
    paths = {s: os.path.join(directory, name) for s, name in mapping['files'].items()}
    groups = {s: read_dialogue_rows(p, mapping) for s, p in paths.items()}
    if not groups['train']:
        raise ValueError(f"{paths['train']}: the training file has no rows")
    dialogue_ids = {s: list(g) for s, g in groups.items()}
    valid_split = 'file'
    if 'valid' not in groups:
        train, valid = random_valid_split(dialogue_ids['train'], valid_fraction, seed)
        dialogue_ids['train'], dialogue_ids['valid'] = train, valid
        groups['valid'] = {d: groups['train'][d] for d in valid}
        paths['valid'] = paths['train']
        valid_split = 'random'
    dialogue_ids.setdefault('test', [])
    groups.setdefault('test', {})

    if label_names is None:
        label_names = sorted({row['label'] for d in dialogue_ids['train']
                              for row in groups['train'][d] if row['label'] != ''})
        if not label_names:
            raise ValueError(f"{paths['train']}: column {mapping['label']!r} has no labels "
                             f"in the training dialogues")
    label_names = list(label_names)
    index = {name: i for i, name in enumerate(label_names)}

    if text_featurizer is None:
        featurizer = make_text_encoder(
            text_encoder, text_finetune, featurizer_options,
            dialogue_turns(groups, dialogue_ids, 'train'),
            lambda split: labelled_inputs(groups, dialogue_ids, index, split, text_context),
            len(index), quiet=not log, context=text_context, device=text_device)
    else:
        state = text_featurizer if isinstance(text_featurizer, Mapping) else \
            _load_state(text_featurizer)
        featurizer = text_encoder_from_state(state, text_device)
    given = parse_context(text_context)
    if text_featurizer is not None and given not in ((0, 0), encoder_context(featurizer)):
        raise ValueError(f"'text_context' is {given}, but the given text featurizer was "
                         f"trained with {encoder_context(featurizer)} (previous, following) "
                         f"turns (it embeds with its own; leave 'text_context' at 0)")

    splits: Dict[str, List[Any]] = {}
    for split in SPLITS:
        # One transform per split, with the featurizer's own context.
        featurizer.stage = f'embedding {split}'  # the progress bar's name (sentence encoder)
        features = embed_dialogues(featurizer, dialogue_turns(groups, dialogue_ids, split))
        dialogues, start = [], 0
        for dialogue_id in dialogue_ids[split]:
            rows = groups[split][dialogue_id]
            labels = label_indices(paths[split], dialogue_id, rows, index, mapping['label'],
                                    split)
            speakers = speaker_indices(paths[split], dialogue_id, [r['speaker'] for r in rows])
            dialogues.append(build_dialogue(paths[split], dialogue_id, speakers,
                                            np.asarray(labels),
                                            {'t': features[start:start + len(rows)]}))
            start += len(rows)
        splits[split] = dialogues
    meta = {'mapping': mapping, 'valid_split': valid_split,
            'text_featurizer': featurizer.state_dict(),
            'featurizer_fitted_here': text_featurizer is None}
    if mapping.get('audio'):
        from dsgdn_pyg.audio import add_audio_modality
        meta['audio_features'] = add_audio_modality(splits, dialogue_ids, groups, paths,
                                                    mapping)
    if mapping.get('video'):
        # The clips' sound track is the audio modality unless an 'audio' column names it.
        from dsgdn_pyg.video.modality import add_video_modality
        with_audio = not mapping.get('audio') and mapping.get('video_audio', True)
        meta['video_features'], audio = add_video_modality(splits, dialogue_ids, groups, paths,
                                                           mapping, with_audio, log)
        if audio is not None:
            meta['audio_features'] = audio
    return ProcessedCorpus(splits, label_names, meta)


class DialogueCSVDataset(DialogueCorpusDataset):
    r"""A directory of dialogue CSVs as a cached
    :class:`~torch_geometric.data.InMemoryDataset` (see the module docstring).

    Args:
        directory (str): Folder holding the CSV files.
        mapping (dict, optional): The ``[csv]`` table (:func:`resolve_mapping`); missing
            keys take MELD's defaults. (default: :obj:`None`)
        root (str, optional): Cache root. (default: ``$DSGDN_PYG_CACHE`` or
            ``~/.cache/dsgdn-pyg``)
        svd_dim (int, optional): Width of the text features. (default: :obj:`300`)
        char_ngrams (bool): Add character n-grams to the TF-IDF. (default: :obj:`False`)
        max_features (int, optional): Terms kept per TF-IDF block. (default: :obj:`None`)
        min_df (int): Minimum document frequency of a term. (default: :obj:`2`)
        sublinear_tf (bool): Sublinear term frequencies. (default: :obj:`False`)
        punctuation (bool): Punctuation marks and one-letter words are word tokens.
            (default: :obj:`True`)
        standardize (bool): Scale the SVD components to unit variance on the training split.
            (default: :obj:`True`)
        text_featurizer (str or dict, optional): A fitted :class:`TfidfFeaturizer` (a file
            written by :meth:`TfidfFeaturizer.save`, or its state dict) to use instead of
            fitting one -- e.g. the training run's, to featurise new CSVs the same way.
            (default: :obj:`None`)
        label_names (List[str], optional): Label order; :obj:`None` = the training labels,
            sorted. (default: :obj:`None`)
        valid_fraction (float): Share of training dialogues held out when ``files`` has no
            ``valid`` file. (default: :obj:`0.1`)
        seed (int): Seed of that hold-out. (default: :obj:`0`)
        text_encoder (str): ``'tfidf'`` (the options above), or a transformer sentence
            encoder: ``'minilm'`` (all-MiniLM-L6-v2, shipped by the ``[text]`` extra), a
            Hugging Face model name or a local folder (:class:`~dsgdn_pyg.text.SentenceEncoder`;
            its embeddings are standardised on the training split). (default: ``'tfidf'``)
        text_finetune_epochs (int): Fine-tune the sentence encoder for this many epochs on
            the labelled training utterances, epoch selected on valid
            (:func:`~dsgdn_pyg.text.finetune.finetune_encoder`; cached by content hash);
            0 keeps it frozen. (default: :obj:`0`)
        text_finetune (dict, optional): Further fine-tuning options (``max_seq_length``,
            ``batch_size``, ``lr``, ``head_lr``, ``seed``, ...). (default: :obj:`None`)
        text_context (int, str or Tuple[int, int]): The sentence encoder reads each
            utterance with up to P previous and F following turns of its dialogue and their
            speakers (``P``, ``"P,F"`` or ``(P, F)``), in fine-tuning, in embedding every
            split and in ``predict``/``stream`` (:mod:`dsgdn_pyg.text.context`; default
            word-piece budget ``max_seq_length`` 48 + 24 per turn, at most 128). 0 = the
            utterance alone. (default: :obj:`0`)
        text_pooling (str): With context, the embedding is the mean over the target
            utterance's word pieces (``'target'``) or over the whole input (``'mean'``).
            (default: ``'target'``)
        force_reload (bool): Process even if cached. (default: :obj:`False`)
        log (bool): Print while processing. (default: :obj:`True`)
        text_device (str, optional): Where a sentence encoder is fine-tuned and embeds
            (``'cuda'``; no part of the cache key). (default: :obj:`None`, the CPU)
    """
    kind = 'csv'

    def __init__(self, directory: PathLike, mapping: Optional[Mapping[str, Any]] = None,
                 root: Optional[PathLike] = None, svd_dim: Optional[int] = DEFAULT_SVD_DIM,
                 char_ngrams: bool = False, max_features: Optional[int] = None,
                 min_df: int = 2, sublinear_tf: bool = False, punctuation: bool = True,
                 standardize: bool = True,
                 text_featurizer: Optional[Union[PathLike, Mapping[str, Any]]] = None,
                 label_names: Optional[Sequence[str]] = None, valid_fraction: float = 0.1,
                 seed: int = 0, text_encoder: str = 'tfidf', text_finetune_epochs: int = 0,
                 text_finetune: Optional[Mapping[str, Any]] = None, text_context=0,
                 text_pooling: str = 'target', force_reload: bool = False, log: bool = True,
                 defaults: Mapping[str, Any] = MELD_MAPPING, text_device: Optional[str] = None):
        directory = os.fspath(directory)
        if not os.path.isdir(directory):
            raise FileNotFoundError(f"{self.kind} source {directory!r} is not a directory")
        self.mapping = resolve_mapping(mapping, defaults)
        # Checked now rather than when (if) the cache is built.
        self.featurizer_options = TfidfFeaturizer(svd_dim, char_ngrams, max_features, min_df,
                                                 sublinear_tf, punctuation,
                                                 standardize=standardize).options
        if isinstance(text_featurizer, os.PathLike):
            text_featurizer = os.fspath(text_featurizer)
        self.text_featurizer = text_featurizer
        # Where the sentence encoder runs: no part of the cache key (the features agree).
        self.text_device = text_device
        # (self.label_names is the loaded corpus's; this is the option)
        self.label_order = list(label_names) if label_names is not None else None
        if self.label_order is not None and (not self.label_order or
                                             len(set(self.label_order)) != len(self.label_order)):
            raise ValueError(f"'label_names' must be distinct names, got {label_names!r}")
        self.valid_fraction, self.seed = float(valid_fraction), int(seed)
        self.text_context = context_setting(text_context)
        self.text_encoder, self.text_finetune = text_encoder_options(
            text_encoder, text_finetune_epochs, text_finetune, self.text_context, text_pooling)
        self.cache_root = os.fspath(root) if root is not None else None
        if isinstance(text_featurizer, str):
            fitted_key: Any = {'file_sha256': file_digest(text_featurizer)}
        else:
            fitted_key = text_featurizer
        options = dict(mapping=self.mapping, featurizer=self.featurizer_options,
                       text_featurizer=fitted_key, label_names=self.label_order,
                       valid_fraction=self.valid_fraction, seed=self.seed)
        if self.text_encoder != 'tfidf' and text_featurizer is None:
            from dsgdn_pyg.text.sentence import model_identity

            options.update(featurizer=None, text_encoder=model_identity(self.text_encoder),
                           text_finetune=self.text_finetune)
        if self.text_context:  # absent when 0: the caches of runs without context stay valid
            options['text_context'] = self.text_context
        super().__init__(directory, root=root, options=options, force_reload=force_reload,
                         log=log)

    @property
    def raw_file_names(self) -> List[str]:
        return [self.mapping['files'][s] for s in SPLITS if s in self.mapping['files']]

    def read(self) -> ProcessedCorpus:
        return read_dialogue_csvs(self.source, self.mapping, self.featurizer_options,
                                  text_featurizer=self.text_featurizer,
                                  label_names=self.label_order,
                                  valid_fraction=self.valid_fraction, seed=self.seed,
                                  text_encoder=self.text_encoder,
                                  text_finetune=dict(self.text_finetune,
                                                     cache_root=self.cache_root),
                                  log=self.log, text_context=self.text_context,
                                  text_device=self.text_device)

    @property
    def featurizer_path(self) -> str:
        r"""File of the fitted text transform (:meth:`TfidfFeaturizer.load` reads it; pass
        it as the ``text_featurizer`` option to featurise new CSVs the same way)."""
        return os.path.join(self.processed_dir, f'{self.cache_key}.featurizer.pt')

    def featurizer(self):
        r"""The text transform of this dataset (fitted on its training split, or given)."""
        return text_encoder_from_state(self.meta['text_featurizer'])

    def to_corpus(self, name: Optional[str] = None) -> DialogueCorpus:
        if not os.path.exists(self.featurizer_path):
            atomic_torch_save(self.meta['text_featurizer'], self.featurizer_path)
        corpus = super().to_corpus(name)
        corpus.meta['text_featurizer_path'] = self.featurizer_path
        return corpus


class MELDCSVDataset(DialogueCSVDataset):
    r""":class:`DialogueCSVDataset` with MELD's label order (0 neutral, 1 surprise, 2 fear,
    3 sadness, 4 joy, 5 disgust, 6 anger) unless :obj:`label_names` is given."""
    kind = 'meld-csv'

    def __init__(self, directory: PathLike, *args, label_names: Optional[Sequence[str]] = None,
                 **kwargs):
        super().__init__(directory, *args, label_names=label_names or list(MELD_LABELS),
                         **kwargs)


def _load(cls, directory: PathLike, seed: int, csv: Optional[Mapping[str, Any]],
          options: Dict[str, Any]) -> DialogueCorpus:
    dataset = cls(directory, mapping=csv, seed=seed, **options)
    return dataset.to_corpus(f'{cls.kind}:{os.fspath(directory)}')


def load_dialogue_csv(directory: PathLike, seed: int = 0,
                      csv: Optional[Mapping[str, Any]] = None, **options) -> DialogueCorpus:
    r"""Loads a directory of dialogue CSVs (``load_corpus('csv:DIR', csv={...}, ...)``).

    Args:
        directory (str): Folder holding the CSV files.
        seed (int): Seed of the validation hold-out (no ``valid`` file). (default: :obj:`0`)
        csv (dict, optional): The ``[csv]`` mapping; missing keys take MELD's defaults.
            (default: :obj:`None`)
        **options: ``root``, ``force_reload``, ``svd_dim``, ``char_ngrams``,
            ``max_features``, ``min_df``, ``sublinear_tf``, ``punctuation``,
            ``text_featurizer``, ``text_encoder``, ``text_finetune_epochs``,
            ``text_finetune``, ``text_context``,
            ``label_names``, ``valid_fraction``, ``log`` (see :class:`DialogueCSVDataset`).

    The corpus's ``meta['text_featurizer']`` holds the fitted transform (a state dict).
    """
    return _load(DialogueCSVDataset, directory, seed, csv, options)


def load_meld_csv(directory: PathLike, seed: int = 0,
                  csv: Optional[Mapping[str, Any]] = None, **options) -> DialogueCorpus:
    r"""Loads MELD's three CSV files (``load_corpus('meld-csv:DIR')``): as
    :func:`load_dialogue_csv`, with MELD's label order."""
    return _load(MELDCSVDataset, directory, seed, csv, options)


__all__ = [
    'DEFAULT_SVD_DIM',
    'DialogueCSVDataset',
    'MELDCSVDataset',
    'MELD_LABELS',
    'MELD_MAPPING',
    'TfidfFeaturizer',
    'load_dialogue_csv',
    'load_meld_csv',
    'parse_speaker',
    'read_dialogue_csvs',
    'read_dialogue_rows',
    'resolve_mapping',
]
