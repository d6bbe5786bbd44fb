"""Batched augmentation of uint8 image batches on any device (the ``device`` input pipeline).

The photograph pipeline of :mod:`janus.data.stream` (torchvision's ``RandomResizedCrop`` +
``RandomHorizontalFlip`` + ``ToTensor`` + ``Normalize`` for training, ``Resize`` +
``CenterCrop`` for evaluation) split in two: crop boxes and flips are drawn on the host
(:func:`resized_crop_boxes`, the same sampling procedure as torchvision's
``RandomResizedCrop.get_params``, vectorised), the host cuts the boxes out of decoded uint8
images (:mod:`janus.data.pipeline`), and the device resizes and mirrors the crops
(:func:`resize_crops`) and normalises the batch (:func:`normalize`).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

SCALE = (0.08, 1.0)
RATIO = (3 / 4, 4 / 3)
ATTEMPTS = 10
"""torchvision's ``RandomResizedCrop`` defaults: area fraction, aspect ratio, tries."""


def resized_crop_boxes(
    heights: np.ndarray,
    widths: np.ndarray,
    rng: np.random.Generator,
    scale: tuple[float, float] = SCALE,
    ratio: tuple[float, float] = RATIO,
) -> np.ndarray:
    """Random-resized-crop boxes ``(top, left, height, width)`` (int64, N x 4), one per image.

    The procedure of torchvision's ``RandomResizedCrop.get_params``, for all images at once:
    up to ten tries of an area ``U(scale) * H * W`` and an aspect ratio ``exp(U(log ratio))``,
    side lengths rounded half to even; the first try that fits the image wins and its corner
    is uniform over the positions that keep it inside; if none fits, the central crop of the
    whole image clamped to the ratio range.
    """
    heights = np.asarray(heights, dtype=np.int64)
    widths = np.asarray(widths, dtype=np.int64)
    n = len(heights)
    area = (heights * widths).astype(np.float64)[:, None]
    target = area * rng.uniform(scale[0], scale[1], size=(n, ATTEMPTS))
    aspect = np.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1]), size=(n, ATTEMPTS)))
    w = np.rint(np.sqrt(target * aspect)).astype(np.int64)
    h = np.rint(np.sqrt(target / aspect)).astype(np.int64)
    fits = (w > 0) & (w <= widths[:, None]) & (h > 0) & (h <= heights[:, None])
    first = fits.argmax(axis=1)
    found = fits[np.arange(n), first]
    h, w = h[np.arange(n), first], w[np.arange(n), first]
    fall_h, fall_w = central_fallback(heights, widths, ratio)
    h, w = np.where(found, h, fall_h), np.where(found, w, fall_w)
    corner = rng.random((n, 2))
    top = np.where(found, np.floor(corner[:, 0] * (heights - h + 1)), (heights - h) // 2)
    left = np.where(found, np.floor(corner[:, 1] * (widths - w + 1)), (widths - w) // 2)
    return np.stack([top.astype(np.int64), left.astype(np.int64), h, w], axis=1)


def central_fallback(
    heights: np.ndarray, widths: np.ndarray, ratio: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Size of torchvision's fallback crop: the whole image, clamped to the ratio range."""
    in_ratio = widths / heights
    lo, hi = min(ratio), max(ratio)
    h = np.where(in_ratio < lo, np.rint(widths / lo), heights).astype(np.int64)
    w = np.where(in_ratio > hi, np.rint(heights * hi), widths).astype(np.int64)
    return h, w


def center_crop_boxes(heights: np.ndarray, widths: np.ndarray, size: int) -> np.ndarray:
    """torchvision ``CenterCrop(size)`` boxes ``(top, left, size, size)`` (N x 4); every image
    must be at least ``size`` on both sides."""
    heights = np.asarray(heights, dtype=np.int64)
    widths = np.asarray(widths, dtype=np.int64)
    if len(heights) and (heights.min() < size or widths.min() < size):
        raise ValueError(f"images smaller than the {size}x{size} centre crop")
    top = np.rint((heights - size) / 2.0).astype(np.int64)
    left = np.rint((widths - size) / 2.0).astype(np.int64)
    full = np.full_like(heights, size)
    return np.stack([top, left, full, full], axis=1)


def resize_crops(
    crops: torch.Tensor, sizes: np.ndarray, flips: np.ndarray, size: int
) -> torch.Tensor:
    """Resize each crop to ``size x size`` and mirror it where ``flips``; float32 N x 3 x size x
    size on the 0-255 scale, rounded as a uint8 image is.

    ``crops`` is uint8 N x H x W x 3 on any device, crop ``n`` in ``[:h_n, :w_n]``; ``sizes``
    (N x 2) and ``flips`` (N) are on the host. Each crop goes through
    ``F.interpolate(mode='bilinear', antialias=True)``, torch's counterpart of PIL's bilinear
    resize that torchvision uses for tensors: on uint8 on the CPU (its fast path), on float32
    elsewhere.
    """
    on_cpu = crops.device.type == "cpu"
    out = []
    for k, ((h, w), flip) in enumerate(zip(np.asarray(sizes).tolist(), np.asarray(flips).tolist(),
                                           strict=True)):
        crop = crops[k : k + 1, :h, :w].permute(0, 3, 1, 2)  # a channels-last view
        resized = F.interpolate(crop if on_cpu else crop.float(), size=(size, size),
                                mode="bilinear", antialias=True, align_corners=False)
        resized = resized.float() if on_cpu else resized.round_().clamp_(0, 255)
        out.append((resized.flip(-1) if flip else resized).contiguous())
    return torch.cat(out)


def normalize(
    pixels: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]
) -> torch.Tensor:
    """``ToTensor`` + ``Normalize`` on a float or uint8 N x 3 x H x W batch of 0-255 values:
    ``(x / 255 - mean) / std`` in float32, in torchvision's order of operations."""
    x = pixels.float().div_(255)
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return x.sub_(m).div_(s)
