r"""Fine-tuning a sentence encoder on a corpus's labelled utterances, then using it frozen.

The two-stage recipe of COSMIC and DAG-ERC: a linear head on the encoder's pooled embedding
is trained with cross-entropy on the training split's utterances (no context), the epoch
with the best validation weighted F1 is kept, and the encoder is then a fixed feature
extractor for every split. The fine-tuned weights are written as safetensors under
``<cache root>/text-encoders/<key>/``, where ``<key>`` hashes the training and validation
texts and labels, the base model's files and every option, so the same data and options
reuse the file and any change fine-tunes again into another folder.
"""
import hashlib
import json
import math
import os
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch

from dsgdn_pyg.io import atomic_write, atomic_write_text
from dsgdn_pyg.text.context import check_pooling, input_lengths, pooled_context
from dsgdn_pyg.text.sentence import (DEFAULT_MAX_SEQ_LENGTH, MINILM, SentenceEncoder,
                                     _embedding_dimension, cpu_threads,
                                     load_sentence_transformer, model_identity)

FINETUNE_VERSION = 2  # 2: (past, target, future) inputs, pooling, bf16
WEIGHTS_FILE = 'encoder.safetensors'
INFO_FILE = 'finetune.json'
#: How the encoder is fine-tuned: all its weights, or LoRA adapters (:mod:`.lora`).
METHODS = ('full', 'lora')
#: AdamW's learning rate of the encoder by method: adapters start at zero and need more.
DEFAULT_LR = {'full': 5e-5, 'lora': 1e-3}


