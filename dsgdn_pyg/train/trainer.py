r"""The training loop of AMB-DSGDN: :func:`train`.

One call loads the corpus, builds the dialogue graphs once, trains with Adam, evaluates on
the validation and test splits after every epoch, selects the best epoch on one of them and
(optionally) writes ``metrics.json``, ``log.jsonl``, ``best.pt`` and ``last.pt``.

Runs are reproducible: one seed fixes the model initialisation, dropout and the order of
the batches (each epoch shuffles with its own generator seeded from ``(seed, epoch)``), and
``resume=True`` restores the model, optimizer, RNG state and bookkeeping from ``last.pt``, so
an interrupted CPU run continues bit for bit like an uninterrupted one.

Under ``torchrun`` the same loop trains data-parallel (:mod:`dsgdn_pyg.train.distributed`):
each process takes its share of every global batch, the evaluation is split between the
processes, and only rank 0 logs and writes files.
"""
import json
import os
import time
from typing import Any, Callable, Dict, Optional, Sequence

import torch
from torch import Tensor
from torch_geometric.data import Batch, Data

from dsgdn_pyg import __version__
from dsgdn_pyg.data import DialogueCorpus
from dsgdn_pyg.loss import inverse_frequency_weights
from dsgdn_pyg.metrics import classification_metrics
from dsgdn_pyg.models import build_model, dialogue_transform
from dsgdn_pyg.train.checkpoint import (CheckpointError, atomic_write_text,
                                        check_config_matches, load_checkpoint, save_checkpoint)
from dsgdn_pyg.train.config import ConfigError, TrainConfig, check_against_corpus
from dsgdn_pyg.train.data import (ShardedBatchSampler, collate, load_dataset, model_kwargs,
                                  prepare_splits, torch_threads)
from dsgdn_pyg.train.distributed import (DistributedContext, TrainingBatches, data_parallel,
                                         distributed_context, launch, launched_by_torchrun,
                                         rank_seed)
from dsgdn_pyg.train.optim import adam
from dsgdn_pyg.train.progress import ModalityDropoutStats, echo, progress
from dsgdn_pyg.train.run_folder import check_run_folder, locked_run_folder
from dsgdn_pyg.train.step import grad_scaler, predict_logits, train_step

#: Settings that may change when a run is resumed; all others must match ``last.pt``.
RESUMABLE_FIELDS = ('epochs', 'patience', 'out', 'resume', 'quiet', 'device', 'num_threads',
                    'nproc_per_node')
TEST_SELECTION_WARNING = (
    "model selection on the TEST split is the authors' protocol, reproduced for comparison; "
    "its test scores are not a fair estimate of generalisation")


# --------------------------------------------------------------------------------------------
# Evaluation

def evaluate_batches(model: torch.nn.Module, batches: Sequence[Batch], label_names: Sequence[str],
                     device: torch.device, amp: bool = False,
                     context: Optional[DistributedContext] = None) -> Dict[str, Any]:
    r""":func:`~dsgdn_pyg.metrics.classification_metrics` of the arg-max of the fused logits;
    with a data-parallel :obj:`context`, each process computes its share of the batches."""
    context = context or DistributedContext(device=device)
    y, logits = context.predictions(lambda part: predict_logits(model, part, device, amp),
                                    batches)
    return classification_metrics(y, logits.argmax(dim=-1), label_names)


# --------------------------------------------------------------------------------------------
# Training

