import json
import os

import numpy as np
import pytest
import torch
from sklearn.dummy import DummyClassifier
from sklearn.metrics import f1_score

from dsgdn_pyg.datasets import load_corpus
from dsgdn_pyg.inference.evaluate import evaluate
from dsgdn_pyg.train import CheckpointError, ConfigError, TrainConfig, load_checkpoint, train
from dsgdn_pyg.train.data import epoch_generator, model_kwargs, prepare_dialogues

DIMS = {'t': 16, 'a': 8, 'v': 8}
# A tiny, fast run: modality dropout active from the second epoch, dropout on, so that
# every source of randomness is exercised.
TINY = dict(num_dialogues=12, feature_dims=DIMS, hidden_channels=16, window=3, batch_size=4,
            warmup_epochs=1, p_exe=1.0, dropout=0.3, lr=1e-3, quiet=True, device='cpu')


def tiny(**kwargs) -> TrainConfig:
    return TrainConfig(**{**TINY, **kwargs})


def test_epoch_generator_depends_on_seed_and_epoch_only():
    def draw(seed, epoch):
        return torch.randperm(50, generator=epoch_generator(seed, epoch))

    assert torch.equal(draw(0, 3), draw(0, 3))
    assert not torch.equal(draw(0, 3), draw(0, 4))
    assert not torch.equal(draw(0, 3), draw(1, 3))


def test_prepare_dialogues_keeps_input_and_selects_modalities():
    corpus = load_corpus('synthetic-iemocap', num_dialogues=6, feature_dims=DIMS)
    original = corpus.train[0]
    out = prepare_dialogues(corpus.train, ['t', 'v'], window=2)
    assert 'x_a' in original and 'edge_index' not in original
    assert 'x_a' not in out[0] and 'x_t' in out[0] and 'x_v' in out[0]
    # Brute force: every pair within the window is an edge, and no other.
    length = original.num_nodes
    expected = {(j, i) for i in range(length) for j in range(length) if abs(i - j) <= 2}
    assert set(map(tuple, out[0].edge_index.t().tolist())) == expected


def test_missing_modality_is_a_config_error():
    corpus = load_corpus('synthetic-iemocap', num_dialogues=6, feature_dims={'t': 8, 'a': 4})
    with pytest.raises(ConfigError, match="asks for v") as info:
        train(tiny(modalities='t,v', feature_dims={'t': 8, 'a': 4}), corpus)
    assert info.value.field == 'modalities'
    with pytest.raises(ConfigError, match='unknown dataset'):
        train(tiny(dataset='no-such-data'))


def test_run_writes_documented_files(tmp_path):
    out = tmp_path / 'run'
    metrics = train(tiny(epochs=2, out=str(out)))
    assert sorted(os.listdir(out)) == ['best.pt', 'last.pt', 'log.jsonl', 'metrics.json']

    saved = json.loads((out / 'metrics.json').read_text())
    assert saved['best_epoch'] == metrics['best_epoch']
    for key in ('best_epoch', 'selected_on', 'valid', 'test', 'config', 'seed', 'elapsed_s',
                'label_names', 'dataset'):
        assert key in saved, key
    assert saved['selected_on'] == 'valid'
    assert saved['config']['hidden_channels'] == 16
    label_names = saved['label_names']
    for split in ('valid', 'test'):
        scores = saved[split]
        assert set(scores['per_class_f1']) == set(label_names)
        assert len(scores['confusion']) == len(label_names)
        assert 0 <= scores['wa_f1'] <= 100 and 0 <= scores['wa_acc'] <= 100
        # Accuracy from the confusion matrix (diagonal / total) matches the reported one.
        confusion = np.array(scores['confusion'])
        assert scores['wa_acc'] == pytest.approx(100 * np.trace(confusion) / confusion.sum())

    records = [json.loads(line) for line in (out / 'log.jsonl').read_text().splitlines()]
    assert [r['epoch'] for r in records] == [1, 2]
    for r in records:
        for key in ('loss', 'loss_fusion', 'valid_wa_f1', 'valid_wa_acc', 'test_wa_f1',
                    'test_wa_acc', 'seconds'):
            assert key in r, key
    # Modality dropout runs from the second epoch (warm-up 1) and reports its statistics.
    assert 'modality_dropout' not in records[0]
    assert set(records[1]['modality_dropout']['mean_q']) == {'t', 'a', 'v'}
    best = records[saved['best_epoch'] - 1]
    assert saved['test']['wa_f1'] == best['test_wa_f1']
    assert best['valid_wa_f1'] == max(r['valid_wa_f1'] for r in records)

    best_ckpt = load_checkpoint(out / 'best.pt')
    assert best_ckpt['epoch'] == saved['best_epoch']
    assert best_ckpt['modalities'] == ['t', 'a', 'v'] and best_ckpt['window'] == 3


