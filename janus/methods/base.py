"""The method interface: hooks the one training loop calls; methods never own the loop.

Order per task t (see :mod:`janus.train.trainer`)::

    model.add_head(...)                      # protocol: one head per task, old heads frozen
    method.before_task(model, ctx)           # add/freeze adapters, pass data, build bases
    for each step:
        loss = method.loss(model, images, targets, ctx)
        loss.backward()
        method.after_backward(model, ctx)    # may rewrite adapter gradients (GR, GPM, ...)
        optimizer.step()                     # over method.parameter_groups(model, ctx)
        method.after_step(model, ctx)        # e.g. retractions onto a manifold
    method.after_task(model, ctx)            # e.g. store prototypes, grow bases
    evaluate with method.predict(model, images, num_tasks=t + 1)

A method whose update is not "one gradient, one optimizer step" (SeqLoRA's bilevel iterations)
sets ``owns_step = True`` and implements :meth:`Method.train_step`, which replaces the
``loss`` ... ``after_step`` block above; the loop then builds no optimizer, and the method runs
its forward passes under ``ctx.autocast()`` itself.

Precision (:mod:`janus.core.precision`): ``loss`` and ``predict`` run under the run's autocast,
every other hook outside it; what a method keeps or projects with is float32 or float64.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.hooks import RemovableHandle

from janus.core.config import RunConfig
from janus.core.errors import ConfigError
from janus.core.precision import autocast
from janus.data.stream import ClassIncrementalStream, Task
from janus.methods.anchors import benchmark_params
from janus.methods.params import Params
from janus.model.continual import ContinualViT


@dataclass
class TaskContext:
    """What a method may need to know about the task being learned."""

    task: Task
    stream: ClassIncrementalStream
    device: torch.device
    step: int = 0
    total_steps: int = 0
    steps_per_epoch: int = 0
    amp: str = "off"
    """The run's resolved autocast dtype (:func:`janus.core.precision.resolve_amp`)."""

    def autocast(self) -> contextlib.AbstractContextManager:
        """The run's autocast, for the forward passes of a method that owns its step."""
        return autocast(self.amp, self.device)

    @property
    def index(self) -> int:
        return self.task.index

    @property
    def label_offset(self) -> int:
        return self.task.labels.start


ForwardHook = Callable[[nn.Module, tuple, Any], Any]
"""A PyTorch forward hook ``fn(module, inputs, output)``."""

METHODS: dict[str, type[Method]] = {}
"""Every registered method class by name (filled by ``Method.__init_subclass__``)."""


