"""DiffGATConv inside a small PyG model of your own.

A generated graph: two communities with noisy node features and labels that are smoothed over
neighbours, so that attending to the right neighbours pays off. Trains in a few seconds on a CPU.

    python examples/diffgat_in_your_model.py
"""
import torch
import torch.nn.functional as F
from torch_geometric.utils import stochastic_blockmodel_graph

from dsgdn_pyg.nn import DiffGATConv


class Net(torch.nn.Module):
    def __init__(self, in_channels: int, hidden: int, num_classes: int, num_relations: int):
        super().__init__()
        self.conv1 = DiffGATConv(in_channels, hidden, heads=2, num_relations=num_relations,
                                 dropout=0.1)
        self.conv2 = DiffGATConv(2 * hidden, hidden, heads=1, num_relations=num_relations)
        self.lin = torch.nn.Linear(hidden, num_classes)

    def forward(self, x, edge_index, edge_type):
        # DiffGATConv applies no activation, as every PyG layer.
        x = F.gelu(self.conv1(x, edge_index, edge_type))
        x = F.gelu(self.conv2(x, edge_index, edge_type))
        return self.lin(x)


def make_graph(num_nodes: int = 600, num_classes: int = 3, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    sizes = [num_nodes // num_classes] * num_classes
    edge_index = stochastic_blockmodel_graph(sizes, [[0.04 if a == b else 0.004 for b in
                                                      range(num_classes)]
                                                     for a in range(num_classes)])
    y = torch.arange(num_classes).repeat_interleave(torch.tensor(sizes))
    # Weak, noisy node features: a node alone is hard to classify, its neighbourhood is not.
    x = 0.5 * F.one_hot(y, num_classes).float() + torch.randn(num_nodes, num_classes,
                                                              generator=gen)
    x = torch.cat([x, torch.randn(num_nodes, 5, generator=gen)], dim=1)
    loops = torch.arange(num_nodes).repeat(2, 1)
    edge_index = torch.cat([edge_index, loops], dim=1)
    # Two relation types: self-loop (0) and neighbour (1).
    edge_type = (edge_index[0] != edge_index[1]).long()
    train_mask = torch.rand(num_nodes, generator=gen) < 0.5
    return x, edge_index, edge_type, y, train_mask


def main(epochs: int = 100) -> float:
    x, edge_index, edge_type, y, train_mask = make_graph()
    model = Net(x.size(1), 16, int(y.max()) + 1, num_relations=2)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
    acc = 0.0
    for epoch in range(1, epochs + 1):
        model.train()
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x, edge_index, edge_type)[train_mask], y[train_mask])
        loss.backward()
        optimizer.step()
        if epoch % 25 == 0 or epoch == epochs:
            model.eval()
            with torch.no_grad():
                pred = model(x, edge_index, edge_type).argmax(dim=-1)
            acc = (pred[~train_mask] == y[~train_mask]).float().mean().item()
            print(f'epoch {epoch:3d}  loss {loss.item():.3f}  test accuracy {acc:.3f}')
    return acc


if __name__ == '__main__':
    main()
