import math

import pytest
import torch
import torch.nn.functional as F
import torch_geometric
import torch_geometric.typing
from torch_geometric import EdgeIndex
from torch_geometric.data import Batch, Data, HeteroData
from torch_geometric.explain import Explainer
from torch_geometric.explain.algorithm import AttentionExplainer
from torch_geometric.nn import HeteroConv, to_hetero
from torch_geometric.typing import SparseTensor
from torch_geometric.utils import (k_hop_subgraph, sort_edge_index, to_dense_batch,
                                   to_torch_csc_tensor, to_torch_csr_tensor)

from dsgdn_pyg.data import NUM_RELATIONS, dialogue_edges
from dsgdn_pyg.nn import DenseDiffGATConv, DiffGATConv
from dsgdn_pyg.nn.diff_gat_conv import lambda_init_for_depth, target_sorted_edge_index

TOL = {torch.float32: dict(rtol=1e-5, atol=1e-5), torch.float64: dict(rtol=1e-9, atol=1e-9)}


def random_batch(gen, num_dialogues, max_length, max_speakers, window, channels, dtype):
    dialogues = []
    for _ in range(num_dialogues):
        length = int(torch.randint(1, max_length + 1, (1, ), generator=gen))
        num_speakers = int(torch.randint(1, max_speakers + 1, (1, ), generator=gen))
        speaker = torch.randint(0, num_speakers, (length, ), generator=gen)
        edge_index, edge_type = dialogue_edges(speaker, window)
        x = torch.randn(length, channels, generator=gen, dtype=dtype)
        dialogues.append(Data(x=x, edge_index=edge_index, edge_type=edge_type))
    return Batch.from_data_list(dialogues)


def dense_relations(batch):
    """Padded [B, L, L] relation ids (0 = no edge) of a batch, built edge by edge."""
    sizes = batch.ptr.diff().tolist()
    rel = torch.zeros(len(sizes), max(sizes), max(sizes), dtype=torch.long,
                      device=batch.edge_index.device)
    for (src, dst), r in zip(batch.edge_index.t().tolist(), batch.edge_type.tolist()):
        b = int(batch.batch[dst])
        offset = int(batch.ptr[b])
        rel[b, dst - offset, src - offset] = r
    return rel


CASES = [
    # (seed, heads, concat, relations, max_speakers, window, max_length, dtype)
    (0, 1, True, True, 2, 20, 120, torch.float64),
    (1, 2, True, True, 9, 25, 60, torch.float64),
    (2, 3, False, False, 5, 0, 40, torch.float64),
    (3, 2, False, True, 1, 7, 90, torch.float64),
    (4, 1, True, False, 3, 3, 120, torch.float32),
    (5, 2, True, True, 9, 25, 110, torch.float32),
    (6, 4, False, True, 2, 1, 30, torch.float32),
    (7, 2, True, True, 6, 13, 1, torch.float32),
]


@pytest.mark.parametrize('seed,heads,concat,relations,max_speakers,window,max_length,dtype', CASES)
def test_sparse_equals_dense(seed, heads, concat, relations, max_speakers, window, max_length,
                             dtype, device):
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    in_channels, out_channels = 12, 8
    batch = random_batch(gen, 5, max_length, max_speakers, window, in_channels, dtype)
    conv = DiffGATConv(in_channels, out_channels, heads=heads, concat=concat,
                       num_relations=NUM_RELATIONS if relations else None).to(dtype)
    # Move the parameters away from their init so that every term matters.
    with torch.no_grad():
        for p in conv.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen, dtype=dtype))
    conv, batch = conv.to(device), batch.to(device)
    dense = DenseDiffGATConv(conv)

    x = batch.x.clone().requires_grad_()
    edge_type = batch.edge_type if relations else None
    out, (edge_index, alpha) = conv(x, batch.edge_index, edge_type,
                                    return_attention_weights=True)
    assert torch.equal(edge_index, batch.edge_index)
    assert alpha.shape == (batch.edge_index.size(1), heads)
    width = heads * out_channels if concat else out_channels
    assert out.shape == (batch.num_nodes, width)

    x_dense, mask = to_dense_batch(x, batch.batch)
    rel = dense_relations(batch)
    out_dense, alpha_dense = dense(x_dense, rel, mask)

    torch.testing.assert_close(out, out_dense[mask], **TOL[dtype])
    b = batch.batch[edge_index[1]]
    i = edge_index[1] - batch.ptr[b]
    j = edge_index[0] - batch.ptr[b]
    torch.testing.assert_close(alpha, alpha_dense[b, i, j], **TOL[dtype])
    # Every non-edge of the dense form has a zero coefficient.
    assert int((alpha_dense != 0).any(-1).sum()) <= edge_index.size(1)

    weight = torch.randn(out.shape, generator=gen, dtype=dtype).to(device) / \
        math.sqrt(out.numel())
    params = [p for p in conv.parameters()]
    grads = torch.autograd.grad((out * weight).sum(), [x] + params)
    grads_dense = torch.autograd.grad((out_dense[mask] * weight).sum(), [x] + params,
                                      allow_unused=True)
    names = ['x'] + [name for name, _ in conv.named_parameters()]
    for name, g, g_dense in zip(names, grads, grads_dense):
        assert g_dense is not None, name
        torch.testing.assert_close(g, g_dense, **TOL[dtype], msg=lambda m: f'{name}: {m}')


