r"""An embedded synthetic multimodal dialogue corpus, so everything runs with no downloads.

The generator mimics the shape of IEMOCAP and MELD (number and length of dialogues, speakers,
label sets, feature widths, splits) and, more importantly, makes *context* matter:

* **Labels** follow a simple conversational process. At each utterance the speaker keeps
  their own previous emotion with probability ``inertia_prob``; otherwise, with probability
  ``contagion_prob``, they adopt the emotion of the most recent utterance of *another*
  speaker; otherwise the emotion is a fresh draw from ``class_prior``. Copying keeps the
  marginal distribution of every label equal to ``class_prior``.
* **Features** come from orthogonal class prototypes in a small latent space: per modality
  :math:`z = s_m \mu^{(m)}_y + \epsilon`, :math:`\epsilon \sim N(0, I)`, followed by a fixed
  random projection to the modality's width plus isotropic noise. The signal strength
  :math:`s_m` differs per modality (text strong, audio medium, visual weak).
* A share ``uninformative_share`` of the utterances carry **no label signal** in any modality
  (:math:`z = \epsilon`), so only their context can recover them. The flag is stored as
  ``data.informative`` (bool ``[L]``) for analysis; models must not use it.
"""
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
import torch
from torch_geometric.data import Data

from dsgdn_pyg.data.corpus import MODALITIES, DialogueCorpus, make_dialogue

IEMOCAP_LABELS = ('happy', 'sad', 'neutral', 'angry', 'excited', 'frustrated')
# Utterance shares of the six IEMOCAP classes (648/1084/1708/1103/1041/1849 of 7433).
IEMOCAP_PRIOR = (0.087, 0.146, 0.230, 0.148, 0.140, 0.249)
MELD_LABELS = ('neutral', 'surprise', 'fear', 'sadness', 'joy', 'disgust', 'anger')
MELD_PRIOR = (0.47, 0.12, 0.03, 0.07, 0.17, 0.03, 0.11)


