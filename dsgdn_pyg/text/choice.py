r"""The choice of text encoder, in one place: which encoder a name stands for
(``'tfidf'``: :class:`~dsgdn_pyg.text.TfidfFeaturizer`; ``'minilm'``, ``'mpnet'``, a
sentence-transformers model name or a folder: :class:`~dsgdn_pyg.text.SentenceEncoder`,
fine-tuned first when asked) and its options, checked once for the run settings and the
loaders alike.

Torch-free (the encoders are imported when one is made), so that the run settings can use
the checks without importing torch.
"""
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple

from dsgdn_pyg.text.context import (Turn, check_pooling, context_budget, context_setting,
                                    dialogue_inputs, parse_context)

#: A split's encoder inputs and label indices, what fine-tuning trains on.
Labelled = Callable[[str], Tuple[Sequence[str], Sequence[int]]]


def check_text_encoder(name: Any) -> str:
    r"""The encoder name, if it is one (``'tfidf'``, ``'minilm'``, ``'mpnet'``, a model name
    or a path)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"must be 'tfidf', 'minilm', 'mpnet', a model name or a path, got "
                         f"{name!r}")
    return name


def text_encoder_options(name: Any, epochs: Any, extra: Optional[Mapping[str, Any]] = None,
                         context=0, pooling: str = 'target') -> Tuple[str, Dict[str, Any]]:
    r"""The checked encoder name and its fine-tuning options (``epochs`` 0 = frozen; empty
    for ``'tfidf'``): :obj:`epochs` is ``text_finetune_epochs``, :obj:`extra` the further
    options of :func:`~dsgdn_pyg.text.finetune.finetune_options`, :obj:`context` the
    (previous, following) turns in an input and :obj:`pooling` its pooling
    (:mod:`dsgdn_pyg.text.context`).

    Raises:
        ValueError: Naming the option that is wrong.
    """
    try:
        check_text_encoder(name)
    except ValueError as e:
        raise ValueError(f"'text_encoder' {e}") from None
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 0:
        raise ValueError(f"'text_finetune_epochs' must be a non-negative integer, got "
                         f"{epochs!r}")
    past, future = parse_context(context)
    check_pooling(pooling)
    if name == 'tfidf':
        if past + future:
            raise ValueError(f"'text_context' ({context_setting(context)}) needs a sentence "
                             f"encoder ('minilm' or a model), not 'tfidf'")
        return name, {}
    extra = dict(extra or {})
    # Longer inputs with context: a word-piece budget with room for the context turns.
    extra.setdefault('max_seq_length', context_budget(context))
    if past + future:  # absent without context: those cache keys stay as they were
        extra.setdefault('pooling', pooling)
    if epochs == 0:
        return name, {'epochs': 0, **{k: extra[k] for k in ('max_seq_length', 'pooling')
                                      if k in extra}}
    from dsgdn_pyg.text.finetune import finetune_options

    return name, finetune_options(epochs=epochs, **extra)


def make_text_encoder(name: str, finetune: Optional[Mapping[str, Any]],
                      tfidf_options: Mapping[str, Any], train_turns: Sequence[Sequence[Turn]],
                      labelled: Labelled, num_classes: int, quiet: bool = False,
                      context=0, device: Optional[str] = None):
    r"""The text encoder :obj:`name` (options from :func:`text_encoder_options`), fitted on
    the training dialogues' :obj:`train_turns`: TF-IDF with :obj:`tfidf_options`, or a
    sentence encoder, fine-tuned first on :obj:`labelled` (``'train'`` and ``'valid'``) when
    ``finetune['epochs'] > 0`` and standardised on the training split; every input holds
    :obj:`context` = (P, F) turns around its utterance. A sentence encoder is fine-tuned
    and embeds on :obj:`device` (:obj:`None`: the CPU, on one thread)."""
    if name == 'tfidf':
        from dsgdn_pyg.text.tfidf import TfidfFeaturizer

        return TfidfFeaturizer(**tfidf_options).fit([text for turns in train_turns
                                                     for _, text in turns])
    from dsgdn_pyg.text.sentence import SentenceEncoder

    finetune = dict(finetune or {})
    cache_root = finetune.pop('cache_root', None)
    device = str(device or 'cpu')
    on_cpu = device == 'cpu'
    if finetune.get('epochs', 0) > 0:
        from dsgdn_pyg.text.finetune import finetune_encoder

        encoder = finetune_encoder(*labelled('train'), *labelled('valid'),
                                   num_classes=num_classes, model=name,
                                   cache_root=cache_root, quiet=quiet, device=device,
                                   num_threads=1 if on_cpu else None, **finetune)
        encoder.context = context_setting(context)
    else:
        encoder = SentenceEncoder(name, finetune.get('max_seq_length', 48), context=context,
                                  pooling=finetune.get('pooling', 'target'))
    encoder.quiet = quiet
    if on_cpu:
        encoder.num_threads = 1  # see dsgdn_pyg.text.sentence.cpu_threads
    encoder.to(device)
    encoder.stage = 'embedding train'  # the progress bar's name
    return encoder.fit([x for turns in train_turns for x in dialogue_inputs(turns, context)])
