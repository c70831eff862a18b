import numpy as np
import pytest
import torch
from scipy.stats import chisquare
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from torch_geometric.data import Batch

from dsgdn_pyg.datasets import (
    SYNTHETIC_PRESETS,
    available_datasets,
    load_corpus,
    make_synthetic_corpus,
)

SMALL_DIMS = {'t': 6, 'a': 5, 'v': 4}


def all_dialogues(corpus):
    return corpus.train + corpus.valid + corpus.test


def previous_labels(corpus):
    """Brute force: per utterance, the label of the same speaker's previous utterance and of
    the most recent utterance by another speaker (-1 where there is none)."""
    own, other, y_all = [], [], []
    for data in all_dialogues(corpus):
        y, s = data.y.tolist(), data.speaker.tolist()
        for i in range(len(y)):
            same = [j for j in range(i) if s[j] == s[i]]
            diff = [j for j in range(i) if s[j] != s[i]]
            own.append(y[same[-1]] if same else -1)
            other.append(y[diff[-1]] if diff else -1)
            y_all.append(y[i])
    return np.array(own), np.array(other), np.array(y_all)


def stack(dialogues, key):
    return torch.cat([d[key] for d in dialogues]).numpy()


@pytest.mark.parametrize('preset,dims,num_classes,max_speakers', [
    ('synthetic-iemocap', {'t': 1024, 'a': 1582, 'v': 342}, 6, 2),
    ('synthetic-meld', {'t': 1024, 'a': 300, 'v': 342}, 7, 9),
])
def test_preset_fields(preset, dims, num_classes, max_speakers):
    corpus = make_synthetic_corpus(preset, seed=1, num_dialogues=12)
    assert corpus.name == preset
    assert corpus.feature_dims == dims
    assert corpus.num_classes == num_classes
    assert len(corpus.train) + len(corpus.valid) + len(corpus.test) == 12
    assert min(len(corpus.train), len(corpus.valid), len(corpus.test)) >= 1
    assert corpus.meta['preset'] == preset and corpus.meta['seed'] == 1
    assert corpus.meta['config']['num_dialogues'] == 12
    assert isinstance(corpus.meta['config'], dict)

    prefix = 'syn-' + preset.split('-')[1]
    ids = sorted(d.dialogue_id for d in all_dialogues(corpus))
    assert ids == [f'{prefix}-{i:04d}' for i in range(12)]
    speakers_seen = 0
    for data in all_dialogues(corpus):
        length = data.num_nodes
        for m, dim in dims.items():
            x = data[f'x_{m}']
            assert x.dtype == torch.float32 and x.shape == (length, dim)
            assert torch.isfinite(x).all()
        assert data.y.dtype == torch.long and data.y.shape == (length, )
        assert ((data.y >= 0) & (data.y < num_classes)).all()
        assert data.speaker.dtype == torch.long and data.speaker.shape == (length, )
        assert data.informative.dtype == torch.bool and data.informative.shape == (length, )
        # Speakers are numbered in order of their first turn.
        first_turns = list(dict.fromkeys(data.speaker.tolist()))
        assert first_turns == list(range(len(first_turns)))
        assert len(first_turns) <= max_speakers
        speakers_seen = max(speakers_seen, len(first_turns))
    assert corpus.num_speakers == speakers_seen

    batch = Batch.from_data_list(corpus.train)
    assert batch.informative.numel() == batch.num_nodes


def test_full_iemocap_preset():
    corpus = make_synthetic_corpus('synthetic-iemocap', seed=0)
    lengths = np.array([d.num_nodes for d in all_dialogues(corpus)])
    assert len(lengths) == 151
    assert (len(corpus.train), len(corpus.valid), len(corpus.test)) == (108, 12, 31)
    assert abs(lengths.mean() - 48) <= 6
    assert lengths.max() <= 110 and lengths.min() >= 8
    assert corpus.num_speakers == 2
    # Like IEMOCAP's session 5, the test split is the last block of dialogues.
    assert [d.dialogue_id for d in corpus.test] == [f'syn-iemocap-{i:04d}' for i in range(120, 151)]


@pytest.fixture(scope='module')
def meld():
    return make_synthetic_corpus('synthetic-meld', seed=0, feature_dims=SMALL_DIMS)


