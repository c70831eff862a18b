import pytest
import torch

from dsgdn_pyg.benchmark import benchmark
from dsgdn_pyg.datasets import load_corpus
from dsgdn_pyg.models import AMBDSGDN
from dsgdn_pyg.train import TrainConfig

DIMS = {'t': 12, 'a': 10, 'v': 6}


def test_counts_and_rates_of_a_tiny_run():
    config = TrainConfig(num_dialogues=12, feature_dims=DIMS, hidden_channels=16, window=3,
                         batch_size=4, device='cpu', num_threads=1, quiet=True)
    result = benchmark(config, steps=3, warmup_steps=1)
    corpus = load_corpus('synthetic-iemocap', seed=0, num_dialogues=12, feature_dims=DIMS)
    # Inference: one pass over the test split.
    assert result['inference_utterances'] == sum(d.num_nodes for d in corpus.test)
    # Training: 3 timed batches of 1 to 4 dialogues cycled from the training split.
    lengths = sorted(d.num_nodes for d in corpus.train)
    assert 3 * lengths[0] <= result['train_utterances'] <= 12 * lengths[-1]
    assert result['train_steps'] == 3
    for split in ('train', 'inference'):
        assert result[f'{split}_utterances_per_s'] == pytest.approx(
            result[f'{split}_utterances'] / result[f'{split}_seconds'])
    torch.manual_seed(0)
    model = AMBDSGDN(DIMS, corpus.num_classes, corpus.num_speakers, hidden_channels=16)
    assert result['num_parameters'] == sum(p.numel() for p in model.parameters())
    assert (result['batch_size'], result['window'], result['num_threads']) == (4, 3, 1)


def test_rejects_bad_step_counts():
    with pytest.raises(ValueError, match="'steps'"):
        benchmark(TrainConfig(num_dialogues=12, feature_dims=DIMS, hidden_channels=16),
                  steps=0)
