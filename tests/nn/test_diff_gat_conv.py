import math

import pytest
import torch
import torch.nn.functional as F
from torch_geometric.data import Batch, Data
from torch_geometric.utils import to_dense_batch

from dsgdn_pyg.data import NUM_RELATIONS, dialogue_edges
from dsgdn_pyg.nn import DenseDiffGATConv, DiffGATConv
from dsgdn_pyg.nn.diff_gat_conv import lambda_init_for_depth

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
    rel = torch.zeros(len(sizes), max(sizes), max(sizes), dtype=torch.long)
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
                             dtype):
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

    weight = torch.randn(out.shape, generator=gen, dtype=dtype) / math.sqrt(out.numel())
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
           - math.exp(float(conv.lambda_q2.detach() @ conv.lambda_k2.detach().t())) + lambda_init_for_depth(1))
    torch.testing.assert_close(alpha[:, 0], expected[0] - lam * expected[1])


def test_lambda_init():
    assert lambda_init_for_depth(1) == pytest.approx(0.8 - 0.6 * math.exp(-0.3))
    assert lambda_init_for_depth(1) == pytest.approx(0.3555, abs=1e-4)


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
    # The sorted CSR and the value checks are built once per edge_index and reused by later
    # calls; an in-place edit must invalidate them.
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


def bipartite_reference(conv, x_src, x_dst, edge_index, edge_type):
    """Node-by-node evaluation of the layer's formula for bipartite input."""
    H, C = conv.heads, conv.out_channels
    h_src = conv.lin_src(x_src).view(-1, H, 2, C // 2)
    h_dst = conv.lin_dst(x_dst).view(-1, H, 2, C // 2)
    lam = conv.differential_lambda()
    rel = conv.relation_scores() if conv.rel_emb is not None else None
    rows = []
    for i in range(x_dst.size(0)):
        nbr = (edge_index[1] == i).nonzero().view(-1)
        src = edge_index[0, nbr]
        score = (h_dst[i] * conv.att_dst[0]).sum(-1) + (h_src[src] * conv.att_src[0]).sum(-1)
        if rel is not None:
            score = score + rel[edge_type[nbr]]
        alpha = torch.softmax(F.leaky_relu(score, 0.2), dim=0)  # [k, H, 2]
        alpha = alpha[..., 0] - lam * alpha[..., 1]
        agg = (alpha.unsqueeze(-1) * h_src[src].reshape(-1, H, C)).sum(0)  # [H, C]
        agg = F.layer_norm(agg, (C, )) * conv.norm_weight + conv.norm_bias
        rows.append(F.gelu(agg * (1 - conv.lambda_init)).reshape(-1))
    return torch.stack(rows)


def test_bipartite_input():
    torch.manual_seed(4)
    conv = DiffGATConv((5, 7), 4, heads=2, num_relations=3).double()
    x_src = torch.randn(6, 5, dtype=torch.float64)
    x_dst = torch.randn(3, 7, dtype=torch.float64)
    edge_index = torch.tensor([[0, 1, 2, 3, 4, 5, 0, 2], [0, 0, 1, 1, 1, 2, 2, 2]])
    edge_type = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    out = conv((x_src, x_dst), edge_index, edge_type)
    assert out.shape == (3, 8)
    torch.testing.assert_close(out, bipartite_reference(conv, x_src, x_dst, edge_index,
                                                        edge_type))
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


def test_trains_in_a_pyg_model():
    """A couple of optimisation steps reduce the loss: gradients reach every parameter."""
    torch.manual_seed(7)
    edge_index, edge_type = dialogue_edges(torch.randint(0, 2, (40, )), 3)
    x = torch.randn(40, 6)
    y = torch.randint(0, 3, (40, ))
    conv = DiffGATConv(6, 8, heads=2, num_relations=NUM_RELATIONS)
    head = torch.nn.Linear(16, 3)
    opt = torch.optim.Adam(list(conv.parameters()) + list(head.parameters()), lr=0.01)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = F.cross_entropy(head(conv(x, edge_index, edge_type)), y)
        loss.backward()
        for name, p in conv.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]
