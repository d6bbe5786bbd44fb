"""The continual model: a frozen ViT with LoRA wrappers and one linear head per task.

Training uses the current task's head only; evaluation concatenates the heads of all seen
tasks and predicts without a task id (InfLoRA protocol, Liang & Li 2024).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from janus.core.config import LoRAConfig, ModelConfig
from janus.core.errors import ConfigError
from janus.model.backbones import build_vit, input_size
from janus.model.lora import LoRAComponent, LoRAQKV, Magnitudes, inject_lora


class ContinualViT(nn.Module):
    """Frozen ViT + adapters (``self.adapters``, one :class:`LoRAQKV` per block) + heads."""

    def __init__(self, vit: nn.Module, lora: LoRAConfig) -> None:
        super().__init__()
        self.vit = vit
        self.lora = lora
        self.adapters: list[LoRAQKV] = inject_lora(vit, lora.targets)
        self.heads = nn.ModuleList()
        self.magnitudes: Magnitudes | None = None
        """SD-LoRA's shared magnitudes, once a method adds them (:meth:`add_magnitudes`)."""

    @property
    def feature_dim(self) -> int:
        return int(self.vit.num_features)

    @property
    def device(self) -> torch.device:
        return next(self.vit.parameters()).device

    def add_head(self, num_classes: int) -> nn.Linear:
        head = nn.Linear(self.feature_dim, num_classes).to(self.device)
        self.heads.append(head)
        return head

    def add_lora_components(self, rank: int | None = None) -> list[dict[str, LoRAComponent]]:
        """Append a fresh component to every adapted slice of every block."""
        r = self.lora.rank if rank is None else rank
        added = [a.add_component(r, self.lora.scale) for a in self.adapters]
        self.link_magnitudes()
        return added

    def add_magnitudes(self, norm: str, init: float) -> Magnitudes:
        """From now on component k of every slice is ``alpha_k dir(A_k, B_k)`` (SD-LoRA Eq. 4)
        with one shared magnitude per k (:class:`~janus.model.lora.Magnitudes`), ``init`` for
        the components the model already has. Part of the model's state and structure."""
        counts = {len(a.slice_components(s)) for a in self.adapters for s in a.slices}
        if len(counts) != 1:
            raise ValueError(f"magnitudes need as many components in every slice, got {counts}")
        self.magnitudes = Magnitudes(norm, counts.pop(), init).to(self.device)
        self.link_magnitudes()
        return self.magnitudes

    def link_magnitudes(self) -> None:
        """Point component k of every slice at magnitude k (after components come or go)."""
        if self.magnitudes is not None:
            for a in self.adapters:
                for _, k, comp in a.iter_components():
                    comp.use_magnitude(self.magnitudes, k)

    def lora_components(self) -> list[LoRAComponent]:
        """Every component of every block, block by block, slice by slice, in order added."""
        return [c for a in self.adapters for _, _, c in a.iter_components()]

    def task_components(self, k: int) -> list[dict[str, LoRAComponent]]:
        """Per block, component ``k`` of every adapted slice (a per-task method's task ``k``)."""
        return [a.task_components(k) for a in self.adapters]

    def remove_lora_components(self, k: int) -> None:
        """Delete component ``k`` of every slice of every block (SD-LoRA-KD's absorption)."""
        for a in self.adapters:
            a.remove_components(k)
        self.link_magnitudes()

    def set_lora_trainable(self, trainable: bool) -> None:
        """Train (True) or freeze (False) every LoRA component."""
        for a in self.adapters:
            a.set_trainable(trainable)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Pre-logit features (the ViT's pooled, normed token)."""
        return self.vit(images)

    def logits(self, features: torch.Tensor, num_heads: int | None = None) -> torch.Tensor:
        """Concatenated logits of the first ``num_heads`` heads (all when None)."""
        heads = self.heads if num_heads is None else self.heads[:num_heads]
        return torch.cat([h(features) for h in heads], dim=-1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.logits(self.features(images))

    def compile_backbone(self) -> None:
        """``torch.compile`` the ViT in place (state-dict keys unchanged). Dynamo is told to
        guard on module hooks, so a hook a method adds later (activation captures, Gram
        statistics) recompiles the graph instead of being skipped silently."""
        import torch._dynamo

        torch._dynamo.config.skip_nnmodule_hook_guards = False
        self.vit.compile()

    def structure(self) -> dict[str, Any]:
        """Shapes needed to rebuild this model before loading a state dict (for resume)."""
        return {
            "heads": [h.out_features for h in self.heads],
            "components": [
                [(s, c.rank, c.scale) for s, _, c in a.iter_components()] for a in self.adapters
            ],
            "magnitudes": None if self.magnitudes is None else self.magnitudes.norm,
        }

    def rebuild(self, structure: dict[str, Any]) -> None:
        """Recreate heads and LoRA components described by :meth:`structure`."""
        if self.heads or self.lora_components() or self.magnitudes is not None:
            raise RuntimeError("rebuild() expects a model without heads or components")
        for n in structure["heads"]:
            self.add_head(n)
        for adapter, comps in zip(self.adapters, structure["components"], strict=True):
            for s, rank, scale in comps:
                comp = LoRAComponent(adapter.in_features, adapter.slice_dim, rank, scale)
                adapter.components[s].append(comp.to(self.device))
        if structure.get("magnitudes") is not None:  # values: from the state dict
            self.add_magnitudes(structure["magnitudes"], 0.0)


def build_model(model_cfg: ModelConfig, lora_cfg: LoRAConfig) -> ContinualViT:
    """The frozen ViT from ``model_cfg`` with LoRA wrappers from ``lora_cfg``."""
    vit = build_vit(model_cfg)
    size = input_size(vit)
    if size != model_cfg.img_size:
        raise ConfigError(
            f"the backbone expects {size}x{size} inputs but model.img_size={model_cfg.img_size}; "
            f"set model.img_size={size}"
        )
    d = int(vit.num_features)
    if not 1 <= lora_cfg.rank <= d:
        raise ConfigError(f"lora.rank={lora_cfg.rank} is impossible for width {d}: use 1..{d}")
    return ContinualViT(vit, lora_cfg)
