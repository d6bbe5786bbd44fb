"""Nearest-class-mean reference against a brute-force recomputation."""

import numpy as np
import torch

from janus.analysis.reference import nearest_class_mean
from janus.core.config import apply_overrides, profile
from janus.core.seeding import seed_everything
from janus.data.stream import build_stream
from janus.model.continual import build_model


def test_ncm_matches_brute_force():
    cfg = apply_overrides(profile("smoke"), ["data.num_classes=10", "data.train_per_class=12",
                                             "data.test_per_class=6"])
    ref = nearest_class_mean(cfg)
    seed_everything(cfg.seed)
    stream = build_stream(cfg, cfg.seed)
    model = build_model(cfg.model, cfg.lora).eval()
    feats = {"train": [], "test": []}
    with torch.no_grad():
        for t in range(stream.num_tasks):
            task = stream.task(t)
            for split, images in (("train", task.train_plain), ("test", task.test)):
                for i in range(len(images)):
                    x, y = images[i]
                    feats[split].append((model.features(x[None])[0].numpy(), y))
    means = {c: np.mean([f for f, y in feats["train"] if y == c], axis=0) for c in range(10)}
    unit = {c: np.mean([f / np.linalg.norm(f) for f, y in feats["train"] if y == c], axis=0)
            for c in range(10)}
    hits_e = hits_c = 0
    for f, y in feats["test"]:
        hits_e += min(means, key=lambda c: np.linalg.norm(f - means[c])) == y
        cos = {c: f @ m / np.linalg.norm(m) for c, m in unit.items()}
        hits_c += max(cos, key=cos.get) == y
    n = len(feats["test"])
    assert ref["test_images"] == n == 60
    assert abs(ref["ncm_euclidean_top1"] - 100 * hits_e / n) < 1e-9
    assert abs(ref["ncm_cosine_top1"] - 100 * hits_c / n) < 1e-9
    assert ref["ncm_euclidean_top1"] > 30  # chance is 10%
