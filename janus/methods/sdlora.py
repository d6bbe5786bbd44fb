"""SD-LoRA (Wu et al., ICLR 2025); its variants SD-LoRA-RR (:mod:`janus.methods.sdlora_rr`) and
SD-LoRA-KD (:mod:`janus.methods.sdlora_kd`) build on :class:`SDLoRA`.

Every adapted projection computes (Eq. 4, our ``B_k A_k`` = the paper's ``A_k B_k``)

    h' = (W0 + sum_k alpha_k dir(A_k, B_k)) x,   dir = geometry.normalized_direction (Eq. 3)

with one component ``(A_k, B_k)`` per task k (earlier ones frozen) and ONE set of learnable
magnitudes ``alpha_1..alpha_t`` shared by all projections of all blocks (Sec. 4.1). The
magnitudes are module state of the model (:class:`~janus.model.lora.Magnitudes`,
``model.magnitudes``): component k computes ``alpha_k / (scale * ||.||)`` times ``scale B A``,
the norm of the *current* factors, differentiable for the task being trained, and seen by
``delta_weight()`` and ``merge()``; ``lora.scale`` therefore has no effect. They are in the
model's ``state_dict`` and ``structure()`` (a resume rebuilds them), optimised with the current
component and head.

- Table 4's ablations: ``components`` ("first", "single") and ``old_magnitudes`` ("frozen").

Choices (projections, normalisation, initialisation, rank scaling, KD residual) are argued in
``docs/methods/sdlora.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, get_args

import torch
from torch import nn

from janus.core.errors import ConfigError
from janus.core.fields import param
from janus.methods.base import Method, TaskContext
from janus.methods.params import Params
from janus.model.continual import ContinualViT
from janus.model.lora import Magnitudes

Norm = Literal["product", "factors"]
Components = Literal["per-task", "first", "single"]
NORMS = get_args(Norm)
COMPONENTS = get_args(Components)
PAPER_RANKS = (10, 8, 6)  # r_1, r_mu, r_nu of Sec. 4.1 at r_1 = 10


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
        self.magnitudes = Magnitudes(self.params.norm)
        """The model's magnitudes (:meth:`setup`)."""
        self.frozen_alphas = torch.zeros(0)

    @property
    def alphas(self) -> nn.Parameter:
        """The magnitudes ``alpha_1..alpha_t`` (model state, :class:`Magnitudes`)."""
        return self.magnitudes.alphas

    # ------------------------------------------------------------------ structure
    def rank(self, task: int) -> int:
        """LoRA rank of the component of (0-based) task ``task``."""
        return self.cfg.lora.rank

    def setup(self, model: ContinualViT) -> None:
        """The model's magnitudes: those a resumed model was rebuilt with, else new ones
        (``alpha_init`` for components it already has)."""
        if model.magnitudes is None:
            model.add_magnitudes(self.params.norm, self.params.alpha_init)
        elif model.magnitudes.norm != self.params.norm:
            raise ValueError(f"{self.name}: the model's magnitudes use norm "
                             f"{model.magnitudes.norm!r}, not {self.params.norm!r}")
        self.magnitudes = model.magnitudes

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
        old = self.alphas.detach()
        if self.params.magnitudes == "reset":
            old = torch.full_like(old, float(self.params.alpha_init))
        new = torch.full((1,), float(self.params.alpha_init), device=old.device)
        self.magnitudes.assign(torch.cat([old, new]))
        self.frozen_alphas = self.alphas.detach()[:-1].clone()
        self.magnitudes.enter_raw(k if self.params.current != "normalized" else None)

    def parameter_groups(self, model: ContinualViT, ctx: TaskContext) -> list[dict[str, Any]]:
        """The current component and head, and all magnitudes (Alg. 1 line 7; the model's
        trainable parameters, magnitudes last)."""
        return [{"params": [p for p in model.parameters() if p.requires_grad]}]

    def after_task(self, model: ContinualViT, ctx: TaskContext) -> None:
        """From now on the task's direction enters normalised (also with ``current="raw"``);
        with ``"raw-evaluated"`` only from the next task on, so that the evaluation after the
        task sees the training forward, as in the code (``models/base.py`` line 166)."""
        if self.params.current != "raw-evaluated":
            self.magnitudes.enter_raw(None)

    @torch.no_grad()
    def after_step(self, model: ContinualViT, ctx: TaskContext) -> None:
        """Table 4 row 3 (``old_magnitudes="frozen"``): the earlier magnitudes keep the values
        they had at the end of their tasks, whatever the optimiser did."""
        if self.params.old_magnitudes == "frozen":
            self.alphas[:-1] = self.frozen_alphas