def train_epoch(model: torch.nn.Module, loader: Sequence[Batch], optimizer: torch.optim.Optimizer,
                scaler: 'torch.amp.GradScaler', device: torch.device, amp: bool,
                class_weight: Optional[Tensor], stats: ModalityDropoutStats,
                progress_desc: str = '', quiet: bool = True,
                focal_gamma: float = 0.0,
                all_reduce: Optional[Callable[[Tensor], Tensor]] = None) -> Dict[str, float]:
    r"""One pass over :obj:`loader`; returns the mean loss and its parts over the batches.

    In data-parallel training, :obj:`all_reduce` (the sum over the processes) makes the loss
    that of the global batch (:func:`~dsgdn_pyg.loss.multimodal_loss`).

    The loss is accumulated as a device tensor and read back once, at the end of the epoch,
    so the steps are not serialised by host synchronisations.
    """
    model.train()
    total: Optional[Tensor] = None
    parts_sum: Dict[str, Tensor] = {}
    steps = 0
    for batch in progress(loader, len(loader), progress_desc, quiet):
        batch = batch.to(device, non_blocking=True)
        track = stats.active()
        loss, parts = train_step(model, batch, optimizer, scaler, amp, class_weight,
                                 focal_gamma, all_reduce)
        if track:
            stats.update()
        loss = loss.detach()
        total = loss if total is None else total + loss
        for k, v in parts.items():
            parts_sum[k] = v if k not in parts_sum else parts_sum[k] + v
        steps += 1
    if steps == 0:
        return {'loss': float('nan')}
    result = {'loss': float(total) / steps}
    result.update({f'loss_{k}': float(v) / steps for k, v in parts_sum.items()})
    return result


def _summary_metrics(metrics: Dict[str, Any]) -> Dict[str, Any]:
    keep = ('wa_f1', 'wa_acc', 'per_class_f1', 'confusion', 'support', 'num_utterances')
    return {k: metrics[k] for k in keep if k in metrics}


def _rng_state(device: torch.device) -> Dict[str, Any]:
    state = {'cpu': torch.get_rng_state()}
    if device.type == 'cuda':
        state['cuda'] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: Dict[str, Any], device: torch.device):
    torch.set_rng_state(state['cpu'].cpu())
    if device.type == 'cuda' and 'cuda' in state:
        torch.cuda.set_rng_state(state['cuda'].cpu(), device)


def _class_weight(dialogues: Sequence[Data], num_classes: int,
                  device: torch.device) -> Tensor:
    y = torch.cat([d.y for d in dialogues])
    return inverse_frequency_weights(y, num_classes).to(device)


def _checkpoint_base(config: TrainConfig, model: torch.nn.Module, corpus: DialogueCorpus,
                     modalities: Sequence[str], epoch: int, external: bool) -> Dict[str, Any]:
    return {
        # A corpus handed to train() may not be reproducible from the dataset name and options.
        'external_corpus': external,
        'corpus_name': corpus.name,
        'model_name': config.model,
        'model_config': json.loads(json.dumps(model.config())),
        'model_state': model.state_dict(),
        'label_names': list(corpus.label_names),
        'dataset': config.dataset,
        'data_options': json.loads(json.dumps(config.loader_options())),
        'data_seed': config.data_seed,
        'window': config.window,
        'modalities': list(modalities),
        'feature_dims': {m: int(corpus.feature_dims[m]) for m in modalities},
        'num_speakers': int(corpus.num_speakers),
        'train_config': config.to_dict(),
        'epoch': epoch,
        'version': __version__,
        # The fitted text transform of a CSV corpus (plain tensors and lists), so that new
        # transcripts are featurised exactly as the training data was.
        'text_featurizer': corpus.meta.get('text_featurizer'),
        # Likewise the scaling of a CSV corpus's openSMILE audio features (dsgdn_pyg.audio).
        'audio_features': corpus.meta.get('audio_features'),
        # And the extractor (name, version, options) and scaling of its video features.
        'video_features': corpus.meta.get('video_features'),
    }


