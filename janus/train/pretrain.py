"""Supervised pre-training of a small ViT on 32x32 images: the `mini` profile's backbone.

No pretrained ViT weights can be fetched on the project's machines, so the `mini` profile
uses a ViT that we pre-train ourselves on ``tiny-imagenet-32`` (177 Tiny-ImageNet classes
that do not overlap the 100 mini-ImageNet classes used for continual learning).

Recipe (the calibration in DESIGN.md): AdamW (lr 1e-3, weight decay 0.05), batch 256,
linear warm-up then cosine decay, label smoothing 0.1, drop-path 0.05, reflect-pad crop +
horizontal flip applied to whole uint8 batches in memory, inputs normalised with
mean = std = 0.5. After every epoch the full state is checkpointed, so a killed run resumes
at the next epoch; the final weights are written as ``{"vit_kwargs", "state_dict"}``, the
format ``model.source=checkpoint`` reads.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from timm.models.vision_transformer import VisionTransformer
from tqdm import tqdm

from janus.core.config import DataConfig
from janus.core.devices import resolve_device
from janus.core.errors import ConfigError
from janus.core.results import environment, now, write_json
from janus.core.seeding import seed_everything
from janus.data.base import ArraySource, ImageSet, load_dataset

MEAN = STD = 0.5


@dataclass
class PretrainConfig:
    dataset: str = "tiny-imagenet-32"
    data_root: str | None = None
    vit_kwargs: dict[str, Any] = field(
        default_factory=lambda: {
            "img_size": 32, "patch_size": 8, "embed_dim": 192, "depth": 6, "num_heads": 3,
        }
    )
    epochs: int = 30
    warmup_epochs: int = 1
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    drop_path: float = 0.05
    pad: int = 4
    seed: int = 0
    device: str = "auto"
    max_batches_per_epoch: int | None = None
    """Cut epochs short (tests only)."""


def decoded(images: ImageSet) -> tuple[torch.Tensor, torch.Tensor]:
    """All images of a split as one uint8 (N, 32, 32, 3) tensor and int64 labels."""
    full = images.subset(np.arange(len(images)))
    if not isinstance(full.source, ArraySource):
        raise ConfigError("pre-training expects a data set of small stored images (.npz/arrays)")
    return torch.from_numpy(full.source.pixels), torch.from_numpy(full.labels)


def to_input(batch: torch.Tensor) -> torch.Tensor:
    """uint8 (B, H, W, 3) -> normalised float (B, 3, H, W)."""
    return (batch.permute(0, 3, 1, 2).float() / 255 - MEAN) / STD


def augment(batch: torch.Tensor, pad: int, gen: torch.Generator) -> torch.Tensor:
    """Reflect-pad random crop + horizontal flip of a uint8 (B, H, W, 3) batch, per image."""
    b, h, w, _ = batch.shape
    x = to_input(batch)
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    oy = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
    ox = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
    rows = (oy[:, None] + torch.arange(h))[:, None, :, None]
    cols = (ox[:, None] + torch.arange(w))[:, None, None, :]
    crops = padded[torch.arange(b)[:, None, None, None], torch.arange(3)[None, :, None, None],
                   rows, cols]
    flip = torch.rand(b, generator=gen) < 0.5
    return torch.where(flip[:, None, None, None], crops.flip(-1), crops)


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to zero at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(total - warmup, 1)))


@torch.no_grad()
def top1(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device) -> float:
    model.eval()
    correct = 0
    for i in range(0, len(x), 1024):
        logits = model(to_input(x[i : i + 1024]).to(device))
        correct += int((logits.argmax(-1).cpu() == y[i : i + 1024]).sum())
    return 100.0 * correct / len(x)


def portable(config: dict[str, Any]) -> dict[str, Any]:
    """The config without the fields that may differ between machines (resume check)."""
    return {k: v for k, v in config.items() if k not in ("data_root", "device")}


def pretrain(cfg: PretrainConfig, out_dir: str | os.PathLike, progress: bool = True) -> dict:
    """Train (or resume) and write ``weights.pth``, ``record.json`` and ``state.pt``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed)
    splits = load_dataset(DataConfig(dataset=cfg.dataset), cfg.data_root)
    x_train, y_train = decoded(splits.train)
    x_test, y_test = decoded(splits.test)
    num_classes = len(splits.classes)
    model = VisionTransformer(
        **cfg.vit_kwargs, num_classes=num_classes, drop_path_rate=cfg.drop_path
    ).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    per_epoch = len(x_train) // cfg.batch_size
    if cfg.max_batches_per_epoch is not None:
        per_epoch = min(per_epoch, cfg.max_batches_per_epoch)
    total = cfg.epochs * per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_factor(s, cfg.warmup_epochs * per_epoch, total)
    )
    record: dict[str, Any] = {
        "config": asdict(cfg), "num_classes": num_classes, "classes": splits.classes,
        "train_images": len(x_train), "test_images": len(x_test),
        "parameters": sum(p.numel() for p in model.parameters()),
        "environment": environment(str(device)), "started": now(), "epochs": [],
    }
    state_path = out / "state.pt"
    if state_path.exists():
        state = torch.load(state_path, map_location=device, weights_only=False)
        if portable(state["record"]["config"]) != portable(record["config"]):
            raise ConfigError(f"{state_path} was written by another config; use another --out")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        record = {**state["record"], "environment": record["environment"]}
    for epoch in range(len(record["epochs"]), cfg.epochs):
        gen = torch.Generator().manual_seed(cfg.seed * 1000 + epoch)
        torch.manual_seed(cfg.seed * 1000 + epoch)  # drop-path draws from the global generator
        order = torch.randperm(len(x_train), generator=gen)[: per_epoch * cfg.batch_size]
        model.train()
        start, losses = time.perf_counter(), []
        bar = tqdm(order.view(per_epoch, cfg.batch_size), desc=f"epoch {epoch + 1}/{cfg.epochs}",
                   disable=not progress, leave=False)
        for idx in bar:
            x = augment(x_train[idx], cfg.pad, gen).to(device)
            loss = F.cross_entropy(model(x), y_train[idx].to(device),
                                   label_smoothing=cfg.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
        seconds = time.perf_counter() - start
        acc = top1(model, x_test, y_test, device)
        record["epochs"].append({
            "epoch": epoch + 1, "train_loss": float(np.mean(losses)), "test_top1": acc,
            "seconds": seconds, "images_per_second": len(order) / seconds,
            "lr_end": sched.get_last_lr()[0],
        })
        record["updated"] = now()
        if progress:
            print(f"epoch {epoch + 1}: loss {np.mean(losses):.3f}, test top-1 {acc:.2f}%, "
                  f"{seconds:.0f} s", flush=True)
        tmp = state_path.with_suffix(".tmp")
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(), "record": record}, tmp)
        os.replace(tmp, state_path)
        write_json(out / "record.json", record)
    weights = {k: v for k, v in model.state_dict().items() if not k.startswith("head.")}
    torch.save({"vit_kwargs": cfg.vit_kwargs, "state_dict": weights}, out / "weights.pth")
    record["final_test_top1"] = record["epochs"][-1]["test_top1"]
    record["total_train_seconds"] = sum(e["seconds"] for e in record["epochs"])
    write_json(out / "record.json", record)
    return record
