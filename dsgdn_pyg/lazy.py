r"""Names of a package imported on first use (PEP 562), so that importing the package stays
light: the command line builds its options without importing torch."""
import importlib
from typing import Any, Dict, MutableMapping


def lazy_package(namespace: MutableMapping[str, Any], exports: Dict[str, str]) -> None:
    r"""Makes the package whose globals are :obj:`namespace` export, on first read, the names
    of :obj:`exports` (module of the package -> its public names, separated by spaces): sets
    the package's ``__getattr__``, its ``__dir__`` (which lists them, for ``dir()`` and the
    API reference) and, unless it has one, its ``__all__``."""
    package = namespace['__name__']
    home = {name: module for module, names in exports.items() for name in names.split()}

    def __getattr__(name: str) -> Any:
        if name not in home:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f'{package}.{home[name]}'), name)

    def __dir__():
        return sorted(set(namespace) | set(home))

    namespace.update(__getattr__=__getattr__, __dir__=__dir__)
    namespace.setdefault('__all__', list(home))
