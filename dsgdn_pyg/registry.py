r"""What every table of named things in the package shares (the audio feature sets, the
experiments of ``benchmarks/``, ...): looking a name up, with an error that lists the names
there are. Torch-free."""
from typing import Mapping, Type, TypeVar

T = TypeVar('T')


def registered(registry: Mapping[str, T], name: str, what: str,
               error: Type[Exception] = ValueError) -> T:
    r"""The entry of :obj:`registry` called :obj:`name`.

    Args:
        registry (dict): The entries by name, in the order the error lists them.
        name (str): The name asked for.
        what (str): What an entry is, for the error, e.g. :obj:`"audio feature set"`.
        error (type, optional): The exception raised for a name :obj:`registry` does not
            have. (default: :class:`ValueError`)

    Raises:
        error: ``unknown <what> '<name>'; expected one of <the names>``.
    """
    if name not in registry:
        raise error(f"unknown {what} {name!r}; expected one of {', '.join(registry)}")
    return registry[name]
