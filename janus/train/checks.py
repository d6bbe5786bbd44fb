"""What a run refuses or warns about: settings no run can train with (before anything is
loaded), too few optimizer steps in a task, and non-finite losses."""

from __future__ import annotations

import math
import warnings

import torch

from janus.core.config import RunConfig, check_settings
from janus.core.errors import ConfigError, NonFiniteLossError
from janus.core.precision import amp_mode
from janus.methods import TaskContext

MIN_STEPS = 20
"""Fewer optimizer steps than this in a task draw a :class:`FewStepsWarning`."""


class FewStepsWarning(UserWarning):
    """A task gets too few optimizer steps to train its head."""


def check_config(cfg: RunConfig) -> None:
    """Refuse settings no run can train with (sizes that would train zero steps, a negative
    seed, a checkpoint that would be ignored; then every setting's type, range and form,
    :func:`janus.core.config.check_settings`), before anything is loaded."""
    t, d = cfg.train, cfg.data
    counts = {"train.epochs": t.epochs, "data.batch_size": d.batch_size,
              "data.eval_batch_size": d.eval_batch_size}
    if t.max_steps_per_task is not None:
        counts["train.max_steps_per_task"] = t.max_steps_per_task
    for key, value in counts.items():
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"{key}={value!r} is impossible: it must be a whole number >= 1")
    if not isinstance(t.lr, int | float) or not math.isfinite(t.lr) or t.lr <= 0:
        raise ConfigError(f"train.lr={t.lr!r} is impossible: it must be a finite number > 0")
    if not isinstance(cfg.seed, int) or isinstance(cfg.seed, bool) or cfg.seed < 0:
        raise ConfigError(f"seed {cfg.seed!r} is impossible: it must be a whole number >= 0")
    m = cfg.model
    if m.checkpoint is not None and m.source != "checkpoint":
        raise ConfigError(f"model.checkpoint={m.checkpoint!r} would be ignored: model.source is "
                          f"{m.source!r}; add --set model.source=checkpoint to load it")
    if not isinstance(d.num_tasks, int) or d.num_tasks < 1:
        raise ConfigError(f"data.num_tasks={d.num_tasks!r} (--tasks) is impossible: it must be "
                          f"a whole number >= 1")
    amp_mode(t.amp)
    if not isinstance(t.deterministic, bool):
        raise ConfigError(f"train.deterministic={t.deterministic!r} must be True or False")
    check_settings(cfg)


def warn_few_steps(cfg: RunConfig, t: int, images: int, batches: int, batch_size: int) -> bool:
    """Warn (:class:`FewStepsWarning`) when task ``t`` (0-based), ``images`` training images in
    ``batches`` batches of at most ``batch_size`` an epoch, gets fewer than :data:`MIN_STEPS`
    optimizer steps from its ``train.epochs``; whether it warned. A run warns once: later
    tasks are not named."""
    total = cfg.train.epochs * batches
    if total >= MIN_STEPS:
        return False
    warnings.warn(FewStepsWarning(
        f"task {t + 1} has {images} training images: {total} optimizer steps "
        f"({cfg.train.epochs} epochs of {batches} batches of at most {batch_size}), fewer than "
        f"{MIN_STEPS}, too few to train its head; raise train.epochs or lower data.batch_size "
        f"(later tasks are not named)"), stacklevel=4)
    return True


def check_finite(losses: list[torch.Tensor], first: int, ctx: TaskContext, lr: float) -> None:
    """Raise if any of ``losses`` (steps ``first``, ``first + 1``, ... of the task of ``ctx``,
    trained at ``train.lr`` ``lr``) is not finite: one host synchronisation for the window."""
    window = torch.stack(losses) if losses else None
    finite = torch.isfinite(window) if window is not None else None
    if finite is not None and not bool(finite.all()):
        at = int((~finite).nonzero()[0, 0])
        raise NonFiniteLossError(
            f"non-finite loss ({float(window[at])}) in task {ctx.index + 1} at step "
            f"{first + at + 1} (checked steps {first + 1}-{first + len(losses)} of "
            f"{ctx.total_steps}); lower train.lr (now {lr:g}) or the method's step sizes"
        )
