"""engine/runtime/record.py: what the runtime relied on from @dataclass still holds."""

from __future__ import annotations

import pytest

from engine.runtime.record import FrozenRecordError, record, record_field, record_fields


@record
class Plan:
    name: str
    count: int = 0
    items: list[str] = record_field(default_factory=list)


@record(frozen=True)
class Point:
    x: int
    y: int = 0


def test_init_takes_fields_in_order_with_defaults_and_fresh_factories() -> None:
    a, b = Plan("a"), Plan("b", 2)
    a.items.append("x")
    assert (a.name, a.count, a.items) == ("a", 0, ["x"])
    assert (b.name, b.count, b.items) == ("b", 2, [])  # not shared with a
    assert Plan(name="c", items=["i"]).items == ["i"]
    assert record_fields(Plan) == ("name", "count", "items") == record_fields(a)


def test_bad_arguments_are_type_errors() -> None:
    with pytest.raises(TypeError, match="missing required argument: 'name'"):
        Plan()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        Plan("a", colour="red")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="multiple values for argument 'name'"):
        Plan("a", name="b")  # type: ignore[misc]
    with pytest.raises(TypeError, match="takes 3 positional arguments but 4 were given"):
        Plan("a", 1, [], 2)  # type: ignore[call-arg]


def test_repr_and_equality_by_value_and_class() -> None:
    assert repr(Point(1, 2)) == "Point(x=1, y=2)"
    assert Point(1) == Point(1, 0) and Point(1) != Point(2)
    as_tuple: object = (1, 2)
    assert Point(1, 2) != as_tuple  # not a tuple (a NamedTuple would be equal)
    assert Plan("a") == Plan("a") and Plan("a") != Plan("a", 1)


def test_frozen_records_are_immutable_and_hashable_mutable_ones_unhashable() -> None:
    p = Point(1, 2)
    with pytest.raises(FrozenRecordError):
        p.x = 3  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del p.y  # type: ignore[misc]
    assert {Point(1, 2), Point(1, 2)} == {p}
    with pytest.raises(TypeError):
        hash(Plan("a"))
    plan = Plan("a")
    plan.count = 5
    assert plan.count == 5
