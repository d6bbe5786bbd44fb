"""Reading the text and yaml files that list a data set's images (split lists, metadata
tables), with one error naming the file, and the line, for anything unreadable or malformed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from janus.core.errors import DataNotFoundError

Row = TypeVar("Row")


def read_text(path: Path) -> str:
    """A list file's text, with one error naming the file if it is not readable UTF-8 text."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise DataNotFoundError(f"{str(path)!r} is not a readable text file ({err})") from None


def read_yaml(path: Path) -> Any:
    """A split list's yaml content, with one error naming the file if it does not parse."""
    try:
        return yaml.load(read_text(path), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as err:
        raise DataNotFoundError(f"{str(path)!r} is not valid yaml: {err}") from None


def yaml_lists(path: Path, *keys: str) -> list[list[Any] | None]:
    """The values of ``keys`` in a yaml mapping, each None where it is not a list (or the
    file holds no mapping)."""
    content = read_yaml(path)
    values = [content.get(key) if isinstance(content, dict) else None for key in keys]
    return [value if isinstance(value, list) else None for value in values]


def parse_lines(path: Path, form: str, parse: Callable[[str], Row | None]) -> list[Row]:
    """``parse`` of each non-blank line of a text list, which returns None for a line that
    is not of the ``form`` the error names."""
    rows = []
    for number, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        row = parse(line)
        if row is None:
            raise DataNotFoundError(f"{str(path)!r} line {number}: {line!r} is not '{form}'")
        rows.append(row)
    return rows


def path_tail(entry: object, count: int) -> str | None:
    """The last ``count`` ``/``-separated components of ``entry``, or None where it has fewer
    or one of them is empty."""
    parts = str(entry).split("/")
    return "/".join(parts[-count:]) if len(parts) >= count and all(parts[-count:]) else None