@dataclass(frozen=True)
class SyntheticConfig:
    r"""Every knob of the synthetic corpus. The defaults are the ``synthetic-iemocap`` preset.

    Args:
        name (str): Corpus name. (default: :obj:`'synthetic-iemocap'`)
        id_prefix (str): Dialogue ids are ``f'{id_prefix}-{index:04d}'``.
            (default: :obj:`'syn-iemocap'`)
        label_names (Tuple[str, ...]): Class names, in label order. (default: IEMOCAP's six)
        class_prior (Tuple[float, ...]): Marginal class distribution (normalised on use).
            (default: IEMOCAP's utterance shares)
        num_dialogues (int): Number of dialogues over all splits. (default: :obj:`151`)
        test_fraction (float): Share of dialogues in the test split; the *last* dialogues
            form it. (default: :obj:`31 / 151`)
        valid_fraction (float): Share of the remaining dialogues held out, at random, as the
            validation split. (default: :obj:`0.1`)
        length_distribution (str): :obj:`'normal'` or :obj:`'gamma'` (right-skewed) draw of
            dialogue lengths, rounded and clipped to ``[min_length, max_length]``.
            (default: :obj:`'normal'`)
        length_mean (float): Mean of the length draw. (default: :obj:`48.0`)
        length_std (float): Standard deviation of the length draw. (default: :obj:`20.0`)
        min_length (int): Shortest dialogue. (default: :obj:`8`)
        max_length (int): Longest drawn dialogue. (default: :obj:`110`)
        forced_max_length (int, optional): If set, the first test dialogue gets exactly this
            length (the real corpora have one long outlier). (default: :obj:`110`)
        speaker_count_prior (Tuple[float, ...]): Entry :math:`k` is the probability that a
            dialogue has :math:`k + 1` participants (capped by its length; a participant may
            stay silent). (default: :obj:`(0.0, 1.0)`, i.e. always two)
        turn_switch_prob (float): Probability that the next utterance is by another
            participant (uniformly chosen). (default: :obj:`0.8`)
        inertia_prob (float): Probability of keeping one's own previous emotion.
            (default: :obj:`0.55`)
        contagion_prob (float): Probability of adopting the emotion of the most recent
            utterance of another speaker, when inertia did not apply. (default: :obj:`0.3`)
        uninformative_share (float): Share of utterances whose features carry no label
            signal. (default: :obj:`0.3`)
        feature_dims (Dict[str, int]): Modality -> feature width; a subset of
            ``('t', 'a', 'v')``. (default: text 1024, audio 1582, visual 342)
        signal_strength (Dict[str, float]): Modality -> scale :math:`s_m` of the class
            prototype against unit latent noise. (default: text 0.7, audio 0.55,
            visual 0.35)
        latent_dim (int): Dimension of the latent space holding the (orthogonal) class
            prototypes; at least the number of classes. (default: :obj:`8`)
        observation_noise (float): Standard deviation of the noise added after projection.
            (default: :obj:`1.0`)
    """
    name: str = 'synthetic-iemocap'
    id_prefix: str = 'syn-iemocap'
    label_names: Tuple[str, ...] = IEMOCAP_LABELS
    class_prior: Tuple[float, ...] = IEMOCAP_PRIOR
    num_dialogues: int = 151
    test_fraction: float = 31 / 151
    valid_fraction: float = 0.1
    length_distribution: str = 'normal'
    length_mean: float = 48.0
    length_std: float = 20.0
    min_length: int = 8
    max_length: int = 110
    forced_max_length: Optional[int] = 110
    speaker_count_prior: Tuple[float, ...] = (0.0, 1.0)
    turn_switch_prob: float = 0.8
    inertia_prob: float = 0.55
    contagion_prob: float = 0.3
    uninformative_share: float = 0.3
    feature_dims: Dict[str, int] = field(
        default_factory=lambda: {'t': 1024, 'a': 1582, 'v': 342})
    signal_strength: Dict[str, float] = field(
        default_factory=lambda: {'t': 0.7, 'a': 0.55, 'v': 0.35})
    latent_dim: int = 8
    observation_noise: float = 1.0

    def __post_init__(self):
        _check_config(self)


def _check_config(cfg: SyntheticConfig):
    def fail(arg: str, msg: str):
        raise ValueError(f"SyntheticConfig {cfg.name!r}: '{arg}' {msg}")

    if len(cfg.class_prior) != len(cfg.label_names) or len(cfg.label_names) < 2:
        fail('class_prior', f"has {len(cfg.class_prior)} entries but 'label_names' has "
             f"{len(cfg.label_names)} (need the same number, at least 2)")
    if min(cfg.class_prior) < 0 or sum(cfg.class_prior) <= 0:
        fail('class_prior', f"must be non-negative with a positive sum, got {cfg.class_prior}")
    if cfg.num_dialogues < 3:
        fail('num_dialogues', f"must be >= 3 (one per split), got {cfg.num_dialogues}")
    for arg in ('test_fraction', 'valid_fraction'):
        if not 0.0 < getattr(cfg, arg) < 1.0:
            fail(arg, f"must be in (0, 1), got {getattr(cfg, arg)}")
    for arg in ('turn_switch_prob', 'inertia_prob', 'contagion_prob', 'uninformative_share'):
        if not 0.0 <= getattr(cfg, arg) <= 1.0:
            fail(arg, f"must be in [0, 1], got {getattr(cfg, arg)}")
    if cfg.length_distribution not in ('normal', 'gamma'):
        fail('length_distribution', f"must be 'normal' or 'gamma', got "
             f"{cfg.length_distribution!r}")
    if not 1 <= cfg.min_length <= cfg.max_length:
        fail('max_length', f"must be >= min_length >= 1, got min_length={cfg.min_length}, "
             f"max_length={cfg.max_length}")
    if cfg.length_mean <= 0 or cfg.length_std <= 0:
        fail('length_std', f"and 'length_mean' must be positive, got {cfg.length_std}, "
             f"{cfg.length_mean}")
    if cfg.forced_max_length is not None and cfg.forced_max_length < 1:
        fail('forced_max_length', f"must be None or >= 1, got {cfg.forced_max_length}")
    prior = cfg.speaker_count_prior
    if len(prior) == 0 or min(prior) < 0 or sum(prior) <= 0:
        fail('speaker_count_prior', f"must be non-empty, non-negative with a positive sum, "
             f"got {prior}")
    if not cfg.feature_dims or any(m not in MODALITIES for m in cfg.feature_dims):
        fail('feature_dims', f"must map a non-empty subset of {MODALITIES} to widths, got "
             f"{cfg.feature_dims}")
    if any(d < 1 for d in cfg.feature_dims.values()):
        fail('feature_dims', f"widths must be >= 1, got {cfg.feature_dims}")
    missing = [m for m in cfg.feature_dims if m not in cfg.signal_strength]
    if missing:
        fail('signal_strength', f"has no entry for modalities {missing} (got "
             f"{cfg.signal_strength})")
    if cfg.latent_dim < len(cfg.label_names):
        fail('latent_dim', f"must be >= the number of classes ({len(cfg.label_names)}) to "
             f"hold orthogonal class prototypes, got {cfg.latent_dim}")
    if cfg.observation_noise < 0:
        fail('observation_noise', f"must be >= 0, got {cfg.observation_noise}")


