r"""Dialogue context in a sentence encoder's input: each utterance (the *target*) with up to
:math:`P` previous and :math:`F` following turns of its dialogue and their speakers.

With ``text_context`` :math:`(P, F) \neq (0, 0)` the encoder reads, in word pieces::

    [CLS] spk: past_P ... spk: past_1 [SEP] spk_i: target_i [SEP] spk: next_1 ... next_F [SEP]

(the past or future segment and its ``[SEP]`` absent where it is empty), with segment id 1
(``token_type_ids``) on the target's word pieces and its ``[SEP]`` and 0 elsewhere, the layout
of EmoBERTa (`<s> past </s></s> current </s></s> future </s>`). A word-piece *budget* bounds
the input: the target is always whole, and turns are added nearest first (previous 1, next 1,
previous 2, ...) while they fit; the first that does not is cut on its far side and the
farther ones are left out, so truncation takes the farthest turns first and never the target.
The embedding is the mean over the target's word pieces (``pooling='target'``: they see the
context through attention, and the context does not dilute them) or over the whole input
(``'mean'``). A causal model uses :math:`F = 0`.

Encoder inputs are strings (the utterance alone, :math:`(0, 0)`) or ``(past, target,
future)`` tuples of ``"speaker: text"`` strings (:func:`dialogue_inputs`). An integer
``text_context`` :math:`K` means :math:`(K, 0)`. Encoders saved before (P, F) existed read the
legacy string ``"spk_i: text_i [SEP] spk_(i-1): text_(i-1) ..."`` (:func:`legacy_input`),
which they still get.
"""
from typing import Hashable, List, Sequence, Tuple, Union

#: Between the utterance and each previous one (legacy inputs).
CONTEXT_SEPARATOR = ' [SEP] '
#: Word pieces of the target utterance (99% of MELD's fit) plus those of each context turn
#: (24 cover 90% of MELD's turns with their speakers), capped (see :func:`context_budget`).
CONTEXT_TOKENS_PER_UTTERANCE = 24
MAX_CONTEXT_BUDGET = 128
#: The most word pieces a target keeps (BERT-family models have 512 positions).
MAX_TARGET_TOKENS = 500
POOLINGS = ('target', 'mean')

Turn = Tuple[Hashable, str]  # (speaker, text)
Context = Tuple[int, int]  # (previous, following) turns
ContextInput = Tuple[Tuple[str, ...], str, Tuple[str, ...]]  # (past, target, future)


def parse_context(value) -> Context:
    r""":obj:`value` as (previous, following) turns: an integer :math:`K` (= ``(K, 0)``), a
    string ``"P"`` or ``"P,F"``, or a pair."""
    pair = value
    if isinstance(value, str):
        try:
            pair = [int(v) for v in value.split(',')]
        except ValueError:
            pair = None
    elif isinstance(value, int) and not isinstance(value, bool):
        pair = [value, 0]
    ok = (isinstance(pair, (list, tuple)) and len(pair) in (1, 2)
          and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in pair))
    if not ok:
        raise ValueError(f"'text_context' must be P or P,F (non-negative integers: previous "
                         f"and following turns in the encoder input), got {value!r}")
    return int(pair[0]), int(pair[1]) if len(pair) == 2 else 0


def context_setting(value) -> Union[int, List[int]]:
    r"""The stored form of a ``text_context`` setting: :math:`P` where :math:`F = 0` (as
    before F existed, so those caches and checkpoints stay valid), else ``[P, F]``."""
    past, future = parse_context(value)
    return past if future == 0 else [past, future]


def check_context(context) -> int:
    r"""A legacy :obj:`context`: a number of previous utterances (a non-negative integer)."""
    if not isinstance(context, int) or isinstance(context, bool) or context < 0:
        raise ValueError(f"'text_context' must be a non-negative integer (previous "
                         f"utterances in the encoder input), got {context!r}")
    return context


def check_pooling(pooling: str) -> str:
    if pooling not in POOLINGS:
        raise ValueError(f"'text_pooling' must be one of {', '.join(POOLINGS)}, got "
                         f"{pooling!r}")
    return pooling


def context_budget(context, utterance_tokens: int = 48) -> int:
    r"""The default word-piece budget of an encoder that reads :obj:`context` turns:
    :obj:`utterance_tokens` plus 24 per context turn, at most 128."""
    past, future = parse_context(context)
    if past + future == 0:
        return utterance_tokens
    return min(MAX_CONTEXT_BUDGET, utterance_tokens + CONTEXT_TOKENS_PER_UTTERANCE * (
        past + future))


