"""Figures used by the reproduction notebooks (saved as PNG and PDF)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np


def save(fig: plt.Figure, path: Path) -> list[Path]:
    """Save ``fig`` as ``path`` with suffixes .png and .pdf; return both paths."""
    path.parent.mkdir(parents=True, exist_ok=True)
    out = [path.with_suffix(".png"), path.with_suffix(".pdf")]
    for p in out:
        fig.savefig(p, bbox_inches="tight", dpi=150)
    return out


def metric_bars(rows: list[dict[str, Any]], title: str) -> plt.Figure:
    """ACC / MAA / BWT per method: ours (mean ± std over seeds) beside the paper's.

    ``rows`` carry ``method`` and, per metric m, ``m``/``m_std`` (ours) and optionally
    ``paper_m``/``paper_m_std``.
    """
    names = ("acc", "maa", "bwt")
    fig, axes = plt.subplots(1, 3, figsize=(12, 0.6 * len(rows) + 2), sharey=True)
    y = np.arange(len(rows))
    for ax, m in zip(axes, names, strict=True):
        ours = [r[m] for r in rows]
        ax.barh(y - 0.2, ours, 0.4, xerr=[r[f"{m}_std"] for r in rows], label="ours")
        if any(r.get(f"paper_{m}") is not None for r in rows):
            paper = [r.get(f"paper_{m}") or np.nan for r in rows]
            err = [r.get(f"paper_{m}_std") or 0 for r in rows]
            ax.barh(y + 0.2, paper, 0.4, xerr=err, label="paper", alpha=0.7)
        ax.set_title(m.upper())
        ax.axvline(0, color="k", lw=0.5)
    axes[0].set_yticks(y, [r["method"] for r in rows])
    axes[0].invert_yaxis()
    fig.suptitle(title)
    fig.tight_layout()
    fig.legend(*_unique_handles(axes), loc="upper right", ncols=2, fontsize="small")
    return fig


def _unique_handles(axes: np.ndarray) -> tuple[list[Any], list[str]]:
    """Legend entries of all ``axes``, each label once (the paper's bars may be absent from
    some panels, e.g. BWT, so no single panel's legend is complete)."""
    entries: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    return list(entries.values()), list(entries)


def sweep_lines(
    rows: list[dict[str, Any]], values: list[Any], xlabel: str, title: str
) -> plt.Figure:
    """ACC / MAA / BWT (mean ± std over seeds) against a swept hyper-parameter."""
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.5))
    for ax, m in zip(axes, ("acc", "maa", "bwt"), strict=True):
        ax.errorbar(values, [r[m] for r in rows], yerr=[r[f"{m}_std"] for r in rows],
                    marker="o", capsize=3)
        ax.set_title(m.upper())
        ax.set_xlabel(xlabel)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def task_curves(
    curves: dict[str, tuple[np.ndarray, np.ndarray]], ylabel: str, title: str
) -> plt.Figure:
    """One line per method over tasks 1..T: mean with a ±std band over seeds."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, (mean, std) in curves.items():
        x = np.arange(1, len(mean) + 1)
        ax.plot(x, mean, marker="o", ms=3, label=name)
        ax.fill_between(x, mean - std, mean + std, alpha=0.2)
    ax.set_xlabel("task")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig
