"""LoRA-GPM (Janus-LoRA's baseline, Sec. 4.1; the basis of GPM, Saha et al., ICLR 2021): one
continually trained LoRA pair per adapted slice, A's gradient projected off a basis that is
built offline after each task from the task's layer inputs (no online estimation).

``gr=True`` is Janus-LoRA Fig. 6's "LoRA-GPM + GR": the factor gradients are rectified
(Eq. 6-7) towards the safe gradient ``G_W (I - M M^T)`` of the GPM basis M instead.
Both through :class:`~janus.methods.protected_lora.ProtectedLoRA`, as Janus-LoRA. Choices:
``docs/methods/lora_gpm.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from janus.core import geometry as geo
from janus.core.fields import param
from janus.methods.activations import input_grams
from janus.methods.base import Method, TaskContext
from janus.methods.params import Params
from janus.methods.protected_lora import ProtectedLoRA
from janus.model.continual import ContinualViT


@dataclass(frozen=True)
class LoRAGPMParams(Params):
    gr: bool = param(False, "GR towards the projected gradient (Janus-LoRA Fig. 6)")
    gamma: float = param(1e-4, "GR's ridge coefficient (Janus-LoRA Eq. 27 / 34, as janus-lora)",
                         low=0, low_open=True)
    threshold: float = param(0.97, "GPM energy threshold at the first task (Saha et al. 2021)",
                             low=0, low_open=True, high=1)
    threshold_step: float = param(0.003, "raise of the threshold per task (0.97 + 0.003 t)",
                                  low=0)


class LoRAGPM(Method, name="lora-gpm", params=LoRAGPMParams):
    """LoRA-GPM: one LoRA, A's gradient projected off an offline GPM basis."""

    def init_state(self) -> None:
        self.history: list[torch.Tensor | None] = []
        """Per block, the GPM basis M (d_in x m; None while empty)."""
        self.protection: ProtectedLoRA | None = None

    def setup(self, model: ContinualViT) -> None:
        if not model.lora_components():
            model.add_lora_components()
        self.history = [None] * len(model.adapters)
        self.protection = ProtectedLoRA(model.adapters, self.forward_hook,
                                        rectify=self.params.gr, gamma=self.params.gamma)

    def before_task(self, model: ContinualViT, ctx: TaskContext) -> None:
        model.set_lora_trainable(True)
        self.protection.protect(self.history)

    def after_backward(self, model: ContinualViT, ctx: TaskContext) -> None:
        self.protection.update_gradients(self.protection.continual_pairs())

    @torch.no_grad()
    def after_task(self, model: ContinualViT, ctx: TaskContext) -> None:
        """GPM growth (:func:`janus.core.geometry.grown_basis`) of each block's basis on the
        Gram of the task's inputs (training images, test transform), threshold
        ``threshold + threshold_step * t`` (at most 1); at most ``d_in - rank`` columns."""
        grams = input_grams(model, ctx.stream.eval_loader(ctx.task.train_plain), torch.float64)
        eps = min(1.0, self.params.threshold + self.params.threshold_step * ctx.index)
        d = model.adapters[0].in_features
        for i, gram in enumerate(grams):
            old = self.history[i]
            old = torch.zeros(d, 0, dtype=torch.float64) if old is None else old.double().cpu()
            new = geo.grown_basis(old, gram.cpu(), eps, d - model.lora.rank)
            self.history[i] = new.float().to(model.device) if new.shape[1] else None

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history = list(state["history"])
