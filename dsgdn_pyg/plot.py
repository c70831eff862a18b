r"""A dialogue's predictions as a picture (the optional ``[plot]`` extra: matplotlib).

One row per utterance, top to bottom in time: position and speaker, the text (shortened), the
predicted emotion and the model's confidence. For AMB-DSGDN, arrows show, for each
utterance, the strongest attention link from a past (left) and from a future (right)
utterance in the last graph layer (signed :math:`\alpha = \alpha^+ - \lambda\alpha^-`; solid =
positive, dashed = negative, width = :math:`|\alpha|`): the context the prediction leaned on.
Each arrow leaves its source row at a dot, runs in a lane of its own (two arrows whose rows
overlap never share one) and carries its source's position at its head, so that where it
comes from stays readable in long dialogues (docs/conversation_20.png).

Drawn on a :class:`matplotlib.figure.Figure` with the Agg canvas (no pyplot, no global
backend change) and written atomically.
"""
import io
import os
import re
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from dsgdn_pyg.io import atomic_write

PathLike = Union[str, os.PathLike]
#: Colours of the usual emotion names; other labels take the tab10 colours in order.
EMOTION_COLORS = {
    'neutral': '#9e9e9e', 'joy': '#f2b701', 'happy': '#f2b701', 'happiness': '#f2b701',
    'excited': '#ff8f00', 'surprise': '#ff7043', 'sadness': '#3f7fbf', 'sad': '#3f7fbf',
    'anger': '#d32f2f', 'angry': '#d32f2f', 'frustrated': '#8d4e3f', 'fear': '#7e57c2',
    'disgust': '#558b2f',
}
POSITIVE, NEGATIVE = '#00897b', '#e65100'
#: Links leave a row this far above its centre line and enter this far below it.
LINK_OFFSET = 0.16


def _matplotlib():
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("plots need matplotlib, which is not installed: "
                          "pip install dsgdn-pyg[plot]") from None
    return Figure, FigureCanvasAgg


def shorten(text: str, width: int = 58) -> str:
    r""":obj:`text` on one line, cut at a word boundary to at most :obj:`width` characters."""
    text = ' '.join(text.split())
    if len(text) <= width:
        return text
    cut = text[:width - 1].rsplit(' ', 1)[0] if ' ' in text[:width - 1] else text[:width - 1]
    return cut + '…'


def strongest_links(links: Sequence[Any], num_utterances: int) -> List[Any]:
    r"""Per target utterance, its strongest link (by :math:`|\alpha|`) from a past and from a
    future utterance; self-loops are left out."""
    best: Dict[Tuple[int, bool], Any] = {}
    for link in links:
        if link.source == link.target:
            continue
        key = (link.target, link.source < link.target)
        if key not in best or abs(link.alpha) > abs(best[key].alpha):
            best[key] = link
    return [best[k] for k in sorted(best) if 0 <= k[0] < num_utterances]


def arc_lanes(links: Sequence[Any]) -> List[int]:
    r"""A lane (0 = next to the rows) per link, such that two links whose spans of rows
    overlap never share a lane: each vertical stretch then belongs to one link and leads
    back to one source row. Short links take the inner lanes (greedy interval colouring in
    order of span length, then position)."""
    spans = [(min(l.source, l.target), max(l.source, l.target)) for l in links]
    lanes: List[int] = [0] * len(links)
    taken: List[List[Tuple[int, int]]] = []
    for k in sorted(range(len(links)), key=lambda k: (spans[k][1] - spans[k][0], spans[k])):
        lo, hi = spans[k]
        lane = 0
        while lane < len(taken) and any(lo <= b and a <= hi for a, b in taken[lane]):
            lane += 1
        if lane == len(taken):
            taken.append([])
        taken[lane].append((lo, hi))
        lanes[k] = lane
    return lanes


def _label_colors(label_names: Sequence[str]) -> Dict[str, str]:
    tab10 = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2',
             '#7f7f7f', '#bcbd22', '#17becf']
    out, k = {}, 0
    for name in label_names:
        if name.lower() in EMOTION_COLORS:
            out[name] = EMOTION_COLORS[name.lower()]
        else:
            out[name] = tab10[k % len(tab10)]
            k += 1
    return out


