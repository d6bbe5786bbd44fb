"""Frozen-feature references: what the backbone alone achieves, without any training.

Nearest-class-mean (NCM) classification of the frozen pre-logit features over *all* classes
of the stream at once (no task split, no adapters): each class is represented by the mean
feature of its training images (test transform, no augmentation); a test image takes the
class of the nearest mean, in Euclidean distance and in cosine similarity. It tells how much
of a continual learner's accuracy the frozen backbone already provides.
"""

from __future__ import annotations

import time
from typing import Any

import torch
import torch.nn.functional as F

from janus.core.config import RunConfig
from janus.core.devices import resolve_device
from janus.core.results import environment, now
from janus.core.seeding import seed_everything
from janus.data.stream import build_stream
from janus.model.continual import build_model


@torch.no_grad()
def nearest_class_mean(cfg: RunConfig) -> dict[str, Any]:
    """NCM top-1 (%) of the frozen backbone of ``cfg`` on all classes of its stream."""
    start = time.perf_counter()
    device = resolve_device(cfg.train.device)
    seed_everything(cfg.seed)
    stream = build_stream(cfg, cfg.seed)
    model = build_model(cfg.model, cfg.lora).to(device).eval()

    def features(images) -> tuple[torch.Tensor, torch.Tensor]:
        feats, labels = [], []
        for x, y in stream.eval_loader(images):
            feats.append(model.features(x.to(device)).float().cpu())
            labels.append(y)
        return torch.cat(feats), torch.cat(labels)

    tasks = [stream.task(t) for t in range(stream.num_tasks)]
    train = [features(task.train_plain) for task in tasks]
    test = [features(task.test) for task in tasks]
    f_train, y_train = torch.cat([f for f, _ in train]), torch.cat([y for _, y in train])
    f_test, y_test = torch.cat([f for f, _ in test]), torch.cat([y for _, y in test])
    n = stream.num_classes
    means = torch.zeros(n, f_train.shape[1]).index_add_(0, y_train, f_train)
    means /= torch.bincount(y_train, minlength=n)[:, None]
    euclid = torch.cdist(f_test, means).argmin(1)
    unit = F.normalize(f_train, dim=1)
    unit_means = F.normalize(torch.zeros_like(means).index_add_(0, y_train, unit), dim=1)
    cosine = (F.normalize(f_test, dim=1) @ unit_means.T).argmax(1)
    return {
        "reference": "nearest-class-mean, frozen backbone, all classes at once",
        "config": cfg.to_dict(),
        "environment": environment(str(device)),
        "finished": now(),
        "num_classes": n,
        "train_images": len(y_train),
        "test_images": len(y_test),
        "ncm_euclidean_top1": 100.0 * int((euclid == y_test).sum()) / len(y_test),
        "ncm_cosine_top1": 100.0 * int((cosine == y_test).sum()) / len(y_test),
        "seconds": time.perf_counter() - start,
    }
