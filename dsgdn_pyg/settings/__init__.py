r"""How settings are declared, checked and composed: the machinery behind the run settings
(:class:`~dsgdn_pyg.train.TrainConfig`), each model's settings
(:class:`~dsgdn_pyg.models.ModelSettings`) and each dataset kind's
(:mod:`dsgdn_pyg.datasets.settings`). Torch-free, so that the command line builds its options
from the declarations without importing torch."""
from dsgdn_pyg.settings.checks import (ConfigError, integer, number, one_of, parse_key_values,
                                       parse_modalities)
from dsgdn_pyg.settings.compose import check_scope, include_settings
from dsgdn_pyg.settings.declaration import (Setting, args_section, check_field, default_text,
                                            setting, setting_of, value_type)

__all__ = ['ConfigError', 'Setting', 'args_section', 'check_field', 'check_scope',
           'default_text', 'include_settings', 'integer', 'number', 'one_of',
           'parse_key_values', 'parse_modalities', 'setting', 'setting_of', 'value_type']
