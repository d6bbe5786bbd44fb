"""The notebooks' parameters, as papermill hands them over.

``papermill -p seeds "[0, 1]"`` passes the *string* ``"[0, 1]"`` (``-y`` passes a list), so a
notebook that looped over it would see ``'['``, ``'0'``, ... Every notebook reads its list
parameters through :func:`as_list` and checks names with :func:`check_names` before its first
run, so both forms work and a misspelled method stops the notebook before anything trains;
:func:`check_parameters` stops a misspelled parameter name (``-p seedz``), which papermill
only logs as a warning before running the defaults.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from typing import Any

from janus.core.errors import ConfigError


def as_list(value: Any, name: str, kind: type | tuple[type, ...] = str, *,
            optional: bool = False, split: bool = True) -> list[Any] | None:
    """``value`` as a list of ``kind``: a list or tuple; its string form (``"[0, 1]"``,
    ``"['a', 'b']"``); a comma-separated string (``"a,b"``; one item if not ``split``, for
    values that hold commas themselves, like overrides); one item (``0``, ``"a"``); or,
    if ``optional``, None (kept: "the notebook's default"). Anything else is a
    :class:`ConfigError` naming the parameter."""
    if isinstance(value, str) and value.strip() in ("None", "none", "null"):
        value = None
    if value is None:
        if optional:
            return None
        raise ConfigError(f"parameter {name} needs a list, e.g. -y \"{name}: [...]\"")
    if isinstance(value, str):
        text = value.strip()
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = [part.strip() for part in text.split(",") if part.strip()] if split else [
                text]
    items = list(value) if isinstance(value, list | tuple) else [value]
    bad = [x for x in items
           if not isinstance(x, kind) or (isinstance(x, bool) and bool not in _kinds(kind))]
    if bad:
        names = "/".join(k.__name__ for k in _kinds(kind))
        raise ConfigError(f"parameter {name}={value!r}: {bad[0]!r} is not a {names}; give a "
                          f"list, e.g. -y \"{name}: [...]\" or -p {name} \"[...]\"")
    return items


def _kinds(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def check_names(names: Iterable[str] | None, known: Iterable[Any], what: str) -> None:
    """Stop with one error listing every name of ``names`` not in ``known``."""
    known = list(known)
    unknown = [n for n in names or [] if n not in known]
    if unknown:
        raise ConfigError(f"unknown {what} {', '.join(map(repr, unknown))}; known: "
                          f"{', '.join(map(str, known))}")


PAPERMILL_HEADER = "# Parameters\n"
"""The first line of the cell papermill injects after the notebook's ``parameters`` cell."""


def assigned_names(source: str) -> set[str]:
    """The names a cell's top-level statements assign."""
    names = set()
    for node in ast.parse(source).body:
        targets = node.targets if isinstance(node, ast.Assign) else (
            [node.target] if isinstance(node, ast.AnnAssign | ast.AugAssign) else [])
        names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def unknown_parameters(cells: list[str]) -> list[str]:
    """Of the cells run so far (IPython's ``In``), the names papermill's injected cell sets
    that the ``parameters`` cell before it does not define."""
    injected = [i for i, c in enumerate(cells) if i and c.startswith(PAPERMILL_HEADER)]
    if not injected:
        return []
    i = injected[-1]
    return sorted(assigned_names(cells[i]) - assigned_names(cells[i - 1]))


def check_parameters() -> None:
    """In a papermill run, stop with one error naming every parameter the notebook does not
    take (``-p seedz "[0]"``) and those it does; nothing outside IPython."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with papermill
        return
    shell = get_ipython()
    if shell is None:
        return
    cells = list(shell.user_ns.get("In", []))
    unknown = unknown_parameters(cells)
    if unknown:
        i = max(i for i, c in enumerate(cells) if i and c.startswith(PAPERMILL_HEADER))
        known = sorted(assigned_names(cells[i - 1]))
        raise ConfigError(f"unknown notebook parameter {', '.join(map(repr, unknown))} "
                          f"(misspelled?); this notebook takes: {', '.join(known)}")
