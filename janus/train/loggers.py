"""Optional loggers of a run (``train.loggers``): ``csv`` (two CSV files in the run folder),
``tensorboard`` (an event file, ``tensorboard --logdir <out>``) and ``wandb`` (Weights & Biases,
offline unless ``WANDB_MODE=online``: no hidden network access; ``wandb sync`` uploads it).

At every check of the training loss (every ``SYNC_EVERY`` steps and a task's last one: no
extra host synchronisation) they get the loss, the learning rate of each parameter group, the
images per second since the last check and, on CUDA, the peak memory; after each task the
accuracy row and ACC / MAA / BWT so far; once, the resolved config. The packages come with the
``janus[track]`` extra; a logger whose package is missing is refused before anything loads.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from janus.core import metrics
from janus.core.config import RunConfig
from janus.core.errors import ConfigError

PACKAGES = {"csv": None, "tensorboard": "tensorboard", "wandb": "wandb"}
"""Each logger's package (None: the standard library)."""

SWEEP_ENV = "JANUS_SWEEP"
"""Set by a sweep's jobs to the sweep id: W&B groups the runs of one sweep by it."""


def check_loggers(names: tuple[str, ...]) -> None:
    """Refuse a logger whose package is not installed, saying how to install it."""
    missing = [n for n in names if PACKAGES[n] and importlib.util.find_spec(PACKAGES[n]) is None]
    if missing:
        raise ConfigError(f"train.loggers={list(names)}: {', '.join(missing)} needs its package "
                          f"({', '.join(str(PACKAGES[n]) for n in missing)}): pip install "
                          f"'janus[track]', or drop it from train.loggers")


class CsvLog:
    """``log/steps.csv`` (a row per loss check) and ``log/tasks.csv`` (a row per task), appended
    to on resume."""

    def __init__(self, folder: Path, cfg: RunConfig) -> None:
        self.folder = folder / "log"
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1) + "\n")

    def _append(self, name: str, row: dict[str, Any]) -> None:
        path = self.folder / name
        new = not path.exists()
        with open(path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)

    def scalars(self, values: dict[str, float], step: int) -> None:
        self._append("steps.csv", {"step": step, **values})

    def task(self, t: int, row: list[float], summary: dict[str, float]) -> None:
        self._append("tasks.csv", {"task": t + 1, **summary,
                                   "accuracy_row": json.dumps([round(a, 4) for a in row])})

    def close(self) -> None:
        pass


class TensorBoardLog:
    """An event file in ``tensorboard/`` of the run folder; the config as text."""

    def __init__(self, folder: Path, cfg: RunConfig) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(folder / "tensorboard"))
        self.writer.add_text("config", "```\n" + json.dumps(cfg.to_dict(), indent=1) + "\n```")

    def scalars(self, values: dict[str, float], step: int) -> None:
        for key, value in values.items():
            self.writer.add_scalar(key, value, step)

    def task(self, t: int, row: list[float], summary: dict[str, float]) -> None:
        for key, value in summary.items():
            self.writer.add_scalar(f"metrics/{key}", value, t + 1)
        for j, acc in enumerate(row):
            self.writer.add_scalar(f"accuracy/task{j + 1}", acc, t + 1)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class WandbLog:
    """A W&B run in the run folder, grouped by sweep, offline unless ``WANDB_MODE`` says
    otherwise; its id is fixed by the run folder, so a resumed run continues it."""

    def __init__(self, folder: Path, cfg: RunConfig) -> None:
        import wandb

        mode = os.environ.get("WANDB_MODE", "offline")
        self.run = wandb.init(
            project=os.environ.get("WANDB_PROJECT", "janus"), dir=str(folder), mode=mode,
            group=os.environ.get(SWEEP_ENV), name=f"{cfg.method.run_name}-seed{cfg.seed}",
            id=f"janus-{zlib.crc32(str(folder.resolve()).encode()):08x}", resume="allow",
            config=cfg.to_dict(), reinit=True)
        if mode == "offline":
            print(f"W&B run kept offline in {self.run.dir}; upload it with: wandb sync "
                  f"{Path(self.run.dir).parent}", flush=True)

    def scalars(self, values: dict[str, float], step: int) -> None:
        self.run.log(values, step=step)

    def task(self, t: int, row: list[float], summary: dict[str, float]) -> None:
        self.run.log({"task": t + 1, **{f"metrics/{k}": v for k, v in summary.items()},
                      **{f"accuracy/task{j + 1}": a for j, a in enumerate(row)}})

    def close(self) -> None:
        self.run.finish()


BACKENDS = {"csv": CsvLog, "tensorboard": TensorBoardLog, "wandb": WandbLog}


class RunLoggers:
    """The loggers of one run, each told the same things."""

    def __init__(self, cfg: RunConfig, folder: Path) -> None:
        self.backends = [BACKENDS[name](folder, cfg) for name in cfg.train.loggers]

    def step(self, t: int, step: int, loss: float, train_step: Any, device: torch.device,
             images_per_second: float) -> None:
        """At a loss check of task ``t``, ``step`` steps into the run: the loss, the learning
        rate of each parameter group of ``train_step``'s optimizer, the throughput and (on
        CUDA) the peak memory."""
        values = {"train/loss": loss, "train/images_per_second": images_per_second,
                  "train/task": t + 1}
        opt = getattr(train_step, "optimizer", None)
        for i, group in enumerate(opt.param_groups if opt is not None else []):
            values[f"train/lr_group{i}"] = float(group["lr"])
        if device.type == "cuda":
            values["train/peak_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
        for b in self.backends:
            b.scalars(values, step)

    def task(self, t: int, acc: np.ndarray) -> None:
        """After task ``t``: its accuracy row and ACC / MAA / BWT over tasks ``0..t``."""
        seen = acc[: t + 1, : t + 1]
        summary = {k: float(v) for k, v in metrics.summary(seen).items()}
        for b in self.backends:
            b.task(t, [float(a) for a in seen[t]], summary)

    def close(self) -> None:
        for b in self.backends:
            b.close()
