"""The records of the provenance registry: a method's entry, its checks and its deviations."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    """One unit-level comparison: what is compared with what, with the measured agreement,
    and the pytest node id (``tests/...py::test_name``) that holds it."""

    what: str
    test: str


@dataclass(frozen=True)
class Deviation:
    """A known difference from the paper or its official code: what differs, why, and the
    setting that gives the official behaviour (``None`` when there is none)."""

    what: str
    reason: str
    switch: str | None = None


@dataclass(frozen=True)
class Provenance:
    """One registered method: its paper, the official code compared with
    (``owner/repo@commit`` with the files read; empty when none was obtainable), its doc page,
    checks and deviations."""

    method: str
    paper: str
    official: tuple[str, ...]
    doc: str
    checks: tuple[Check, ...]
    deviations: tuple[Deviation, ...] = ()
    note: str = ""
    """Where no official code was compared: why (e.g. what its repository holds)."""
