r"""Predictions as text: an aligned table for the terminal, CSV or JSON lines."""
import csv
import io
import json
import shutil
from typing import Any, List, Mapping, Optional, Sequence

FORMATS = ('table', 'csv', 'jsonl')


def rows_text(rows: Sequence[Mapping[str, Any]], fmt: str = 'csv') -> str:
    r"""Prediction rows as CSV (header = the union of the rows' keys, in order of
    appearance) or as JSON lines (:obj:`fmt` ``'jsonl'``)."""
    if fmt == 'jsonl':
        return ''.join(json.dumps(dict(row), ensure_ascii=False) + '\n' for row in rows)
    if fmt != 'csv':
        raise ValueError(f"'fmt' must be 'csv' or 'jsonl', got {fmt!r}")
    fieldnames = list(dict.fromkeys(k for row in rows for k in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fieldnames, lineterminator='\n')
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def aligned(head: Sequence[str], cells: Sequence[Sequence[str]], right=(),
            widths: Optional[Sequence[int]] = None) -> str:
    r"""Rows of cells in columns two spaces apart (columns in :obj:`right` right-aligned),
    under the header :obj:`head`; :obj:`widths` defaults to the widest cell of each."""
    if widths is None:
        widths = [max([len(head[c])] + [len(row[c]) for row in cells])
                  for c in range(len(head))]
    return ''.join('  '.join(cell.rjust(widths[c]) if c in right else cell.ljust(widths[c])
                             for c, cell in enumerate(row)).rstrip() + '\n'
                   for row in [list(head)] + [list(r) for r in cells])


def prediction_table(predictions: Sequence[Any], width: Optional[int] = None) -> str:
    r"""The predictions of :func:`~dsgdn_pyg.inference.predict.predict_dialogues` as an aligned table:
    position, speaker, text (cut to fit :obj:`width`), emotion, confidence, and the given
    label where the input had one; several dialogues each under a heading.

    Args:
        predictions (List[DialoguePrediction]): The dialogues.
        width (int, optional): Characters per line; :obj:`None` = the terminal's (80 when
            it cannot be told). (default: :obj:`None`)
    """
    from dsgdn_pyg.plot import shorten  # torch- and matplotlib-free

    width = width or shutil.get_terminal_size((80, 24)).columns
    labelled = any(l for p in predictions for l in p.labels)
    lines: List[str] = []
    for p in predictions:
        if len(predictions) > 1:
            lines += [''] if lines else []
            lines.append(f"dialogue {p.dialogue_id} ({len(p.texts)} utterances)")
        n = len(p.texts)
        cells = [[str(i), p.speakers[i], '', p.predicted[i], f"{100 * p.confidence[i]:.0f}%"]
                 + ([p.labels[i]] if labelled else []) for i in range(n)]
        head = ['#', 'speaker', 'text', 'emotion', 'conf.'] + (['given'] if labelled else [])
        widths = [max([len(head[c])] + [len(row[c]) for row in cells])
                  for c in range(len(head))]
        widths[1] = min(widths[1], 16)
        # The text takes what the other columns leave of the line (at least 12 characters).
        rest = sum(w for c, w in enumerate(widths) if c != 2) + 2 * (len(head) - 1)
        widths[2] = max(12, min(width - rest, max([4] + [len(' '.join(t.split()))
                                                          for t in p.texts])))
        for i in range(n):
            cells[i][1] = shorten(cells[i][1], widths[1])
            cells[i][2] = shorten(p.texts[i], widths[2])
        lines.append(aligned(head, cells, right={0, 4}, widths=widths).rstrip('\n'))
    return '\n'.join(lines) + '\n'


__all__ = ['FORMATS', 'aligned', 'prediction_table', 'rows_text']
