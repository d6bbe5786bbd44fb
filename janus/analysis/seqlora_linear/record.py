"""The JSON record of a run of SeqLoRA's linear setting."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from janus.analysis.seqlora_linear.model import LinearSetting

PAPER = "SeqLoRA (arXiv 2605.22743): Sec. 2.4 Ex. 1, App. C.2 Thm 7 / Prop. 2, App. E Thm 8"


def record(
    s: LinearSetting,
    ranks: Sequence[int],
    energy: list[dict[str, Any]],
    learned: list[dict[str, Any]],
    forget: list[dict[str, Any]],
    sweep: list[dict[str, float]],
    sizes: dict[str, list[float]],
) -> dict[str, Any]:
    """The JSON record of a run: parameters, seed, spectrum and every table."""
    return {
        "paper": PAPER,
        "seed": s.seed,
        "parameters": dict(m=s.m, n=s.n, r=s.r, num_tasks=s.num_tasks, draws=s.draws,
                           decay=s.decay, noise=s.noise, gd_steps=s.gd_steps, gd_lr=s.gd_lr,
                           ranks=list(ranks), mc_samples=s.mc_samples),
        "spectrum": [float(v) for v in s.spectrum],
        "energy": energy,
        "learned_vs_kyfan": learned,
        "forgetting": forget,
        "rank_sweep": sweep,
        "update_norms": sizes,
        "torch": torch.__version__,
    }


def write_record(rec: dict[str, Any], path: Path) -> Path:
    """Write ``rec`` as JSON (indent 1) to ``path``; return ``path``."""
    path.write_text(json.dumps(rec, indent=1))
    return path
