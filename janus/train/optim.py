"""The optimizer and learning-rate schedule of a task (``train.optimizer``, ``train.schedule``)
and the version of each schedule's rates, which records store."""

from __future__ import annotations

import math
from typing import Any

import torch

from janus.core.config import RunConfig
from janus.core.errors import ConfigError


def make_optimizer(cfg: RunConfig, groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
    """``train.optimizer`` (Adam or SGD with ``cfg.train``'s settings) over the parameter
    ``groups`` of the task; refused when the groups hold no parameter."""
    t = cfg.train
    if not any(g["params"] for g in groups):
        raise ConfigError("the method left no trainable parameters for this task")
    if t.optimizer == "adam":
        return torch.optim.Adam(groups, lr=t.lr, betas=tuple(t.betas), weight_decay=t.weight_decay)
    if t.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay)
    raise ConfigError(f"train.optimizer must be 'adam' or 'sgd', got {t.optimizer!r}")


SCHEDULES = ("cosine", "inflora-cosine", "constant")


def inflora_cosine(epoch: int, epochs: int) -> float:
    """The rate of epoch ``epoch`` (0-based) under InfLoRA's ``CosineSchedule`` as its code runs
    it (liangyanshuo/InfLoRA@e08b00e): ``cos(99 pi max(e - 1, 0) / (200 (K - 1)))``. The class
    sets epoch 0's rate in its constructor and then resets its counter to -1
    (``utils/schedulers.py`` lines 19-20), and ``step()`` is called after each epoch's
    batches (``methods/inflora.py`` line 238), so epochs 0 and 1 both train at the full rate
    and every later epoch one step behind the formula; the last epoch ``K - 1`` trains at
    ``cos(99 pi (K - 2) / (200 (K - 1)))``: 4.74% for K = 50, 9.74% for K = 20."""
    if epochs <= 1:
        return 1.0
    return math.cos(99 * math.pi * max(epoch - 1, 0) / (200 * (epochs - 1)))


SCHEDULE_VERSIONS = {"inflora-cosine": 2}
"""Raised when a schedule's rates change (stored in records; a record of another version is
not reused or resumed). ``inflora-cosine`` 2: one epoch behind version 1's formula, as the
official code steps it."""


def schedule_version(schedule: str) -> int:
    """The version of ``train.schedule`` this code runs (1 unless :data:`SCHEDULE_VERSIONS`)."""
    return SCHEDULE_VERSIONS.get(schedule, 1)


def make_schedule(cfg: RunConfig, opt: torch.optim.Optimizer, total: int, steps_per_epoch: int):
    """The task's learning-rate schedule, stepped after every optimizer step: ``cosine`` (half
    cosine over the task's ``total`` steps, to zero), ``inflora-cosine`` (:func:`inflora_cosine`
    of the epoch the step is in) or ``constant``."""
    if cfg.train.schedule == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / max(total, 1)))
        )
    if cfg.train.schedule == "inflora-cosine":
        epochs, per_epoch = cfg.train.epochs, max(steps_per_epoch, 1)
        return torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: inflora_cosine(min(s // per_epoch, epochs - 1), epochs)
        )
    if cfg.train.schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    raise ConfigError(f"train.schedule must be one of {', '.join(SCHEDULES)}, "
                      f"got {cfg.train.schedule!r}")
