"""Tables and the figure of SeqLoRA's linear setting (``reproductions/seqlora_linear.ipynb``).

Every table function returns the text the notebook prints; the numbers come from
:mod:`janus.analysis.seqlora_linear` (methods (a) frozen random, (b) Ky Fan, (c) learned).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt

from janus.analysis.seqlora_linear import ConceptRun, LinearSetting

Rows = Sequence[dict[str, Any]]
COLORS = {"a": "C0", "b": "C1", "c": "C2"}
HAAR_LABEL = "Haar in (b)'s free subspace, Eq. 100"


def setting_summary(s: LinearSetting) -> str:
    """The spectrum and the energy of its top-r directions against a random subspace's r/m."""
    return (
        f"spectrum of every Sigma_j (first 6): {[round(float(v), 4) for v in s.spectrum[:6]]}\n"
        f"energy of the top-{s.r} principal directions: {float(s.spectrum[: s.r].sum()):.4f} "
        f"of Tr Sigma_j = 1; a random {s.r}-dim subspace of R^{s.m} holds r/m = "
        f"{s.r / s.m:.4f} on average"
    )


def energy_tables(s: LinearSetting, rows: Rows) -> str:
    """Captured energy (Thm 7, Eq. 96 / 99) and residual energy (Eq. 90 / 100) per concept."""
    lines = [
        "captured energy Tr(P Sigma_j) (Tr Sigma_j = 1), in (b)'s free subspace unless noted",
        f"{'j':>2} {'d_free':>6} {'Ky Fan':>8} {'(b)':>8} {'|(b)-KF|':>9} {'Haar mean':>10} "
        f"{'+-SE':>7} {'Eq. 99':>8} {'z':>6} {'max Haar':>8} | {'(a) own':>8} {'(c) own':>8}",
    ]
    for t in rows:
        lines.append(
            f"{t['task']:>2} {t['d_free']:>6} {t['kyfan']:8.4f} {t['optimal']:8.4f} "
            f"{abs(t['optimal'] - t['kyfan']):9.1e} {t['haar_mean']:10.4f} {t['haar_se']:7.4f} "
            f"{t['eq99']:8.4f} {t['z']:6.2f} {t['haar_max']:8.4f} | {t['oa_mean']:8.4f} "
            f"{t['learned']:8.4f}"
        )
    lines += [
        "",
        f"(a) own: mean over {s.draws} frozen-random runs (Orthogonal Adaptation); "
        f"E = r/m = {s.r / s.m:.4f}",
        "",
        "residual energy Tr(P^perp Sigma_j): the interference proxy of Example 1",
        f"{'j':>2} {'protected':>9} {'(b) = Eq.90':>11} {'Haar Eq.100':>11} {'Haar meas.':>10} | "
        f"{'(a) own':>8} {'(c) own':>8}",
    ]
    for t in rows:
        lines.append(
            f"{t['task']:>2} {t['protected']:9.4f} {t['optimal_residual']:11.4f} "
            f"{t['eq100']:11.4f} {t['haar_residual_mean']:10.4f} | {1 - t['oa_mean']:8.4f} "
            f"{t['learned_residual']:8.4f}"
        )
    return "\n".join(lines)


def isotropic_line(d_free: int, gap: float) -> str:
    """Prop. 2's isotropic exception (Eq. 101 = 0)."""
    return (
        f"\nisotropic Sigma = I/m, d_free = {d_free}: Ky Fan minus Haar expectation = {gap:.1e} "
        "(Prop. 2)"
    )


def learned_table(s: LinearSetting, rows: Rows, learned: ConceptRun) -> str:
    """Method (c) against the Ky Fan basis per concept, and the Eckart-Young summary."""
    lines = [
        f"{'j':>2} {'loss start':>10} {'loss (c)':>9} {'loss KF':>9} {'cap (c)':>8} "
        f"{'cap KF':>8} {'cos angles (c) vs KF':>22} {'final lr':>9}"
    ]
    for row, (first, final, lr) in zip(rows, learned.log, strict=True):
        cosines = ", ".join(f"{c:.4f}" for c in row["cosines"])
        lines.append(
            f"{row['task']:>2} {first:10.5f} {final:9.5f} {row['loss_kyfan']:9.5f} "
            f"{row['captured_learned']:8.4f} {row['captured_kyfan']:8.4f} {cosines:>22} {lr:9.2g}"
        )
    best = s.eckart_young_loss()
    lower = sum(row["loss_learned"] < row["loss_kyfan"] - 1e-9 for row in rows[1:])
    closer = [row["task"] for row in rows if min(row["cosines"]) > 0.99]
    gap1 = rows[0]["loss_learned"] - best
    lines += [
        "",
        f"j = 1: Eckart-Young loss {best:.6f}; (b) attains it, (c) is {gap1:.1e} above it",
        f"concepts 2..{s.num_tasks}: (c) reaches a lower task loss than the Ky Fan basis "
        f"in {lower} of {s.num_tasks - 1}",
        f"concepts where (c)'s subspace is within cos > 0.99 of Ky Fan's: {closer or 'none'}",
    ]
    return "\n".join(lines)