class Method:
    """Base class: sequential training with the protocol's defaults; override what differs.

    A subclass registers itself with class keywords, ``class MyMethod(Method,
    name="my-method", params=MyParams)``; the first line of its docstring is what
    ``janus list`` shows. ``params`` is a :class:`~janus.methods.params.Params` dataclass of
    its hyper-parameters (stored as ``params_type``, inherited when omitted; overridden per
    benchmark by
    :data:`janus.methods.anchors.BENCHMARK_PARAMS`, then by ``method.params`` in the config;
    type and range are checked before anything is built) and cite the paper and equation they
    implement.
    ``self.params`` is the resolved, typed and frozen dataclass, read as attributes
    (``self.params.margin``); ``self.params.values()`` is what a record stores.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    """The first line of the docstring (set for every subclass)."""
    params_type: ClassVar[type[Params]] = Params
    defaults: ClassVar[dict[str, Any]] = {}
    """The defaults of ``params_type``'s fields (set for every subclass)."""
    version: int = 1
    """Raised when a change of defaults or behaviour makes earlier records of the method stale
    (stored in every record; a stored run of another version is not reused or resumed). An
    instance raises it for the parameter values whose behaviour changed (e.g. Janus-LoRA's
    ``memory=union``)."""
    trains: ClassVar[bool] = True
    """False for methods that take no optimizer steps (the loop skips the task's batches)."""
    single_task: ClassVar[bool] = False
    """True for a method that learns all classes as one task (the ``joint`` upper bound)."""
    owns_step: ClassVar[bool] = False
    """True when the method updates its parameters itself in :meth:`train_step`."""

    def __init_subclass__(
        cls, name: str | None = None, params: type[Params] | None = None, **kwargs: Any
    ) -> None:
        """``name`` registers the class as ``method.name``; ``params`` sets ``params_type``."""
        super().__init_subclass__(**kwargs)
        if params is not None:
            cls.params_type = params
        cls.defaults = cls.params_type.defaults()
        cls.description = (cls.__doc__ or "").strip().split("\n")[0].rstrip(".")
        if name is not None:
            if name in METHODS:
                raise ValueError(f"method {name!r} registered twice")
            cls.name = name
            METHODS[name] = cls

    def __init__(self, cfg: RunConfig, **params: Any) -> None:
        unknown = set(params) - set(self.defaults)
        if unknown:
            raise ConfigError(
                f"method {self.name!r} has no parameter(s) {sorted(unknown)}; "
                f"known: {sorted(self.defaults) or 'none'} (`janus list --method {self.name}`)"
            )
        self.cfg = cfg
        given = {**benchmark_params(self.name, cfg.data.dataset), **params}
        try:
            self.params = self.params_type(**given)
        except ConfigError as err:
            raise ConfigError(f"method {self.name!r}: {err}; `janus list --method {self.name}` "
                              f"lists its parameters") from None
        self.hooks: list[RemovableHandle] = []
        """Handles of the hooks registered through :meth:`forward_hook`."""
        self.init_state()

    def init_state(self) -> None:
        """At construction, once ``self.cfg`` and ``self.params`` are set:
        the method's own (empty) state. Override this instead of ``__init__``."""

    def forward_hook(self, module: nn.Module, fn: ForwardHook) -> None:
        """Register ``fn`` as a forward hook of ``module`` (PyTorch's ``fn(module, inputs,
        output)``; a returned tensor replaces the output) for the rest of the run: the loop
        removes it with :meth:`remove_hooks` when the run ends, also on failure."""
        self.hooks.append(module.register_forward_hook(fn))

    def remove_hooks(self) -> None:
        """Remove every hook registered through :meth:`forward_hook`."""
        for handle in self.hooks:
            handle.remove()
        self.hooks.clear()

    # ----------------------------------------------------------------- hooks
    def setup(self, model: ContinualViT) -> None:
        """Once, before the first task (and before a resumed run loads its state)."""

    def before_task(self, model: ContinualViT, ctx: TaskContext) -> None:
        """After the task's head is added, before its first step."""

    def parameter_groups(self, model: ContinualViT, ctx: TaskContext) -> list[dict[str, Any]]:
        """Optimizer parameter groups; default: every parameter that requires grad."""
        return [{"params": [p for p in model.parameters() if p.requires_grad]}]

    def features(self, model: ContinualViT, images: torch.Tensor) -> torch.Tensor:
        return model.features(images)

    def loss(
        self, model: ContinualViT, images: torch.Tensor, targets: torch.Tensor, ctx: TaskContext
    ) -> torch.Tensor:
        """Cross-entropy over the current task's head only (InfLoRA protocol)."""
        return self.head_loss(model, self.features(model, images), targets, ctx)

    def head_loss(
        self, model: ContinualViT, features: torch.Tensor, targets: torch.Tensor, ctx: TaskContext
    ) -> torch.Tensor:
        """Cross-entropy of the current task's head on ``features`` against the targets as
        labels of the task (``targets - ctx.label_offset``)."""
        return F.cross_entropy(model.heads[ctx.index](features), targets - ctx.label_offset)

    def after_backward(self, model: ContinualViT, ctx: TaskContext) -> None:
        """Rewrite gradients in place before the optimizer step (no-op by default)."""

    def after_step(self, model: ContinualViT, ctx: TaskContext) -> None:
        """After the optimizer step (no-op by default)."""

    def train_step(
        self, model: ContinualViT, images: torch.Tensor, targets: torch.Tensor, ctx: TaskContext
    ) -> torch.Tensor:
        """One training step on one batch for methods with ``owns_step``: update the
        parameters in place and return the (detached) loss before the update."""
        raise NotImplementedError(f"method {self.name!r} does not own its training step")

    def after_task(self, model: ContinualViT, ctx: TaskContext) -> None:
        """After the last step of the task, before evaluation."""

    @torch.no_grad()
    def predict(self, model: ContinualViT, images: torch.Tensor, num_tasks: int) -> torch.Tensor:
        """Scores over all classes of the first ``num_tasks`` tasks (no task id)."""
        return model.logits(self.features(model, images), num_tasks)

    # ----------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """Everything beyond the model's parameters needed to resume (tensors allowed)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            raise ValueError(f"method {self.name!r} has no state to load, got {sorted(state)}")


def build_method(cfg: RunConfig) -> Method:
    cls = METHODS.get(cfg.method.name)
    if cls is None:
        raise ConfigError(
            f"unknown method {cfg.method.name!r}; known: {', '.join(sorted(METHODS))}"
        )
    return cls(cfg, **cfg.method.params)
