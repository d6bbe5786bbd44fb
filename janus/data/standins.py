"""Stand-in photographs for benchmarks and checks where the real data set is absent: JPEGs of
ImageNet-R's typical size (500x400, about 42 KB at quality 90) in an ImageNet-R-shaped tree,
so that the real loaders, the decoded-image cache and the trainer run on them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

PHOTO = (500, 400)
"""Width and height of a stand-in photograph."""


def stand_in_photos(root: Path, per_class: int, classes: int = 10, seed: int = 0) -> None:
    """``root/imagenet-r/<wnid>/<k>.jpg``, ``classes`` folders of ``per_class`` images: smooth
    colour fields with texture, 500x400."""
    rng = np.random.default_rng(seed)
    w, h = PHOTO
    for c in range(classes):
        folder = Path(root) / "imagenet-r" / f"n{c:08d}"
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(per_class):
            low = rng.integers(0, 255, (h // 25, w // 25, 3), dtype=np.uint8)
            field = np.asarray(Image.fromarray(low).resize((w, h), Image.BICUBIC), np.float32)
            texture = rng.normal(0, 2.5, (h, w, 1))  # about 42 KB a file
            pixels = np.clip(field + texture, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{k}.jpg", quality=90)