def train(config: TrainConfig, corpus: Optional[DialogueCorpus] = None) -> Dict[str, Any]:
    r"""Trains the model of :obj:`config.model` (AMB-DSGDN or Sync-TVA) and returns the
    metrics of the selected epoch.

    Args:
        config (TrainConfig): The run settings.
        corpus (DialogueCorpus, optional): Data to train on; loaded with
            :func:`~dsgdn_pyg.datasets.load_corpus` from :obj:`config.dataset`,
            :obj:`config.data_seed` and the data options if not given. Checkpoints of a run
            on a given corpus record that, and :func:`~dsgdn_pyg.inference.evaluate` then needs
            the corpus (or a dataset name) again. (default: :obj:`None`)

    Returns:
        dict: ``best_epoch`` (1-based), ``selected_on``, ``valid`` and ``test`` (each with
        ``wa_f1``, ``wa_acc`` in percent, ``per_class_f1``, ``confusion``, ...), ``dataset``,
        ``label_names``, ``modalities``, ``config``, ``seed``, ``epochs_run``,
        ``stopped_early``, ``num_parameters``, ``device``, ``elapsed_s``. The same dict is
        written to ``out/metrics.json`` when :obj:`config.out` is set.

    In a process started by ``torchrun``, the run is one of data-parallel processes; with
    :obj:`config.nproc_per_node` > 1 outside ``torchrun``, :func:`train` starts that many
    processes through ``torchrun`` (:func:`~dsgdn_pyg.train.distributed.launch`) and returns
    rank 0's metrics.

    Raises:
        ConfigError: If a setting does not fit the data (e.g. a missing modality).
        CheckpointError: If :obj:`config.resume` finds a ``last.pt`` of another configuration,
            or another live run writes :obj:`config.out`
            (:class:`~dsgdn_pyg.train.run_folder.RunFolderBusy`).
        DistributedError: If another process of a data-parallel run failed.
    """
    check_run_folder(config.out)  # before anything is loaded or started
    if (config.nproc_per_node or 1) > 1 and not launched_by_torchrun():
        if corpus is not None:
            detail = ("starts new processes, which cannot be handed a corpus object; give the "
                      "dataset by name, or start the processes with torchrun yourself")
            raise ConfigError(f"'nproc_per_node' {detail}", field='nproc_per_node',
                              detail=detail)
        return launch(config, config.nproc_per_node)
    with distributed_context(config.device) as context:
        with torch_threads(config.num_threads, context.device), \
                locked_run_folder(config.out, context, lambda m: echo(m, config.quiet, True)):
            return _train(config, corpus, context)