SYNTHETIC_PRESETS: Dict[str, SyntheticConfig] = {
    'synthetic-iemocap': SyntheticConfig(),
    'synthetic-meld': SyntheticConfig(
        name='synthetic-meld',
        id_prefix='syn-meld',
        label_names=MELD_LABELS,
        class_prior=MELD_PRIOR,
        num_dialogues=1432,
        # MELD's official splits: 1038 train / 114 valid / 280 test dialogues.
        test_fraction=280 / 1432,
        valid_fraction=114 / 1152,
        length_distribution='gamma',
        length_mean=9.6,
        length_std=5.5,
        min_length=1,
        max_length=24,
        forced_max_length=33,
        speaker_count_prior=(0.04, 0.36, 0.28, 0.16, 0.09, 0.04, 0.02, 0.007, 0.003),
        turn_switch_prob=0.7,
        inertia_prob=0.45,
        contagion_prob=0.25,
        feature_dims={'t': 1024, 'a': 300, 'v': 342},
    ),
}


def _split_sizes(cfg: SyntheticConfig) -> Tuple[int, int, int]:
    n = cfg.num_dialogues
    num_test = min(max(1, round(n * cfg.test_fraction)), n - 2)
    num_valid = min(max(1, round((n - num_test) * cfg.valid_fraction)), n - num_test - 1)
    return n - num_test - num_valid, num_valid, num_test


def _draw_lengths(cfg: SyntheticConfig, num_test: int, rng: np.random.Generator) -> np.ndarray:
    n = cfg.num_dialogues
    if cfg.length_distribution == 'normal':
        raw = rng.normal(cfg.length_mean, cfg.length_std, size=n)
    else:
        shape = (cfg.length_mean / cfg.length_std)**2
        raw = rng.gamma(shape, cfg.length_mean / shape, size=n)
    lengths = np.clip(np.rint(raw), cfg.min_length, cfg.max_length).astype(np.int64)
    if cfg.forced_max_length is not None:
        lengths[n - num_test] = cfg.forced_max_length
    return lengths


