import dataclasses
from dataclasses import dataclass
from typing import Optional

import pytest

from dsgdn_pyg.settings import ConfigError, check_scope, include_settings, integer, setting
from dsgdn_pyg.settings.compose import foreign_values


@dataclass
class Base:
    width: Optional[int] = setting(None, 'Width.', check=integer(1), preset=True)
    depth: int = setting(1, 'Depth.', check=integer(1))


@dataclass
class Left(Base):
    label = 'Left'
    left_only: int = setting(0, 'Left knob.', check=integer(0))


@dataclass
class Right(Base):
    label = 'Right'
    right_only: Optional[str] = setting(None, 'Right knob.')


@dataclass
@include_settings('kind', [Left, Right])
class Run:
    seed: int = setting(0, 'Seed.')
    kind: str = setting('left', 'Which part.')
    epochs: int = setting(1, 'Epochs.')


def test_parts_are_added_after_the_anchor_once_each_in_order():
    assert [f.name for f in dataclasses.fields(Run)] == [
        'seed', 'kind', 'width', 'depth', 'left_only', 'right_only', 'epochs']
    run = Run(left_only=3)
    assert (run.width, run.depth, run.left_only, run.right_only) == (None, 1, 3, None)
    assert Run.__dataclass_fields__['depth'].metadata['setting'].help == 'Depth.'


def test_a_name_declared_twice_differently_is_refused():
    @dataclass
    class Other:
        depth: int = setting(2, 'Another depth.')

    with pytest.raises(TypeError, match='declared differently'):
        include_settings('kind', [Left, Other])(type('R', (), {'__annotations__': {'kind': str},
                                                              'kind': 'x'}))


def refusal(owners, value):
    return f"belongs to {'/'.join(o.label for o in owners)} (got {value!r})"


@pytest.mark.parametrize('values, chosen, field', [
    (dict(left_only=3), Right, 'left_only'),
    (dict(right_only='x'), Left, 'right_only'),
    (dict(left_only=3), None, 'left_only'),
    (dict(depth=4), None, 'depth'),
])
def test_a_value_for_a_part_not_chosen_is_refused(values, chosen, field):
    with pytest.raises(ConfigError, match='belongs to') as info:
        check_scope(Run(**values), chosen, [Left, Right], refusal)
    assert info.value.field == field


@pytest.mark.parametrize('values, chosen', [
    (dict(left_only=3), Left), (dict(right_only='x'), Right), (dict(depth=4), Left),
    (dict(left_only=0, right_only=''), Left),  # defaults and "off" values are no choice
    (dict(width=5), None),  # a preset setting comes with the dataset: never foreign
])
def test_values_of_the_chosen_part_or_unset_pass(values, chosen):
    assert list(foreign_values(Run(**values), chosen, [Left, Right])) == []
    check_scope(Run(**values), chosen, [Left, Right], refusal)  # and so no refusal