def test_relation_embedding_changes_attention():
    torch.manual_seed(0)
    speaker = torch.tensor([0, 1, 0, 1, 1, 0])
    edge_index, edge_type = dialogue_edges(speaker, 2)
    conv = DiffGATConv(4, 6, num_relations=NUM_RELATIONS)
    x = torch.randn(6, 4)
    _, (_, alpha) = conv(x, edge_index, edge_type, return_attention_weights=True)
    _, (_, alpha_other) = conv(x, edge_index, torch.ones_like(edge_type),
                               return_attention_weights=True)
    assert not torch.allclose(alpha, alpha_other)


def test_attention_coefficients_match_definition():
    """alpha = softmax(e+) - lambda * softmax(e-), computed by hand for one target node."""
    torch.manual_seed(1)
    conv = DiffGATConv(3, 4, num_relations=NUM_RELATIONS).double()
    x = torch.randn(4, 3, dtype=torch.float64)
    edge_index = torch.tensor([[0, 1, 3, 2], [2, 2, 2, 2]])
    edge_type = torch.tensor([5, 4, 3, 1])
    _, (_, alpha) = conv(x, edge_index, edge_type, return_attention_weights=True)

    wh = x @ conv.lin.weight.t()  # [4, 4]: first half positive, second half negative
    rel = conv.lin_rel(conv.rel_emb.weight)  # [R, 2]
    expected = []
    for branch in range(2):
        half = wh[:, 2 * branch:2 * branch + 2]
        a_dst = conv.att_dst[0, 0, branch]
        a_src = conv.att_src[0, 0, branch]
        scores = torch.stack([
            F.leaky_relu(half[2] @ a_dst + half[j] @ a_src + rel[r, branch], 0.2)
            for j, r in zip(edge_index[0].tolist(), edge_type.tolist())
        ])
        expected.append(torch.softmax(scores, dim=0))
    lam = (math.exp(float(conv.lambda_q1.detach() @ conv.lambda_k1.detach().t()))
           - math.exp(float(conv.lambda_q2.detach() @ conv.lambda_k2.detach().t()))
           + lambda_init_for_depth(1))
    torch.testing.assert_close(alpha[:, 0], expected[0] - lam * expected[1])


def test_node_permutation_equivariance():
    torch.manual_seed(2)
    speaker = torch.randint(0, 3, (25, ))
    edge_index, edge_type = dialogue_edges(speaker, 5)
    conv = DiffGATConv(8, 6, heads=2, num_relations=NUM_RELATIONS)
    x = torch.randn(25, 8)
    out = conv(x, edge_index, edge_type)

    perm = torch.randperm(25)
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(25)
    out_perm = conv(x[perm], inverse[edge_index], edge_type)
    torch.testing.assert_close(out_perm, out[perm], rtol=1e-5, atol=1e-5)


def test_edge_order_does_not_matter():
    torch.manual_seed(3)
    edge_index, edge_type = dialogue_edges(torch.randint(0, 2, (30, )), 4)
    conv = DiffGATConv(5, 4, num_relations=NUM_RELATIONS)
    x = torch.randn(30, 5)
    out, (_, alpha) = conv(x, edge_index, edge_type, return_attention_weights=True)
    perm = torch.randperm(edge_index.size(1))
    out_p, (ei_p, alpha_p) = conv(x, edge_index[:, perm], edge_type[perm],
                                  return_attention_weights=True)
    torch.testing.assert_close(out_p, out, rtol=1e-5, atol=1e-6)
    assert torch.equal(ei_p, edge_index[:, perm])
    torch.testing.assert_close(alpha_p, alpha[perm])


