"""Null-space violation of LoRA updates (Janus-LoRA Fig. 2, Sec. 3.3.2).

For every optimizer step of every task after the first, and for every adapted slice (K, V)
of every block, :class:`ViolationProbe` measures how much the step's update of the slice's
weight moves the layer's output on inputs of earlier tasks:

    violation = || dW X_past^T ||_F,      dW = W_after - W_before  (the *exact* change of the
                                          summed LoRA components, not a first-order model),

with ``X_past`` (tokens x d_in) the layer inputs of held-out images of earlier tasks (the
first ``images_per_task`` test images of each; they are never trained on), recorded with the
model as it is when the task starts. Only the Gram matrix ``X_past^T X_past`` is kept, so
memory does not grow with the number of tokens: ``||dW X^T||_F^2 = tr(dW (X^T X) dW^T)``.

Because a smaller step is trivially "safer", each step also reports the relative violation
``||dW X^T||_F / (||dW||_F ||X||_F)`` (in [0, 1]; 0 = the step is invisible to past inputs).
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch

from janus.analysis.probing import load_or_measure, train_observed
from janus.core.config import RunConfig
from janus.methods.activations import input_grams
from janus.methods.base import TaskContext
from janus.train.trainer import Observer, Run


def gram_root(gram: torch.Tensor) -> torch.Tensor:
    """``R`` with ``R R^T = gram`` for a symmetric PSD ``gram`` (eigen-decomposition)."""
    eigvals, eigvecs = torch.linalg.eigh(gram.double())
    return (eigvecs * eigvals.clamp_min(0).sqrt()).float()


class ViolationProbe(Observer):
    """Per-step null-space violation of every adapted slice; see the module docstring."""

    def __init__(self, images_per_task: int = 64) -> None:
        self.images_per_task = images_per_task
        self.roots: list[torch.Tensor] | None = None
        self.past_norms: list[float] = []
        self.weights: dict[tuple[int, str], torch.Tensor] = {}
        self.sums: dict[tuple[int, int, str], dict[str, float]] = defaultdict(
            lambda: {"steps": 0, "violation": 0.0, "relative": 0.0, "update_norm": 0.0}
        )

    # ------------------------------------------------------------------ hooks
    @torch.no_grad()
    def before_task(self, run: Run, ctx: TaskContext) -> None:
        self.roots = None
        if ctx.index == 0:
            return
        grams = self.past_grams(run, ctx.index)
        self.roots = [gram_root(g) for g in grams]
        self.past_norms = [math.sqrt(float(torch.trace(g))) for g in grams]

    @torch.no_grad()
    def before_step(self, run: Run, ctx: TaskContext) -> None:
        if self.roots is not None:
            self.weights = self.slice_weights(run)

    @torch.no_grad()
    def after_step(self, run: Run, ctx: TaskContext) -> None:
        if self.roots is None:
            return
        for (block, name), after in self.slice_weights(run).items():
            dw = after - self.weights[(block, name)]
            violation = float((dw @ self.roots[block]).norm())
            norm = float(dw.norm())
            acc = self.sums[(ctx.index, block, name)]
            acc["steps"] += 1
            acc["violation"] += violation
            acc["update_norm"] += norm
            acc["relative"] += violation / max(norm * self.past_norms[block], 1e-30)

    # ------------------------------------------------------------------ pieces
    def past_grams(self, run: Run, t: int) -> list[torch.Tensor]:
        """``X^T X`` of every block's qkv input over held-out images of tasks 0..t-1 (in full
        precision, also on CUDA)."""

        def held_out():
            for i in range(t):
                test = run.task(i).test
                subset = test.select(range(min(self.images_per_task, len(test))))
                yield from run.stream.eval_loader(subset)

        with torch.random.fork_rng(devices=[]):  # leave the training run's RNG untouched
            return input_grams(run.model, held_out())

    @staticmethod
    def slice_weights(run: Run) -> dict[tuple[int, str], torch.Tensor]:
        """The summed LoRA update of every adapted slice (d_slice x d_in, float32)."""
        out = {}
        for block, adapter in enumerate(run.model.adapters):
            dense = adapter.delta_weight().float()
            for name in adapter.slices:
                out[(block, name)] = dense[adapter.rows(name)].clone()
        return out

    def summary(self) -> list[dict[str, Any]]:
        """One row per (task, block, slice): step-averaged violation, relative violation and
        update norm."""
        rows = []
        for (task, block, name), acc in sorted(self.sums.items()):
            n = max(acc["steps"], 1)
            rows.append({
                "task": task,
                "block": block,
                "slice": name,
                "steps": acc["steps"],
                "violation": acc["violation"] / n,
                "relative_violation": acc["relative"] / n,
                "update_norm": acc["update_norm"] / n,
            })
        return rows


def measure_violation(
    cfg: RunConfig, tasks: int, images_per_task: int = 64, progress: bool = True
) -> dict[str, Any]:
    """Train the first ``tasks`` tasks of ``cfg`` with a :class:`ViolationProbe` attached and
    return a JSON-ready record (config, environment, per-step averages, accuracy matrix)."""
    probe = ViolationProbe(images_per_task)
    record = train_observed(cfg, tasks, [probe], progress)
    return {**record, "images_per_task": images_per_task, "violation": probe.summary()}


def measure_or_load(
    cfg: RunConfig, tasks: int, path: Path, images_per_task: int = 64, progress: bool = True
) -> dict[str, Any]:
    """The record at ``path`` if it exists (it must have the same settings), else measure
    and write it there (atomically)."""
    settings = {"tasks_trained": tasks, "images_per_task": images_per_task}
    return load_or_measure(
        path, cfg, settings, lambda: measure_violation(cfg, tasks, images_per_task, progress)
    )
