"""Down-sampled ImageNet subsets stored as JPEG blobs in one ``.npz`` file.

Both files are the project's shared reference data (see ``../shared/data/README.md``):
``mini-imagenet-32`` (the 100 mini-ImageNet classes of Ravi & Larochelle, 500 train / 100
test images per class) and ``tiny-imagenet-32`` (177 Tiny-ImageNet classes disjoint from
mini-ImageNet, 500 train / 50 test per class), all 32x32 RGB re-encoded as JPEG.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from janus.data.base import (
    DataConfigLike,
    DatasetSplits,
    ImageSet,
    JpegBlobSource,
    missing,
    register_dataset,
)
from janus.errors import DataNotFoundError

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


def load_npz(name: str, path: Path, layout: str) -> DatasetSplits:
    """Read one JPEG-blob ``.npz``; images stay encoded until ``ImageSet.subset`` decodes them."""
    if not path.is_file():
        raise missing(name, path, layout)
    with np.load(path, allow_pickle=False) as z:
        absent = [k for k in KEYS if k not in z.files]
        if absent:
            raise DataNotFoundError(
                f"data set {name!r}: {str(path)!r} lacks the keys {', '.join(absent)}. "
                f"Expected: {layout}"
            )
        arrays = {k: z[k] for k in KEYS}
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
        splits[split] = ImageSet(JpegBlobSource(blob, offsets), labels)
    return DatasetSplits(name, classes, splits["train"], splits["test"], native_size=32)


@register_dataset(
    "mini-imagenet-32",
    description="mini-ImageNet, 100 classes at 32x32 (shared JPEG-blob .npz)",
    expected_layout=MINI_LAYOUT,
)
def load_mini_imagenet_32(cfg: DataConfigLike, root: Path | None) -> DatasetSplits:
    """mini-ImageNet (Ravi & Larochelle's 100 classes) down-sampled to 32x32."""
    assert root is not None
    return load_npz(cfg.dataset, root / MINI_FILE, MINI_LAYOUT)


@register_dataset(
    "tiny-imagenet-32",
    description="Tiny-ImageNet classes not in mini-ImageNet (177) at 32x32 (shared .npz)",
    expected_layout=TINY_LAYOUT,
)
def load_tiny_imagenet_32(cfg: DataConfigLike, root: Path | None) -> DatasetSplits:
    """Tiny-ImageNet minus the mini-ImageNet classes, down-sampled from 64x64 to 32x32."""
    assert root is not None
    return load_npz(cfg.dataset, root / TINY_FILE, TINY_LAYOUT)