def draw_prediction(prediction: Any, title: Optional[str] = None):
    r"""The figure of one :class:`~dsgdn_pyg.inference.predict.DialoguePrediction`."""
    Figure, FigureCanvasAgg = _matplotlib()
    from matplotlib.patches import FancyBboxPatch

    n = len(prediction.texts)
    height = 1.0 + 0.42 * n
    fig = Figure(figsize=(13.5, height), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.01, 0.01, 0.98, 0.98))
    ax.set_xlim(0, 1)
    ax.set_ylim(n - 0.5, -2.0)
    ax.axis('off')
    colors = _label_colors(prediction.label_names)
    speakers = list(dict.fromkeys(prediction.speakers))
    speaker_color = {s: c for s, c in zip(speakers, ['#263238', '#6d4c41', '#1a237e',
                                                     '#004d40', '#4a148c', '#880e4f'] * 4)}
    # With attention, links from the past are drawn in a lane on the left, links from the
    # future in a lane on the right; the utterances fill the middle.
    has_links = prediction.attention is not None
    x0, x1 = (0.1, 0.9) if has_links else (0.0, 1.0)
    x_num, x_who, x_text = x0 + 0.012, x0 + 0.018, x0 + 0.105
    x_chip, x_bar = x1 - 0.245, x1 - 0.12
    if title is None:
        title = f'dialogue {prediction.dialogue_id!r}: {n} utterances'
    ax.text(0.0, -1.65, title, fontsize=12.5, fontweight='bold', va='center')
    if has_links:
        ax.text(1.0, -1.65, 'arrows: the strongest attention link into each utterance from a '
                'past (left) and a future (right) utterance, last graph layer;\neach leaves '
                'its source at a dot and is labelled with the source\'s number at its head; '
                'teal solid = positive signed α, orange dashed = negative; width = |α|',
                fontsize=8, color='#616161', ha='right', va='center', linespacing=1.4)
    head = dict(fontsize=9, color='#616161', fontweight='bold', va='center')
    ax.text(x_who, -0.8, 'speaker', **head)
    ax.text(x_text, -0.8, 'utterance', **head)
    ax.text(x_chip, -0.8, 'predicted', **head)
    if any(prediction.labels):
        ax.text(x_chip + 0.06, -0.8, 'given', fontsize=8, color='#9e9e9e',
                va='center')
    ax.text(x_bar, -0.8, 'confidence', **head)
    if has_links:
        ax.text(x0 - 0.01, -0.8, 'from the past', ha='right', **head)
        ax.text(x1 + 0.01, -0.8, 'from the future', ha='left', **head)
    for i in range(n):
        if i % 2 == 0:
            ax.add_patch(FancyBboxPatch((x0, i - 0.45), x1 - x0, 0.9,
                                        boxstyle='round,pad=0,rounding_size=0.01',
                                        fc='#f4f4f4', ec='none', zorder=0))
        speaker = prediction.speakers[i]
        ax.text(x_num, i, f'{i}', fontsize=8, color='#9e9e9e', ha='right', va='center')
        ax.text(x_who, i, shorten(speaker, 14), fontsize=10, fontweight='bold',
                color=speaker_color[speaker], va='center')
        ax.text(x_text, i, f'“{shorten(prediction.texts[i], 62)}”', fontsize=10,
                va='center', color='#212121')
        label = prediction.predicted[i]
        ax.text(x_chip + 0.005, i, label, fontsize=9.5, va='center', color='white',
                fontweight='bold',
                bbox=dict(boxstyle='round,pad=0.3', fc=colors[label], ec='none'))
        if prediction.labels[i]:
            right = prediction.labels[i] == label
            ax.text(x_chip + 0.06, i, '✓' if right else f'✗ {prediction.labels[i]}',
                    fontsize=8, va='center', color='#2e7d32' if right else '#c62828')
        confidence = prediction.confidence[i]
        for width, color in ((0.08, '#e0e0e0'), (0.08 * confidence, colors[label])):
            ax.add_patch(FancyBboxPatch((x_bar, i - 0.15), width, 0.3,
                                        boxstyle='round,pad=0,rounding_size=0.004',
                                        fc=color, ec='none'))
        ax.text(x_bar + 0.085, i, f'{100 * confidence:.0f}%', fontsize=9, va='center',
                color='#424242')
    if has_links:
        _draw_links(ax, strongest_links(prediction.attention, n), x0, x1)
    return fig


