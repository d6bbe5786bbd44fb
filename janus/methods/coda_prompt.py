"""CODA-Prompt (Smith et al., CVPR 2023), from the facts about its code in
``shared/papers/baselines-method-notes.md``, Sec. 2 (the paper's text is not in
``shared/papers``): per prefixed block, components (P_m, K_m, A_m) split evenly over the
tasks; the prefix is ``sum_m alpha_m P_m`` with ``alpha_m = cos(q * A_m, K_m)``; a task trains
its own components (Gram-Schmidt initialised), earlier ones are detached; optional
orthogonality penalty (mu = 0). Machinery and the shared base: :mod:`janus.methods.prompting`.
Choices: ``docs/methods/prompts.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from janus.core.errors import ConfigError
from janus.core.fields import param
from janus.methods import prompting as pr
from janus.methods.base import TaskContext
from janus.methods.params import Params
from janus.model.continual import ContinualViT


def coda_weights(q: torch.Tensor, A: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """alpha (B, M): ``alpha[b, m] = cos(q_b * A_m, K_m)`` (elementwise product)."""
    return torch.einsum("bmd,md->bm", F.normalize(q[:, None] * A, dim=-1), F.normalize(K, dim=-1))


def orthonormal_extension(old: torch.Tensor, count: int) -> torch.Tensor:
    """``count`` random unit rows orthogonal to each other and to every row of ``old``
    (s, n): Gram-Schmidt of N(0, 1) draws against an orthonormal basis of the old rows'
    span (projected twice, float64)."""
    n = old.shape[1]
    if old.shape[0] + count > n:
        raise ConfigError(f"cannot add {count} orthogonal components to {old.shape[0]} in R^{n}")
    basis = torch.linalg.qr(old.double().T).Q if len(old) else old.new_zeros(n, 0).double()
    new = []
    for _ in range(count):
        v = torch.randn(n, dtype=torch.float64, device=old.device)
        for _ in range(2):
            v = v - basis @ (basis.T @ v)
        v = v / v.norm()
        basis = torch.cat([basis, v[:, None]], dim=1)
        new.append(v)
    return torch.stack(new).to(old.dtype)


def ortho_penalty(x: torch.Tensor) -> torch.Tensor:
    """The code's ``mean((X X^T - I)^2)`` over the rows of X."""
    eye = torch.eye(len(x), device=x.device, dtype=x.dtype)
    return ((x @ x.T - eye) ** 2).mean()


@dataclass(frozen=True)
class CODAPromptParams(Params):
    pool_size: int | None = param(None, "components M; None: 100, at most the query width",
                                  low=1)
    length: int = param(8, "tokens per component: first half key prefix, second half value",
                        low=2)
    mu: float = param(0.0, "orthogonality penalty (prompt_param 100 8 0.0)", low=0)
    layers: tuple[int, ...] | None = param(None, "prompted blocks; None: 0-4 (those that "
                                           "exist)", low=0)
    clip_grad: float | None = pr.clip_grad_param(None, " (the code)")
    lr: float | None = pr.lr_param("prompts'")

    def check(self) -> None:
        if self.length % 2:
            raise ConfigError(f"length={self.length} must be even (key and value halves)")


class CODAPrompt(pr.PromptMethod, name="coda-prompt", params=CODAPromptParams):
    """CODA-Prompt: prefixes as cos(q*A, K)-weighted sums of per-task components.

    Attention-weighted sums of prompt components (notes Sec. 2)."""

    def init_state(self) -> None:
        super().init_state()
        self.layers: list[int] = []
        self.per_task = 0

    def build(self, model: ContinualViT) -> dict[str, nn.Parameter]:
        """P (layers, M, length, heads * head_dim), K and A (layers, M, d), zero until a
        task initialises its components."""
        p, d, dev = self.params, model.feature_dim, model.device
        depth = len(model.vit.blocks)
        self.layers = list(range(min(depth, 5)) if p.layers is None else p.layers)
        if not set(self.layers) <= set(range(depth)):
            raise ConfigError(f"{self.name} layers must be blocks of 0..{depth - 1}")
        heads, head_dim = pr.attention_shape(model.vit)
        width = heads * head_dim
        cap = min(d, p.length * width)  # orthonormal rows of K, A and flattened P
        M = p.pool_size or min(100, cap)
        self.per_task = M // self.cfg.data.num_tasks
        if self.per_task < 1 or M > cap:
            raise ConfigError(f"{self.name} pool_size={M} must give each of the "
                              f"{self.cfg.data.num_tasks} tasks a component and be <= {cap}")
        n = len(self.layers)

        def zeros(*shape: int) -> nn.Parameter:
            return nn.Parameter(torch.zeros(shape, device=dev))

        return {"P": zeros(n, M, p.length, width), "K": zeros(n, M, d), "A": zeros(n, M, d)}

    def span(self, num_tasks: int) -> tuple[int, int]:
        """[s, f): the components of task ``num_tasks - 1``."""
        return (num_tasks - 1) * self.per_task, num_tasks * self.per_task

    @torch.no_grad()
    def before_task(self, model: ContinualViT, ctx: TaskContext) -> None:
        """Gram-Schmidt initialisation of the task's components [s, f) of P, K and A, in
        every layer, orthogonal to the components [0, s)."""
        s, f = self.span(ctx.index + 1)
        for x in self.prompts.values():
            flat = x.view(x.shape[0], x.shape[1], -1)  # (layers, M, entries)
            for layer in flat:
                layer[s:f] = orthonormal_extension(layer[:s], f - s)

    def components(self, num_tasks: int, train: bool) -> list[tuple[torch.Tensor, ...]]:
        """Per layer (P, K, A) over [0, f); when training, [0, s) detached."""
        s, f = self.span(num_tasks)
        out = []
        for j in range(len(self.layers)):
            parts = [self.prompts[k][j, :f] for k in ("P", "K", "A")]
            if train:
                parts = [torch.cat([x[:s].detach(), x[s:]]) for x in parts]
            out.append(tuple(parts))
        return out

    def forward(
        self, model: ContinualViT, images: torch.Tensor, num_tasks: int, train: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Head input: CLS with :meth:`prefixes`; term: mu * their penalty."""
        prefixes, penalty = self.prefixes(pr.query(model, images), num_tasks, train)
        feats, _ = pr.prompted_forward(model.vit, images, prefixes=prefixes)
        return feats, self.params.mu * penalty

    def prefixes(
        self, q: torch.Tensor, num_tasks: int, train: bool
    ) -> tuple[dict[int, pr.Prefix], torch.Tensor]:
        """Per layer ``p = sum_m alpha_m P_m`` (B, length, width), its first half the key
        prefix, its second the value prefix; and, training with mu > 0, the sum over layers
        of the penalties of K, A and P."""
        prefixes, penalty = {}, torch.zeros((), device=q.device)
        half = self.params.length // 2
        for b, (P, K, A) in zip(self.layers, self.components(num_tasks, train), strict=True):
            p = torch.einsum("bm,mld->bld", coda_weights(q, A, K), P)
            prefixes[b] = (p[:, :half], p[:, half:])
            if train and self.params.mu > 0:
                penalty = penalty + sum(ortho_penalty(x.flatten(1)) for x in (K, A, P))
        return prefixes, penalty