def test_edge_index_edited_in_place_is_seen():
    # Nothing derived from an edge_index tensor outlives the call: an in-place edit is seen.
    torch.manual_seed(6)
    edge_index, edge_type = dialogue_edges(torch.randint(0, 2, (20, )), 3)
    conv = DiffGATConv(5, 4, heads=2, num_relations=NUM_RELATIONS).eval()
    x = torch.randn(20, 5)
    conv(x, edge_index, edge_type)
    edge_index[0] = edge_index[0].flip(0)
    torch.testing.assert_close(conv(x, edge_index, edge_type),
                               conv(x, edge_index.clone(), edge_type.clone()))
    edge_type[0] = NUM_RELATIONS
    with pytest.raises(ValueError, match="'edge_type' must lie in"):
        conv(x, edge_index, edge_type)
    edge_type[0] = 0
    edge_index[1, 0] = 20
    with pytest.raises(ValueError, match="'edge_index' refers to nodes"):
        conv(x, edge_index, edge_type)


def reference(conv, x_src, x_dst, edge_index, edge_type=None, edge_attr=None):
    """Node-by-node evaluation of the layer's formula (bipartite projections if the layer has
    them, no target score for x_dst=None)."""
    H, C = conv.heads, conv.out_channels
    lin_src = conv.lin if conv.lin is not None else conv.lin_src
    lin_dst = conv.lin if conv.lin is not None else conv.lin_dst
    h_src = lin_src(x_src).view(-1, H, 2, C // 2)
    lam = conv.differential_lambda()
    rel = conv.relation_scores() if conv.rel_emb is not None else None
    rows = []
    num_dst = x_dst.size(0) if x_dst is not None else int(edge_index[1].max()) + 1
    for i in range(num_dst):
        nbr = (edge_index[1] == i).nonzero().view(-1)
        src = edge_index[0, nbr]
        score = (h_src[src] * conv.att_src[0]).sum(-1)  # [k, H, 2]
        if x_dst is not None:
            score = score + (lin_dst(x_dst[i]).view(H, 2, C // 2) * conv.att_dst[0]).sum(-1)
        if rel is not None:
            score = score + rel[edge_type[nbr]]
        if edge_attr is not None:
            e = conv.lin_edge(edge_attr[nbr].view(len(nbr), -1)).view(-1, H, 2, C // 2)
            score = score + (e * conv.att_edge[0]).sum(-1)
        alpha = torch.softmax(F.leaky_relu(score, 0.2), dim=0)  # [k, H, 2]
        alpha = alpha[..., 0] - lam * alpha[..., 1]
        agg = (alpha.unsqueeze(-1) * h_src[src].reshape(-1, H, C)).sum(0)  # [H, C]
        agg = F.layer_norm(agg, (C, )) * conv.norm_weight + conv.norm_bias
        agg = agg * (1 - conv.lambda_init)
        agg = agg.reshape(-1) if conv.concat else agg.mean(0)
        rows.append(agg if conv.bias is None else agg + conv.bias)
    return torch.stack(rows)


def perturbed(conv, seed=0):
    """The layer with every parameter moved away from its init, so every term matters."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in conv.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return conv


def test_bipartite_input():
    torch.manual_seed(4)
    conv = perturbed(DiffGATConv((5, 7), 4, heads=2, num_relations=3).double())
    x_src = torch.randn(6, 5, dtype=torch.float64)
    x_dst = torch.randn(3, 7, dtype=torch.float64)
    edge_index = torch.tensor([[0, 1, 2, 3, 4, 5, 0, 2], [0, 0, 1, 1, 1, 2, 2, 2]])
    edge_type = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    out = conv((x_src, x_dst), edge_index, edge_type)
    assert out.shape == (3, 8)
    torch.testing.assert_close(out, reference(conv, x_src, x_dst, edge_index, edge_type))
    assert 'DiffGATConv((5, 7), 4, heads=2, num_relations=3)' == repr(conv)


def test_single_utterance_and_window_zero():
    torch.manual_seed(5)
    conv = DiffGATConv(4, 6, heads=2, num_relations=NUM_RELATIONS).double()
    x = torch.randn(3, 4, dtype=torch.float64)
    edge_index, edge_type = dialogue_edges(torch.tensor([0, 1, 0]), 0)
    out, (_, alpha) = conv(x, edge_index, edge_type, return_attention_weights=True)
    # One neighbour (itself): both softmaxes are 1, so alpha = 1 - lambda.
    torch.testing.assert_close(alpha, (1 - conv.differential_lambda()).expand(3, 2))
    # Each node then only sees itself.
    single = conv(x[1:2], *dialogue_edges(torch.tensor([0]), 20))
    torch.testing.assert_close(single, out[1:2])


def test_dropout_only_in_training():
    torch.manual_seed(6)
    edge_index, edge_type = dialogue_edges(torch.randint(0, 2, (20, )), 3)
    x = torch.randn(20, 8)
    conv = DiffGATConv(8, 8, dropout=0.5, num_relations=NUM_RELATIONS)
    reference = DiffGATConv(8, 8, dropout=0.0, num_relations=NUM_RELATIONS)
    reference.load_state_dict(conv.state_dict())
    conv.eval()
    torch.testing.assert_close(conv(x, edge_index, edge_type), reference(x, edge_index,
                                                                         edge_type))
    conv.train()
    _, (_, alpha_train) = conv(x, edge_index, edge_type, return_attention_weights=True)
    assert (alpha_train == 0).float().mean() > 0.2


def test_reset_parameters_and_repr():
    conv = DiffGATConv(16, 8, heads=2)
    before = {k: v.clone() for k, v in conv.state_dict().items()}
    torch.manual_seed(123)
    conv.reset_parameters()
    assert any(not torch.equal(before[k], v) for k, v in conv.state_dict().items())
    assert repr(conv) == 'DiffGATConv(16, 8, heads=2)'
    assert conv.lin.weight.shape == (16, 16)


def test_bad_input():
    conv = DiffGATConv(4, 6, num_relations=NUM_RELATIONS)
    x = torch.randn(3, 4)
    edge_index, edge_type = dialogue_edges(torch.tensor([0, 1, 0]), 1)
    with pytest.raises(ValueError, match=r"'x \(source\)'.*\[N, 4\].*\(3, 5\)"):
        conv(torch.randn(3, 5), edge_index, edge_type)
    too_large = edge_type.clone()
    too_large[0] = 6
    with pytest.raises(ValueError, match=r"'edge_type'.*\[0, 6\).*\[1, 6\]"):
        conv(x, edge_index, too_large)
    with pytest.raises(ValueError, match=r"'edge_type'.*\[0, 6\)"):
        conv(x, edge_index, -edge_type)
    with pytest.raises(ValueError, match="'edge_type' is required"):
        conv(x, edge_index)
    with pytest.raises(ValueError, match=r"'edge_type' must have shape \[E\]"):
        conv(x, edge_index, edge_type[:-1])
    with pytest.raises(ValueError, match="'edge_index' refers to nodes"):
        conv(x, edge_index + 1, edge_type)
    with pytest.raises(ValueError, match="'out_channels'"):
        DiffGATConv(4, 5)


# PyG's layer contract: the matrix of PyG's test/nn/conv/test_gat_conv.py, and PyG's tools.

CLOSE = dict(rtol=1e-5, atol=1e-6)


def graph(num_nodes=6, num_edges=14, seed=0):
    """Random edges sorted by (target, source), as a CSC adjacency stores them, with
    self-loops so that every node has an incoming edge."""
    gen = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, num_nodes, (2, num_edges), generator=gen)
    loops = torch.arange(num_nodes).repeat(2, 1)
    edge_index = torch.cat([edge_index, loops], dim=1).unique(dim=1)
    edge_index = sort_edge_index(edge_index, sort_by_row=False)
    edge_type = torch.randint(0, 3, (edge_index.size(1), ), generator=gen)
    edge_attr = torch.randn(edge_index.size(1), 2, generator=gen)
    return edge_index, edge_type, edge_attr


def test_input_formats_give_the_same_output():
    torch.manual_seed(0)
    edge_index, edge_type, edge_attr = graph()
    x = torch.randn(6, 8)
    conv = perturbed(DiffGATConv(8, 4, heads=2, num_relations=3, edge_dim=2))
    assert str(conv) == 'DiffGATConv(8, 4, heads=2, num_relations=3, edge_dim=2)'
    out, (ei, alpha) = conv(x, edge_index, edge_type, edge_attr, return_attention_weights=True)
    assert out.shape == (6, 8) and ei is edge_index and alpha.shape == (edge_index.size(1), 2)
    torch.testing.assert_close(out, reference(conv, x, x, edge_index, edge_type, edge_attr))

    torch.testing.assert_close(conv(x, edge_index, edge_type, edge_attr, size=(6, 6)), out)
    for edges in (EdgeIndex(edge_index, sparse_size=(6, 6), sort_order='col'),
                  EdgeIndex(edge_index.flip(0), sparse_size=(6, 6)).sort_by('row')[0].flip(0),
                  target_sorted_edge_index(edge_index)[0]):
        torch.testing.assert_close(conv(x, edges, edge_type, edge_attr), out, **CLOSE)

    # adj_t in CSR form, values in target-major order (= the order of edge_index here): the
    # CSR is used as it is.
    # (This test is the user here: it opts in to torch's invariant checks of its own sparse
    # tensors, which torch would otherwise warn about.)
    with torch.sparse.check_sparse_tensor_invariants(enable=True):
        adj_t = to_torch_csc_tensor(edge_index, size=(6, 6)).t()
    assert adj_t.layout == torch.sparse_csr
    out_adj, (adj_alpha, alpha_adj) = conv(x, adj_t, edge_type, edge_attr,
                                           return_attention_weights=True)
    torch.testing.assert_close(out_adj, out, **CLOSE)
    torch.testing.assert_close(alpha_adj, alpha, **CLOSE)
    assert adj_alpha.size() == (6, 6, 2) and adj_alpha._nnz() == edge_index.size(1)

    # adj_t in CSC form: values in source-major order, and so are edge types and features.
    order = torch.sort(edge_index[0] * 6 + edge_index[1]).indices
    with torch.sparse.check_sparse_tensor_invariants(enable=True):
        adj_t = to_torch_csr_tensor(edge_index, size=(6, 6)).t()
    out_csc, (_, alpha_csc) = conv(x, adj_t, edge_type[order], edge_attr[order],
                                   return_attention_weights=True)
    torch.testing.assert_close(out_csc, out, **CLOSE)
    torch.testing.assert_close(alpha_csc, alpha[order], **CLOSE)


@pytest.mark.skipif(not torch_geometric.typing.WITH_TORCH_SPARSE, reason='needs torch-sparse')
def test_sparse_tensor_input():
    torch.manual_seed(0)
    edge_index, edge_type, _ = graph()
    x = torch.randn(6, 8)
    conv = perturbed(DiffGATConv(8, 4, heads=2, num_relations=3))
    out = conv(x, edge_index, edge_type)
    adj = SparseTensor.from_edge_index(edge_index, sparse_sizes=(6, 6))
    torch.testing.assert_close(conv(x, adj.t(), edge_type), out, **CLOSE)
    _, adj_alpha = conv(x, adj.t(), edge_type, return_attention_weights=True)
    assert adj_alpha.sizes() == [6, 6, 2] and adj_alpha.nnz() == edge_index.size(1)


def test_bipartite_size_and_missing_targets():
    torch.manual_seed(1)
    x_src, x_dst = torch.randn(4, 8), torch.randn(2, 16)
    edge_index = torch.tensor([[0, 1, 2, 3], [0, 0, 1, 1]])
    conv = perturbed(DiffGATConv((8, 16), 6, heads=2))
    out = conv((x_src, x_dst), edge_index)
    assert out.shape == (2, 12)
    torch.testing.assert_close(out, reference(conv, x_src, x_dst, edge_index))
    torch.testing.assert_close(conv((x_src, x_dst), edge_index, size=(4, 2)), out)
    adj_t = to_torch_csc_tensor(edge_index, size=(4, 2)).t()
    torch.testing.assert_close(conv((x_src, x_dst), adj_t), out, **CLOSE)

    # Without target features there is no target score.
    out_none = conv((x_src, None), edge_index, size=(4, 2))
    assert out_none.shape == (2, 12)
    torch.testing.assert_close(out_none, reference(conv, x_src, None, edge_index))
    torch.testing.assert_close(conv((x_src, None), adj_t), out_none, **CLOSE)
    torch.testing.assert_close(conv((x_src, None), edge_index), out_none)
    # More targets than edges name: the others aggregate nothing.
    out_wide = conv((x_src, None), edge_index, size=(4, 3))
    torch.testing.assert_close(out_wide[:2], out_none)


def test_empty_graph():
    conv = DiffGATConv(8, 4, heads=2, num_relations=3)
    out = conv(torch.randn(0, 8), torch.empty(2, 0, dtype=torch.long),
               torch.empty(0, dtype=torch.long))
    assert out.shape == (0, 8)
    # Nodes without edges aggregate nothing: only the normalisation's offset and the bias.
    with torch.no_grad():
        conv.bias.fill_(0.5)
    out = conv(torch.randn(3, 8), torch.empty(2, 0, dtype=torch.long),
               torch.empty(0, dtype=torch.long))
    expected = (conv.norm_bias * (1 - conv.lambda_init)).reshape(-1) + 0.5
    torch.testing.assert_close(out, expected.expand(3, -1))


@pytest.mark.parametrize('in_channels', [-1, (-1, -1)])
def test_lazy_initialisation(in_channels):
    torch.manual_seed(2)
    edge_index, edge_type, edge_attr = graph()
    x = torch.randn(6, 8)
    lazy = DiffGATConv(in_channels, 4, heads=2, num_relations=3, edge_dim=2)
    sized = DiffGATConv(8 if in_channels == -1 else (8, 8), 4, heads=2, num_relations=3,
                        edge_dim=2)
    assert torch.nn.parameter.is_lazy((lazy.lin or lazy.lin_src).weight)
    out = lazy(x, edge_index, edge_type, edge_attr)
    assert out.shape == (6, 8)
    # Materialised with the sized layer's initialisation scale ...
    weight = (lazy.lin or lazy.lin_src).weight
    assert weight.shape == (8, 8) and weight.abs().max() <= 1.414 * (6 / 16) ** 0.5
    # ... and then the same function as the sized layer.
    sized.load_state_dict(lazy.state_dict())
    torch.testing.assert_close(sized(x, edge_index, edge_type, edge_attr), out)


def test_edge_features_change_the_scores_per_branch():
    torch.manual_seed(3)
    edge_index, _, edge_attr = graph()
    x = torch.randn(6, 8)
    conv = perturbed(DiffGATConv(8, 4, heads=2, edge_dim=2).double())
    _, (_, alpha) = conv(x.double(), edge_index, edge_attr=edge_attr.double(),
                         return_attention_weights=True)
    _, (_, alpha_zero) = conv(x.double(), edge_index, edge_attr=0 * edge_attr.double(),
                              return_attention_weights=True)
    assert not torch.allclose(alpha, alpha_zero)
    # 1-d features for edge_dim=1, as GATConv takes them.
    conv1 = DiffGATConv(8, 4, edge_dim=1)
    assert conv1(x, edge_index, edge_attr=edge_attr[:, 0]).shape == (6, 4)
    with pytest.raises(ValueError, match=r"'edge_attr' must have shape \[E, edge_dim\]"):
        conv(x.double(), edge_index, edge_attr=edge_attr[:, :1].double())


def test_cached_reuses_the_first_graph():
    torch.manual_seed(4)
    edge_index, edge_type, _ = graph()
    x = torch.randn(6, 8)
    conv = DiffGATConv(8, 4, heads=2, num_relations=3, cached=True)
    plain = DiffGATConv(8, 4, heads=2, num_relations=3)
    plain.load_state_dict(conv.state_dict())
    for _ in range(2):
        out = conv(x, edge_index, edge_type)
        out.sum().backward()
        torch.testing.assert_close(out, plain(x, edge_index, edge_type))
    # Like GCNConv(cached=True): a later graph is not looked at (its edge types are those of
    # the first graph's edges) ...
    other = edge_index[:, :-3]
    torch.testing.assert_close(conv(x, other, edge_type), out)
    # ... until reset_parameters() forgets the cache.
    conv.reset_parameters()
    plain.load_state_dict(conv.state_dict())
    torch.testing.assert_close(conv(x, other, edge_type[:-3]),
                               plain(x, other, edge_type[:-3]))


def test_edge_index_keeps_what_the_kernels_derive():
    # Layers that share one EdgeIndex object derive the per-head pattern and its transpose
    # once; the results and gradients are those of a plain edge_index.
    torch.manual_seed(5)
    edge_index, edge_type, _ = graph(num_nodes=9, num_edges=30)
    shared, edge_type_sorted = target_sorted_edge_index(edge_index, edge_type, (9, 9))
    x = torch.randn(9, 8, requires_grad=True)
    convs = [perturbed(DiffGATConv(8, 4, heads=2, num_relations=3), seed=s) for s in (0, 1)]
    outs = [conv(x, shared, edge_type_sorted) for conv in convs]
    grad = torch.autograd.grad(sum(o.square().sum() for o in outs), x)[0]
    patterns = shared._diffgat_patterns
    assert ('heads', 2) in patterns and ('transpose', 18, 18) in patterns
    expected = [conv(x, edge_index, edge_type) for conv in convs]
    for o, e in zip(outs, expected):
        torch.testing.assert_close(o, e, **CLOSE)
    torch.testing.assert_close(grad, torch.autograd.grad(
        sum(o.square().sum() for o in expected), x)[0], **CLOSE)


def test_message_hooks_see_the_signed_coefficients_in_input_order():
    # With a message hook the layer aggregates through message(): same output and
    # gradients as the CSR kernel, and the hook gets alpha as return_attention_weights does.
    torch.manual_seed(6)
    edge_index, edge_type, _ = graph(num_nodes=8, num_edges=24)
    perm = torch.randperm(edge_index.size(1))  # input edges not sorted by target
    edge_index, edge_type = edge_index[:, perm], edge_type[perm]
    x = torch.randn(8, 8, requires_grad=True)
    conv = perturbed(DiffGATConv(8, 4, heads=2, num_relations=3))
    out, (_, alpha) = conv(x, edge_index, edge_type, return_attention_weights=True)
    grad = torch.autograd.grad(out.square().sum(), x)[0]
    seen = []
    handle = conv.register_message_forward_hook(
        lambda module, inputs, output: seen.append(inputs[0]['alpha']))
    out_hooked = conv(x, edge_index, edge_type)
    handle.remove()
    torch.testing.assert_close(out_hooked, out, **CLOSE)
    torch.testing.assert_close(torch.autograd.grad(out_hooked.square().sum(), x)[0], grad,
                               **CLOSE)
    assert len(seen) == 1
    torch.testing.assert_close(seen[0], alpha)
    assert (alpha < 0).any()  # signed


class TwoLayers(torch.nn.Module):
    def __init__(self, hidden, out, heads=2, in_channels=-1):
        # in_channels=(-1, -1): separate source and target projections, as to_hetero needs
        # for edge types between node types of different widths (as for GATConv).
        super().__init__()
        self.conv1 = DiffGATConv(in_channels, hidden, heads=heads)
        self.conv2 = DiffGATConv(in_channels, out, heads=1)

    def forward(self, x, edge_index):
        return self.conv2(F.gelu(self.conv1(x, edge_index)), edge_index)


def hetero_data(seed=0):
    gen = torch.Generator().manual_seed(seed)
    data = HeteroData()
    data['paper'].x = torch.randn(7, 6, generator=gen)
    data['author'].x = torch.randn(5, 4, generator=gen)
    data['paper', 'cites', 'paper'].edge_index = torch.cat(
        [torch.randint(0, 7, (2, 12), generator=gen), torch.arange(7).repeat(2, 1)], 1)
    writes = torch.stack([torch.randint(0, 5, (10, ), generator=gen),
                          torch.randint(0, 7, (10, ), generator=gen)])
    data['author', 'writes', 'paper'].edge_index = writes
    data['paper', 'rev_writes', 'author'].edge_index = writes.flip(0)
    return data


def test_to_hetero(one_thread):
    torch.manual_seed(7)
    data = hetero_data()
    model = to_hetero(TwoLayers(8, 4, in_channels=(-1, -1)), data.metadata(), aggr='sum')
    out = model(data.x_dict, data.edge_index_dict)
    assert out['paper'].shape == (7, 4) and out['author'].shape == (5, 4)

    # Independently: every edge type's copy of a layer on (x_src, x_dst), summed per target.
    def layer(name, x_dict):
        result = {}
        for src, rel, dst in data.edge_types:
            conv = getattr(model, name)[f'{src}__{rel}__{dst}']
            h = conv((x_dict[src], x_dict[dst]), data[src, rel, dst].edge_index)
            result[dst] = result.get(dst, 0) + h
        return result

    h = {k: F.gelu(v) for k, v in layer('conv1', data.x_dict).items()}
    expected = layer('conv2', h)
    for node_type in out:
        torch.testing.assert_close(out[node_type], expected[node_type], **CLOSE)


def test_hetero_conv():
    torch.manual_seed(8)
    data = hetero_data(1)
    convs = {et: DiffGATConv((-1, -1), 4, heads=2) for et in data.edge_types}
    out = HeteroConv(convs, aggr='sum')(data.x_dict, data.edge_index_dict)
    for dst in ('paper', 'author'):
        expected = sum(conv((data[s].x, data[d].x), data[s, r, d].edge_index)
                       for (s, r, d), conv in convs.items() if d == dst)
        torch.testing.assert_close(out[dst], expected, **CLOSE)


def test_attention_explainer_uses_the_signed_coefficients(one_thread):
    torch.manual_seed(9)
    edge_index, _, _ = graph(num_nodes=10, num_edges=30, seed=3)
    perm = torch.randperm(edge_index.size(1))
    edge_index = edge_index[:, perm]
    x = torch.randn(10, 5)
    model = TwoLayers(6, 4).eval()
    model(x, edge_index)  # materialise the lazy layers
    explainer = Explainer(model, AttentionExplainer(reduce='max'), explanation_type='model',
                          edge_mask_type='object',
                          model_config=dict(mode='multiclass_classification',
                                            task_level='node', return_type='raw'))
    index = 3
    explanation = explainer(x, edge_index, index=index)

    # Independently: the layers' signed coefficients, max over heads, then over layers, zero
    # outside the 2-hop neighbourhood of the explained node.
    _, (_, alpha1) = model.conv1(x, edge_index, return_attention_weights=True)
    h = F.gelu(model.conv1(x, edge_index))
    _, (_, alpha2) = model.conv2(h, edge_index, return_attention_weights=True)
    expected = torch.stack([alpha1.max(dim=-1).values, alpha2[:, 0]], -1).max(-1).values
    _, _, _, hard = k_hop_subgraph(index, 2, edge_index, num_nodes=10)
    expected = expected * hard
    torch.testing.assert_close(explanation.edge_mask, expected)
    assert (explanation.edge_mask[hard] < 0).any() or (alpha1 < 0).any()


def test_gnn_explainer_masks_the_messages(one_thread):
    # In explain mode (edge masks set by GNNExplainer) the layer aggregates through message(),
    # so PyG can apply the mask: an all-ones mask leaves the output as it is, a zero mask on
    # an edge removes that message.
    from torch_geometric.explain.algorithm.utils import clear_masks, set_masks
    torch.manual_seed(12)
    edge_index, _, _ = graph(num_nodes=8, num_edges=20)
    x = torch.randn(8, 5)
    conv = perturbed(DiffGATConv(5, 4, heads=2)).eval()
    out = conv(x, edge_index)
    set_masks(conv, torch.full((edge_index.size(1), ), 1e4), edge_index, apply_sigmoid=True)
    torch.testing.assert_close(conv(x, edge_index), out, **CLOSE)
    keep = torch.ones(edge_index.size(1), dtype=torch.bool)
    keep[3] = False
    set_masks(conv, keep.float(), edge_index, apply_sigmoid=False)
    masked = conv(x, edge_index)
    clear_masks(conv)
    _, (_, alpha) = conv(x, edge_index, return_attention_weights=True)
    h = conv.lin(x).view(-1, 2, 4)
    # The unmasked aggregate minus edge 3's message, normalised as the layer does.
    agg = torch.zeros(8, 2, 4).index_add_(0, edge_index[1, keep],
                                          alpha[keep].unsqueeze(-1) * h[edge_index[0, keep]])
    agg = F.layer_norm(agg, (4, )) * conv.norm_weight + conv.norm_bias
    expected = (agg * (1 - conv.lambda_init)).reshape(8, -1) + conv.bias
    torch.testing.assert_close(masked, expected, **CLOSE)


def test_compile(one_thread):
    torch.manual_seed(10)
    edge_index, edge_type, _ = graph()
    x = torch.randn(6, 8)
    conv = DiffGATConv(8, 4, heads=2, num_relations=3).eval()
    expected = conv(x, edge_index, edge_type)
    # The eager backend: TorchDynamo's capture (with graph breaks around the sparse kernels)
    # without code generation, which would cost minutes of a CPU test run.
    compiled = torch.compile(conv, dynamic=True, backend='eager')
    torch.testing.assert_close(compiled(x, edge_index, edge_type), expected, **CLOSE)


def test_last_layer_of_a_classifier_learns(one_thread):
    # The experiment: separable data, a two-layer classifier ending in DiffGATConv,
    # 100 Adam steps at lr 1e-2. With a GELU and LayerNorm in the layer's output the loss
    # stopped at 0.77; as a PyG layer its output reaches any logit.
    gen = torch.Generator().manual_seed(11)
    torch.manual_seed(11)
    num_nodes, num_classes = 60, 4
    x = torch.randn(num_nodes, 8, generator=gen)
    y = (x @ torch.randn(8, num_classes, generator=gen)).argmax(dim=-1)
    edge_index = torch.arange(num_nodes).repeat(2, 1)  # self-loops: separable per node
    model = TwoLayers(8, num_classes)
    model(x, edge_index)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(100):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x, edge_index), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[0] > 1.0 and losses[-1] < 0.35
