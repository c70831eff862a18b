r"""Names of a package imported on first use (PEP 562), so that importing the package stays
light: the command line builds its options without importing torch."""
import importlib
from typing import Any, Callable, Dict


def lazy_exports(package: str, exports: Dict[str, str]) -> Callable[[str], Any]:
    r"""The module ``__getattr__`` of :obj:`package` that imports each name of
    :obj:`exports` (public name -> module of the package that defines it) when first read."""
    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f'{package}.{exports[name]}'), name)
    return __getattr__
