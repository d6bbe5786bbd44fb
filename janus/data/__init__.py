"""Data sets and class-incremental task streams."""

from janus.data import (
    cifar,  # noqa: F401  (registers cifar100)
    folders,  # noqa: F401  (registers imagenet-r/-a/-100, domainnet, cub200)
    npz,  # noqa: F401  (registers mini-imagenet-32, tiny-imagenet-32)
    synthetic,  # noqa: F401  (registers the data set)
)
from janus.data.base import DATASETS, load_dataset
from janus.data.stream import ClassIncrementalStream, Task, build_stream

__all__ = ["DATASETS", "ClassIncrementalStream", "Task", "build_stream", "load_dataset"]
