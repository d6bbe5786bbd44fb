"""Measurements that train the first tasks of a run with observers attached (the Fig. 2 and
Fig. 7 probes) and keep their result as a JSON record next to the runs."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from janus.core.config import RunConfig
from janus.core.errors import JanusError
from janus.core.results import environment, now, write_json
from janus.train.identity import comparable
from janus.train.trainer import Observer, Run


def train_observed(
    cfg: RunConfig, tasks: int, observers: Sequence[Observer], progress: bool = True
) -> dict[str, Any]:
    """Train the first ``tasks`` tasks of ``cfg`` with ``observers``; the JSON-ready part of
    the record common to all probes (config, environment, accuracy after each task, times)."""
    run = Run(cfg, Path("."), progress=progress, observers=observers)
    if not 2 <= tasks <= run.stream.num_tasks:
        raise ValueError(f"tasks must lie in 2..{run.stream.num_tasks}, got {tasks}")
    started = now()
    run.start()
    run.train_tasks(tasks, save=False)
    return {
        "config": cfg.to_dict(),
        "seed": cfg.seed,
        "environment": environment(str(run.device)),
        "started": started,
        "updated": now(),
        "tasks_trained": tasks,
        "accuracy": [[float(a) for a in run.state.acc[t, : t + 1]] for t in range(tasks)],
        "train_seconds": [entry["train_seconds"] for entry in run.state.task_log],
    }


def load_or_measure(
    path: Path, cfg: RunConfig, settings: dict[str, Any], measure: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """The record at ``path`` if it exists (it must have the same config and ``settings``),
    else ``measure()``, written there atomically."""
    if path.is_file():
        old = json.loads(path.read_text())
        same = comparable(old["config"]) == comparable(cfg.to_dict()) and all(
            old.get(k) == v for k, v in settings.items()
        )
        if not same:
            raise JanusError(
                f"{path} holds a measurement with other settings; delete it or write elsewhere"
            )
        return old
    record = measure()
    write_json(path, record)
    return record
