"""Class-incremental task streams: class order, T equal tasks, per-task loaders.

Labels are re-indexed by position in the class order, so task t owns the contiguous label
range ``task_labels(t)`` and heads can be concatenated in task order (InfLoRA protocol).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

from janus.core.devices import resolve_device
from janus.core.errors import ConfigError
from janus.data.base import (
    DATASETS,
    DatasetSplits,
    FileSource,
    ImageSet,
    JpegBlobSource,
    enumerate_some,
    load_dataset,
    per_class_subset,
)
from janus.data.cache import decode
from janus.data.fingerprint import data_fingerprint
from janus.data.pipeline import PIPELINES, DeviceBatches, DeviceImages, resolve_workers
from janus.data.workers import worker_init


def eval_resize(img_size: int) -> int:
    """Short side of the evaluation resize before the centre crop (256 for 224)."""
    return img_size * 256 // 224


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
        ops += [T.Resize(eval_resize(img_size)), T.CenterCrop(img_size)]
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

    def select(self, positions: Iterable[int]) -> TransformedImages:
        """The images at ``positions`` (positions into this set), with the same transform."""
        positions = np.asarray(list(positions), dtype=np.int64)
        return TransformedImages(self.images.subset(positions), self.labels[positions],
                                 self.transform)


Images = TransformedImages | DeviceImages
"""A task's images: PIL transforms per image (``pil``) or a decoded cache (``device``)."""


@dataclass
class Task:
    """One task: its index, its (re-indexed) labels and its train/test images."""

    index: int
    labels: range
    class_names: list[str]
    train: Images
    test: Images
    train_plain: Images
    """The training images with the test transform (for feature statistics, prototypes)."""


