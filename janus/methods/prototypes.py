"""Class prototypes: mean pre-logit features of a task's classes over its training images
(test transform), used by Janus-LoRA's DML and by the nearest-mean evaluation of LoRA-DRS and
of the ``ncm`` reference."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from janus.core.precision import full_precision, in_full_precision, statistic
from janus.methods.base import TaskContext
from janus.model.continual import ContinualViT


@torch.no_grad()
def class_sums(
    model: ContinualViT, ctx: TaskContext, normalized: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per class of the task, in label order: the sum of its training images' features
    (L2-normalised first when ``normalized``), float32, (classes x d), and the image counts;
    the pass runs with autocast off. The model's training mode is restored afterwards."""
    was_training = model.training
    model.eval()
    task = ctx.task
    n = len(task.labels)
    sums = counts = None
    try:
        with full_precision():
            for images, labels in ctx.stream.eval_loader(task.train_plain):
                z = statistic(model.features(images.to(ctx.device)))
                if normalized:
                    z = F.normalize(z, dim=-1)
                idx = (labels - task.labels.start).to(ctx.device)
                part = torch.zeros(n, z.shape[1], device=ctx.device).index_add(0, idx, z)
                ones = torch.zeros(n, device=ctx.device).index_add(
                    0, idx, torch.ones_like(idx).float())
                sums = part if sums is None else sums + part
                counts = ones if counts is None else counts + ones
    finally:
        model.train(was_training)
    return sums, counts


def class_means(model: ContinualViT, ctx: TaskContext, normalized: bool) -> torch.Tensor:
    """Per class of the task, the mean of :func:`class_sums`' features (classes x d)."""
    sums, counts = class_sums(model, ctx, normalized)
    return sums / counts.clamp_min(1).unsqueeze(1)


@in_full_precision
def nearest_prototype_scores(features: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
    """Scores whose argmax is the prototype nearest to each feature after L2-normalising both:
    minus the squared distance of the unit vectors (``2 cos - 2``; LoRA-DRS's NME, SimpleCIL's
    cosine classifier), in float32 under any autocast."""
    z = F.normalize(features.float(), dim=-1)
    return -torch.cdist(z, F.normalize(prototypes, dim=-1)).pow(2)


class NearestMeanClassifier:
    """Mixin for a :class:`~janus.methods.base.Method` that predicts by the nearest class-mean
    prototype: after each task it stores the mean (unnormalised) feature of each new class
    (:func:`class_means`) and scores with :func:`nearest_prototype_scores` over the classes
    seen; the prototypes are its resumable state. Used by LoRA-DRS and ``ncm``."""

    prototypes: torch.Tensor | None = None

    @torch.no_grad()
    def after_task(self, model: ContinualViT, ctx: TaskContext) -> None:
        means = class_means(model, ctx, normalized=False)
        self.prototypes = means if self.prototypes is None else torch.cat([self.prototypes, means])

    @torch.no_grad()
    def predict(self, model: ContinualViT, images: torch.Tensor, num_tasks: int) -> torch.Tensor:
        """NME: minus the squared distance to the normalised prototypes of the classes seen."""
        n = sum(h.out_features for h in model.heads[:num_tasks])
        return nearest_prototype_scores(self.features(model, images), self.prototypes[:n])

    def state_dict(self) -> dict[str, Any]:
        return {"prototypes": self.prototypes}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.prototypes = state["prototypes"]
