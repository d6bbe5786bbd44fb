"""A sweep: a grid of runs (methods or named variants x task splits x settings x seeds) and the
state of each run on disk. ``janus sweep`` expands one from the command line or a YAML file
(``results/evidence-mini.yaml`` is the committed evidence) and hands the runs that are not yet
complete to an executor (:mod:`janus.experiments.executors`).

A sweep file::

    profile: mini                # a profile of `janus list`
    seeds: [0, 1, 2]
    tasks: [5, 10, 20]           # optional: one run per T (default: the profile's)
    overrides: [train.epochs=3]  # optional: applied to every run
    settings:                    # optional: named override sets, a grid dimension;
      lr3: [train.lr=1e-3]       #   each run's label gets "-<name>"
    out: results                 # optional (default: runs)
    runs:
      - finetune                 # a method with its defaults, or a named variant
      - janus-union              #   (`janus sweep --variants` lists them)
      - {method: janus-lora, label: janus-k5, params: {k: 5}}
      - {method: seqlora, label: seqlora-e1, overrides: [train.epochs=1], seeds: [0]}
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from janus.core.config import PROFILES, RunConfig
from janus.core.errors import ConfigError, JanusError
from janus.core.results import RECORD_NAME
from janus.experiments import claims
from janus.experiments.configs import make_config
from janus.experiments.variants import (
    FIG2_VARIANTS,
    FIG6_VARIANTS,
    FIG7_VARIANTS,
    ONE_EPOCH_CONTROL,
    SDLORA_CODE,
    SDLORA_TABLE4_VARIANTS,
    SEQLORA_MINI_VARIANTS,
    TABLE1_VARIANTS,
    TABLE5_VARIANTS,
    Variant,
    janus_variant,
)
from janus.methods import METHODS

FAILURES_NAME = "failures.log"
"""Every failure of a run in a sweep, appended (never overwritten) in its run folder."""


def named_variants() -> dict[str, Variant]:
    """Every ablation variant the notebooks and the evidence run, by run label (each with the
    overrides it runs under: the one-epoch variants have ``train.epochs=1``)."""
    groups: list[Iterable[Variant]] = [
        TABLE1_VARIANTS.values(), SDLORA_TABLE4_VARIANTS.values(), [SDLORA_CODE],
        FIG2_VARIANTS.values(),
        FIG6_VARIANTS.values(), FIG7_VARIANTS.values(), TABLE5_VARIANTS.values(),
        [*SEQLORA_MINI_VARIANTS.values(), ONE_EPOCH_CONTROL],
        [janus_variant("memory=union", "janus-union", memory="union")],
    ]
    named: dict[str, Variant] = {}
    for variants in groups:
        for v in variants:
            if v.label is None:  # a method's defaults: the method's own name
                continue
            old = named.setdefault(v.label, v)
            if (old.method, old.params, old.overrides) != (v.method, v.params, v.overrides):
                raise AssertionError(f"variant {v.label!r} is defined twice, differently")
    return named


@dataclass(frozen=True)
class SweepRun:
    """One run of a sweep: all :func:`janus.experiments.configs.make_config` needs; picklable."""

    key: str
    """The run's label (its folder and summary name): a method name or a variant's label."""
    method: str
    seed: int
    profile: str
    tasks: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    label: str | None = None
    overrides: tuple[str, ...] = ()
    data_root: str | None = None
    out: str = "runs"

    def config(self) -> RunConfig:
        return make_config(self.profile, self.method, self.seed, tasks=self.tasks,
                           data_root=self.data_root, overrides=self.overrides,
                           params=self.params, label=self.label)

    def folder(self) -> Path:
        from janus.train.trainer import run_dir

        return run_dir(self.config(), self.out)

    @property
    def name(self) -> str:
        t = "" if self.tasks is None else f" T={self.tasks}"
        return f"{self.key} seed {self.seed}{t}"


GRID_KEYS = {"profile", "seeds", "tasks", "overrides", "settings", "runs", "out", "data_root"}
ENTRY_KEYS = {"method", "variant", "label", "params", "overrides", "seeds"}


@dataclass
class Grid:
    """A sweep's grid, as a sweep file or the command line states it."""

    runs: list[str | dict[str, Any]]
    profile: str = "smoke"
    seeds: list[int] = field(default_factory=lambda: [0])
    tasks: list[int | None] = field(default_factory=lambda: [None])
    overrides: list[str] = field(default_factory=list)
    settings: dict[str, list[str]] = field(default_factory=dict)
    out: str = "runs"
    data_root: str | None = None

    def expand(self) -> list[SweepRun]:
        """Every run, in order: entries x task splits x settings x seeds. Repeated runs appear
        once; two different runs that would share a folder are an error."""
        if not isinstance(self.profile, str) or self.profile not in PROFILES:
            raise ConfigError(f"unknown profile {self.profile!r}; known: {', '.join(PROFILES)}")
        for key in ("out", "data_root"):
            value = getattr(self, key)
            if not (isinstance(value, str) and value) and not (key == "data_root"
                                                                and value is None):
                raise ConfigError(f"{key} must be a folder path (a string), not {value!r}")
        _check_ints("seeds", self.seeds, minimum=0)
        if self.tasks != [None]:
            _check_ints("tasks", self.tasks, minimum=1)
        settings = list(self.settings.items()) or [("", [])]
        runs: dict[Path, SweepRun] = {}
        for i, entry in enumerate(self.runs):
            base, seeds = self._entry(entry, i)
            for tasks in self.tasks:
                for name, extra in settings:
                    label = f"{base.key}-{name}" if name else base.label
                    for seed in seeds:
                        r = replace(base, seed=seed, tasks=tasks, label=label,
                                    key=label or base.method,
                                    overrides=(*self.overrides, *base.overrides, *extra))
                        old = runs.setdefault(r.folder(), r)
                        if old.config() != r.config():
                            raise ConfigError(f"{old.name} and {r.name} would share the "
                                              f"folder {r.folder()} with different settings; "
                                              f"give one a label")
        return list(runs.values())

    def _entry(self, entry: str | dict[str, Any], i: int) -> tuple[SweepRun, list[int]]:
        where = f"runs[{i}]"
        if isinstance(entry, str):
            entry = {"variant": entry} if entry not in METHODS else {"method": entry}
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} must be a method name, a variant name or a mapping "
                              f"with a 'method', not {entry!r}")
        _check_keys(where, entry, ENTRY_KEYS)
        overrides = tuple(_strings(f"{where}.overrides", entry.get("overrides", [])))
        if "variant" in entry:
            named = named_variants()
            if entry["variant"] not in named:
                raise ConfigError(f"{where}: {entry['variant']!r} is neither a method nor a "
                                  f"named variant; `janus list` shows the methods and "
                                  f"`janus sweep --variants` the variants")
            v = named[entry["variant"]]
            method, params, label, overrides = v.method, v.params, v.label, (*v.overrides,
                                                                             *overrides)
        else:
            method = entry.get("method")
            if method not in METHODS:
                raise ConfigError(f"{where}: unknown method {method!r}; known: "
                                  f"{', '.join(sorted(METHODS))}")
            params, label = entry.get("params") or {}, entry.get("label")
            if not isinstance(params, dict):
                raise ConfigError(f"{where}.params must be a mapping, not {params!r}")
        seeds = entry.get("seeds", self.seeds)
        _check_ints(f"{where}.seeds", seeds, minimum=0)
        root = None if self.data_root is None else str(Path(self.data_root).resolve())
        run = SweepRun(key=label or method, method=method, seed=0, profile=self.profile,
                       params=dict(params), label=label, overrides=overrides,
                       data_root=root, out=str(Path(self.out).resolve()))  # for any job's cwd
        return run, list(seeds)