def _train(config: TrainConfig, corpus: Optional[DialogueCorpus],
           context: DistributedContext) -> Dict[str, Any]:
    start = time.perf_counter()
    device = context.device
    quiet = config.quiet or not context.is_main
    context.check_same_settings(config.to_dict())
    external = corpus is not None
    with context.agree('preparing the run'):
        corpus, modalities, kwargs, splits = _prepare(config, corpus, device)
    eval_batches = {s: collate(splits[s], config.batch_size) for s in ('valid', 'test')}
    for batches in eval_batches.values():  # the share of this process, on its device, once
        for i in context.own(len(batches)):
            batches[i] = batches[i].to(device)

    torch.manual_seed(config.seed)
    model = build_model(config.model, **kwargs).to(device)
    if context.rank > 0:  # own dropout masks for every process; rank 0 = the one-process run
        torch.manual_seed(rank_seed(config.seed, context.rank))
    optimizer = adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scaler = grad_scaler(device, config.amp)
    class_weight = _class_weight(splits['train'], corpus.num_classes, device) \
        if config.class_weights else None
    num_parameters = sum(p.numel() for p in model.parameters())

    state = {'epoch': 0, 'best_score': -1.0, 'best_epoch': 0, 'best': None,
             'since_best': 0, 'stopped_early': False, 'log': [], 'elapsed_s': 0.0}
    out = config.out
    writes = bool(out) and context.is_main
    last_path = os.path.join(out, 'last.pt') if out else None
    if writes:
        os.makedirs(out, exist_ok=True)
    found = context.all_gather_object(bool(config.resume and os.path.exists(last_path)))
    if any(found) and not all(found):
        raise CheckpointError(f"{last_path!r} exists for processes "
                              f"{[r for r, f in enumerate(found) if f]} but not for the others: "
                              f"'out' must be a directory all processes see")
    if found[0]:
        with context.agree(f"reading {last_path}"):
            state = _restore(last_path, config, model, optimizer, scaler, context)
        echo(f"resuming {last_path} after epoch {state['epoch']}", quiet)
    elif config.resume:
        echo(f"no checkpoint at {last_path}; starting from scratch", quiet)
    step_model = data_parallel(model, context)
    sampler = ShardedBatchSampler([d.num_nodes for d in splits['train']], config.batch_size,
                                  config.seed, context.rank, context.world_size)

    selected_on = config.select_on
    if selected_on == 'test':
        echo(f"Warning: {TEST_SELECTION_WARNING}", quiet, err=True)
    tag = '  [selected on test]' if selected_on == 'test' else ''
    stats = ModalityDropoutStats(model, modalities)
    session_start = time.perf_counter()
    elapsed_before = state['elapsed_s']

    epoch = state['epoch']
    while epoch < config.epochs and not state['stopped_early']:
        epoch_start = time.perf_counter()
        model.set_epoch(epoch)
        stats.reset()
        sampler.set_epoch(epoch)
        loader = TrainingBatches(splits['train'], sampler, stats.module, config.seed, epoch,
                                 device, context.all_reduce)
        losses = train_epoch(step_model, loader, optimizer, scaler, device, config.amp,
                             class_weight, stats,
                             f'training {config.model}, epoch {epoch + 1}/{config.epochs}', quiet,
                             focal_gamma=config.focal_gamma, all_reduce=context.all_reduce)
        losses['train_seconds'] = time.perf_counter() - epoch_start
        results = {s: evaluate_batches(model, eval_batches[s], corpus.label_names, device,
                                       config.amp, context) for s in ('valid', 'test')}
        epoch += 1
        score = results[selected_on]['wa_f1']
        improved = score > state['best_score']
        if improved:
            state.update(best_score=score, best_epoch=epoch, since_best=0,
                         best={s: _summary_metrics(results[s]) for s in ('valid', 'test')})
        else:
            state['since_best'] += 1
        if config.patience is not None and state['since_best'] >= config.patience:
            state['stopped_early'] = True
        seconds = time.perf_counter() - epoch_start
        state['log'].append(_epoch_record(epoch, losses, results, improved, seconds,
                                          stats.summary()))
        state['epoch'] = epoch
        state['elapsed_s'] = elapsed_before + time.perf_counter() - session_start

        echo(f"epoch {epoch}/{config.epochs}  loss {losses['loss']:.3f}  "
              f"valid F1 {results['valid']['wa_f1']:.1f}  test F1 {results['test']['wa_f1']:.1f}"
              f"  {seconds:.1f}s{'  *' if improved else ''}{tag}", quiet)
        # Every process's RNG state (its dropout masks), gathered for rank 0's last.pt.
        rng_states = context.all_gather_object(_rng_state(device)) if out else None
        if writes:
            base = _checkpoint_base(config, model, corpus, modalities, epoch, external)
            if improved:
                save_checkpoint(os.path.join(out, 'best.pt'),
                                {**base, 'kind': 'best', 'metrics': state['best']})
            save_checkpoint(last_path, {
                **base, 'kind': 'last',
                'optimizer_state': optimizer.state_dict(),
                'scaler_state': scaler.state_dict(),
                'rng_state': rng_states[0],
                'rng_states': rng_states,
                'world_size': context.world_size,
                'trainer_state': {k: state[k] for k in state if k != 'log'},
                'log': state['log'],
            })
            atomic_write_text(os.path.join(out, 'log.jsonl'),
                              ''.join(json.dumps(r) + '\n' for r in state['log']))
            metrics = _final_metrics(config, corpus, modalities, state, num_parameters,
                                     device, finished=False, world_size=context.world_size)
            atomic_write_text(os.path.join(out, 'metrics.json'), json.dumps(metrics, indent=2))
        if state['stopped_early']:
            echo(f"early stop: no improvement of {selected_on} F1 in {config.patience} "
                  f"epochs", quiet)

    state['elapsed_s'] = elapsed_before + time.perf_counter() - session_start
    metrics = _final_metrics(config, corpus, modalities, state, num_parameters, device,
                             finished=True, world_size=context.world_size)
    metrics['elapsed_s'] = elapsed_before + time.perf_counter() - start
    if writes:
        atomic_write_text(os.path.join(out, 'metrics.json'), json.dumps(metrics, indent=2))
    if state['best'] is not None:
        echo(f"best epoch {state['best_epoch']} (selected on {selected_on}): test weighted F1 "
              f"{metrics['test']['wa_f1']:.2f}  accuracy {metrics['test']['wa_acc']:.2f}"
              f"{tag}", quiet)
    return metrics


