"""BiLoRA (Zhu, Zhang, Dong & Koniusz, CVPR 2025), from the facts about the authors' code in
``shared/papers/baselines-method-notes.md`` (Sec. 1; the paper's text is not in
``shared/papers``): a bilinear update with fixed Fourier bases and a sparse learnable core.

Task t owns a support ``S_t`` of ``n`` positions of the ``d x d`` frequency grid (a seeded
permutation, the same for every block and for K and V) and, per block and slice, real
coefficients ``c`` on it, zero at the start of the task. The update of a slice is

    dW_t = alpha * Re(IFFT2(F_t)),   F_t = 0 except F_t[S_t] = c

(torch's default IFFT normalisation, 1/d^2), i.e. ``alpha Re(Psi F_t Psi)`` with the
inverse-DFT kernel ``Psi[x, u] = exp(2 pi i u x / d) / d``: fixed bases, sparse core.
Updates of different tasks are orthogonal when their supports (with their mirror images
``-S``) do not meet, which random supports almost achieve. Earlier updates are frozen and
stay summed into K and V. Only the current coefficients and the task's head train.

The updates live in the method (a forward hook per block adds ``x dW^T`` to the K and V
outputs of the fused qkv), not in LoRA components; frozen updates are kept as one dense sum
per slice. Choices (sizes at other widths): ``docs/methods/bilora.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from janus.core.errors import ConfigError
from janus.core.fields import param
from janus.methods.base import ForwardHook, Method, TaskContext
from janus.methods.params import Params
from janus.model.continual import ContinualViT
from janus.model.lora import LoRAQKV

PAPER_WIDTH, PAPER_FREQUENCIES = 768, 3000


def task_support(d: int, n: int, task: int, seed_base: int = 777) -> torch.Tensor:
    """The code's support of task ``task`` (0-based): the first ``n`` entries of
    ``randperm(d * d)`` drawn with seed ``seed_base + 10 * task``, as flat indices."""
    gen = torch.Generator().manual_seed(seed_base + 10 * task)
    return torch.randperm(d * d, generator=gen)[:n]


def fourier_update(
    coeffs: torch.Tensor, support: torch.Tensor, d: int, alpha: float
) -> torch.Tensor:
    """``alpha * Re(IFFT2(F))`` with ``F`` zero except ``F.flatten()[support] = coeffs``
    (d x d, float32, differentiable in ``coeffs``)."""
    flat = torch.zeros(d * d, dtype=torch.complex64, device=coeffs.device)
    flat = flat.index_put((support.to(coeffs.device),), coeffs.float().to(torch.complex64))
    return alpha * torch.fft.ifft2(flat.reshape(d, d)).real


def scaled_frequencies(d: int) -> int:
    """The code's 3000 frequencies at width 768, scaled to width ``d`` at the same density
    (n / d^2), at least 1."""
    return max(1, round(PAPER_FREQUENCIES * (d / PAPER_WIDTH) ** 2))


@dataclass(frozen=True)
class BiLoRAParams(Params):
    frequencies: int | None = param(
        None, "frequencies n per task; None: 3000 at width 768, the same density elsewhere",
        low=1)
    alpha: float = param(300.0, "scale of the update (the code's, hard-coded for width 768)")
    seed_base: int = param(777, "supports are drawn with seed seed_base + 10 t")


class BiLoRA(Method, name="bilora", params=BiLoRAParams):
    """BiLoRA: per-task sparse Fourier-domain updates of K and V (fixed bases).

    Per-task sparse Fourier cores on fixed bases, frozen once learned."""

    def init_state(self) -> None:
        self.frozen: list[dict[str, torch.Tensor]] = []
        self.coeffs = nn.ParameterList()
        self.support: torch.Tensor | None = None
        self.d = 0

    # ------------------------------------------------------------------ structure
    def setup(self, model: ContinualViT) -> None:
        a = model.adapters[0]
        if a.slice_dim != a.in_features:
            raise ConfigError(f"{self.name} needs square projections, got "
                              f"{a.slice_dim}x{a.in_features}")
        self.d = a.in_features
        n = self.params.frequencies or scaled_frequencies(self.d)
        if n > self.d * self.d:
            raise ConfigError(f"{self.name} frequencies={n} exceed the {self.d}x{self.d} grid")
        self.n = n
        self.frozen = [{s: torch.zeros(self.d, self.d, device=model.device) for s in ad.slices}
                       for ad in model.adapters]
        for i, adapter in enumerate(model.adapters):
            self.forward_hook(adapter, self.update_adder(i))

    def slice_update(self, block: int, s: str, slot: int) -> torch.Tensor:
        """Frozen sum plus, during a task, its current Fourier update."""
        w = self.frozen[block][s]
        if self.support is not None:
            w = w + fourier_update(self.coeffs[slot], self.support, self.d, self.params.alpha)
        return w

    def update_adder(self, block: int) -> ForwardHook:
        """The forward hook of block ``block``: adds each slice's :meth:`slice_update` to the
        fused qkv output."""

        def add_updates(module: LoRAQKV, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
            x = inputs[0]
            parts = list(output.split(module.slice_dim, dim=-1))
            for j, s in enumerate(module.slices):
                w = self.slice_update(block, s, block * len(module.slices) + j)
                i = module.rows(s).start // module.slice_dim
                parts[i] = parts[i] + (x.float() @ w.T).to(parts[i].dtype)
            return torch.cat(parts, dim=-1)

        return add_updates

    # ------------------------------------------------------------------ tasks
    def before_task(self, model: ContinualViT, ctx: TaskContext) -> None:
        """Task t's support and zero coefficients per block and slice."""
        self.support = task_support(self.d, self.n, ctx.index, self.params.seed_base)
        slots = sum(len(a.slices) for a in model.adapters)
        self.coeffs = nn.ParameterList(
            [nn.Parameter(torch.zeros(self.n, device=model.device)) for _ in range(slots)]
        )

    def parameter_groups(self, model: ContinualViT, ctx: TaskContext) -> list[dict[str, Any]]:
        head = list(model.heads[ctx.index].parameters())
        return [{"params": [*self.coeffs, *head]}]

    @torch.no_grad()
    def after_task(self, model: ContinualViT, ctx: TaskContext) -> None:
        """Fold the task's updates into the frozen sums."""
        for i, adapter in enumerate(model.adapters):
            for j, s in enumerate(adapter.slices):
                self.frozen[i][s] = self.slice_update(i, s, i * len(adapter.slices) + j).detach()
        self.support = None
        self.coeffs = nn.ParameterList()

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {"frozen": self.frozen}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.frozen = [dict(f) for f in state["frozen"]]
