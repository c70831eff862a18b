import pytest
import torch
import torch.nn.functional as F
from torch_geometric.data import Batch, Data
from torch_geometric.nn import GATConv
from torch_geometric.utils import to_dense_batch

from dsgdn_pyg.data import dense_dialogue_relations, dialogue_edges
from dsgdn_pyg.nn import DiffGATConv, DiffRGCN
from dsgdn_pyg.nn.dense import DenseDiffRGCN


WINDOW = 3


def random_batch(seed, channels=8, lengths=(5, 9, 1), dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    dialogues = []
    for length in lengths:
        speaker = torch.randint(0, 3, (length, ), generator=gen)
        edge_index, edge_type = dialogue_edges(speaker, WINDOW)
        dialogues.append(Data(x=torch.randn(length, channels, generator=gen, dtype=dtype),
                              speaker=speaker, edge_index=edge_index, edge_type=edge_type))
    return Batch.from_data_list(dialogues)


@pytest.mark.parametrize('seed, heads', [(0, 1), (1, 2), (2, 3)])
def test_sparse_block_equals_the_dense_one(seed, heads):
    torch.manual_seed(seed)
    block = DiffRGCN(8, heads=heads, dropout=0.0).double().eval()
    batch = random_batch(seed)
    out = block(batch.x, batch.edge_index, batch.edge_type)
    # The dense path builds its [B, L, L] relation ids from the speakers, not from the edges.
    x, mask = to_dense_batch(batch.x, batch.batch)
    speaker, _ = to_dense_batch(batch.speaker, batch.batch)
    dense = DenseDiffRGCN(block)(x, dense_dialogue_relations(speaker, mask, WINDOW), mask)
    torch.testing.assert_close(out, dense[mask], rtol=1e-9, atol=1e-9)


def test_block_is_the_published_composition():
    # Eq. 18: LayerNorm(X + W GELU(DiffGAT_out(Z)) + b), Z = the heads concatenated, written
    # out with torch's own layer norm and GELU on the block's parameters. DiffGATConv leaves
    # its activation to the caller, so the block applies the GELU after each layer (the
    # published code applies one inside each layer, hence two after the output layer).
    torch.manual_seed(0)
    block = DiffRGCN(8, heads=2, dropout=0.0).double().eval()
    batch = random_batch(3)
    z = F.gelu(block.att(batch.x, batch.edge_index, batch.edge_type))
    assert z.shape == (batch.num_nodes, 2 * 8)
    h = F.gelu(block.out_att(z, batch.edge_index, batch.edge_type))
    h = F.gelu(h) @ block.lin.weight.t() + block.lin.bias
    expected = F.layer_norm(batch.x + h, (8, ), block.norm.weight, block.norm.bias,
                            block.norm.eps)
    torch.testing.assert_close(block(batch.x, batch.edge_index, batch.edge_type), expected)


def test_gat_ablation_uses_pyg_gatconv_without_relations():
    torch.manual_seed(0)
    block = DiffRGCN(8, heads=2, dropout=0.0, conv='gat').double().eval()
    assert isinstance(block.att, GATConv) and isinstance(block.out_att, GATConv)
    batch = random_batch(4)
    out = block(batch.x, batch.edge_index, batch.edge_type)
    shuffled = batch.edge_type[torch.randperm(batch.edge_type.numel())]
    torch.testing.assert_close(out, block(batch.x, batch.edge_index, shuffled))
    with pytest.raises(ValueError, match="conv='diffgat'"):
        DenseDiffRGCN(block)


def test_dropout_only_in_training():
    torch.manual_seed(0)
    block = DiffRGCN(8, heads=2, dropout=0.5).double()
    batch = random_batch(5)
    args = (batch.x, batch.edge_index, batch.edge_type)
    block.eval()
    torch.testing.assert_close(block(*args), block(*args))
    block.train()
    assert not torch.allclose(block(*args), block(*args))


def test_reset_parameters_repr_and_bad_conv():
    block = DiffRGCN(8, heads=2)
    assert isinstance(block.att, DiffGATConv)
    before = block.lin.weight.detach().clone()
    block.reset_parameters()
    assert not torch.equal(before, block.lin.weight)
    assert repr(block) == "DiffRGCN(8, heads=2, conv='diffgat')"
    with pytest.raises(ValueError, match="'conv'"):
        DiffRGCN(8, conv='gcn')
