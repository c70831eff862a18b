import itertools

import pytest
import torch
from torch_geometric.data import Batch, Data

from dsgdn_pyg.data import DialogueGraph, dialogue_edges, relation_subgraph


def brute_force_edges(speakers, window):
    """The definition of the AMB-DSGDN paper's eq. (7)-(8) (section 4.4), pair by pair."""
    edges = {}
    n = len(speakers)
    for i in range(n):
        for j in range(n):
            if abs(i - j) > window:
                continue
            if i == j:
                rel = 1
            elif speakers[i] == speakers[j]:
                rel = 2 if j < i else 3
            else:
                rel = 4 if j > i else 5
            edges[(j, i)] = rel
    return edges


def as_dict(edge_index, edge_type):
    pairs = [tuple(p) for p in edge_index.t().tolist()]
    assert len(pairs) == len(set(pairs)), 'duplicate edges'
    return dict(zip(pairs, edge_type.tolist()))


@pytest.mark.parametrize('seed', range(40))
def test_dialogue_edges_equal_brute_force(seed):
    gen = torch.Generator().manual_seed(seed)
    length = int(torch.randint(1, 60, (1, ), generator=gen))
    num_speakers = int(torch.randint(1, 10, (1, ), generator=gen))
    window = int(torch.randint(0, 26, (1, ), generator=gen))
    speakers = torch.randint(0, num_speakers, (length, ), generator=gen)
    edge_index, edge_type = dialogue_edges(speakers, window)
    assert edge_index.dtype == torch.long and edge_type.dtype == torch.long
    assert as_dict(edge_index, edge_type) == brute_force_edges(speakers.tolist(), window)
    # Sorted by target, then source: a valid CSR order.
    key = edge_index[1] * length + edge_index[0]
    assert torch.equal(key, key.sort().values)


@pytest.mark.parametrize('seed', range(10))
def test_causal_edges_are_the_past_and_self_loops(seed):
    gen = torch.Generator().manual_seed(100 + seed)
    length = int(torch.randint(1, 40, (1, ), generator=gen))
    window = int(torch.randint(0, 8, (1, ), generator=gen))
    speakers = torch.randint(0, 3, (length, ), generator=gen)
    edge_index, edge_type = dialogue_edges(speakers, window, causal=True)
    expected = {pair: rel for pair, rel in brute_force_edges(speakers.tolist(), window).items()
                if pair[0] <= pair[1]}
    assert as_dict(edge_index, edge_type) == expected
    assert set(edge_type.tolist()) <= {1, 2, 5}
    key = edge_index[1] * length + edge_index[0]
    assert bool((key[1:] > key[:-1]).all())
    data = DialogueGraph(window, context_window=2, causal=True)(Data(speaker=speakers))
    assert set(data.intra_edge_type.tolist()) <= {1, 2}
    assert set(data.inter_edge_type.tolist()) <= {1, 5}
    src, dst = data.context_edge_index
    assert bool((src <= dst).all() and (dst - src <= 2).all())
    assert src.numel() == sum(min(i, 2) + 1 for i in range(length))


def test_self_loops_once_and_window_zero():
    edge_index, edge_type = dialogue_edges(torch.tensor([0, 1, 1, 2]), 0)
    assert edge_index.tolist() == [[0, 1, 2, 3], [0, 1, 2, 3]]
    assert edge_type.tolist() == [1, 1, 1, 1]


def test_single_utterance():
    edge_index, edge_type = dialogue_edges(torch.tensor([3]), 20)
    assert edge_index.tolist() == [[0], [0]]
    assert edge_type.tolist() == [1]


def test_edge_count_is_linear_in_window():
    length, window = 1000, 20
    edge_index, _ = dialogue_edges(torch.zeros(length, dtype=torch.long), window)
    expected = sum(min(length - 1, i + window) - max(0, i - window) + 1 for i in range(length))
    assert edge_index.size(1) == expected


def test_relation_subgraphs():
    speakers = torch.tensor([0, 1, 0, 0, 2, 1])
    edge_index, edge_type = dialogue_edges(speakers, 3)
    reference = brute_force_edges(speakers.tolist(), 3)
    for name, ids in (('intra', {1, 2, 3}), ('inter', {1, 4, 5})):
        sub_index, sub_type = relation_subgraph(edge_index, edge_type, name)
        expected = {pair: rel for pair, rel in reference.items() if rel in ids}
        assert as_dict(sub_index, sub_type) == expected
    with pytest.raises(ValueError, match="'subgraph'"):
        relation_subgraph(edge_index, edge_type, 'both')


