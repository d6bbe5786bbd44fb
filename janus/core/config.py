"""Run configuration: dataclasses, named profiles and dotted overrides.

A profile is a complete :class:`RunConfig`; profiles change sizes, never code paths.
``apply_overrides(cfg, ["train.epochs=3", "lora.rank=4"])`` edits any field.
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from janus.core.errors import ConfigError


@dataclass
class DataConfig:
    """Which images, how they are split into tasks and batched."""

    dataset: str = "synthetic"
    root: str | None = None
    """Data root; None means ``$JANUS_DATA``."""
    path: str | None = None
    """The file of the ``npz`` data set (absolute, or relative to the current folder or to the
    data root)."""
    num_tasks: int = 10
    num_classes: int | None = None
    """Use the first N classes of the class order (all when None)."""
    class_order: str = "sorted"
    """``sorted`` (label order), ``permuted`` (seeded permutation), ``pycil`` or ``pycil-<seed>``
    (the legacy numpy permutation of PyCIL-derived code, e.g. SD-LoRA's ``pycil-1993``); see
    :func:`janus.data.stream.class_order`."""
    order_seed: int | None = None
    """Seed of the ``permuted`` / ``pycil`` class order; None means the run seed."""
    train_per_class: int | None = None
    test_per_class: int | None = None
    split_seed: int = 0
    """Seed of the train/test split for data sets without an official one."""
    split: str = "auto"
    """Which split lists a data set with several reads: ``auto`` (each data set's default),
    ``inflora`` (DomainNet: the InfLoRA / CODA-Prompt yaml lists) or ``official`` (DomainNet:
    the official per-domain lists)."""
    batch_size: int = 128
    eval_batch_size: int = 256
    num_workers: int | str = "auto"
    """Loader worker processes, or ``auto`` (see :func:`janus.data.pipeline.resolve_workers`)."""
    pipeline: str = "auto"
    """``pil`` (torchvision transforms per image), ``device`` (decode once, augment batches on
    the training device; photographs only) or ``auto`` (``device`` for photographs)."""
    cache: str = "disk"
    """Where the ``device`` pipeline keeps decoded image files: ``disk`` (memory-mapped, reused
    by later runs) or ``memory``."""
    cache_dir: str | None = None
    """Folder of the disk cache; None means ``$JANUS_CACHE`` or ``~/.cache/janus``."""


@dataclass
class ModelConfig:
    """The frozen ViT: from the timm hub, a local checkpoint file, or a small config."""

    source: str = "config"
    """``hub``, ``checkpoint`` or ``config``."""
    name: str = "vit_base_patch16_224.augreg_in21k"
    """timm model name (hub and checkpoint sources)."""
    checkpoint: str | None = None
    img_size: int = 224
    patch_size: int = 16
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)


@dataclass
class LoRAConfig:
    targets: tuple[str, ...] = ("k", "v")
    rank: int = 10
    scale: float = 1.0


@dataclass
class TrainConfig:
    epochs: int = 50
    lr: float = 5e-4
    optimizer: str = "adam"
    """``adam`` or ``sgd``."""
    betas: tuple[float, float] = (0.9, 0.999)
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "cosine"
    """``cosine`` (per step, to zero at the end of each task), ``inflora-cosine`` (InfLoRA's
    per-epoch quarter cosine as its code steps it: epochs 0 and 1 at the full rate, the last
    at 4.74% for 50 epochs; the ``paper`` profile's) or ``constant``."""
    max_steps_per_task: int | None = None
    """Stop a task after this many optimizer steps (for quick checks)."""
    amp: str = "auto"
    """Mixed precision of the training forward and the evaluation: ``auto`` (bf16 on CUDA, off
    on the CPU), ``bf16`` (also on the CPU, as CI tests it) or ``off``; ``fp16`` is refused
    (:func:`janus.core.precision.resolve_amp`). Records store the resolved value."""
    deterministic: bool = True
    """Deterministic kernels (:func:`janus.core.precision.determinism`): on a GPU the
    condition for a resumed run to equal an uninterrupted one."""
    compile: bool = False
    """``torch.compile`` the backbone's forward (recompiled when a method adds hooks or
    components); see ``benchmarks/README.md`` for what it measured."""
    device: str = "auto"


@dataclass
class MethodConfig:
    name: str = "finetune"
    params: dict[str, Any] = field(default_factory=dict)
    label: str | None = None
    """Name of the run folder and of the row in summaries (e.g. an ablation variant);
    None means ``name``."""

    @property
    def run_name(self) -> str:
        return self.label or self.name


@dataclass
class RunConfig:
    profile: str = "smoke"
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    lora: LoRAConfig = field(default_factory=LoRAConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    method: MethodConfig = field(default_factory=MethodConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        return _from_dict(cls, d)


def _from_dict(kind: type, d: dict[str, Any]) -> Any:
    kwargs = {}
    names = {f.name: f for f in dataclasses.fields(kind)}
    for key, value in d.items():
        if key not in names:
            raise ConfigError(f"unknown config field {kind.__name__}.{key}")
        sub = _dataclass_type(names[key])
        if sub is not None and isinstance(value, dict):
            value = _from_dict(sub, value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[key] = value
    return kind(**kwargs)


def _dataclass_type(f: dataclasses.Field) -> type | None:
    default = f.default_factory if f.default_factory is not dataclasses.MISSING else None
    if default is not None and dataclasses.is_dataclass(default):
        return default  # type: ignore[return-value]
    return None


# --------------------------------------------------------------------------- profiles


def small_vit(
    name: str, embed_dim: int, depth: int, num_heads: int, checkpoint: str | None = None
) -> ModelConfig:
    """A ViT for 32x32 images (patch 8, inputs scaled to [-1, 1]): randomly initialised, or
    loaded from ``checkpoint``."""
    return ModelConfig(
        source="config" if checkpoint is None else "checkpoint",
        name=name,
        checkpoint=checkpoint,
        img_size=32,
        patch_size=8,
        embed_dim=embed_dim,
        depth=depth,
        num_heads=num_heads,
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
    )


def smoke_profile() -> RunConfig:
    """Offline, CPU, seconds: synthetic images, a tiny randomly initialised ViT."""
    return RunConfig(
        profile="smoke",
        data=DataConfig(
            dataset="synthetic",
            num_tasks=5,
            num_classes=20,
            train_per_class=64,
            test_per_class=32,
            batch_size=32,
            eval_batch_size=256,
        ),
        model=small_vit("smoke-vit", embed_dim=48, depth=2, num_heads=2),
        lora=LoRAConfig(rank=4),
        train=TrainConfig(epochs=2, lr=5e-3),
    )


def paper_profile() -> RunConfig:
    """Janus-LoRA Sec. 4.1 on ImageNet-R (T = 10): ViT-B/16 IN-21K, LoRA r = 10 on K/V,
    Adam (0.9, 0.999), batch 128, 50 epochs, InfLoRA's lr 5e-4 and per-epoch cosine schedule
    (the protocol of the InfLoRA code base, which Janus-LoRA re-runs every baseline under),
    inputs with mean 0 / std 1 as in that code base. Needs a GPU and the data."""
    return RunConfig(
        profile="paper",
        data=DataConfig(dataset="imagenet-r", num_tasks=10, batch_size=128),
        model=ModelConfig(source="hub", name="vit_base_patch16_224.augreg_in21k"),
        lora=LoRAConfig(rank=10),
        train=TrainConfig(epochs=50, lr=5e-4, schedule="inflora-cosine"),
    )


MINI_CHECKPOINT = "janus:weights/mini-vit-p8-e30.pth"


def mini_profile() -> RunConfig:
    """Real 32x32 images on the CPU: mini-ImageNet-32 in 10 tasks, our pre-trained ViT frozen.

    The backbone (6 blocks, width 192, patch 8) is pre-trained by ``janus pretrain`` on the
    177 Tiny-ImageNet classes that are not mini-ImageNet classes. LoRA rank scales the
    paper's r = 10 at width 768 to width 192: 10 * 192 / 768 = 2.5, rounded up to 3."""
    return RunConfig(
        profile="mini",
        data=DataConfig(dataset="mini-imagenet-32", num_tasks=10, batch_size=128),
        model=small_vit("mini-vit-p8", embed_dim=192, depth=6, num_heads=3,
                        checkpoint=MINI_CHECKPOINT),
        lora=LoRAConfig(rank=3),
        train=TrainConfig(epochs=4, lr=1e-3),
    )


PROFILES: dict[str, Callable[[], RunConfig]] = {
    "smoke": smoke_profile,
    "mini": mini_profile,
    "paper": paper_profile,
}


def profile(name: str) -> RunConfig:
    """A fresh copy of the named profile."""
    if name not in PROFILES:
        raise ConfigError(f"unknown profile {name!r}; known: {', '.join(PROFILES)}")
    return PROFILES[name]()


def apply_overrides(cfg: RunConfig, overrides: Iterable[str]) -> RunConfig:
    """Set dotted fields from ``key=value`` strings; values are Python literals or text."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like section.field=value")
        key, raw = item.split("=", 1)
        set_field(cfg, key.strip(), parse_value(raw.strip()))
    return cfg


def parse_value(raw: str) -> Any:
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return {"none": None, "true": True, "false": False}.get(raw.lower(), raw)


def set_field(cfg: Any, key: str, value: Any) -> None:
    """Set ``cfg.a.b = value`` for key ``a.b``; ``method.params.x`` sets a method parameter."""
    *path, last = key.split(".")
    target = cfg
    for part in path:
        target = target[part] if isinstance(target, dict) else _get(target, part, key)
    if isinstance(target, dict):
        target[last] = value
        return
    _get(target, last, key)
    if isinstance(value, list):
        value = tuple(value)
    setattr(target, last, value)


def _get(obj: Any, name: str, key: str) -> Any:
    if not dataclasses.is_dataclass(obj) or not hasattr(obj, name):
        raise ConfigError(f"unknown config field {key!r}")
    return getattr(obj, name)