def finetune_options(epochs: int = 2, max_seq_length: int = DEFAULT_MAX_SEQ_LENGTH,
                     batch_size: int = 32, lr: Optional[float] = None,
                     head_lr: float = 5e-4, weight_decay: float = 0.01, warmup: float = 0.1,
                     seed: int = 0, pooling: str = 'target', bf16: bool = True,
                     method: str = 'full', lora_rank: int = 16,
                     lora_alpha: float = 32.0) -> Dict[str, Any]:
    r"""The checked fine-tuning options (see :func:`finetune_encoder`)."""
    if method not in METHODS:
        raise ValueError(f"'method' must be one of {METHODS}, got {method!r}")
    if lr is None:
        lr = DEFAULT_LR[method]
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise ValueError(f"'epochs' must be a positive integer, got {epochs!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"'batch_size' must be a positive integer, got {batch_size!r}")
    for name, value in (('lr', lr), ('head_lr', head_lr)):
        if not (isinstance(value, (int, float)) and value > 0):
            raise ValueError(f"'{name}' must be a positive number, got {value!r}")
    if not 0 <= warmup < 1:
        raise ValueError(f"'warmup' must be in [0, 1), got {warmup!r}")
    check_pooling(pooling)
    options = dict(epochs=epochs, max_seq_length=int(max_seq_length), batch_size=batch_size,
                   lr=float(lr), head_lr=float(head_lr), weight_decay=float(weight_decay),
                   warmup=float(warmup), seed=int(seed), pooling=pooling, bf16=bool(bf16))
    if method == 'lora':  # absent for a full fine-tune: its cache keys stay as they were
        if not isinstance(lora_rank, int) or isinstance(lora_rank, bool) or lora_rank < 1:
            raise ValueError(f"'lora_rank' must be a positive integer, got {lora_rank!r}")
        options.update(method=method, lora_rank=lora_rank, lora_alpha=float(lora_alpha))
    return options


def finetune_key(model: str, train_texts: Sequence[str], train_labels: Sequence[int],
                 valid_texts: Sequence[str], valid_labels: Sequence[int], num_classes: int,
                 options: Dict[str, Any]) -> str:
    r"""The content hash that names a fine-tuning's cache folder."""
    digest = hashlib.sha256()
    digest.update(json.dumps({
        'version': FINETUNE_VERSION, 'model': model_identity(model), 'options': options,
        'num_classes': int(num_classes),
        'train': [list(train_texts), [int(y) for y in train_labels]],
        'valid': [list(valid_texts), [int(y) for y in valid_labels]],
    }, sort_keys=True, ensure_ascii=False).encode('utf-8'))
    return digest.hexdigest()[:20]


def _pooled(model, texts: Sequence[str], device: str, pooling: str = 'mean',
            bf16: bool = False) -> torch.Tensor:
    # Every module but the final L2 normalisation: the head gets the pooled embedding.
    with bf16_autocast(device, bf16):
        x = _pooled_fp(model, texts, device, pooling)
    return x.float()


def bf16_autocast(device, enabled: bool = True):
    r"""bfloat16 autocast on :obj:`device` where it helps: on a CPU about twice the tokens
    per second of float32 (benchmarks/README), on a GPU that computes in it natively (else
    float32: emulated bfloat16 is slower; the rule of ``--amp``, ``train.step.amp_dtype``)."""
    kind = torch.device(device).type
    enabled = enabled and (kind == 'cpu' or (
        kind == 'cuda' and torch.cuda.is_bf16_supported(including_emulation=False)))
    return torch.autocast(kind, dtype=torch.bfloat16, enabled=enabled)


def _pooled_fp(model, texts, device, pooling):
    from sentence_transformers.models import Normalize

    if not isinstance(texts[0], str):
        return pooled_context(model, texts, pooling, model.max_seq_length, device)

    # sentence-transformers 5.x renamed tokenize to preprocess.
    features = getattr(model, 'preprocess', model.tokenize)(list(texts))
    features = {k: v.to(device) if torch.is_tensor(v) else v for k, v in features.items()}
    for module in model:
        if isinstance(module, Normalize):
            break
        features = module(features)
    return features['sentence_embedding']


def _token_lengths(model, texts: Sequence[str]) -> List[int]:
    tokenizer = model.tokenizer
    if texts and not isinstance(texts[0], str):
        return input_lengths(tokenizer, texts, model.max_seq_length)
    return [len(ids) for ids in tokenizer(list(texts), truncation=True,
                                          max_length=model.max_seq_length)['input_ids']]


def length_bucketed_batches(lengths: Sequence[int], batch_size: int,
                            generator: torch.Generator, pool: int = 50) -> List[List[int]]:
    r"""Shuffled batches of indices whose items have similar lengths: a random order is cut
    into pools of :obj:`pool` batches, each pool is sorted by length and cut into batches,
    and the batches are shuffled. Padding to the longest item then costs little (MELD's
    utterances are 5-48 word pieces), which makes fine-tuning about twice as fast."""
    order = torch.randperm(len(lengths), generator=generator).tolist()
    step = batch_size * pool
    batches = []
    for start in range(0, len(order), step):
        chunk = sorted(order[start:start + step], key=lambda i: lengths[i])
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]


def _weighted_f1(model, head, texts, labels, batch_size, device, pooling='mean',
                 bf16=False) -> float:
    from sklearn.metrics import f1_score

    model.eval()
    order = np.argsort(_token_lengths(model, texts), kind='stable')
    predictions = np.empty(len(texts), dtype=np.int64)
    with torch.inference_mode():
        for start in range(0, len(texts), 2 * batch_size):
            index = order[start:start + 2 * batch_size]
            logits = head(_pooled(model, [texts[i] for i in index], device, pooling, bf16))
            predictions[index] = logits.argmax(-1).cpu().numpy()
    model.train()
    return float(100 * f1_score(labels, predictions, average='weighted'))