def test_without_out_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    metrics = train(tiny(epochs=1))
    assert os.listdir(tmp_path) == []
    assert metrics['best_epoch'] == 1 and 'wa_f1' in metrics['test']


def test_select_on_test_is_labelled(tmp_path, capsys):
    metrics = train(tiny(epochs=2, select_on='test', quiet=False, out=str(tmp_path)))
    assert metrics['selected_on'] == 'test' and 'selection_warning' in metrics
    captured = capsys.readouterr()
    epoch_lines = [line for line in captured.out.splitlines() if line.startswith('epoch ')]
    assert len(epoch_lines) == 2 and all('selected on test' in line for line in epoch_lines)
    assert 'not a fair estimate' in captured.err
    records = [json.loads(line) for line in (tmp_path / 'log.jsonl').read_text().splitlines()]
    assert metrics['test']['wa_f1'] == max(r['test_wa_f1'] for r in records)


def test_quiet_prints_nothing_and_threads_are_restored(capsys):
    threads = torch.get_num_threads()
    train(tiny(epochs=1, num_threads=threads + 1))
    assert torch.get_num_threads() == threads
    captured = capsys.readouterr()
    assert captured.out == '' and captured.err == ''


def test_early_stopping():
    # With a vanishing learning rate the selection score cannot improve after epoch 1.
    metrics = train(tiny(epochs=6, lr=1e-12, patience=2))
    assert metrics['stopped_early'] and metrics['epochs_run'] == 3
    assert metrics['best_epoch'] == 1


def _strip_volatile(metrics):
    metrics = json.loads(json.dumps(metrics))
    metrics.pop('elapsed_s')
    for key in ('epochs', 'resume', 'out'):
        metrics['config'].pop(key)
    return metrics


def test_resume_reproduces_uninterrupted_run(tmp_path):
    straight, split = tmp_path / 'straight', tmp_path / 'split'
    full = train(tiny(epochs=4, out=str(straight)))
    train(tiny(epochs=2, out=str(split)))
    resumed = train(tiny(epochs=4, out=str(split), resume=True))

    assert _strip_volatile(resumed) == _strip_volatile(full)
    saved_straight = json.loads((straight / 'metrics.json').read_text())
    saved_split = json.loads((split / 'metrics.json').read_text())
    assert _strip_volatile(saved_split) == _strip_volatile(saved_straight)

    def log(path):
        records = [json.loads(line) for line in (path / 'log.jsonl').read_text().splitlines()]
        for r in records:
            r.pop('seconds')
            r.pop('train_seconds')
        return records

    assert log(split) == log(straight) and len(log(split)) == 4
    for name in ('last.pt', 'best.pt'):
        a, b = load_checkpoint(straight / name), load_checkpoint(split / name)
        assert a['epoch'] == b['epoch']
        assert a['model_state'].keys() == b['model_state'].keys()
        for key, value in a['model_state'].items():
            assert torch.equal(value, b['model_state'][key]), (name, key)
    # The optimizer moments too, so that training would go on identically.
    opt_a = load_checkpoint(straight / 'last.pt')['optimizer_state']['state']
    opt_b = load_checkpoint(split / 'last.pt')['optimizer_state']['state']
    for index in opt_a:
        for key in ('exp_avg', 'exp_avg_sq'):
            assert torch.equal(opt_a[index][key], opt_b[index][key])


def test_resume_with_other_configuration_is_refused(tmp_path):
    train(tiny(epochs=1, out=str(tmp_path)))
    with pytest.raises(CheckpointError, match='hidden_channels'):
        train(tiny(epochs=2, out=str(tmp_path), resume=True, hidden_channels=8))
    with pytest.raises(CheckpointError, match='lr'):
        train(tiny(epochs=2, out=str(tmp_path), resume=True, lr=5e-3))


def test_short_run_learns_well_above_majority_baseline():
    dims = {'t': 32, 'a': 16, 'v': 16}
    corpus = load_corpus('synthetic-iemocap', seed=0, num_dialogues=40, feature_dims=dims)
    y_train = torch.cat([d.y for d in corpus.train]).numpy()
    y_test = torch.cat([d.y for d in corpus.test]).numpy()
    majority = DummyClassifier(strategy='most_frequent').fit(np.zeros((len(y_train), 1)),
                                                             y_train)
    baseline = 100 * f1_score(y_test, majority.predict(np.zeros((len(y_test), 1))),
                              average='weighted')

    config = TrainConfig(num_dialogues=40, feature_dims=dims, hidden_channels=32, epochs=6,
                         warmup_epochs=2, lr=3e-3, dropout=0.1, window=4, batch_size=8,
                         quiet=True, device='cpu')
    metrics = train(config, corpus)
    assert metrics['test']['wa_f1'] > baseline + 25


