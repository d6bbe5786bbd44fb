"""The device pipeline's augmentation against torchvision: crop sampling, resampling, eval view."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from scipy.stats import ks_2samp
from torchvision import transforms as T
from torchvision.transforms import functional as TF

from janus.data import augment
from janus.data.cache import pack
from janus.data.pipeline import DeviceImages, gather_crops

SHAPES = [(256, 341), (256, 256), (341, 256), (256, 1100)]
"""Cached ImageNet-R-like sizes; the last is so wide that the central fallback matters."""


def torchvision_boxes(h: int, w: int, n: int, seed: int) -> np.ndarray:
    torch.manual_seed(seed)
    img = torch.zeros(1, h, w)
    return np.array([T.RandomResizedCrop.get_params(img, list(augment.SCALE), list(augment.RATIO))
                     for _ in range(n)])


def summary(boxes: np.ndarray, h: int, w: int) -> dict[str, np.ndarray]:
    top, left, bh, bw = boxes.T
    return {
        "area": bh * bw / (h * w),
        "log_ratio": np.log(bw / bh),
        "top": (top + 0.5) / (h - bh + 1),
        "left": (left + 0.5) / (w - bw + 1),
    }


@pytest.mark.parametrize(("h", "w"), SHAPES)
def test_crop_boxes_follow_torchvisions_distribution(h, w):
    n = 20000
    ours = augment.resized_crop_boxes(np.full(n, h), np.full(n, w), np.random.default_rng(0))
    theirs = torchvision_boxes(h, w, n, seed=0)
    assert (ours[:, 0] + ours[:, 2] <= h).all() and (ours[:, 1] + ours[:, 3] <= w).all()
    assert (ours >= 0).all() and (ours[:, 2:] > 0).all()
    a, b = summary(ours, h, w), summary(theirs, h, w)
    for key in a:
        # two samples of 20,000 from one law: D is about 0.01; a wrong law gives D > 0.05
        assert ks_2samp(a[key], b[key]).statistic < 0.025, key
    whole = [np.mean((x[:, 2] == h) & (x[:, 3] == w)) for x in (ours, theirs)]
    assert abs(whole[0] - whole[1]) < 0.01


def test_sampling_the_area_not_the_side_would_be_caught():
    """The distribution test has power: sides uniform instead of areas is far off."""
    n, h, w = 20000, 256, 341
    wrong_area = np.random.default_rng(1).uniform(math.sqrt(0.08), 1, n) ** 2
    theirs = summary(torchvision_boxes(h, w, n, seed=2), h, w)["area"]
    assert ks_2samp(wrong_area, theirs).statistic > 0.05


def scalar_reference(h: int, w: int, u_area, u_ratio, corner) -> tuple[tuple[int, ...], bool]:
    """torchvision's ``RandomResizedCrop.get_params`` for one image, on given draws; and
    whether the central fallback was taken."""
    area = h * w
    lo, hi = math.log(3 / 4), math.log(4 / 3)
    for k in range(10):
        target = area * (0.08 + (1 - 0.08) * u_area[k])
        aspect = math.exp(lo + (hi - lo) * u_ratio[k])
        cw, ch = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
        if 0 < cw <= w and 0 < ch <= h:
            return (int(corner[0] * (h - ch + 1)), int(corner[1] * (w - cw + 1)), ch, cw), False
    in_ratio = w / h
    if in_ratio < 3 / 4:
        cw, ch = w, int(round(w / (3 / 4)))
    elif in_ratio > 4 / 3:
        ch, cw = h, int(round(h * 4 / 3))
    else:
        cw, ch = w, h
    return ((h - ch) // 2, (w - cw) // 2, ch, cw), True


def test_crop_boxes_equal_a_scalar_reference_on_the_same_draws():
    rng = np.random.default_rng(7)
    heights = rng.integers(40, 600, 500)
    widths = np.where(rng.random(500) < 0.2, heights * 4, rng.integers(40, 600, 500))
    boxes = augment.resized_crop_boxes(heights, widths, np.random.default_rng(3))
    draws = np.random.default_rng(3)  # the same draws, in the function's order
    u_area = draws.uniform(0.08, 1.0, (500, 10))
    u_ratio = draws.uniform(math.log(3 / 4), math.log(4 / 3), (500, 10))
    corners = draws.random((500, 2))
    u_area = (u_area - 0.08) / 0.92
    u_ratio = (u_ratio - math.log(3 / 4)) / (math.log(4 / 3) - math.log(3 / 4))
    fallbacks = 0
    for i in range(500):
        ref, fell_back = scalar_reference(int(heights[i]), int(widths[i]), u_area[i], u_ratio[i],
                                          corners[i])
        assert tuple(boxes[i]) == ref, i
        fallbacks += fell_back
    assert fallbacks > 0  # the central fallback was exercised


def test_center_crop_boxes_equal_torchvision():
    rng = np.random.default_rng(0)
    for h, w in [(256, 341), (257, 300), (256, 256), (300, 257)]:
        img = torch.from_numpy(rng.integers(0, 255, (3, h, w), dtype=np.uint8))
        top, left, ch, cw = augment.center_crop_boxes(np.array([h]), np.array([w]), 224)[0]
        assert torch.equal(img[:, top : top + ch, left : left + cw], TF.center_crop(img, [224]))
    with pytest.raises(ValueError, match="smaller"):
        augment.center_crop_boxes(np.array([100]), np.array([300]), 224)


def smooth_image(h: int, w: int, seed: int) -> np.ndarray:
    """A photograph-like image: smooth colour fields plus mild noise."""
    rng = np.random.default_rng(seed)
    low = rng.integers(0, 255, (h // 16 + 2, w // 16 + 2, 3), dtype=np.uint8)
    up = np.asarray(Image.fromarray(low).resize((w, h), Image.BICUBIC), dtype=np.float64)
    return np.clip(up + rng.normal(0, 4, up.shape), 0, 255).astype(np.uint8)


def test_resize_crops_resizes_each_crop_alone_and_flips():
    """Crops of different sizes sharing one padded array are each resized as if alone
    (antialiased bilinear, the float path within rounding of the uint8 one), then mirrored."""
    decoded = pack([smooth_image(60, 80, s) for s in range(4)])
    boxes = np.array([[3, 5, 20, 31], [0, 0, 60, 80], [10, 40, 44, 17], [7, 7, 9, 9]])
    crops = torch.from_numpy(gather_crops(decoded, np.arange(4), boxes))
    flips = np.array([False, True, False, True])
    out = augment.resize_crops(crops, boxes[:, 2:], flips, 32)
    assert out.shape == (4, 3, 32, 32) and out.dtype == torch.float32
    for k, (top, left, h, w) in enumerate(boxes):
        crop = torch.from_numpy(decoded.array(k)[top : top + h, left : left + w].copy())
        ref = F.interpolate(crop.permute(2, 0, 1)[None].float(), size=(32, 32), mode="bilinear",
                            antialias=True, align_corners=False)[0]
        if flips[k]:
            ref = ref.flip(-1)
        assert (out[k] - ref).abs().max() <= 1.0  # the uint8 fast path rounds
        assert torch.equal(out[k], out[k].round())


def test_training_crops_match_torchvisions_pil_resized_crop():
    """The same box through torchvision's PIL ``resized_crop`` and the device path: equal
    within one grey level (measured: mean |diff| 0 to 0.003, max 1 of 255)."""
    img = smooth_image(256, 341, 0)
    decoded = pack([img])
    pil = Image.fromarray(img)
    for top, left, h, w in [(10, 20, 150, 180), (0, 0, 256, 341), (30, 40, 90, 70)]:
        box = np.array([[top, left, h, w]])
        crops = torch.from_numpy(gather_crops(decoded, np.array([0]), box))
        ours = augment.resize_crops(crops, box[:, 2:], np.array([False]), 224)[0]
        theirs = torch.from_numpy(np.array(TF.resized_crop(pil, top, left, h, w, [224, 224])))
        diff = (ours - theirs.permute(2, 0, 1).float()).abs()
        assert diff.mean() < 0.1 and diff.max() <= 1, (h, w, float(diff.mean()))


def test_evaluation_view_equals_torchvisions_test_transform_exactly():
    """Resize(256) in the cache + centre crop + normalise on the device equals torchvision's
    ``Resize(256), CenterCrop(224), ToTensor, Normalize`` bit for bit."""
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    originals = [smooth_image(400, 500, 0), smooth_image(333, 250, 1), smooth_image(120, 90, 2)]
    decoded = pack([np.asarray(TF.resize(Image.fromarray(a), 256)) for a in originals])
    images = DeviceImages(decoded, np.arange(3), np.arange(3), train=False, size=224,
                          mean=mean, std=std)
    reference = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(), T.Normalize(mean, std)])
    for i, a in enumerate(originals):
        ours, label = images[i]
        assert label == i and torch.equal(ours, reference(Image.fromarray(a)))


def test_normalize_is_totensor_then_normalize():
    x = torch.randint(0, 256, (2, 3, 5, 5), dtype=torch.uint8)
    ref = T.Normalize((0.5, 0.4, 0.3), (0.2, 0.3, 0.4))(x.float() / 255)
    assert torch.equal(augment.normalize(x, (0.5, 0.4, 0.3), (0.2, 0.3, 0.4)), ref)
