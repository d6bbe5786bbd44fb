"""The prompt-based baselines on the frozen ViT, from the facts about their code in
``shared/papers/baselines-method-notes.md``, Sec. 2 (the papers' texts are not in
``shared/papers``):

- **L2P** (Wang et al., CVPR 2022): a pool of input prompts with keys, the top-N keys by
  cosine with the query pick the prompts per sample; the head reads the mean of the prompt
  positions' outputs; loss CE - lambda * (sum of the selected cosines) / B.
- **DualPrompt** (Wang et al., ECCV 2022): a shared G-prompt (prefix on the first blocks) and
  one E-prompt per task (prefix on the next blocks) with a key; training forces E-prompt t,
  the test picks the top-1 key; E-prompt t starts as a copy of E-prompt t-1; loss CE -
  lambda * mean cos(q, k_t).
- **CODA-Prompt** (Smith et al., CVPR 2023): per prefixed block, components (P_m, K_m, A_m)
  split evenly over the tasks; the prefix is ``sum_m alpha_m P_m`` with
  ``alpha_m = cos(q * A_m, K_m)``; a task trains its own components (Gram-Schmidt
  initialised), earlier ones are detached; optional orthogonality penalty (mu = 0).

All three: the backbone frozen, query q(x) from the prompt-free backbone, CE over the current
task's head (= logits of the other classes masked), the prompt tensors owned by the method
(their state is checkpointed). Machinery: :mod:`janus.methods.prompting`. Choices:
``docs/methods/prompts.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from janus.core.errors import ConfigError
from janus.methods.base import Method, TaskContext
from janus.methods.params import Params, param
from janus.methods.prompting import (
    Prefix,
    attention_shape,
    batch_majority,
    check_vit,
    cosine,
    prompted_forward,
    query,
    take,
)
from janus.model.continual import ContinualViT


def uniform(*shape: int, device: torch.device) -> nn.Parameter:
    """A parameter drawn from Uniform(-1, 1), the codes' prompt and key initialisation."""
    return nn.Parameter(torch.empty(shape, device=device).uniform_(-1, 1))


def shared_prefix(p: torch.Tensor, batch: int) -> Prefix:
    """(2, L, heads, head_dim) -> the same (keys, values) prefix for every sample."""
    return p[0].flatten(1).expand(batch, -1, -1), p[1].flatten(1).expand(batch, -1, -1)


