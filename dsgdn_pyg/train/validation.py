r"""Validation of a run configuration: every field by its declared check, the scope of the
model's and the dataset kind's settings, the checks that involve several fields, and the
checks against the loaded corpus. Torch-free."""
import dataclasses
from typing import Any, List, Sequence

from dsgdn_pyg.datasets.settings import DATASET_SETTINGS, dataset_settings
from dsgdn_pyg.models.registry import MODEL_SETTINGS
from dsgdn_pyg.names import MODALITIES
from dsgdn_pyg.settings import check_scope
from dsgdn_pyg.settings.checks import ConfigError, _fail, _format_pairs  # noqa: F401
from dsgdn_pyg.settings.declaration import check_field  # noqa: F401 (re-exported)


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


def check_scopes(config: Any) -> None:
    r"""Refuses a value given for a model or a dataset kind that the run does not use: a
    setting of another model (``cross_window`` on AMB-DSGDN) or of another kind of dataset
    (``text_encoder`` on synthetic data); raises :class:`ConfigError` naming the field and
    its owner. Called before the defaults are filled in."""
    if config.model in MODEL_SETTINGS:
        def model_refusal(owners, value):
            names = ' or '.join(o.label for o in owners)
            article = 'an' if names[:1] in 'AEIOU' else 'a'
            return (f"is {article} {names} setting; model {config.model!r} has no use for it "
                    f"(got {value!r})")
        check_scope(config, MODEL_SETTINGS[config.model], list(MODEL_SETTINGS.values()),
                    model_refusal)
    if isinstance(config.dataset, str):
        def dataset_refusal(owners, value):
            return (f"does not apply to dataset {config.dataset!r}: it applies only to "
                    f"{' or '.join(o.scope for o in owners)}")
        check_scope(config, dataset_settings(config.dataset), DATASET_SETTINGS, dataset_refusal)


def check_combinations(config: Any) -> None:
    r"""The checks that involve more than one field."""
    c = config
    if c.resume and c.out is None:
        _fail('resume', "needs an output directory 'out' holding last.pt")
    if c.text_context and c.text_encoder == 'tfidf':
        _fail('text_context', "needs a sentence encoder (text_encoder 'minilm' or a model "
              "name or path), not 'tfidf'")
    if c.causal and isinstance(c.text_context, list) and c.text_context[1] > 0:
        _fail('text_context', f"reads {c.text_context[1]} following turns, but a causal model "
              f"reads nothing of the future: give P,0 (or P) with --causal")


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
