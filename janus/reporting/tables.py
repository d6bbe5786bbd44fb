"""Tables from summary rows: ours beside the paper's numbers (:func:`paper_table`, the one
formatter of every ours-vs-paper table), and verdicts on the papers' claims in units of the
standard error over seeds."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def verdict(rows: dict[str, dict[str, Any]], better: str, worse: str, metric: str) -> str:
    """Whether row ``better`` beats row ``worse`` on ``metric`` (higher is better), with the
    difference in units of its standard error over seeds (two standard errors = clear)."""
    a, b = rows[better], rows[worse]
    diff = a[metric] - b[metric]
    na, nb = len(a["seeds"]), len(b["seeds"])
    se = (a[f"{metric}_std"] ** 2 / na + b[f"{metric}_std"] ** 2 / nb) ** 0.5
    if se > 0:
        z = diff / se
    else:
        z = 0.0 if diff == 0 else math.copysign(math.inf, diff)
    if diff > 0:
        word = "holds" if z >= 2 else "holds, within noise"
    else:
        word = "fails" if z <= -2 else "fails, within noise"
    return (f"{word}: {a['method']} {a[metric]:.2f} vs {b['method']} {b[metric]:.2f} "
            f"({metric.upper()} diff {diff:+.2f}, {z:+.1f} s.e.)")


def best_verdicts(
    rows: list[dict[str, Any]], best: str, metrics: Sequence[str] = ("acc",)
) -> list[str]:
    """The claim "``best`` beats every other row" on each metric: one :func:`verdict` per
    baseline and metric, or one line saying why it cannot be tested with these rows."""
    by = {r["variant"]: r for r in rows}
    others = [k for k in by if k != best]
    if best not in by or not others:
        return [f"not tested: needs {best} and at least one baseline (ran {sorted(by)})"]
    return [f"{m.upper()}: " + verdict(by, best, k, m) for m in metrics for k in others]


def paper_numbers(table: str) -> list[dict[str, Any]]:
    """Rows of a transcribed paper table (``janus/reporting/paper_numbers/<table>.csv``)."""
    import csv
    from importlib import resources

    text = resources.files("janus.reporting.paper_numbers").joinpath(f"{table}.csv").read_text()
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    rows = list(csv.DictReader(lines))
    for row in rows:
        for key, value in row.items():
            if key not in ("method", "paper_name", "dataset", "backbone"):
                row[key] = None if value == "" else int(value) if key == "tasks" else float(value)
    return rows


def paper_table(
    rows: list[dict[str, Any]],
    paper: str | Sequence[dict[str, Any]],
    *,
    key: str = "method",
    metrics: Sequence[str] = ("acc", "maa", "bwt"),
    spread: str = "std",
) -> str:
    """Ours beside the paper's numbers, as text: the one formatter of every ours-vs-paper table.

    ``paper`` is a table name of :func:`paper_numbers` or its rows (already filtered, e.g. by
    data set). A row is matched on ``row[key]`` and, where the paper's rows give one, its T.
    Each row gets ``paper_<m>`` and ``paper_<m>_<spread>`` (None where the paper prints none).
    ``spread`` is the paper's: ``"std"`` over runs, or ``"se"`` (standard error); ours is given
    in the same kind (``<m>_se`` = std / sqrt(#seeds) is added to the row)."""
    paper_rows = paper_numbers(paper) if isinstance(paper, str) else list(paper)
    by_tasks = {(p["method"], p.get("tasks")): p for p in paper_rows}
    width = max([len("row"), *(len(str(r["method"])) for r in rows)]) + 2
    lines = [f"{'row':<{width}}{'T':>3}"
             + "".join(f"{'ours ' + m.upper():>16}{'paper':>16}" for m in metrics)]
    for row in rows:
        p = by_tasks.get((row[key], row["tasks"])) or by_tasks.get((row[key], None), {})
        cells = ""
        for m in metrics:
            if spread == "se":
                row[f"{m}_se"] = row[f"{m}_std"] / math.sqrt(len(row["seeds"]))
            value, theirs_spread = p.get(m), p.get(f"{m}_{spread}")
            row[f"paper_{m}"], row[f"paper_{m}_{spread}"] = value, theirs_spread
            theirs = ("-" if value is None else f"{value:.2f}" if theirs_spread is None
                      else f"{value:.2f} ± {theirs_spread:.2f}")
            cells += f"{row[m]:.2f} ± {row[f'{m}_{spread}']:.2f}".rjust(16) + f"{theirs:>16}"
        lines.append(f"{row['method']:<{width}}{row['tasks']:>3}{cells}")
    return "\n".join(lines)