class PromptMethod(Method):
    """Shared by the three: method-owned prompt tensors (``self.prompts``), their optimizer
    group (own ``lr`` when set), gradient clipping, checkpointed state.

    Subclasses build the tensors and implement :meth:`forward`, which returns the head's
    input and the method's extra loss term."""

    def init_state(self) -> None:
        self.prompts: dict[str, nn.Parameter] = {}

    def setup(self, model: ContinualViT) -> None:
        check_vit(model.vit)
        self.prompts = self.build(model)

    def build(self, model: ContinualViT) -> dict[str, nn.Parameter]:
        raise NotImplementedError

    def forward(
        self, model: ContinualViT, images: torch.Tensor, num_tasks: int, train: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(head input (B, d), extra loss term) for tasks ``0 .. num_tasks - 1``; ``train``:
        as while training task ``num_tasks - 1``."""
        raise NotImplementedError

    def features(self, model: ContinualViT, images: torch.Tensor) -> torch.Tensor:
        return self.forward(model, images, len(model.heads), train=False)[0]

    def loss(
        self, model: ContinualViT, images: torch.Tensor, targets: torch.Tensor, ctx: TaskContext
    ) -> torch.Tensor:
        """CE over the current task's head plus the method's term."""
        feats, extra = self.forward(model, images, ctx.index + 1, train=True)
        return self.head_loss(model, feats, targets, ctx) + extra

    @torch.no_grad()
    def predict(self, model: ContinualViT, images: torch.Tensor, num_tasks: int) -> torch.Tensor:
        feats, _ = self.forward(model, images, num_tasks, train=False)
        return model.logits(feats, num_tasks)

    def parameter_groups(self, model: ContinualViT, ctx: TaskContext) -> list[dict[str, Any]]:
        """The prompt tensors (with ``lr`` when set) and the current head."""
        prompts: dict[str, Any] = {"params": list(self.prompts.values())}
        if self.params.lr is not None:
            prompts["lr"] = self.params.lr
        return [prompts, {"params": list(model.heads[ctx.index].parameters())}]

    def after_backward(self, model: ContinualViT, ctx: TaskContext) -> None:
        """The codes' ``clip_grad_norm_`` over everything trained (prompts and head)."""
        if self.params.clip_grad is not None:
            trained = [p for g in self.parameter_groups(model, ctx) for p in g["params"]]
            nn.utils.clip_grad_norm_(trained, self.params.clip_grad)

    def state_dict(self) -> dict[str, Any]:
        return {"prompts": {k: p.detach().clone() for k, p in self.prompts.items()}}

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, p in self.prompts.items():
            p.copy_(state["prompts"][k])


# --------------------------------------------------------------------------- L2P


@dataclass(frozen=True)
class L2PParams(Params):
    pool_size: int = param(10, "prompts in the pool (M)", low=1)
    length: int = param(5, "tokens per prompt", low=1)
    top_k: int = param(5, "prompts per sample (N)", low=1)
    lam: float = param(0.1, "weight of the key-query pull term (original code, PILOT)", low=0)
    clip_grad: float | None = param(1.0, "gradient-norm clip; None: no clipping", low=0,
                                    low_open=True)
    lr: float | None = param(None, "prompts' and keys' lr; None = train.lr", low=0,
                             low_open=True)
    batchwise: bool = param(False, "the batch's N most frequent prompts for every sample, in "
                            "training and test (the port's batchwise_prompt, its CIFAR-100 "
                            "config); a prediction then depends on its batch")

    def check(self) -> None:
        if self.top_k > self.pool_size:
            raise ConfigError(f"top_k={self.top_k} exceeds pool_size={self.pool_size}")


class L2P(PromptMethod, name="l2p", params=L2PParams):
    """L2P: per-sample top-N prompts from a keyed pool at the input, prompt head.

    Top-N prompts of a keyed pool, inserted at the input (notes Sec. 2, L2P)."""

    def build(self, model: ContinualViT) -> dict[str, nn.Parameter]:
        p, d, dev = self.params, model.feature_dim, model.device
        return {"prompts": uniform(p.pool_size, p.length, d, device=dev),
                "keys": uniform(p.pool_size, d, device=dev)}

    def select(self, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per sample, the cosines with all keys (B, M) and the top-N indices (B, N); with
        ``batchwise``, the batch's N most frequent of those for every sample
        (:func:`~janus.methods.prompting.batch_majority`)."""
        sim = cosine(q, self.prompts["keys"])
        idx = sim.topk(self.params.top_k, dim=1).indices
        if self.params.batchwise:
            idx = batch_majority(idx, self.params.top_k)
        return sim, idx

    def forward(
        self, model: ContinualViT, images: torch.Tensor, num_tasks: int, train: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Head input: the mean output at the N * length prompt positions; term:
        -lambda * sum_b sum_{i in topN(b)} cos(q_b, k_i) / B (only selected keys get
        gradient)."""
        sim, idx = self.select(query(model, images))
        tokens = take(self.prompts["prompts"], idx).flatten(1, 2)  # (B, N * length, d)
        _, outputs = prompted_forward(model.vit, images, tokens=tokens)
        pull = sim.gather(1, idx).sum() / len(images)
        return outputs.mean(dim=1), -self.params.lam * pull


# --------------------------------------------------------------------------- DualPrompt


def dualprompt_layers(depth: int) -> tuple[list[int], list[int]]:
    """The notes' G-prompt blocks 0-1 and E-prompt blocks 2-4; in ViTs with fewer than 5
    blocks the first ``n = depth`` blocks, ``round(2 n / 5)`` of them G."""
    n = min(depth, 5)
    g = round(2 * n / 5)
    return list(range(g)), list(range(g, n))


@dataclass(frozen=True)
class DualPromptParams(Params):
    g_layers: tuple[int, ...] | None = param(
        None, "blocks of the G-prompt; None: 0-1 (see dualprompt_layers for shallow ViTs)",
        low=0)
    e_layers: tuple[int, ...] | None = param(None, "blocks of the E-prompts; None: 2-4", low=0)
    g_length: int = param(5, "tokens of the G-prompt", low=1)
    e_length: int | None = param(None, "tokens of an E-prompt; None: 20 on imagenet-r, else 5",
                                 low=1)
    lam: float = param(1.0, "weight of the key-query pull term (the port; PILOT 0.1)", low=0)
    clip_grad: float | None = param(1.0, "gradient-norm clip; None: no clipping", low=0,
                                    low_open=True)
    lr: float | None = param(None, "prompts' and keys' lr; None = train.lr", low=0,
                             low_open=True)
    batchwise: bool = param(False, "at test, the batch's most frequent E-prompt for every "
                            "sample (the port's batchwise_prompt: True in its CIFAR-100 config, "
                            "False in its ImageNet-R one); a prediction then depends on its batch")


class DualPrompt(PromptMethod, name="dualprompt", params=DualPromptParams):
    """DualPrompt: shared G-prompt + per-task keyed E-prompt prefixes.

    A shared G-prefix and one keyed E-prefix per task (notes Sec. 2)."""

    def init_state(self) -> None:
        super().init_state()
        p = self.params
        self.e_length = p.e_length or (20 if self.cfg.data.dataset == "imagenet-r" else 5)
        self.g_layers: list[int] = []
        self.e_layers: list[int] = []

    def build(self, model: ContinualViT) -> dict[str, nn.Parameter]:
        p, dev = self.params, model.device
        g, e = dualprompt_layers(len(model.vit.blocks))
        self.g_layers = list(g if p.g_layers is None else p.g_layers)
        self.e_layers = list(e if p.e_layers is None else p.e_layers)
        blocks = range(len(model.vit.blocks))
        if set(self.g_layers) & set(self.e_layers) or not set(self.g_layers + self.e_layers) <= set(
            blocks
        ):
            raise ConfigError(f"{self.name} g_layers and e_layers must be disjoint blocks of "
                              f"{list(blocks)}, got {self.g_layers} and {self.e_layers}")
        heads, head_dim = attention_shape(model.vit)
        pool = self.cfg.data.num_tasks  # one E-prompt per task
        return {
            "g": uniform(len(self.g_layers), 2, p.g_length, heads, head_dim, device=dev),
            "e": uniform(len(self.e_layers), 2, pool, self.e_length, heads, head_dim, device=dev),
            "keys": uniform(pool, model.feature_dim, device=dev),
        }

    @torch.no_grad()
    def before_task(self, model: ContinualViT, ctx: TaskContext) -> None:
        """E-prompt t starts as a copy of E-prompt t-1 (not its key)."""
        if ctx.index > 0:
            e = self.prompts["e"]
            e[:, :, ctx.index] = e[:, :, ctx.index - 1]

    def prefixes(self, idx: torch.Tensor) -> dict[int, Prefix]:
        """The G-prefix on its blocks and, per sample b, E-prompt ``idx[b]`` on the E blocks:
        keys from its K half, values from its V half (the permute the original code lacks)."""
        B = len(idx)
        out = {b: shared_prefix(self.prompts["g"][j], B) for j, b in enumerate(self.g_layers)}
        e = take(self.prompts["e"], idx, dim=2)  # (layers, 2, B, length, heads, head_dim)
        for j, b in enumerate(self.e_layers):
            out[b] = (e[j, 0].flatten(2), e[j, 1].flatten(2))
        return out

    def forward(
        self, model: ContinualViT, images: torch.Tensor, num_tasks: int, train: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Head input: CLS; E-prompt ``num_tasks - 1`` when training, else the top-1 key among
        the seen tasks' (with ``batchwise``, the batch's most frequent top-1 for every
        sample); term: -lambda * mean_b cos(q_b, k_chosen)."""
        sim = cosine(query(model, images), self.prompts["keys"][:num_tasks])
        if train:
            idx = torch.full((len(images),), num_tasks - 1, device=sim.device)
        elif self.params.batchwise:
            idx = batch_majority(sim.argmax(dim=1, keepdim=True), 1)[:, 0]
        else:
            idx = sim.argmax(dim=1)
        feats, _ = prompted_forward(model.vit, images, prefixes=self.prefixes(idx))
        pull = sim.gather(1, idx[:, None]).mean()
        return feats, -self.params.lam * pull


# --------------------------------------------------------------------------- CODA-Prompt


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
    clip_grad: float | None = param(None, "gradient-norm clip; None: no clipping (the code)",
                                    low=0, low_open=True)
    lr: float | None = param(None, "prompts' lr; None = train.lr", low=0, low_open=True)

    def check(self) -> None:
        if self.length % 2:
            raise ConfigError(f"length={self.length} must be even (key and value halves)")


class CODAPrompt(PromptMethod, name="coda-prompt", params=CODAPromptParams):
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
        heads, head_dim = attention_shape(model.vit)
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
        prefixes, penalty = self.prefixes(query(model, images), num_tasks, train)
        feats, _ = prompted_forward(model.vit, images, prefixes=prefixes)
        return feats, self.params.mu * penalty

    def prefixes(
        self, q: torch.Tensor, num_tasks: int, train: bool
    ) -> tuple[dict[int, Prefix], torch.Tensor]:
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
