"""SD-LoRA (Wu et al., ICLR 2025) and its variants SD-LoRA-RR and SD-LoRA-KD.

Every adapted projection computes (Eq. 4, our ``B_k A_k`` = the paper's ``A_k B_k``)

    h' = (W0 + sum_k alpha_k dir(A_k, B_k)) x,   dir = geometry.normalized_direction (Eq. 3)

with one component ``(A_k, B_k)`` per task k (earlier ones frozen) and ONE set of learnable
magnitudes ``alpha_1..alpha_t`` shared by all projections of all blocks (Sec. 4.1). The model's
:class:`~janus.model.lora.LoRAComponent` objects are left as they are (so ``structure()`` /
``rebuild()`` resume works); each gets a gain (:attr:`LoRAComponent.gain`) that rescales
``scale B A`` by ``alpha_k / (scale * ||.||)``, the norm of the *current* factors,
differentiable for the task being trained, and seen by ``delta_weight()`` and ``merge()``.
``lora.scale`` therefore has no effect. The magnitudes are an ``nn.Parameter`` owned by the
method, optimised with the current component and head, and checkpointed in
:meth:`SDLoRA.state_dict`.

- Table 4's ablations: ``components`` ("first", "single") and ``old_magnitudes`` ("frozen").
- SD-LoRA-RR (Sec. 3.5, Eq. 6, Alg. 1 lines 2-4): stepwise rank schedule.
- SD-LoRA-KD (Sec. 3.5, Eq. 7-8, Alg. 1 lines 10-12): after each task, a new direction that
  the earlier ones represent up to ``tau`` is folded into their magnitudes (Eq. 8 corrected,
  ``proofs/ERRATA.md`` D1) and its component is deleted.

Choices (projections, normalisation, initialisation, rank scaling, KD residual) are argued in
``docs/methods/sdlora.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, get_args

import torch
from torch import nn

from janus.core import geometry as geo
from janus.core.errors import ConfigError
from janus.core.precision import full_precision
from janus.methods.base import Method, TaskContext
from janus.methods.params import Params, param
from janus.model.continual import ContinualViT
from janus.model.lora import LoRAComponent

Norm = Literal["product", "factors"]
Components = Literal["per-task", "first", "single"]
NORMS = get_args(Norm)
COMPONENTS = get_args(Components)
PAPER_RANKS = (10, 8, 6)  # r_1, r_mu, r_nu of Sec. 4.1 at r_1 = 10


def direction_norm(A: torch.Tensor, B: torch.Tensor, norm: str) -> torch.Tensor:
    """The denominator of :func:`janus.core.geometry.normalized_direction` in float32, from r x r
    Gram matrices (``||B A||_F^2 = <B^T B, A A^T>``) instead of the dense product."""
    with full_precision():
        A, B = A.float(), B.float()
        if norm == "product":
            return ((B.T @ B) * (A @ A.T)).sum().clamp_min(0).sqrt()
        return B.norm() * A.norm()


def scaled_rank(rank: int, paper_rank: int) -> int:
    """``paper_rank`` (at r_1 = 10) scaled to r_1 = ``rank``, rounded half up, at least 1."""
    return max(1, math.floor(rank * paper_rank / PAPER_RANKS[0] + 0.5))


@dataclass(frozen=True)
class SDLoRAParams(Params):
    alpha_init: float = param(0.8, "initial magnitude of each new direction (official code)")
    norm: Norm = param("product", "direction norm: ||B A||_F (paper, Eq. 3) or ||B||_F ||A||_F "
                       "(\"factors\", the code)")
    components: Components = param(
        "per-task", "Table 4 ablations: a direction per task (SD-LoRA), task 1's only, frozen "
        "afterwards (row 1), or one direction trained in every task (row 2)")
    old_magnitudes: Literal["learned", "frozen"] = param(
        "learned", "earlier magnitudes learned (SD-LoRA) or each fixed after its task (row 3)")
    current: Literal["normalized", "raw", "raw-evaluated"] = param(
        "normalized", "the task being trained enters as alpha_t dir_t (paper, Eq. 4) or as "
        "alpha_t B_t A_t (official code): normalised once its task is over (raw), or from the "
        "next task on, after the evaluation that follows it (raw-evaluated, the code's)")
    b_init: Literal["kaiming", "zero"] = param(
        "kaiming", "a new B: Kaiming-uniform like A (Eq. 4 normalises it) or zero (the code's "
        "LoRA init; needs a raw current term)")
    magnitudes: Literal["carried", "reset"] = param(
        "carried", "at a new task the earlier magnitudes keep their learned values (Eq. 4) or "
        "restart at alpha_init (the code rebuilds them each task)")

    def check(self) -> None:
        if self.old_magnitudes == "frozen" and self.components != "per-task":
            raise ConfigError("old_magnitudes=frozen needs components=per-task (with one "
                              "component there is one magnitude)")
        if self.b_init == "zero" and self.current == "normalized":
            raise ConfigError("b_init=zero needs current=raw or raw-evaluated: the normalised "
                              "direction B A / ||B A|| is 0/0 at B = 0")
        if self.magnitudes == "reset" and (self.components != "per-task"
                                           or self.old_magnitudes == "frozen"):
            raise ConfigError("magnitudes=reset needs components=per-task and "
                              "old_magnitudes=learned")


class SDLoRA(Method, name="sd-lora", params=SDLoRAParams):
    """SD-LoRA: frozen normalised LoRA directions per task + shared magnitudes.

    A new LoRA direction per task, learnable shared magnitudes."""

    def init_state(self) -> None:
        if self.cfg.lora.scale == 0:
            raise ConfigError(f"{self.name} needs lora.scale != 0 (it divides the output)")
        self.alphas = nn.Parameter(torch.zeros(0))
        self.frozen_alphas = torch.zeros(0)
        self.unnormalized: int | None = None
        """Index of the component that enters un-normalised (``current="raw"``, in training)."""

    # ------------------------------------------------------------------ structure
    def rank(self, task: int) -> int:
        """LoRA rank of the component of (0-based) task ``task``."""
        return self.cfg.lora.rank

    def attach_magnitude(self, comp: LoRAComponent, k: int) -> None:
        """Make ``comp`` compute ``alpha_k dir(A, B)`` instead of ``scale B A`` (its gain)."""

        def gain() -> torch.Tensor:
            if k == self.unnormalized:
                return self.alphas[k] / comp.scale
            n = direction_norm(comp.A, comp.B, self.params.norm)
            return self.alphas[k] / (comp.scale * n)

        comp.gain = gain

    def setup(self, model: ContinualViT) -> None:
        """Hook the components a resumed model was rebuilt with (one per finished task)."""
        counts = {len(a.slice_components(s)) for a in model.adapters for s in a.slices}
        if len(counts) != 1:
            raise ValueError(f"{self.name} needs as many components in every slice, got {counts}")
        for a in model.adapters:
            for _, k, comp in a.iter_components():
                self.attach_magnitude(comp, k)
        n = counts.pop()
        self.alphas = nn.Parameter(torch.full((n,), float(self.params.alpha_init),
                                              device=model.device))

    def before_task(self, model: ContinualViT, ctx: TaskContext) -> None:
        """Freeze the earlier directions; add task t's component (Alg. 1 line 1) and alpha_t.

        B is drawn like A (Kaiming-uniform) instead of LoRA's zero (``b_init``): Eq. 4
        normalises the current product, which is undefined at B = 0. With ``components``
        "first" / "single" (Table 4 rows 1-2) only task 1 adds a component; later tasks keep it
        frozen / trained. ``magnitudes="reset"``: every earlier magnitude restarts at
        ``alpha_init``, as in the code, which rebuilds its network with fresh magnitudes each
        task (WuYichen-97/SD-Lora-CL@8bacded ``backbone/lora.py`` lines 326-328).
        """
        single = self.params.components != "per-task"
        model.set_lora_trainable(self.params.components == "single")
        if single and len(self.alphas):
            return
        k = len(self.alphas)
        for added in model.add_lora_components(self.rank(ctx.index)):
            for comp in added.values():
                if self.params.b_init == "kaiming":
                    nn.init.kaiming_uniform_(comp.B, a=math.sqrt(5))
                self.attach_magnitude(comp, k)
        old = self.alphas.detach()
        if self.params.magnitudes == "reset":
            old = torch.full_like(old, float(self.params.alpha_init))
        new = torch.full((1,), float(self.params.alpha_init), device=model.device)
        self.alphas = nn.Parameter(torch.cat([old, new]))
        self.frozen_alphas = self.alphas.detach()[:-1].clone()
        self.unnormalized = k if self.params.current != "normalized" else None

    def parameter_groups(self, model: ContinualViT, ctx: TaskContext) -> list[dict[str, Any]]:
        """The current component and head, and all magnitudes (Alg. 1 line 7)."""
        trainable = [p for p in model.parameters() if p.requires_grad]
        return [{"params": [*trainable, self.alphas]}]

    def after_task(self, model: ContinualViT, ctx: TaskContext) -> None:
        """From now on the task's direction enters normalised (also with ``current="raw"``);
        with ``"raw-evaluated"`` only from the next task on, so that the evaluation after the
        task sees the training forward, as in the code (``models/base.py`` line 166)."""
        if self.params.current != "raw-evaluated":
            self.unnormalized = None

    @torch.no_grad()
    def after_step(self, model: ContinualViT, ctx: TaskContext) -> None:
        """Table 4 row 3 (``old_magnitudes="frozen"``): the earlier magnitudes keep the values
        they had at the end of their tasks, whatever the optimiser did."""
        if self.params.old_magnitudes == "frozen":
            self.alphas[:-1] = self.frozen_alphas

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {"alphas": self.alphas.detach().clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        alphas = state["alphas"]
        if alphas.shape != self.alphas.shape:
            raise ValueError(f"{self.name}: {len(alphas)} magnitudes saved for "
                             f"{len(self.alphas)} components per slice")
        self.alphas = nn.Parameter(alphas.to(self.alphas.device).clone())


@dataclass(frozen=True)
class SDLoRARRParams(SDLoRAParams):
    mu: int = param(4, "first task (1-based) of rank r_mu", low=2)
    nu: int = param(8, "first task (1-based) of rank r_nu", low=3)
    ranks: tuple[int, ...] | None = param(
        None, "(r_1, r_mu, r_nu); None scales the paper's (10, 8, 6) to lora.rank", low=1)

    def check(self) -> None:
        super().check()
        if not self.mu < self.nu:
            raise ConfigError(f"mu={self.mu} must be < nu={self.nu}")
        r = self.ranks
        if r is not None and not (len(r) == 3 and r[0] >= r[1] >= r[2]):
            raise ConfigError(f"ranks={list(r)} must be 3 non-increasing ranks (r_1, r_mu, "
                              f"r_nu)")


class SDLoRARR(SDLoRA, name="sd-lora-rr", params=SDLoRARRParams):
    """SD-LoRA-RR: SD-LoRA with a stepwise reduced rank for later tasks.

    SD-LoRA-RR, Eq. 6 / Alg. 1 lines 2-4: rank r_1 for tasks 1..mu-1, r_mu for tasks
    mu..nu-1, r_nu from task nu on (1-based task indices, as in the paper)."""

    def init_state(self) -> None:
        super().init_state()
        ranks = self.params.ranks
        self.ranks = ranks if ranks is not None else tuple(
            scaled_rank(self.cfg.lora.rank, r) for r in PAPER_RANKS)

    def rank(self, task: int) -> int:
        t = task + 1
        return self.ranks[0] if t < self.params.mu else (
            self.ranks[1] if t < self.params.nu else self.ranks[2]
        )


@dataclass(frozen=True)
class SDLoRAKDParams(SDLoRAParams):
    tau: float = param(9e-4, "residual below which a new direction is absorbed (Eq. 8)",
                       low=0)


class SDLoRAKD(SDLoRA, name="sd-lora-kd", params=SDLoRAKDParams):
    """SD-LoRA-KD: SD-LoRA that folds representable new directions into magnitudes.

    SD-LoRA-KD, Eq. 7-8 / Alg. 1 lines 10-12: absorb a representable new direction.

    One magnitude set serves every projection, so one set of coefficients must fit them all:
    Eq. 7 is solved on the directions of all adapted projections stacked into one vector and
    divided by sqrt(#projections). The residual is then the root-mean-square over projections
    of ``||dir_t - sum_k c_k dir_k||_F`` (with the paper's norm: the sine of the angle between
    the stacked unit directions), compared with ``tau``."""

    def init_state(self) -> None:
        super().init_state()
        self.kd_log: list[dict[str, Any]] = []
        """Per finished task after the first: its fitting residual and whether it was absorbed."""

    def stacked_direction(self, model: ContinualViT, k: int) -> torch.Tensor:
        """Direction k of every adapted projection, flattened, concatenated and divided by
        sqrt(#projections) (float64, CPU)."""
        parts = [
            geo.normalized_direction(
                c.A.detach().double().cpu(), c.B.detach().double().cpu(), self.params.norm
            ).reshape(-1)
            for block in model.task_components(k)
            for c in block.values()
        ]
        return torch.cat(parts) / math.sqrt(len(parts))

    @torch.no_grad()
    def after_task(self, model: ContinualViT, ctx: TaskContext) -> None:
        """Eq. 7 by least squares; if the residual <= tau, alpha_k += alpha_t c_k (Eq. 8,
        corrected) and task t's component is deleted from every slice."""
        super().after_task(model, ctx)
        t = len(self.alphas) - 1
        if t == 0:
            return
        old = [self.stacked_direction(model, k) for k in range(t)]
        coeffs, residual = geo.sdlora_kd_coefficients(self.stacked_direction(model, t), old)
        absorb = residual <= self.params.tau
        self.kd_log.append({"task": ctx.index, "residual": residual, "absorbed": absorb})
        if not absorb:
            return
        alphas = self.alphas.detach().double().cpu()
        merged = geo.sdlora_absorb_magnitudes(alphas[:t], float(alphas[t]), coeffs)
        self.alphas = nn.Parameter(merged.to(self.alphas))
        model.remove_lora_components(t)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "kd_log": list(self.kd_log)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict({"alphas": state["alphas"]})
        self.kd_log = list(state["kd_log"])
