"""One training step on one batch, in the order every method is trained in: the method's
own step, or loss, backward, gradient hook, optimizer and schedule step and ``after_step``;
with the observers told before the update and after it."""

from __future__ import annotations

from collections.abc import Callable

import torch

from janus.core.config import RunConfig
from janus.methods import Method, TaskContext
from janus.model.continual import ContinualViT
from janus.train.optim import make_optimizer, make_schedule

Step = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""One training step as a function of a batch (images, targets), returning its loss."""


def build_step(cfg: RunConfig, model: ContinualViT, method: Method, ctx: TaskContext,
               notify: Callable[[str], None]) -> Step:
    """The training step of the task of ``ctx``: a function of one batch that moves it to
    ``ctx.device``; takes the method's own step (:meth:`Method.train_step`, which runs its
    forward passes under ``ctx.autocast()``) or the loss under ``ctx.autocast()``, backward,
    the method's gradient hook, the optimizer and schedule step and ``after_step``, calling
    ``notify("before_step")`` before the update and ``notify("after_step")`` after it; counts
    it in ``ctx.step``; and returns the loss (not synchronised). Builds the task's optimizer
    and schedule (:mod:`janus.train.optim`): one call per task; the step's ``optimizer``
    attribute is that optimizer (None for a method that owns its step)."""
    opt = None if method.owns_step else make_optimizer(cfg, method.parameter_groups(model, ctx))
    if opt is not None:
        sched = make_schedule(cfg, opt, ctx.total_steps, ctx.steps_per_epoch)

    def step(images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        images = images.to(ctx.device, non_blocking=True)
        targets = targets.to(ctx.device, non_blocking=True)
        if method.owns_step:
            notify("before_step")
            loss = method.train_step(model, images, targets, ctx)
        else:
            with ctx.autocast():
                loss = method.loss(model, images, targets, ctx)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            method.after_backward(model, ctx)
            notify("before_step")
            opt.step()
            sched.step()
            method.after_step(model, ctx)
        notify("after_step")
        ctx.step += 1
        return loss

    step.optimizer = opt  # type: ignore[attr-defined]  # its learning rates, for the loggers
    return step
