"""A small registry of checkable claims.

A claim is one statement of a paper (an equation, a theorem, a property of an algorithm)
together with a check function that tests it, symbolically (sympy) or numerically (float64,
fixed seeds), against the formulas the library actually runs. The check returns an
:class:`Outcome` whose ``error`` is the largest violation it measured; the claim's verdict is

- ``PASS``: ``error <= tolerance``;
- ``FAIL``: ``error > tolerance`` (or NaN, or the check raised);
- ``FINDING``: ``error <= tolerance`` for a claim registered with ``finding=True``: its own
  consistency checks hold, and what it measured (``Outcome.note``) qualifies or contradicts
  the paper; a finding is reported, not failed.

Checks run with one torch thread: they are tiny, and one thread makes them deterministic and
immune to thread oversubscription on a busy machine.
"""

from __future__ import annotations

import math
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import torch

Method = Literal["symbolic", "numeric"]
Verdict = Literal["PASS", "FAIL", "FINDING"]


@dataclass(frozen=True)
class Outcome:
    """What a check measured: the largest error and an optional one-line note."""

    error: float
    note: str = ""


@dataclass(frozen=True, kw_only=True)
class Result(Outcome):
    """A claim's verdict: the outcome of its check, judged against the claim's tolerance."""

    claim: Claim
    verdict: Verdict


@dataclass(frozen=True)
class Claim:
    """One checkable statement of a paper."""

    id: str
    paper: str
    where: str
    statement: str
    method: Method
    tolerance: float
    check: Callable[[], Outcome]
    finding: bool = False

    def run(self) -> Result:
        """Run the check; exceptions and NaN errors are failures."""
        try:
            with _one_thread():
                out = self.check()
        except Exception as exc:  # a broken formula must show up as FAIL, not crash the run
            last = traceback.format_exception_only(type(exc), exc)[-1].strip()
            return Result(math.inf, f"raised {last}", claim=self, verdict="FAIL")
        error = float(out.error)
        if not error <= self.tolerance:  # also catches NaN
            return Result(error, out.note, claim=self, verdict="FAIL")
        verdict = "FINDING" if self.finding else "PASS"
        return Result(error, out.note, claim=self, verdict=verdict)


@contextmanager
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


REGISTRY: dict[str, Claim] = {}


def claim(
    id: str,
    *,
    paper: str,
    where: str,
    method: Method,
    tolerance: float,
    statement: str | None = None,
    finding: bool = False,
) -> Callable[[Callable[[], Outcome]], Callable[[], Outcome]]:
    """Decorator registering a check function as claim ``id`` (ids are unique). The claim's
    ``statement`` is the check's docstring (white space folded) unless given explicitly."""
    if method not in ("symbolic", "numeric"):
        raise ValueError(f"claim {id}: method must be 'symbolic' or 'numeric', got {method!r}")

    def register(check: Callable[[], Outcome]) -> Callable[[], Outcome]:
        if id in REGISTRY:
            raise ValueError(f"claim id {id!r} is registered twice")
        text = statement if statement is not None else " ".join((check.__doc__ or "").split())
        if not text:
            raise ValueError(f"claim {id}: no statement (give one or a docstring to the check)")
        REGISTRY[id] = Claim(id, paper, where, text, method, tolerance, check, finding)
        return check

    return register


def select(prefix: str | None = None) -> list[Claim]:
    """Registered claims whose id starts with ``prefix`` (all if None), in registration order."""
    return [c for c in REGISTRY.values() if prefix is None or c.id.startswith(prefix)]


def run_all(claims: Iterable[Claim]) -> list[Result]:
    """Run each claim once."""
    return [c.run() for c in claims]


def format_table(results: list[Result]) -> str:
    """One row per claim: id, paper and equation, method, largest error, tolerance, verdict;
    notes follow the table."""
    header = ("claim", "paper / equation", "method", "error", "tol", "verdict")
    rows = [
        (
            r.claim.id,
            f"{r.claim.paper} {r.claim.where}",
            r.claim.method,
            f"{r.error:.2e}",
            f"{r.claim.tolerance:.0e}",
            r.verdict,
        )
        for r in results
    ]
    widths = [max(len(x) for x in col) for col in zip(header, *rows, strict=True)]
    lines = [
        "  ".join(x.ljust(w) for x, w in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes = [f"  {r.claim.id}: {r.note}" for r in results if r.note]
    if notes:
        lines += ["", "notes:", *notes]
    return "\n".join(lines)