def test_sync_tva_train_resume_evaluate_predict(tmp_path):
    from dsgdn_pyg.models import AMBDSGDN, SyncTVA
    from dsgdn_pyg.inference.evaluate import evaluate, predict
    from dsgdn_pyg.inference.loading import model_from_checkpoint

    straight, split = tmp_path / 'straight', tmp_path / 'split'
    settings = dict(model='sync-tva', epochs=2, focal_gamma=1.0, class_weights=True)
    full = train(tiny(**settings, out=str(straight)))
    train(tiny(**{**settings, 'epochs': 1}, out=str(split)))
    resumed = train(tiny(**settings, out=str(split), resume=True))
    assert _strip_volatile(resumed) == _strip_volatile(full)
    assert full['config']['model'] == 'sync-tva' and full['config']['focal_gamma'] == 1.0

    best = load_checkpoint(straight / 'best.pt')
    assert best['model_name'] == 'sync-tva'
    assert best['model_config']['hidden_channels'] == 16
    model, _ = model_from_checkpoint(best)
    assert isinstance(model, SyncTVA)

    scores = evaluate(str(straight / 'best.pt'))
    assert scores['wa_f1'] == pytest.approx(full['test']['wa_f1'])
    rows = predict(str(straight / 'best.pt'))
    corpus = load_corpus('synthetic-iemocap', num_dialogues=12, feature_dims=DIMS)
    test_y = torch.cat([d.y for d in corpus.test])
    assert len(rows) == test_y.numel()
    assert [r['dialogue_id'] for r in rows[:2]] == [corpus.test[0].dialogue_id] * 2
    assert [r['utterance'] for r in rows[:corpus.test[0].num_nodes]] == \
        list(range(corpus.test[0].num_nodes))
    names = full['label_names']
    assert [r['label'] for r in rows] == [names[int(c)] if c >= 0 else '' for c in test_y]
    labelled = test_y >= 0
    predicted = [names.index(r['predicted']) for r in rows]
    expected_f1 = 100 * f1_score(test_y[labelled].numpy(),
                                 np.array(predicted)[labelled.numpy()], average='weighted')
    assert scores['wa_f1'] == pytest.approx(expected_f1)
    for r in rows[:5]:
        assert sum(r[f'prob_{n}'] for n in names) == pytest.approx(1.0)

    # A checkpoint without 'model_name' (written before the registry) is AMB-DSGDN.
    amb = AMBDSGDN(DIMS, num_classes=len(names), num_speakers=2, hidden_channels=8)
    legacy = {'model_config': amb.config(), 'model_state': amb.state_dict()}
    assert isinstance(model_from_checkpoint(legacy)[0], AMBDSGDN)
    with pytest.raises(CheckpointError, match="'no-such-model'"):
        model_from_checkpoint({**legacy, 'model_name': 'no-such-model'})


def test_cross_window_reaches_the_sync_tva_graph(tmp_path):
    from dsgdn_pyg.data import CrossModalGraph
    from dsgdn_pyg.models import dialogue_transform

    config = tiny(model='sync-tva', cross_window=2)
    corpus = load_corpus('synthetic-iemocap', num_dialogues=12, feature_dims=DIMS)
    kwargs = model_kwargs(config, corpus, ['t', 'a', 'v'])
    assert kwargs['cross_window'] == 2
    transform = dialogue_transform('sync-tva', config.window, kwargs)
    assert isinstance(transform, CrossModalGraph) and transform.cross_window == 2
    with pytest.raises(ConfigError, match='Sync-TVA setting'):
        tiny(cross_window=2)  # AMB-DSGDN has no cross-modal edges


def test_amp_on_cuda_only(device, tmp_path):
    if device.type == 'cpu':
        with pytest.raises(ConfigError, match="'amp' needs a CUDA device"):
            train(tiny(amp=True))
        return
    runs = {}
    for amp in (False, True):
        out = tmp_path / f'amp{int(amp)}'
        metrics = train(tiny(amp=amp, device=str(device), epochs=2, out=str(out)))
        log = [json.loads(line) for line in (out / 'log.jsonl').read_text().splitlines()]
        runs[amp] = metrics, log, out
    (metrics, log, out), (_, plain_log, _) = runs[True], runs[False]
    assert all(np.isfinite(r['loss']) for r in log)
    # float16 changes the rounding, not the model: the first epoch's loss stays close.
    assert log[0]['loss'] == pytest.approx(plain_log[0]['loss'], rel=0.05)
    # The checkpoint scores what the run reported (evaluate() runs in float32, the run under
    # autocast: a prediction near a tie may flip, hence the tolerance of a few utterances).
    report = evaluate(str(out / 'best.pt'), device=str(device))
    assert report['wa_f1'] == pytest.approx(metrics['test']['wa_f1'], abs=5.0)