def _draw_speakers(cfg: SyntheticConfig, lengths: np.ndarray,
                   rng: np.random.Generator) -> np.ndarray:
    """Padded ``[N, L_max]`` speaker ids: a Markov chain of turns per dialogue."""
    n, max_len = len(lengths), int(lengths.max())
    count_prior = np.asarray(cfg.speaker_count_prior, dtype=np.float64)
    counts = rng.choice(len(count_prior), size=n, p=count_prior / count_prior.sum()) + 1
    counts = np.minimum(counts, lengths)
    speaker = np.zeros((n, max_len), dtype=np.int64)
    for t in range(1, max_len):
        switch = (rng.random(n) < cfg.turn_switch_prob) & (counts > 1)
        # Adding 1..count-1 modulo count picks one of the *other* participants uniformly.
        step = rng.integers(1, np.maximum(counts, 2))
        speaker[:, t] = np.where(switch, (speaker[:, t - 1] + step) % counts, speaker[:, t - 1])
    return speaker


def _draw_labels(cfg: SyntheticConfig, speaker: np.ndarray,
                 rng: np.random.Generator) -> np.ndarray:
    """Padded ``[N, L_max]`` labels from the inertia / contagion / prior process."""
    n, max_len = speaker.shape
    num_slots = int(speaker.max()) + 1
    prior = np.asarray(cfg.class_prior, dtype=np.float64)
    prior = prior / prior.sum()
    rows = np.arange(n)
    last_label = np.full((n, num_slots), -1, dtype=np.int64)  # per speaker, -1 = not yet
    last_time = np.full((n, num_slots), -1, dtype=np.int64)
    labels = np.zeros((n, max_len), dtype=np.int64)
    for t in range(max_len):
        s = speaker[:, t]
        own = last_label[rows, s]
        others_time = last_time.copy()
        others_time[rows, s] = -1
        latest = others_time.argmax(axis=1)  # most recent other speaker
        other = np.where(others_time[rows, latest] >= 0, last_label[rows, latest], -1)
        keep = (own >= 0) & (rng.random(n) < cfg.inertia_prob)
        adopt = ~keep & (other >= 0) & (rng.random(n) < cfg.contagion_prob)
        fresh = rng.choice(len(prior), size=n, p=prior)
        labels[:, t] = np.where(keep, own, np.where(adopt, other, fresh))
        last_label[rows, s] = labels[:, t]
        last_time[rows, s] = t
    return labels


def _draw_features(cfg: SyntheticConfig, modality: str, y: np.ndarray, informative: np.ndarray,
                   seed_seq: np.random.SeedSequence) -> np.ndarray:
    """``[U, D_m]`` float32 features of one modality for all ``U`` utterances."""
    # The prototypes and projection (the "world") and the noise use separate streams, so
    # that the world of a seed does not depend on the corpus size.
    world_rng, noise_rng = (np.random.default_rng(s) for s in seed_seq.spawn(2))
    k, dim = cfg.latent_dim, cfg.feature_dims[modality]
    # Orthogonal prototypes of norm sqrt(k): every pair of classes is equally far apart, so
    # the signal strength alone (not a lucky draw of the geometry) sets a modality's quality.
    basis, _ = np.linalg.qr(world_rng.standard_normal((k, len(cfg.label_names))))
    prototypes = (np.sqrt(k) * basis.T).astype(np.float32)
    # Cast after scaling: NumPy 2 would promote a float32 array divided by np.sqrt(k).
    projection = (world_rng.standard_normal((k, dim)) / np.sqrt(k)).astype(np.float32)
    z = noise_rng.standard_normal((len(y), k), dtype=np.float32)
    signal = np.float32(cfg.signal_strength[modality]) * prototypes[y]
    z += np.where(informative[:, None], signal, np.float32(0))
    x = z @ projection
    x += np.float32(cfg.observation_noise) * noise_rng.standard_normal(x.shape, dtype=np.float32)
    return x


