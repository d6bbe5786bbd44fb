"""The ``device`` input pipeline: decoded uint8 images, crops cut on the host, resampling,
flips and normalisation on the training device, in batches.

An epoch's randomness (shuffle, crop boxes, flips) is drawn in the main process from the
task's generator (:class:`EpochPlan`), so results do not depend on the number of loader
workers; the workers only cut the planned boxes out of the decoded images
(:func:`gather_crops`) and hand uint8 batches over in pinned memory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from janus.core.errors import ConfigError
from janus.data import augment
from janus.data.cache import DecodedImages
from janus.data.workers import worker_init

MAX_AUTO_WORKERS = 8
PIPELINES = ("auto", "pil", "device")


def resolve_workers(value: int | str, pipeline: str) -> int:
    """``data.num_workers``: a count, or ``auto``: the cores available to this process minus
    one (at most :data:`MAX_AUTO_WORKERS`) for the ``device`` pipeline, and 0 for ``pil``,
    whose random augmentation draws from each worker's own RNG so that the worker count
    would change the results."""
    if value == "auto":
        if pipeline != "device":
            return 0
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        return max(0, min((cores or 1) - 1, MAX_AUTO_WORKERS))
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"data.num_workers={value!r}: give a whole number >= 0 or 'auto'")
    return value


@dataclass(frozen=True)
class Batch:
    """What a worker hands over: crops (uint8 N x H x W x 3, see :func:`gather_crops`),
    their sizes (N x 2), the flips (N) and the labels (N)."""

    crops: torch.Tensor
    sizes: torch.Tensor
    flips: torch.Tensor
    labels: torch.Tensor

    def pin_memory(self) -> Batch:
        return Batch(*(t.pin_memory() for t in (self.crops, self.sizes, self.flips, self.labels)))


def gather_crops(decoded: DecodedImages, indices: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """The boxes ``(top, left, h, w)`` of images ``indices``, top-left aligned in one uint8
    array of the largest crop's size (one copy to the device for the whole batch)."""
    height, width = int(boxes[:, 2].max()), int(boxes[:, 3].max())
    out = np.zeros((len(indices), height, width, 3), dtype=np.uint8)
    for k, (i, (top, left, h, w)) in enumerate(zip(indices, boxes, strict=True)):
        out[k, :h, :w] = decoded.array(int(i))[top : top + h, left : left + w]
    return out


@dataclass(frozen=True)
class DeviceImages:
    """Images of one split served from a decoded cache: ``positions`` into it, their
    (re-indexed) labels, and whether they get the training augmentation (random resized crop
    and flip) or the evaluation view (centre crop), both at ``size`` and normalised."""

    decoded: DecodedImages
    positions: np.ndarray
    labels: np.ndarray
    train: bool
    size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __len__(self) -> int:
        return len(self.labels)

    def select(self, positions: np.ndarray) -> DeviceImages:
        """The images at ``positions`` (positions into this set)."""
        positions = np.asarray(positions, dtype=np.int64)
        return replace(self, positions=self.positions[positions], labels=self.labels[positions])

    def evaluation_view(self) -> DeviceImages:
        """The same images with the evaluation view (for feature statistics)."""
        return replace(self, train=False)

    def boxes(self, local: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        """Crop boxes of the images at ``local`` positions: random resized crops drawn from
        ``rng`` for training, centre crops for evaluation."""
        shapes = self.decoded.shapes[self.positions[local]]
        if self.train:
            assert rng is not None
            return augment.resized_crop_boxes(shapes[:, 0], shapes[:, 1], rng)
        return augment.center_crop_boxes(shapes[:, 0], shapes[:, 1], self.size)

    def batch(self, local: np.ndarray, rng: np.random.Generator | None) -> Batch:
        """The host side of one batch: planned boxes cut out, flips drawn."""
        boxes = self.boxes(local, rng)
        flips = rng.random(len(local)) < 0.5 if self.train else np.zeros(len(local), bool)
        crops = gather_crops(self.decoded, self.positions[local], boxes)
        return Batch(torch.from_numpy(crops), torch.from_numpy(boxes[:, 2:].copy()),
                     torch.from_numpy(flips), torch.from_numpy(self.labels[local]))

    def finish(self, batch: Batch, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """The device side: move, resample the crops to ``size`` (mirrored where flipped),
        normalise. Host-to-device copies are asynchronous from pinned memory."""
        crops = batch.crops.to(device, non_blocking=True)
        if self.train:
            pixels = augment.resize_crops(crops, batch.sizes.numpy(), batch.flips.numpy(),
                                          self.size)
        else:  # centre crops of the final size: only the layout changes
            pixels = crops.permute(0, 3, 1, 2)
        return augment.normalize(pixels, self.mean, self.std), batch.labels

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        """One image (3 x size x size, on the CPU) and its label; a training image draws its
        crop and flip from torch's global generator."""
        rng = np.random.default_rng(int(torch.randint(2**62, (1,)))) if self.train else None
        images, _ = self.finish(self.batch(np.array([i]), rng), torch.device("cpu"))
        return images[0], int(self.labels[i])


@dataclass(frozen=True)
class BatchPlan:
    """One batch as planned in the main process: positions and the seed of its crops/flips."""

    positions: np.ndarray
    seed: int


class EpochPlan(Sampler):
    """Per epoch: the batches of positions (shuffled with ``generator`` when given) and one
    augmentation seed per batch drawn from it; iterated in the main process."""

    def __init__(
        self, n: int, batch_size: int, drop_last: bool, generator: torch.Generator | None
    ) -> None:
        self.n, self.batch_size, self.drop_last = n, batch_size, drop_last
        self.generator = generator

    def __len__(self) -> int:
        return self.n // self.batch_size if self.drop_last else -(-self.n // self.batch_size)

    def __iter__(self) -> Iterator[BatchPlan]:
        g = self.generator
        order = torch.randperm(self.n, generator=g).numpy() if g is not None else np.arange(self.n)
        seeds = (torch.randint(2**62, (len(self),), generator=g).tolist() if g is not None
                 else [0] * len(self))
        for b, seed in enumerate(seeds):
            yield BatchPlan(order[b * self.batch_size : (b + 1) * self.batch_size], seed)


class _Planned(Dataset):
    """Worker side: a :class:`BatchPlan` in, a :class:`Batch` out."""

    def __init__(self, images: DeviceImages) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, plan: BatchPlan) -> Batch:
        rng = np.random.default_rng(plan.seed) if self.images.train else None
        return self.images.batch(plan.positions, rng)


def _as_is(batch: Batch) -> Batch:
    return batch


class DeviceBatches:
    """Batches of :class:`DeviceImages` as normalised float tensors on ``device`` (labels on
    the host); shuffled and augmented when ``generator`` is given."""

    def __init__(
        self,
        images: DeviceImages,
        *,
        batch_size: int,
        device: torch.device,
        workers: int,
        generator: torch.Generator | None = None,
        drop_last: bool = False,
    ) -> None:
        self.images, self.device = images, device
        cuda = device.type == "cuda"
        self.loader = DataLoader(
            _Planned(images),
            batch_size=None,
            sampler=EpochPlan(len(images), batch_size, drop_last, generator),
            num_workers=workers,
            collate_fn=_as_is,
            pin_memory=cuda,
            persistent_workers=workers > 0,  # kept across the epochs of a task
            generator=torch.Generator(),  # the workers' seeds: none of torch's global draws
            worker_init_fn=worker_init(),
        )

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for batch in self.loader:
            yield self.images.finish(batch, self.device)