def _mean_of(rows: Rows, key: str, who: str) -> float:
    """Mean over concepts of ``key`` for method ``who`` ((a): of the means over runs)."""
    vals = [t[who][key][0] if who == "random" else t[who][key] for t in rows]
    return sum(vals) / len(vals)


def _mean_se_table(rows: Rows, key: str, extra: str, head: str, spec: str) -> list[str]:
    """``key`` per concept: (a) mean and SE over runs | (b) and its ``extra`` column (format
    ``spec``, header ``head``) | (c)."""
    width = spec.split(".")[0]
    lines = [f"{'j':>2} | {'(a) mean':>9} {'+-SE':>7} | {'(b)':>8} {head:>{width}} | {'(c)':>9}"]
    for t in rows:
        (mean, se), b, c = t["random"][key], t["optimal"], t["learned"][key]
        lines.append(f"{t['task']:>2} | {mean:9.4f} {se:7.4f} | {b[key]:8.4f} "
                     f"{b[extra]:{spec}} | {c:9.4f}")
    return lines


def forgetting_tables(s: LinearSetting, rows: Rows, sizes: dict[str, list[float]]) -> str:
    """Crosstalk ``E||C_j x||^2`` (Eq. 123) and its two factors, the update norms, the
    forgetting (Eq. 114) with the Eq. 115 bound, and the ratios (a) / (b)."""
    lines = [
        "E||C_j x||^2, the crosstalk energy of the later concepts on concept j's inputs",
        *_mean_se_table(rows, "crosstalk", "mc_z", "MC z", "6.2f"),
    ]
    free = s.m - s.r
    lines += [
        "",
        "its two factors: E||C_j x||^2 = ||C_j||_F^2 * normalised; "
        "reference for the normalised one: Tr(P^perp Sigma_j) / (m - r)",
        f"{'j':>2} | {'||C_j||_F^2: (a)':>16} {'(b)':>8} {'(c)':>9} | {'normalised: (a)':>15} "
        f"{'(b)':>7} {'(c)':>7} | {'reference: (a)':>14} {'(b)':>7} {'(c)':>7}",
    ]
    for t in rows:
        a, b, c = t["random"], t["optimal"], t["learned"]
        lines.append(
            f"{t['task']:>2} | {a['C_fro2'][0]:16.3f} {b['C_fro2']:8.3f} {c['C_fro2']:9.3f} | "
            f"{a['normalized_fro'][0]:15.4f} {b['normalized_fro']:7.4f} "
            f"{c['normalized_fro']:7.4f} | {a['residual'][0] / free:14.4f} "
            f"{b['residual'] / free:7.4f} {c['residual'] / free:7.4f}"
        )
    lines += ["", "||A_k B_k^T||_2, the size of each concept's update ((a): mean over runs)"]
    lines += [f"  {name}: " + ", ".join(f"{v:.2f}" for v in values) for name, values in
              sizes.items()]
    lines += [
        "",
        "forgetting L_j(W_T) - L_j(W_j) (Eq. 114) and, for (b), the Eq. 115 bound",
        *_mean_se_table(rows, "forgetting", "bound115", "Eq.115", "8.4f"),
    ]
    return "\n".join(lines + ["", _forgetting_summary(s, rows)])


def _forgetting_summary(s: LinearSetting, rows: Rows) -> str:
    """How often (b) beats (a)'s mean crosstalk, and the ratios of the means (a) / (b)."""
    smaller = sum(t["optimal"]["crosstalk"] < t["random"]["crosstalk"][0] for t in rows)
    lines = [
        f"crosstalk with the Ky Fan bases is below the frozen-random mean for {smaller} of "
        f"{s.num_tasks - 1} concepts; mean over concepts: "
        f"(a) {_mean_of(rows, 'crosstalk', 'random'):.4f}, "
        f"(b) {_mean_of(rows, 'crosstalk', 'optimal'):.4f}, "
        f"(c) {_mean_of(rows, 'crosstalk', 'learned'):.4f}",
        "ratios of the means over concepts, frozen random (a) over Ky Fan (b):",
    ]
    for key, what in (
        ("crosstalk", "crosstalk E||C_j x||^2"),
        ("C_fro2", "size of the later updates ||C_j||_F^2"),
        ("normalized_fro", "normalised crosstalk E||C_j x||^2 / ||C_j||_F^2"),
        ("residual", "residual energy Tr(P^perp Sigma_j)"),
        ("normalized", "E||C_j x||^2 / ||C_j||_2^2 (Eq. 126: at most the residual energy)"),
    ):
        ratio = _mean_of(rows, key, "random") / _mean_of(rows, key, "optimal")
        lines.append(f"  {what:<66} {ratio:6.2f}")
    return "\n".join(lines)


