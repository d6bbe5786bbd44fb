"""Building blocks of the reproduction notebooks: configs, run grids, ablation variants.

A notebook states *what* to run (profile, methods or variants, seeds); these helpers build the
configs, run them through :func:`janus.trainer.run` (finished runs are reused, interrupted
ones resumed) and turn the records into rows of a table.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from janus.config import RunConfig, apply_overrides
from janus.config import profile as make_profile
from janus.errors import ConfigError, DataNotFoundError, WeightsNotFoundError
from janus.results import paper_numbers, summarize, train_seconds
from janus.trainer import run


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
) -> RunConfig:
    """The named profile with method, seed, T, data root, method params, label and overrides."""
    cfg = make_profile(profile)
    cfg.method.name, cfg.seed, cfg.method.label = method, seed, label
    cfg.method.params = dict(params or {})
    if tasks is not None:
        cfg.data.num_tasks = tasks
    if data_root is not None:
        cfg.data.root = data_root
    return apply_overrides(cfg, overrides)


@dataclass(frozen=True)
class Variant:
    """A method with fixed parameters under its own run label (a table row)."""

    name: str
    """Row name shown in tables."""
    method: str
    params: dict[str, Any] = field(default_factory=dict)
    label: str | None = None
    """Run folder / summary key; None uses the method name (the method's defaults)."""

    @property
    def key(self) -> str:
        return self.label or self.method


def janus_variant(name: str, label: str | None = None, **params: Any) -> Variant:
    return Variant(name, "janus-lora", params, label)


TABLE1_VARIANTS: dict[int, Variant] = {
    # Row 1 has no OE, GR or DML: plain LoRA fine-tuning, which is the Finetune baseline step
    # for step (tests/methods/test_janus_lora.py); the paper prints the same numbers for it
    # in Tables 1 and 2.
    1: Variant("(1) LoRA", "finetune"),
    2: janus_variant("(2) DML", "janus-dml", oe=False, gr=False),
    3: janus_variant("(3) OE", "janus-oe", gr=False, dml=False),
    4: janus_variant("(4) GR", "janus-gr", oe=False, dml=False),
    5: janus_variant("(5) OE+GR", "janus-oe-gr", dml=False),
    6: janus_variant("(6) OE+DML", "janus-oe-dml", gr=False),
    7: janus_variant("(7) OE+GR+DML", None),
}
"""Janus-LoRA Table 1 (Sec. 4.2): the seven OE / GR / DML combinations."""


SDLORA_TABLE4_VARIANTS: dict[int, Variant] = {
    1: Variant("W0 + a dir(A1B1)", "sd-lora", {"components": "first"}, "sd-lora-first"),
    2: Variant("W0 + a dir(AB)", "sd-lora", {"components": "single"}, "sd-lora-single"),
    3: Variant("W0 + dir_1 + .. + a dir_t", "sd-lora", {"old_magnitudes": "frozen"},
               "sd-lora-frozen-alphas"),
    4: Variant("SD-LoRA", "sd-lora"),
}
"""SD-LoRA Table 4 (Sec. 4.2, "Ablation Studies"): task 1's direction only, frozen, with a
learned magnitude; one direction trained throughout; every direction kept but the earlier
magnitudes frozen; SD-LoRA. See ``docs/methods/sdlora.md``."""


TABLE5_VARIANTS: dict[str, Variant] = {
    "GPM": Variant("GPM", "lora-gpm", {}, "lora-gpm-e1"),
    "OE": janus_variant("OE", "janus-oe-e1", gr=False, dml=False),
}
"""Janus-LoRA Table 5: the OE basis vs an offline GPM basis with the same update rule ("OE
only", Table 1 row 3, vs LoRA-GPM), run with one epoch per task under their own labels."""

FIG6_VARIANTS: dict[str, Variant] = {
    "lora-gpm": Variant("LoRA-GPM", "lora-gpm"),
    "lora-gpm-gr": Variant("LoRA-GPM + GR", "lora-gpm", {"gr": True}, "lora-gpm-gr"),
    "lora-drs": Variant("LoRA-DRS", "lora-drs"),
    "lora-drs-gr": Variant("LoRA-DRS + GR", "lora-drs", {"gr": True}, "lora-drs-gr"),
}
"""Janus-LoRA Fig. 6: GR as a plug-in on LoRA-GPM and LoRA-DRS (GR towards the projected
gradient each method protects with: docs/methods/lora_drs.md)."""


FIG7_VARIANTS: dict[str, Variant] = {
    "janus-oe-gr": janus_variant("without DML (OE + GR)", "janus-oe-gr", dml=False),
    "janus-lora": janus_variant("Janus-LoRA (with DML)", None),
}
"""Janus-LoRA Fig. 7b: the same model with and without the Decoupled Margin Loss."""


def sweep_variants(param: str, values: Iterable[Any], default: Any) -> list[Variant]:
    """Janus-LoRA with ``param`` set to each value; the default value maps to the plain
    ``janus-lora`` runs so that they are shared with Table 1 / Table 2."""
    out = []
    for v in values:
        if v == default:
            out.append(janus_variant(f"{param}={v}", None))
        else:
            out.append(janus_variant(f"{param}={v}", f"janus-{param}{v}", **{param: v}))
    return out


def run_variants(
    variants: Sequence[Variant],
    seeds: Sequence[int],
    out: Path,
    *,
    profile: str,
    tasks: int | None = None,
    data_root: str | None = None,
    overrides: Sequence[str] = (),
    progress: bool = False,
) -> list[dict[str, Any]]:
    """Run every variant with every seed (reusing finished runs) and print one line each."""
    records = []
    for v in variants:
        for seed in seeds:
            cfg = make_config(profile, v.method, seed, tasks=tasks, data_root=data_root,
                              overrides=overrides, params=v.params, label=v.label)
            record = run(cfg, out, resume=True, progress=progress)
            m = record["metrics"]
            print(f"{v.name:<16} seed {seed}: ACC {m['acc']:6.2f}  MAA {m['maa']:6.2f}  "
                  f"BWT {m['bwt']:7.2f}  (trained in {train_seconds(record):.0f} s)")  # also reused
            records.append(record)
    return records


def variant_rows(
    variants: Sequence[Variant], records: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """:func:`janus.results.summarize` rows in the order of ``variants``, named by them."""
    by_key = {r["method"]: r for r in summarize(records)}
    rows = []
    for v in variants:
        row = dict(by_key[v.key])
        row["method"], row["variant"] = v.name, v.key
        rows.append(row)
    return rows


def verdict(rows: dict[str, dict[str, Any]], better: str, worse: str, metric: str) -> str:
    """Whether row ``better`` beats row ``worse`` on ``metric`` (higher is better), with the
    difference in units of its standard error over seeds (two standard errors = clear)."""
    a, b = rows[better], rows[worse]
    diff = a[metric] - b[metric]
    na, nb = len(a["seeds"]), len(b["seeds"])
    se = (a[f"{metric}_std"] ** 2 / na + b[f"{metric}_std"] ** 2 / nb) ** 0.5
    if se > 0:
        z = diff / se
    else:
        z = 0.0 if diff == 0 else math.copysign(math.inf, diff)
    if diff > 0:
        word = "holds" if z >= 2 else "holds, within noise"
    else:
        word = "fails" if z <= -2 else "fails, within noise"
    return (f"{word}: {a['method']} {a[metric]:.2f} vs {b['method']} {b[metric]:.2f} "
            f"({metric.upper()} diff {diff:+.2f}, {z:+.1f} s.e.)")


FIG2_VARIANTS: dict[str, Variant] = {
    v.key: v
    for v in (
        janus_variant("LoRA (no OE, no GR)", "janus-none", oe=False, gr=False, dml=False),
        janus_variant("OE, naive projection", "janus-oe", gr=False, dml=False),
        janus_variant("OE + GR", "janus-oe-gr", dml=False),
        janus_variant("OE + GR, exact-safe", "janus-oe-gr-exact", dml=False, exact_safe=True),
        janus_variant("OE + GR + DML", None),
    )
}
"""Janus-LoRA Fig. 2 ("standard optimization" vs GR) plus the references around it; DML is
off except in the full model so that the geometry is compared on the same loss."""


SEQLORA_MINI_VARIANTS: dict[str, Variant] = {
    "continual-alternating": Variant("Continual Alternating (1 epoch)", "continual-alternating",
                                     {}, "continual-alternating-e1"),
    "seqlora": Variant("SeqLoRA (1 epoch)", "seqlora", {}, "seqlora-e1"),
}
"""SeqLoRA and Continual Alternating as their ``mini`` evidence runs them: one epoch per task
(22.6x / 15.7x a LoRA step: ``docs/methods/seqlora.md``, "At mini scale")."""

ONE_EPOCH_CONTROL = Variant("Finetune (1 epoch)", "finetune", {}, "finetune-e1")
"""Sequential LoRA fine-tuning for one epoch per task: the control of the one-epoch SeqLoRA /
Continual Alternating runs, for how much of their result is the shorter training alone."""

ONE_EPOCH = ("train.epochs=1",)


def table2_variants(profile: str, methods: Sequence[str]) -> list[tuple[Variant, tuple[str, ...]]]:
    """Table 2's rows as ``(variant, extra overrides)``: each method with its defaults, except
    in the ``mini`` profile, where SeqLoRA and Continual Alternating are their one-epoch
    evidence runs (:data:`SEQLORA_MINI_VARIANTS`) and the one-epoch control follows them (4
    epochs of their steps would take ~9 h per seed on our CPU: ``docs/methods/seqlora.md``)."""
    if profile != "mini":
        return [(Variant(m, m), ()) for m in methods]
    rows = [(SEQLORA_MINI_VARIANTS[m], ONE_EPOCH) if m in SEQLORA_MINI_VARIANTS
            else (Variant(m, m), ()) for m in methods]
    if any(m in SEQLORA_MINI_VARIANTS for m in methods):
        rows.append((ONE_EPOCH_CONTROL, ONE_EPOCH))
    return rows


def run_sweep(
    param: str, values: Sequence[Any], default: Any, seeds: Sequence[int], out: Path, **kw: Any
) -> list[dict[str, Any]]:
    """Janus-LoRA with ``method.params.<param>`` swept over ``values`` (keyword arguments as
    :func:`run_variants`); prints and returns one summary row per value, in order."""
    variants = sweep_variants(param, values, default)
    rows = variant_rows(variants, run_variants(variants, seeds, out, **kw))
    print(f"{param:>10}" + "".join(f"{m.upper():>16}" for m in ("acc", "maa", "bwt")))
    for v, r in zip(values, rows, strict=True):
        print(f"{v!s:>10}" + "".join(f"{r[m]:>9.2f} ± {r[m + '_std']:4.2f}"
                                     for m in ("acc", "maa", "bwt")))
    return rows


def paper_comparison(
    rows: list[dict[str, Any]],
    table: str,
    *,
    key: str = "method",
    metrics: Sequence[str] = ("acc", "maa"),
    spread: str = "se",
) -> str:
    """Put the paper's numbers of ``janus/paper_numbers/<table>.csv`` for each row's T beside
    ours (``paper_<m>``, ``paper_<m>_<spread>``, matched on ``row[key]``) and return the
    comparison as text. ``spread`` is the paper's: ``"se"`` (standard error over runs) or
    ``"std"``; ours is given in the same kind (``<m>_se`` = std / sqrt(#seeds) is added)."""
    paper = {(p["method"], p["tasks"]): p for p in paper_numbers(table)}
    lines = [f"{'row':<28}{'T':>3}" + "".join(f"{'ours ' + m.upper():>16}{'paper':>16}"
                                            for m in metrics)]
    for row in rows:
        p = paper.get((row[key], row["tasks"]), {})
        cells = ""
        for m in metrics:
            row[f"{m}_se"] = row[f"{m}_std"] / math.sqrt(len(row["seeds"]))
            row[f"paper_{m}"], row[f"paper_{m}_{spread}"] = p.get(m), p.get(f"{m}_{spread}")
            ours = f"{row[m]:.2f} ± {row[f'{m}_{spread}']:.2f}"
            theirs = "-" if p.get(m) is None else f"{p[m]:.2f} ± {p[f'{m}_{spread}']:.2f}"
            cells += f"{ours:>16}{theirs:>16}"
        lines.append(f"{row['method']:<28}{row['tasks']:>3}{cells}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- Tables 3 and 4


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

MISSING_INPUTS = (DataNotFoundError, WeightsNotFoundError)
"""Errors that make a notebook report a benchmark as not run instead of stopping."""


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


def table3_config(
    profile: str,
    benchmark: str,
    method: str = "finetune",
    seed: int = 0,
    *,
    data_root: str | None = None,
    overrides: Sequence[str] = (),
) -> RunConfig:
    """The config of one Janus-LoRA Table 3 cell (:func:`table3_settings`, then ``overrides``)."""
    tasks, fixed = table3_settings(profile, benchmark)
    return make_config(profile, method, seed, tasks=tasks, data_root=data_root,
                       overrides=[*fixed, *overrides])


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


def table4_config(
    profile: str,
    backbone: str,
    method: str = "finetune",
    seed: int = 0,
    *,
    data_root: str | None = None,
    overrides: Sequence[str] = (),
) -> RunConfig:
    """The config of one Janus-LoRA Table 4 cell (:func:`table4_settings`, then ``overrides``)."""
    return make_config(profile, method, seed, data_root=data_root,
                       overrides=[*table4_settings(profile, backbone), *overrides])


def table4_root(out: Path, profile: str, backbone: str) -> Path:
    """Where a Table 4 block's runs live. Run folders are named by profile, data set, T and
    method, not by backbone, so in the ``paper`` profile each backbone has its own root
    (``out/backbones/<backbone>``); elsewhere the stand-ins are the profile's own runs."""
    return out / "backbones" / backbone if profile == "paper" else out


def not_run(name: str, err: Exception) -> str:
    """``<name>: not run (<first line of the error>)``; for missing weights, also the lines of
    the error that say how to supply them."""
    first, *rest = str(err).splitlines() or [type(err).__name__]
    lines = [f"{name}: not run ({first})"]
    if isinstance(err, WeightsNotFoundError):
        lines += [f"  {line}" for line in rest]
    return "\n".join(lines)


def _run_blocks(
    blocks: dict[str, tuple[str, Path, int | None, list[str]]],
    methods: Sequence[str],
    seeds: Sequence[int],
    *,
    profile: str,
    data_root: str | None,
    overrides: Sequence[str],
    progress: bool,
) -> dict[str, list[dict[str, Any]]]:
    """Per block ``key: (name, run root, T, overrides)``, the :func:`variant_rows` of every
    method; a block whose data or weights are missing is reported by :func:`not_run` and left
    out."""
    variants = [Variant(m, m) for m in methods]
    table = {}
    for key, (name, root, tasks, fixed) in blocks.items():
        print(f"--- {name}")
        try:
            records = run_variants(variants, seeds, root, profile=profile, tasks=tasks,
                                   data_root=data_root, overrides=[*fixed, *overrides],
                                   progress=progress)
        except MISSING_INPUTS as err:
            print(not_run(name, err))
            continue
        table[key] = variant_rows(variants, records)
    return table


def run_table3(
    benchmarks: Sequence[str],
    methods: Sequence[str],
    seeds: Sequence[int],
    out: Path,
    *,
    profile: str,
    data_root: str | None = None,
    overrides: Sequence[str] = (),
    progress: bool = False,
) -> dict[str, list[dict[str, Any]]]:
    """Janus-LoRA Table 3: per benchmark that could run, one summary row per method (the
    method in ``method`` and ``variant``), configs of :func:`table3_config`."""
    blocks = {k: (TABLE3_BENCHMARKS[k].name, out, *table3_settings(profile, k))
              for k in benchmarks}
    return _run_blocks(blocks, methods, seeds, profile=profile, data_root=data_root,
                       overrides=overrides, progress=progress)


def run_table4(
    backbones: Sequence[str],
    methods: Sequence[str],
    seeds: Sequence[int],
    out: Path,
    *,
    profile: str,
    data_root: str | None = None,
    overrides: Sequence[str] = (),
    progress: bool = False,
) -> dict[str, list[dict[str, Any]]]:
    """Janus-LoRA Table 4: per backbone that could run, one summary row per method, configs of
    :func:`table4_config` under :func:`table4_root`."""
    blocks = {k: (k, table4_root(out, profile, k), None, table4_settings(profile, k))
              for k in backbones}
    return _run_blocks(blocks, methods, seeds, profile=profile, data_root=data_root,
                       overrides=overrides, progress=progress)


def with_paper(
    rows: list[dict[str, Any]],
    paper: Sequence[dict[str, Any]],
    metrics: Sequence[str] = ("acc", "maa", "bwt"),
) -> str:
    """Attach the paper's numbers of each row's method (``paper_<m>``, ``paper_<m>_std``; None
    where the paper prints none) and return ours (mean ± std over seeds) beside them as text."""
    by_method = {p["method"]: p for p in paper}
    lines = [f"{'method':<14}" + "".join(f"{'ours ' + m.upper():>16}{'paper':>16}"
                                        for m in metrics)]
    for row in rows:
        p = by_method.get(row["variant"], {})
        cells = ""
        for m in metrics:
            value, std = p.get(m), p.get(f"{m}_std")
            row[f"paper_{m}"], row[f"paper_{m}_std"] = value, std
            theirs = "-" if value is None else f"{value:.2f}" if std is None else (
                f"{value:.2f} ± {std:.2f}")
            cells += f"{row[m]:>9.2f} ± {row[m + '_std']:4.2f}{theirs:>16}"
        lines.append(f"{row['method']:<14}{cells}")
    return "\n".join(lines)


def best_verdicts(
    rows: list[dict[str, Any]], best: str, metrics: Sequence[str] = ("acc",)
) -> list[str]:
    """The claim "``best`` beats every other row" on each metric: one :func:`verdict` per
    baseline and metric, or one line saying why it cannot be tested with these rows."""
    by = {r["variant"]: r for r in rows}
    others = [k for k in by if k != best]
    if best not in by or not others:
        return [f"not tested: needs {best} and at least one baseline (ran {sorted(by)})"]
    return [f"{m.upper()}: " + verdict(by, best, k, m) for m in metrics for k in others]
