"""Every example runs (shortened), and does what it says."""
import runpy
from pathlib import Path

import torch
from torch_geometric.utils import k_hop_subgraph

EXAMPLES = Path(__file__).resolve().parent.parent / 'examples'


def load(name):
    return runpy.run_path(str(EXAMPLES / name))  # not as __main__: main() is not run


def test_diffgat_in_your_model(one_thread):
    accuracy = load('diffgat_in_your_model.py')['main'](epochs=25)
    assert accuracy > 0.6  # 3 balanced classes: chance is 1/3


def test_diffgat_to_hetero(one_thread):
    accuracy = load('diffgat_to_hetero.py')['main'](epochs=15)
    assert accuracy > 0.4  # 4 classes: chance is 1/4


def test_diffgat_explain(one_thread):
    example = load('diffgat_explain.py')
    explanation = example['main'](epochs=30, index=27)
    data = example['make_dialogues']()
    mask = explanation.edge_mask
    assert mask.shape == (data.edge_index.size(1), )
    # The explained utterance's 2-hop neighbourhood has the mask, every other edge 0.
    _, _, _, hard = k_hop_subgraph(27, 2, data.edge_index, num_nodes=data.num_nodes)
    assert torch.all(mask[~hard] == 0) and torch.all(mask[hard] != 0)