def _check_ints(what: str, values: Any, minimum: int) -> None:
    if not isinstance(values, list | tuple) or not values or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in values):
        raise ConfigError(f"{what} must be a non-empty list of whole numbers >= {minimum}, "
                          f"not {values!r}")


def _check_keys(what: str, mapping: dict[str, Any], allowed: set[str]) -> None:
    unknown = set(mapping) - allowed
    if unknown:
        raise ConfigError(f"{what} has unknown keys {sorted(unknown)}; allowed: "
                          f"{sorted(allowed)}")


def _strings(what: str, values: Any) -> list[str]:
    if not isinstance(values, list | tuple) or not all(isinstance(v, str) for v in values):
        raise ConfigError(f"{what} must be a list of key=value strings, not {values!r}")
    return list(values)


def read_grid(path: str | Path) -> Grid:
    """The grid of a sweep file (module docstring), with one error naming the file if it does
    not parse or holds an unknown key."""
    path = Path(path)
    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"no sweep file at {str(path)!r}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ConfigError(f"sweep file {str(path)!r} is not valid yaml: {err}") from None
    if not isinstance(content, dict) or "runs" not in content:
        raise ConfigError(f"sweep file {str(path)!r} must be a mapping with a 'runs' list "
                          f"(see `janus sweep --help`)")
    _check_keys(f"sweep file {str(path)!r}", content, GRID_KEYS)
    if not isinstance(content["runs"], list) or not content["runs"]:
        raise ConfigError(f"sweep file {str(path)!r}: 'runs' must be a non-empty list")
    settings = content.get("settings") or {}
    if not isinstance(settings, dict):
        raise ConfigError(f"sweep file {str(path)!r}: 'settings' must map names to overrides")
    grid = Grid(runs=content["runs"])
    for key in ("profile", "seeds", "out", "data_root"):
        if content.get(key) is not None:
            setattr(grid, key, content[key])
    if content.get("tasks") is not None:
        grid.tasks = list(content["tasks"]) if isinstance(content["tasks"], list) else [
            content["tasks"]]
    grid.overrides = _strings("overrides", content.get("overrides") or [])
    grid.settings = {str(k): _strings(f"settings.{k}", v) for k, v in settings.items()}
    return grid


