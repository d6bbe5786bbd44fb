"""SD-LoRA-KD (Wu et al., ICLR 2025, Sec. 3.5, Eq. 7-8, Alg. 1 lines 10-12): SD-LoRA
(:mod:`janus.methods.sdlora`) where, after each task, a new direction that the earlier ones
represent up to ``tau`` is folded into their magnitudes (Eq. 8 corrected, ``proofs/ERRATA.md``
D1) and its component is deleted. Choices: ``docs/methods/sdlora.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from janus.core import geometry as geo
from janus.core.fields import param
from janus.methods.base import TaskContext
from janus.methods.sdlora import SDLoRA, SDLoRAParams
from janus.model.continual import ContinualViT


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
        self.magnitudes.assign(merged)
        model.remove_lora_components(t)

    def state_dict(self) -> dict[str, Any]:
        return {"kd_log": list(self.kd_log)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.kd_log = list(state["kd_log"])
