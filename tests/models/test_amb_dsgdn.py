import itertools

import pytest
import torch
from torch_geometric.data import Batch

from dsgdn_pyg.data import DialogueGraph, make_dialogue
from dsgdn_pyg.models import AMBDSGDN
from dsgdn_pyg.nn.functional import fast_dropout

DIMS = {'t': 12, 'a': 10, 'v': 6}


def make_batch(seed=0, lengths=(5, 17, 1, 30), window=4, modalities='tav'):
    gen = torch.Generator().manual_seed(seed)
    transform = DialogueGraph(window)
    dialogues = []
    for k, length in enumerate(lengths):
        features = {m: torch.randn(length, DIMS[m], generator=gen) for m in modalities}
        dialogues.append(transform(make_dialogue(
            f'd{k}', torch.randint(0, 3, (length, ), generator=gen),
            torch.randint(0, 4, (length, ), generator=gen), features)))
    return Batch.from_data_list(dialogues)


SUBSETS = [''.join(c) for r in (1, 2, 3) for c in itertools.combinations('tav', r)]


@pytest.mark.parametrize('modalities', SUBSETS)
def test_forward_backward_every_modality_subset(modalities):
    torch.manual_seed(0)
    batch = make_batch(modalities=modalities)
    model = AMBDSGDN({m: DIMS[m] for m in modalities}, num_classes=4, num_speakers=3,
                     hidden_channels=16, warmup_epochs=0)
    out = model(batch)
    assert out.fused.shape == (batch.num_nodes, 4)
    assert sorted(out.logits) == sorted(modalities)
    torch.testing.assert_close(out.fused, sum(out.logits.values()))
    out.fused.logsumexp(-1).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    # With one modality, modality dropout has nothing to balance; all parameters get gradients.
    assert missing == []


@pytest.mark.parametrize('kwargs', [dict(conv='gat'), dict(graph=False),
                                    dict(modality_dropout=False),
                                    dict(fusion_weights={'t': 0.8, 'v': 0.1, 'a': 0.1})])
def test_ablation_switches(kwargs):
    torch.manual_seed(0)
    batch = make_batch()
    model = AMBDSGDN(DIMS, 4, 3, hidden_channels=16, **kwargs)
    model.eval()
    out = model(batch)
    assert torch.isfinite(out.fused).all()
    if 'fusion_weights' in kwargs:
        w = kwargs['fusion_weights']
        torch.testing.assert_close(out.fused, sum(w[m] * out.logits[m] for m in 'tav'))
    if kwargs.get('graph') is False:
        assert model.inter is None
        assert not any(n.startswith(('inter.', 'intra.')) for n, _ in model.named_parameters())
    rebuilt = AMBDSGDN(**model.config())
    assert rebuilt.config() == model.config()
    rebuilt.load_state_dict(model.state_dict())


def test_dialogues_do_not_interact():
    """A dialogue's outputs do not depend on the other dialogues in its batch (eval mode)."""
    torch.manual_seed(1)
    model = AMBDSGDN(DIMS, 4, 3, hidden_channels=16).eval()
    batch = make_batch(lengths=(6, 9, 4))
    alone = make_batch(lengths=(6, 9, 4)).to_data_list()[1]
    out = model(batch).fused
    out_alone = model(Batch.from_data_list([alone])).fused
    torch.testing.assert_close(out[batch.ptr[1]:batch.ptr[2]], out_alone, rtol=1e-5, atol=1e-5)


def test_modality_dropout_only_in_training_after_warmup():
    torch.manual_seed(2)
    batch = make_batch()
    model = AMBDSGDN(DIMS, 4, 3, hidden_channels=16, dropout=0.0, p_exe=1.0, q_base=1.0,
                     warmup_epochs=2)
    model.train()
    model.set_epoch(1)
    assert not model.modality_dropout.active
    model.set_epoch(2)
    assert model.modality_dropout.active
    model(batch)
    assert model.modality_dropout.last_q is not None
    model.eval()
    assert not model.modality_dropout.active
    first = model(batch).fused
    torch.testing.assert_close(model(batch).fused, first)


def test_input_dropout_drops_the_features_in_training_only():
    # Reference: the same weights with input_dropout=0 on features dropped by hand with the
    # same seed. Every other dropout is off, so fast_dropout on the text features is the
    # only random draw in the forward pass, and the two runs compute the same thing.
    batch = make_batch(modalities='t')
    torch.manual_seed(3)
    model = AMBDSGDN({'t': DIMS['t']}, 4, 3, hidden_channels=16, dropout=0.0,
                     modality_dropout=False, input_dropout=0.4)
    plain = AMBDSGDN({'t': DIMS['t']}, 4, 3, hidden_channels=16, dropout=0.0,
                     modality_dropout=False)
    plain.load_state_dict(model.state_dict())
    assert model.config()['input_dropout'] == 0.4
    torch.manual_seed(7)
    dropped = fast_dropout(batch.x_t, 0.4, True)
    assert 0 < int((dropped == 0).sum()) < dropped.numel()
    torch.manual_seed(7)
    out = model(batch).fused
    reference = batch.clone()
    reference.x_t = dropped
    torch.testing.assert_close(out, plain(reference).fused)
    assert not torch.allclose(out, plain(batch).fused)
    model.eval()
    plain.eval()
    torch.testing.assert_close(model(batch).fused, plain(batch).fused)