class ClassIncrementalStream:
    """Splits a data set into ``num_tasks`` equal tasks along a class order.

    ``pipeline='pil'`` transforms each image with torchvision (PIL) in the loader workers;
    ``pipeline='device'`` decodes every image once (:mod:`janus.data.cache`) and augments
    whole batches on ``device`` (:mod:`janus.data.pipeline`), for photographs.
    """

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
        pipeline: str = "pil",
        device: torch.device | None = None,
        cache: str = "memory",
        cache_dir: str | None = None,
        progress: bool = False,
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
        self.pipeline = pipeline
        self.fingerprint: dict[str, Any] = {}
        """What identifies the data (:mod:`janus.data.fingerprint`), set by :func:`build_stream`."""
        self.device = device or torch.device("cpu")
        position = np.full(len(splits.classes), -1, dtype=np.int64)
        position[self.class_order] = np.arange(n)
        self._position = position
        self._train = self._select(splits.train, train_per_class, subset_seed)
        self._test = self._select(splits.test, test_per_class, subset_seed + 1)
        self._require_test_images(splits, test_per_class)
        args = (splits.native_size, img_size, mean, std)
        self._train_tf = build_transforms(*args, train=True)
        self._test_tf = build_transforms(*args, train=False)
        if pipeline == "device":
            if splits.native_size is not None:
                raise ConfigError(
                    f"data.pipeline='device' serves photographs (random resized crops); data set "
                    f"{splits.name!r} stores {splits.native_size}x{splits.native_size} images: "
                    "use data.pipeline='pil' or 'auto'"
                )
            decoded = [
                decode(images, eval_resize(img_size), store=cache, cache_dir=cache_dir,
                       workers=num_workers, progress=progress)
                for images in (self._train, self._test)
            ]
            self._train_dev, self._test_dev = (
                DeviceImages(d, np.arange(len(images)), images.labels, train, img_size,
                             tuple(mean), tuple(std))
                for d, images, train in zip(decoded, (self._train, self._test), (True, False),
                                            strict=True)
            )
        elif pipeline != "pil":
            raise ConfigError(f"data.pipeline must be 'pil' or 'device', got {pipeline!r}")

    @property
    def num_classes(self) -> int:
        return len(self.class_order)

    def _select(self, images: ImageSet, per_class: int | None, seed: int) -> ImageSet:
        """Images of the classes in the order (at most ``per_class`` each), labels re-indexed."""
        keep = np.flatnonzero(self._position[images.labels] >= 0)
        kept_labels = images.labels[keep]
        keep = keep[per_class_subset(kept_labels, per_class, seed)]
        if self.pipeline == "device":  # decoded once by the cache; keep blobs encoded here
            chosen = ImageSet(images.source, images.labels[keep],
                              keep if images.index is None else images.index[keep])
        else:
            chosen = images.subset(keep)
        return ImageSet(chosen.source, self._position[chosen.labels], chosen.index)

    def _require_test_images(self, splits: DatasetSplits, test_per_class: int | None) -> None:
        """One error naming the tasks, and their classes, that have no test image (their
        accuracy would read 0.00), and why."""
        counts = np.bincount(self._test.labels, minlength=self.num_classes)
        empty = {t: names for t in range(self.num_tasks)
                 if (names := [self.class_names[k] for k in self.task_labels(t) if not counts[k]])}
        if not empty:
            return
        tasks = [f"task {t + 1} ({'classes' if len(names) > 1 else 'class'} "
                 f"{enumerate_some((repr(n) for n in names), last=', ')})"
                 for t, names in empty.items()]
        if test_per_class == 0:
            why = "data.test_per_class=0 keeps no test image: set it to 1 or more, or to None (all)"
        else:
            source = splits.test.source
            where = (source.origin if isinstance(source, JpegBlobSource) and source.origin
                     else f"the test images of data set {splits.name!r}")
            why = f"{where} include none of these classes: add test images of them"
            if isinstance(source, FileSource):
                why += (" (a data set read as one tree <class>/<file> is split 80/20 per class: "
                        "a class needs at least 3 images to leave one for testing)")
        raise ConfigError(
            f"{enumerate_some(tasks)} {'have' if len(tasks) > 1 else 'has'} no test images, so "
            f"{'their' if len(tasks) > 1 else 'its'} accuracy cannot be measured (it would read "
            f"0.00); {why}"
        )

    def task_labels(self, t: int) -> range:
        if not 0 <= t < self.num_tasks:
            raise IndexError(f"task {t} outside 0..{self.num_tasks - 1}")
        c = self.classes_per_task
        return range(t * c, (t + 1) * c)

    def task(self, t: int) -> Task:
        labels = self.task_labels(t)

        def of_task(labelled) -> np.ndarray:
            y = labelled.labels
            return np.flatnonzero((y >= labels.start) & (y < labels.stop))

        names = self.class_names[labels.start : labels.stop]
        if self.pipeline == "device":
            train = self._train_dev.select(of_task(self._train_dev))
            test = self._test_dev.select(of_task(self._test_dev))
            return Task(t, labels, names, train, test, train.evaluation_view())
        train = self._train.subset(of_task(self._train))
        test = self._test.subset(of_task(self._test))
        return Task(
            index=t,
            labels=labels,
            class_names=names,
            train=TransformedImages(train, train.labels, self._train_tf),
            test=TransformedImages(test, test.labels, self._test_tf),
            train_plain=TransformedImages(train, train.labels, self._test_tf),
        )

    def train_loader(self, task: Task, generator: torch.Generator):
        """Shuffled training batches; ``generator`` makes the order (and, in the ``device``
        pipeline, the augmentation) reproducible."""
        drop_last = len(task.train) > self.batch_size
        if isinstance(task.train, DeviceImages):
            return DeviceBatches(task.train, batch_size=self.batch_size, device=self.device,
                                 workers=self.num_workers, generator=generator,
                                 drop_last=drop_last)
        return DataLoader(
            task.train,
            batch_size=self.batch_size,
            shuffle=True,
            drop_last=drop_last,
            generator=generator,
            num_workers=self.num_workers,
            worker_init_fn=worker_init(),
        )

    def test_loader(self, task: Task):
        return self.eval_loader(task.test)

    def eval_loader(self, images: Images, batch_size: int | None = None):
        """Batches in stored order (``eval_batch_size`` unless given), for evaluation and
        feature statistics."""
        size = batch_size or self.eval_batch_size
        if isinstance(images, DeviceImages):
            return DeviceBatches(images, batch_size=size, device=self.device,
                                 workers=self.num_workers)
        return DataLoader(images, batch_size=size, num_workers=self.num_workers,
                          worker_init_fn=worker_init())


