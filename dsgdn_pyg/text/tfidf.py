r"""TF-IDF text features reduced by a truncated SVD, fitted offline with scikit-learn.

The fitted transform is plain arrays (vocabulary, idf, SVD components), so it is stored with
the processed dataset and in every checkpoint and loads with ``weights_only=True``.
"""
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from dsgdn_pyg.io import atomic_torch_save

TFIDF_FORMAT = 'dsgdn-pyg-text-featurizer'
TFIDF_VERSION = 2
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



class TfidfFeaturizer:
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
            moves in 20 epochs (MELD: 49.9 weighted F1 without, see docs/results.md).
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
        self._components_cache: Optional[Tuple[torch.Tensor, np.ndarray]] = None

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
            raise ValueError("the TfidfFeaturizer is not fitted yet")
        if self.components is not None:
            return int(self.components.size(0))
        return sum(len(b['vocabulary']) for b in self.blocks)

    def fit(self, texts: Sequence[str]) -> 'TfidfFeaturizer':
        r"""Fits TF-IDF and the SVD on :obj:`texts` (the training utterances)."""
        from scipy.sparse import hstack
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        texts = _check_texts(texts)
        if not texts:
            raise ValueError("'texts' is empty: cannot fit a TfidfFeaturizer")
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

    def _components_t(self) -> np.ndarray:
        # The float64 product of the float32 components (sums of many small terms), cast
        # once: casting per call took 40 ms on MELD's vocabulary, a live push's whole budget.
        cached = self._components_cache
        if cached is None or cached[0] is not self.components:
            transposed = np.ascontiguousarray(self.components.numpy().T, dtype=np.float64)
            cached = self._components_cache = (self.components, transposed)
        return cached[1]

    def tfidf(self, texts: Sequence[str]):
        r"""The (unreduced) TF-IDF matrix of :obj:`texts`, a SciPy CSR matrix."""
        from scipy.sparse import hstack
        from sklearn.preprocessing import normalize

        if not self.fitted:
            raise ValueError("the TfidfFeaturizer is not fitted yet; call fit() or "
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
        out = np.asarray(x @ self._components_t())
        if self.mean is not None:
            out = (out - self.mean.numpy()) / self.std.numpy()
        return out.astype(np.float32)

    def fit_transform(self, texts: Sequence[str]) -> np.ndarray:
        return self.fit(texts).transform(texts)

    def state_dict(self) -> Dict[str, Any]:
        r"""The fitted transform as tensors, lists and numbers (``weights_only``-loadable)."""
        if not self.fitted:
            raise ValueError("the TfidfFeaturizer is not fitted yet")
        return {'format': TFIDF_FORMAT, 'version': TFIDF_VERSION,
                'options': dict(self.options),
                'blocks': [dict(b) for b in self.blocks], 'components': self.components,
                'mean': self.mean, 'std': self.std}

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> 'TfidfFeaturizer':
        r"""Rebuilds a fitted featurizer from :meth:`state_dict`."""
        if not isinstance(state, Mapping) or state.get('format') != TFIDF_FORMAT:
            raise ValueError("not a TfidfFeaturizer state (missing format "
                             f"{TFIDF_FORMAT!r})")
        if state.get('version') != TFIDF_VERSION:
            raise ValueError(f"TfidfFeaturizer state has version {state.get('version')}, "
                             f"expected {TFIDF_VERSION}")
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
    def load(cls, path: PathLike) -> 'TfidfFeaturizer':
        r"""Reads a file written by :meth:`save` with ``weights_only=True``."""
        try:
            state = torch.load(os.fspath(path), weights_only=True)
        except FileNotFoundError:
            raise
        except Exception as e:
            raise ValueError(f"{os.fspath(path)}: not a TfidfFeaturizer file ({e})") from None
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
