r"""What every table of named things shares (the audio feature sets, the experiments of
``benchmarks/``): looking a name up, with an error that lists the names there are.
Torch-free."""
from typing import Mapping, Type, TypeVar

T = TypeVar('T')


def lookup_name(table: Mapping[str, T], name: str, what: str,
                error: Type[Exception] = ValueError) -> T:
    r"""The entry of :obj:`table` called :obj:`name`.

    Args:
        table (dict): The entries by name, in the order the error lists them.
        name (str): The name asked for.
        what (str): What an entry is, for the error, e.g. :obj:`"audio feature set"`.
        error (type, optional): The exception to raise for a name not in :obj:`table`.
            (default: :class:`ValueError`)

    Raises:
        error: ``unknown <what> '<name>'; expected one of <the names>``.
    """
    if name not in table:
        raise error(f"unknown {what} {name!r}; expected one of {', '.join(table)}")
    return table[name]
