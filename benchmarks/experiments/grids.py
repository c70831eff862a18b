r"""The experiments of the AMB-DSGDN paper (section 6) as pure descriptions.

Each experiment is a small function from the base run (a :class:`~dsgdn_pyg.train.TrainConfig`
and the modalities it uses) to a list of :class:`Variant`: a directory-safe name, the label
of the paper's table row, the :class:`~dsgdn_pyg.train.TrainConfig` fields it overrides and,
for the figures, the x value it is plotted at. Nothing here trains or reads files; the runner
(:mod:`benchmarks.experiments.runner`) does.

Each experiment trains ``variants x seeds`` runs (its grid says how many; what they cost on
``synthetic-iemocap``: README, section "Experiments"). ``--quick`` keeps the first seed only, trains at most
:obj:`QUICK_EPOCHS` epochs (modality dropout warm-up capped at ``epochs - 1``) and uses the
reduced grid each experiment names.
"""
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence

from dsgdn_pyg.train import TrainConfig

#: Epochs of a ``--quick`` run (unless the epochs are given explicitly).
QUICK_EPOCHS = 4
#: Noise levels of the ``noise`` experiment, in multiples of each feature's standard deviation.
NOISE_LEVELS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
QUICK_NOISE_LEVELS = (0.0, 0.3, 0.7)
#: Dialogue lengths (utterances, inclusive) of the paper's long-dialogue subset (section 6.3).
LONG_DIALOGUES = (20, 50)
#: The extreme-imbalance fusion weights of section 6.7.
IMBALANCE_WEIGHTS = {'t': 0.8, 'a': 0.1, 'v': 0.1}
WINDOWS = (1, 2, 4, 6, 10, 14, 20, 30)
QUICK_WINDOWS = (2, 6, 20)
HEADS = (1, 2, 4, 8)
QUICK_HEADS = (1, 2, 4)
WARMUP_FRACTIONS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
QUICK_WARMUP_FRACTIONS = (0.0, 0.5, 1.0)
#: Table 7 of the paper: q_base x p_exe per dataset family.
DROPOUT_GRID_IEMOCAP = ((0.1, 0.3, 0.5), (0.3, 0.5, 0.7))
DROPOUT_GRID_MELD = ((0.1, 0.2, 0.3), (0.1, 0.2, 0.3))


class ExperimentError(ValueError):
    r"""An experiment cannot run with the given settings or data."""


class Variant(NamedTuple):
    r"""One configuration of an experiment.

    Args:
        name (str): Directory-safe name; runs live in ``OUT/<name>/seed<k>``.
        label (str): Row label of the table (the paper's wording where it has one).
        overrides (Dict[str, Any]): :class:`~dsgdn_pyg.train.TrainConfig` fields to replace.
        x (float, optional): Position on the x axis of the experiment's figure.
    """
    name: str
    label: str
    overrides: Dict[str, Any]
    x: Optional[float] = None


#: The base model, shared by ``ablation``, ``noise``, ``long`` and ``imbalance`` (same name,
#: same configuration, so one training run serves all of them in the same output directory).
FULL = Variant('full', 'Full model', {})

Grid = Callable[[TrainConfig, Sequence[str], bool], List[Variant]]


@dataclass(frozen=True)
class Experiment:
    r"""An experiment of the paper.

    Args:
        name (str): Command-line name.
        title (str): One-line description.
        paper (str): The table or figure it reproduces.
        kind (str): ``'train'`` (a table of trained variants), ``'noise'``, ``'long'`` (post-hoc
            evaluations of trained variants) or ``'overhead'`` (measurements of initialised
            models, no training).
        grid (Callable): ``grid(base_config, modalities, quick) -> List[Variant]``.
        cost (str): The size of the grid (runs and evaluations per seed), for the
            documentation.
        plot (str, optional): Figure kind: ``'line'``, ``'bars'``, ``'confusion'``.
    """
    name: str
    title: str
    paper: str
    kind: str
    grid: Grid = field(repr=False)
    cost: str
    plot: Optional[str] = None


def _is_meld(config: TrainConfig) -> bool:
    return 'meld' in config.dataset.lower()


