"""The conversation picture: which links are drawn (brute force), the file written, the
command line's --plot."""
import os
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from dsgdn_pyg.inference.predict import AttentionLink, DialoguePrediction
from dsgdn_pyg.plot import arc_lanes, plot_paths, shorten, strongest_links

pytest.importorskip('matplotlib', reason='the [plot] extra (matplotlib) is not installed')
PNG = b'\x89PNG\r\n\x1a\n'


def random_prediction(seed=0, n=6, attention=True):
    rng = np.random.default_rng(seed)
    names = ['neutral', 'joy', 'anger', 'calm']
    probs = rng.dirichlet(np.ones(len(names)), n)
    links = None
    if attention:
        links = [AttentionLink(int(s), int(t), float(rng.normal()), 'r')
                 for s in range(n) for t in range(n) if abs(s - t) <= 3]
    return DialoguePrediction('d 1', [str(rng.choice(['Ann', 'Bob'])) for _ in range(n)],
                              [f'utterance number {i} ' * (i + 1) for i in range(n)],
                              ['joy', ''] * (n // 2), names, probs, links)


def test_strongest_links_brute_force():
    p = random_prediction(1, n=7)
    chosen = strongest_links(p.attention, 7)
    for target in range(7):
        for past in (True, False):
            candidates = [l for l in p.attention if l.target == target and l.source != target
                          and (l.source < target) == past]
            picked = [l for l in chosen if l.target == target and (l.source < target) == past]
            if not candidates:
                assert not picked
                continue
            assert picked == [max(candidates, key=lambda l: abs(l.alpha))]
    assert all(l.source != l.target for l in chosen)


@pytest.mark.parametrize('seed', range(5))
def test_arc_lanes_never_share_a_lane_between_overlapping_links(seed):
    p = random_prediction(seed, n=20)
    links = strongest_links(p.attention, 20)
    for past in (True, False):
        side = [l for l in links if (l.source < l.target) == past]
        lanes = arc_lanes(side)
        spans = [(min(l.source, l.target), max(l.source, l.target)) for l in side]
        for i in range(len(side)):
            for j in range(i):
                if spans[i][0] <= spans[j][1] and spans[j][0] <= spans[i][1]:
                    assert lanes[i] != lanes[j], (side[i], side[j])


def test_each_route_starts_at_its_source_row_and_ends_at_its_target():
    from dsgdn_pyg.plot import LINK_OFFSET, link_routes

    p = random_prediction(3, n=12)
    links = strongest_links(p.attention, 12)
    routes = link_routes(links, 0.1, 0.9)
    assert sorted(id(l) for l, _ in routes) == sorted(id(l) for l in links)
    for link, route in routes:
        (xa, ya), (xb, yb) = route[0], route[-1]
        assert (ya, yb) == (link.source - LINK_OFFSET, link.target + LINK_OFFSET)
        assert xa == xb == pytest.approx(0.096 if link.source < link.target else 0.904)
        # Left of the rows for the past, right of them for the future.
        assert all((x <= 0.1) if link.source < link.target else (x >= 0.9) for x, _ in route)


def test_shorten():
    assert shorten('  short  text ') == 'short text'
    text = 'word ' * 30
    out = shorten(text, 20)
    assert len(out) <= 20 and out.endswith('…') and text.startswith(out[:-1])


def test_figure_draws_one_arc_per_strongest_link():
    from matplotlib.patches import FancyArrowPatch

    from dsgdn_pyg.plot import draw_prediction

    p = random_prediction(2)
    arcs = [a for a in draw_prediction(p).axes[0].patches if isinstance(a, FancyArrowPatch)]
    assert len(arcs) == len(strongest_links(p.attention, 6))
    p.attention = None
    arcs = [a for a in draw_prediction(p).axes[0].patches if isinstance(a, FancyArrowPatch)]
    assert arcs == []


def test_plot_file_written(tmp_path):
    from dsgdn_pyg.plot import plot_prediction

    path = tmp_path / 'sub' / 'conversation.png'
    plot_prediction(random_prediction(), path)
    assert path.read_bytes()[:8] == PNG
    assert os.listdir(tmp_path / 'sub') == ['conversation.png']  # no temporary file left


def test_plot_paths():
    one, two = random_prediction(), random_prediction(1)
    two.dialogue_id = 'talk/3'
    assert plot_paths('a/c.png', [one]) == ['a/c.png']
    assert plot_paths('a/c.png', [one, two]) == ['a/c-d_1.png', 'a/c-talk_3.png']


def test_without_matplotlib_the_error_says_what_to_install(monkeypatch):
    from dsgdn_pyg.plot import draw_prediction

    monkeypatch.setitem(sys.modules, 'matplotlib.figure', None)
    with pytest.raises(ImportError, match=r'pip install dsgdn-pyg\[plot\]'):
        draw_prediction(random_prediction())


@pytest.mark.usefixtures('one_thread')
def test_cli_plot_one_file_per_dialogue(tiny_checkpoint, tmp_path):
    from dsgdn_pyg.cli import main

    checkpoint, meld = tiny_checkpoint
    (tmp_path / 'talk.csv').write_text('Utterance,Speaker\nhi,A\nhello,B\nbye,A\n')
    runner = CliRunner()
    result = runner.invoke(main, ['predict', '--checkpoint', checkpoint, '--input',
                                  str(tmp_path / 'talk.csv'), '--output',
                                  str(tmp_path / 'p.csv'), '--plot',
                                  str(tmp_path / 'talk.png')])
    assert result.exit_code == 0, result.output
    assert (tmp_path / 'talk.png').read_bytes()[:8] == PNG
    result = runner.invoke(main, ['predict', '--checkpoint', checkpoint, '--input',
                                  os.path.join(meld, 'test_sent_emo.csv'), '--output',
                                  str(tmp_path / 'q.csv'), '--plot', str(tmp_path / 'm.png')])
    assert result.exit_code == 0, result.output
    written = sorted(f for f in os.listdir(tmp_path) if f.startswith('m-'))
    import csv
    with open(tmp_path / 'q.csv') as f:
        ids = sorted({r['dialogue'] for r in csv.DictReader(f)})
    assert written == [f'm-{i}.png' for i in ids]
