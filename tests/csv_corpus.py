"""The csv:DIR corpora (train.csv and test.csv) that the tests of recordings and video clips
train on, beside the media files they generate."""
import csv
import os

import numpy as np


def write_csv(path, rows, columns=None):
    """:obj:`rows` (dicts) as a CSV file with a header (by default the first row's keys)."""
    with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=list(columns or rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return os.fspath(path)


def write_csv_corpus(directory, sizes, columns, dialogue_rows):
    """train.csv and test.csv in :obj:`directory`, of :obj:`sizes` dialogues. The rows of
    dialogue d are :obj:`dialogue_rows(split, d, first, rng)`, which writes its media files:
    :obj:`first` is the number of rows of the split before it, and one generator (seed 0)
    draws the whole corpus, so that a test's corpus is the same on every run."""
    rng = np.random.default_rng(0)
    for split, size in zip(('train', 'test'), sizes):
        rows = []
        for d in range(size):
            rows += dialogue_rows(split, d, len(rows), rng)
        write_csv(os.path.join(directory, f'{split}.csv'), rows, columns)
