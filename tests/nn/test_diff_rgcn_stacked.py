import pytest
import torch
from torch_geometric import EdgeIndex

from dsgdn_pyg.nn import DiffGATConv, DiffRGCN
from dsgdn_pyg.nn.diff_gat_inputs import _target_csr, target_sorted_edge_index
from dsgdn_pyg.nn.diff_rgcn_stacked import (StackedConv, propagate_stacked, stack_blocks,
                                            stackable, stacked_graph_blocks)
from dsgdn_pyg.nn.diff_gat_incremental import stacked_terms

from test_diff_rgcn import random_batch

# Float64 throughout: the stacked and the one-by-one computations are the same arithmetic in
# another grouping (batched products, heads of all blocks in one kernel), so they agree to
# rounding, which float64 makes ~1e-13 on these sizes; 1e-9 leaves room and would still catch
# any wrong weight, head or branch (those differ at order 1).
TOL = dict(rtol=1e-9, atol=1e-9)


def blocks(count, heads=2, dropout=0.0, seed=0):
    torch.manual_seed(seed)
    return [DiffRGCN(8, heads=heads, dropout=dropout).double() for _ in range(count)]


@pytest.mark.parametrize('heads, sorted_edges', [(1, False), (2, True), (3, False)])
def test_stacked_blocks_equal_the_blocks_one_by_one(heads, sorted_edges):
    mods = blocks(3, heads)
    batch = random_batch(4)
    edge_index, edge_type = batch.edge_index, batch.edge_type
    if sorted_edges:
        edge_index, edge_type = target_sorted_edge_index(edge_index, edge_type,
                                                         (batch.num_nodes, ) * 2)
    xs = [torch.randn(batch.num_nodes, 8, dtype=torch.float64, requires_grad=True)
          for _ in mods]
    expected = [b(x, edge_index, edge_type) for b, x in zip(mods, xs)]
    expected_grads = torch.autograd.grad(sum((e * e.roll(1, 1)).sum() for e in expected),
                                         xs + [p for b in mods for p in b.parameters()])

    block, = stack_blocks(mods)
    out = stacked_graph_blocks(block, torch.stack(xs), edge_index, edge_type)
    grads = torch.autograd.grad((out * out.roll(1, 2)).sum(),
                                xs + [p for b in mods for p in b.parameters()])
    torch.testing.assert_close(out, torch.stack(expected), **TOL)
    for got, want in zip(grads, expected_grads):
        torch.testing.assert_close(got, want, **TOL)


def test_parameter_gradients_arrive_in_the_parameters_layout():
    # stack_parameters makes the stacked gradient contiguous once, so autograd can hand each
    # parameter its slice without a copy; the gradients must still be the parameters' own.
    mods = blocks(2)
    batch = random_batch(1)
    block, = stack_blocks(mods)
    out = stacked_graph_blocks(block, torch.randn(2, batch.num_nodes, 8, dtype=torch.float64),
                               batch.edge_index, batch.edge_type)
    out.square().sum().backward()
    for b in mods:
        for name, p in b.named_parameters():
            assert p.grad is not None, name
            assert p.grad.shape == p.shape and p.grad.is_contiguous(), name


def test_groups_split_the_stack_in_order():
    # Blocks of two places stacked together, then split: each group is its own blocks.
    mods = blocks(4)
    batch = random_batch(2)
    x = torch.randn(2, batch.num_nodes, 8, dtype=torch.float64)
    first, second = stack_blocks(mods, groups=2)
    alone, = stack_blocks(mods[2:])
    torch.testing.assert_close(
        stacked_graph_blocks(second, x, batch.edge_index, batch.edge_type),
        stacked_graph_blocks(alone, x, batch.edge_index, batch.edge_type), **TOL)
    assert first.lin_weight.shape == (2, 8, 8)


@pytest.mark.parametrize('concat', [True, False])
def test_propagate_stacked_is_the_layer_forward(concat):
    torch.manual_seed(0)
    convs = [DiffGATConv(6, 4, heads=3, concat=concat, num_relations=6).double().eval()
             for _ in range(2)]
    batch = random_batch(5, channels=6)
    xs = torch.randn(2, batch.num_nodes, 6, dtype=torch.float64)
    first = convs[0]
    stacked = StackedConv(stacked_terms(convs), first.heads, first.out_channels,
                          first.negative_slope, concat, torch.stack([c.bias for c in convs]),
                          0.0, first.num_relations)
    graph = _target_csr(batch.edge_index, None, batch.num_nodes, batch.num_nodes)
    edge_type = batch.edge_type if graph.perm is None else batch.edge_type[graph.perm]
    out = propagate_stacked(stacked, xs, graph, edge_type)
    expected = torch.stack([c(x, batch.edge_index, batch.edge_type) for c, x in zip(convs, xs)])
    torch.testing.assert_close(out, expected, **TOL)


def test_stackable_only_for_unobserved_diffgat_blocks_of_equal_shapes():
    mods = blocks(2)
    assert stackable(mods)
    assert not stackable(mods + [DiffRGCN(8, heads=3).double()])
    assert not stackable([DiffRGCN(8, conv='gat'), DiffRGCN(8, conv='gat')])
    handle = mods[1].out_att.register_forward_pre_hook(lambda module, args: None)
    assert not stackable(mods)  # a recorder expects the layer to be called
    handle.remove()
    assert stackable(mods)
    mods[0].att.explain = True
    assert not stackable(mods)


def test_bad_relation_id_is_reported_as_the_layer_does():
    mods = blocks(2)
    batch = random_batch(0)
    block, = stack_blocks(mods)
    edge_type = batch.edge_type.clone()
    edge_type[0] = 17
    with pytest.raises(ValueError, match=r"'edge_type' must lie in \[0, 6\)"):
        stacked_graph_blocks(block, torch.zeros(2, batch.num_nodes, 8, dtype=torch.float64),
                             EdgeIndex(batch.edge_index), edge_type)
