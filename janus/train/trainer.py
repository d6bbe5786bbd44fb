"""The one training / evaluation loop for class-incremental learning.

``run(cfg)`` trains the tasks of the stream in order, calls the method's hooks
(:mod:`janus.methods.base`), evaluates every seen task after each task to fill the accuracy
matrix, and after each task writes a checkpoint and the (partial) JSON record, so a crash
loses at most the task in progress. Every task starts from a seed derived from
``(cfg.seed, task)``, which makes a resumed run reproduce an uninterrupted one exactly.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from janus.core import metrics
from janus.core.config import RunConfig
from janus.core.devices import out_of_memory_explained, resolve_device
from janus.core.errors import (
    ConfigError,
    GPUOutOfMemoryError,
    JanusError,
    NonFiniteLossError,
    RunBusyError,
)
from janus.core.precision import (
    amp_mode,
    autocast,
    determinism,
    fix_cublas_workspace,
    numerics,
    resolve_amp,
)
from janus.core.results import (
    RECORD_NAME,
    SCHEMA,
    RecordError,
    atomic_path,
    environment,
    matrix_to_json,
    now,
    read_record,
    write_error,
    write_json,
)
from janus.data.pipeline import resolve_workers
from janus.data.stream import (
    ClassIncrementalStream,
    Task,
    build_stream,
    fingerprint_of,
    resolve_pipeline,
)
from janus.methods import Method, TaskContext, build_method
from janus.model.backbones import checkpoint_sha256, weights_identity
from janus.model.continual import ContinualViT, build_model

CHECKPOINT_NAME = "checkpoint.pt"
SYNC_EVERY = 25
"""Training steps between host synchronisations (finiteness check, progress bar)."""
LOCK_NAME = ".lock"
MACHINE_FIELDS = (
    ("data", "root"), ("data", "path"), ("data", "num_workers"), ("data", "cache"),
    ("data", "cache_dir"),
    ("train", "device"),
)
"""Config fields that may differ between an interrupted run and its resumption (the worker
count only in the ``device`` pipeline, whose results do not depend on it: :func:`comparable`)."""


def check_config(cfg: RunConfig) -> None:
    """Refuse settings no run can train with (sizes that would train zero steps, a negative
    seed, a checkpoint that would be ignored), before anything is loaded."""
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


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def task_seed(seed: int, task: int) -> int:
    """Independent seed of task ``task`` under run seed ``seed``."""
    return int(np.random.SeedSequence([seed, task]).generate_state(1)[0])


def run_dir(cfg: RunConfig, out_root: str | os.PathLike) -> Path:
    """``<out>/<profile>/<dataset>-T<T>/<method label or name>/seed<S>``."""
    d = cfg.data
    return (
        Path(out_root) / cfg.profile / f"{d.dataset}-T{d.num_tasks}" / cfg.method.run_name
        / f"seed{cfg.seed}"
    )


def comparable(config: dict[str, Any]) -> dict[str, Any]:
    """The config without machine-specific fields, normalised through JSON."""
    c = json.loads(json.dumps(config))
    for section, key in MACHINE_FIELDS:
        c[section].pop(key, None)
    data = c["data"]  # records written before data.pipeline existed used PIL transforms
    data["pipeline"] = resolve_pipeline(data.get("pipeline", "pil"), data["dataset"])
    if data["pipeline"] == "pil":  # each worker augments with its own RNG: the count matters
        data["num_workers"] = resolve_workers(config["data"].get("num_workers", 0), "pil")
    c["train"].setdefault("compile", False)  # records from before train.compile
    c["train"]["amp"] = amp_mode(c["train"].get("amp", "auto"))  # a bool before the choice
    c["train"].setdefault("deterministic", True)  # records from before train.deterministic
    data.setdefault("split", "auto")  # records from before data.split
    c["method"].setdefault("label", None)  # records written before labels existed
    return c


MIN_STEPS = 20
"""Fewer optimizer steps than this in a task draw a :class:`FewStepsWarning`."""


class FewStepsWarning(UserWarning):
    """A task gets too few optimizer steps to train its head."""


class LockUnavailableWarning(UserWarning):
    """The file system of a run folder cannot lock files (``flock`` is off)."""


def method_version(cfg: RunConfig) -> int:
    """The version of the implementation ``cfg.method`` runs with (:attr:`Method.version`)."""
    return build_method(cfg).version


def mismatch(record: dict[str, Any], cfg: RunConfig) -> str | None:
    """Why a stored record (or checkpoint) was not made with this config on the same backbone
    weights and method version, or None when it was: the condition for reusing or resuming it."""
    if comparable(record["config"]) != comparable(cfg.to_dict()):
        return f"a different config (differing: {config_diff(record['config'], cfg.to_dict())})"
    sha = checkpoint_sha256(cfg.model)
    if record.get("checkpoint_sha256", sha) != sha:  # the same config on other weights
        return "other backbone weights"
    schedule = cfg.train.schedule
    if record.get("schedule_version", 1) != schedule_version(schedule):
        return (f"version {record.get('schedule_version', 1)} of train.schedule={schedule!r}, "
                f"whose learning rates have changed since (now version "
                f"{schedule_version(schedule)}: docs/interpretations.md, \"Optimiser and "
                f"schedule\")")
    old = record.get("method", {}).get("version", 1)  # records from before method versions
    if old != method_version(cfg):
        return (f"version {old} of method {cfg.method.name!r}, whose defaults or behaviour "
                f"have changed since (now version {method_version(cfg)})")
    return None


def with_amp(config: dict[str, Any], amp: str) -> dict[str, Any]:
    """``config`` with ``train.amp`` replaced by its resolved value ``amp``: a checkpoint is
    resumed under the autocast it was trained with, however that was spelt (``auto`` on a
    GPU equals ``bf16``)."""
    return {**config, "train": {**config["train"], "amp": amp}}


def config_diff(old: dict[str, Any], new: dict[str, Any]) -> str:
    """The dotted fields (machine fields aside) whose values differ, with both values."""
    a, b = comparable(old), comparable(new)
    parts = [f"{section}.{key} {a[section].get(key)!r} -> {b[section].get(key)!r}"
             for section in sorted(set(a) | set(b)) if isinstance(b.get(section), dict)
             for key in sorted(set(a.get(section, {})) | set(b[section]))
             if a.get(section, {}).get(key) != b[section].get(key)]
    parts += [f"{k} {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b))
              if not isinstance(b.get(k), dict) and a.get(k) != b.get(k)]
    return ", ".join(parts) or "nothing"


def changed(old: dict[str, Any], new: dict[str, Any]) -> str:
    """The keys of two data fingerprints that differ, for error messages."""
    return ", ".join(k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k))


def made_with(record: dict[str, Any], cfg: RunConfig) -> bool:
    """Whether :func:`mismatch` finds nothing."""
    return mismatch(record, cfg) is None


def make_optimizer(cfg: RunConfig, groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
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


class Observer:
    """Instrumentation that watches a run's training steps without changing them
    (e.g. :class:`janus.analysis.violation.ViolationProbe`); every hook is a no-op by default."""

    def before_task(self, run: Run, ctx: TaskContext) -> None:
        """After the method's ``before_task``, before the task's first step."""

    def before_step(self, run: Run, ctx: TaskContext) -> None:
        """After backward and the method's gradient hook, before the optimizer step (before
        the whole step of a method that owns it)."""

    def after_step(self, run: Run, ctx: TaskContext) -> None:
        """After the optimizer step and the method's ``after_step``."""

    def after_task(self, run: Run, ctx: TaskContext) -> None:
        """After the method's ``after_task`` (not counted in the task's training time)."""


