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
from collections.abc import Callable, Iterable, Sequence
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


WIDE_GRAY_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
"""Pillow's modes of 16-bit grayscale images (``I``: how Pillow may read a 16-bit PNG)."""


def rgb(img: Image.Image) -> Image.Image:
    """``img`` as 8-bit RGB. 16-bit grayscale (:data:`WIDE_GRAY_MODES`) is first scaled to
    8 bits (``round(v / 257)``, so 65535 -> 255), where ``convert`` alone would clip every
    value above 255; other images are converted as they are."""
    if img.mode in WIDE_GRAY_MODES:
        wide = np.asarray(img).astype(np.int64)
        img = Image.fromarray(np.clip((wide + 128) // 257, 0, 255).astype(np.uint8))
    return img.convert("RGB")


@dataclass(frozen=True)
class JpegBlobSource:
    """JPEG files concatenated into one uint8 blob; image i is blob[offsets[i]:offsets[i+1]]."""

    blob: np.ndarray
    offsets: np.ndarray
    origin: str = ""
    """What the blob holds, for messages (e.g. "the test images of 'x.npz'")."""
    side: int | None = None
    """The side of every (square) image, where the data set states one."""

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def image(self, i: int) -> Image.Image:
        raw = self.blob[self.offsets[i] : self.offsets[i + 1]].tobytes()
        try:
            return rgb(Image.open(io.BytesIO(raw)))
        except (OSError, SyntaxError, ValueError) as err:  # PIL's errors for unreadable data
            where = f" ({self.origin})" if self.origin else ""
            raise DataNotFoundError(
                f"cannot decode image {i} of its JPEG blob{where}: {err}") from None

    def decode(self, indices: Sequence[int]) -> ArraySource:
        """Decode the chosen images once into memory (cheap for 32x32 images); they must all
        have one size (``side`` where given, else the most common size among them)."""
        arrays = [np.asarray(self.image(int(i))) for i in indices]
        shapes = [a.shape[:2] for a in arrays]
        if self.side is not None:
            expected, basis = (self.side, self.side), "the size of the data set's images"
        else:
            expected = max(set(shapes), key=shapes.count, default=(0, 0))
            basis = "the size of most of them"
        for i, shape in zip(indices, shapes, strict=True):
            if shape != expected:
                size = f"{expected[1]}x{expected[0]}"
                raise DataNotFoundError(
                    f"image {int(i)} of {self.origin or 'its JPEG blob'} is {shape[1]}x{shape[0]} "
                    f"pixels, not {size} ({basis}): all images of a data set stored as a JPEG "
                    f"blob must have one size; resize them to {size} and write the file again"
                )
        if not arrays:
            return ArraySource(np.zeros((0, *expected, 3), dtype=np.uint8))
        return ArraySource(np.stack(arrays))


@dataclass(frozen=True)
class FileSource:
    """Image files on disk, opened lazily."""

    paths: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.paths)

    def image(self, i: int) -> Image.Image:
        try:
            with Image.open(self.paths[i]) as img:
                return rgb(img)
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


def enumerate_some(items: Iterable[str], most: int = 5, last: str = " and ") -> str:
    """``a, b and c`` (``last`` joins the last two); past ``most`` items ``a, ..., e and 3
    more``."""
    shown = list(items)
    rest = len(shown) - most
    if rest > 0:
        return f"{', '.join(shown[:most])} and {rest} more"
    return last.join(filter(None, [", ".join(shown[:-1]), *shown[-1:]]))
