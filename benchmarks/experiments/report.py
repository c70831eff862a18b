r"""Aggregation over seeds, the Markdown table and the optional figure of an experiment."""
import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from benchmarks.common import aggregate, format_mean_std, markdown_table  # noqa: F401
from dsgdn_pyg.io import atomic_write
from dsgdn_pyg.metrics import format_confusion


#: (key in a row's summary, column title, digits) per experiment kind.
COLUMNS: Dict[str, List[Tuple[str, str, int]]] = {
    'train': [('test_wa_f1', 'test weighted F1', 2), ('test_wa_acc', 'test accuracy', 2),
              ('valid_wa_f1', 'valid weighted F1', 2), ('best_epoch', 'best epoch', 1)],
    'noise': [('wa_f1', 'test weighted F1', 2), ('wa_acc', 'test accuracy', 2)],
    'long': [('wa_f1', 'test weighted F1', 2), ('wa_acc', 'test accuracy', 2),
             ('num_dialogues', 'dialogues', 0), ('num_utterances', 'labelled utterances', 0)],
    'overhead': [('num_parameters', 'parameters', 0),
                 ('mflops_per_utterance', 'MFLOPs / utterance', 2),
                 ('inference_ms_per_utterance', 'inference ms / utterance', 3),
                 ('train_utterances_per_s', 'training utterances / s', 1)],
}


def result_table(kind: str, rows: Sequence[Dict[str, Any]]) -> str:
    r"""The Markdown table of an experiment's rows (each with ``label`` and ``summary``)."""
    columns = COLUMNS[kind]
    first = {'noise': 'noise level (x std)', 'long': 'test dialogues'}.get(kind, 'variant')
    body = [[row['label']] + [format_mean_std(row['summary'][key], digits)
                              for key, _, digits in columns] for row in rows]
    header = [first] + [title for _, title, _ in columns]
    return markdown_table(body, [(h, lambda row, i=i: str(row[i])) for i, h in enumerate(header)])


def confusion_section(rows: Sequence[Dict[str, Any]], label_names: Sequence[str]) -> str:
    r"""The test confusion matrices of each row, summed over seeds, as text blocks."""
    parts = []
    for row in rows:
        if row.get('confusion') is None:
            continue
        parts.append(f"{row['label']} (test, summed over {row['summary']['test_wa_f1']['n']} "
                     f"seed(s); rows = true, columns = predicted):\n\n```\n"
                     f"{format_confusion(row['confusion'], label_names)}\n```")
    return '\n\n'.join(parts)


def write_figure(path: str, kind: str, plot: str, title: str, rows: Sequence[Dict[str, Any]],
                 label_names: Sequence[str] = (), x_label: str = '') -> Optional[str]:
    r"""Writes the experiment's figure as a PNG if matplotlib is installed (the ``plot``
    extra); returns the path, or :obj:`None` when matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    f1_key, acc_key = ('test_wa_f1', 'test_wa_acc') if kind == 'train' else ('wa_f1', 'wa_acc')
    if plot == 'confusion':
        shown = [r for r in rows if r.get('confusion') is not None]
        fig, axes = plt.subplots(1, len(shown), figsize=(4.5 * len(shown), 4.2), squeeze=False)
        for ax, row in zip(axes[0], shown):
            matrix = np.asarray(row['confusion'])
            ax.imshow(matrix, cmap='Blues')
            for (i, j), v in np.ndenumerate(matrix):
                ax.text(j, i, str(v), ha='center', va='center', fontsize=7)
            ax.set_xticks(range(len(label_names)), label_names, rotation=45, fontsize=7)
            ax.set_yticks(range(len(label_names)), label_names, fontsize=7)
            ax.set_xlabel('predicted')
            ax.set_ylabel('true')
            ax.set_title(row['label'], fontsize=9)
    else:
        fig, ax = plt.subplots(figsize=(6, 4))
        labels = [r['label'] for r in rows]
        positions = [r['x'] if plot == 'line' else i for i, r in enumerate(rows)]
        for key, name in ((f1_key, 'weighted F1'), (acc_key, 'accuracy')):
            means = [r['summary'][key]['mean'] for r in rows]
            stds = [r['summary'][key]['std'] or 0.0 for r in rows]
            means = [math.nan if m is None else m for m in means]
            if plot == 'line':
                ax.errorbar(positions, means, yerr=stds, marker='o', capsize=3, label=name)
            else:
                offset = -0.2 if name == 'weighted F1' else 0.2
                ax.bar([p + offset for p in positions], means, width=0.4, yerr=stds,
                       capsize=3, label=name)
        if plot != 'line':
            ax.set_xticks(positions, labels)
        ax.set_xlabel(x_label)
        ax.set_ylabel('%')
        ax.legend()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format='png', dpi=120))
    plt.close(fig)
    return path