@dataclass
class RunState:
    """What a run has done so far, the part of its checkpoint besides model and method: the
    accuracy matrix (row t: after task t; NaN where not evaluated), per finished task the
    test-image counts and the log entry, and the start time."""

    acc: np.ndarray
    eval_counts: list[list[list[int]]] = field(default_factory=list)
    task_log: list[dict[str, Any]] = field(default_factory=list)
    started: str = field(default_factory=now)

    @classmethod
    def fresh(cls, num_tasks: int) -> RunState:
        """Nothing done yet on a stream of ``num_tasks`` tasks."""
        return cls(np.full((num_tasks, num_tasks), np.nan))

    @property
    def done(self) -> int:
        """The number of finished tasks."""
        return len(self.task_log)

    def checkpoint_entries(self) -> dict[str, Any]:
        """The checkpoint entries (``acc``, ``eval_counts``, ``task_log``, ``started``)."""
        return {"acc": self.acc, "eval_counts": self.eval_counts, "task_log": self.task_log,
                "started": self.started}

    @classmethod
    def from_checkpoint(cls, state: dict[str, Any]) -> RunState:
        """The state stored by :meth:`checkpoint_entries` in a checkpoint."""
        return cls(state["acc"], state["eval_counts"], state["task_log"], state["started"])


