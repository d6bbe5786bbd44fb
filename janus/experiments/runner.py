"""Running the rows of a reproduction through :func:`janus.train.trainer.run` (finished runs
are reused, interrupted ones resumed), one printed line per run."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from janus.core.errors import DataNotFoundError, WeightsNotFoundError
from janus.core.results import summarize, train_seconds
from janus.experiments.configs import (
    PAPER_WEIGHTS,
    TABLE3_BENCHMARKS,
    TABLE4_BACKBONES,
    TableName,
    check_weights,
    make_config,
    table4_root,
    table_settings,
)
from janus.experiments.variants import Variant, sweep_variants
from janus.train.trainer import run


def run_variants(
    variants: Sequence[Variant],
    seeds: Sequence[int],
    out: Path,
    *,
    profile: str,
    tasks: int | None = None,
    data_root: str | None = None,
    overrides: Sequence[str] = (),
    progress: bool = False,
    weights: str = PAPER_WEIGHTS["janus-lora"],
) -> list[dict[str, Any]]:
    """Run every variant with every seed (reusing finished runs) and print one line each;
    ``overrides`` come after each variant's own. A ``paper`` profile run on other weights
    than ``weights`` (the timm tag of the reproduced table's paper, Janus-LoRA's by default)
    draws an :class:`~janus.experiments.configs.OtherWeightsWarning`."""
    records = []
    for v in variants:
        for seed in seeds:
            cfg = make_config(profile, v.method, seed, tasks=tasks, data_root=data_root,
                              overrides=[*v.overrides, *overrides], params=v.params,
                              label=v.label)
            check_weights(cfg, weights)
            record = run(cfg, out, resume=True, progress=progress)
            m = record["metrics"]
            print(f"{v.name:<16} seed {seed}: ACC {m['acc']:6.2f}  MAA {m['maa']:6.2f}  "
                  f"BWT {m['bwt']:7.2f}  (trained in {train_seconds(record):.0f} s)")  # also reused
            records.append(record)
    return records


def variant_rows(
    variants: Sequence[Variant], records: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """:func:`janus.core.results.summarize` rows in the order of ``variants``, named by them."""
    by_key = {r["method"]: r for r in summarize(records)}
    rows = []
    for v in variants:
        row = dict(by_key[v.key])
        row["method"], row["variant"] = v.name, v.key
        rows.append(row)
    return rows


def run_sweep(
    param: str, values: Sequence[Any], default: Any, seeds: Sequence[int], out: Path, **kw: Any
) -> list[dict[str, Any]]:
    """Janus-LoRA with ``method.params.<param>`` swept over ``values`` (keyword arguments as
    :func:`run_variants`); prints and returns one summary row per value, in order."""
    variants = sweep_variants(param, values, default)
    rows = variant_rows(variants, run_variants(variants, seeds, out, **kw))
    print(f"{param:>10}" + "".join(f"{m.upper():>16}" for m in ("acc", "maa", "bwt")))
    for v, r in zip(values, rows, strict=True):
        print(f"{v!s:>10}" + "".join(f"{r[m]:>9.2f} ± {r[m + '_std']:4.2f}"
                                     for m in ("acc", "maa", "bwt")))
    return rows


MISSING_INPUTS = (DataNotFoundError, WeightsNotFoundError)
"""Errors that make a notebook report a benchmark as not run instead of stopping."""


def not_run(name: str, err: Exception) -> str:
    """``<name>: not run (<first line of the error>)``; for missing weights, also the lines of
    the error that say how to supply them."""
    first, *rest = str(err).splitlines() or [type(err).__name__]
    lines = [f"{name}: not run ({first})"]
    if isinstance(err, WeightsNotFoundError):
        lines += [f"  {line}" for line in rest]
    return "\n".join(lines)


def run_table(
    table: TableName,
    keys: Sequence[str],
    methods: Sequence[str],
    seeds: Sequence[int],
    out: Path,
    *,
    profile: str,
    data_root: str | None = None,
    overrides: Sequence[str] = (),
    progress: bool = False,
) -> dict[str, list[dict[str, Any]]]:
    """Janus-LoRA Table 3 (``keys``: benchmarks of :data:`TABLE3_BENCHMARKS`) or Table 4
    (``keys``: backbones, runs under :func:`table4_root`), each cell configured by
    :func:`table_settings` as :func:`table_config` does: per key that could run, the
    :func:`variant_rows` of every method (the method in ``method`` and ``variant``). A key
    whose data or weights are missing is reported by :func:`not_run` and left out."""
    if table == "table3":
        blocks = {k: (TABLE3_BENCHMARKS[k].name, out) for k in keys}
    else:
        blocks = {k: (k, table4_root(out, profile, k)) for k in keys}
    variants = [Variant(m, m) for m in methods]
    rows = {}
    for key, (name, root) in blocks.items():
        print(f"--- {name}")
        tasks, fixed = table_settings(table, profile, key)
        try:
            records = run_variants(variants, seeds, root, profile=profile, tasks=tasks,
                                   data_root=data_root, overrides=[*fixed, *overrides],
                                   progress=progress,
                                   weights=(TABLE4_BACKBONES[key] if table == "table4"
                                            else PAPER_WEIGHTS["janus-lora"]))
        except MISSING_INPUTS as err:
            print(not_run(name, err))
            continue
        rows[key] = variant_rows(variants, records)
    return rows
