"""A tiny AMB-DSGDN checkpoint trained for one epoch on a generated MELD-like CSV corpus, for
the prediction, plot and audio tests."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'datasets'))

from fixtures import write_meld_dir  # noqa: E402


def train_tiny(directory, dataset=None, **data_options):
    """Trains on ``dataset`` (default: a generated ``meld-csv:`` corpus in
    ``directory/meld``); returns the path of ``best.pt``."""
    from dsgdn_pyg.train import TrainConfig, train

    directory = os.fspath(directory)
    if dataset is None:
        write_meld_dir(os.path.join(directory, 'meld'), sizes=(10, 3, 4))
        dataset = f"meld-csv:{os.path.join(directory, 'meld')}"
        data_options.setdefault('svd_dim', 6)
    options = dict(root=os.path.join(directory, 'cache'), log=False, **data_options)
    config = TrainConfig(dataset=dataset, data_options=options, hidden_channels=8, heads=1,
                         epochs=1, batch_size=4, window=3, out=os.path.join(directory, 'run'),
                         quiet=True, device='cpu')
    train(config)
    return os.path.join(directory, 'run', 'best.pt')
