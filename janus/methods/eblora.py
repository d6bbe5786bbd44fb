"""EBLoRA (Gu et al. 2026, "Spectral Imbalance Causes Forgetting in Low-Rank Continual
Adaptation", ``shared/papers/eblora-abstract.txt``; facts from the public code in
``shared/papers/eblora-notes.md``), adapted to the ViT classifier.

Per task every adapted slice (``lora.targets``, K and V) gets a new update
``dW = s U Vt`` with orthonormal ``U`` (d_out x r) and ``Vt`` (r x d_in), so all r non-zero
singular values equal ``s`` (balanced spectrum); ``Vt`` lives on the restricted Stiefel
manifold ``{Vt Vt^T = I, Vt P = 0}``, P an orthonormal basis (per block) of the earlier tasks'
input subspace, grown after each task as in GPM (Saha et al. 2021). Earlier updates are frozen.

Mapping onto :class:`janus.model.lora.LoRAComponent` (``W = W0 + scale B A``): ``A = Vt`` and
``B = m U`` with a learnable scalar ``m``, so ``s = scale |m|``. The optimizer steps ``A``,
``U`` and ``m`` (not ``B``, which is rewritten as ``m U`` after every step): Riemannian Adam
as in the code, i.e. tangent projection of the gradient (``after_backward``), the trainer's
Adam step, projection of the actual step onto the (restricted) tangent space and polar
retraction (``after_step``; ``proofs/ERRATA.md`` B1). See ``docs/methods/eblora.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from janus.core import geometry as geo
from janus.core.errors import ConfigError
from janus.core.fields import param
from janus.core.precision import full_precision
from janus.methods.activations import input_grams
from janus.methods.base import Method, TaskContext
from janus.methods.params import Params
from janus.model.continual import ContinualViT
from janus.model.lora import LoRAComponent


def initial_factors(
    grad: torch.Tensor | None, protected: torch.Tensor, d_out: int, rank: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(U, Vt)``: the top-``rank`` singular vectors of ``-grad`` restricted to span(P)^perp
    (EBLoRA code: factors from an SVD of the new task's gradient), random orthonormal ones
    when ``grad`` is None. ``Vt P = 0`` holds exactly, whatever the rank of ``grad``, because
    the SVD is taken in an orthonormal basis of the complement."""
    free = geo.complement_basis(protected)
    if grad is None:
        target = torch.randn(d_out, free.shape[1], dtype=free.dtype).to(free.device)
    else:
        target = -grad.to(free.dtype) @ free
    u, _, wh = torch.linalg.svd(target, full_matrices=False)
    return u[:, :rank], wh[:rank] @ free.T


@dataclass
class TaskUpdate:
    """The trainable update ``scale m U Vt`` of one slice for the current task."""

    comp: LoRAComponent
    block: int
    U: nn.Parameter
    m: nn.Parameter
    a_prev: torch.Tensor | None = None
    u_prev: torch.Tensor | None = None


@dataclass(frozen=True)
class EBLoRAParams(Params):
    threshold: float = param(0.97, "GPM energy threshold of the protected input subspace",
                             low=0, low_open=True, high=1)
    init: Literal["gradient", "random"] = param(
        "gradient", "factor init: SVD of the task's gradient, or random")
    init_batches: int = param(8, "training batches (test transform) summed for the gradient "
                              "init", low=1)
    init_magnitude: float = param(0.0, "m at the start of a task (0: the model is unchanged)")
    magnitude_lr: float = param(1.0, "learning rate of m relative to train.lr", low=0,
                                low_open=True)


