"""The configs of the reproductions: a profile with a method, seed, T and overrides
(:func:`make_config`), and the settings of the Janus-LoRA Table 3 benchmarks and Table 4
backbones."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from janus.core.config import RunConfig, apply_overrides
from janus.core.config import profile as make_profile
from janus.core.errors import ConfigError
from janus.model.backbones import timm_tag


def make_config(
    profile: str,
    method: str = "finetune",
    seed: int = 0,
    *,
    tasks: int | None = None,
    data_root: str | None = None,
    overrides: Sequence[str] = (),
    params: dict[str, Any] | None = None,
    label: str | None = None,
    device: str | None = None,
) -> RunConfig:
    """The named profile with method, seed, T, data root, method params, label and training
    device, then ``overrides``: the one way a config is built from these (``janus run`` and
    ``janus reference`` too)."""
    cfg = make_profile(profile)
    cfg.method.name, cfg.seed, cfg.method.label = method, seed, label
    cfg.method.params = dict(params or {})
    if tasks is not None:
        cfg.data.num_tasks = tasks
    if data_root is not None:
        cfg.data.root = data_root
    if device is not None:
        cfg.train.device = device
    return apply_overrides(cfg, overrides)


PAPER_WEIGHTS: dict[str, str] = {
    "janus-lora": "vit_base_patch16_224.augreg_in21k",
    "sd-lora": "vit_base_patch16_224.augreg2_in21k_ft_in1k",
}
"""The ViT-B/16 weights behind each paper's tables, as timm tags. Janus-LoRA Sec. 4.1:
"pre-trained on ImageNet-21K" (the InfLoRA code base's ``vit_base_patch16_224_in21k``, in
current timm ``augreg_in21k``). SD-LoRA Sec. 4.1: "pre-trained on ImageNet-21K and fine-tuned
on ImageNet-1K"; its code (WuYichen-97/SD-Lora-CL@8bacded ``models/sdlora.py`` line 70)
creates timm's ``vit_base_patch16_224``, whose default tag is ``augreg2_in21k_ft_in1k``."""

PAPER_CLASS_ORDERS: dict[str, str] = {"sd-lora": "pycil-1995"}
"""The class order of a paper's ImageNet-R tables where it is not ``sorted``: SD-LoRA's
code shuffles with seed 1995 (``exps/sdlora_inr.json``)."""


class OtherWeightsWarning(UserWarning):
    """A run meant to reproduce a paper's table uses other backbone weights than the paper."""


def paper_overrides(paper: str, profile: str) -> list[str]:
    """The overrides that give a ``paper`` profile run the weights (and class order) of
    ``paper``'s tables (:data:`PAPER_WEIGHTS`); none in the other profiles, whose backbones
    stand in for the paper's."""
    if profile != "paper":
        return []
    out = [f"model.name={PAPER_WEIGHTS[paper]!r}"]
    if paper in PAPER_CLASS_ORDERS:
        out.append(f"data.class_order={PAPER_CLASS_ORDERS[paper]!r}")
    return out


def check_weights(cfg: RunConfig, expected: str) -> None:
    """Warn (:class:`OtherWeightsWarning`) when a ``paper`` profile run meant to reproduce a
    table made with the timm weights ``expected`` uses others: another tag, or a random
    initialisation. A ``checkpoint`` source is judged by the tag ``model.name`` declares."""
    if cfg.profile != "paper":
        return
    m = cfg.model
    got = "random weights (model.source='config')" if m.source == "config" else timm_tag(m.name)
    if got != timm_tag(expected):
        warnings.warn(OtherWeightsWarning(
            f"the paper's table was made with {expected}, but this run ({cfg.method.run_name}) "
            f"uses {got or repr(m.name)}: its numbers are not comparable with the paper's; pass "
            f"--set model.name={expected}"
            + (" --set model.source=hub" if m.source == "config" else "")), stacklevel=3)


@dataclass(frozen=True)
class Benchmark:
    """One column of Janus-LoRA Table 3: a data set, its T and its epochs per task (paper)."""

    name: str
    """Column title, as the paper prints it."""
    dataset: str
    """Registry name of the paper's data set (``janus list``)."""
    tasks: int
    epochs: int
    """Epochs per task in the ``paper`` profile."""
    mini_dataset: str | None = None
    """The data set's stand-in in the ``mini`` profile; None = ``dataset`` itself."""


