"""Input statistics of the adapted layers: the Gram matrix X^T X of all tokens entering each
block's fused ``qkv`` Linear, over a set of images (GPM-style bases, InfLoRA, the Fig. 2
probe). The pass runs in full precision whatever autocast its caller is under
(:mod:`janus.core.precision`)."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from janus.core.precision import full_precision, statistic
from janus.model.continual import ContinualViT


@torch.no_grad()
def input_grams(
    model: ContinualViT,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    dtype: torch.dtype = torch.float32,
) -> list[torch.Tensor]:
    """Per block, ``X^T X`` (d_in x d_in, ``dtype``) of the qkv inputs (all tokens) over the
    images of ``batches`` ((images, labels) pairs), with the model in eval mode and autocast
    off; the model's training mode is restored afterwards."""
    grams = [torch.zeros(a.in_features, a.in_features, dtype=dtype, device=model.device)
             for a in model.adapters]

    def hook(i: int):
        def accumulate(module, inputs: tuple, output: torch.Tensor) -> None:
            x = statistic(inputs[0].reshape(-1, inputs[0].shape[-1]))
            grams[i] += (x.T @ x).to(dtype)

        return accumulate

    handles = [a.register_forward_hook(hook(i)) for i, a in enumerate(model.adapters)]
    was_training = model.training
    model.eval()
    try:
        with full_precision():
            for images, _ in batches:
                model.features(images.to(model.device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return grams