def make_synthetic_corpus(
    preset: Union[str, SyntheticConfig] = 'synthetic-iemocap',
    seed: int = 0,
    **overrides: Any,
) -> DialogueCorpus:
    r"""Generates a synthetic multimodal dialogue corpus.

    The same :obj:`seed` and configuration give bit-identical tensors. Each dialogue
    :class:`~torch_geometric.data.Data` has the fields of
    :func:`dsgdn_pyg.data.corpus.make_dialogue` plus ``informative`` (bool ``[L]``, whether
    the utterance's features carry label signal).

    Args:
        preset (str or SyntheticConfig): A name in :obj:`SYNTHETIC_PRESETS` or a full
            configuration. (default: :obj:`'synthetic-iemocap'`)
        seed (int): Seed of everything random. (default: :obj:`0`)
        **overrides: Fields of :class:`SyntheticConfig` to replace, e.g.
            ``num_dialogues=20, feature_dims={'t': 16, 'a': 8, 'v': 8}``.
    """
    if isinstance(preset, SyntheticConfig):
        cfg = preset
    elif preset in SYNTHETIC_PRESETS:
        cfg = SYNTHETIC_PRESETS[preset]
    else:
        raise ValueError(f"unknown synthetic preset {preset!r}; expected one of "
                         f"{sorted(SYNTHETIC_PRESETS)}")
    field_names = {f.name for f in dataclasses.fields(SyntheticConfig)}
    unknown = sorted(set(overrides) - field_names)
    if unknown:
        raise ValueError(f"unknown override(s) {unknown} for preset {cfg.name!r}; valid fields "
                         f"are {sorted(field_names)}")
    cfg = dataclasses.replace(cfg, **overrides)

    structure_seq, *modality_seqs = np.random.SeedSequence(seed).spawn(1 + len(MODALITIES))
    rng = np.random.default_rng(structure_seq)
    num_train, num_valid, num_test = _split_sizes(cfg)
    lengths = _draw_lengths(cfg, num_test, rng)
    speaker = _draw_speakers(cfg, lengths, rng)
    labels = _draw_labels(cfg, speaker, rng)
    valid_index = set(rng.choice(num_train + num_valid, size=num_valid, replace=False).tolist())

    in_dialogue = np.arange(speaker.shape[1]) < lengths[:, None]
    y = labels[in_dialogue]  # row-major: dialogue by dialogue, in utterance order
    informative = rng.random(len(y)) >= cfg.uninformative_share
    features = {
        m: _draw_features(cfg, m, y, informative, modality_seqs[MODALITIES.index(m)])
        for m in MODALITIES if m in cfg.feature_dims
    }

    train, valid, test = [], [], []
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    for i, (start, end) in enumerate(zip(offsets[:-1], offsets[1:])):
        data = make_dialogue(
            f'{cfg.id_prefix}-{i:04d}',
            speaker=_by_first_turn(speaker[i, :end - start]),
            y=y[start:end],
            features={m: torch.from_numpy(x[start:end].copy()) for m, x in features.items()},
        )
        data.informative = torch.from_numpy(informative[start:end].copy())
        if i >= num_train + num_valid:
            test.append(data)
        elif i in valid_index:
            valid.append(data)
        else:
            train.append(data)

    dialogues: List[Data] = train + valid + test
    return DialogueCorpus(
        name=cfg.name,
        train=train,
        valid=valid,
        test=test,
        label_names=list(cfg.label_names),
        feature_dims=dict(cfg.feature_dims),
        num_speakers=max(int(d.speaker.max()) + 1 for d in dialogues),
        meta={'preset': cfg.name, 'seed': seed, 'config': dataclasses.asdict(cfg)},
    )


def _by_first_turn(speaker: np.ndarray) -> np.ndarray:
    """Renumbers speakers 0, 1, ... in order of their first turn (silent ones leave no gap)."""
    ids, first = np.unique(speaker, return_index=True)
    rank = np.empty(ids.max() + 1, dtype=np.int64)
    rank[ids[np.argsort(first)]] = np.arange(len(ids))
    return rank[speaker]
