"""Run configuration: dataclasses, named profiles and dotted overrides.

A profile is a complete :class:`RunConfig`; profiles change sizes, never code paths.
``apply_overrides(cfg, ["train.epochs=3", "lora.rank=4"])`` edits any field. Every field is
typed and documented (:func:`janus.core.fields.param`): :func:`check_settings` refuses a wrong
type, range or form before anything is loaded, ``janus list --config`` prints them all.
"""

from __future__ import annotations

import ast
import dataclasses
import re
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from janus.core.errors import ConfigError
from janus.core.fields import describe, param, problem


@dataclass
class DataConfig:
    """Which images, how they are split into tasks and batched."""

    dataset: str = param("synthetic", "data set name (janus list names them)")
    root: str | None = param(None, "data root; None: $JANUS_DATA")
    path: str | None = param(None, "the file of the npz data set (absolute, or relative to the "
                             "current folder or to the data root)")
    num_tasks: int = param(10, "number of tasks T (--tasks)", low=1)
    num_classes: int | None = param(None, "use the first N classes of the class order; None: "
                                    "all", low=1)
    class_order: str = param("sorted", "sorted (label order), permuted (seeded permutation), "
                             "pycil or pycil-<seed> (the legacy numpy permutation of "
                             "PyCIL-derived code, e.g. SD-LoRA's pycil-1993)")
    order_seed: int | None = param(None, "seed of the permuted / pycil class order; None: the "
                                   "run seed", low=0)
    train_per_class: int | None = param(None, "training images kept per class; None: all",
                                        low=1)
    test_per_class: int | None = param(None, "test images kept per class; None: all", low=1)
    split_seed: int = param(0, "seed of the train/test split of data sets without an official "
                            "one", low=0)
    split: Literal["auto", "inflora", "official"] = param(
        "auto", "which split lists a data set with several reads: each data set's default, the "
        "InfLoRA / CODA-Prompt yaml lists (DomainNet) or the official per-domain lists")
    batch_size: int = param(128, "training batch", low=1)
    eval_batch_size: int = param(256, "evaluation batch", low=1)
    num_workers: int | Literal["auto"] = param(
        "auto", "loader worker processes, or auto (janus.data.pipeline.resolve_workers)", low=0)
    pipeline: Literal["auto", "pil", "device"] = param(
        "auto", "pil (torchvision transforms per image), device (decode once, augment batches "
        "on the training device; photographs only) or auto (device for photographs)")
    cache: Literal["disk", "memory"] = param(
        "disk", "where the device pipeline keeps decoded images: disk (memory-mapped, reused by "
        "later runs) or memory")
    cache_dir: str | None = param(None, "folder of the disk cache; None: $JANUS_CACHE or "
                                  "~/.cache/janus")


@dataclass
class ModelConfig:
    """The frozen ViT: from the timm hub, a local checkpoint file, or a small config."""

    source: Literal["hub", "checkpoint", "config"] = param(
        "config", "hub (timm weights), checkpoint (a local file) or config (random weights)")
    name: str = param("vit_base_patch16_224.augreg_in21k", "timm model name (hub and checkpoint)")
    checkpoint: str | None = param(None, "the weights file of source=checkpoint")
    img_size: int = param(224, "input image side", low=1)
    patch_size: int = param(16, "patch side (source=config)", low=1)
    embed_dim: int = param(768, "width (source=config)", low=1)
    depth: int = param(12, "blocks (source=config)", low=1)
    num_heads: int = param(12, "attention heads (source=config)", low=1)
    mean: tuple[float, float, float] = param((0.0, 0.0, 0.0), "input normalisation: per-channel "
                                             "mean (R, G, B)")
    std: tuple[float, float, float] = param((1.0, 1.0, 1.0), "input normalisation: per-channel "
                                            "std (R, G, B)", low=0, low_open=True)


@dataclass
class LoRAConfig:
    """The LoRA adapters on the fused qkv projections."""

    targets: tuple[Literal["q", "k", "v"], ...] = param(("k", "v"), "adapted slices of qkv")
    rank: int = param(10, "LoRA rank r", low=1)
    scale: float = param(1.0, "LoRA scale s of s B A")