class Run:
    """One method on one stream with one seed; see :func:`run`."""

    def __init__(
        self,
        cfg: RunConfig,
        out_dir: Path,
        progress: bool = True,
        observers: Sequence[Observer] = (),
    ) -> None:
        self.cfg = cfg
        self.out_dir = out_dir
        self.progress = progress
        self.observers = list(observers)
        check_config(cfg)
        self.device = resolve_device(cfg.train.device)
        self.amp = resolve_amp(cfg.train.amp, self.device)
        """The resolved autocast dtype, ``off`` or ``bf16``."""
        if cfg.train.deterministic:
            fix_cublas_workspace()  # before the model reaches the GPU
        seed_everything(cfg.seed)
        self.method: Method = build_method(cfg)
        self.checkpoint_sha256 = checkpoint_sha256(cfg.model)  # missing weights: fail now
        self.stream: ClassIncrementalStream = build_stream(
            cfg, cfg.seed, progress, num_tasks=1 if self.method.single_task else None)
        self.model: ContinualViT = build_model(cfg.model, cfg.lora).to(self.device)
        if cfg.train.compile:
            self.model.compile_backbone()
        self.backbone_keys = frozenset(self.model.state_dict())
        """The frozen backbone's entries, rebuilt from the config on resume, not checkpointed."""
        self.tasks: dict[int, Task] = {}
        self.state = RunState.fresh(self.stream.num_tasks)
        self.warned_few_steps = False

    # ------------------------------------------------------------------ pieces
    def task(self, t: int) -> Task:
        if t not in self.tasks:
            self.tasks[t] = self.stream.task(t)
        return self.tasks[t]

    def autocast(self) -> contextlib.AbstractContextManager:
        """Autocast of the forward passes of training and evaluation (:attr:`amp`)."""
        return autocast(self.amp, self.device)

    def optimizer_step(self, ctx: TaskContext):
        """The usual step (loss, backward, gradient hook, optimizer, ``after_step``) as a
        function of one batch, with its optimizer and schedule built for this task."""
        model, method = self.model, self.method
        opt = make_optimizer(self.cfg, method.parameter_groups(model, ctx))
        sched = make_schedule(self.cfg, opt, ctx.total_steps, ctx.steps_per_epoch)

        def step(images: torch.Tensor, targets: torch.Tensor, ctx: TaskContext) -> torch.Tensor:
            with self.autocast():
                loss = method.loss(model, images, targets, ctx)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            method.after_backward(model, ctx)
            for obs in self.observers:
                obs.before_step(self, ctx)
            opt.step()
            sched.step()
            method.after_step(model, ctx)
            for obs in self.observers:
                obs.after_step(self, ctx)
            return loss

        return step

    def method_step(
        self, images: torch.Tensor, targets: torch.Tensor, ctx: TaskContext
    ) -> torch.Tensor:
        """The step of a method that owns it (:meth:`Method.train_step`), between observers;
        the method runs its forward passes under ``ctx.autocast()`` and its updates outside."""
        for obs in self.observers:
            obs.before_step(self, ctx)
        loss = self.method.train_step(self.model, images, targets, ctx)
        for obs in self.observers:
            obs.after_step(self, ctx)
        return loss

    def check_finite(self, losses: list[torch.Tensor], first: int, ctx: TaskContext) -> None:
        """Raise if any of ``losses`` (steps ``first``, ``first + 1``, ...) is not finite: one
        host synchronisation for the whole window."""
        window = torch.stack(losses) if losses else None
        finite = torch.isfinite(window) if window is not None else None
        if finite is not None and not bool(finite.all()):
            at = int((~finite).nonzero()[0, 0])
            raise NonFiniteLossError(
                f"non-finite loss ({float(window[at])}) in task {ctx.index + 1} at step "
                f"{first + at + 1} (checked steps {first + 1}-{first + len(losses)} of "
                f"{ctx.total_steps}); lower train.lr (now {self.cfg.train.lr:g}) or the method's "
                f"step sizes"
            )

    def train_task(self, t: int) -> dict[str, Any]:
        task = self.task(t)
        seed_everything(task_seed(self.cfg.seed, t))
        gen = torch.Generator().manual_seed(task_seed(self.cfg.seed, t))
        model, method = self.model, self.method
        model.add_head(len(task.labels))
        for i, head in enumerate(model.heads):
            head.requires_grad_(i == t)
        loader = self.stream.train_loader(task, gen)
        total = self.cfg.train.epochs * len(loader) if method.trains else 0
        if method.trains and total < MIN_STEPS and not self.warned_few_steps:
            self.warned_few_steps = True
            warnings.warn(FewStepsWarning(
                f"task {t + 1} has {len(task.train)} training images: {total} optimizer steps "
                f"({self.cfg.train.epochs} epochs of {len(loader)} batches of at most "
                f"{self.stream.batch_size}), fewer than {MIN_STEPS}, too few to train its head; "
                f"raise train.epochs or lower data.batch_size (later tasks are not named)"
            ), stacklevel=2)
        if self.cfg.train.max_steps_per_task is not None:
            total = min(total, self.cfg.train.max_steps_per_task)
        ctx = TaskContext(task=task, stream=self.stream, device=self.device, total_steps=total,
                          steps_per_epoch=len(loader), amp=self.amp)
        begin, cpu_begin = time.perf_counter(), time.process_time()
        method.before_task(model, ctx)
        for obs in self.observers:
            obs.before_task(self, ctx)
        if total == 0:
            step = None
        else:
            step = self.method_step if method.owns_step else self.optimizer_step(ctx)
        losses: list[torch.Tensor] = []
        checked = 0
        images_seen = 0
        bar = tqdm(
            total=total, desc=f"task {t + 1}/{self.stream.num_tasks}", disable=not self.progress,
            leave=False,
        )
        start = time.perf_counter()
        model.train()
        while ctx.step < total:
            for images, targets in loader:
                images = images.to(self.device, non_blocking=True)
                targets = targets.to(self.device, non_blocking=True)
                losses.append(step(images, targets, ctx).detach())
                images_seen += len(images)
                ctx.step += 1
                if ctx.step % SYNC_EVERY == 0 or ctx.step >= total:
                    self.check_finite(losses[checked:], checked, ctx)
                    checked = len(losses)
                    bar.update(ctx.step - bar.n)
                    bar.set_postfix(loss=f"{float(losses[-1]):.3f}")
                if ctx.step >= total:
                    break
        step_seconds = time.perf_counter() - start
        losses_host = torch.stack(losses).float().cpu().tolist() if losses else []
        method.after_task(model, ctx)
        end, cpu_end = time.perf_counter(), time.process_time()
        bar.close()
        for obs in self.observers:
            obs.after_task(self, ctx)
        return {
            "task": t,
            "steps": ctx.step,
            "train_images": images_seen,
            "train_seconds": end - begin,
            "train_cpu_seconds": cpu_end - cpu_begin,
            "step_seconds": step_seconds,
            "offline_seconds": end - begin - step_seconds,
            "train_images_per_second": images_seen / max(step_seconds, 1e-9),
            "mean_loss": float(np.mean(losses_host)) if losses else None,
            "final_loss": losses_host[-1] if losses else None,
        }

    @torch.no_grad()
    def evaluate(self, t: int) -> tuple[list[float], list[list[int]], float]:
        """Accuracy (percent) on tasks 0..t, predicting over all seen classes."""
        start = time.perf_counter()
        self.model.eval()
        accs, counts = [], []
        for i in range(t + 1):
            correct = total = 0
            for images, targets in self.stream.test_loader(self.task(i)):
                images, targets = images.to(self.device), targets.to(self.device)
                with self.autocast():
                    scores = self.method.predict(self.model, images, num_tasks=t + 1)
                correct += int((scores.argmax(-1) == targets).sum())
                total += len(targets)
            accs.append(100.0 * correct / max(total, 1))
            counts.append([correct, total])
        return accs, counts, time.perf_counter() - start

    # ------------------------------------------------------------------ records
    def record(self, status: str) -> dict[str, Any]:
        done = self.state.done
        rec: dict[str, Any] = {
            "schema": SCHEMA,
            "status": status,
            "config": self.cfg.to_dict(),
            "seed": self.cfg.seed,
            "environment": environment(str(self.device)),
            "checkpoint_sha256": self.checkpoint_sha256,
            "weights": weights_identity(self.cfg.model),
            "method": {"version": self.method.version, "params": self.method.params.values()},
            "numerics": numerics(self.amp, self.cfg.train.deterministic),
            "schedule_version": schedule_version(self.cfg.train.schedule),
            "data": self.stream.fingerprint,
            "started": self.state.started,
            "updated": now(),
            "class_order": [int(c) for c in self.stream.class_order],
            "accuracy_matrix": matrix_to_json(self.state.acc),
            "eval_counts": self.state.eval_counts,
            "tasks": self.state.task_log,
        }
        if status == "complete":
            rec["metrics"] = metrics.summary(self.state.acc)
        elif done:
            rec["metrics_so_far"] = metrics.summary(self.state.acc[:done, :done])
        return rec

    def save_checkpoint(self) -> None:
        state = {
            "config": self.cfg.to_dict(),
            "method_version": self.method.version,
            "amp": self.amp,
            "schedule_version": schedule_version(self.cfg.train.schedule),
            "data": self.stream.fingerprint,
            "completed_tasks": self.state.done,
            "structure": self.model.structure(),
            "model": {k: v for k, v in self.model.state_dict().items()
                      if k not in self.backbone_keys},
            "method": self.method.state_dict(),
            **self.state.checkpoint_entries(),
        }
        with atomic_path(self.out_dir / CHECKPOINT_NAME) as tmp:
            torch.save(state, tmp)

    def load_checkpoint(self, path: Path) -> None:
        try:
            state = torch.load(path, map_location=self.device, weights_only=False)
        except Exception as err:  # truncated or overwritten file
            raise JanusError(
                f"the checkpoint {path} cannot be read ({type(err).__name__}; truncated?), so "
                f"the run cannot continue from it; pass --force to start over (its record "
                f"keeps the accuracies of the finished tasks until then)") from None
        saved_amp = state.get("amp", self.amp)  # checkpoints from before train.amp's choice
        if saved_amp != self.amp:
            raise ConfigError(
                f"the checkpoint at {path} was trained with autocast {saved_amp!r}, but "
                f"train.amp={self.cfg.train.amp!r} resolves to {self.amp!r} on {self.device}; "
                f"continue it with --set train.amp={saved_amp}, or pass --force to start over"
            )
        old, new = with_amp(state["config"], saved_amp), with_amp(self.cfg.to_dict(), self.amp)
        if comparable(old) != comparable(new):
            raise ConfigError(
                f"the checkpoint at {path} was written by a different config (differing: "
                f"{config_diff(old, new)}); resume with the same settings, or pass --force to "
                f"start over"
            )
        if state.get("method_version", 1) != self.method.version:
            raise ConfigError(
                f"the checkpoint at {path} was written by version "
                f"{state.get('method_version', 1)} of method {self.cfg.method.name!r} (now "
                f"{self.method.version}); pass --force to start over"
            )
        saved = state.get("schedule_version", 1)
        if saved != schedule_version(self.cfg.train.schedule):
            raise ConfigError(
                f"the checkpoint at {path} was trained with version {saved} of "
                f"train.schedule={self.cfg.train.schedule!r} (now "
                f"{schedule_version(self.cfg.train.schedule)}: its learning rates changed); "
                f"pass --force to start over"
            )
        if state.get("data", self.stream.fingerprint) != self.stream.fingerprint:
            raise ConfigError(
                f"the checkpoint at {path} was written on other data under the same config "
                f"({changed(state['data'], self.stream.fingerprint)} differ); pass --force to "
                f"start over"
            )
        self.model.rebuild(state["structure"])
        self.method.setup(self.model)
        missing, unexpected = self.model.load_state_dict(state["model"], strict=False)
        if unexpected or not set(missing) <= self.backbone_keys:
            raise ConfigError(f"the checkpoint at {path} does not fit this model (missing "
                              f"{sorted(set(missing) - self.backbone_keys)[:3]}, unexpected "
                              f"{unexpected[:3]}); pass --force to start over")
        self.method.load_state_dict(state["method"])
        self.state = RunState.from_checkpoint(state)

    # ------------------------------------------------------------------ main
    def start(self, resume: bool = False) -> None:
        """Set the method up, or, with ``resume``, continue from the folder's checkpoint."""
        ckpt = self.out_dir / CHECKPOINT_NAME
        if resume and ckpt.exists():
            self.load_checkpoint(ckpt)
        else:
            self.method.setup(self.model)

    def train_tasks(self, until: int | None = None, *, save: bool = True) -> None:
        """Train and evaluate the tasks after the finished ones, up to task ``until`` (count;
        None: all), filling the accuracy matrix and the task log. ``save`` writes the
        checkpoint and the partial record after each task (probes and tests pass False)."""
        until = self.stream.num_tasks if until is None else until
        if not self.state.done <= until <= self.stream.num_tasks:
            raise ValueError(f"cannot train up to task {until}: {self.state.done} of "
                             f"{self.stream.num_tasks} are done")
        if save:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        with determinism(self.cfg.train.deterministic):
            for t in range(self.state.done, until):
                try:
                    with out_of_memory_explained(self.cfg, t, "training"):
                        entry = self.train_task(t)
                    with out_of_memory_explained(self.cfg, t, "evaluation"):
                        accs, counts, eval_seconds = self.evaluate(t)
                except (NonFiniteLossError, GPUOutOfMemoryError) as err:
                    if not save:
                        raise
                    self.fail(t, err)
                self.state.acc[t, : t + 1] = accs
                self.state.eval_counts.append(counts)
                entry["eval_seconds"] = eval_seconds
                self.state.task_log.append(entry)
                if save:
                    self.save_checkpoint()
                    write_json(self.out_dir / RECORD_NAME, self.record("partial"))

    def fail(self, t: int, err: NonFiniteLossError | GPUOutOfMemoryError) -> None:
        """Mark the record failed in task ``t`` with ``err``'s reason and raise ``err`` again,
        saying that the finished tasks are kept."""
        failed = self.record("failed")
        failed["failure"] = {"task": t, "reason": str(err)}
        write_json(self.out_dir / RECORD_NAME, failed)
        raise type(err)(
            f"{err}. The record at {self.out_dir / RECORD_NAME} is marked failed; "
            f"the {t} finished task(s) are kept: after lowering the setting, start over "
            f"with --force (a resumed run must keep its config)") from None

    def execute(self, resume: bool) -> dict[str, Any]:
        """The whole run: :meth:`start`, :meth:`train_tasks`, the complete record; the
        method's hooks are removed at the end, also on failure."""
        try:
            self.start(resume)
            self.train_tasks()
        finally:
            self.method.remove_hooks()
        record = self.record("complete")
        write_json(self.out_dir / RECORD_NAME, record)
        return record