def test_bad_input():
    with pytest.raises(ValueError, match="'window'"):
        dialogue_edges(torch.tensor([0, 1]), -1)
    with pytest.raises(ValueError, match="'speakers'"):
        dialogue_edges(torch.tensor([], dtype=torch.long), 2)
    with pytest.raises(ValueError, match="'speakers'"):
        dialogue_edges(torch.zeros(2, 2, dtype=torch.long), 2)
    with pytest.raises(ValueError, match="'window'"):
        DialogueGraph(-3)


def test_batch_keeps_dialogues_separate():
    transform = DialogueGraph(window=4)
    dialogues = [
        transform(Data(speaker=torch.tensor(spk), num_nodes=len(spk)))
        for spk in ([0, 1, 0], [1, 1, 0, 2, 2, 0, 1], [0])
    ]
    batch = Batch.from_data_list(dialogues)
    src, dst = batch.edge_index
    assert torch.equal(batch.batch[src], batch.batch[dst])
    for name in ('intra', 'inter'):
        sub = batch[f'{name}_edge_index']
        assert torch.equal(batch.batch[sub[0]], batch.batch[sub[1]])
    # The batched graph equals the per-dialogue graphs shifted by their offsets.
    for k, data in enumerate(dialogues):
        offset = int(batch.ptr[k])
        mask = batch.batch[dst] == k
        assert torch.equal(batch.edge_index[:, mask] - offset, data.edge_index)
        assert torch.equal(batch.edge_type[mask], data.edge_type)


@pytest.mark.parametrize('seed', range(8))
def test_banded_csr_matches_brute_force(seed):
    from dsgdn_pyg.data import banded_csr
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, 15, (int(torch.randint(1, 5, (1, ), generator=gen)), ),
                            generator=gen).tolist()
    window = int(torch.randint(0, 6, (1, ), generator=gen))
    ptr = torch.tensor([0] + lengths).cumsum(0)
    for causal in (False, True):
        crow, col = banded_csr(ptr, window, causal)
        expected = []
        for b in range(len(lengths)):
            for i in range(int(ptr[b]), int(ptr[b + 1])):
                expected.append([j for j in range(int(ptr[b]), int(ptr[b + 1]))
                                 if abs(i - j) <= window and (j <= i or not causal)])
        assert crow.tolist() == [0] + list(itertools.accumulate(len(r) for r in expected))
        assert col.tolist() == [j for row in expected for j in row]
    with pytest.raises(ValueError, match='window'):
        banded_csr(ptr, -1)


@pytest.mark.parametrize('seed', range(6))
def test_dense_dialogue_relations_matches_the_edge_list(seed):
    from torch_geometric.utils import to_dense_adj, to_dense_batch

    from dsgdn_pyg.data import dense_dialogue_relations
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, 20, (3, ), generator=gen).tolist()
    window = int(torch.randint(0, 8, (1, ), generator=gen))
    speakers = [torch.randint(0, 3, (n, ), generator=gen) for n in lengths]
    batch = torch.repeat_interleave(torch.arange(3), torch.tensor(lengths))
    speaker, mask = to_dense_batch(torch.cat(speakers), batch)
    rel = dense_dialogue_relations(speaker, mask, window)
    for b, spk in enumerate(speakers):
        edge_index, edge_type = dialogue_edges(spk, window)
        # to_dense_adj puts the source in dim 0; the dense layout is [target, source].
        adj = to_dense_adj(edge_index, edge_attr=edge_type, max_num_nodes=speaker.size(1))[0]
        assert torch.equal(rel[b], adj.t().long())


def test_dialogue_graph_context_edges_in_a_batch():
    transform = DialogueGraph(window=2, context_window=1)
    batch = Batch.from_data_list([transform(Data(speaker=torch.tensor(s), num_nodes=len(s)))
                                  for s in ([0, 1, 0], [1, 1])])
    pairs = sorted(map(tuple, batch.context_edge_index.t().tolist()))
    # Brute force over the batch: |i - j| <= 1 inside each dialogue (nodes 0-2 and 3-4).
    expected = sorted((j, i) for lo, hi in ((0, 3), (3, 5)) for i in range(lo, hi)
                      for j in range(lo, hi) if abs(i - j) <= 1)
    assert pairs == expected
    assert 'context_window=1' in repr(transform)
    with pytest.raises(ValueError, match='context_window'):
        DialogueGraph(2, context_window=-1)
