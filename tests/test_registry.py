import pytest

from dsgdn_pyg.registry import registered


class Refused(ValueError):
    pass


def test_registered_returns_the_entry_or_names_every_entry():
    table = {'b': 2, 'a': 1}
    assert registered(table, 'a', 'letter') == 1
    # The names in the table's own order, and the caller's exception class.
    with pytest.raises(ValueError, match=r"^unknown letter 'c'; expected one of b, a$"):
        registered(table, 'c', 'letter')
    with pytest.raises(Refused, match="unknown letter 'c'"):
        registered(table, 'c', 'letter', Refused)
