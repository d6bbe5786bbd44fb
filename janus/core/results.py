"""Run records (JSON) and their aggregation over seeds.

A record holds everything a table cell is derived from: the config, the environment, the
seed, the accuracy matrix (percent; ``null`` above the diagonal), per-task evaluation counts
and timings. :func:`metrics_of` recomputes ACC / MAA / BWT from the matrix, so stored
metrics can always be checked.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import platform
import statistics
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from janus.core import metrics
from janus.core.config import MACHINE_FIELDS
from janus.core.errors import JanusError

SCHEMA = 1
RECORD_NAME = "record.json"


def cpu_model() -> str:
    """The processor's model name (Linux ``/proc/cpuinfo``), else ``platform.processor()``."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def environment(device: str) -> dict[str, Any]:
    """Versions and hardware of this process."""
    import timm
    import torch
    import torchvision

    from janus import __version__

    env = {
        "janus": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "timm": timm.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": device,
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(0)
    return env


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def matrix_to_json(acc: np.ndarray) -> list[list[float | None]]:
    return [[None if math.isnan(x) else float(x) for x in row] for row in acc]


def matrix_from_json(rows: list[list[float | None]]) -> np.ndarray:
    return np.array([[np.nan if x is None else x for x in row] for row in rows], dtype=float)


def metrics_of(record: dict[str, Any]) -> dict[str, float]:
    """ACC / MAA / BWT recomputed from the record's accuracy matrix."""
    return metrics.summary(matrix_from_json(record["accuracy_matrix"]))


def write_error(path: Path, err: OSError) -> JanusError:
    """One clear error for a file that could not be written (no space, read-only, ...)."""
    if err.errno == errno.ENOSPC:
        why = "no space left on the device"
    elif err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        why = "no permission to write there (read-only folder or file system)"
    else:
        why = err.strerror or str(err)
    return JanusError(f"cannot write {path}: {why}; nothing finished is lost (the last "
                      f"complete file is kept): free space or choose another --out, then "
                      f"rerun with --resume")


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path next to ``path`` to write to; on success it is synced to disk and
    renamed over ``path`` (a crash never leaves a half-written file); on failure it is
    removed and an OSError becomes :func:`write_error`."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise write_error(path, err) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any) -> None:
    """Write atomically and durably (:func:`atomic_path`)."""
    text = json.dumps(obj, indent=1, allow_nan=False) + "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(text)


class RecordError(JanusError):
    """A record file that is empty, truncated or of another schema."""


def read_record(path: Path) -> dict[str, Any]:
    """A run record, or a :class:`RecordError` naming the file and what is wrong with it."""
    try:
        record = json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RecordError(f"record {path} is not valid JSON (empty or truncated? {err}); "
                          f"delete it, or rerun the run with --resume (a checkpoint next to "
                          f"it keeps the finished tasks) or --force") from None
    if not isinstance(record, dict) or record.get("schema") != SCHEMA:
        schema = record.get("schema") if isinstance(record, dict) else None
        raise RecordError(f"record {path} has schema {schema!r}, not {SCHEMA}: it was not "
                          f"written by this version of janus run")
    problem = shape_problem(record)
    if problem:
        raise RecordError(f"record {path} has schema {SCHEMA} but {problem}: it was not "
                          f"written by janus run (hand-edited or foreign?); delete or fix it")
    return record


RECORD_FIELDS: tuple[tuple[str, type | tuple[type, ...]], ...] = (
    ("status", str),
    ("config", dict),
    ("config.profile", str),
    ("config.seed", int),
    ("config.method", dict),
    ("config.method.name", str),
    ("config.data", dict),
    ("config.data.dataset", str),
    ("config.data.num_tasks", int),
    ("environment", dict),
    ("accuracy_matrix", list),
    ("tasks", list),
)
"""The fields every reader of a record relies on (dotted paths) and their JSON types."""


def shape_problem(record: dict[str, Any]) -> str | None:
    """What is missing or malformed in a schema-1 record (None: nothing): the
    :data:`RECORD_FIELDS`, a square accuracy matrix of numbers or nulls, and, when complete,
    one entry with ``train_seconds`` per row of it."""
    for dotted, kind in RECORD_FIELDS:
        value: Any = record
        for key in dotted.split("."):
            if not isinstance(value, dict) or key not in value:
                return f"no field {dotted!r}"
            value = value[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            return f"field {dotted!r} is {type(value).__name__}, not {kind.__name__}"
    matrix = record["accuracy_matrix"]
    n = len(matrix)  # T, or 1 for a reference trained once on all classes (joint)
    if not n or any(
        not isinstance(row, list) or len(row) != n
        or any(x is not None and (isinstance(x, bool) or not isinstance(x, int | float))
               for x in row)
        for row in matrix
    ):
        return "its accuracy_matrix is not a square table of numbers (or nulls)"
    if record["status"] == "complete" and (
        len(record["tasks"]) != n
        or not all(isinstance(t, dict) and "train_seconds" in t for t in record["tasks"])
    ):
        return f"it is complete without {n} task entries with train_seconds"
    return None


def find_records(root: Path | str, complete_only: bool = True,
                 skip_unreadable: bool = False) -> list[dict[str, Any]]:
    """All records under ``root`` (recursively), sorted by path; with ``skip_unreadable``, a
    file :func:`read_record` refuses is left out with a warning instead of stopping."""
    out = []
    for path in sorted(Path(root).rglob(RECORD_NAME)):
        try:
            record = read_record(path)
        except RecordError as err:
            if not skip_unreadable:
                raise
            warnings.warn(str(err), stacklevel=2)
            continue
        if complete_only and record.get("status") != "complete":
            continue
        record["_path"] = str(path)
        out.append(record)
    return out


@dataclass(frozen=True)
class Aggregate:
    """Mean and sample standard deviation of one metric over seeds."""

    mean: float
    std: float
    n: int

    def __str__(self) -> str:
        return f"{self.mean:.2f} ± {self.std:.2f}"


def aggregate(values: Iterable[float]) -> Aggregate:
    vals = list(values)
    if not vals:
        raise ValueError("nothing to aggregate")
    std = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return Aggregate(statistics.fmean(vals), std, len(vals))


def group_key(record: dict[str, Any]) -> tuple[str, str, int, str]:
    c = record["config"]
    method = c["method"].get("label") or c["method"]["name"]
    return (c["profile"], c["data"]["dataset"], c["data"]["num_tasks"], method)


def machine_of(record: dict[str, Any]) -> str:
    """Where a record's timings were measured: GPU or CPU model (``?`` in records before
    2026-12-01, which lack it) and the torch thread count."""
    env = record["environment"]
    threads = env.get("torch_threads", "?")
    return f"{env.get('gpu') or env.get('cpu', '?')}, {threads} thread{'' if threads == 1 else 's'}"


def train_seconds(record: dict[str, Any]) -> float:
    """Wall-clock training time of a record, summed over its tasks (offline phases included)."""
    return sum(t["train_seconds"] for t in record["tasks"])


def train_cpu_seconds(record: dict[str, Any]) -> float | None:
    """CPU time of all threads spent training, summed over the tasks; ``None`` for records
    from before 2026-12-01, which lack it."""
    cpu = [t.get("train_cpu_seconds") for t in record["tasks"]]
    return None if None in cpu else sum(cpu)


def setting_values(record: dict[str, Any]) -> dict[str, str]:
    """A record's settings as dotted keys (``train.epochs``, ``method.params.k``) -> JSON text,
    without the seed and the :data:`~janus.core.config.MACHINE_FIELDS`: what the seeds of one
    run share."""
    flat: dict[str, str] = {}

    def walk(d: dict[str, Any], prefix: str) -> None:
        for k, v in d.items():
            if isinstance(v, dict) and v:
                walk(v, f"{prefix}{k}.")
            else:
                flat[prefix + k] = json.dumps(v, sort_keys=True)

    walk(record["config"], "")
    for key in ("seed", *(f"{s}.{k}" for s, k in MACHINE_FIELDS)):
        flat.pop(key, None)
    return flat


def same_settings(records: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """``records`` in groups of equal settings (:func:`setting_values`; a key that only some
    records have, e.g. from an older version, does not split them) and distinct seeds (a
    repeated run, e.g. a timing re-run in another folder, starts a group of its own), in
    first-seen order."""
    groups: list[tuple[dict[str, str], list[dict[str, Any]]]] = []
    for r in records:
        values = setting_values(r)
        for rep, members in groups:
            if all(rep[k] == values[k] for k in rep.keys() & values.keys()) and all(
                    m["config"]["seed"] != r["config"]["seed"] for m in members):
                members.append(r)
                break
        else:
            groups.append((values, [r]))
    return [members for _, members in groups]


def differing_settings(groups: list[list[dict[str, Any]]]) -> list[str | None]:
    """Per group, ``key=value`` of the settings in which it differs from another group (None
    for a single group)."""
    if len(groups) < 2:
        return [None] * len(groups)
    values = [setting_values(g[0]) for g in groups]
    shared = set.intersection(*(set(v) for v in values))
    keys = sorted(k for k in shared if len({v[k] for v in values}) > 1)
    return [", ".join(f"{k}={v[k]}" for k in keys if sum(w[k] == v[k] for w in values) == 1)
            or "repeated seeds: the same settings as another row (another folder?)"
            for v in values]


def summarize(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (profile, data set, T, method) and settings: ACC / MAA / BWT mean and std
    over seeds, recomputed from the accuracy matrices, plus the mean training time (wall clock,
    and CPU time of all threads where the records have it) per seed and where it was measured.

    Only runs of the same settings (the whole config but the seed and the machine fields) are
    seeds of one row; where one method has runs of several settings, each gets its row and
    ``settings`` names what differs (e.g. ``train.lr=0.01``), else it is None."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault(group_key(r), []).append(r)
    rows = []
    for (prof, data, tasks, method), recs in sorted(groups.items()):
        # the output folder with the most of these runs first: a repeated seed elsewhere
        # (e.g. a timing re-run) is the one that gets a row of its own
        roots = Counter(output_root(r) for r in recs)
        recs = sorted(recs, key=lambda r: (-roots[output_root(r)], r.get("_path", "")))
        parts = same_settings(recs)
        for part, settings in zip(parts, differing_settings(parts), strict=True):
            rows.append(summary_row(prof, data, tasks, method, part, settings))
    return rows


def output_root(record: dict[str, Any]) -> str:
    """The ``--out`` folder a found record was written under (:func:`find_records` notes its
    path ``<out>/<profile>/<data set>-T<T>/<method>/seed<S>/record.json``)."""
    path = record.get("_path")
    return str(Path(path).parents[4]) if path else ""


def summary_row(prof: str, data: str, tasks: int, method: str, recs: list[dict[str, Any]],
                settings: str | None) -> dict[str, Any]:
    """The :func:`summarize` row of the seeds ``recs`` of one run."""
    per_seed = [metrics_of(r) for r in recs]
    row: dict[str, Any] = {
        "profile": prof,
        "dataset": data,
        "tasks": tasks,
        "method": method,
        "seeds": sorted(r["config"]["seed"] for r in recs),
    }
    for name in ("acc", "maa", "bwt"):
        agg = aggregate(m[name] for m in per_seed)
        row[name], row[f"{name}_std"] = agg.mean, agg.std
    row["train_seconds_per_seed"] = statistics.fmean(train_seconds(r) for r in recs)
    cpu = [train_cpu_seconds(r) for r in recs]
    row["train_cpu_seconds_per_seed"] = None if None in cpu else statistics.fmean(cpu)
    row["measured_on"] = sorted({machine_of(r) for r in recs})
    row["settings"] = settings
    return row


PER_TASK = {
    "avg_acc": lambda r: metrics.average_accuracies(matrix_from_json(r["accuracy_matrix"])),
    "train_seconds": lambda r: np.array([t["train_seconds"] for t in r["tasks"]]),
    "cumulative_seconds": lambda r: np.cumsum([t["train_seconds"] for t in r["tasks"]]),
    "throughput": lambda r: np.array([t["train_images_per_second"] for t in r["tasks"]]),
}
"""Per-task quantities of a complete record (one value per task, in task order)."""


def per_task_series(
    records: Iterable[dict[str, Any]], quantity: str
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per run key (method label or name): mean and sample std over seeds (as
    :func:`summarize`) of a :data:`PER_TASK` quantity after each task."""
    if quantity not in PER_TASK:
        raise ValueError(f"quantity must be one of {sorted(PER_TASK)}, got {quantity!r}")
    groups: dict[str, list[np.ndarray]] = {}
    for r in records:
        groups.setdefault(group_key(r)[3], []).append(PER_TASK[quantity](r))
    return {
        k: (np.mean(v, axis=0), np.std(v, axis=0, ddof=1) if len(v) > 1 else np.zeros_like(v[0]))
        for k, v in groups.items()
    }


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
