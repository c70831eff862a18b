r"""The models that ship inside the package, usable by name wherever a model folder is:
``dsgdn-pyg predict --model meld-minilm``, ``dsgdn_pyg.load_model('meld-minilm')``.

Each is a model folder (:mod:`dsgdn_pyg.inference.model_folder`) kept as package data next
to this file, its fine-tuned text encoder a small delta over the base encoder of the
``[text]`` extra's wheel (:mod:`dsgdn_pyg.text.delta`), so that the package stays small.
``benchmarks/build_builtin_model.py`` rebuilds them; their model cards say how they were
trained and what they score.

Torch-free: the command line resolves names with it before importing torch.
"""
import os
from typing import Dict, Optional

#: The built-in models by name, with one line about each.
BUILTIN_MODELS: Dict[str, str] = {
    'meld-minilm': 'MiniLM + AMB-DSGDN trained on MELD: TV-show English, 7 emotions',
}
#: The model `dsgdn-pyg predict` uses when none is given.
DEFAULT_MODEL = 'meld-minilm'


def builtin_model_path(name: str) -> Optional[str]:
    r"""The folder of the built-in model :obj:`name`, or :obj:`None` if there is none by
    that name."""
    if name not in BUILTIN_MODELS:
        return None
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), name)


def builtin_names() -> str:
    r"""The built-in models' names, for messages."""
    return ', '.join(BUILTIN_MODELS)


__all__ = ['BUILTIN_MODELS', 'DEFAULT_MODEL', 'builtin_model_path', 'builtin_names']
