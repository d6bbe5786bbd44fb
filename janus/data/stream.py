"""Class-incremental task streams: class order, T equal tasks, per-task loaders.

Labels are re-indexed by position in the class order, so task t owns the contiguous label
range ``task_labels(t)`` and heads can be concatenated in task order (InfLoRA protocol).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

from janus.data.base import DatasetSplits, ImageSet, load_dataset, per_class_subset
from janus.errors import ConfigError


def build_transforms(
    native_size: int | None,
    img_size: int,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    train: bool,
) -> T.Compose:
    """Standard augmentation: pad-crop + flip for small stored images (CIFAR-style), random
    resized crop + flip for photographs (InfLoRA's ImageNet-R pipeline); then normalise."""
    ops: list = []
    if native_size is not None:
        if native_size != img_size:
            ops.append(T.Resize(img_size))
        if train:
            ops += [
                T.RandomCrop(img_size, padding=img_size // 8, padding_mode="reflect"),
                T.RandomHorizontalFlip(),
            ]
    elif train:
        ops += [T.RandomResizedCrop(img_size), T.RandomHorizontalFlip()]
    else:
        ops += [T.Resize(img_size * 256 // 224), T.CenterCrop(img_size)]
    ops += [T.ToTensor(), T.Normalize(mean, std)]
    return T.Compose(ops)


class TransformedImages(Dataset):
    """An :class:`ImageSet` with a transform; labels are already re-indexed."""

    def __init__(self, images: ImageSet, labels: np.ndarray, transform: T.Compose) -> None:
        self.images = images
        self.labels = labels
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(self.images.image(i)), int(self.labels[i])


@dataclass
class Task:
    """One task: its index, its (re-indexed) labels and its train/test images."""

    index: int
    labels: range
    class_names: list[str]
    train: TransformedImages
    test: TransformedImages
    train_plain: TransformedImages
    """The training images with the test transform (for feature statistics, prototypes)."""


class ClassIncrementalStream:
    """Splits a data set into ``num_tasks`` equal tasks along a class order."""

    def __init__(
        self,
        splits: DatasetSplits,
        *,
        num_tasks: int,
        class_order: np.ndarray,
        img_size: int,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        batch_size: int,
        eval_batch_size: int,
        num_workers: int = 0,
        train_per_class: int | None = None,
        test_per_class: int | None = None,
        subset_seed: int = 0,
    ) -> None:
        n = len(class_order)
        if num_tasks < 1 or n % num_tasks:
            raise ConfigError(
                f"{n} classes cannot be split into {num_tasks} equal tasks: choose a task count "
                f"that divides {n} (or set data.num_classes to a multiple of {num_tasks})"
            )
        self.name = splits.name
        self.num_tasks = num_tasks
        self.class_order = np.asarray(class_order, dtype=np.int64)
        self.classes_per_task = n // num_tasks
        self.class_names = [splits.classes[c] for c in self.class_order]
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.num_workers = num_workers
        position = np.full(len(splits.classes), -1, dtype=np.int64)
        position[self.class_order] = np.arange(n)
        self._position = position
        self._train = self._select(splits.train, train_per_class, subset_seed)
        self._test = self._select(splits.test, test_per_class, subset_seed + 1)
        args = (splits.native_size, img_size, mean, std)
        self._train_tf = build_transforms(*args, train=True)
        self._test_tf = build_transforms(*args, train=False)

    @property
    def num_classes(self) -> int:
        return len(self.class_order)

    def _select(self, images: ImageSet, per_class: int | None, seed: int) -> ImageSet:
        """Images of the classes in the order (at most ``per_class`` each), labels re-indexed."""
        keep = np.flatnonzero(self._position[images.labels] >= 0)
        kept_labels = images.labels[keep]
        keep = keep[per_class_subset(kept_labels, per_class, seed)]
        chosen = images.subset(keep)
        return ImageSet(chosen.source, self._position[chosen.labels], chosen.index)

    def task_labels(self, t: int) -> range:
        if not 0 <= t < self.num_tasks:
            raise IndexError(f"task {t} outside 0..{self.num_tasks - 1}")
        c = self.classes_per_task
        return range(t * c, (t + 1) * c)

    def task(self, t: int) -> Task:
        labels = self.task_labels(t)

        def part(images: ImageSet) -> ImageSet:
            pos = np.flatnonzero((images.labels >= labels.start) & (images.labels < labels.stop))
            return images.subset(pos)

        train, test = part(self._train), part(self._test)
        return Task(
            index=t,
            labels=labels,
            class_names=self.class_names[labels.start : labels.stop],
            train=TransformedImages(train, train.labels, self._train_tf),
            test=TransformedImages(test, test.labels, self._test_tf),
            train_plain=TransformedImages(train, train.labels, self._test_tf),
        )

    def train_loader(self, task: Task, generator: torch.Generator) -> DataLoader:
        """Shuffled training batches; ``generator`` makes the order reproducible."""
        return DataLoader(
            task.train,
            batch_size=self.batch_size,
            shuffle=True,
            drop_last=len(task.train) > self.batch_size,
            generator=generator,
            num_workers=self.num_workers,
        )

    def test_loader(self, task: Task) -> DataLoader:
        return self.eval_loader(task.test)

    def eval_loader(self, images: TransformedImages) -> DataLoader:
        """Batches in stored order, for evaluation and feature statistics."""
        return DataLoader(images, batch_size=self.eval_batch_size, num_workers=self.num_workers)


def class_order(num_available: int, data_cfg, seed: int) -> np.ndarray:
    """Sorted label order or a seeded permutation, truncated to ``data_cfg.num_classes``."""
    if data_cfg.class_order == "sorted":
        order = np.arange(num_available)
    elif data_cfg.class_order == "permuted":
        s = seed if data_cfg.order_seed is None else data_cfg.order_seed
        order = np.random.default_rng(s).permutation(num_available)
    else:
        raise ConfigError(
            f"data.class_order must be 'sorted' or 'permuted', got {data_cfg.class_order!r}"
        )
    n = data_cfg.num_classes
    if n is not None:
        if not 1 <= n <= num_available:
            raise ConfigError(
                f"data.num_classes={n} but the data set has {num_available} classes"
            )
        order = order[:n]
    return order


def build_stream(cfg, seed: int) -> ClassIncrementalStream:
    """Load ``cfg.data.dataset`` and split it into tasks for the model in ``cfg.model``."""
    data = cfg.data
    splits = load_dataset(data, data.root)
    order = class_order(len(splits.classes), data, seed)
    return ClassIncrementalStream(
        splits,
        num_tasks=data.num_tasks,
        class_order=order,
        img_size=cfg.model.img_size,
        mean=tuple(cfg.model.mean),
        std=tuple(cfg.model.std),
        batch_size=data.batch_size,
        eval_batch_size=data.eval_batch_size,
        num_workers=data.num_workers,
        train_per_class=data.train_per_class,
        test_per_class=data.test_per_class,
        subset_seed=data.split_seed,
    )
