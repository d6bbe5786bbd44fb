"""Whole runs on photographs through the device pipeline; the sync-free loop's NaN error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from janus.core.config import apply_overrides, profile
from janus.core.errors import ConfigError, NonFiniteLossError
from janus.data.pipeline import MAX_AUTO_WORKERS, DeviceBatches, resolve_workers
from janus.data.stream import build_stream, resolve_pipeline
from janus.methods import METHODS
from janus.train.identity import comparable
from janus.train.trainer import run, run_dir

CLASSES = [f"n0{k}" for k in range(4)]


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """An ImageNet-R-shaped tree: 4 classes x 10 photographs of different sizes."""
    rng = np.random.default_rng(0)
    for c, wnid in enumerate(CLASSES):
        folder = tmp_path / "data" / "imagenet-r" / wnid
        folder.mkdir(parents=True)
        for k in range(10):
            w, h = int(rng.integers(40, 80)), int(rng.integers(40, 80))
            base = np.zeros((h, w, 3)) + [60 * c, 255 - 60 * c, 120]
            noise = rng.normal(0, 30, (h, w, 3))
            Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8)).save(
                folder / f"{k}.jpg")
    return tmp_path / "data"


def photo_cfg(root: Path, *overrides: str):
    """The smoke model (32x32 input) on the photograph tree, 2 tasks of 2 classes."""
    return apply_overrides(profile("smoke"), [
        "data.dataset=imagenet-r", f"data.root={str(root)!r}", "data.num_classes=None",
        "data.train_per_class=None", "data.test_per_class=None", "data.num_tasks=2",
        "data.batch_size=4", f"data.cache_dir={str(root.parent / 'cache')!r}",
        "train.epochs=2", *overrides,
    ])


def test_auto_serves_photographs_on_the_device_pipeline(photos):
    assert resolve_pipeline("auto", "imagenet-r") == "device"
    assert resolve_pipeline("auto", "mini-imagenet-32") == "pil"
    assert resolve_pipeline("pil", "imagenet-r") == "pil"
    stream = build_stream(photo_cfg(photos), seed=0)
    task = stream.task(1)
    loader = stream.train_loader(task, torch.Generator().manual_seed(0))
    assert isinstance(loader, DeviceBatches) and len(loader) == 4  # 16 images, batch 4
    images, labels = next(iter(loader))
    assert images.shape == (4, 3, 32, 32) and images.dtype == torch.float32
    assert set(labels.tolist()) <= {2, 3}
    assert (images.amin() >= -1) and (images.amax() <= 1)  # normalised with mean = std = 0.5
    assert len(list((photos.parent / "cache").iterdir())) == 2  # train and test caches


def test_device_batches_do_not_depend_on_the_worker_count(photos):
    batches = []
    for workers in (0, 2):
        stream = build_stream(photo_cfg(photos, f"data.num_workers={workers}"), seed=0)
        task = stream.task(0)
        for _ in range(2):  # two epochs: the second draws new crops and a new order
            loader = stream.train_loader(task, torch.Generator().manual_seed(5))
            batches.append([(x.clone(), y.clone()) for _ in range(2) for x, y in loader])
    assert all(len(b) == 8 for b in batches)
    for a, b in zip(batches[0], batches[2], strict=True):
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(batches[0][0][0], batches[0][4][0])  # epochs differ


def test_photograph_runs_equal_across_worker_counts_and_resume(photos, tmp_path,
                                                               resumed_after_crash):
    """The first run builds the cache, the second reads it: neither that nor the worker
    count changes a number."""
    a = run(photo_cfg(photos, "data.num_workers=0"), tmp_path / "w0", progress=False)
    b = run(photo_cfg(photos, "data.num_workers=2"), tmp_path / "w2", progress=False)
    assert a["accuracy_matrix"] == b["accuracy_matrix"]
    assert [t["mean_loss"] for t in a["tasks"]] == [t["mean_loss"] for t in b["tasks"]]
    cfg = photo_cfg(photos, "data.num_tasks=4", "train.epochs=1")
    reference, resumed, _ = resumed_after_crash(cfg)
    assert reference["accuracy_matrix"] == resumed["accuracy_matrix"]
    assert [t["final_loss"] for t in reference["tasks"]] == [
        t["final_loss"] for t in resumed["tasks"]]


def test_pipeline_choices_are_checked(photos):
    with pytest.raises(ConfigError, match="serves photographs"):
        build_stream(apply_overrides(profile("smoke"), ["data.pipeline=device"]), seed=0)
    with pytest.raises(ConfigError, match="data.pipeline must be one of"):
        build_stream(photo_cfg(photos, "data.pipeline=gpu"), seed=0)
    with pytest.raises(ConfigError, match="data.cache must be"):
        build_stream(photo_cfg(photos, "data.cache=ram"), seed=0)
    with pytest.raises(ConfigError, match="data.num_workers=-1"):
        build_stream(photo_cfg(photos, "data.num_workers=-1"), seed=0)


def test_auto_workers(monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(4)), raising=False)
    assert resolve_workers("auto", "device") == 3 and resolve_workers("auto", "pil") == 0
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(64)), raising=False)
    assert resolve_workers("auto", "device") == MAX_AUTO_WORKERS
    assert resolve_workers(5, "pil") == 5


def test_records_from_before_the_pipeline_switch_are_still_reused(tmp_path):
    """An old record has no data.pipeline: it was made with PIL transforms, which is what
    ``auto`` means for the smoke / mini data; for photographs it is a different config."""
    cfg = apply_overrides(profile("smoke"), ["data.num_tasks=2", "data.num_classes=4",
                                              "data.train_per_class=8", "data.test_per_class=4",
                                              "train.max_steps_per_task=2"])
    run(cfg, tmp_path, progress=False)
    path = run_dir(cfg, tmp_path) / "record.json"
    record = json.loads(path.read_text())
    del record["config"]["data"]["pipeline"]
    record["config"]["data"]["num_workers"] = 0
    path.write_text(json.dumps(record))
    again = run(cfg, tmp_path, progress=False)  # reused, not re-run
    assert again["updated"] == record["updated"]
    photo = json.loads(json.dumps(record["config"]))
    photo["data"]["dataset"] = "imagenet-r"
    modern = json.loads(json.dumps(photo))
    modern["data"]["pipeline"] = "auto"
    assert comparable(photo) != comparable(modern)


def test_a_nan_loss_names_the_task_and_step(tmp_path, monkeypatch):
    cfg = apply_overrides(profile("smoke"), ["data.num_tasks=2", "data.num_classes=4",
                                              "data.train_per_class=64", "train.epochs=30"])
    cls = METHODS["finetune"]
    original = cls.loss

    def diverging(self, model, images, targets, ctx):
        loss = original(self, model, images, targets, ctx)
        return loss * float("nan") if ctx.index == 1 and ctx.step >= 30 else loss

    monkeypatch.setattr(cls, "loss", diverging)
    with pytest.raises(NonFiniteLossError, match=r"in task 2 at step 31 \(checked steps 26-50"):
        run(cfg, tmp_path, progress=False)