CLASS_ORDERS = ("sorted", "permuted", "pycil", "pycil-<seed>")


def class_order(num_available: int, data_cfg, seed: int) -> np.ndarray:
    """The class order, truncated to ``data_cfg.num_classes``: ``sorted`` (label order; the
    InfLoRA code's, whose configs set ``"shuffle": false``), ``permuted`` (our seeded
    permutation, numpy's Generator), ``pycil`` (PyCIL-derived code's ``np.random.seed(s);
    np.random.permutation(n)`` with ``"shuffle": true``; ``s`` = ``data.order_seed``, else the
    run seed) or ``pycil-<s>`` (the same with seed ``s``: ``pycil-1993`` is SD-LoRA's order on
    CIFAR-100, ImageNet-A and DomainNet, ``pycil-1995`` on ImageNet-R)."""
    name = data_cfg.class_order
    s = seed if data_cfg.order_seed is None else data_cfg.order_seed
    if name == "sorted":
        order = np.arange(num_available)
    elif name == "permuted":
        order = np.random.default_rng(s).permutation(num_available)
    elif name == "pycil" or (name.startswith("pycil-") and name[6:].isdigit()):
        legacy = s if name == "pycil" else int(name[6:])
        order = np.random.RandomState(legacy).permutation(num_available)
    else:
        raise ConfigError(
            f"data.class_order must be one of {', '.join(CLASS_ORDERS)}, got {name!r}"
        )
    n = data_cfg.num_classes
    if n is not None:
        if not 1 <= n <= num_available:
            raise ConfigError(
                f"data.num_classes={n} but the data set has {num_available} classes"
            )
        order = order[:n]
    return order


def resolve_pipeline(pipeline: str, dataset: str) -> str:
    """``data.pipeline``, with ``auto`` resolved: ``device`` for data sets of photographs,
    ``pil`` for data sets of small stored images."""
    if pipeline not in PIPELINES:
        raise ConfigError(f"data.pipeline must be one of {', '.join(PIPELINES)}, got {pipeline!r}")
    if pipeline != "auto":
        return pipeline
    entry = DATASETS.get(dataset)
    return "device" if entry is not None and entry.photographs else "pil"


def build_stream(cfg, seed: int, progress: bool = False,
                 num_tasks: int | None = None) -> ClassIncrementalStream:
    """Load ``cfg.data.dataset`` and split it into tasks (``cfg.data.num_tasks`` unless
    ``num_tasks`` is given) for the model in ``cfg.model``."""
    data = cfg.data
    pipeline = resolve_pipeline(data.pipeline, data.dataset)
    workers = resolve_workers(data.num_workers, pipeline)
    if data.cache not in ("disk", "memory"):
        raise ConfigError(f"data.cache must be 'disk' or 'memory', got {data.cache!r}")
    splits = load_dataset(data, data.root)
    order = class_order(len(splits.classes), data, seed)
    stream = ClassIncrementalStream(
        splits,
        num_tasks=data.num_tasks if num_tasks is None else num_tasks,
        class_order=order,
        img_size=cfg.model.img_size,
        mean=tuple(cfg.model.mean),
        std=tuple(cfg.model.std),
        batch_size=data.batch_size,
        eval_batch_size=data.eval_batch_size,
        num_workers=workers,
        train_per_class=data.train_per_class,
        test_per_class=data.test_per_class,
        subset_seed=data.split_seed,
        pipeline=pipeline,
        device=resolve_device(cfg.train.device),
        cache=data.cache,
        cache_dir=data.cache_dir,
        progress=progress,
    )
    stream.fingerprint = data_fingerprint(splits, order)
    return stream


def fingerprint_of(cfg, seed: int) -> dict[str, Any]:
    """:func:`janus.data.fingerprint.data_fingerprint` of ``cfg``'s data, without building a
    stream (no image is decoded)."""
    splits = load_dataset(cfg.data, cfg.data.root)
    return data_fingerprint(splits, class_order(len(splits.classes), cfg.data, seed))
