"""CIFAR-100 (Krizhevsky 2009) in the python-pickle format that torchvision downloads.

Read here rather than through ``torchvision.datasets.CIFAR100``, which checks md5 sums of
the files. The pickles are opened with an unpickler that only builds numpy arrays and
plain containers, so a foreign file cannot run code.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from janus.core.errors import DataNotFoundError
from janus.data.base import (
    ArraySource,
    DataConfigLike,
    DatasetSplits,
    ImageSet,
    missing,
    register_dataset,
)

CIFAR_LAYOUT = (
    "cifar-100-python/train, cifar-100-python/test and cifar-100-python/meta (the python "
    "version of CIFAR-100, as torchvision downloads it). To get it, run on a machine with "
    "internet: python -c \"import torchvision; torchvision.datasets.CIFAR100('DIR', "
    'download=True)" and use DIR as the data root'
)

_ALLOWED = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("_codecs", "encode"),
}


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and builtin containers, nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def read_pickle(path: Path) -> dict[str, Any]:
    """One CIFAR pickle (Python 2 era, hence latin1 for its byte strings)."""
    if not path.is_file():
        raise missing("cifar100", path, CIFAR_LAYOUT)
    try:
        with open(path, "rb") as f:
            content = _ArrayUnpickler(f, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError) as e:
        raise DataNotFoundError(f"{str(path)!r} is not a CIFAR-100 pickle: {e}") from e
    if not isinstance(content, dict):
        raise DataNotFoundError(f"{str(path)!r} is not a CIFAR-100 pickle (no dict inside)")
    return content


def read_split(path: Path, num_classes: int) -> ImageSet:
    """The images (N x 3072 uint8, channel planes) and fine labels of one split file."""
    content = read_pickle(path)
    if "data" not in content or "fine_labels" not in content:
        raise DataNotFoundError(f"{str(path)!r} lacks the 'data' or 'fine_labels' entry")
    data = np.asarray(content["data"])
    labels = np.asarray(content["fine_labels"], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataNotFoundError(
            f"{str(path)!r}: 'data' is {data.dtype} {data.shape}, want uint8 (N, 3072)"
        )
    if len(labels) != len(data) or np.any((labels < 0) | (labels >= num_classes)):
        raise DataNotFoundError(
            f"{str(path)!r}: want {len(data)} fine labels in [0, {num_classes}), "
            f"found {len(labels)}"
        )
    pixels = np.ascontiguousarray(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return ImageSet(ArraySource(pixels), labels)


@register_dataset(
    "cifar100",
    description="CIFAR-100, 100 classes at 32x32 (python pickles as torchvision downloads)",
    expected_layout=CIFAR_LAYOUT,
)
def load_cifar100(cfg: DataConfigLike, root: Path | None) -> DatasetSplits:
    """CIFAR-100 (Krizhevsky, "Learning Multiple Layers of Features from Tiny Images",
    2009): 500 train / 100 test images per fine class; classes are ``fine_label_names``."""
    assert root is not None
    folder = root / "cifar-100-python"
    if not folder.is_dir():
        raise missing(cfg.dataset, folder, CIFAR_LAYOUT)
    meta = read_pickle(folder / "meta")
    if "fine_label_names" not in meta:
        raise DataNotFoundError(f"{str(folder / 'meta')!r} lacks 'fine_label_names'")
    classes = [str(c) for c in meta["fine_label_names"]]
    train, test = (read_split(folder / split, len(classes)) for split in ("train", "test"))
    return DatasetSplits(cfg.dataset, classes, train, test, native_size=32)
