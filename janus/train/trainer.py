"""The one training / evaluation loop for class-incremental learning.

``run(cfg)`` trains the tasks of the stream in order, calls the method's hooks
(:mod:`janus.methods.base`), evaluates every seen task after each task to fill the accuracy
matrix, and after each task writes a checkpoint and the (partial) JSON record, so a crash
loses at most the task in progress. Every task starts from a seed derived from
``(cfg.seed, task)``, which makes a resumed run reproduce an uninterrupted one exactly.
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from janus.core import metrics
from janus.core.config import RunConfig
from janus.core.devices import out_of_memory_explained, resolve_device
from janus.core.errors import ConfigError, GPUOutOfMemoryError, JanusError, NonFiniteLossError
from janus.core.precision import autocast, determinism, fix_cublas_workspace, numerics, resolve_amp
from janus.core.results import (
    RECORD_NAME,
    SCHEMA,
    RecordError,
    environment,
    matrix_to_json,
    now,
    read_record,
    write_json,
)
from janus.core.seeding import seed_everything, task_seed
from janus.data.pipeline import DeviceBatches
from janus.data.stream import ClassIncrementalStream, Task, build_stream, fingerprint_of
from janus.methods import Method, TaskContext, build_method
from janus.model.backbones import checkpoint_sha256, weights_identity
from janus.model.continual import ContinualViT, build_model
from janus.train.checkpoint import CHECKPOINT_NAME, read_checkpoint, restore, write_checkpoint
from janus.train.checks import check_config, check_finite, warn_few_steps
from janus.train.identity import Identity, incompatibility, mismatch
from janus.train.locking import run_lock
from janus.train.loggers import RunLoggers, check_loggers
from janus.train.optim import schedule_version
from janus.train.step import Step, build_step

SYNC_EVERY = 25
"""Training steps between host synchronisations (finiteness check, progress bar)."""

def run_dir(cfg: RunConfig, out_root: str | os.PathLike) -> Path:
    """``<out>/<profile>/<dataset>-T<T>/<method label or name>/seed<S>``."""
    d = cfg.data
    return (
        Path(out_root) / cfg.profile / f"{d.dataset}-T{d.num_tasks}" / cfg.method.run_name
        / f"seed{cfg.seed}"
    )


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
        check_loggers(cfg.train.loggers)
        self.loggers: RunLoggers | None = None
        """Opened by :meth:`train_tasks` when it saves (``train.loggers``)."""
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

    def notify(self, hook: str, ctx: TaskContext) -> None:
        """Call every observer's ``hook`` (an :class:`Observer` method's name)."""
        for obs in self.observers:
            getattr(obs, hook)(self, ctx)

    def begin_task(
        self, t: int, max_steps: int | None = None
    ) -> tuple[TaskContext, DataLoader | DeviceBatches]:
        """Start task ``t``: its seed, its head (the only one trained), its training loader and
        context, whose ``total_steps`` are its epochs of batches (none for a method that does
        not train), at most ``max_steps`` (default ``train.max_steps_per_task``); then the
        method's and the observers' ``before_task``, and the model in training mode."""
        task = self.task(t)
        seed_everything(task_seed(self.cfg.seed, t))
        gen = torch.Generator().manual_seed(task_seed(self.cfg.seed, t))
        model, method = self.model, self.method
        model.add_head(len(task.labels))
        for i, head in enumerate(model.heads):
            head.requires_grad_(i == t)
        loader = self.stream.train_loader(task, gen)
        total = self.cfg.train.epochs * len(loader) if method.trains else 0
        if method.trains and not self.warned_few_steps:
            self.warned_few_steps = warn_few_steps(self.cfg, t, len(task.train), len(loader),
                                                   self.stream.batch_size)
        cap = self.cfg.train.max_steps_per_task if max_steps is None else max_steps
        if cap is not None:
            total = min(total, cap)
        ctx = TaskContext(task=task, stream=self.stream, device=self.device, total_steps=total,
                          steps_per_epoch=len(loader), amp=self.amp)
        method.before_task(model, ctx)
        self.notify("before_task", ctx)
        model.train()
        return ctx, loader

    def make_step(self, ctx: TaskContext) -> Step:
        """The training step of the task of ``ctx`` (:meth:`begin_task`) as the loop takes it,
        between this run's observers (:func:`build_step`): a function of one batch that
        returns its loss. Builds the task's optimizer and schedule: one call per task."""
        return build_step(self.cfg, self.model, self.method, ctx,
                          lambda hook: self.notify(hook, ctx))

    def train_task(self, t: int, max_steps: int | None = None) -> dict[str, Any]:
        """Train task ``t``: :meth:`begin_task`, its :meth:`make_step` over its batches for its
        steps, the method's and the observers' ``after_task``; its log entry. ``max_steps`` (as
        in :meth:`begin_task`) is for probes and benchmarks."""
        self.task(t)  # its data are loaded before the clock starts
        begin, cpu_begin = time.perf_counter(), time.process_time()
        ctx, loader = self.begin_task(t, max_steps)
        total = ctx.total_steps
        step = self.make_step(ctx) if total else None
        losses: list[torch.Tensor] = []
        checked = images_seen = 0
        bar = tqdm(total=total, desc=f"task {t + 1}/{self.stream.num_tasks}",
                   disable=not self.progress, leave=False)
        start = last = time.perf_counter()
        images_logged = 0
        while ctx.step < total:
            for images, targets in loader:
                losses.append(step(images, targets).detach())
                images_seen += len(images)
                if ctx.step % SYNC_EVERY == 0 or ctx.step >= total:
                    check_finite(losses[checked:], checked, ctx, self.cfg.train.lr)
                    checked = len(losses)
                    loss = float(losses[-1])
                    bar.update(ctx.step - bar.n)
                    bar.set_postfix(loss=f"{loss:.3f}")
                    if self.loggers is not None:
                        now = time.perf_counter()
                        done = sum(entry["steps"] for entry in self.state.task_log)
                        self.loggers.step(t, done + ctx.step, loss, step, self.device,
                                          (images_seen - images_logged) / max(now - last, 1e-9))
                        last, images_logged = now, images_seen
                if ctx.step >= total:
                    break
        step_seconds = time.perf_counter() - start
        losses_host = torch.stack(losses).float().cpu().tolist() if losses else []
        self.method.after_task(self.model, ctx)
        end, cpu_end = time.perf_counter(), time.process_time()
        bar.close()
        self.notify("after_task", ctx)
        return {
            "task": t, "steps": ctx.step, "train_images": images_seen,
            "train_seconds": end - begin, "train_cpu_seconds": cpu_end - cpu_begin,
            "step_seconds": step_seconds, "offline_seconds": end - begin - step_seconds,
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
    def identity(self) -> Identity:
        """What this run is made with (its data aside)."""
        return Identity(self.cfg.to_dict(), self.checkpoint_sha256,
                        schedule_version(self.cfg.train.schedule), self.method.version,
                        amp=self.amp)

    def record(self, status: str) -> dict[str, Any]:
        done = self.state.done
        rec: dict[str, Any] = {
            "schema": SCHEMA, "status": status, "config": self.cfg.to_dict(), "seed": self.cfg.seed,
            "environment": environment(str(self.device)),
            "checkpoint_sha256": self.checkpoint_sha256,
            "weights": weights_identity(self.cfg.model),
            "method": {"version": self.method.version, "params": self.method.params.values()},
            "numerics": numerics(self.amp, self.cfg.train.deterministic),
            "schedule_version": schedule_version(self.cfg.train.schedule),
            "data": self.stream.fingerprint, "started": self.state.started, "updated": now(),
            "class_order": [int(c) for c in self.stream.class_order],
            "accuracy_matrix": matrix_to_json(self.state.acc),
            "eval_counts": self.state.eval_counts, "tasks": self.state.task_log,
        }
        if status == "complete":
            rec["metrics"] = metrics.summary(self.state.acc)
        elif done:
            rec["metrics_so_far"] = metrics.summary(self.state.acc[:done, :done])
        return rec

    def save_checkpoint(self) -> None:
        """Write the checkpoint of the finished tasks (:func:`write_checkpoint`)."""
        write_checkpoint(self.out_dir / CHECKPOINT_NAME, {
            "config": self.cfg.to_dict(), "method_version": self.method.version,
            "checkpoint_sha256": self.checkpoint_sha256, "amp": self.amp,
            "schedule_version": schedule_version(self.cfg.train.schedule),
            "data": self.stream.fingerprint, "completed_tasks": self.state.done,
            **self.state.checkpoint_entries(),
        }, self.model, self.backbone_keys, self.method)

    def load_checkpoint(self, path: Path) -> None:
        """Continue from the checkpoint at ``path`` if it is this run's
        (:func:`incompatibility`; the data compared with this run's stream)."""
        state = read_checkpoint(path, self.device)
        found = incompatibility(Identity.of_checkpoint(state), self.identity(),
                                lambda: self.stream.fingerprint)
        if found is not None:
            raise ConfigError(found.resume_error(path, self.device))
        restore(state, path, self.model, self.backbone_keys, self.method)
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
            if self.cfg.train.loggers and self.loggers is None:
                self.loggers = RunLoggers(self.cfg, self.out_dir)
        try:
            self._train_tasks(until, save)
        finally:
            if self.loggers is not None:
                self.loggers.close()
                self.loggers = None

    def _train_tasks(self, until: int, save: bool) -> None:
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
                if self.loggers is not None:
                    self.loggers.task(t, self.state.acc)
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
    check_config(cfg)  # before the run folder is named from the settings
    out_dir = run_dir(cfg, out_root)
    with run_lock(out_dir):
        return _run_locked(cfg, out_dir, resume=resume, force=force, progress=progress)


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
        why = mismatch(old, cfg, lambda: fingerprint_of(cfg, cfg.seed))
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
