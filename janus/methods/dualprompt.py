"""DualPrompt (Wang et al., ECCV 2022), from the facts about its code in
``shared/papers/baselines-method-notes.md``, Sec. 2 (the paper's text is not in
``shared/papers``): a shared G-prompt (prefix on the first blocks) and one E-prompt per task
(prefix on the next blocks) with a key; training forces E-prompt t, the test picks the top-1
key; E-prompt t starts as a copy of E-prompt t-1; loss CE - lambda * mean cos(q, k_t).
Machinery and the shared base: :mod:`janus.methods.prompting`. Choices:
``docs/methods/prompts.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from janus.core.errors import ConfigError
from janus.core.fields import param
from janus.methods import prompting as pr
from janus.methods.base import TaskContext
from janus.methods.params import Params
from janus.model.continual import ContinualViT


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
    clip_grad: float | None = pr.clip_grad_param(1.0)
    lr: float | None = pr.lr_param("prompts' and keys'")
    batchwise: bool = pr.batchwise_param(
        "at test, the batch's most frequent E-prompt for every sample",
        ": True in its CIFAR-100 config, False in its ImageNet-R one")


class DualPrompt(pr.PromptMethod, name="dualprompt", params=DualPromptParams):
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
        heads, head_dim = pr.attention_shape(model.vit)
        pool = self.cfg.data.num_tasks  # one E-prompt per task
        return {
            "g": pr.uniform(len(self.g_layers), 2, p.g_length, heads, head_dim, device=dev),
            "e": pr.uniform(len(self.e_layers), 2, pool, self.e_length, heads, head_dim,
                            device=dev),
            "keys": pr.uniform(pool, model.feature_dim, device=dev),
        }

    @torch.no_grad()
    def before_task(self, model: ContinualViT, ctx: TaskContext) -> None:
        """E-prompt t starts as a copy of E-prompt t-1 (not its key)."""
        if ctx.index > 0:
            e = self.prompts["e"]
            e[:, :, ctx.index] = e[:, :, ctx.index - 1]

    def prefixes(self, idx: torch.Tensor) -> dict[int, pr.Prefix]:
        """The G-prefix on its blocks and, per sample b, E-prompt ``idx[b]`` on the E blocks:
        keys from its K half, values from its V half (the permute the original code lacks)."""
        B = len(idx)
        out = {b: pr.shared_prefix(self.prompts["g"][j], B) for j, b in enumerate(self.g_layers)}
        e = pr.take(self.prompts["e"], idx, dim=2)  # (layers, 2, B, length, heads, head_dim)
        for j, b in enumerate(self.e_layers):
            out[b] = (e[j, 0].flatten(2), e[j, 1].flatten(2))
        return out

    def forward(
        self, model: ContinualViT, images: torch.Tensor, num_tasks: int, train: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Head input: CLS; E-prompt ``num_tasks - 1`` when training, else the top-1 key among
        the seen tasks' (with ``batchwise``, the batch's most frequent top-1 for every
        sample); term: -lambda * mean_b cos(q_b, k_chosen)."""
        sim = pr.cosine(pr.query(model, images), self.prompts["keys"][:num_tasks])
        if train:
            idx = torch.full((len(images),), num_tasks - 1, device=sim.device)
        elif self.params.batchwise:
            idx = pr.batch_majority(sim.argmax(dim=1, keepdim=True), 1)[:, 0]
        else:
            idx = sim.argmax(dim=1)
        feats, _ = pr.prompted_forward(model.vit, images, prefixes=self.prefixes(idx))
        pull = sim.gather(1, idx[:, None]).mean()
        return feats, -self.params.lam * pull