def finetune_encoder(train_texts: Sequence[str], train_labels: Sequence[int],
                     valid_texts: Sequence[str], valid_labels: Sequence[int],
                     num_classes: int, model: str = MINILM, cache_root: Optional[str] = None,
                     quiet: bool = False, device: str = 'cpu', num_threads: Optional[int] = 1,
                     **options) -> SentenceEncoder:
    r"""Fine-tunes :obj:`model` with a linear head on the labelled training utterances and
    returns the encoder of the epoch with the best validation weighted F1 (cached).

    Args:
        train_texts (List[str]), train_labels (List[int]): Labelled training utterances.
        valid_texts (List[str]), valid_labels (List[int]): Those that select the epoch.
        num_classes (int): Number of labels.
        model (str): ``'minilm'``, a model name or a local folder. (default: ``'minilm'``)
        cache_root (str, optional): Cache root (default: ``$DSGDN_PYG_CACHE`` or
            ``~/.cache/dsgdn-pyg``).
        quiet (bool): No progress bars or per-epoch lines. (default: :obj:`False`)
        device (str): Where to train. (default: ``'cpu'``)
        num_threads (int, optional): PyTorch CPU threads while training; one is several
            times faster than two on a busy 2-core machine (:func:`cpu_threads`).
            :obj:`None` = unchanged. (default: :obj:`1`)
        **options: ``epochs`` (2), ``max_seq_length`` (48), ``batch_size`` (32), ``lr``
            (5e-5, AdamW, encoder), ``head_lr`` (5e-4), ``weight_decay`` (0.01),
            ``warmup`` (0.1 of the steps, then linear decay), ``seed`` (0: head
            initialisation, dropout and shuffling), ``method`` (``'full'``: every weight;
            ``'lora'``: LoRA adapters of ``lora_rank`` 16 and ``lora_alpha`` 32 on every
            linear layer, with :mod:`peft`, written as a small delta over the base model,
            :mod:`dsgdn_pyg.text.lora`; its ``lr`` defaults to 1e-3).

    Returns:
        SentenceEncoder: Without standardisation; its ``info`` holds the validation F1 of
        every epoch and the selected one.
    """
    from dsgdn_pyg.io import default_cache_root

    options = finetune_options(**options)
    train_texts, valid_texts = list(train_texts), list(valid_texts)
    train_labels = [int(y) for y in train_labels]
    valid_labels = [int(y) for y in valid_labels]
    if not train_texts or len(train_texts) != len(train_labels):
        raise ValueError(f"fine-tuning needs labelled training utterances (got "
                         f"{len(train_texts)} texts and {len(train_labels)} labels)")
    if not valid_texts or len(valid_texts) != len(valid_labels):
        raise ValueError(f"fine-tuning needs labelled validation utterances to select the "
                         f"epoch (got {len(valid_texts)} texts, {len(valid_labels)} labels)")
    bad = [y for y in train_labels + valid_labels if not 0 <= y < num_classes]
    if bad:
        raise ValueError(f"label {bad[0]} is outside [0, {num_classes})")
    key = finetune_key(model, train_texts, train_labels, valid_texts, valid_labels,
                       num_classes, options)
    folder = os.path.join(cache_root or default_cache_root(), 'text-encoders', key)
    weights = os.path.join(folder, WEIGHTS_FILE)
    info_path = os.path.join(folder, INFO_FILE)
    if os.path.isfile(weights) and os.path.isfile(info_path):
        with open(info_path, encoding='utf-8') as f:
            info = json.load(f)
        return SentenceEncoder(model, options['max_seq_length'], weights=weights,
                               weights_sha256=info['weights_sha256'], info=info,
                               pooling=options['pooling'])

    start = time.perf_counter()
    with cpu_threads(num_threads if device == 'cpu' else None):
        info = _finetune(train_texts, train_labels, valid_texts, valid_labels, num_classes,
                         model, options, weights, quiet, device)
    info['seconds'] = round(time.perf_counter() - start, 1)
    atomic_write_text(info_path, json.dumps(info, indent=2))
    return SentenceEncoder(model, options['max_seq_length'], weights=weights,
                           weights_sha256=info['weights_sha256'], info=info,
                               pooling=options['pooling'])


