"""Input statistics of the adapted layers: the Gram matrix X^T X of all tokens entering each
block's fused ``qkv`` Linear, over a set of images (GPM-style bases, InfLoRA, the Fig. 2
probe)."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from janus.model.continual import ContinualViT


@torch.no_grad()
def input_grams(
    model: ContinualViT,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    dtype: torch.dtype = torch.float32,
) -> list[torch.Tensor]:
    """Per block, ``X^T X`` (d_in x d_in, ``dtype``) of the qkv inputs (all tokens) over the
    images of ``batches`` ((images, labels) pairs), with the model in eval mode; the model's
    training mode is restored afterwards."""
    grams = [torch.zeros(a.in_features, a.in_features, dtype=dtype, device=model.device)
             for a in model.adapters]

    def hook(i: int):
        def accumulate(module, inputs: tuple, output: torch.Tensor) -> None:
            x = inputs[0].reshape(-1, inputs[0].shape[-1]).float()
            grams[i] += (x.T @ x).to(dtype)

        return accumulate

    handles = [a.register_forward_hook(hook(i)) for i, a in enumerate(model.adapters)]
    was_training = model.training
    model.eval()
    try:
        for images, _ in batches:
            model.features(images.to(model.device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return grams
