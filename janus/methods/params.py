"""Typed method parameters: each method declares a frozen dataclass of :class:`Params`, one
documented field per parameter (:func:`janus.core.fields.param`), and the dataclass checks
type and range of every value before anything is built (:mod:`janus.core.fields`: the types
allowed, and the same mechanism as the run settings); checks between fields go into
:meth:`Params.check`.
"""

from __future__ import annotations

import typing
from dataclasses import MISSING, dataclass, fields
from typing import Any

from janus.core.errors import ConfigError
from janus.core.fields import describe, problem


@dataclass(frozen=True)
class Params:
    """Base of a method's parameters; subclasses add :func:`param` fields."""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in fields(self):
            wrong, stored = problem(f.name, getattr(self, f.name), hints[f.name], f)
            if wrong:
                raise ConfigError(wrong)
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
        return describe(cls)
