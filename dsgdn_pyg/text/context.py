r"""Context in a sentence encoder's input: each utterance with the previous ones of its
dialogue and their speakers.

With :obj:`context` :math:`K > 0` the input of utterance :math:`i` is::

    "{speaker_i}: {text_i} [SEP] {speaker_(i-1)}: {text_(i-1)} [SEP] ... {speaker_(i-K)}: ..."

The current utterance comes first and the previous ones follow, most recent first, so that
the tokenizer's truncation (from the right, at ``max_seq_length`` word pieces) drops the
oldest context first and never the utterance itself. ``[SEP]`` is the separator token of
BERT-family tokenizers (all-MiniLM-L6-v2's), which read it as that token; for other models it
is a plain marker. :math:`K = 0` gives the utterance's text alone, as without context.
"""
from typing import Hashable, List, Sequence, Tuple

#: Between the utterance and each previous one.
CONTEXT_SEPARATOR = ' [SEP] '
#: Word pieces of the current utterance (99% of MELD's fit) plus those of each previous
#: utterance (24 cover 90% of MELD's contexts of K = 1 and 2; see benchmarks/README.md).
CONTEXT_TOKENS_PER_UTTERANCE = 24

Turn = Tuple[Hashable, str]  # (speaker, text)


def check_context(context) -> int:
    r""":obj:`context` as a number of previous utterances (a non-negative integer)."""
    if not isinstance(context, int) or isinstance(context, bool) or context < 0:
        raise ValueError(f"'text_context' must be a non-negative integer (previous "
                         f"utterances in the encoder input), got {context!r}")
    return context


def context_max_seq_length(context: int, utterance_tokens: int = 48) -> int:
    r"""The default ``max_seq_length`` of an encoder whose input holds :obj:`context`
    previous utterances: :obj:`utterance_tokens` plus 24 per previous utterance."""
    return utterance_tokens + CONTEXT_TOKENS_PER_UTTERANCE * check_context(context)


def context_input(speaker: Hashable, text: str, previous: Sequence[Turn]) -> str:
    r"""The encoder input of one utterance given the :obj:`previous` turns of its dialogue
    (``(speaker, text)`` in the order spoken; all of them are used)."""
    parts = [f'{speaker}: {text}']
    parts += [f'{s}: {t}' for s, t in reversed(list(previous))]
    return CONTEXT_SEPARATOR.join(parts)


def dialogue_inputs(turns: Sequence[Turn], context: int) -> List[str]:
    r"""The encoder input of every utterance of one dialogue (``(speaker, text)`` turns in
    order) with the :obj:`context` previous utterances of the same dialogue; :obj:`context`
    0 gives the texts unchanged."""
    context = check_context(context)
    turns = list(turns)
    if context == 0:
        return [text for _, text in turns]
    return [context_input(s, t, turns[max(0, i - context):i])
            for i, (s, t) in enumerate(turns)]


def encoder_context(encoder) -> int:
    r"""The previous utterances :obj:`encoder` reads with each one (0 for encoders without
    a ``context`` attribute, such as TF-IDF)."""
    return int(getattr(encoder, 'context', 0) or 0)


def embed_dialogues(encoder, dialogues: Sequence[Sequence[Turn]]):
    r"""Features ``[N, D]`` of every utterance of :obj:`dialogues` (each a sequence of
    ``(speaker, text)`` turns), in order, each embedded with the context
    :obj:`encoder` was trained with (:func:`encoder_context`). One ``transform`` call for
    all of them: far faster than one per dialogue."""
    k = encoder_context(encoder)
    return encoder.transform([x for turns in dialogues for x in dialogue_inputs(turns, k)])


__all__ = ['CONTEXT_SEPARATOR', 'check_context', 'context_input', 'context_max_seq_length',
           'dialogue_inputs', 'embed_dialogues', 'encoder_context']