def validate(runs: Sequence[SweepRun]) -> None:
    """Build every run's config and method once, so that a bad override or method parameter
    is one error before anything is submitted."""
    from janus.train.checks import check_config
    from janus.train.identity import method_version

    for r in runs:
        try:
            cfg = r.config()
            check_config(cfg)
            method_version(cfg)
        except JanusError as err:
            raise ConfigError(f"{r.name}: {err}") from None


# --------------------------------------------------------------------------- state on disk


@dataclass(frozen=True)
class RunState:
    """Where a run stands: ``complete``, ``running``, ``queued``, ``partial``, ``failed``,
    ``conflict`` (the folder holds another config's run) or ``pending``."""

    status: str
    done: int
    total: int
    detail: str = ""

    @property
    def needs_running(self) -> bool:
        return self.status in ("pending", "partial", "failed")

    def describe(self) -> str:
        progress = f" {self.done}/{self.total} tasks" if self.status in (
            "running", "partial", "failed") else ""
        return f"{self.status}{progress}{f' ({self.detail})' if self.detail else ''}"


def last_failure(folder: Path) -> tuple[str, str] | None:
    """(time, last line of the error) of the latest failure in ``folder``'s failure log."""
    try:
        entries = [json.loads(line) for line in
                   (folder / FAILURES_NAME).read_text().splitlines() if line.strip()]
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if not entries:
        return None
    error = entries[-1]["error"].strip().splitlines() or ["(no message)"]
    return entries[-1]["time"], error[-1]


def recorded_tasks(folder: Path) -> int:
    """How many finished tasks the record in ``folder`` holds (0 without a readable one)."""
    try:
        return len(json.loads((folder / RECORD_NAME).read_text()).get("tasks", []))
    except (FileNotFoundError, json.JSONDecodeError, AttributeError):
        return 0


def state_of(run: SweepRun) -> RunState:
    """The state of ``run`` from its folder: record, claim and failure log."""
    from janus.train.identity import mismatch
    from janus.train.locking import lock_held

    folder, cfg = run.folder(), run.config()
    total = 1 if METHODS[cfg.method.name].single_task else cfg.data.num_tasks
    record: dict[str, Any] = {}
    try:
        record = json.loads((folder / RECORD_NAME).read_text())
    except FileNotFoundError:
        pass
    except json.JSONDecodeError:
        return RunState("failed", 0, total, f"{folder / RECORD_NAME} is not valid JSON")
    done = len(record.get("tasks", []))
    if record:
        why = mismatch(record, cfg)
        if why is not None:
            return RunState("conflict", done, total, f"the folder holds a run made with {why}")
        if record.get("status") == "complete":
            return RunState("complete", done, total, f"ACC {record['metrics']['acc']:.2f}")
    held = claims.read_claim(folder)
    if held is None and lock_held(folder):
        return RunState("running", done, total, "a process on this host holds its lock")
    if held is not None and claims.owner_alive(held):
        job = f"{held.get('executor')} job {held['job']}" if held.get("job") else (
            f"{held.get('executor')} on {held.get('host')}")
        return RunState("running" if held.get("worker") else "queued", done, total, job)
    if record.get("status") == "failed":
        reason = record.get("failure", {}).get("reason", "").splitlines() or ["diverged"]
        return RunState("failed", done, total, reason[-1])
    failure = last_failure(folder)
    if failure is not None and failure[0] >= record.get("updated", ""):
        return RunState("failed", done, total, failure[1])
    return RunState("partial" if done else "pending", done, total)