def test_meld_structure(meld):
    assert (len(meld.train), len(meld.valid), len(meld.test)) == (1038, 114, 280)
    lengths = np.array([d.num_nodes for d in all_dialogues(meld)])
    assert abs(lengths.mean() - 9.6) <= 1.0
    assert max(d.num_nodes for d in meld.train) <= 24
    assert max(d.num_nodes for d in meld.test) == 33
    num_speakers = np.array([int(d.speaker.max()) + 1 for d in all_dialogues(meld)])
    assert num_speakers.min() >= 1 and num_speakers.max() <= 9
    assert ((num_speakers >= 2) & (num_speakers <= 4)).mean() > 0.6


def test_meld_class_prior(meld):
    prior = np.array(SYNTHETIC_PRESETS['synthetic-meld'].class_prior)
    prior = prior / prior.sum()
    # First utterances have no context, so they are i.i.d. draws from the prior.
    first = np.array([int(d.y[0]) for d in all_dialogues(meld)])
    counts = np.bincount(first, minlength=len(prior))
    assert chisquare(counts, prior * counts.sum()).pvalue > 1e-3
    # Copying earlier labels keeps every utterance's marginal at the prior; labels within a
    # dialogue are correlated, hence a plain tolerance instead of a chi-square test.
    y = stack(all_dialogues(meld), 'y')
    freq = np.bincount(y, minlength=len(prior)) / len(y)
    assert np.abs(freq - prior).max() < 0.03


def test_determinism():
    kwargs = dict(num_dialogues=8, feature_dims=SMALL_DIMS)
    a = make_synthetic_corpus('synthetic-meld', seed=3, **kwargs)
    b = make_synthetic_corpus('synthetic-meld', seed=3, **kwargs)
    c = make_synthetic_corpus('synthetic-meld', seed=4, **kwargs)
    keys = ['x_t', 'x_a', 'x_v', 'y', 'speaker', 'informative']
    for split in ('train', 'valid', 'test'):
        assert len(a.split(split)) == len(b.split(split))
        for da, db in zip(a.split(split), b.split(split)):
            assert da.dialogue_id == db.dialogue_id
            for key in keys:
                assert torch.equal(da[key], db[key])
    assert not np.array_equal(stack(all_dialogues(a), 'x_t')[:5],
                              stack(all_dialogues(c), 'x_t')[:5])
    assert [d.num_nodes for d in all_dialogues(a)] != [d.num_nodes for d in all_dialogues(c)]


def test_modalities_are_independent_streams():
    full = make_synthetic_corpus('synthetic-iemocap', seed=2, num_dialogues=5,
                                 feature_dims={'t': 7, 'a': 3, 'v': 2})
    text_only = make_synthetic_corpus('synthetic-iemocap', seed=2, num_dialogues=5,
                                      feature_dims={'t': 7})
    assert text_only.modalities == ['t']
    for d_full, d_text in zip(all_dialogues(full), all_dialogues(text_only)):
        assert 'x_a' not in d_text and 'x_v' not in d_text
        assert torch.equal(d_full.x_t, d_text.x_t)
        assert torch.equal(d_full.y, d_text.y)


def test_inertia_and_contagion():
    kwargs = dict(num_dialogues=120, feature_dims={'t': 1}, seed=5)
    prior = np.array(SYNTHETIC_PRESETS['synthetic-iemocap'].class_prior)
    chance = float((prior / prior.sum())**2 @ np.ones(len(prior)))  # P(two prior draws agree)

    # Inertia alone: P(y == own previous) = p + (1 - p) * chance.
    own, _, y = previous_labels(make_synthetic_corpus(
        'synthetic-iemocap', inertia_prob=0.5, contagion_prob=0.0, **kwargs))
    has = own >= 0
    assert abs((y[has] == own[has]).mean() - (0.5 + 0.5 * chance)) < 0.03

    # Contagion alone: P(y == latest other speaker's label) = p + (1 - p) * chance.
    own, other, y = previous_labels(make_synthetic_corpus(
        'synthetic-iemocap', inertia_prob=0.0, contagion_prob=0.4, **kwargs))
    has = other >= 0
    assert abs((y[has] == other[has]).mean() - (0.4 + 0.6 * chance)) < 0.03

    # Neither: labels agree with their context only by chance.
    own, other, y = previous_labels(make_synthetic_corpus(
        'synthetic-iemocap', inertia_prob=0.0, contagion_prob=0.0, **kwargs))
    assert abs((y[own >= 0] == own[own >= 0]).mean() - chance) < 0.03
    assert abs((y[other >= 0] == other[other >= 0]).mean() - chance) < 0.03

    # The preset itself: both effects clearly above chance.
    own, other, y = previous_labels(make_synthetic_corpus('synthetic-iemocap', **kwargs))
    assert (y[own >= 0] == own[own >= 0]).mean() > chance + 0.3
    is_other = (other >= 0) & (own != y)  # exclude utterances explained by inertia
    assert (y[is_other] == other[is_other]).mean() > chance + 0.1


