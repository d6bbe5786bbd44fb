"""What makes two runs the same run: the config that counts (machine fields aside), the backbone
weights, the schedule and method versions, the data and, for a checkpoint, the autocast.
:func:`incompatibility` compares them: the one check before a stored record is reused or a
checkpoint resumed."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from os import PathLike
from typing import Any, Literal

import torch

from janus.core.config import MACHINE_FIELDS, RunConfig
from janus.core.precision import amp_mode
from janus.data.pipeline import resolve_workers
from janus.data.stream import resolve_pipeline
from janus.methods import build_method
from janus.model.backbones import checkpoint_sha256
from janus.train.optim import schedule_version


def comparable(config: dict[str, Any]) -> dict[str, Any]:
    """The config without machine-specific fields, normalised through JSON."""
    c = json.loads(json.dumps(config))
    for section, key in MACHINE_FIELDS:
        c[section].pop(key, None)
    data = c["data"]  # records written before data.pipeline existed used PIL transforms
    data["pipeline"] = resolve_pipeline(data.get("pipeline", "pil"), data["dataset"])
    if data["pipeline"] == "pil":  # each worker augments with its own RNG: the count matters
        data["num_workers"] = resolve_workers(config["data"].get("num_workers", 0), "pil")
    c["train"].setdefault("compile", False)  # records from before train.compile
    c["train"]["amp"] = amp_mode(c["train"].get("amp", "auto"))  # a bool before the choice
    c["train"].setdefault("deterministic", True)  # records from before train.deterministic
    data.setdefault("split", "auto")  # records from before data.split
    c["method"].setdefault("label", None)  # records written before labels existed
    return c


def with_amp(config: dict[str, Any], amp: str) -> dict[str, Any]:
    """``config`` with ``train.amp`` replaced by its resolved value ``amp``: a checkpoint is
    resumed under the autocast it was trained with, however that was spelt (``auto`` on a
    GPU equals ``bf16``)."""
    return {**config, "train": {**config["train"], "amp": amp}}


def config_diff(old: dict[str, Any], new: dict[str, Any]) -> str:
    """The dotted fields (machine fields aside) whose values differ, with both values."""
    a, b = comparable(old), comparable(new)
    parts = [f"{section}.{key} {a[section].get(key)!r} -> {b[section].get(key)!r}"
             for section in sorted(set(a) | set(b)) if isinstance(b.get(section), dict)
             for key in sorted(set(a.get(section, {})) | set(b[section]))
             if a.get(section, {}).get(key) != b[section].get(key)]
    parts += [f"{k} {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b))
              if not isinstance(b.get(k), dict) and a.get(k) != b.get(k)]
    return ", ".join(parts) or "nothing"


def changed(old: dict[str, Any], new: dict[str, Any]) -> str:
    """The keys of two data fingerprints that differ, for error messages."""
    return ", ".join(k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k))


def method_version(cfg: RunConfig) -> int:
    """The version of the implementation ``cfg.method`` runs with (:attr:`Method.version`)."""
    return build_method(cfg).version


@dataclass(frozen=True)
class Identity:
    """What a run is made with, in the parts that decide whether it is the same run as another
    (:func:`incompatibility`). A part that is None was not stored (records and checkpoints from
    before it) and is not compared."""

    config: dict[str, Any]
    weights: str | None
    """SHA-256 of the backbone checkpoint file (:func:`checkpoint_sha256`)."""
    schedule_version: int
    method_version: int
    data: dict[str, Any] | None = None
    """The data fingerprint (:mod:`janus.data.fingerprint`)."""
    amp: str | None = None
    """The resolved autocast (:func:`janus.core.precision.resolve_amp`) of a checkpoint and of
    the run that would resume it; records compare ``train.amp`` as spelt in their config."""

    @classmethod
    def of_config(cls, cfg: RunConfig) -> Identity:
        """What a run of ``cfg`` is made with by this code (the data aside: they are read only
        when everything else matches, :func:`incompatibility`)."""
        return cls(cfg.to_dict(), checkpoint_sha256(cfg.model),
                   schedule_version(cfg.train.schedule), method_version(cfg))

    @classmethod
    def of_record(cls, record: dict[str, Any]) -> Identity:
        """What a stored record was made with (versions from before they were stored: 1)."""
        return cls(record["config"], record.get("checkpoint_sha256"),
                   record.get("schedule_version", 1),
                   record.get("method", {}).get("version", 1), record.get("data"))

    @classmethod
    def of_checkpoint(cls, state: dict[str, Any]) -> Identity:
        """What a checkpoint (:meth:`janus.train.trainer.Run.save_checkpoint`) was made with."""
        return cls(state["config"], state.get("checkpoint_sha256"),
                   state.get("schedule_version", 1), state.get("method_version", 1),
                   state.get("data"), state.get("amp"))


Part = Literal["amp", "config", "weights", "schedule", "method", "data"]

MADE_WITH: dict[Part, str] = {
    "amp": "autocast {saved!r}, where train.amp={what!r} now resolves to {now!r}",
    "config": "a different config (differing: {what})",
    "weights": "other backbone weights",
    "schedule": "version {saved} of train.schedule={what!r}, whose learning rates have changed "
                "since (now version {now}: docs/interpretations.md, \"Optimiser and schedule\")",
    "method": "version {saved} of method {what!r}, whose defaults or behaviour have changed "
              "since (now version {now})",
    "data": "other data under the same config ({what})",
}
"""What a stored record was made with, by the part that differs (:class:`Incompatibility`)."""

CHECKPOINT: dict[Part, str] = {
    "amp": "was trained with autocast {saved!r}, but train.amp={what!r} resolves to {now!r} on "
           "{device}; continue it with --set train.amp={saved}, or",
    "config": "was written by a different config (differing: {what}); resume with the same "
              "settings, or",
    "weights": "was written on other backbone weights under the same config;",
    "schedule": "was trained with version {saved} of train.schedule={what!r} (now {now}: its "
                "learning rates changed);",
    "method": "was written by version {saved} of method {what!r} (now {now});",
    "data": "was written on other data under the same config ({what} differ);",
}
"""What a checkpoint was written with, by the part that differs (:class:`Incompatibility`)."""


@dataclass(frozen=True)
class Incompatibility:
    """The first part in which a stored run differs from the run to be made: its stored and
    current values and what differs (the config fields or data keys; for a version, the
    schedule or method it is of; for the autocast, ``train.amp`` as spelt)."""

    part: Part
    saved: Any
    now: Any
    what: str = ""

    def __str__(self) -> str:
        """What the stored run was made with: "<folder> holds a run made with <this>"."""
        return MADE_WITH[self.part].format(saved=self.saved, now=self.now, what=self.what)

    def resume_error(self, path: str | PathLike, device: torch.device) -> str:
        """Why the checkpoint at ``path`` is not resumed on ``device``, and what to do."""
        why = CHECKPOINT[self.part].format(saved=self.saved, now=self.now, what=self.what,
                                           device=device)
        return f"the checkpoint at {path} {why} pass --force to start over"


def incompatibility(
    saved: Identity, now: Identity, data: Callable[[], dict[str, Any]] | None = None
) -> Incompatibility | None:
    """The first part in which ``saved`` (a stored record or checkpoint) differs from ``now``:
    the autocast (where ``now.amp`` is given: a checkpoint is resumed under the one it was
    trained with, and the configs are compared with it), the config (machine fields aside),
    the backbone weights, the schedule version, the method version, then the data, whose
    current fingerprint ``data`` gives (called only when all else matches and ``saved`` holds
    one, since it reads the data set's file list; without ``data`` the data are not
    compared). None: the same run, to be reused or resumed."""
    old, new = saved.config, now.config
    if now.amp is not None:
        if saved.amp not in (None, now.amp):
            return Incompatibility("amp", saved.amp, now.amp, new["train"]["amp"])
        old, new = with_amp(old, now.amp), with_amp(new, now.amp)
    if comparable(old) != comparable(new):
        return Incompatibility("config", old, new, config_diff(old, new))
    if saved.weights is not None and saved.weights != now.weights:
        return Incompatibility("weights", saved.weights, now.weights)
    if saved.schedule_version != now.schedule_version:
        return Incompatibility("schedule", saved.schedule_version, now.schedule_version,
                               new["train"]["schedule"])
    if saved.method_version != now.method_version:
        return Incompatibility("method", saved.method_version, now.method_version,
                               new["method"]["name"])
    if saved.data is not None and data is not None:
        current = data()
        if saved.data != current:
            return Incompatibility("data", saved.data, current, changed(saved.data, current))
    return None


def mismatch(
    record: dict[str, Any], cfg: RunConfig, data: Callable[[], dict[str, Any]] | None = None
) -> str | None:
    """What a stored record was made with that a run of ``cfg`` is not (:func:`incompatibility`,
    the data compared where ``data`` is given), or None: the condition for reusing it."""
    found = incompatibility(Identity.of_record(record), Identity.of_config(cfg), data)
    return None if found is None else str(found)
