"""InfLoRA (Liang & Li, CVPR 2024, "Interference-free low-rank adaptation for continual
learning"), from the facts about its public code in ``shared/papers/baselines-notes.md`` and
``baselines-method-notes.md`` (Sec. 3; the paper's text is not in ``shared/papers``).

Per task t every adapted slice (``lora.targets``, K and V) gets a new component whose input
factor is *designed* and frozen, and whose output factor is the only adapter parameter trained:

1. before training, the Gram ``C`` of the qkv inputs of each block over the task's training
   images (earlier components active) is projected off the protected input basis ``M``:
   ``(I - M M^T) C``; ``A_t`` = its top-r left singular vectors, transposed, times
   ``a_scale`` (1/sqrt(3) in the code), so ``A_t M = 0``: ``B_t A_t x = 0`` on the protected
   inputs whatever ``B_t`` learns;
2. ``B_t`` starts at zero and trains with the task's head (Adam, the protocol's schedule);
3. after training, ``M`` grows by GPM (:func:`janus.core.geometry.grown_basis`) on the task's
   inputs (task t's component active), with the threshold
   ``eps_t = lambda_b + (1 - lambda_b) t / T`` (0.98 -> 1 on ImageNet-R, 0.95 -> 1 on
   CIFAR-100 in the code). The code's energy is that of the singular values of ``C`` squared
   (``energy="squared"``, default; official ``methods/inflora.py`` lines 328-350), i.e. GPM on
   ``C C``; only the energy criterion sees ``C C``, ``A_t`` is designed from ``C`` (lines 126,
   149-153). On the first task the code keeps one direction fewer than GPM (line 332,
   ``first_task="code"``, default).

The code stores the complement of ``M`` when the first task's basis reaches half the
dimension ("retain" mode of DualGPM); the projector is the same, we always store ``M``.
Choices and the official lines: ``docs/methods/inflora.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, get_args

import torch

from janus.core import geometry as geo
from janus.core.fields import param
from janus.methods.activations import input_grams
from janus.methods.base import Method, TaskContext
from janus.methods.params import Params
from janus.model.continual import ContinualViT

Energy = Literal["squared", "eigenvalues"]
FirstTaskCount = Literal["code", "gpm"]
ENERGIES = get_args(Energy)
FIRST_TASK_COUNTS = get_args(FirstTaskCount)


@dataclass(frozen=True)
class InfLoRAParams(Params):
    lambda_b: float = param(
        0.98, "GPM threshold at the first task (ImageNet-R config; CIFAR-100 and DomainNet "
        "0.95 from janus.methods.anchors)", low=0, low_open=True, high=1)
    a_scale: float = param(1 / math.sqrt(3), "the code's scale of the designed A_t", low=0,
                           low_open=True)
    energy: Energy = param(
        "squared", "GPM energy of the squared eigenvalues of C (the code squares the singular "
        "values of C), or of the eigenvalues (sigma(X)^2, the GPM paper's text)")
    first_task: FirstTaskCount = param(
        "code", "first task's basis size: the code's count (one direction fewer) or GPM's")


def designed_input_factor(gram: torch.Tensor, protected: torch.Tensor, rank: int) -> torch.Tensor:
    """``A`` (rank x d_in, orthonormal rows): the top-``rank`` left singular vectors of
    ``(I - M M^T) C``. Computed as ``Q U'`` with ``Q`` an orthonormal basis of span(M)^perp
    and ``U'`` those of ``Q^T C`` (the same vectors, since ``(I - M M^T) C = Q Q^T C``), so the
    rows lie in span(M)^perp even where ``(I - M M^T) C`` has rank below ``rank``."""
    free = geo.complement_basis(protected)
    u, _, _ = torch.linalg.svd(free.T @ gram, full_matrices=False)
    return (free @ u[:, :rank]).T


class InfLoRA(Method, name="inflora", params=InfLoRAParams):
    """InfLoRA: designed frozen A_t outside the GPM subspace, only B_t trained.

    Per-task LoRA with a designed, frozen input factor outside the protected
    subspace; only the output factor (and the head) trains."""

    version = 2  # 2: energy "squared" designs A_t from C (was C C); code defaults

    def init_state(self) -> None:
        self.protected: list[torch.Tensor] = []

    def setup(self, model: ContinualViT) -> None:
        d = model.adapters[0].in_features
        self.protected = [torch.zeros(d, 0, dtype=torch.float64) for _ in model.adapters]

    def threshold(self, task: int) -> float:
        """``eps_t = lambda_b + (1 - lambda_b) t / T`` (0-based t)."""
        lam = self.params.lambda_b
        return lam + (1 - lam) * task / self.cfg.data.num_tasks

    def task_grams(self, model: ContinualViT, ctx: TaskContext) -> list[torch.Tensor]:
        """Per block, the Gram ``C`` of the qkv inputs over the task's training images (test
        transform), in float64 on the CPU."""
        loader = ctx.stream.eval_loader(ctx.task.train_plain)
        return [g.cpu() for g in input_grams(model, loader, torch.float64)]

    def grown(self, protected: torch.Tensor, gram: torch.Tensor, task: int,
              max_dim: int) -> torch.Tensor:
        """One block's protected basis after task ``task`` (DualGPM ``update_DualGPM``)."""
        energy_gram = gram @ gram if self.params.energy == "squared" else gram
        eps = self.threshold(task)
        if task == 0 and self.params.first_task == "code":
            return geo.first_task_gpm_basis(energy_gram, eps, max_dim)
        return geo.grown_basis(protected, energy_gram, eps, max_dim)

    @torch.no_grad()
    def before_task(self, model: ContinualViT, ctx: TaskContext) -> None:
        """Freeze the earlier components; add task t's with ``A_t`` designed and frozen."""
        model.set_lora_trainable(False)
        grams = self.task_grams(model, ctx)
        for i, added in enumerate(model.add_lora_components()):
            for comp in added.values():
                A = designed_input_factor(grams[i], self.protected[i], comp.rank)
                comp.A.copy_(self.params.a_scale * A.to(comp.A))
                comp.A.requires_grad_(False)

    @torch.no_grad()
    def after_task(self, model: ContinualViT, ctx: TaskContext) -> None:
        """GPM growth of each block's protected basis with ``eps_t``; at most ``d - rank``
        columns, so the next task still has ``rank`` free directions."""
        grams = self.task_grams(model, ctx)
        max_dim = model.adapters[0].in_features - model.lora.rank
        self.protected = [self.grown(m, g, ctx.index, max_dim)
                          for m, g in zip(self.protected, grams, strict=True)]

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {"protected": self.protected}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.protected = list(state["protected"])
