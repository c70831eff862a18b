import pytest

from dsgdn_pyg.lookup import lookup_name


class Refused(ValueError):
    pass


def test_lookup_name_returns_the_entry_or_names_every_entry():
    table = {'b': 2, 'a': 1}
    assert lookup_name(table, 'a', 'letter') == 1
    # The names in the table's own order, and the caller's exception class.
    with pytest.raises(ValueError, match=r"^unknown letter 'c'; expected one of b, a$"):
        lookup_name(table, 'c', 'letter')
    with pytest.raises(Refused, match="unknown letter 'c'"):
        lookup_name(table, 'c', 'letter', Refused)
