"""What identifies the data a run used: SHA-256 digests of its class list and of its split.

Stored in every record (``record["data"]``), so a table cell names the exact class list and
train/test split behind it (ImageNet-100 class lists, for instance, differ between code
bases), and a run is not reused or resumed on data that changed under the same config (for
image files: their names, sizes and modification times; for ``.npz`` data: the bytes).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from janus.data.base import ArraySource, DatasetSplits, FileSource, ImageSet, JpegBlobSource
from janus.data.cache import file_stamp


def image_set_digest(images: ImageSet) -> str:
    """SHA-256 of one split: per image its label and, for files, the last two path
    components (``<class>/<file>``: independent of where the data root is) with the file's
    size and modification time (:func:`janus.data.cache.file_stamp`, as the image cache keys
    them: an image replaced under the same name changes the digest, a copy that keeps the
    times, ``cp -p`` or ``rsync -t``, does not), for JPEG blobs and decoded arrays the bytes
    themselves."""
    h = hashlib.sha256(np.ascontiguousarray(images.labels, dtype=np.int64).tobytes())
    if images.index is not None:
        h.update(np.ascontiguousarray(images.index, dtype=np.int64).tobytes())
    source = images.source
    if isinstance(source, FileSource):
        for p in source.paths:
            h.update(f"{'/'.join(Path(p).parts[-2:])}\0{file_stamp(p)}\n".encode())
    elif isinstance(source, JpegBlobSource):
        h.update(np.ascontiguousarray(source.offsets, dtype=np.int64).tobytes())
        h.update(memoryview(np.ascontiguousarray(source.blob)))
    elif isinstance(source, ArraySource):
        h.update(memoryview(np.ascontiguousarray(source.pixels)))
    else:
        raise TypeError(f"no digest for image source {type(source).__name__}")
    return h.hexdigest()


def data_fingerprint(splits: DatasetSplits, order: np.ndarray) -> dict[str, Any]:
    """``classes_sha256`` (the class names in ``order``, one per line), ``split_sha256`` (the
    train and test splits of the whole data set) and the image counts."""
    names = "\n".join(splits.classes[int(c)] for c in order)
    split = hashlib.sha256(
        f"{image_set_digest(splits.train)}\n{image_set_digest(splits.test)}".encode())
    return {
        "classes_sha256": hashlib.sha256(names.encode()).hexdigest(),
        "split_sha256": split.hexdigest(),
        "num_classes": len(order),
        "dataset_train_images": len(splits.train),
        "dataset_test_images": len(splits.test),
    }
