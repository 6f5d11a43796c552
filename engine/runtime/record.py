"""``@record``: the runtime's dataclasses, without the dataclasses module.

`berth-runtime` starts an interpreter per verb, and on its `run` path
``import dataclasses`` (inspect, ast, dis...) plus generating the methods of
thirteen classes with exec cost ~10 ms, more than anything else it imports.
``@record`` gives what the runtime uses of ``@dataclass`` — ``__init__`` in
field order with defaults and ``record_field(default_factory=...)``,
``__repr__``, ``__eq__``, ``frozen=True`` (immutable and hashable) — built from
closures instead of exec, so a class costs microseconds.  Type checkers see a
dataclass (PEP 681 ``dataclass_transform``).
"""

from __future__ import annotations

from .abcs import Callable

TYPE_CHECKING = False  # as typing's, without importing typing (~2 ms per berth-runtime call)
if TYPE_CHECKING:
    from typing import Any, TypeVar, dataclass_transform, overload

    _T = TypeVar("_T")
_MISSING: Any = object()


class FrozenRecordError(AttributeError):
    """Assigning to a field of a frozen record (dataclasses.FrozenInstanceError's role)."""


class _Factory:
    __slots__ = ("make",)

    def __init__(self, make: Callable[[], object]) -> None:
        self.make = make


def record_field(*, default_factory: Callable[[], _T]) -> _T:
    """A field whose default is made per instance (``field(default_factory=...)``)."""
    return _Factory(default_factory)  # type: ignore[return-value]


def record_fields(cls_or_obj: type | object) -> tuple[str, ...]:
    """The field names, in order (``[f.name for f in dataclasses.fields(...)]``)."""
    names: tuple[str, ...] = cls_or_obj.__record_fields__  # type: ignore[union-attr]
    return names


def _field_names(cls: type) -> list[str]:
    # Own annotations only (no record here inherits from another), in definition order;
    # under `from __future__ import annotations` they are strings.  Not inspect.get_annotations:
    # importing inspect is most of what this module saves.
    return [name for name, kind in cls.__dict__.get("__annotations__", {}).items()  # noqa: RUF063
            if not str(kind).startswith(("ClassVar", "typing.ClassVar"))]


def _build(cls: type, frozen: bool) -> type:
    names = tuple(_field_names(cls))
    known = frozenset(names)
    defaults: dict[str, Any] = {}
    factories: dict[str, Callable[[], object]] = {}
    for name in names:
        value = cls.__dict__.get(name, _MISSING)
        if isinstance(value, _Factory):
            factories[name] = value.make
            delattr(cls, name)
        elif value is not _MISSING:
            defaults[name] = value
    title = cls.__name__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if len(args) > len(names):
            raise TypeError(f"{title}() takes {len(names)} positional arguments but {len(args)} were given")
        values = dict(zip(names, args, strict=False))
        for key, value in kwargs.items():
            if key not in known:
                raise TypeError(f"{title}() got an unexpected keyword argument {key!r}")
            if key in values:
                raise TypeError(f"{title}() got multiple values for argument {key!r}")
            values[key] = value
        for name in names:
            if name in values:
                value = values[name]
            elif name in factories:
                value = factories[name]()
            elif name in defaults:
                value = defaults[name]
            else:
                raise TypeError(f"{title}() missing required argument: {name!r}")
            object.__setattr__(self, name, value)

    def __repr__(self: Any) -> str:
        return f"{type(self).__qualname__}({', '.join(f'{n}={getattr(self, n)!r}' for n in names)})"

    def __eq__(self: Any, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in names)

    cls.__init__ = __init__  # type: ignore[misc]
    cls.__repr__ = __repr__  # type: ignore[assignment,method-assign]
    cls.__eq__ = __eq__  # type: ignore[assignment,method-assign]
    cls.__record_fields__ = names  # type: ignore[attr-defined]
    if frozen:
        def __setattr__(self: Any, name: str, value: object) -> None:
            raise FrozenRecordError(f"cannot assign to field {name!r} of frozen {title}")

        def __delattr__(self: Any, name: str) -> None:
            raise FrozenRecordError(f"cannot delete field {name!r} of frozen {title}")

        def __hash__(self: Any) -> int:
            return hash(tuple(getattr(self, n) for n in names))

        cls.__setattr__ = __setattr__  # type: ignore[method-assign,assignment]
        cls.__delattr__ = __delattr__  # type: ignore[method-assign,assignment]
        cls.__hash__ = __hash__  # type: ignore[method-assign,assignment]
    else:
        cls.__hash__ = None  # type: ignore[assignment]  # mutable and compared by value: unhashable, like a dataclass
    return cls


if TYPE_CHECKING:  # what type checkers see: a PEP 681 dataclass transform
    @overload
    def record(cls: type[_T], /) -> type[_T]: ...
    @overload
    def record(*, frozen: bool = False) -> Callable[[type[_T]], type[_T]]: ...
    @dataclass_transform(field_specifiers=(record_field,))
    def record(
        cls: type[_T] | None = None, /, *, frozen: bool = False,
    ) -> type[_T] | Callable[[type[_T]], type[_T]]: ...


def _record(cls: type[_T] | None = None, /, *, frozen: bool = False) -> type[_T] | Callable[[type[_T]], type[_T]]:
    """``@record`` or ``@record(frozen=True)`` on a class with annotated fields."""
    def wrap(c: type[_T]) -> type[_T]:
        return _build(c, frozen)  # type: ignore[return-value]

    return wrap if cls is None else wrap(cls)


if not TYPE_CHECKING:
    record = _record
