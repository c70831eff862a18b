import itertools

import pytest
import torch
import torch.nn.functional as F
from torch_geometric.data import Batch

from dsgdn_pyg.data import CrossModalGraph
from dsgdn_pyg.data.corpus import make_dialogue
from dsgdn_pyg.datasets import load_corpus
from dsgdn_pyg.loss import multimodal_loss
from dsgdn_pyg.models import MODELS, SyncTVA, build_model, dialogue_transform

DIMS = {'t': 10, 'a': 6, 'v': 5}
SUBSETS = [''.join(s) for r in (1, 2, 3) for s in itertools.combinations('tav', r)]


pytestmark = pytest.mark.usefixtures('one_thread')


def dialogues(seed=0, lengths=(3, 1, 7, 4)):
    g = torch.Generator().manual_seed(seed)
    return [make_dialogue(f'd{k}', torch.randint(0, 3, (n, ), generator=g),
                          torch.randint(-1, 4, (n, ), generator=g),
                          {m: torch.randn(n, d, generator=g) for m, d in DIMS.items()})
            for k, n in enumerate(lengths)]


def batch_for(model, data_list, window=2):
    transform = dialogue_transform('sync-tva', window, model.config())
    return Batch.from_data_list([transform(d) for d in data_list])


@pytest.mark.parametrize('modalities', SUBSETS)
@pytest.mark.parametrize('conv', ['diffgat', 'gat'])
def test_shapes_for_every_modality_subset(modalities, conv):
    torch.manual_seed(0)
    model = SyncTVA({m: DIMS[m] for m in modalities}, num_classes=4, num_speakers=3,
                    hidden_channels=16, conv=conv, cross_window=1, dropout=0.2)
    assert model.modalities == [m for m in 'tav' if m in modalities]
    batch = batch_for(model, dialogues())
    out = model(batch)
    n = sum((3, 1, 7, 4))
    assert out.fused.shape == (n, 4)
    assert set(out.logits) == set(modalities)
    assert all(v.shape == (n, 4) for v in out.logits.values())
    assert out.keep.dtype == torch.bool and out.keep.shape == (n, ) and bool(out.keep.all())
    loss, _ = multimodal_loss(out.fused, out.logits, batch.y, out.keep)
    loss.backward()
    # Every parameter is used (the fusion attention too, when there are >= 2 modalities).
    unused = [name for name, p in model.named_parameters()
              if p.grad is None and not (len(modalities) == 1 and name.startswith('fusion'))]
    assert unused == []


def test_dialogues_in_a_batch_do_not_interact():
    torch.manual_seed(0)
    model = SyncTVA(DIMS, 4, 3, hidden_channels=16, cross_window=2).eval()
    data_list = dialogues(1)
    together = model(batch_for(model, data_list)).fused
    alone = torch.cat([model(batch_for(model, [d])).fused for d in data_list])
    assert torch.allclose(together, alone, atol=1e-5)
    # An unbatched HeteroData (no batch vector) is one dialogue.
    transform = dialogue_transform('sync-tva', 2, model.config())
    assert torch.allclose(model(transform(data_list[2])).fused, alone[4:11], atol=1e-5)


def test_graph_and_cross_modal_edges_are_used():
    torch.manual_seed(0)
    model = SyncTVA(DIMS, 4, 3, hidden_channels=16, msde=False).eval()
    data = dialogues(2, lengths=(6, ))[0]
    base = model(batch_for(model, [data], window=2)).fused
    # Changing the audio of utterance 0 changes the fused prediction of utterance 2 only
    # through the graph (text of 2 attends to text of 0..4, which attends to audio of 0).
    changed = data.clone()
    changed.x_a = data.x_a.clone()
    changed.x_a[0] += 5.0
    out = model(batch_for(model, [changed], window=2)).fused
    assert not torch.allclose(out[2], base[2])
    # Without graph layers (and without MSDE's dialogue context) utterances are independent.
    flat = SyncTVA(DIMS, 4, 3, hidden_channels=16, num_layers=0, msde=False).eval()
    a = flat(batch_for(flat, [data])).fused
    b = flat(batch_for(flat, [changed])).fused
    assert torch.allclose(a[1:], b[1:]) and not torch.allclose(a[0], b[0])


def test_config_rebuilds_the_same_model():
    torch.manual_seed(0)
    model = SyncTVA(DIMS, 4, 3, hidden_channels=16, conv='gat', cross_window=1, num_layers=1,
                    fusion_heads=2).eval()
    config = model.config()
    assert config == {'feature_dims': DIMS, 'num_classes': 4, 'num_speakers': 3,
                      'hidden_channels': 16, 'heads': 2, 'dropout': 0.5, 'conv': 'gat',
                      'cross_window': 1, 'num_layers': 1, 'fusion_heads': 2, 'msde': True,
                      'msde_reduction': 4}
    other = build_model('sync-tva', **config).eval()
    assert isinstance(other, SyncTVA) and MODELS['sync-tva'] is SyncTVA
    other.load_state_dict(model.state_dict())
    batch = batch_for(model, dialogues())
    assert torch.equal(model(batch).fused, other(batch).fused)
    model.set_epoch(5)  # a no-op, part of the interface
    before = [p.detach().clone() for p in model.parameters()]
    model.reset_parameters()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert repr(model).startswith('SyncTVA(modalities=tav, hidden=16')


def test_bad_arguments_and_inputs():
    with pytest.raises(ValueError, match='feature_dims'):
        SyncTVA({'x': 3}, 4, 2)
    with pytest.raises(ValueError, match="'conv'"):
        SyncTVA(DIMS, 4, 2, conv='gcn')
    with pytest.raises(ValueError, match="'hidden_channels'"):
        SyncTVA(DIMS, 4, 2, hidden_channels=15)
    with pytest.raises(ValueError, match="'fusion_heads'"):
        SyncTVA(DIMS, 4, 2, hidden_channels=16, fusion_heads=3)
    with pytest.raises(ValueError, match="'cross_window'"):
        SyncTVA(DIMS, 4, 2, cross_window=-1)
    model = SyncTVA(DIMS, 4, 2, hidden_channels=16)
    text_only = CrossModalGraph(2, ['t'])
    with pytest.raises(ValueError, match="node type 'a'"):
        model(Batch.from_data_list([text_only(d) for d in dialogues()]))
    with pytest.raises(ValueError, match='unknown model'):
        build_model('no-such-model')


def test_learns_on_synthetic_data():
    dims = {'t': 32, 'a': 16, 'v': 16}
    corpus = load_corpus('synthetic-iemocap', seed=0, num_dialogues=24, feature_dims=dims)
    torch.manual_seed(0)
    model = SyncTVA(dims, corpus.num_classes, corpus.num_speakers, hidden_channels=32,
                    dropout=0.1)
    transform = dialogue_transform('sync-tva', 4, model.config())
    batch = Batch.from_data_list([transform(d) for d in corpus.train])
    y = batch.y
    valid = y >= 0
    majority = torch.bincount(y[valid]).max().item() / int(valid.sum())
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        out = model(batch)
        loss, _ = multimodal_loss(out.fused, out.logits, y, out.keep)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        fused = model(batch).fused
    accuracy = (fused.argmax(-1)[valid] == y[valid]).float().mean().item()
    first_nll = F.cross_entropy(torch.zeros(1, corpus.num_classes), torch.tensor([0])).item()
    assert losses[0] > 0.8 * first_nll  # starts near chance
    assert losses[-1] < 0.5 * losses[0]
    assert accuracy > majority + 0.3