def context_max_seq_length(context: int, utterance_tokens: int = 48) -> int:
    r"""The ``max_seq_length`` of a legacy encoder with :obj:`context` previous utterances:
    :obj:`utterance_tokens` plus 24 per previous utterance."""
    return utterance_tokens + CONTEXT_TOKENS_PER_UTTERANCE * check_context(context)


def turn_text(speaker: Hashable, text: str) -> str:
    return f'{speaker}: {text}'


def legacy_input(speaker: Hashable, text: str, previous: Sequence[Turn]) -> str:
    r"""The legacy encoder input of one utterance given the :obj:`previous` turns (all used):
    the utterance first, then the previous ones, most recent first."""
    parts = [turn_text(speaker, text)] + [turn_text(s, t) for s, t in reversed(list(previous))]
    return CONTEXT_SEPARATOR.join(parts)


context_input = legacy_input  # the name before (P, F) existed


def target_input(speaker: Hashable, text: str, previous: Sequence[Turn],
                 following: Sequence[Turn] = ()) -> ContextInput:
    r"""The encoder input of one target utterance with its context turns (in spoken order;
    all of them are used)."""
    return (tuple(turn_text(s, t) for s, t in previous), turn_text(speaker, text),
            tuple(turn_text(s, t) for s, t in following))


def dialogue_inputs(turns: Sequence[Turn], context, legacy: bool = False) -> list:
    r"""The encoder input of every utterance of one dialogue (``(speaker, text)`` turns in
    order) with :obj:`context` = (P, F) turns around it; (0, 0) gives the texts unchanged.
    :obj:`legacy`: the strings of encoders saved before (P, F) (past turns only)."""
    past, future = parse_context(context)
    turns = list(turns)
    if past + future == 0:
        return [text for _, text in turns]
    if legacy:
        return [legacy_input(s, t, turns[max(0, i - past):i]) for i, (s, t) in enumerate(turns)]
    return [target_input(s, t, turns[max(0, i - past):i], turns[i + 1:i + 1 + future])
            for i, (s, t) in enumerate(turns)]


def assemble(past: Sequence[Sequence[int]], target: Sequence[int],
             future: Sequence[Sequence[int]], budget: int, cls_id: int, sep_id: int
             ) -> Tuple[List[int], List[int], Tuple[int, int]]:
    r"""The word pieces of one input (see the module docstring) from the word pieces of its
    past turns (spoken order), target and future turns, within :obj:`budget` pieces (the
    target whole, up to 500). Returns the ids, the segment ids and the target's span
    ``[start, end)``."""
    target = list(target)[:MAX_TARGET_TOKENS]
    used = len(target) + 2  # [CLS] target [SEP]
    kept = {'past': [], 'future': []}
    order = []  # nearest first, previous before following at the same distance
    for d in range(max(len(past), len(future))):
        if d < len(past):
            order.append(('past', list(past[len(past) - 1 - d])))
        if d < len(future):
            order.append(('future', list(future[d])))
    for side, ids in order:
        room = budget - used - (0 if kept[side] else 1)  # the side's own [SEP]
        if room <= 0:
            break
        piece = ids if len(ids) <= room else (ids[-room:] if side == 'past' else ids[:room])
        kept[side].append(piece)
        used += len(piece) + (0 if len(kept[side]) > 1 else 1)
        if len(piece) < len(ids):
            break
    past_ids = [i for piece in reversed(kept['past']) for i in piece]
    ids = [cls_id] + past_ids + ([sep_id] if kept['past'] else [])
    start = len(ids)
    ids += target + [sep_id]
    end = start + len(target)
    types = [0] * start + [1] * (len(target) + 1)
    if kept['future']:
        future_ids = [i for piece in kept['future'] for i in piece] + [sep_id]
        ids += future_ids
        types += [0] * len(future_ids)
    return ids, types, (start, end)