def _finetune(train_texts, train_labels, valid_texts, valid_labels, num_classes, model,
              options, weights, quiet, device) -> Dict[str, Any]:
    from safetensors.torch import save as safetensors_bytes
    from tqdm.auto import tqdm

    torch.manual_seed(options['seed'])
    st = load_sentence_transformer(model, options['max_seq_length'], device=device,
                                   quiet=quiet)
    lora = options.get('method') == 'lora'
    if lora:
        from dsgdn_pyg.text.lora import add_lora

        add_lora(st, options['lora_rank'], options['lora_alpha'], dropout=0.1)
        st.to(device)
    st.train()
    head = torch.nn.Linear(_embedding_dimension(st), num_classes).to(device)
    trained = [(n, p) for n, p in st.named_parameters() if p.requires_grad]
    decay = [p for n, p in trained if not any(
        s in n for s in ('bias', 'LayerNorm', 'layer_norm'))]
    no_decay = [p for n, p in trained if any(
        s in n for s in ('bias', 'LayerNorm', 'layer_norm'))]
    optimizer = torch.optim.AdamW([
        {'params': decay, 'lr': options['lr'], 'weight_decay': options['weight_decay']},
        {'params': no_decay, 'lr': options['lr'], 'weight_decay': 0.0},
        {'params': head.parameters(), 'lr': options['head_lr'], 'weight_decay': 0.0}])
    steps_per_epoch = math.ceil(len(train_texts) / options['batch_size'])
    total = steps_per_epoch * options['epochs']
    warmup = max(1, int(options['warmup'] * total))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / (total - warmup
                                                                            or 1))))
    labels_t = torch.tensor(train_labels, device=device)
    generator = torch.Generator().manual_seed(options['seed'])
    history: List[float] = []
    epoch_seconds: List[float] = []
    best_f1, best_epoch, best_state = -1.0, 0, None
    lengths = _token_lengths(st, train_texts)
    for epoch in range(1, options['epochs'] + 1):
        batches = length_bucketed_batches(lengths, options['batch_size'], generator)
        epoch_start = time.perf_counter()
        bar = tqdm(batches, disable=quiet, leave=False,
                   desc=f'fine-tuning {_short_name(model)}, epoch {epoch}/{options["epochs"]}',
                   unit='batch')
        for batch in bar:
            logits = head(_pooled(st, [train_texts[i] for i in batch], device,
                                  options['pooling'], options['bf16']))
            loss = torch.nn.functional.cross_entropy(logits, labels_t[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(st.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            bar.set_postfix(loss=f'{loss.item():.3f}', refresh=False)
        seconds = time.perf_counter() - epoch_start
        f1 = _weighted_f1(st, head, valid_texts, valid_labels, options['batch_size'], device,
                          options['pooling'], options['bf16'])
        epoch_seconds.append(round(seconds, 1))
        history.append(f1)
        if not quiet:
            print(f'fine-tune epoch {epoch}: valid weighted F1 {f1:.2f} ({seconds:.0f} s, '
                  f'{sum(lengths) / seconds:.0f} word pieces/s)', file=sys.stderr)
        if f1 > best_f1:
            best_f1, best_epoch = f1, epoch
            best_state = _tuned_state(st, lora)
    if lora:  # the adapters, exactly, as a delta over the base model (dsgdn_pyg.text.delta)
        from dsgdn_pyg.text.delta import delta_bytes

        data = delta_bytes(best_state, model_identity(model))
    else:
        data = safetensors_bytes(best_state)
    atomic_write(weights, lambda f: f.write(data))
    info = {'model': model, 'options': options, 'valid_weighted_f1': history,
            'selected_epoch': best_epoch, 'weights_sha256': hashlib.sha256(data).hexdigest(),
            'num_train': len(train_texts), 'num_valid': len(valid_texts),
            'epoch_seconds': epoch_seconds, 'train_word_pieces': int(sum(lengths))}
    return info


def _tuned_state(st, lora: bool) -> Dict[str, torch.Tensor]:
    # A copy on the CPU of what the epoch changed: the adapters, or every weight.
    if lora:
        from dsgdn_pyg.text.lora import lora_delta

        return lora_delta(st)
    return {k: v.detach().to('cpu', copy=True).contiguous() for k, v in st.state_dict().items()}


def _short_name(model: str) -> str:
    # 'minilm', a hub name, or the last part of a local folder's path, for the progress bar.
    return os.path.basename(os.path.normpath(model)) if os.path.isdir(model) else model


__all__ = ['finetune_encoder', 'finetune_key', 'finetune_options']