def modalities_grid(base: TrainConfig, modalities: Sequence[str],
                    quick: bool = False) -> List[Variant]:
    r"""Table 4: T, A, V, A+T, V+T, A+V+T (the same six in the quick grid)."""
    combos = [('T', ['t']), ('A', ['a']), ('V', ['v']), ('A+T', ['t', 'a']),
              ('V+T', ['t', 'v']), ('A+V+T', ['t', 'a', 'v'])]
    missing = sorted({m for _, combo in combos for m in combo} - set(modalities))
    if missing:
        raise ExperimentError(f"experiment 'modalities' needs the modalities t, a and v, but "
                              f"the run has only {','.join(modalities)} (missing "
                              f"{','.join(missing)})")
    return [Variant(label.replace('+', '').lower(), label, {'modalities': combo})
            for label, combo in combos]


def ablation_grid(base: TrainConfig, modalities: Sequence[str],
                  quick: bool = False) -> List[Variant]:
    r"""Tables 5 and 6: full model, without DiffRGCN (PyG's GATConv on the same subgraphs),
    without relational subgraphs and DiffRGCN (no graph blocks), each with and without
    adaptive modality dropout (MD): six variants.

    With a single modality there is nothing to balance (every drop probability is 0), so
    the three variants without MD would only differ in random number consumption; the grid
    is then the three variants of table 5.
    """
    with_md = [FULL,
               Variant('gat', 'w/o DiffRGCN (GAT)', {'conv': 'gat'}),
               Variant('no-graph', 'w/o Rel Subgraph + DiffRGCN', {'graph': False})]
    if len(modalities) < 2:
        return with_md
    without_md = [Variant('no-md', 'w/o MD', {'modality_dropout': False}),
                  Variant('gat-no-md', 'w/o MD + DiffRGCN (GAT)',
                          {'conv': 'gat', 'modality_dropout': False}),
                  Variant('no-graph-no-md', 'w/o MD + Rel Subgraph + DiffRGCN',
                          {'graph': False, 'modality_dropout': False})]
    return with_md + without_md


def window_grid(base: TrainConfig, modalities: Sequence[str],
                quick: bool = False) -> List[Variant]:
    r"""Figure 3: graph window :math:`w` in :obj:`WINDOWS` (quick: :obj:`QUICK_WINDOWS`)."""
    return [Variant(f'window{w}', f'w = {w}', {'window': w}, x=w)
            for w in (QUICK_WINDOWS if quick else WINDOWS)]


def heads_grid(base: TrainConfig, modalities: Sequence[str],
               quick: bool = False) -> List[Variant]:
    r"""Figure 4: differential attention heads in :obj:`HEADS` (quick: :obj:`QUICK_HEADS`)."""
    return [Variant(f'heads{h}', f'{h} heads', {'heads': h}, x=h)
            for h in (QUICK_HEADS if quick else HEADS)]


def warmup_epochs_grid(epochs: int, fractions: Sequence[float]) -> List[int]:
    r"""Warm-up lengths at :obj:`fractions` of :obj:`epochs` (rounded, without repeats);
    a warm-up of :obj:`epochs` never switches modality dropout on."""
    values: List[int] = []
    for fraction in fractions:
        value = int(round(fraction * epochs))
        if value not in values:
            values.append(value)
    return values


def warmup_grid(base: TrainConfig, modalities: Sequence[str],
                quick: bool = False) -> List[Variant]:
    r"""Figure 5: modality dropout warm-up at 0, 20, ..., 100 % of the run's epochs (quick:
    0, 50, 100 %); 100 % = modality dropout never active."""
    fractions = QUICK_WARMUP_FRACTIONS if quick else WARMUP_FRACTIONS
    return [Variant(f'warmup{e}', f'warm-up {e} of {base.epochs} epochs',
                    {'warmup_epochs': e, 'modality_dropout': True}, x=e)
            for e in warmup_epochs_grid(base.epochs, fractions)]


def dropout_grid(base: TrainConfig, modalities: Sequence[str],
                 quick: bool = False) -> List[Variant]:
    r"""Table 7: :math:`q_{base} \times p_{exe}`, the paper's 3 x 3 grid of the dataset
    family (MELD: 0.1/0.2/0.3 x 0.1/0.2/0.3; otherwise IEMOCAP's 0.1/0.3/0.5 x 0.3/0.5/0.7).
    Quick: the four corners."""
    q_values, p_values = DROPOUT_GRID_MELD if _is_meld(base) else DROPOUT_GRID_IEMOCAP
    if quick:
        q_values, p_values = (q_values[0], q_values[-1]), (p_values[0], p_values[-1])
    return [Variant(f'q{q}-p{p}', f'q_base {q}, p_exe {p}',
                    {'q_base': q, 'p_exe': p, 'modality_dropout': True})
            for q in q_values for p in p_values]


