import pytest
import torch
from torch_geometric.data import Batch

from dsgdn_pyg.data import DialogueGraph, feature_key, make_dialogue
from dsgdn_pyg.models import AMBDSGDN, DenseAMBDSGDN

DIMS = {'t': 12, 'a': 10, 'v': 6}


def make_batch(seed, lengths, window, modalities='tav', dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    transform = DialogueGraph(window)
    dialogues = []
    for k, length in enumerate(lengths):
        features = {m: torch.randn(length, DIMS[m], generator=gen, dtype=dtype)
                    for m in modalities}
        dialogues.append(transform(make_dialogue(
            f'd{k}', torch.randint(0, 3, (length, ), generator=gen),
            torch.randint(0, 4, (length, ), generator=gen), features)))
    batch = Batch.from_data_list(dialogues)
    for m in modalities:
        batch[feature_key(m)] = batch[feature_key(m)].to(dtype)
    return batch


def outputs_and_grads(module, params, batch):
    out = module(batch)
    # A loss that weighs every logit differently, so every output row gets its own gradient.
    weight = torch.linspace(-1.0, 1.0, out.fused.numel(), dtype=out.fused.dtype,
                            device=out.fused.device)
    loss = (out.fused.flatten() * weight).sum() + sum(l.square().mean()
                                                      for l in out.logits.values())
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return out, grads


CASES = [
    dict(seed=0, lengths=(5, 17, 1, 30), window=4, modalities='tav', kwargs={}),
    dict(seed=1, lengths=(40, ), window=0, modalities='tav', kwargs={}),
    dict(seed=2, lengths=(9, 3, 25), window=30, modalities='av', kwargs=dict(heads=3)),
    dict(seed=3, lengths=(12, 7), window=2, modalities='t', kwargs=dict(graph=False)),
    dict(seed=4, lengths=(33, 8, 19), window=5, modalities='tav',
         kwargs=dict(context_window=3)),
    dict(seed=5, lengths=(6, 21), window=3, modalities='tv',
         kwargs=dict(fusion_weights={'t': 0.8, 'v': 0.2}, context_window=0)),
    # Causal: the sparse model drops the future edges of this (full) graph itself; the dense
    # one masks relations 3 and 4 and the upper triangle of the encoder's attention.
    dict(seed=6, lengths=(14, 1, 9), window=3, modalities='tav', kwargs=dict(causal=True)),
    dict(seed=7, lengths=(20, 6), window=4, modalities='tav',
         kwargs=dict(causal=True, context_window=2)),
]


@pytest.mark.parametrize('case', CASES, ids=[str(i) for i in range(len(CASES))])
def test_dense_model_matches_sparse_outputs_and_gradients(case, device):
    modalities = case['modalities']
    torch.manual_seed(case['seed'])
    model = AMBDSGDN({m: DIMS[m] for m in modalities}, num_classes=4, num_speakers=3,
                     hidden_channels=16, **case['kwargs']).double().eval().to(device)
    dense = DenseAMBDSGDN(model, case['window']).eval()
    batch = make_batch(case['seed'], case['lengths'], case['window'], modalities).to(device)
    params = list(model.parameters())
    # The dense model shares, not copies, the parameters.
    assert {id(p) for p in dense.parameters()} == {id(p) for p in params}

    sparse_out, sparse_grads = outputs_and_grads(model, params, batch)
    dense_out, dense_grads = outputs_and_grads(dense, params, batch)
    torch.testing.assert_close(dense_out.fused, sparse_out.fused, rtol=1e-9, atol=1e-9)
    for m in modalities:
        torch.testing.assert_close(dense_out.logits[m], sparse_out.logits[m],
                                   rtol=1e-9, atol=1e-9)
    names = [n for n, _ in model.named_parameters()]
    for name, g_sparse, g_dense in zip(names, sparse_grads, dense_grads):
        assert (g_sparse is None) == (g_dense is None), name
        if g_sparse is not None:
            torch.testing.assert_close(g_dense, g_sparse, rtol=1e-7, atol=1e-9, msg=name)


def test_dense_model_matches_sparse_in_float32(device):
    torch.manual_seed(0)
    model = AMBDSGDN(DIMS, 4, 3, hidden_channels=32).eval().to(device)
    batch = make_batch(7, (50, 13, 80, 2), 20, dtype=torch.float32).to(device)
    with torch.no_grad():
        torch.testing.assert_close(DenseAMBDSGDN(model, 20)(batch).fused, model(batch).fused,
                                   rtol=1e-4, atol=1e-4)


def test_dense_model_trains_and_rejects_what_it_cannot_run():
    torch.manual_seed(0)
    model = AMBDSGDN(DIMS, 4, 3, hidden_channels=16, dropout=0.3)
    dense = DenseAMBDSGDN(model, 4).train()
    batch = make_batch(0, (5, 9), 4, dtype=torch.float32)
    out = dense(batch)
    out.fused.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    with pytest.raises(ValueError, match="conv='diffgat'"):
        DenseAMBDSGDN(AMBDSGDN(DIMS, 4, 3, hidden_channels=16, conv='gat'), 4)
    with pytest.raises(ValueError, match='window'):
        DenseAMBDSGDN(model, -1)
