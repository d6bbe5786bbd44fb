"""Procedurally generated images: offline, deterministic, class structure that a small ViT
can learn and that sequential fine-tuning forgets.

Each class is a recipe: a background and a foreground colour drawn from a small shared
palette, an oriented sinusoidal grating (angle, frequency) and a Gaussian blob at a
class-specific place. A sample draws a random grating phase, jitters the blob position and
the colours and adds pixel noise. Classes share palette colours and nearby orientations,
so features that separate one task's classes are reused, and overwritten, by later tasks.
The generator seed is fixed (``GENERATOR_SEED``) so the data set, like a real one, does not
change with the run seed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from janus.data.base import ArraySource, DataConfigLike, DatasetSplits, ImageSet, register_dataset

GENERATOR_SEED = 20261123
SIZE = 32
PALETTE = np.array(
    [[230, 60, 50], [40, 150, 230], [240, 200, 40], [60, 190, 90], [150, 70, 200], [235, 235, 235]],
    dtype=np.float32,
)


def _class_recipes(num_classes: int, rng: np.random.Generator) -> list[dict]:
    recipes = []
    for _ in range(num_classes):
        bg, fg = rng.choice(len(PALETTE), size=2, replace=False)
        recipes.append(
            {
                "bg": PALETTE[bg],
                "fg": PALETTE[fg],
                "angle": rng.uniform(0, np.pi),
                "freq": rng.uniform(1.5, 4.0),
                "blob": rng.uniform(8, SIZE - 8, size=2),
                "radius": rng.uniform(3.0, 6.0),
            }
        )
    return recipes


def _render(recipe: dict, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` samples of one class as uint8 (count, SIZE, SIZE, 3)."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) / SIZE
    phase = rng.uniform(0, 2 * np.pi, size=(count, 1, 1))
    angle = recipe["angle"] + rng.normal(0, 0.08, size=(count, 1, 1))
    proj = np.cos(angle) * xx + np.sin(angle) * yy
    grating = 0.5 + 0.5 * np.sin(2 * np.pi * recipe["freq"] * proj + phase)
    centre = recipe["blob"] + rng.normal(0, 2.0, size=(count, 2))
    d2 = (xx * SIZE - centre[:, 0, None, None]) ** 2 + (yy * SIZE - centre[:, 1, None, None]) ** 2
    blob = np.exp(-d2 / (2 * recipe["radius"] ** 2))
    mix = np.clip(0.6 * grating + 0.8 * blob, 0, 1)[..., None]
    jitter = rng.normal(0, 12, size=(count, 2, 1, 1, 3))
    img = (1 - mix) * (recipe["bg"] + jitter[:, 0]) + mix * (recipe["fg"] + jitter[:, 1])
    img += rng.normal(0, 18, size=img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def generate(num_classes: int, train_per_class: int, test_per_class: int) -> DatasetSplits:
    """The synthetic data set with the given sizes (same sizes -> same images)."""
    rng = np.random.default_rng(GENERATOR_SEED)
    recipes = _class_recipes(num_classes, rng)
    per_class = train_per_class + test_per_class
    images = np.stack([_render(r, per_class, rng) for r in recipes])
    labels = np.repeat(np.arange(num_classes), per_class).reshape(num_classes, per_class)
    split = {
        "train": (images[:, :train_per_class], labels[:, :train_per_class]),
        "test": (images[:, train_per_class:], labels[:, train_per_class:]),
    }
    sets = {
        name: ImageSet(ArraySource(x.reshape(-1, SIZE, SIZE, 3)), y.reshape(-1).astype(np.int64))
        for name, (x, y) in split.items()
    }
    classes = [f"synthetic-{c:03d}" for c in range(num_classes)]
    return DatasetSplits("synthetic", classes, sets["train"], sets["test"], native_size=SIZE)


@register_dataset(
    "synthetic",
    description="procedurally generated 32x32 images (offline, deterministic)",
    needs_root=False,
)
def load_synthetic(cfg: DataConfigLike, root: Path | None) -> DatasetSplits:
    """Sizes come from ``data.num_classes`` / ``train_per_class`` / ``test_per_class``."""
    return generate(
        cfg.num_classes or 20, cfg.train_per_class or 64, cfg.test_per_class or 32
    )
