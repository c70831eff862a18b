"""Explaining a prediction of a DiffGATConv model with PyG's ``AttentionExplainer``.

Generated two-speaker dialogues whose emotions persist per speaker: an utterance's emotion is
usually that of the same speaker's previous utterance, and its own features show it only
weakly. A two-layer DiffGATConv model on the typed dialogue graph
(:func:`dsgdn_pyg.data.dialogue_edges`) learns to read the speaker's past. The explainer then
collects every layer's final signed coefficients :math:`\\alpha = \\alpha^+ - \\lambda\\alpha^-`
(the ones passed to ``message()``), takes their maximum over heads and layers, and returns
that as the edge mask of the explained utterance's 2-hop neighbourhood, without a sigmoid:
the mask is signed, and its size ranks the edges. Trains in a few seconds on a CPU.

    python examples/diffgat_explain.py
"""
import torch
import torch.nn.functional as F
from torch_geometric.data import Batch, Data
from torch_geometric.explain import Explainer, Explanation
from torch_geometric.explain.algorithm import AttentionExplainer

from dsgdn_pyg.data import NUM_RELATIONS, dialogue_edges
from dsgdn_pyg.data.graph import RELATION_NAMES
from dsgdn_pyg.nn import DiffGATConv


class Net(torch.nn.Module):
    def __init__(self, in_channels: int, hidden: int, num_classes: int):
        super().__init__()
        self.conv1 = DiffGATConv(in_channels, hidden, heads=2, num_relations=NUM_RELATIONS)
        self.conv2 = DiffGATConv(2 * hidden, num_classes, num_relations=NUM_RELATIONS)

    def forward(self, x, edge_index, edge_type):
        x = F.gelu(self.conv1(x, edge_index, edge_type))
        return self.conv2(x, edge_index, edge_type)


def make_dialogues(num_dialogues: int = 40, length: int = 16, num_classes: int = 4,
                   window: int = 4, seed: int = 0) -> Batch:
    gen = torch.Generator().manual_seed(seed)
    dialogues = []
    for _ in range(num_dialogues):
        speaker = torch.randint(0, 2, (length, ), generator=gen)
        y = torch.randint(0, num_classes, (length, ), generator=gen)
        for i in range(length):  # the speaker's emotion persists with probability 0.8
            past = (speaker[:i] == speaker[i]).nonzero().view(-1)
            if past.numel() > 0 and torch.rand(1, generator=gen) < 0.8:
                y[i] = y[past[-1]]
        x = 0.5 * F.one_hot(y, num_classes).float() + torch.randn(length, num_classes,
                                                                  generator=gen)
        edge_index, edge_type = dialogue_edges(speaker, window)
        dialogues.append(Data(x=x, y=y, speaker=speaker, edge_index=edge_index,
                              edge_type=edge_type))
    return Batch.from_data_list(dialogues)


def train(data: Batch, epochs: int) -> Net:
    model = Net(data.num_features, 16, int(data.y.max()) + 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for epoch in range(1, epochs + 1):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(data.x, data.edge_index, data.edge_type), data.y)
        loss.backward()
        optimizer.step()
    print(f'trained {epochs} epochs, loss {loss.item():.3f}')
    return model.eval()


def explain(model: Net, data: Batch, index: int, top: int = 6) -> Explanation:
    explainer = Explainer(model, AttentionExplainer(reduce='max'), explanation_type='model',
                          edge_mask_type='object',
                          model_config=dict(mode='multiclass_classification',
                                            task_level='node', return_type='raw'))
    explanation = explainer(data.x, data.edge_index, edge_type=data.edge_type, index=index)
    mask = explanation.edge_mask
    print(f'utterance {index} (speaker {int(data.speaker[index])}): predicted '
          f'{int(explanation.prediction[index].argmax())}, true {int(data.y[index])}')
    print(f'{int((mask != 0).sum())} edges of its 2-hop neighbourhood have a mask; the '
          f'{top} largest of those that end in it:')
    incoming = (data.edge_index[1] == index).nonzero().view(-1)
    for e in incoming[mask[incoming].argsort(descending=True)][:top].tolist():
        src, dst = data.edge_index[:, e].tolist()
        relation = RELATION_NAMES[int(data.edge_type[e])]
        print(f'  {src:4d} -> {dst:4d}  {relation:20s}  mask {float(mask[e]):+.3f}')
    return explanation


def main(epochs: int = 150, index: int = 27, seed: int = 0) -> Explanation:
    torch.manual_seed(seed)
    data = make_dialogues(seed=seed)
    model = train(data, epochs)
    with torch.no_grad():
        pred = model(data.x, data.edge_index, data.edge_type).argmax(dim=-1)
    print(f'training accuracy {(pred == data.y).float().mean().item():.3f}')
    return explain(model, data, index)


if __name__ == '__main__':
    main()