def link_routes(links: Sequence[Any], x0: float, x1: float
                ) -> List[Tuple[Any, List[Tuple[float, float]]]]:
    r"""The polyline of every link: links from the past in lanes left of the rows (left edge
    :obj:`x0`), from the future right of them (:obj:`x1`). Each leaves its source row just
    above the row's centre line, runs in its own lane (:func:`arc_lanes`) and enters its
    target row just below it."""
    out = []
    for side in (True, False):  # past (left), future (right)
        chosen = [l for l in links if (l.source < l.target) == side]
        edge, outwards = (x0 - 0.004, -1.0) if side else (x1 + 0.004, 1.0)
        lanes = arc_lanes(chosen)
        width = 0.085 / max(len(set(lanes)) + 1, 4)  # the lanes fill the margin's width
        for link, lane in zip(chosen, lanes):
            x = edge + outwards * width * (lane + 1)
            y_out, y_in = link.source - LINK_OFFSET, link.target + LINK_OFFSET
            out.append((link, [(edge, y_out), (x, y_out), (x, y_in), (edge, y_in)]))
    return out


def _draw_links(ax, links: Sequence[Any], x0: float, x1: float) -> None:
    r"""Each link of :func:`link_routes` as an arrow from a dot at its source to its target,
    labelled with the source's position at its head; colour and dashes = sign, width and
    opacity = :math:`|\alpha|`."""
    from matplotlib import patheffects
    from matplotlib.patches import FancyArrowPatch
    from matplotlib.path import Path

    top = max([abs(l.alpha) for l in links] + [1e-9])
    for link, route in link_routes(links, x0, x1):
        strength = abs(link.alpha) / top
        color = POSITIVE if link.alpha >= 0 else NEGATIVE
        style = dict(color=color, alpha=0.45 + 0.55 * strength, zorder=2 + strength)
        lw = 0.6 + 2.0 * strength
        # A white halo: where two links cross, the one on top is seen to pass over.
        halo = [patheffects.withStroke(linewidth=lw + 2.2, foreground='white')]
        ax.add_patch(FancyArrowPatch(
            path=Path(route), arrowstyle='-|>', mutation_scale=9, shrinkA=0, shrinkB=0,
            lw=lw, linestyle='-' if link.alpha >= 0 else (0, (3, 1.5)), joinstyle='miter',
            path_effects=halo, **style))
        (edge, y_out), (edge_in, y_in) = route[0], route[-1]
        ax.plot([edge], [y_out], marker='o', markersize=3.2, lw=0, **style)
        past = link.source < link.target
        ax.text(edge_in + (-0.003 if past else 0.003), y_in + 0.2, str(link.source),
                fontsize=6.5, ha='right' if past else 'left', va='center', color=color)


def plot_prediction(prediction: Any, path: PathLike, title: Optional[str] = None) -> None:
    r"""Writes the figure of :func:`draw_prediction` to :obj:`path` (format from the
    extension: ``.png``, ``.svg``, ``.pdf``), atomically."""
    fig = draw_prediction(prediction, title)
    path = os.fspath(path)
    fmt = os.path.splitext(path)[1].lstrip('.').lower() or 'png'
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, bbox_inches='tight')
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    atomic_write(path, lambda f: f.write(buffer.getvalue()))


def plot_paths(path: PathLike, predictions: Sequence[Any]) -> List[str]:
    r"""One file per dialogue: :obj:`path` itself for one, else ``<stem>-<dialogue id><ext>``."""
    path = os.fspath(path)
    if len(predictions) == 1:
        return [path]
    stem, ext = os.path.splitext(path)
    return [f"{stem}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', p.dialogue_id)}{ext or '.png'}"
            for p in predictions]


__all__ = ['arc_lanes', 'draw_prediction', 'link_routes', 'plot_paths', 'plot_prediction',
           'shorten', 'strongest_links']
