import itertools

import pytest
import torch
from torch_geometric.data import Batch, HeteroData
from torch_geometric.loader import DataLoader

from dsgdn_pyg.data import CrossModalGraph, cross_modal_edge_types, cross_modal_edges
from dsgdn_pyg.data.corpus import make_dialogue

SUBSETS = [''.join(s) for r in (1, 2, 3) for s in itertools.combinations('tav', r)]


def brute_force_relation(i, j, speakers):
    # The AMB-DSGDN paper's eq. (7)-(8) (section 4.4), written out per pair.
    if i == j:
        return 1
    same = speakers[i] == speakers[j]
    if j < i:
        return 2 if same else 5
    return 3 if same else 4


def brute_force_edges(speakers, window, modalities, cross_window):
    """Set of (src_type, rel, dst_type, j, i, relation id) by a double loop over utterances."""
    length = len(speakers)
    edges = set()
    for src_m in modalities:
        for dst_m in modalities:
            limit = window if src_m == dst_m else cross_window
            rel = 'within' if src_m == dst_m else 'cross'
            for i in range(length):
                for j in range(length):
                    if abs(i - j) <= limit:
                        edges.add((src_m, rel, dst_m, j, i, brute_force_relation(i, j, speakers)))
    return edges


def edge_set(data: HeteroData):
    out = set()
    for edge_type in data.edge_types:
        store = data[edge_type]
        assert store.edge_index.size(1) == store.edge_type.numel()
        for (j, i), r in zip(store.edge_index.t().tolist(), store.edge_type.tolist()):
            out.add((*edge_type, j, i, r))
        # No duplicate edges.
        assert store.edge_index.size(1) == len({tuple(e) for e in store.edge_index.t().tolist()})
    return out


def random_dialogue(g, length, num_speakers, modalities, dialogue_id='d'):
    speakers = torch.randint(0, num_speakers, (length, ), generator=g)
    y = torch.randint(-1, 4, (length, ), generator=g)
    dims = {'t': 5, 'a': 3, 'v': 4}
    features = {m: torch.randn(length, dims[m], generator=g) for m in modalities}
    return make_dialogue(dialogue_id, speakers, y, features)


def test_matches_brute_force_definition():
    g = torch.Generator().manual_seed(0)
    for trial in range(60):
        length = int(torch.randint(1, 12, (1, ), generator=g))
        num_speakers = int(torch.randint(1, 4, (1, ), generator=g))
        window = int(torch.randint(0, 14, (1, ), generator=g))
        cross_window = int(torch.randint(0, 4, (1, ), generator=g))
        modalities = SUBSETS[trial % len(SUBSETS)]
        data = random_dialogue(g, length, num_speakers, 'tav')
        out = CrossModalGraph(window, list(modalities), cross_window)(data)
        assert sorted(out.node_types) == sorted(modalities)
        expected = brute_force_edges(data.speaker.tolist(), window, modalities, cross_window)
        assert edge_set(out) == expected, (length, window, cross_window, modalities)
        # Every ordered pair of modalities has its own edge type, and nothing else exists.
        assert set(out.edge_types) == set(cross_modal_edge_types(modalities))
        assert len(out.edge_types) == len(modalities)**2


def test_node_features_and_globals():
    g = torch.Generator().manual_seed(1)
    data = random_dialogue(g, 6, 2, 'tv', dialogue_id='abc')
    out = CrossModalGraph(2)(data)  # all modalities the dialogue has
    assert out.node_types == ['t', 'v']
    assert torch.equal(out['t'].x, data.x_t) and torch.equal(out['v'].x, data.x_v)
    assert out['t'].num_nodes == 6
    assert torch.equal(out.y, data.y) and torch.equal(out.speaker, data.speaker)
    assert out.dialogue_id == 'abc' and out.num_utterances == 6
    # The input is not modified.
    assert 'edge_index' not in data


def test_edge_dict_function_matches_transform():
    speakers = torch.tensor([0, 1, 1, 0, 2])
    edges = cross_modal_edges(speakers, 1, ['v', 't'], cross_window=2)
    # Modalities come out in the canonical t, a, v order.
    assert list(edges) == [('t', 'within', 't'), ('v', 'within', 'v'),
                           ('t', 'cross', 'v'), ('v', 'cross', 't')]
    data = make_dialogue('x', speakers, [0] * 5, {'t': torch.zeros(5, 2), 'v': torch.zeros(5, 2)})
    out = CrossModalGraph(1, ['t', 'v'], 2)(data)
    for edge_type, (edge_index, edge_type_ids) in edges.items():
        assert torch.equal(out[edge_type].edge_index, edge_index)
        assert torch.equal(out[edge_type].edge_type, edge_type_ids)


def test_batching_keeps_labels_ids_and_offsets_edges():
    g = torch.Generator().manual_seed(2)
    lengths = [3, 1, 7, 4, 5]
    transform = CrossModalGraph(2, ['t', 'a', 'v'], cross_window=1)
    dialogues = [transform(random_dialogue(g, n, 3, 'tav', dialogue_id=f'd{k}'))
                 for k, n in enumerate(lengths)]
    for batch in (Batch.from_data_list(dialogues),
                  next(iter(DataLoader(dialogues, batch_size=len(dialogues))))):
        assert batch.num_graphs == len(lengths)
        assert batch.dialogue_id == [f'd{k}' for k in range(len(lengths))]
        assert torch.equal(batch.y, torch.cat([d.y for d in dialogues]))
        assert torch.equal(batch.speaker, torch.cat([d.speaker for d in dialogues]))
        assert batch.num_utterances.tolist() == lengths
        offsets = [0] + list(itertools.accumulate(lengths))[:-1]
        for m in 'tav':
            assert torch.equal(batch[m].x, torch.cat([d[m].x for d in dialogues]))
            expected_batch = torch.repeat_interleave(torch.arange(len(lengths)),
                                                     torch.tensor(lengths))
            assert torch.equal(batch[m].batch, expected_batch)
        # Each edge type's edges are the per-dialogue edges shifted by the dialogue offset.
        for edge_type in batch.edge_types:
            expected = torch.cat([d[edge_type].edge_index + off
                                  for d, off in zip(dialogues, offsets)], dim=1)
            assert torch.equal(batch[edge_type].edge_index, expected)
            assert torch.equal(batch[edge_type].edge_type,
                               torch.cat([d[edge_type].edge_type for d in dialogues]))
        moved = batch.to('cpu')
        assert moved.num_graphs == len(lengths) and moved.dialogue_id == batch.dialogue_id


def test_bad_input():
    g = torch.Generator().manual_seed(3)
    data = random_dialogue(g, 4, 2, 'ta')
    with pytest.raises(ValueError, match='needs'):
        CrossModalGraph(2, ['t', 'v'])(data)
    with pytest.raises(ValueError, match="'window'"):
        CrossModalGraph(-1)
    with pytest.raises(ValueError, match="'cross_window'"):
        CrossModalGraph(1, cross_window=1.5)
    with pytest.raises(ValueError, match="'modalities'"):
        CrossModalGraph(1, ['t', 'x'])
    with pytest.raises(ValueError, match="'modalities'"):
        cross_modal_edges(data.speaker, 1, [])
    with pytest.raises(ValueError, match="'cross_window'"):
        cross_modal_edges(data.speaker, 1, ['t', 'a'], cross_window=-2)
    assert 'cross_window=3' in repr(CrossModalGraph(1, ['t'], 3))