def full_only_grid(base: TrainConfig, modalities: Sequence[str],
                   quick: bool = False) -> List[Variant]:
    r"""The full model only (``noise`` and ``long`` evaluate it after training)."""
    return [FULL]


def imbalance_grid(base: TrainConfig, modalities: Sequence[str],
                   quick: bool = False) -> List[Variant]:
    r"""Section 6.7 / figure 8: fixed fusion weights t 0.8, v 0.1, a 0.1 with modality
    dropout on and off, and the full model (plain sum) for reference."""
    if sorted(modalities) != sorted(IMBALANCE_WEIGHTS):
        raise ExperimentError(f"experiment 'imbalance' needs the modalities t, a and v, but "
                              f"the run uses {','.join(modalities)}")
    weights = dict(IMBALANCE_WEIGHTS)
    return [FULL,
            Variant('fixed-md', 'fixed 0.8/0.1/0.1, with MD',
                    {'fusion_weights': weights, 'modality_dropout': True}),
            Variant('fixed-no-md', 'fixed 0.8/0.1/0.1, w/o MD',
                    {'fusion_weights': weights, 'modality_dropout': False})]


def overhead_grid(base: TrainConfig, modalities: Sequence[str],
                  quick: bool = False) -> List[Variant]:
    r"""Tables 8-9: DiffGAT against PyG's GATConv, modality dropout on against off."""
    return [Variant('full', 'DiffGAT, with MD (full model)', {}),
            Variant('gat', 'GAT, with MD', {'conv': 'gat'}),
            Variant('no-md', 'DiffGAT, w/o MD', {'modality_dropout': False})]


EXPERIMENTS: Dict[str, Experiment] = {e.name: e for e in [
    Experiment('modalities', 'Modality combinations T, A, V, A+T, V+T, A+V+T', 'table 4',
               'train', modalities_grid,
               '6 variants x seeds; unimodal runs take ~1/3 of a full run'),
    Experiment('ablation', 'Graph and modality dropout ablation', 'tables 5-6', 'train',
               ablation_grid,
               '6 variants x seeds (3 with one modality); GAT runs are slower, no-graph runs '
               'faster than the full model'),
    Experiment('window', 'Graph window size', 'figure 3', 'train', window_grid,
               f'{len(WINDOWS)} windows x seeds (quick {len(QUICK_WINDOWS)})',
               plot='line'),
    Experiment('heads', 'Differential attention heads', 'figure 4', 'train', heads_grid,
               f'{len(HEADS)} head counts x seeds (quick {len(QUICK_HEADS)}); 8 heads cost '
               f'~4x the graph blocks of 2', plot='line'),
    Experiment('warmup', 'Modality dropout warm-up', 'figure 5', 'train', warmup_grid,
               f'{len(WARMUP_FRACTIONS)} warm-up lengths x seeds (quick '
               f'{len(QUICK_WARMUP_FRACTIONS)})', plot='line'),
    Experiment('dropout-grid', 'Modality dropout q_base x p_exe', 'table 7', 'train',
               dropout_grid, '9 variants x seeds (quick 4)'),
    Experiment('noise', 'Gaussian test-time noise on every modality', 'figure 7', 'noise',
               full_only_grid,
               f'1 training run per seed (shared with ablation "full" in the same --out) + '
               f'{len(NOISE_LEVELS)} test evaluations (quick {len(QUICK_NOISE_LEVELS)})',
               plot='line'),
    Experiment('long', f'Dialogues of {LONG_DIALOGUES[0]}-{LONG_DIALOGUES[1]} utterances '
               f'against all', 'figure 6', 'long', full_only_grid,
               '1 training run per seed (shared with ablation "full") + 2 test evaluations',
               plot='bars'),
    Experiment('imbalance', 'Extreme imbalance: fixed fusion weights t 0.8 / v 0.1 / a 0.1',
               'figure 8', 'train', imbalance_grid,
               '3 variants x seeds (full model shared with ablation)',
               plot='confusion'),
    Experiment('overhead', 'Parameters, FLOPs, inference time, training throughput',
               'tables 8-9', 'overhead', overhead_grid,
               '3 variants x seeds, no training: model build, FLOP count over the test split, '
               '10 timed training steps (quick 3) and one timed inference pass'),
]}

#: The experiment names, in the paper's order.
EXPERIMENT_NAMES = tuple(EXPERIMENTS)
