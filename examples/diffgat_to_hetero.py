"""A homogeneous DiffGATConv model made heterogeneous with PyG's ``to_hetero``.

A generated ``HeteroData``: users (4 features) follow users and rate items (6 features). An
item's category is what most of its raters prefer, and a user's preference shows in the
user's own features among as much noise, so an item is classified from its raters, through the
``('user', 'rates', 'item')`` edges. The homogeneous model is written once; ``to_hetero``
gives every edge type its own copy of each layer (``in_channels=(-1, -1)``: separate source
and target projections, sized lazily per edge type) and sums them per target type. Trains in
a few seconds on a CPU.

    python examples/diffgat_to_hetero.py
"""
import torch
import torch.nn.functional as F
from torch_geometric.data import HeteroData
from torch_geometric.nn import to_hetero

from dsgdn_pyg.nn import DiffGATConv


class Net(torch.nn.Module):
    def __init__(self, hidden: int, num_classes: int):
        super().__init__()
        self.conv1 = DiffGATConv((-1, -1), hidden, heads=2)
        self.conv2 = DiffGATConv((-1, -1), num_classes, heads=1)

    def forward(self, x, edge_index):
        x = F.gelu(self.conv1(x, edge_index))
        return self.conv2(x, edge_index)  # logits: DiffGATConv can end a model


def make_data(num_users: int = 300, num_items: int = 300, num_classes: int = 4,
              seed: int = 0) -> HeteroData:
    gen = torch.Generator().manual_seed(seed)
    preference = torch.randint(0, num_classes, (num_users, ), generator=gen)
    data = HeteroData()
    # The preference signal in noise (users have num_classes = 4 features).
    data['user'].x = F.one_hot(preference, num_classes).float() + \
        torch.randn(num_users, num_classes, generator=gen)
    data['item'].x = torch.randn(num_items, 6, generator=gen)
    # Every item has 8 raters, mostly users who prefer the item's category.
    category = torch.randint(0, num_classes, (num_items, ), generator=gen)
    raters = []
    for item in range(num_items):
        fans = (preference == category[item]).nonzero().view(-1)
        pick = fans[torch.randint(0, fans.numel(), (6, ), generator=gen)]
        noise = torch.randint(0, num_users, (2, ), generator=gen)
        raters.append(torch.stack([torch.cat([pick, noise]), torch.full((8, ), item)]))
    rates = torch.cat(raters, dim=1)
    data['user', 'rates', 'item'].edge_index = rates
    data['item', 'rated_by', 'user'].edge_index = rates.flip(0)
    follows = torch.randint(0, num_users, (2, 4 * num_users), generator=gen)
    data['user', 'follows', 'user'].edge_index = torch.cat(
        [follows, torch.arange(num_users).repeat(2, 1)], dim=1)  # with self-loops
    data['item'].y = category
    data['item'].train_mask = torch.rand(num_items, generator=gen) < 0.5
    return data


def main(epochs: int = 40, seed: int = 0) -> float:
    torch.manual_seed(seed)
    data = make_data(seed=seed)
    num_classes = int(data['item'].y.max()) + 1
    model = to_hetero(Net(16, num_classes), data.metadata(), aggr='sum')
    with torch.no_grad():  # sizes the lazy projections of every edge type
        model(data.x_dict, data.edge_index_dict)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    mask, y = data['item'].train_mask, data['item'].y
    acc = 0.0
    for epoch in range(1, epochs + 1):
        model.train()
        optimizer.zero_grad()
        logits = model(data.x_dict, data.edge_index_dict)['item']
        loss = F.cross_entropy(logits[mask], y[mask])
        loss.backward()
        optimizer.step()
        if epoch % 20 == 0 or epoch == epochs:
            model.eval()
            with torch.no_grad():
                pred = model(data.x_dict, data.edge_index_dict)['item'].argmax(dim=-1)
            acc = (pred[~mask] == y[~mask]).float().mean().item()
            print(f'epoch {epoch:3d}  loss {loss.item():.3f}  item test accuracy {acc:.3f}')
    return acc


if __name__ == '__main__':
    main()
