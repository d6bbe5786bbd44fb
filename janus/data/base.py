"""Image sets, data-set splits and the data-set registry.

Every data set loader returns a :class:`DatasetSplits`: class identifiers (label = index)
and a train and a test :class:`ImageSet`. An image set holds integer labels and an
:class:`ImageSource` that yields PIL images on demand, so that decoded arrays (synthetic
data), concatenated JPEG blobs (the shared ``.npz`` files) and image files on disk
(ImageNet-R, DomainNet, ...) all flow through the same transforms and loaders.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from janus.core.errors import ConfigError, DataNotFoundError

DATA_ENV = "JANUS_DATA"


class ImageSource(Protocol):
    """Random access to the images of one split, by position."""

    def __len__(self) -> int: ...

    def image(self, i: int) -> Image.Image: ...


@dataclass(frozen=True)
class ArraySource:
    """Decoded images in one uint8 array of shape (N, H, W, 3)."""

    pixels: np.ndarray

    def __len__(self) -> int:
        return len(self.pixels)

    def image(self, i: int) -> Image.Image:
        return Image.fromarray(self.pixels[i])


@dataclass(frozen=True)
class JpegBlobSource:
    """JPEG files concatenated into one uint8 blob; image i is blob[offsets[i]:offsets[i+1]]."""

    blob: np.ndarray
    offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def image(self, i: int) -> Image.Image:
        raw = self.blob[self.offsets[i] : self.offsets[i + 1]].tobytes()
        try:
            return Image.open(io.BytesIO(raw)).convert("RGB")
        except (OSError, SyntaxError, ValueError) as err:  # PIL's errors for unreadable data
            raise DataNotFoundError(f"cannot decode image {i} of its JPEG blob: {err}") from None

    def decode(self, indices: Sequence[int]) -> ArraySource:
        """Decode the chosen images once into memory (cheap for 32x32 images)."""
        return ArraySource(np.stack([np.asarray(self.image(int(i))) for i in indices]))


@dataclass(frozen=True)
class FileSource:
    """Image files on disk, opened lazily."""

    paths: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.paths)

    def image(self, i: int) -> Image.Image:
        try:
            with Image.open(self.paths[i]) as img:
                return img.convert("RGB")
        except (OSError, SyntaxError, ValueError) as err:  # PIL's errors for unreadable files
            raise DataNotFoundError(f"cannot read image {self.paths[i]!r}: {err}") from None


@dataclass(frozen=True)
class ImageSet:
    """Labelled images of one split; ``index`` selects a subset of ``source``."""

    source: ImageSource
    labels: np.ndarray
    index: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.source) if self.index is None else len(self.index)
        if len(self.labels) != n:
            raise ValueError(f"{len(self.labels)} labels for {n} images")

    def __len__(self) -> int:
        return len(self.labels)

    def image(self, i: int) -> Image.Image:
        j = i if self.index is None else int(self.index[i])
        return self.source.image(j)

    def subset(self, positions: np.ndarray) -> ImageSet:
        """The images at ``positions`` (positions into this set), decoded if they are blobs."""
        positions = np.asarray(positions, dtype=np.int64)
        absolute = positions if self.index is None else self.index[positions]
        labels = self.labels[positions]
        if isinstance(self.source, JpegBlobSource):
            return ImageSet(self.source.decode(absolute), labels)
        return ImageSet(self.source, labels, absolute)


@dataclass(frozen=True)
class DatasetSplits:
    """A loaded data set: ``classes[label]`` identifies each class."""

    name: str
    classes: list[str]
    train: ImageSet
    test: ImageSet
    native_size: int | None = None
    """Side of the stored square images (e.g. 32), or None for full-size photographs."""


Loader = Callable[["DataConfigLike", "Path | None"], DatasetSplits]


class DataConfigLike(Protocol):
    """The fields of :class:`janus.core.config.DataConfig` that loaders may read."""

    dataset: str
    num_classes: int | None
    train_per_class: int | None
    test_per_class: int | None
    split_seed: int
    path: str | None
    split: str


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    loader: Loader
    needs_root: bool
    description: str
    expected_layout: str
    photographs: bool = False
    """Full-size photographs (served by the ``device`` pipeline under ``data.pipeline=auto``)."""


DATASETS: dict[str, DatasetEntry] = {}


def register_dataset(
    name: str,
    *,
    description: str,
    expected_layout: str = "",
    needs_root: bool = True,
    photographs: bool = False,
) -> Callable[[Loader], Loader]:
    """Register a loader ``fn(cfg, root) -> DatasetSplits`` under ``name``."""

    def wrap(fn: Loader) -> Loader:
        if name in DATASETS:
            raise ValueError(f"data set {name!r} registered twice")
        DATASETS[name] = DatasetEntry(name, fn, needs_root, description, expected_layout,
                                      photographs)
        return fn

    return wrap


def resolve_root(root: str | os.PathLike | None) -> Path | None:
    """The data root: the explicit value, else ``$JANUS_DATA``, else None."""
    value = root if root not in (None, "") else os.environ.get(DATA_ENV)
    return Path(value).expanduser() if value else None


def load_dataset(cfg: DataConfigLike, root: str | os.PathLike | None) -> DatasetSplits:
    """Load ``cfg.dataset`` from ``root`` (or ``$JANUS_DATA``), with clear errors."""
    entry = DATASETS.get(cfg.dataset)
    if entry is None:
        raise ConfigError(
            f"unknown data set {cfg.dataset!r}; known: {', '.join(sorted(DATASETS))}"
        )
    path = resolve_root(root)
    if entry.needs_root:
        if path is None:
            raise DataNotFoundError(
                f"data set {cfg.dataset!r} needs a data root: pass --data-root DIR or set "
                f"{DATA_ENV}=DIR. Expected layout under DIR: {entry.expected_layout}"
            )
        if not path.is_dir():
            raise DataNotFoundError(
                f"data root {str(path)!r} is not a directory (from --data-root or "
                f"{DATA_ENV}). Expected layout under it: {entry.expected_layout}"
            )
    return entry.loader(cfg, path)


def missing(dataset: str, what: Path, layout: str) -> DataNotFoundError:
    """The error for a data set whose files are not where they should be."""
    return DataNotFoundError(
        f"data set {dataset!r}: {str(what)!r} not found. Expected layout under the data root: "
        f"{layout}. Point --data-root or {DATA_ENV} at the folder that contains it."
    )


def per_class_subset(labels: np.ndarray, limit: int | None, seed: int) -> np.ndarray:
    """Positions of at most ``limit`` images per class, drawn with ``seed`` (all if None)."""
    positions = np.arange(len(labels))
    if limit is None:
        return positions
    rng = np.random.default_rng(seed)
    keep = [
        np.sort(rng.permutation(np.flatnonzero(labels == c))[:limit]) for c in np.unique(labels)
    ]
    return np.sort(np.concatenate(keep)) if keep else positions[:0]
