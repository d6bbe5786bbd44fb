"""Typed, documented dataclass fields: the one mechanism behind the method parameters
(:class:`janus.methods.params.Params`) and the run settings (:mod:`janus.core.config`).

A field is declared with :func:`param`: its default, one line of help and optionally its range.
A value's type is the field's annotation: ``bool``, ``int``, ``float`` (an int is accepted and
kept as given, so a record stores what the user wrote; never NaN or infinite), ``str``,
``Literal[...]`` (one of the choices), ``tuple[X, ...]`` or ``tuple[X, Y]`` (a list is
accepted), ``dict[str, Any]``, or any of these ``| None``. :func:`problem` says what is wrong
with a value, :func:`describe` lists the fields for ``janus list``.
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import MISSING, Field, field, fields
from typing import Any, Literal


def param(default: Any = MISSING, help: str = "", *, low: float | None = None,
          high: float | None = None, low_open: bool = False, high_open: bool = False,
          default_factory: Any = MISSING) -> Any:
    """A field: its default (or ``default_factory``), one line of help, and optionally its
    range (``low <= value <= high``; ``<`` instead of ``<=`` with ``low_open`` /
    ``high_open``; for a list, every number in it)."""
    meta = {"help": help, "low": low, "high": high, "low_open": low_open,
            "high_open": high_open}
    if default_factory is not MISSING:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


def type_name(tp: Any) -> str:
    """How a type reads in a message: ``int or None``, ``'adam' | 'sgd'``, ``a list of float``."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_name(a) for a in args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {type_name(args[0])}"
        return f"a list of {len(args)} {type_name(args[0])}"
    if origin is dict:
        return "a mapping"
    return "None" if tp is type(None) else tp.__name__


def fits(value: Any, tp: Any) -> tuple[bool, Any]:
    """(whether ``value`` has type ``tp``, the value as stored: lists become tuples)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        return value in args and type(value) in {type(a) for a in args}, value
    if origin in (typing.Union, types.UnionType):
        for a in args:
            ok, v = fits(value, a)
            if ok:
                return True, v
        return False, value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            return False, value
        kinds = [args[0]] * len(value) if args[-1] is Ellipsis else list(args)
        if len(kinds) != len(value):
            return False, value
        checked = [fits(v, k) for v, k in zip(value, kinds, strict=True)]
        return all(ok for ok, _ in checked), tuple(v for _, v in checked)
    if origin is dict:
        return isinstance(value, dict), value
    if tp is type(None):
        return value is None, value
    if tp is bool:
        return isinstance(value, bool), value
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if tp is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return ok and math.isfinite(value), value
    if tp is Any:
        return True, value
    return isinstance(value, tp), value


def in_range(value: Any, f: Field) -> bool:
    m = f.metadata
    numbers = value if isinstance(value, tuple) else (value,)
    for x in numbers:
        if not isinstance(x, int | float) or isinstance(x, bool):
            continue
        if m.get("low") is not None and (x <= m["low"] if m["low_open"] else x < m["low"]):
            return False
        if m.get("high") is not None and (x >= m["high"] if m.get("high_open") else x > m["high"]):
            return False
    return True


def range_text(f: Field) -> str:
    m = f.metadata
    low = "" if m.get("low") is None else f"{'>' if m['low_open'] else '>='} {m['low']}"
    high = "" if m.get("high") is None else f"{'<' if m.get('high_open') else '<='} {m['high']}"
    return " and ".join(t for t in (low, high) if t)


def problem(name: str, value: Any, tp: Any, f: Field) -> tuple[str | None, Any]:
    """(what is wrong with ``value`` for field ``f`` of type ``tp``, named ``name`` in the
    message, or None; the value as stored)."""
    ok, stored = fits(value, tp)
    if not ok:
        return f"{name}={value!r} is not {type_name(tp)}", value
    if not in_range(stored, f):
        return f"{name}={value!r} is out of range: it must be {range_text(f)}", value
    return None, stored


def describe(cls: type) -> list[tuple[str, str, Any, str]]:
    """(name, type and range, default, help) of every field of the dataclass ``cls``."""
    hints = typing.get_type_hints(cls)
    rows = []
    for f in fields(cls):
        rng = range_text(f)
        kind = type_name(hints[f.name]) + (f", {rng}" if rng else "")
        default = f.default if f.default is not MISSING else (
            f.default_factory() if f.default_factory is not MISSING else None)
        rows.append((f.name, kind, default, f.metadata.get("help", "")))
    return rows