def fit_logistic(train, test, keys):
    x_train = np.concatenate([stack(train, k) for k in keys], axis=1)
    x_test = np.concatenate([stack(test, k) for k in keys], axis=1)
    model = LogisticRegression(max_iter=500).fit(x_train, stack(train, 'y'))
    return model.predict(x_test)


def test_uninformative_utterances_are_at_chance():
    corpus = make_synthetic_corpus('synthetic-iemocap', seed=0, num_dialogues=150,
                                   feature_dims={'t': 8, 'a': 8, 'v': 8})
    train, test = corpus.train + corpus.valid, corpus.test
    pred = fit_logistic(train, test, ['x_t', 'x_a', 'x_v'])
    y, informative = stack(test, 'y'), stack(test, 'informative')
    assert 0.2 < 1 - informative.mean() < 0.4

    def accuracy_and_chance(mask):
        # Accuracy a classifier would get if its predictions were independent of the labels.
        q = np.bincount(pred[mask], minlength=6) / mask.sum()
        p = np.bincount(y[mask], minlength=6) / mask.sum()
        return (pred[mask] == y[mask]).mean(), q @ p

    acc, chance = accuracy_and_chance(~informative)
    assert abs(acc - chance) < 0.05
    acc, chance = accuracy_and_chance(informative)
    assert acc > chance + 0.3


def test_modality_strength_order():
    corpus = make_synthetic_corpus('synthetic-iemocap', seed=0, num_dialogues=120,
                                   uninformative_share=0.0,
                                   feature_dims={'t': 32, 'a': 32, 'v': 32})
    train, test = corpus.train + corpus.valid, corpus.test
    y = stack(test, 'y')
    score = {m: f1_score(y, fit_logistic(train, test, [f'x_{m}']), average='weighted')
             for m in 'tav'}
    assert score['t'] > score['a'] + 0.03
    assert score['a'] > score['v'] + 0.03
    assert score['v'] > 0.3  # weak but not absent


def test_errors():
    with pytest.raises(ValueError, match='synthetic-iemocap.*synthetic-meld'):
        make_synthetic_corpus('synthetic-nope')
    with pytest.raises(ValueError, match='num_dialoges'):
        make_synthetic_corpus('synthetic-iemocap', num_dialoges=10)
    with pytest.raises(ValueError, match='inertia_prob'):
        make_synthetic_corpus('synthetic-iemocap', inertia_prob=1.5)
    with pytest.raises(ValueError, match='num_dialogues'):
        make_synthetic_corpus('synthetic-iemocap', num_dialogues=2)
    with pytest.raises(ValueError, match='feature_dims'):
        make_synthetic_corpus('synthetic-iemocap', feature_dims={'x': 3})
    with pytest.raises(ValueError, match='signal_strength'):
        make_synthetic_corpus('synthetic-iemocap', signal_strength={'t': 1.0})
    with pytest.raises(ValueError, match='latent_dim'):
        make_synthetic_corpus('synthetic-meld', latent_dim=6)  # fewer than 7 classes
    with pytest.raises(ValueError, match='class_prior'):
        make_synthetic_corpus('synthetic-iemocap', class_prior=(0.5, 0.5))


def test_registry():
    assert {'synthetic-iemocap', 'synthetic-meld'} <= set(available_datasets())
    a = load_corpus('synthetic-meld', seed=7, num_dialogues=6, feature_dims=SMALL_DIMS)
    b = make_synthetic_corpus('synthetic-meld', seed=7, num_dialogues=6, feature_dims=SMALL_DIMS)
    assert a.name == 'synthetic-meld' and a.meta['seed'] == 7
    assert len(all_dialogues(a)) == len(all_dialogues(b))
    for da, db in zip(all_dialogues(a), all_dialogues(b)):
        assert torch.equal(da.x_t, db.x_t) and torch.equal(da.y, db.y)
    with pytest.raises(ValueError, match='synthetic-iemocap'):
        load_corpus('iemocap-typo')
    with pytest.raises(ValueError, match='unknown dataset'):
        load_corpus('nosuchkind:/tmp/x.pkl')