@dataclass
class TrainConfig:
    """Optimisation and where it runs."""

    epochs: int = param(50, "epochs per task", low=1)
    lr: float = param(5e-4, "learning rate", low=0, low_open=True)
    optimizer: Literal["adam", "sgd"] = param("adam", "adam or sgd (methods that own their "
                                              "step ignore it)")
    betas: tuple[float, float] = param((0.9, 0.999), "Adam's betas", low=0, high=1,
                                       high_open=True)
    momentum: float = param(0.9, "SGD momentum", low=0, high=1)
    weight_decay: float = param(0.0, "weight decay", low=0)
    schedule: Literal["cosine", "inflora-cosine", "constant"] = param(
        "cosine", "cosine (per step, to zero at the end of each task), inflora-cosine (InfLoRA's "
        "per-epoch quarter cosine as its code steps it; the paper profile's) or constant")
    max_steps_per_task: int | None = param(None, "stop a task after this many optimizer steps "
                                           "(quick checks); None: all", low=1)
    amp: str = param("auto", "mixed precision: auto (bf16 on CUDA, off on the CPU), bf16 or off "
                     "(janus.core.precision.resolve_amp); records store the resolved value")
    deterministic: bool = param(True, "deterministic kernels: on a GPU the condition for a "
                                "resumed run to equal an uninterrupted one")
    compile: bool = param(False, "torch.compile the backbone's forward (benchmarks/README.md)")
    device: str = param("auto", "auto (CUDA when present), cpu, cuda, cuda:N or mps")
    loggers: tuple[Literal["csv", "tensorboard", "wandb"], ...] = param(
        (), "where to log the loss, learning rates, images/s and peak memory at every loss "
        "check and the accuracies after each task (janus.train.loggers; janus[track])")


@dataclass
class MethodConfig:
    """The method and its parameters (janus list --method NAME)."""

    name: str = param("finetune", "method name (janus list)")
    params: dict[str, Any] = param(help="method parameters, e.g. --set method.params.k=25",
                                   default_factory=dict)
    label: str | None = param(None, "name of the run folder and of the summary row (e.g. an "
                              "ablation variant); None: the method name")

    @property
    def run_name(self) -> str:
        return self.label or self.name


@dataclass
class RunConfig:
    profile: str = param("smoke", "the profile the config was built from (--profile)")
    seed: int = param(0, "the one seed of the run", low=0)
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


SECTIONS = ("data", "model", "lora", "train", "method")
"""The sections of a :class:`RunConfig` (``--set <section>.<field>=...``)."""

MACHINE_FIELDS = (
    ("data", "root"), ("data", "path"), ("data", "num_workers"), ("data", "cache"),
    ("data", "cache_dir"),
    ("train", "device"), ("train", "loggers"),
)
"""Fields that say where a run ran or who watched it, not what it ran: they may differ between
an interrupted run
and its resumption, and between the seeds of one summary row (the worker count counts in the
``pil`` pipeline: :func:`janus.train.identity.comparable`)."""

DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")
CLASS_ORDER = re.compile(r"sorted|permuted|pycil(-\d+)?")
LABEL = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+=-]*")
FOLDER_NAME = "a folder name: letters, digits and _ . + = - (no /, not starting with .)"


def setting_problems(cfg: RunConfig) -> list[str]:
    """Every run setting whose type, range or form is wrong, one line each naming the field,
    the value and what is allowed (the typed fields of :mod:`janus.core.fields`)."""
    out = []
    for prefix, section in [("", cfg)] + [(f"{s}.", getattr(cfg, s)) for s in SECTIONS]:
        if not dataclasses.is_dataclass(section):
            out.append(f"{prefix[:-1]}={section!r} is not a section: set its fields, e.g. "
                       f"--set {prefix}<field>=... (janus list --config)")
            continue
        hints = typing.get_type_hints(type(section))
        for f in dataclasses.fields(section):
            if f.name in SECTIONS:
                continue
            wrong, stored = problem(prefix + f.name, getattr(section, f.name), hints[f.name], f)
            if wrong:
                out.append(wrong)
            else:
                setattr(section, f.name, stored)
    forms = (("data.class_order", cfg.data, "class_order", CLASS_ORDER,
              "sorted, permuted, pycil or pycil-<seed>"),
             ("train.device", cfg.train, "device", DEVICE, "auto, cpu, cuda, cuda:N or mps"),
             ("method.label", cfg.method, "label", LABEL, FOLDER_NAME),
             ("data.dataset", cfg.data, "dataset", LABEL, FOLDER_NAME))
    for key, section, name, form, allowed in forms:
        value = getattr(section, name, None) if dataclasses.is_dataclass(section) else None
        if isinstance(value, str) and not form.fullmatch(value):
            out.append(f"{key}={value!r} is not allowed: it must be {allowed}")
    return out


def check_settings(cfg: RunConfig) -> None:
    """One :class:`ConfigError` listing :func:`setting_problems` (one line each), if any."""
    problems = setting_problems(cfg)
    if problems:
        raise ConfigError("\n".join(problems))


def describe_settings() -> list[tuple[str, str, Any, str]]:
    """(field, type and range, default, help) of every run setting, for ``janus list
    --config``."""
    rows = [row for row in describe(RunConfig) if row[0] not in SECTIONS]
    for name in SECTIONS:
        kind = typing.get_type_hints(RunConfig)[name]
        rows += [(f"{name}.{n}", t, d, h) for n, t, d, h in describe(kind)]
    return rows


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
    if key == "profile":
        raise ConfigError("profile is chosen with --profile (or a sweep file's profile:), not "
                          "--set: the profile decides every other default")
    if key in SECTIONS:
        raise ConfigError(f"{key} is a section, not a setting: set its fields, e.g. --set "
                          f"{key}.<field>=... (janus list --config lists them)")
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