TABLE3_BENCHMARKS: dict[str, Benchmark] = {
    b.dataset: b
    for b in (
        Benchmark("CIFAR-100", "cifar100", 10, 20),
        Benchmark("ImageNet-100", "imagenet-100", 10, 20, "mini-imagenet-32"),
        Benchmark("DomainNet", "domainnet", 5, 5),
    )
}
"""Janus-LoRA Table 3's columns with the InfLoRA code base's settings: CIFAR-100 in 10 tasks,
20 epochs (also Janus-LoRA Sec. 4.1); DomainNet in 5 tasks of 69 classes, 5 epochs (with Adam,
as the paper says for every run, not the SGD of InfLoRA's DomainNet config); ImageNet-100 in 10
tasks, epochs stated nowhere: 20 assumed. The ``mini`` stand-in of ImageNet-100 is
mini-ImageNet-32 (100 ImageNet classes at 32x32), whose mini runs are Table 2's."""


TABLE4_BACKBONES: dict[str, str] = {
    "sam": "vit_base_patch16_224.sam_in1k",
    "dino": "vit_base_patch16_224.dino",
}
"""Janus-LoRA Table 4's ViT-B/16 backbones as timm names. "SAM" is the ViT-B/16 trained with
sharpness-aware minimisation, as in the InfLoRA-style code bases the paper follows, although
the paper's text cites Segment Anything (docs/interpretations.md)."""

TABLE4_DATA = ("imagenet-r", 10)
"""Janus-LoRA Table 4's data set and T."""

def _entry(table: dict[str, Any], key: str, what: str) -> Any:
    if key not in table:
        raise ConfigError(f"unknown {what} {key!r}; known: {', '.join(table)}")
    return table[key]


def table3_settings(profile: str, benchmark: str) -> tuple[int, list[str]]:
    """T and config overrides of a Janus-LoRA Table 3 column under ``profile``.

    ``paper``: the benchmark's data set, T and epochs (other settings of the paper profile).
    ``mini``: the mini backbone and epochs on the benchmark's data set (ImageNet-100: its
    stand-in mini-ImageNet-32, so the config is exactly the mini profile's) with its T.
    ``smoke``: synthetic data with the benchmark's T, a code-path check only.
    """
    b = _entry(TABLE3_BENCHMARKS, benchmark, "Table 3 benchmark")
    if profile == "paper":
        return b.tasks, [f"data.dataset={b.dataset!r}", f"train.epochs={b.epochs}"]
    if profile == "mini":
        return b.tasks, [f"data.dataset={b.mini_dataset or b.dataset!r}"]
    return b.tasks, []


def table4_settings(profile: str, backbone: str) -> list[str]:
    """Config overrides of a Janus-LoRA Table 4 block under ``profile``.

    ``paper``: ImageNet-R, T = 10, the hub backbone ``TABLE4_BACKBONES[backbone]``, the other
    settings of the paper profile, including its input normalisation mean 0 / std 1 (the
    InfLoRA code's, for every backbone; timm's configs say 0.5 / 0.5 for SAM and the ImageNet
    statistics for DINO). Other profiles: none, i.e. the profile's own backbone, a labelled
    stand-in (no SAM or DINO ViT exists at that scale): a code-path check.
    """
    name = _entry(TABLE4_BACKBONES, backbone, "Table 4 backbone")
    if profile != "paper":
        return []
    dataset, tasks = TABLE4_DATA
    return [f"data.dataset={dataset!r}", f"data.num_tasks={tasks}", "model.source='hub'",
            f"model.name={name!r}"]


TableName = Literal["table3", "table4"]
"""The Janus-LoRA tables whose cells are one profile with fixed overrides: Table 3 (columns:
benchmarks) and Table 4 (blocks: backbones)."""


def table_settings(table: TableName, profile: str, key: str) -> tuple[int | None, list[str]]:
    """T (``None``: the profile's) and config overrides of the column or block ``key`` of
    ``table``: :func:`table3_settings` or :func:`table4_settings`."""
    if table == "table3":
        return table3_settings(profile, key)
    return None, table4_settings(profile, key)


def table_config(
    table: TableName,
    profile: str,
    key: str,
    method: str = "finetune",
    seed: int = 0,
    *,
    data_root: str | None = None,
    overrides: Sequence[str] = (),
) -> RunConfig:
    """The config of one cell of Janus-LoRA Table 3 or 4 (:func:`table_settings`, then
    ``overrides``)."""
    tasks, fixed = table_settings(table, profile, key)
    return make_config(profile, method, seed, tasks=tasks, data_root=data_root,
                       overrides=[*fixed, *overrides])


def table4_root(out: Path, profile: str, backbone: str) -> Path:
    """Where a Table 4 block's runs live. Run folders are named by profile, data set, T and
    method, not by backbone, so in the ``paper`` profile each backbone has its own root
    (``out/backbones/<backbone>``); elsewhere the stand-ins are the profile's own runs."""
    return out / "backbones" / backbone if profile == "paper" else out
