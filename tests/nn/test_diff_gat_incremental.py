import pytest
import torch

from dsgdn_pyg.data import NUM_RELATIONS
from dsgdn_pyg.nn import DiffGATConv
from dsgdn_pyg.nn.diff_gat_incremental import fold_attention


def test_fold_attention_is_the_score_of_the_projection():
    # The folded rows give every head's and branch's score a_hb . (W x)_hb without the
    # [N, H, C] projection; against that product written out head by head, branch by branch.
    # float64: the two orders of summation agree to rounding.
    gen = torch.Generator().manual_seed(0)
    heads, channels, in_channels = 3, 8, 5
    weight = torch.randn(heads * channels, in_channels, generator=gen, dtype=torch.float64)
    att = torch.randn(1, heads, 2, channels // 2, generator=gen, dtype=torch.float64)
    x = torch.randn(7, in_channels, generator=gen, dtype=torch.float64)
    projected = x @ weight.t()  # [N, H * C]; head h, branch b: columns h*C + b*C/2 + [0, C/2)
    expected = torch.empty(7, heads * 2, dtype=torch.float64)
    for h in range(heads):
        for b in range(2):
            start = h * channels + b * channels // 2
            expected[:, 2 * h + b] = projected[:, start:start + channels // 2] @ att[0, h, b]
    torch.testing.assert_close(x @ fold_attention(weight, att).t(), expected,
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize('heads,concat,relations,bias', [
    (2, True, True, False), (3, False, True, True), (1, True, False, True)])
def test_attend_on_projected_rows_equals_forward(heads, concat, relations, bias):
    # attend() (the dense single-target path of streaming) against the layer's ordinary
    # sparse forward on the same target and edges, for edge subsets incl. none at all.
    torch.manual_seed(0)
    conv = DiffGATConv(8, 6, heads=heads, concat=concat, bias=bias,
                       num_relations=NUM_RELATIONS if relations else None).eval()
    if bias:
        torch.nn.init.normal_(conv.bias)
    torch.nn.init.normal_(conv.norm_bias)
    gen = torch.Generator().manual_seed(1)
    num_sources = 7
    x_src = torch.randn(num_sources, 8, generator=gen)
    x_dst = torch.randn(1, 8, generator=gen)
    edge_type = torch.randint(0, NUM_RELATIONS, (num_sources, ), generator=gen)
    terms = conv.inference_terms()
    rows_src, row_dst = conv.project(x_src, terms), conv.project(x_dst)
    assert rows_src.shape == (num_sources, heads * 6 + 4 * heads)
    masks = [torch.rand(num_sources, generator=gen) < 0.5 for _ in range(4)]
    masks += [torch.ones(num_sources, dtype=torch.bool),
              torch.zeros(num_sources, dtype=torch.bool)]
    for mask in masks:
        src = mask.nonzero().view(-1)
        edge_index = torch.stack([src, torch.zeros_like(src)])
        expected = conv((x_src, x_dst), edge_index, edge_type[src] if relations else None)
        got = conv.attend(rows_src, row_dst, mask, edge_type if relations else None, terms)
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    # Without a mask every row is a source; the terms default to the current parameters.
    everyone = torch.stack([torch.arange(num_sources),
                            torch.zeros(num_sources, dtype=torch.long)])
    torch.testing.assert_close(
        conv.attend(rows_src, row_dst, edge_type=edge_type if relations else None),
        conv((x_src, x_dst), everyone, edge_type if relations else None), atol=1e-5, rtol=1e-5)


def test_inference_terms_need_one_initialised_projection():
    with pytest.raises(ValueError, match='one projection'):
        DiffGATConv((4, 5), 6).inference_terms()
    with pytest.raises(ValueError, match='initialised'):
        DiffGATConv(-1, 6).inference_terms()
    conv = DiffGATConv(4, 6, num_relations=3)
    with pytest.raises(ValueError, match='edge_type'):
        conv.attend(conv.project(torch.randn(2, 4)), conv.project(torch.randn(1, 4)))
