"""L2P (Wang et al., CVPR 2022), from the facts about its code in
``shared/papers/baselines-method-notes.md``, Sec. 2 (the paper's text is not in
``shared/papers``): a pool of input prompts with keys, the top-N keys by cosine with the query
pick the prompts per sample; the head reads the mean of the prompt positions' outputs; loss
CE - lambda * (sum of the selected cosines) / B. Machinery and the shared base:
:mod:`janus.methods.prompting`. Choices: ``docs/methods/prompts.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from janus.core.errors import ConfigError
from janus.core.fields import param
from janus.methods import prompting as pr
from janus.methods.params import Params
from janus.model.continual import ContinualViT


@dataclass(frozen=True)
class L2PParams(Params):
    pool_size: int = param(10, "prompts in the pool (M)", low=1)
    length: int = param(5, "tokens per prompt", low=1)
    top_k: int = param(5, "prompts per sample (N)", low=1)
    lam: float = param(0.1, "weight of the key-query pull term (original code, PILOT)", low=0)
    clip_grad: float | None = pr.clip_grad_param(1.0)
    lr: float | None = pr.lr_param("prompts' and keys'")
    batchwise: bool = pr.batchwise_param(
        "the batch's N most frequent prompts for every sample, in training and test",
        ", its CIFAR-100 config")

    def check(self) -> None:
        if self.top_k > self.pool_size:
            raise ConfigError(f"top_k={self.top_k} exceeds pool_size={self.pool_size}")


class L2P(pr.PromptMethod, name="l2p", params=L2PParams):
    """L2P: per-sample top-N prompts from a keyed pool at the input, prompt head.

    Top-N prompts of a keyed pool, inserted at the input (notes Sec. 2, L2P)."""

    def build(self, model: ContinualViT) -> dict[str, nn.Parameter]:
        p, d, dev = self.params, model.feature_dim, model.device
        return {"prompts": pr.uniform(p.pool_size, p.length, d, device=dev),
                "keys": pr.uniform(p.pool_size, d, device=dev)}

    def select(self, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per sample, the cosines with all keys (B, M) and the top-N indices (B, N); with
        ``batchwise``, the batch's N most frequent of those for every sample
        (:func:`~janus.methods.prompting.batch_majority`)."""
        sim = pr.cosine(q, self.prompts["keys"])
        idx = sim.topk(self.params.top_k, dim=1).indices
        if self.params.batchwise:
            idx = pr.batch_majority(idx, self.params.top_k)
        return sim, idx

    def forward(
        self, model: ContinualViT, images: torch.Tensor, num_tasks: int, train: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Head input: the mean output at the N * length prompt positions; term:
        -lambda * sum_b sum_{i in topN(b)} cos(q_b, k_i) / B (only selected keys get
        gradient)."""
        sim, idx = self.select(pr.query(model, images))
        tokens = pr.take(self.prompts["prompts"], idx).flatten(1, 2)  # (B, N * length, d)
        _, outputs = pr.prompted_forward(model.vit, images, tokens=tokens)
        pull = sim.gather(1, idx).sum() / len(images)
        return outputs.mean(dim=1), -self.params.lam * pull