def test_bad_configuration():
    with pytest.raises(ValueError, match="'input_dropout'"):
        AMBDSGDN(DIMS, 4, 2, input_dropout=1.0)
    with pytest.raises(ValueError, match='feature_dims'):
        AMBDSGDN({}, 4, 2)
    with pytest.raises(ValueError, match='feature_dims'):
        AMBDSGDN({'x': 3}, 4, 2)
    with pytest.raises(ValueError, match="'conv'"):
        AMBDSGDN(DIMS, 4, 2, conv='gcn')
    with pytest.raises(ValueError, match='fusion_weights'):
        AMBDSGDN(DIMS, 4, 2, fusion_weights={'t': 1.0})
    model = AMBDSGDN({'t': 12, 'a': 10}, 4, 3, hidden_channels=16)
    with pytest.raises(ValueError, match="no 'x_a' features"):
        model(make_batch(modalities='t'))


def test_parameter_count_matches_paper():
    """The paper reports about 13.1 M parameters at IEMOCAP sizes."""
    model = AMBDSGDN({'t': 1024, 'a': 1582, 'v': 342}, 6, 2)
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(13.1e6, rel=0.01)


@pytest.mark.parametrize('context_window, causal, fusion_weights', [
    (None, False, None), (2, False, None), (None, True, {'t': 1.0, 'a': 0.5, 'v': 2.0})])
def test_stacked_modalities_equal_the_modules_one_by_one(context_window, causal,
                                                         fusion_weights):
    # On CUDA (by default) the modalities run stacked: encoders, graph blocks, gates and
    # classifiers. The modalities one by one (the CPU's default) must give the same outputs
    # and gradients, to float64 rounding (the same arithmetic, grouped otherwise); so must
    # the stacked model whose graph layers are hooked (as an attention recorder hooks them),
    # which runs those blocks one by one.
    batch = make_batch(seed=5)
    batch.x_t, batch.x_a, batch.x_v = (batch[f'x_{m}'].double() for m in 'tav')
    torch.manual_seed(0)
    model = AMBDSGDN(DIMS, 4, 3, hidden_channels=16, dropout=0.0, modality_dropout=False,
                     context_window=context_window, causal=causal,
                     fusion_weights=fusion_weights).double().train()
    model.stack_modalities = True  # the default on CUDA
    params = list(model.parameters())

    def run():
        out = model(batch)
        loss = (out.fused.square().sum()
                + sum((logits * logits.roll(1, 1)).sum() for logits in out.logits.values()))
        return out.fused, torch.autograd.grad(loss, params)

    fused, grads = run()
    layers = [conv for blocks in (model.inter, model.intra) for block in blocks.values()
              for conv in (block.att, block.out_att)]
    handles = [conv.register_forward_pre_hook(lambda module, args: None) for conv in layers]
    try:
        hooked = run()
    finally:
        for handle in handles:
            handle.remove()
    model.stack_modalities = False
    for other, other_grads in (hooked, run()):
        torch.testing.assert_close(fused, other, rtol=1e-9, atol=1e-9)
        for got, want in zip(grads, other_grads):
            torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize('stack', [False, True])
@pytest.mark.parametrize('context_window', [None, 2])
def test_checkpoint_activations_gives_the_same_step(context_window, stack):
    # Recomputation in backward must reproduce the dropout masks, so one training step with
    # and without checkpointing gives the same outputs and gradients.
    batch = make_batch(seed=3)
    results = []
    for checkpoint_activations in (False, True):
        torch.manual_seed(0)
        model = AMBDSGDN(DIMS, 4, 3, hidden_channels=16, dropout=0.3,
                         context_window=context_window,
                         checkpoint_activations=checkpoint_activations).train()
        model.stack_modalities = stack
        torch.manual_seed(1)
        out = model(batch)
        out.fused.logsumexp(-1).sum().backward()
        results.append((out.fused.detach(), [p.grad for p in model.parameters()]))
    (fused_a, grads_a), (fused_b, grads_b) = results
    torch.testing.assert_close(fused_b, fused_a, rtol=0, atol=0)
    for a, b in zip(grads_a, grads_b):
        torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize('context_window', [None, 3])
