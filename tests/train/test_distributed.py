r"""Data-parallel training (gloo, 2 CPU processes) against the one-process run."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import traceback

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from dsgdn_pyg.datasets import load_corpus
from dsgdn_pyg.loss import multimodal_loss
from dsgdn_pyg.models import build_model
from dsgdn_pyg.nn.adaptive_modality_dropout import AdaptiveModalityDropout
from dsgdn_pyg.train import ConfigError, TrainConfig, load_checkpoint, train
from dsgdn_pyg.train.data import (ShardedBatchSampler, collate_shard, epoch_generator,
                                  shard_batch)

DIMS = {'t': 16, 'a': 8, 'v': 8}
# 9 training dialogues in batches of 4: global batches of 4, 4 and 1 (the last leaves one of
# the two processes without a dialogue). Dropout 0: its masks are drawn per process, so only
# without it can two processes compute what one does; adaptive modality dropout is on from
# the first step and executes on every batch, with class weights.
EQUAL = dict(num_dialogues=12, feature_dims=DIMS, hidden_channels=16, window=3, batch_size=4,
             warmup_epochs=0, p_exe=1.0, q_base=0.5, dropout=0.0, lr=1e-3, quiet=True,
             device='cpu', epochs=2, class_weights=True)
# For resuming, dropout on: each process's RNG state must be restored.
RESUME = dict(EQUAL, dropout=0.3)
WORLD = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, out: str):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port), WORLD_SIZE=str(WORLD),
                      RANK=str(rank), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    start = time.perf_counter()
    dist.init_process_group('gloo', timeout=__import__('datetime').timedelta(seconds=120))
    results = {}

    def attempt(name, function):
        try:
            function()
            results[name] = None
        except Exception as e:  # the test checks type and message
            results[name] = [type(e).__name__, str(e)]

    try:
        # A setting that differs on one process.
        attempt('other_lr', lambda: train(TrainConfig(**dict(EQUAL, lr=1e-3 * (1 + rank)))))
        # A failure on one process only (its corpus lacks a modality the run asks for).
        dims = DIMS if rank == 0 else {'t': 16, 'a': 8}
        corpus = load_corpus('synthetic-iemocap', num_dialogues=12, feature_dims=dims)
        attempt('rank1_fails', lambda: train(TrainConfig(**dict(EQUAL, modalities='t,a,v')),
                                             corpus))
        # The group is still usable after both failures: the real runs.
        results['setup_s'] = time.perf_counter() - start
        train(TrainConfig(**dict(EQUAL, out=os.path.join(out, 'equal'))))
        results['equal_s'] = time.perf_counter() - start
        train(TrainConfig(**dict(RESUME, out=os.path.join(out, 'full'))))
        train(TrainConfig(**dict(RESUME, epochs=1, out=os.path.join(out, 'resumed'))))
        train(TrainConfig(**dict(RESUME, resume=True, out=os.path.join(out, 'resumed'))))
        results['all_s'] = time.perf_counter() - start
    except Exception:
        results['crash'] = traceback.format_exc()
    finally:
        dist.destroy_process_group()
        with open(os.path.join(out, f'rank{rank}.json'), 'w') as f:
            json.dump(results, f)


@pytest.fixture(scope='module')
def ddp(tmp_path_factory):
    out = tmp_path_factory.mktemp('ddp')
    mp.start_processes(_worker, args=(_free_port(), str(out)), nprocs=WORLD, join=True,
                       start_method='spawn')
    results = [json.loads((out / f'rank{r}.json').read_text()) for r in range(WORLD)]
    for r, result in enumerate(results):
        assert 'crash' not in result, f"process {r}: {result.get('crash')}"
    return out, results


@pytest.fixture(scope='module')
def single(tmp_path_factory):
    out = tmp_path_factory.mktemp('single')
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(TrainConfig(**dict(EQUAL, out=str(out / 'equal'))))
    finally:
        torch.set_num_threads(previous)
    return out


def _comparable(key, value):
    # The key bias of an attention layer has a gradient of exactly zero in exact arithmetic
    # (softmax ignores a shift shared by all keys of a query), so what it gets is rounding
    # noise, which Adam normalises into steps of about lr: any two runs that add in another
    # order (here one batch against two halves) differ there by up to lr per step. Measured:
    # 1.5e-4 there against < 1e-6 everywhere else.
    if key.endswith('in_proj_bias'):
        query, _, value_bias = value.chunk(3)
        return torch.cat([query, value_bias])
    return value


def _state(path):
    return load_checkpoint(path)['model_state']


def test_parameters_equal_one_process(ddp, single):
    ddp_out, _ = ddp
    ddp_state, one_state = _state(ddp_out / 'equal' / 'last.pt'), \
        _state(single / 'equal' / 'last.pt')
    assert ddp_state.keys() == one_state.keys()
    worst = max((_comparable(k, ddp_state[k]) - _comparable(k, one_state[k])).abs().max().item()
                for k in ddp_state)
    assert worst < 1e-5
    # The 6 steps moved the weights far more than that: a per-process mean, or a modality
    # dropout decision per process, would show.
    payload = load_checkpoint(single / 'equal' / 'last.pt')
    torch.manual_seed(0)
    initial = build_model(payload['model_name'], **payload['model_config']).state_dict()
    assert max((one_state[k] - initial[k]).abs().max().item() for k in initial) > 1e-3


def test_metrics_and_checkpoint_match(ddp, single):
    ddp_out, _ = ddp
    ddp_metrics = json.loads((ddp_out / 'equal' / 'metrics.json').read_text())
    one_metrics = json.loads((single / 'equal' / 'metrics.json').read_text())
    assert ddp_metrics['world_size'] == 2 and one_metrics['world_size'] == 1
    for split in ('valid', 'test'):
        for key in ('wa_f1', 'wa_acc', 'confusion'):
            assert ddp_metrics[split][key] == one_metrics[split][key], (split, key)
    assert ddp_metrics['best_epoch'] == one_metrics['best_epoch']
    ddp_log = [json.loads(line) for line in (ddp_out / 'equal' / 'log.jsonl').open()]
    one_log = [json.loads(line) for line in (single / 'equal' / 'log.jsonl').open()]
    for a, b in zip(ddp_log, one_log, strict=True):
        assert a['loss'] == pytest.approx(b['loss'], rel=1e-5, abs=1e-6)
        assert a['modality_dropout']['mean_q'] == pytest.approx(
            b['modality_dropout']['mean_q'], abs=1e-6)
    assert sorted(os.listdir(ddp_out / 'equal')) == sorted(os.listdir(single / 'equal'))
    for name in ('best.pt', 'last.pt'):
        a, b = load_checkpoint(ddp_out / 'equal' / name), load_checkpoint(single / 'equal' / name)
        for key in ('epoch', 'kind', 'model_config', 'label_names', 'metrics'):
            assert a.get(key) == b.get(key), (name, key)
        assert dict(a['train_config'], out=None) == dict(b['train_config'], out=None)
    last = load_checkpoint(ddp_out / 'equal' / 'last.pt')
    assert last['world_size'] == 2 and len(last['rng_states']) == 2
    assert not torch.equal(last['rng_states'][0]['cpu'], last['rng_states'][1]['cpu'])


def test_resume_equals_uninterrupted(ddp):
    out, _ = ddp
    full, resumed = load_checkpoint(out / 'full' / 'last.pt'), \
        load_checkpoint(out / 'resumed' / 'last.pt')
    assert full['epoch'] == resumed['epoch'] == 2
    for key, value in full['model_state'].items():
        assert torch.equal(value, resumed['model_state'][key]), key
    assert [r['loss'] for r in full['log']] == [r['loss'] for r in resumed['log']]


def test_bad_setting_on_one_process_fails_everywhere(ddp):
    _, results = ddp
    for rank, result in enumerate(results):
        kind, message = result['other_lr']
        assert kind == 'ConfigError'
        assert 'different settings' in message and 'lr' in message, message
    kind, message = results[1]['rank1_fails']
    assert kind == 'ConfigError' and 'asks for v' in message
    kind, message = results[0]['rank1_fails']
    assert kind == 'DistributedError'
    assert 'process 1 of 2 failed while preparing the run' in message and 'asks for v' in message


def _cuda_worker(rank: int, port: int, out: str):
    # The trainer joins the group itself here (NCCL, cuda:LOCAL_RANK).
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port), WORLD_SIZE=str(WORLD),
                      RANK=str(rank), LOCAL_RANK=str(rank))
    train(TrainConfig(**dict(EQUAL, device='cuda', out=out)))


@pytest.mark.skipif(torch.cuda.device_count() < 2,
                    reason=f'DDP with NCCL needs 2 CUDA devices; this machine has '
                           f'{torch.cuda.device_count()}')
def test_nccl_parameters_equal_one_process(tmp_path):
    mp.start_processes(_cuda_worker, args=(_free_port(), str(tmp_path / 'ddp')), nprocs=WORLD,
                       join=True, start_method='spawn')
    train(TrainConfig(**dict(EQUAL, device='cuda', out=str(tmp_path / 'one'))))
    ddp_state = _state(tmp_path / 'ddp' / 'last.pt')
    one_state = _state(tmp_path / 'one' / 'last.pt')
    worst = max((_comparable(k, ddp_state[k]) - _comparable(k, one_state[k])).abs().max().item()
                for k in ddp_state)
    assert worst < 1e-5
    ddp_metrics = json.loads((tmp_path / 'ddp' / 'metrics.json').read_text())
    assert ddp_metrics['world_size'] == 2 and ddp_metrics['device'] == 'cuda:0'


# --------------------------------------------------------------------------------------------
# The pieces, in one process

def test_sampler_one_process_is_the_shuffled_loader():
    lengths = [5, 1, 9, 3, 7, 2, 8, 4, 6, 10]
    sampler = ShardedBatchSampler(lengths, batch_size=4, seed=3)
    sampler.set_epoch(2)
    order = torch.randperm(len(lengths), generator=epoch_generator(3, 2)).tolist()
    assert [s.indices for s in sampler] == [order[0:4], order[4:8], order[8:10]]


@pytest.mark.parametrize('world', [2, 3, 4])
def test_shards_partition_each_global_batch(world):
    lengths = [5, 1, 9, 3, 7, 2, 8, 4, 6, 10, 11]
    samplers = [ShardedBatchSampler(lengths, 5, seed=0, rank=r, world_size=world)
                for r in range(world)]
    for shards in zip(*samplers):
        batch = shards[0].size
        real = [s for s in shards if not s.padding]
        positions = sorted(p for s in real for p in s.positions)
        assert positions == list(range(batch))
        counts = [len(s.indices) for s in real]
        assert max(counts) - min(counts) <= 1
        assert len(real) == min(world, batch)
        for s in real:
            assert s.positions == sorted(s.positions)


def test_padding_shard_has_no_labels():
    corpus = load_corpus('synthetic-iemocap', num_dialogues=6, feature_dims=DIMS)
    shard = shard_batch([2], [d.num_nodes for d in corpus.train], rank=1, world_size=2)
    assert shard.padding and shard.size == 1
    batch = collate_shard(corpus.train, shard)
    assert (batch.y == -1).all() and (corpus.train[2].y >= 0).any()


def test_loss_shares_sum_to_the_whole_batch():
    # Two "processes" hold rows 0..6 and 7..11; the all-reduce adds the other share's sums.
    torch.manual_seed(0)
    fused = torch.randn(12, 4, requires_grad=True)
    uni = {'t': torch.randn(12, 4, requires_grad=True)}
    y = torch.tensor([0, 1, 2, 3, -1, 1, 2, 0, 0, 3, 3, 1])
    weight = torch.tensor([1.0, 2.0, 0.5, 1.5])
    whole, _ = multimodal_loss(fused, uni, y, class_weight=weight)
    expected = torch.autograd.grad(whole, [fused, uni['t']])

    parts = [slice(0, 7), slice(7, 12)]
    recorded = []

    def record(t):
        recorded.append(t.clone())
        return t

    for part in parts:
        multimodal_loss(fused[part], {'t': uni['t'][part]}, y[part], class_weight=weight,
                        all_reduce=record)
    grads = [torch.zeros_like(fused), torch.zeros_like(uni['t'])]
    for i, part in enumerate(parts):
        other = recorded[1 - i]
        loss, _ = multimodal_loss(fused[part], {'t': uni['t'][part]}, y[part],
                                  class_weight=weight, all_reduce=lambda t: t + other)
        assert torch.allclose(loss, whole, atol=1e-6)
        for g, new in zip(grads, torch.autograd.grad(loss, [fused, uni['t']])):
            g += new
    for g, e in zip(grads, expected):
        assert torch.allclose(g, e, atol=1e-6)


def test_modality_dropout_shares_take_the_whole_batch_decision():
    torch.manual_seed(1)
    num_graphs, per = 6, 5
    batch = torch.arange(num_graphs).repeat_interleave(per)
    y = torch.randint(0, 3, (num_graphs * per, ))
    xs = {m: torch.randn(num_graphs * per, 4) for m in 'tav'}
    # The text head is right everywhere, audio half the time, visual never.
    logits = {'t': torch.nn.functional.one_hot(y, 3).float(),
              'a': torch.nn.functional.one_hot(torch.where(batch % 2 == 0, y, (y + 1) % 3),
                                               3).float(),
              'v': torch.nn.functional.one_hot((y + 1) % 3, 3).float()}
    module = AdaptiveModalityDropout(q_base=0.5, p_exe=1.0)

    def run(graphs, positions, all_reduce):
        nodes = torch.isin(batch, torch.tensor(graphs))
        local = torch.unique(batch[nodes], return_inverse=True)[1]
        module.set_step(torch.Generator().manual_seed(7), torch.tensor(positions), num_graphs,
                        all_reduce)
        out, keep = module({m: x[nodes] for m, x in xs.items()},
                           {m: v[nodes] for m, v in logits.items()}, y[nodes], local,
                           len(graphs))
        return out, module.last_q.clone()

    whole, q_whole = run(list(range(num_graphs)), list(range(num_graphs)), None)
    assert q_whole[0] > 0  # text, the best, is dropped sometimes
    shares = [[0, 2, 3], [1, 4, 5]]
    counts = []
    from dsgdn_pyg.metrics import f1_counts

    for share in shares:
        nodes = torch.isin(batch, torch.tensor(share))
        pred = torch.stack([logits[m][nodes].argmax(-1) for m in 'tav'])
        counts.append(f1_counts(pred, y[nodes], 3))
    total = counts[0] + counts[1]
    for share in shares:
        out, q = run(share, share, lambda t: total)
        assert torch.allclose(q, q_whole)
        nodes = torch.isin(batch, torch.tensor(share))
        for m in 'tav':
            assert torch.allclose(out[m], whole[m][nodes])
    module.set_step()


def test_nproc_per_node_with_a_corpus_object_is_refused():
    corpus = load_corpus('synthetic-iemocap', num_dialogues=6, feature_dims=DIMS)
    with pytest.raises(ConfigError, match='nproc_per_node'):
        train(TrainConfig(**dict(EQUAL, nproc_per_node=2)), corpus)
    with pytest.raises(ConfigError, match='nproc_per_node'):
        TrainConfig(nproc_per_node=0)


# --------------------------------------------------------------------------------------------
# Through the command line and torchrun

def _cli(*args):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), HF_HUB_OFFLINE='1')
    return [sys.executable, '-m', 'dsgdn_pyg.cli', 'train', '--dataset', 'synthetic-iemocap',
            '--num-dialogues', '12', '--feature-dims', 't=16,a=8,v=8', '--hidden-channels',
            '16', '--window', '3', '--batch-size', '4', '--warmup-epochs', '0', '--p-exe', '1',
            '--q-base', '0.5', '--dropout', '0', '--lr', '1e-3', '--device', 'cpu',
            '--class-weights', *args], env


def _children(pid):
    with open(f'/proc/{pid}/task/{pid}/children') as f:
        return [int(c) for c in f.read().split()]


def _rank_of(pid):
    with open(f'/proc/{pid}/environ', 'rb') as f:
        env = dict(item.split(b'=', 1) for item in f.read().split(b'\0') if b'=' in item)
    return env.get(b'RANK')


def _log(path):
    try:
        return [json.loads(line) for line in path.read_text().splitlines()]
    except FileNotFoundError:
        return []


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='reads /proc to find rank 1')
def test_cli_nproc_per_node_matches_one_process_and_a_killed_process_ends_it(tmp_path, single):
    # One launch for both (each start of torchrun and its processes costs seconds): the first
    # two epochs are compared with the one-process run, then rank 1 is killed.
    command, env = _cli('--epochs', '500', '--nproc-per-node', '2', '--out', str(tmp_path))
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 240
        while len(_log(tmp_path / 'log.jsonl')) < 2 and proc.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(_log(tmp_path / 'log.jsonl')) >= 2, 'the run did not get through 2 epochs'
        victims = [w for launcher in _children(proc.pid) for w in _children(launcher)
                   if _rank_of(w) == b'1']
        assert len(victims) == 1
        os.kill(victims[0], signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=120)  # not a hang
    finally:
        if proc.poll() is None:
            proc.kill()
    one = _log(single / 'equal' / 'log.jsonl')
    for a, b in zip(_log(tmp_path / 'log.jsonl')[:2], one, strict=True):
        assert a['loss'] == pytest.approx(b['loss'], rel=1e-5, abs=1e-6)
        assert (a['valid_wa_f1'], a['test_wa_f1']) == (b['valid_wa_f1'], b['test_wa_f1'])
    assert json.loads((tmp_path / 'metrics.json').read_text())['world_size'] == 2
    assert stdout.count('epoch 1/500') == 1  # rank 0 alone prints
    assert proc.returncode != 0
    assert 'training processes failed' in stderr and 'SIGKILL' in stderr, stderr[-3000:]
    # The package's own lines, not torchrun's traceback and failure table under them.
    assert 'process 1 was killed by SIGKILL' in stderr, stderr[-3000:]
    assert 'Traceback' not in stderr and 'ChildFailedError' not in stderr, stderr[-3000:]
    assert 'Root Cause' not in stderr and 'OMP_NUM_THREADS' not in stderr, stderr[-3000:]


@pytest.mark.parametrize('name', ['cuda:1', 'cpu:0'] if not torch.cuda.is_available()
                         else ['cuda:1', 'cpu:0', 'cuda'])
def test_device_is_checked_before_joining(monkeypatch, name):
    # Under torchrun each process takes the device of its local rank; an explicit index (or,
    # without CUDA, any CUDA device) is refused before the process joins the group, so no
    # port is opened and no other process is waited for.
    from dsgdn_pyg.train.distributed import distributed_context

    monkeypatch.setenv('WORLD_SIZE', '2')
    monkeypatch.setenv('RANK', '1')
    monkeypatch.setenv('LOCAL_RANK', str(max(torch.cuda.device_count(), 1)))
    with pytest.raises(ConfigError, match="'device'"):
        with distributed_context(name):
            pass
    assert not dist.is_initialized()
