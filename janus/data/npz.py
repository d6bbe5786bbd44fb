"""Down-sampled ImageNet subsets stored as JPEG blobs in one ``.npz`` file.

Both files are the project's shared reference data (see ``../shared/data/README.md``):
``mini-imagenet-32`` (the 100 mini-ImageNet classes of Ravi & Larochelle, 500 train / 100
test images per class) and ``tiny-imagenet-32`` (177 Tiny-ImageNet classes disjoint from
mini-ImageNet, 500 train / 50 test per class), all 32x32 RGB re-encoded as JPEG. The ``npz``
data set reads any file in the same format (a user's own data, ``data.path``).
"""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np

from janus.core.errors import ConfigError, DataNotFoundError
from janus.data.base import (
    DataConfigLike,
    DatasetSplits,
    ImageSet,
    JpegBlobSource,
    Loader,
    missing,
    register_dataset,
)

KEYS = ("classes", *(f"{s}_{p}" for s in ("train", "test") for p in ("jpeg", "offsets", "labels")))


def _layout(filename: str) -> str:
    return (
        f"{filename} directly in the data root, an .npz (np.load, no pickle) holding "
        "'classes' (wnid strings, index = label), '{train,test}_jpeg' (uint8, JPEG files "
        "concatenated), '{train,test}_offsets' (int64, N+1 offsets: image i is "
        "jpeg[offsets[i]:offsets[i+1]]) and '{train,test}_labels' (integers, N)"
    )


MINI_FILE = "mini-imagenet-32.npz"
TINY_FILE = "tiny-imagenet-32-disjoint.npz"
MINI_LAYOUT = _layout(MINI_FILE)
TINY_LAYOUT = _layout(TINY_FILE)


NPZ_LAYOUT = (
    "data.path=FILE (absolute, or relative to the current folder or to the data root): an "
    "'.npz' in the shared JPEG-blob format: " + _layout("FILE").split(", an .npz ", 1)[1]
)


def read_arrays(name: str, path: Path, layout: str) -> dict[str, np.ndarray]:
    """The :data:`KEYS` arrays of a JPEG-blob ``.npz``, with one error naming the file for a
    file that is not a readable ``.npz`` (truncated, not a zip, pickled objects)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            absent = [k for k in KEYS if k not in z.files]
            if absent:
                raise DataNotFoundError(
                    f"data set {name!r}: {str(path)!r} lacks the keys {', '.join(absent)}. "
                    f"Expected: {layout}"
                )
            return {k: z[k] for k in KEYS}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise DataNotFoundError(
            f"data set {name!r}: {str(path)!r} is not a readable .npz file ({type(err).__name__}: "
            f"{err}); it may be truncated or still downloading: copy it again. Expected: {layout}"
        ) from None


def load_npz(name: str, path: Path, layout: str, native_size: int | None = 32) -> DatasetSplits:
    """Read one JPEG-blob ``.npz``; images stay encoded until ``ImageSet.subset`` decodes them.
    ``native_size=None`` takes the side of the first training image (None if not square)."""
    if not path.is_file():
        raise missing(name, path, layout)
    arrays = read_arrays(name, path, layout)
    classes = [str(c) for c in arrays["classes"]]
    splits = {}
    for split in ("train", "test"):
        blob = arrays[f"{split}_jpeg"]
        offsets = arrays[f"{split}_offsets"].astype(np.int64)
        labels = arrays[f"{split}_labels"].astype(np.int64)
        bad_labels = labels.size > 0 and (labels.min() < 0 or labels.max() >= len(classes))
        if len(offsets) != len(labels) + 1 or offsets[-1] > len(blob) or bad_labels:
            raise DataNotFoundError(
                f"data set {name!r}: {str(path)!r} is inconsistent: {split} has "
                f"{len(labels)} labels and {len(offsets)} offsets (want one more, the last "
                f"at most the blob size {len(blob)}); labels must lie in [0, {len(classes)})"
            )
        if not len(labels):
            raise DataNotFoundError(
                f"data set {name!r}: {str(path)!r} has no {split} images ({split}_labels is "
                f"empty); a data set needs train and test images: write the file again with "
                f"both. Expected: {layout}"
            )
        splits[split] = ImageSet(
            JpegBlobSource(blob, offsets, f"the {split} images of {str(path)!r}"), labels)
    if native_size is None:
        width, height = splits["train"].image(0).size
        native_size = width if width == height else None
    train, test = (ImageSet(replace(part.source, side=native_size), part.labels)
                   for part in (splits["train"], splits["test"]))
    return DatasetSplits(name, classes, train, test, native_size=native_size)


def register_shared_npz(name: str, description: str, file: str, layout: str) -> Loader:
    """Register the shared data set ``name``: the JPEG-blob ``file`` in the data root."""

    def load(cfg: DataConfigLike, root: Path | None) -> DatasetSplits:
        assert root is not None
        return load_npz(cfg.dataset, root / file, layout)

    return register_dataset(name, description=description, expected_layout=layout)(load)


load_mini_imagenet_32 = register_shared_npz(
    "mini-imagenet-32", "mini-ImageNet, 100 classes at 32x32 (shared JPEG-blob .npz)",
    MINI_FILE, MINI_LAYOUT)
"""mini-ImageNet (Ravi & Larochelle's 100 classes) down-sampled to 32x32."""

load_tiny_imagenet_32 = register_shared_npz(
    "tiny-imagenet-32", "Tiny-ImageNet classes not in mini-ImageNet (177) at 32x32 (shared .npz)",
    TINY_FILE, TINY_LAYOUT)
"""Tiny-ImageNet minus the mini-ImageNet classes, down-sampled from 64x64 to 32x32."""


@register_dataset(
    "npz",
    description="your own images: a JPEG-blob .npz in the shared format (data.path=FILE)",
    expected_layout=NPZ_LAYOUT,
    needs_root=False,
)
def load_npz_file(cfg: DataConfigLike, root: Path | None) -> DatasetSplits:
    """Any ``.npz`` in the shared JPEG-blob format, named by ``cfg.path``; its images are
    treated as stored images of their own (square) size, so the ``pil`` pipeline serves them."""
    if not cfg.path:
        raise ConfigError(f"data set 'npz' needs data.path=FILE (--set data.path=FILE). "
                          f"Expected: {NPZ_LAYOUT}")
    path = Path(cfg.path).expanduser()
    if not path.is_absolute() and not path.is_file() and root is not None:
        path = root / path
    return load_npz(cfg.dataset, path, NPZ_LAYOUT, native_size=None)