def tokenize_inputs(tokenizer, items: Sequence[ContextInput], budget: int):
    r"""A padded batch of :obj:`items`: ``input_ids``, ``attention_mask``, ``token_type_ids``
    and ``target_mask`` (1 on the target's word pieces), each ``[B, T]``."""
    import torch  # here: the settings import this module without torch

    strings = sorted({s for past, target, future in items for s in (*past, target, *future)})
    pieces = dict(zip(strings, tokenizer(strings, add_special_tokens=False)['input_ids']))
    rows = [assemble([pieces[s] for s in past], pieces[target], [pieces[s] for s in future],
                     budget, tokenizer.cls_token_id, tokenizer.sep_token_id)
            for past, target, future in items]
    width = max(len(ids) for ids, _, _ in rows)
    batch = {k: torch.zeros(len(rows), width, dtype=torch.long) for k in (
        'input_ids', 'attention_mask', 'token_type_ids', 'target_mask')}
    batch['input_ids'].fill_(tokenizer.pad_token_id)
    for b, (ids, types, (start, end)) in enumerate(rows):
        batch['input_ids'][b, :len(ids)] = torch.tensor(ids)
        batch['attention_mask'][b, :len(ids)] = 1
        batch['token_type_ids'][b, :len(ids)] = torch.tensor(types)
        batch['target_mask'][b, start:end] = 1
    return batch


def input_lengths(tokenizer, items: Sequence[ContextInput], budget: int) -> List[int]:
    r"""The word pieces of each input (for length-bucketed batches)."""
    return [int(n) for n in tokenize_inputs(tokenizer, items, budget)['attention_mask'].sum(1)]


def pooled_context(st, items: Sequence[ContextInput], pooling: str, budget: int,
                   device: str = 'cpu'):
    r"""Embeddings ``[B, D]`` of :obj:`items` by the transformer of the
    `sentence-transformers` model :obj:`st`: its token embeddings averaged over the target's
    word pieces (``pooling='target'``) or over the whole input (``'mean'``)."""
    batch = {k: v.to(device) for k, v in tokenize_inputs(st.tokenizer, items, budget).items()}
    tokens = st[0].auto_model(input_ids=batch['input_ids'],
                              attention_mask=batch['attention_mask'],
                              token_type_ids=batch['token_type_ids'])[0]
    mask = batch['target_mask' if pooling == 'target' else 'attention_mask']
    mask = mask.unsqueeze(-1).to(tokens.dtype)
    return (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


def encoder_context(encoder) -> Context:
    r"""The (previous, following) turns :obj:`encoder` reads with each utterance ((0, 0) for
    encoders without a ``context`` attribute, such as TF-IDF)."""
    return parse_context(getattr(encoder, 'context', 0) or 0)


def encoder_inputs(encoder, turns: Sequence[Turn]) -> list:
    r"""The inputs of :obj:`encoder` for every utterance of one dialogue."""
    return dialogue_inputs(turns, encoder_context(encoder),
                           legacy=bool(getattr(encoder, 'legacy_context', False)))


def live_input(encoder, speaker: Hashable, text: str, previous: Sequence[Turn]):
    r"""The input of :obj:`encoder` for a new utterance of a live dialogue given its
    :obj:`previous` turns (the last P kept): what :func:`encoder_inputs` gives it once the
    dialogue is whole. An encoder that reads following turns cannot run live."""
    past, future = encoder_context(encoder)
    if future:
        raise ValueError(f"the text encoder reads {future} following turns: it cannot embed "
                         f"a live utterance (train with --causal, which reads past turns only)")
    if past == 0:
        return text
    previous = list(previous)[-past:]
    if getattr(encoder, 'legacy_context', False):
        return legacy_input(speaker, text, previous)
    return target_input(speaker, text, previous)


def embed_dialogues(encoder, dialogues: Sequence[Sequence[Turn]]):
    r"""Features ``[N, D]`` of every utterance of :obj:`dialogues` (each a sequence of
    ``(speaker, text)`` turns), in order, each embedded with the context
    :obj:`encoder` was trained with (:func:`encoder_context`). One ``transform`` call for
    all of them: far faster than one per dialogue."""
    return encoder.transform([x for turns in dialogues for x in encoder_inputs(encoder, turns)])


__all__ = ['CONTEXT_SEPARATOR', 'POOLINGS', 'assemble', 'check_context', 'check_pooling',
           'context_budget', 'context_input', 'context_max_seq_length', 'context_setting',
           'dialogue_inputs', 'embed_dialogues', 'encoder_context', 'encoder_inputs',
           'input_lengths', 'legacy_input', 'live_input', 'parse_context', 'pooled_context',
           'target_input', 'tokenize_inputs']
