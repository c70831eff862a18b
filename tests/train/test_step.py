"""The steady-state step makes the host wait for no device: every structure it needs is built
on the host, by the dataset transform and the collate function (issue 38)."""
import collections

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch_geometric.data import Batch

from dsgdn_pyg.data import make_dialogue
from dsgdn_pyg.models import AMBDSGDN
from dsgdn_pyg.train.data import collate, prepare_dialogues
from dsgdn_pyg.train.optim import adam
from dsgdn_pyg.train.step import predict_logits, train_step

DIMS = {'t': 12, 'a': 10, 'v': 6}
# The operators whose output size or value the host must read from the device: on a GPU each
# one stalls the host until the device has caught up (as ../shared/tools/step_ops.py counts).
SYNCHRONISING = {'_local_scalar_dense', 'nonzero', 'is_nonzero', 'equal', 'masked_select',
                 'unique', '_unique2', 'unique_dim', 'unique_consecutive', 'repeat_interleave',
                 'bool_mask_index', 'bool_mask_index_put', 'bool_mask_index_put_'}


class SyncCounter(TorchDispatchMode):
    """Counts the synchronising operators dispatched inside it, by name."""
    def __init__(self):
        super().__init__()
        self.seen = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if name == 'repeat_interleave' and (kwargs or {}).get('output_size') is not None:
            name = 'repeat_interleave_sized'  # given its output size, it needs no sync
        if name in ('index', 'index_put', 'index_put_') and len(args) > 1 and any(
                torch.is_tensor(i) and i.dtype == torch.bool for i in (args[1] or ())):
            name = 'bool_mask_' + name  # its output size is the mask's count
        if name in SYNCHRONISING:
            self.seen[name] += 1
        return func(*args, **(kwargs or {}))


def dialogues(context_window, seed=0):
    gen = torch.Generator().manual_seed(seed)
    raw = []
    for k, n in enumerate([7, 19, 1, 30, 12, 25]):
        features = {m: torch.randn(n, d, generator=gen) for m, d in DIMS.items()}
        raw.append(make_dialogue(f'd{k}', torch.randint(0, 2, (n, ), generator=gen),
                                 torch.randint(0, 4, (n, ), generator=gen), features))
    transform = AMBDSGDN.dialogue_transform(4, context_window=context_window)
    return prepare_dialogues(raw, 'tav', 4, transform)


def warmed_up(context_window, device, stack=None):
    r"""The trainer's batches (collated on the host), a model and its optimizer after one
    step (optimizer state, lazily built structures: not steady state), and the trainer's
    draws set for the next step (train.distributed.TrainingBatches: a seeded generator on the
    device, the dialogues' positions in the global batch)."""
    data = [b.to(device) for b in collate(dialogues(context_window), 3)]
    torch.manual_seed(0)
    model = AMBDSGDN(DIMS, 4, 2, hidden_channels=16, heads=2, encoder_heads=2,
                     context_window=context_window).to(device)
    model.stack_modalities = stack  # None: the device's default (stacked on CUDA)
    model.set_epoch(10**6)  # modality dropout active, as in a late epoch
    optimizer = adam(model.parameters(), lr=1e-3)
    train_step(model, data[0], optimizer)
    generator = torch.Generator(device=device).manual_seed(1)
    positions = torch.arange(data[1].num_graphs, device=device)
    model.modality_dropout.set_step(generator, positions, data[1].num_graphs)
    return data, model, optimizer


@pytest.mark.parametrize('stack', [None, True])
@pytest.mark.parametrize('context_window', [None, 3])
def test_a_steady_state_step_dispatches_no_synchronising_operator(context_window, stack):
    # On the CPU, where nothing can stall, the dispatched operators tell what a GPU would wait
    # for; stack=True is the path a GPU takes by default (the modalities stacked).
    device = torch.device('cpu')
    data, model, optimizer = warmed_up(context_window, device, stack)
    with SyncCounter() as training:
        train_step(model, data[1], optimizer)
    with SyncCounter() as inference:
        predict_logits(model, data[:1], device)
    assert dict(training.seen) == {}
    # predict_logits copies the logits to the host once, at the end, by design (.cpu()): the
    # forward passes themselves read nothing back.
    assert dict(inference.seen) == {}


@pytest.mark.parametrize('context_window', [None, 3])
def test_the_counter_sees_a_step_on_a_batch_not_prepared_on_the_host(context_window):
    # The guard can fail: on PyG's own batch of the same dialogues (no host-side preparation)
    # the step sort-checks the two subgraphs and, for the whole-dialogue encoders (audio and
    # visual run at once), reads the longest dialogue from the device.
    device = torch.device('cpu')
    _, model, optimizer = warmed_up(context_window, device)
    plain = Batch.from_data_list(dialogues(context_window)[3:])
    with SyncCounter() as counter:
        train_step(model, plain, optimizer)
    assert counter.seen['_local_scalar_dense'] >= (3 if context_window is None else 2)


@pytest.mark.parametrize('stack', [None, False])
@pytest.mark.parametrize('context_window', [None, 3])
def test_no_stream_synchronisation_on_cuda(context_window, stack):
    if not torch.cuda.is_available():
        pytest.skip('CUDA is not available here (CPU build of torch or no GPU); '
                    'benchmarks/gpu_check.sh runs these on a GPU machine')
    device = torch.device('cuda')
    data, model, optimizer = warmed_up(context_window, device, stack)
    torch.cuda.synchronize()
    # In 'error' mode any operation that makes the host wait for the GPU raises.
    torch.cuda.set_sync_debug_mode('error')
    try:
        assert torch.cuda.get_sync_debug_mode() == 2
        loss, _ = train_step(model, data[1], optimizer)
        model.eval()
        with torch.no_grad():
            fused = model(data[1]).fused
    finally:
        torch.cuda.set_sync_debug_mode('default')
    assert torch.isfinite(loss) and torch.isfinite(fused).all()
