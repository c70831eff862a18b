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

Text features: TF-IDF of word 1-2-grams (character 2-5-grams optionally), reduced by a
truncated SVD (:class:`TextFeaturizer`), fitted on the training split only. The fitted
transform is plain arrays (vocabulary, idf, SVD components) stored with the processed
dataset, so new CSVs are featurised identically (loader option ``text_featurizer``).
"""
import ast
import csv
import os
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np
import torch

from dsgdn_pyg.data.corpus import DialogueCorpus
from dsgdn_pyg.datasets.cache import (SPLITS, DialogueCorpusDataset, ProcessedCorpus,
                                      atomic_torch_save, build_dialogue, file_digest,
                                      random_valid_split, speaker_indices)

MELD_LABELS = ('neutral', 'surprise', 'fear', 'sadness', 'joy', 'disgust', 'anger')
MELD_MAPPING: Dict[str, Any] = {
    'files': {'train': 'train_sent_emo.csv', 'valid': 'dev_sent_emo.csv',
              'test': 'test_sent_emo.csv'},
    'text': 'Utterance',
    'speaker': 'Speaker',
    'label': 'Emotion',
    'order': 'Utterance_ID',
    'dialogue': 'Dialogue_ID',
}
COLUMN_FIELDS = ('text', 'speaker', 'label', 'order', 'dialogue')
FEATURIZER_FORMAT = 'dsgdn-pyg-text-featurizer'
FEATURIZER_VERSION = 2
#: scikit-learn's default word pattern: runs of 2+ word characters (drops "!", "?", "I").
WORD_TOKENS = r'(?u)\b\w\w+\b'
#: Words of any length plus every punctuation mark as a token of its own: on MELD the marks
#: ("!", "?", "...") carry much of the emotion signal (docs/data_formats.md).
WORD_AND_PUNCTUATION_TOKENS = r'(?u)\b\w+\b|[^\w\s]'
#: Default width of the text features. On MELD (test split, context-free logistic
#: regression) 300 SVD dimensions keep most of the raw TF-IDF signal at a fraction of the
#: size; see docs/data_formats.md for the measurements.
DEFAULT_SVD_DIM = 300

PathLike = Union[str, os.PathLike]


# --------------------------------------------------------------------------------------------
# Text features

class TextFeaturizer:
    r"""TF-IDF (word n-grams, optionally also character n-grams) followed by a truncated
    SVD, with a state of plain arrays.

    :meth:`fit` uses scikit-learn's :class:`~sklearn.feature_extraction.text.TfidfVectorizer`
    and :class:`~sklearn.decomposition.TruncatedSVD`, then keeps only their numbers
    (vocabulary, idf, components); :meth:`transform` recomputes TF-IDF from those numbers
    with a fixed-vocabulary :class:`~sklearn.feature_extraction.text.CountVectorizer`.
    :meth:`state_dict` is therefore a dict of tensors, lists and numbers that loads with
    ``torch.load(..., weights_only=True)`` -- not a pickle of scikit-learn objects.

    Each block (words, characters) is L2-normalised separately, as in a
    :class:`~sklearn.pipeline.FeatureUnion` of two vectorizers. Text is lower-cased.

    Args:
        svd_dim (int, optional): Output width; :obj:`None` or 0 keeps the raw TF-IDF (only
            sensible with a small :obj:`max_features`). Capped at the number of TF-IDF terms
            and training texts. (default: :obj:`300`)
        char_ngrams (bool): Add character 2-5-grams (within word boundaries).
            (default: :obj:`False`)
        max_features (int, optional): Keep the most frequent terms of each block.
            (default: :obj:`None`)
        min_df (int): Minimum number of training texts a term occurs in; 2 drops the
            singletons (70% of MELD's 1-2-grams) at no cost in accuracy. (default: :obj:`2`)
        sublinear_tf (bool): Use :math:`1 + \log(tf)`. (default: :obj:`False`)
        punctuation (bool): Word tokens include one-letter words and each punctuation mark
            (:obj:`WORD_AND_PUNCTUATION_TOKENS`); :obj:`False` uses scikit-learn's default
            pattern (:obj:`WORD_TOKENS`). (default: :obj:`True`)
        random_state (int): Seed of the randomized SVD. (default: :obj:`0`)
        standardize (bool): Centre and scale each SVD component to unit variance on the
            training texts. The components of L2-normalised TF-IDF have a standard deviation
            of about 0.03; at that scale a network at the published learning rates barely
            moves in 20 epochs (MELD: 49.9 weighted F1 without, see the README).
            (default: :obj:`True`)
    """
    def __init__(self, svd_dim: Optional[int] = DEFAULT_SVD_DIM, char_ngrams: bool = False,
                 max_features: Optional[int] = None, min_df: int = 2,
                 sublinear_tf: bool = False, punctuation: bool = True,
                 random_state: int = 0, standardize: bool = True):
        if svd_dim is not None and (not isinstance(svd_dim, int) or isinstance(svd_dim, bool)
                                    or svd_dim < 0):
            raise ValueError(f"'svd_dim' must be a non-negative integer or None, got "
                             f"{svd_dim!r}")
        if max_features is not None and (not isinstance(max_features, int)
                                         or max_features < 1):
            raise ValueError(f"'max_features' must be a positive integer or None, got "
                             f"{max_features!r}")
        if not isinstance(min_df, int) or min_df < 1:
            raise ValueError(f"'min_df' must be a positive integer, got {min_df!r}")
        for name, value in (('char_ngrams', char_ngrams), ('sublinear_tf', sublinear_tf),
                            ('punctuation', punctuation)):
            if not isinstance(value, bool):
                raise ValueError(f"'{name}' must be true or false, got {value!r}")
        self.options = dict(svd_dim=svd_dim or None, char_ngrams=char_ngrams,
                            max_features=max_features, min_df=min_df,
                            sublinear_tf=sublinear_tf, punctuation=punctuation,
                            random_state=int(random_state), standardize=bool(standardize))
        self.blocks: List[Dict[str, Any]] = []
        self.components: Optional[torch.Tensor] = None
        self.mean: Optional[torch.Tensor] = None
        self.std: Optional[torch.Tensor] = None
        self._counter_cache: Optional[List[Any]] = None

    def _block_settings(self) -> List[Dict[str, Any]]:
        pattern = WORD_AND_PUNCTUATION_TOKENS if self.options['punctuation'] else WORD_TOKENS
        blocks = [dict(analyzer='word', ngram_range=[1, 2], token_pattern=pattern)]
        if self.options['char_ngrams']:
            blocks.append(dict(analyzer='char_wb', ngram_range=[2, 5], token_pattern=None))
        return blocks

    @property
    def fitted(self) -> bool:
        return bool(self.blocks)

    @property
    def out_channels(self) -> int:
        r"""Width of :meth:`transform`'s output."""
        if not self.fitted:
            raise ValueError("the TextFeaturizer is not fitted yet")
        if self.components is not None:
            return int(self.components.size(0))
        return sum(len(b['vocabulary']) for b in self.blocks)

    def fit(self, texts: Sequence[str]) -> 'TextFeaturizer':
        r"""Fits TF-IDF and the SVD on :obj:`texts` (the training utterances)."""
        from scipy.sparse import hstack
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        texts = _check_texts(texts)
        if not texts:
            raise ValueError("'texts' is empty: cannot fit a TextFeaturizer")
        self.blocks, matrices, self._counter_cache = [], [], None
        for settings in self._block_settings():
            vectorizer = TfidfVectorizer(
                analyzer=settings['analyzer'], ngram_range=tuple(settings['ngram_range']),
                token_pattern=settings['token_pattern'], min_df=self.options['min_df'],
                max_features=self.options['max_features'],
                sublinear_tf=self.options['sublinear_tf'], lowercase=True, dtype=np.float64)
            try:
                matrices.append(vectorizer.fit_transform(texts))
            except ValueError as e:  # e.g. "empty vocabulary"
                raise ValueError(f"cannot fit TF-IDF ({settings['analyzer']}) on the training "
                                 f"texts: {e}") from None
            vocabulary = [''] * len(vectorizer.vocabulary_)
            for term, index in vectorizer.vocabulary_.items():
                vocabulary[index] = term
            self.blocks.append(dict(settings, vocabulary=vocabulary,
                                    idf=torch.from_numpy(vectorizer.idf_.copy())))
        self.components = self.mean = self.std = None
        dim = self.options['svd_dim']
        if dim:
            tfidf = hstack(matrices).tocsr()
            # Randomized SVD needs at most min(n_texts, n_terms) components.
            dim = min(dim, tfidf.shape[0], tfidf.shape[1])
            svd = TruncatedSVD(n_components=dim, algorithm='randomized', n_iter=5,
                               random_state=self.options['random_state'])
            reduced = svd.fit_transform(tfidf)
            self.components = torch.from_numpy(svd.components_.astype(np.float32))
            if self.options['standardize']:
                self.mean = torch.from_numpy(reduced.mean(axis=0).astype(np.float32))
                std = reduced.std(axis=0)
                self.std = torch.from_numpy(np.where(std > 0, std, 1.0).astype(np.float32))
        return self

    def _counters(self) -> List[Any]:
        # Built once: a CountVectorizer validates its whole vocabulary on first use.
        from sklearn.feature_extraction.text import CountVectorizer

        if self._counter_cache is None:
            self._counter_cache = [CountVectorizer(
                analyzer=block['analyzer'], ngram_range=tuple(block['ngram_range']),
                token_pattern=block['token_pattern'],
                vocabulary={t: i for i, t in enumerate(block['vocabulary'])}, lowercase=True,
                dtype=np.float64) for block in self.blocks]
        return self._counter_cache

    def tfidf(self, texts: Sequence[str]):
        r"""The (unreduced) TF-IDF matrix of :obj:`texts`, a SciPy CSR matrix."""
        from scipy.sparse import hstack
        from sklearn.preprocessing import normalize

        if not self.fitted:
            raise ValueError("the TextFeaturizer is not fitted yet; call fit() or "
                             "from_state_dict()")
        texts = _check_texts(texts)
        matrices = []
        for block, counter in zip(self.blocks, self._counters()):
            x = counter.transform(texts).tocsr()
            if self.options['sublinear_tf']:
                np.log(x.data, x.data)
                x.data += 1.0
            x.data *= block['idf'].numpy()[x.indices]
            matrices.append(normalize(x, norm='l2', copy=False))
        return hstack(matrices).tocsr()

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        r"""Features of :obj:`texts`, a float32 array ``[len(texts), out_channels]``."""
        texts = _check_texts(texts)
        if not texts:
            return np.zeros((0, self.out_channels), dtype=np.float32)
        x = self.tfidf(texts)
        if self.components is None:
            return np.asarray(x.todense(), dtype=np.float32)
        # float64 product of the float32 components: sums of many small terms.
        components = self.components.numpy().astype(np.float64)
        out = np.asarray(x @ components.T)
        if self.mean is not None:
            out = (out - self.mean.numpy()) / self.std.numpy()
        return out.astype(np.float32)

    def fit_transform(self, texts: Sequence[str]) -> np.ndarray:
        return self.fit(texts).transform(texts)

    def state_dict(self) -> Dict[str, Any]:
        r"""The fitted transform as tensors, lists and numbers (``weights_only``-loadable)."""
        if not self.fitted:
            raise ValueError("the TextFeaturizer is not fitted yet")
        return {'format': FEATURIZER_FORMAT, 'version': FEATURIZER_VERSION,
                'options': dict(self.options),
                'blocks': [dict(b) for b in self.blocks], 'components': self.components,
                'mean': self.mean, 'std': self.std}

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> 'TextFeaturizer':
        r"""Rebuilds a fitted featurizer from :meth:`state_dict`."""
        if not isinstance(state, Mapping) or state.get('format') != FEATURIZER_FORMAT:
            raise ValueError("not a TextFeaturizer state (missing format "
                             f"{FEATURIZER_FORMAT!r})")
        if state.get('version') != FEATURIZER_VERSION:
            raise ValueError(f"TextFeaturizer state has version {state.get('version')}, "
                             f"expected {FEATURIZER_VERSION}")
        featurizer = cls(**state['options'])
        featurizer.blocks = [dict(b) for b in state['blocks']]
        featurizer._counter_cache = None
        featurizer.components = state['components']
        featurizer.mean, featurizer.std = state.get('mean'), state.get('std')
        return featurizer

    def save(self, path: PathLike) -> None:
        r"""Writes :meth:`state_dict` with :func:`torch.save` (atomically)."""
        atomic_torch_save(self.state_dict(), path)

    @classmethod
    def load(cls, path: PathLike) -> 'TextFeaturizer':
        r"""Reads a file written by :meth:`save` with ``weights_only=True``."""
        try:
            state = torch.load(os.fspath(path), weights_only=True)
        except FileNotFoundError:
            raise
        except Exception as e:
            raise ValueError(f"{os.fspath(path)}: not a TextFeaturizer file ({e})") from None
        try:
            return cls.from_state_dict(state)
        except ValueError as e:
            raise ValueError(f"{os.fspath(path)}: {e}") from None

    def __repr__(self) -> str:
        options = ', '.join(f'{k}={v!r}' for k, v in self.options.items())
        return f'{self.__class__.__name__}({options})'


def _check_texts(texts: Sequence[str]) -> List[str]:
    if isinstance(texts, str):
        raise ValueError("'texts' must be a sequence of strings, got a single string")
    texts = list(texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise ValueError(f"'texts' entry {i} is {type(t).__name__}, expected str")
    return texts


# --------------------------------------------------------------------------------------------
# The column mapping

def resolve_mapping(mapping: Optional[Mapping[str, Any]] = None,
                    defaults: Mapping[str, Any] = MELD_MAPPING) -> Dict[str, Any]:
    r"""The ``[csv]`` mapping over :obj:`defaults`, checked.

    ``files`` replaces the default file table only for the splits it names; a split mapped
    to ``""`` is absent. ``order = ""`` keeps the file's row order.

    Raises:
        ValueError: For an unknown key or a value of the wrong type.
    """
    mapping = dict(mapping or {})
    allowed = ('files',) + COLUMN_FIELDS
    unknown = sorted(set(mapping) - set(allowed))
    if unknown:
        raise ValueError(f"the '[csv]' mapping has unknown key(s) {unknown}; valid keys are "
                         f"{list(allowed)}")
    out = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in defaults.items()}
    files = mapping.pop('files', None)
    if files is not None:
        if not isinstance(files, Mapping):
            raise ValueError(f"the '[csv]' mapping's 'files' must be a table like "
                             f"{{ train = \"train.csv\", valid = \"dev.csv\", test = "
                             f"\"test.csv\" }}, got {files!r}")
        bad = sorted(set(files) - set(SPLITS))
        if bad:
            raise ValueError(f"the '[csv]' mapping's 'files' has unknown split(s) {bad}; "
                             f"use train, valid, test")
        for split, name in files.items():
            if not isinstance(name, str):
                raise ValueError(f"the '[csv]' mapping's files.{split} must be a file name, "
                                 f"got {name!r}")
        out['files'].update(files)
    out['files'] = {s: n for s, n in out['files'].items() if n}
    if 'train' not in out['files']:
        raise ValueError("the '[csv]' mapping's 'files' needs a 'train' file")
    out.update(mapping)
    for key in ('text', 'speaker', 'label', 'order'):
        if not isinstance(out[key], str) or (key != 'order' and not out[key]):
            raise ValueError(f"the '[csv]' mapping's '{key}' must be a column name, got "
                             f"{out[key]!r}")
    dialogue = out['dialogue']
    dialogue = [dialogue] if isinstance(dialogue, str) else dialogue
    if (not isinstance(dialogue, (list, tuple)) or not dialogue
            or not all(isinstance(c, str) and c for c in dialogue)):
        raise ValueError(f"the '[csv]' mapping's 'dialogue' must be a column name or a "
                         f"non-empty list of column names, got {out['dialogue']!r}")
    out['dialogue'] = list(dialogue)
    return out


# --------------------------------------------------------------------------------------------
# Reading CSVs

_LIST_LIKE = re.compile(r'^\s*[\[(].*[\])]\s*$', re.DOTALL)


def parse_speaker(value: str) -> str:
    r"""A speaker cell as one name: ``"['Monica Geller']"`` -> ``'Monica Geller'``; a list of
    several names becomes them joined by ``', '``. Parsed with :func:`ast.literal_eval`
    (literals only, nothing is evaluated); anything else is the stripped cell."""
    text = value.strip()
    if _LIST_LIKE.match(text):
        try:
            parsed = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return text
        if isinstance(parsed, (list, tuple)) and all(isinstance(p, str) for p in parsed):
            return ', '.join(p.strip() for p in parsed)
    return text


def _order_value(path: str, dialogue_id: str, column: str, line: int, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{path}: dialogue {dialogue_id!r}: field 'order' (column "
                         f"{column!r}), line {line}: {value!r} is not a number") from None


def read_dialogue_rows(path: str, mapping: Mapping[str, Any]) -> Dict[str, List[Dict[str, Any]]]:
    r"""The utterances of a CSV grouped into dialogues (in order of first appearance) and
    sorted by the ``order`` column: ``{dialogue_id: [{'text', 'speaker', 'label', 'line'},
    ...]}``.

    Raises:
        ValueError: For a missing mapped column, a non-numeric or repeated order value,
            or a file that is not UTF-8 CSV; naming the file, dialogue and field.
    """
    try:
        with open(path, newline='', encoding='utf-8-sig') as f:
            reader = csv.DictReader(f)
            columns = list(reader.fieldnames or [])
            needed = [('text', mapping['text']), ('speaker', mapping['speaker']),
                      ('label', mapping['label'])]
            if mapping['order']:
                needed.append(('order', mapping['order']))
            needed += [('dialogue', c) for c in mapping['dialogue']]
            for field, column in needed:
                if column not in columns:
                    raise ValueError(f"{path}: column {column!r} (the '[csv]' mapping's "
                                     f"'{field}') is missing; the file has columns {columns}")
            groups: Dict[str, List[Dict[str, Any]]] = {}
            for row in reader:
                line = reader.line_num
                dialogue_id = '/'.join((row[c] or '').strip() for c in mapping['dialogue'])
                label = row[mapping['label']]
                groups.setdefault(dialogue_id, []).append({
                    'text': row[mapping['text']] or '',
                    'speaker': parse_speaker(row[mapping['speaker']] or ''),
                    'label': (label or '').strip(),
                    'order': row[mapping['order']] if mapping['order'] else None,
                    'line': line,
                })
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not valid UTF-8 ({e})") from None
    except csv.Error as e:
        raise ValueError(f"{path}: not a readable CSV file ({e})") from None
    if mapping['order']:
        column = mapping['order']
        for dialogue_id, rows in groups.items():
            for row in rows:
                row['order'] = _order_value(path, dialogue_id, column, row['line'],
                                            row['order'])
            seen: Dict[float, int] = {}
            for row in rows:
                if row['order'] in seen:
                    raise ValueError(f"{path}: dialogue {dialogue_id!r}: field 'order' "
                                     f"(column {column!r}) repeats value {row['order']:g} "
                                     f"(lines {seen[row['order']]} and {row['line']}); the "
                                     f"utterance order is ambiguous")
                seen[row['order']] = row['line']
            rows.sort(key=lambda r: r['order'])
    return groups


def _label_indices(path: str, dialogue_id: str, rows: Sequence[Mapping[str, Any]],
                   index: Mapping[str, int], column: str, split: str) -> List[int]:
    labels = []
    for row in rows:
        if row['label'] == '':
            labels.append(-1)
        elif row['label'] in index:
            labels.append(index[row['label']])
        else:
            known = ', '.join(index)
            why = ('never occurs in the training split' if split != 'train'
                   else 'is not one of the label names')
            raise ValueError(f"{path}: dialogue {dialogue_id!r}: field 'label' (column "
                             f"{column!r}), line {row['line']}: label {row['label']!r} "
                             f"{why} (labels: {known})")
    return labels


def read_dialogue_csvs(directory: str, mapping: Mapping[str, Any],
                       featurizer_options: Mapping[str, Any],
                       text_featurizer: Optional[Union[str, Mapping[str, Any]]] = None,
                       label_names: Optional[Sequence[str]] = None,
                       valid_fraction: float = 0.1, seed: int = 0) -> ProcessedCorpus:
    r"""Reads, validates and featurises the CSVs of a directory (see
    :func:`load_dialogue_csv` for the arguments); :obj:`mapping` is a resolved mapping
    (:func:`resolve_mapping`)."""
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
        featurizer = TextFeaturizer(**featurizer_options).fit(
            [row['text'] for d in dialogue_ids['train'] for row in groups['train'][d]])
    elif isinstance(text_featurizer, Mapping):
        featurizer = TextFeaturizer.from_state_dict(text_featurizer)
    else:
        featurizer = TextFeaturizer.load(text_featurizer)

    splits: Dict[str, List[Any]] = {}
    for split in SPLITS:
        # One transform per split: far faster than one per dialogue.
        features = featurizer.transform([row['text'] for d in dialogue_ids[split]
                                         for row in groups[split][d]])
        dialogues, start = [], 0
        for dialogue_id in dialogue_ids[split]:
            rows = groups[split][dialogue_id]
            labels = _label_indices(paths[split], dialogue_id, rows, index, mapping['label'],
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
        text_featurizer (str or dict, optional): A fitted :class:`TextFeaturizer` (a file
            written by :meth:`TextFeaturizer.save`, or its state dict) to use instead of
            fitting one -- e.g. the training run's, to featurise new CSVs the same way.
            (default: :obj:`None`)
        label_names (List[str], optional): Label order; :obj:`None` = the training labels,
            sorted. (default: :obj:`None`)
        valid_fraction (float): Share of training dialogues held out when ``files`` has no
            ``valid`` file. (default: :obj:`0.1`)
        seed (int): Seed of that hold-out. (default: :obj:`0`)
        force_reload (bool): Process even if cached. (default: :obj:`False`)
        log (bool): Print while processing. (default: :obj:`True`)
    """
    kind = 'csv'

    def __init__(self, directory: PathLike, mapping: Optional[Mapping[str, Any]] = None,
                 root: Optional[PathLike] = None, svd_dim: Optional[int] = DEFAULT_SVD_DIM,
                 char_ngrams: bool = False, max_features: Optional[int] = None,
                 min_df: int = 2, sublinear_tf: bool = False, punctuation: bool = True,
                 standardize: bool = True,
                 text_featurizer: Optional[Union[PathLike, Mapping[str, Any]]] = None,
                 label_names: Optional[Sequence[str]] = None, valid_fraction: float = 0.1,
                 seed: int = 0, force_reload: bool = False, log: bool = True,
                 defaults: Mapping[str, Any] = MELD_MAPPING):
        directory = os.fspath(directory)
        if not os.path.isdir(directory):
            raise FileNotFoundError(f"{self.kind} source {directory!r} is not a directory")
        self.mapping = resolve_mapping(mapping, defaults)
        # Checked now rather than when (if) the cache is built.
        self.featurizer_options = TextFeaturizer(svd_dim, char_ngrams, max_features, min_df,
                                                 sublinear_tf, punctuation,
                                                 standardize=standardize).options
        if isinstance(text_featurizer, os.PathLike):
            text_featurizer = os.fspath(text_featurizer)
        self.text_featurizer = text_featurizer
        # (self.label_names is the loaded corpus's; this is the option)
        self.label_order = list(label_names) if label_names is not None else None
        if self.label_order is not None and (not self.label_order or
                                             len(set(self.label_order)) != len(self.label_order)):
            raise ValueError(f"'label_names' must be distinct names, got {label_names!r}")
        self.valid_fraction, self.seed = float(valid_fraction), int(seed)
        if isinstance(text_featurizer, str):
            fitted_key: Any = {'file_sha256': file_digest(text_featurizer)}
        else:
            fitted_key = text_featurizer
        options = dict(mapping=self.mapping, featurizer=self.featurizer_options,
                       text_featurizer=fitted_key, label_names=self.label_order,
                       valid_fraction=self.valid_fraction, seed=self.seed)
        super().__init__(directory, root=root, options=options, force_reload=force_reload,
                         log=log)

    @property
    def raw_file_names(self) -> List[str]:
        return [self.mapping['files'][s] for s in SPLITS if s in self.mapping['files']]

    def read(self) -> ProcessedCorpus:
        return read_dialogue_csvs(self.source, self.mapping, self.featurizer_options,
                                  text_featurizer=self.text_featurizer,
                                  label_names=self.label_order,
                                  valid_fraction=self.valid_fraction, seed=self.seed)

    @property
    def featurizer_path(self) -> str:
        r"""File of the fitted text transform (:meth:`TextFeaturizer.load` reads it; pass
        it as the ``text_featurizer`` option to featurise new CSVs the same way)."""
        return os.path.join(self.processed_dir, f'{self.cache_key}.featurizer.pt')

    def featurizer(self) -> TextFeaturizer:
        r"""The text transform of this dataset (fitted on its training split, or given)."""
        return TextFeaturizer.from_state_dict(self.meta['text_featurizer'])

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
            ``text_featurizer``,
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
    'TextFeaturizer',
    'load_dialogue_csv',
    'load_meld_csv',
    'parse_speaker',
    'read_dialogue_csvs',
    'read_dialogue_rows',
    'resolve_mapping',
]
