r"""Validation of a run configuration: every field by its declared check, the checks that
involve several fields, and the checks against the loaded corpus. Torch-free."""
import dataclasses
from typing import Any, List, Sequence

from dsgdn_pyg.names import MODALITIES
from dsgdn_pyg.train.checks import TYPE_CHECKS, ConfigError, _anything, _fail, _format_pairs
from dsgdn_pyg.train.declaration import accepts_none, setting_of, value_type
from dsgdn_pyg.train.presets import is_transcript_dataset



def validate_config(config: Any) -> None:
    r"""Checks every field of :obj:`config` with its declared check (normalising it, e.g.
    ``'t,a'`` to ``['t', 'a']``), then :func:`check_combinations`; raises
    :class:`ConfigError` naming the field.

    Checks that need the data (e.g. whether the corpus has the requested modalities) are
    made by the trainer once the corpus is loaded (:func:`check_against_corpus`).
    """
    for f in dataclasses.fields(config):
        setattr(config, f.name, check_field(f, getattr(config, f.name)))
    check_combinations(config)


def check_field(f: dataclasses.Field, value: Any) -> Any:
    r"""The value of field :obj:`f` as its declaration accepts it (parsed from a string where
    the field has a parser, normalised); raises :class:`ConfigError` naming the field."""
    meta = setting_of(f)
    if value is None and accepts_none(f):
        return None
    check = meta.check or TYPE_CHECKS.get(value_type(f), _anything)
    try:
        if isinstance(value, str) and meta.parse is not None:
            value = meta.parse(value)
        return check(value)
    except ConfigError:
        raise
    except ValueError as e:
        _fail(f.name, str(e))


def check_combinations(config: Any) -> None:
    r"""The checks that involve more than one field."""
    c = config
    if c.resume and c.out is None:
        _fail('resume', "needs an output directory 'out' holding last.pt")
    for name in ('text_encoder', 'text_finetune_epochs'):
        if getattr(c, name) is not None and not is_transcript_dataset(c.dataset):
            _fail(name, f"applies only to transcript datasets (csv:DIR, meld-csv:DIR), not "
                        f"{c.dataset!r}")
    if c.text_context and not is_transcript_dataset(c.dataset):
        _fail('text_context', f"applies only to transcript datasets (csv:DIR, meld-csv:DIR), "
              f"not {c.dataset!r}")
    if c.text_context and c.text_encoder == 'tfidf':
        _fail('text_context', "needs a sentence encoder (text_encoder 'minilm' or a model "
              "name or path), not 'tfidf'")
    if c.causal and isinstance(c.text_context, list) and c.text_context[1] > 0:
        _fail('text_context', f"reads {c.text_context[1]} following turns, but a causal model "
              f"reads nothing of the future: give P,0 (or P) with --causal")
    if c.model == 'amb-dsgdn' and c.cross_window != 0:
        _fail('cross_window', f"is a Sync-TVA setting; model 'amb-dsgdn' has no cross-modal "
              f"edges (got {c.cross_window!r})")
    if c.model == 'sync-tva':
        for name, off in (('fusion_weights', None), ('context_window', None),
                          ('checkpoint_activations', False), ('causal', False)):
            if getattr(c, name) != off:
                _fail(name, f"is an AMB-DSGDN setting; model 'sync-tva' has no use for it "
                      f"(got {getattr(c, name)!r})")


def check_against_corpus(config: Any, available: Sequence[str]) -> List[str]:
    r"""The modalities a run uses: :obj:`config.modalities` checked against those the corpus
    has (:obj:`available`), or all of them. Also checks that the fusion weights name exactly
    the used modalities."""
    available = [m for m in MODALITIES if m in available]
    modalities = list(available) if config.modalities is None else list(config.modalities)
    missing = [m for m in modalities if m not in available]
    if missing:
        _fail('modalities', f"asks for {','.join(missing)} but dataset {config.dataset!r} has "
              f"only {','.join(available)}")
    if config.fusion_weights is not None and set(config.fusion_weights) != set(modalities):
        _fail('fusion_weights', f"must give one weight per used modality "
              f"({','.join(modalities)}), got {_format_pairs(config.fusion_weights)}")
    return modalities
