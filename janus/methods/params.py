"""Typed method parameters: each method declares a frozen dataclass of :class:`Params`, one
documented field per parameter (:func:`param`), and the dataclass checks type and range of
every value before anything is built.

A value's type is the field's annotation: ``bool``, ``int``, ``float`` (an int is accepted and
kept as given, so a record stores what the user wrote), ``str``, ``Literal[...]`` (one of the
choices), ``tuple[int, ...]`` (a list is accepted) or any of these ``| None``. Ranges come from
``param(low=..., high=...)``; checks between fields go into :meth:`Params.check`.
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any, Literal

from janus.core.errors import ConfigError


def param(default: Any, help: str, *, low: float | None = None, high: float | None = None,
          low_open: bool = False) -> Any:
    """A parameter field: its default, one line of help, and optionally its range
    (``low <= value <= high``, or ``low < value`` with ``low_open``)."""
    return field(default=default, metadata={"help": help, "low": low, "high": high,
                                            "low_open": low_open})


def _type_name(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args)
    if origin is tuple:
        return f"a list of {_type_name(args[0])}"
    return "None" if tp is type(None) else tp.__name__


def _fits(value: Any, tp: Any) -> tuple[bool, Any]:
    """(whether ``value`` has type ``tp``, the value as stored: lists become tuples)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        return value in args and type(value) in {type(a) for a in args}, value
    if origin in (typing.Union, types.UnionType):
        for a in args:
            ok, v = _fits(value, a)
            if ok:
                return True, v
        return False, value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            return False, value
        checked = [_fits(v, args[0]) for v in value]
        return all(ok for ok, _ in checked), tuple(v for _, v in checked)
    if tp is type(None):
        return value is None, value
    if tp is bool:
        return isinstance(value, bool), value
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if tp is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return ok and math.isfinite(value), value
    return isinstance(value, tp), value


def _in_range(value: Any, f: Field) -> bool:
    m = f.metadata
    numbers = value if isinstance(value, tuple) else (value,)
    for x in numbers:
        if not isinstance(x, int | float) or isinstance(x, bool):
            continue
        if m.get("low") is not None and (x <= m["low"] if m["low_open"] else x < m["low"]):
            return False
        if m.get("high") is not None and x > m["high"]:
            return False
    return True


def _range_text(f: Field) -> str:
    m = f.metadata
    low = "" if m.get("low") is None else f"{'>' if m['low_open'] else '>='} {m['low']}"
    high = "" if m.get("high") is None else f"<= {m['high']}"
    return " and ".join(t for t in (low, high) if t)


@dataclass(frozen=True)
class Params:
    """Base of a method's parameters; subclasses add :func:`param` fields."""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in fields(self):
            value = getattr(self, f.name)
            ok, stored = _fits(value, hints[f.name])
            if not ok:
                raise ConfigError(f"{f.name}={value!r} is not {_type_name(hints[f.name])}")
            if not _in_range(stored, f):
                raise ConfigError(f"{f.name}={value!r} is out of range: it must be "
                                  f"{_range_text(f)}")
            object.__setattr__(self, f.name, stored)
        self.check()

    def check(self) -> None:
        """Checks between fields (a :class:`ConfigError` saying what to change)."""

    def values(self) -> dict[str, Any]:
        """Every field's value by name, in field order (what a record stores)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {f.name: f.default for f in fields(cls) if f.default is not MISSING}

    @classmethod
    def describe(cls) -> list[tuple[str, str, Any, str]]:
        """(name, type, default, help) of every field, for ``janus list --method``."""
        hints = typing.get_type_hints(cls)
        rows = []
        for f in fields(cls):
            rng = _range_text(f)
            kind = _type_name(hints[f.name]) + (f", {rng}" if rng else "")
            rows.append((f.name, kind, f.default, f.metadata.get("help", "")))
        return rows