def _prepare(config: TrainConfig, corpus: Optional[DialogueCorpus], device: torch.device):
    r"""The corpus, modalities, model arguments and prepared splits of a run."""
    if config.amp and device.type != 'cuda':
        detail = f"needs a CUDA device, but the run uses {device}"
        raise ConfigError(f"'amp' {detail}", field='amp', detail=detail)
    if corpus is None:
        corpus = load_dataset(config.dataset, config.data_seed, config.loader_options())
    modalities = check_against_corpus(config, corpus.modalities)
    for split in ('train', 'valid', 'test'):
        if not corpus.split(split):
            raise ConfigError(f"dataset {config.dataset!r} has an empty {split} split")
    kwargs = model_kwargs(config, corpus, modalities)
    splits = prepare_splits(corpus, modalities, config.window,
                            transform=dialogue_transform(config.model, config.window, kwargs))
    return corpus, modalities, kwargs, splits


def _epoch_record(epoch: int, losses: Dict[str, float], results: Dict[str, Dict[str, Any]],
                  improved: bool, seconds: float,
                  modality_dropout: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    r"""One line of ``log.jsonl``."""
    record: Dict[str, Any] = {'epoch': epoch, **losses}
    for split in ('valid', 'test'):
        record[f'{split}_wa_f1'] = results[split]['wa_f1']
        record[f'{split}_wa_acc'] = results[split]['wa_acc']
    record.update(best=improved, seconds=seconds)
    if modality_dropout is not None:
        record['modality_dropout'] = modality_dropout
    return record


def _final_metrics(config: TrainConfig, corpus: DialogueCorpus, modalities: Sequence[str],
                   state: Dict[str, Any], num_parameters: int, device: torch.device,
                   finished: bool, world_size: int = 1) -> Dict[str, Any]:
    best = state['best'] or {}
    metrics = {
        'dataset': config.dataset,
        'label_names': list(corpus.label_names),
        'modalities': list(modalities),
        'selected_on': config.select_on,
        'best_epoch': state['best_epoch'],
        'valid': best.get('valid'),
        'test': best.get('test'),
        'epochs_run': state['epoch'],
        'stopped_early': state['stopped_early'],
        'finished': finished,
        'seed': config.seed,
        'num_parameters': num_parameters,
        'device': str(device),
        'world_size': world_size,
        'config': config.to_dict(),
        'version': __version__,
        'elapsed_s': state['elapsed_s'],
    }
    if config.select_on == 'test':
        metrics['selection_warning'] = TEST_SELECTION_WARNING
    return metrics


def _restore(path: str, config: TrainConfig, model: torch.nn.Module,
             optimizer: torch.optim.Optimizer, scaler: 'torch.amp.GradScaler',
             context: DistributedContext) -> Dict[str, Any]:
    device = context.device
    payload = load_checkpoint(path, map_location=device)
    processes = int(payload.get('world_size', 1))
    if processes != context.world_size:
        raise CheckpointError(f"checkpoint {path!r} was written by a run of {processes} "
                              f"process(es); resume it with {processes}, not "
                              f"{context.world_size} (each process has its own dropout masks)")
    if payload.get('kind') != 'last' or 'optimizer_state' not in payload:
        raise CheckpointError(f"checkpoint {path!r} is not a resumable last.pt (it holds no "
                              f"optimizer state)")
    check_config_matches('model', payload['model_config'], model.config(), path)
    check_config_matches('training configuration', payload['train_config'], config.to_dict(),
                         path, ignore=RESUMABLE_FIELDS)
    model.load_state_dict(payload['model_state'])
    optimizer.load_state_dict(payload['optimizer_state'])
    if payload['scaler_state']:  # empty from a run without loss scaling (bfloat16, float32)
        scaler.load_state_dict(payload['scaler_state'])
    _set_rng_state(payload['rng_states'][context.rank] if 'rng_states' in payload
                   else payload['rng_state'], device)
    state = dict(payload['trainer_state'])
    state['log'] = list(payload['log'])
    return state