def run(
    cfg: RunConfig,
    out_root: str | os.PathLike = "runs",
    *,
    resume: bool = False,
    force: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Run one method on one stream with one seed; return the complete record.

    A finished run with the same config is not repeated (its record is returned) unless
    ``force``; an unfinished one is continued with ``resume`` or restarted with ``force``.
    """
    out_dir = run_dir(cfg, out_root)
    with run_lock(out_dir):
        return _run_locked(cfg, out_dir, resume=resume, force=force, progress=progress)


@contextlib.contextmanager
def run_lock(out_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``out_dir`` (``.lock``, released when the process ends), so
    that two processes never write the same record and checkpoint. Folders made only for the
    lock are removed again if the run wrote nothing (e.g. its data were missing)."""
    import fcntl  # POSIX

    made = [d for d in (out_dir, *out_dir.parents) if not d.exists()]
    lock = out_dir / LOCK_NAME
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        handle = open(lock, "a+")  # closed by the with below
    except OSError as err:
        raise write_error(out_dir, err) from None
    with handle:
        locked = True
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunBusyError(
                f"another process is running {out_dir}; wait for it to finish, or stop it and "
                f"pass --resume to continue from its last finished task"
            ) from None
        except OSError as err:  # flock off on this file system (ENOSYS, ENOLCK, EOPNOTSUPP)
            locked = False
            warnings.warn(LockUnavailableWarning(
                f"cannot lock {lock} ({err.strerror}): this file system has no flock, so "
                f"nothing stops a second process from running the same folder; `janus sweep` "
                f"keeps runs apart with claim files instead"), stacklevel=3)
        try:
            yield
        finally:
            if made and [p.name for p in out_dir.iterdir()] == [LOCK_NAME]:
                lock.unlink()
                with contextlib.suppress(OSError):  # not empty: another run wrote there
                    for d in made:
                        d.rmdir()
            if locked:
                fcntl.flock(handle, fcntl.LOCK_UN)


def lock_held(out_dir: Path) -> bool:
    """Whether a process holds ``out_dir``'s run lock (:func:`run_lock`) now."""
    import fcntl  # POSIX

    try:
        handle = open(out_dir / LOCK_NAME)
    except FileNotFoundError:
        return False
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        except OSError:  # no flock on this file system: cannot tell
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


def _run_locked(
    cfg: RunConfig, out_dir: Path, *, resume: bool, force: bool, progress: bool
) -> dict[str, Any]:
    rec_path, ckpt = out_dir / RECORD_NAME, out_dir / CHECKPOINT_NAME
    old = None
    if not force and rec_path.exists():
        try:
            old = read_record(rec_path)
        except RecordError as err:
            if not (resume and ckpt.exists()):
                raise
            warnings.warn(f"{err}; continuing from the checkpoint, which rewrites it",
                          stacklevel=3)
    if old is not None:
        why = mismatch(old, cfg)
        if why is None and "data" in old:
            now_data = fingerprint_of(cfg, cfg.seed)
            if old["data"] != now_data:
                why = f"other data under the same config ({changed(old['data'], now_data)})"
        if old.get("status") == "complete" and why is None:
            return old
        if why is not None:
            raise JanusError(
                f"{out_dir} holds a run made with {why}; choose another --out, or pass --force "
                f"(force=True in Python) to overwrite it"
            )
    if ckpt.exists() and not (resume or force):
        raise JanusError(
            f"an unfinished run exists in {out_dir}: pass --resume to continue it or --force to "
            f"start over"
        )
    if force:
        for p in (rec_path, ckpt):
            p.unlink(missing_ok=True)
    return Run(cfg, out_dir, progress=progress).execute(resume=resume)