def test_causal_model_never_reads_the_future(context_window):
    # Utterances after position 9 change; a causal model's outputs up to 9 must not, even on
    # a graph built with the future relations; the full model's must.
    base = make_batch(5, (16, ), window=4)
    changed = base.clone()
    for m in 'tav':
        changed[f'x_{m}'] = changed[f'x_{m}'].clone()
        changed[f'x_{m}'][10:] += 1.0
    for causal in (True, False):
        torch.manual_seed(0)
        model = AMBDSGDN(DIMS, 4, 3, hidden_channels=16, context_window=context_window,
                         causal=causal).eval()
        with torch.no_grad():
            delta = (model(changed).fused - model(base).fused).abs().amax(dim=1)
        assert bool((delta[:10] == 0).all()) == causal
        assert bool((delta[10:] > 0).all())
    assert model.config()['causal'] is False and 'causal' not in repr(model)
    assert 'causal=True' in repr(AMBDSGDN(DIMS, 4, 3, hidden_channels=16, causal=True))


def test_context_edges_from_the_dataset_equal_the_fallback():
    torch.manual_seed(0)
    model = AMBDSGDN(DIMS, 4, 3, hidden_channels=16, context_window=3).eval()
    plain = make_batch(seed=4)  # DialogueGraph(4): no context edges
    transform = AMBDSGDN.dialogue_transform(4, **model.config())
    assert transform.context_window == 3
    with_edges = Batch.from_data_list([transform(d) for d in plain.to_data_list()])
    assert 'context_edge_index' not in plain and 'context_edge_index' in with_edges
    with torch.no_grad():
        torch.testing.assert_close(model(with_edges).fused, model(plain).fused)


@pytest.mark.parametrize('conv', ['diffgat', 'gat'])
def test_forward_incremental_equals_the_causal_forward(conv):
    # The model's own incremental step, one utterance at a time, against its ordinary forward
    # over the whole dialogue; 1e-5: the same arithmetic summed in another order (float32).
    torch.manual_seed(0)
    dims = {'t': 12, 'a': 10}
    model = AMBDSGDN(dims, num_classes=4, num_speakers=2, hidden_channels=16, dropout=0.3,
                     encoder_heads=2, causal=True, conv=conv, context_window=3).eval()
    speakers = [0, 1, 1, 0, 1, 0, 0, 1, 0]
    features = {m: torch.randn(len(speakers), d) for m, d in dims.items()}
    data = AMBDSGDN.dialogue_transform(2, **model.config())(
        make_dialogue('d', speakers, [0] * len(speakers), features))
    with torch.no_grad():
        full = model(Batch.from_data_list([data])).fused
    cache = model.incremental_cache(2)
    steps = [model.forward_incremental({m: x[i:i + 1] for m, x in features.items()}, s, cache)
             for i, s in enumerate(speakers)]
    assert cache.position == len(speakers)
    assert torch.allclose(torch.cat(steps), full, atol=1e-5)
    with pytest.raises(ValueError, match='causal'):
        AMBDSGDN(dims, 4, 2, hidden_channels=16).eval().forward_incremental(
            {m: x[:1] for m, x in features.items()}, 0, cache)


@pytest.mark.parametrize('stack', [None, True, False])
@pytest.mark.parametrize('context_window', [None, 3])
def test_mixed_precision_follows_float32(context_window, stack, device):
    # --amp's autocast, on the model's whole step (the windowed encoder's sparse attention
    # crashed under float16 on CUDA): it runs, its gradients are finite, and its logits follow
    # float32's. On the CPU, which --amp refuses, bfloat16 autocast stands in for the GPU's
    # half precision. Tolerance: a half-precision mantissa (8 bits in bfloat16) rounds every
    # matrix product's inputs to ~0.4 %, through some 10 products in a row, on logits of
    # magnitude ~1; 0.1 absolute is far below a wrong kernel's error (logits off by O(1)).
    from dsgdn_pyg.train.step import amp_dtype, autocast

    device = torch.device(device)
    torch.manual_seed(0)
    batch = make_batch(window=4).to(device)
    model = AMBDSGDN(DIMS, 4, 3, hidden_channels=32, heads=2, encoder_heads=2,
                     context_window=context_window).to(device).eval()
    model.stack_modalities = stack  # None: the device's default (stacked on CUDA)
    with torch.no_grad():
        reference = model(batch).fused
    half = amp_dtype(device) if device.type == 'cuda' else torch.bfloat16
    with torch.autocast(device.type, dtype=half):
        out = model(batch)
    assert out.fused.dtype == half or out.fused.dtype == torch.float32
    torch.testing.assert_close(out.fused.float(), reference, atol=0.1, rtol=0.05)
    model.train()
    with autocast(device, True) if device.type == 'cuda' else \
            torch.autocast('cpu', dtype=torch.bfloat16):
        out = model(batch)
    out.fused.float().sum().backward()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())