def sweep_table(sweep: Rows) -> str:
    """Mean residual energy against the rank: Ky Fan (Eq. 90), Haar (Eq. 100), ``1 - r/m``."""
    lines = [f"{'r':>2} {'Ky Fan (Eq. 90)':>16} {'Haar (Eq. 100)':>15} {'1 - r/m':>8}"]
    lines += [f"{t['rank']:>2} {t['kyfan']:16.4f} {t['haar']:15.4f} {t['random']:8.4f}"
              for t in sweep]
    return "\n".join(lines)


def figure(s: LinearSetting, energy: Rows, forget: Rows, sweep: Rows) -> plt.Figure:
    """Three panels: residual energy per concept, crosstalk of the later concepts (log
    scale), residual energy against the rank."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 5.4))
    _residual_panel(axes[0], s, energy)
    _crosstalk_panel(axes[1], forget)
    _sweep_panel(axes[2], sweep)
    for ax in axes:
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    fig.tight_layout()
    return fig


def _residual_panel(ax: plt.Axes, s: LinearSetting, rows: Rows) -> None:
    """Tr(P^perp_Bj Sigma_j) per concept: (a) mean ± sd over runs, Haar (Eq. 100 and the
    measured mean), (b) (Eq. 90), (c), and (b)'s protected energy."""
    tasks = [row["task"] for row in rows]
    ax.errorbar(tasks, [1 - row["oa_mean"] for row in rows], yerr=[row["oa_sd"] for row in rows],
                fmt="o-", capsize=3, color=COLORS["a"], label="(a) frozen random (mean ± sd)")
    ax.plot(tasks, [row["eq100"] for row in rows], "k--", label=HAAR_LABEL)
    ax.plot(tasks, [row["haar_residual_mean"] for row in rows], "kx",
            label=f"   measured, {s.draws} draws")
    ax.plot(tasks, [row["optimal_residual"] for row in rows], "s-", color=COLORS["b"],
            label="(b) Ky Fan optimal (Eq. 90)")
    ax.plot(tasks, [row["learned_residual"] for row in rows], "^-", color=COLORS["c"],
            label="(c) learned by GD")
    ax.plot(tasks, [row["protected"] for row in rows], ":", color="gray",
            label="(b): energy in earlier subspaces")
    ax.set(xlabel="concept j", ylabel=r"residual energy Tr$(P^\perp_{B_j}\Sigma_j)$",
           title=f"residual energy (m = {s.m}, r = {s.r})", ylim=(0, 1.05))


def _crosstalk_panel(ax: plt.Axes, rows: Rows) -> None:
    """E||C_j x||^2 per concept: (a) mean ± SE over runs, (b), (c)."""
    tasks = [row["task"] for row in rows]
    ax.errorbar(tasks, [row["random"]["crosstalk"][0] for row in rows],
                yerr=[row["random"]["crosstalk"][1] for row in rows], fmt="o-", capsize=3,
                color=COLORS["a"], label="(a) frozen random (mean ± SE)")
    ax.plot(tasks, [row["optimal"]["crosstalk"] for row in rows], "s-", color=COLORS["b"],
            label="(b) Ky Fan optimal")
    ax.plot(tasks, [row["learned"]["crosstalk"] for row in rows], "^-", color=COLORS["c"],
            label="(c) learned by GD")
    ax.set(xlabel="concept j", ylabel=r"$E\|C_jx\|^2$", yscale="log",
           title="crosstalk of later concepts")


def _sweep_panel(ax: plt.Axes, sweep: Rows) -> None:
    """Mean residual energy against the rank: (a) ``1 - r/m``, Haar (Eq. 100), (b) (Eq. 90)."""
    rk = [t["rank"] for t in sweep]
    ax.plot(rk, [t["random"] for t in sweep], "o-", color=COLORS["a"],
            label="(a) frozen random, 1 - r/m")
    ax.plot(rk, [t["haar"] for t in sweep], "k--", label=HAAR_LABEL)
    ax.plot(rk, [t["kyfan"] for t in sweep], "s-", color=COLORS["b"],
            label="(b) Ky Fan optimal, Eq. 90")
    ax.set(xlabel="rank r", ylabel="mean residual energy over concepts",
           title="residual energy vs rank", ylim=(0, 1.05))