class EBLoRA(Method, name="eblora", params=EBLoRAParams):
    """EBLoRA: per-task s*U*Vt, Vt on a restricted Stiefel manifold (GPM subspace).

    Per-task balanced updates on the restricted Stiefel manifold."""

    def init_state(self) -> None:
        self.protected: list[torch.Tensor] = []
        """Per block: orthonormal basis (d_in x k, float64) of earlier tasks' inputs."""
        self.updates: list[TaskUpdate] = []

    # ------------------------------------------------------------------ set-up
    def setup(self, model: ContinualViT) -> None:
        d, r = model.adapters[0].in_features, model.lora.rank
        if r >= d:
            raise ConfigError(f"eblora needs lora.rank < width ({d}) to protect any input "
                              f"direction, got lora.rank={r}")
        self.protected = [
            torch.zeros(a.in_features, 0, dtype=torch.float64, device=model.device)
            for a in model.adapters
        ]

    def before_task(self, model: ContinualViT, ctx: TaskContext) -> None:
        """Freeze earlier updates; add and initialise this task's ``(U, Vt, m)`` per slice."""
        model.set_lora_trainable(False)
        grads = self.task_gradients(model, ctx) if self.params.init == "gradient" else None
        self.updates = []
        for i, added in enumerate(model.add_lora_components()):
            adapter = model.adapters[i]
            for s, comp in added.items():
                g = None if grads is None else grads[i][adapter.rows(s)]
                u, vt = initial_factors(g, self.protected[i], adapter.slice_dim, comp.rank)
                m = nn.Parameter(torch.tensor(float(self.params.init_magnitude),
                                              device=comp.A.device))
                upd = TaskUpdate(comp, i, nn.Parameter(u.to(comp.B.dtype)), m)
                with torch.no_grad():
                    comp.A.copy_(vt)
                    comp.B.copy_(m * upd.U)
                self.updates.append(upd)

    def task_gradients(self, model: ContinualViT, ctx: TaskContext) -> list[torch.Tensor]:
        """Per block, dL/dW of the fused qkv weight summed over ``init_batches`` random training
        batches (test transform, model in eval mode, autocast off), the task's fresh head and
        zero update."""
        data = ctx.task.train_plain
        bs = ctx.stream.batch_size
        idx = torch.randperm(len(data))[: self.params.init_batches * bs].tolist()
        loader = ctx.stream.eval_loader(data.select(idx), batch_size=bs)
        weights = [a.base.weight for a in model.adapters]
        grads = [torch.zeros_like(w, dtype=torch.float64) for w in weights]
        was_training = model.training
        model.eval()
        try:
            for w in weights:
                w.requires_grad_(True)
            for images, targets in loader:
                with full_precision():
                    loss = self.loss(model, images.to(ctx.device), targets.to(ctx.device), ctx)
                for g, gw in zip(grads, torch.autograd.grad(loss, weights), strict=True):
                    g += gw
        finally:
            for w in weights:
                w.requires_grad_(False)
            model.train(was_training)
        return grads

    def parameter_groups(self, model: ContinualViT, ctx: TaskContext) -> list[dict[str, Any]]:
        """Head; Stiefel factors ``A = Vt`` and ``U`` without weight decay; magnitudes ``m``
        at ``magnitude_lr`` times the run's learning rate. ``B`` is not stepped."""
        return [
            {"params": [p for p in model.heads.parameters() if p.requires_grad]},
            {"params": [x for u in self.updates for x in (u.comp.A, u.U)], "weight_decay": 0.0},
            {"params": [u.m for u in self.updates],
             "lr": self.cfg.train.lr * self.params.magnitude_lr},
        ]

    # ------------------------------------------------------------------ Riemannian Adam
    @torch.no_grad()
    def after_backward(self, model: ContinualViT, ctx: TaskContext) -> None:
        """Chain rule through ``B = m U`` and projection onto the tangent spaces: ``U`` on the
        Stiefel manifold, ``Vt`` on the restricted one (gradient rows also leave span(P))."""
        for upd in self.updates:
            a, b = upd.comp.A, upd.comp.B
            g_b = b.grad.double()
            u = upd.U.detach().double()
            upd.m.grad = (g_b * u).sum().to(upd.m.dtype)
            upd.U.grad = geo.stiefel_tangent_projection(u, upd.m.double() * g_b).to(upd.U.dtype)
            a.grad = geo.restricted_tangent_projection(
                a.detach().double(), a.grad.double(), self.protected[upd.block]
            ).to(a.dtype)
            b.grad = None
            upd.a_prev, upd.u_prev = a.detach().clone(), upd.U.detach().clone()

    @torch.no_grad()
    def after_step(self, model: ContinualViT, ctx: TaskContext) -> None:
        """Project the optimizer's actual step onto the tangent space at the previous point
        (restricted for ``Vt``, ERRATA B1), retract by the polar factor, set ``B = m U``."""
        for upd in self.updates:
            a, p = upd.comp.A, self.protected[upd.block]
            a_prev, u0 = upd.a_prev.double(), upd.u_prev.double()
            step_a = geo.restricted_tangent_projection(a_prev, a.double() - a_prev, p)
            a0 = geo.safe_update(a_prev, p)  # drop its float32 rounding in span(P): no drift
            a.copy_(geo.polar_retraction(a0 + step_a).to(a.dtype))
            step_u = geo.stiefel_tangent_projection(u0, upd.U.double() - u0)
            upd.U.copy_(geo.polar_retraction(u0 + step_u).to(upd.U.dtype))
            upd.comp.B.copy_(upd.m * upd.U)

    # ------------------------------------------------------------------ tasks
    @torch.no_grad()
    def after_task(self, model: ContinualViT, ctx: TaskContext) -> None:
        """Grow each block's protected basis (GPM) from the Gram matrix of all tokens entering
        its qkv layer, over the task's training images (the update is frozen by the next
        ``before_task``)."""
        self.updates = []
        grams = input_grams(model, ctx.stream.eval_loader(ctx.task.train_plain), torch.float64)
        max_dim = model.adapters[0].in_features - model.lora.rank
        self.protected = [
            geo.grown_basis(p, g, self.params.threshold, max_dim)
            for p, g in zip(self.protected, grams, strict=True)
        ]

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {"protected": self.protected}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.protected = list(state["protected"])
