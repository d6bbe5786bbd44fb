"""SeqLoRA Thm 8 (App. E, Eq. 111-126): each concept's crosstalk, forgetting and their bounds,
and the norms of the updates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from janus.analysis.seqlora_linear.model import (
    F64,
    ConceptRun,
    LinearSetting,
    require,
    residual,
    spectral,
)
from janus.core import geometry as geo

# the quantities averaged over the frozen-random runs in a forgetting row
FORGETTING_KEYS = (
    "crosstalk", "forgetting", "normalized", "normalized_fro", "residual", "C_spec2", "C_fro2"
)


def forgetting(s: LinearSetting, run: ConceptRun, j: int, check_mc: bool = False) -> dict[str, Any]:
    """Thm 8 for concept ``j`` of ``run``: the crosstalk ``C_j = sum_{k>j} A_k B_k^T``
    (Eq. 111), its energy ``E||C_j x||^2`` (Eq. 123) and the forgetting (Eq. 114).

    Checks Eq. 111, 118, 124, 114, 115 and 126 and that ``W_j`` is stationary in ``A_j``;
    with ``check_mc`` also ``E||C_j x||^2`` against ``mc_samples`` Gaussian inputs (one
    ``randn(m, mc_samples)``, within 5 SE; adds ``mc_z``).
    """
    B_j, W_j, W_T = run.B[j], run.W[j], run.W[-1]
    C = sum(run.A[k] @ run.B[k].T for k in range(j + 1, s.num_tasks))  # Eq. 111
    task = f"concept {j + 1}"
    require(torch.allclose(W_T, W_j + C, atol=1e-10), f"Eq. 111, {task}: W_T != W_j + C_j")
    Sigma = s.Sigmas[j]
    P_perp = geo.orthogonal_complement_projector(geo.qr_retraction(B_j))
    leak = float((C @ (s.eye - P_perp)).norm())
    require(leak <= 1e-10 * float(C.norm()), f"Eq. 118, {task}: ||C_j P_Bj|| = {leak:.2e}")
    crosstalk = float(torch.trace(C @ Sigma @ C.T))  # E ||C_j x||^2, Eq. 123
    via_residual = float(torch.trace(C @ P_perp @ Sigma @ P_perp @ C.T))  # Eq. 124
    require(abs(crosstalk - via_residual) < 1e-10 * (1 + crosstalk),
            f"Eq. 124, {task}: {crosstalk} vs {via_residual}")
    grad = s.loss_grad(W_j, j)
    eps_j = float(grad.norm())
    require(float((grad @ B_j).norm()) < 1e-9 * (1 + eps_j),
            f"{task}: W_j is not stationary in A_j (grad L_j(W_j) B_j != 0)")
    forget = s.loss(W_T, j) - s.loss(W_j, j)
    inner = float((grad * C).sum())
    require(abs(forget - (crosstalk + inner)) < 1e-10 * (1 + abs(forget)),
            f"Eq. 114, {task}: forgetting {forget} vs crosstalk + inner {crosstalk + inner}")
    spec2, fro2 = spectral(C) ** 2, float(C.pow(2).sum())
    resid = residual(B_j, Sigma)
    bound115 = spec2 * resid + eps_j * math.sqrt(fro2)
    require(crosstalk <= spec2 * resid * (1 + 1e-12),
            f"Eq. 126, {task}: crosstalk {crosstalk} > ||C_j||_2^2 Tr(P^perp Sigma_j)")
    require(forget <= bound115 + 1e-12, f"Eq. 115, {task}: forgetting {forget} > {bound115}")
    res = dict(
        crosstalk=crosstalk,
        forgetting=forget,
        inner=inner,
        C_spec2=spec2,
        C_fro2=fro2,
        normalized=crosstalk / spec2 if spec2 > 0 else 0.0,
        normalized_fro=crosstalk / fro2 if fro2 > 0 else 0.0,
        residual=resid,
        bound115=bound115,
    )
    if check_mc:
        x = torch.linalg.cholesky(Sigma) @ s.randn(s.m, s.mc_samples)
        e = (C @ x).pow(2).sum(0)
        se = float(e.std()) / math.sqrt(s.mc_samples)
        res["mc_z"] = (float(e.mean()) - crosstalk) / se if se > 0 else 0.0
        require(abs(float(e.mean()) - crosstalk) <= 5 * se + 1e-12,
                f"Eq. 123 by Monte Carlo, {task}: z = {res['mc_z']:.2f}")
    return res


def forgetting_rows(
    s: LinearSetting, optimal: ConceptRun, learned: ConceptRun, random_runs: Sequence[ConceptRun]
) -> list[dict[str, Any]]:
    """:func:`forgetting` for concepts 1..T-1: (b) with the Monte-Carlo check, (c), and every
    run of (a) (the first with the Monte-Carlo check) as (mean, SE) of
    :data:`FORGETTING_KEYS`."""
    rows = []
    for j in range(s.num_tasks - 1):
        opt_f = forgetting(s, optimal, j, check_mc=True)
        lrn_f = forgetting(s, learned, j)
        rnd = [forgetting(s, rr, j, check_mc=(i == 0)) for i, rr in enumerate(random_runs)]
        stats = {}
        for key in FORGETTING_KEYS:
            v = torch.tensor([f[key] for f in rnd], dtype=F64)
            stats[key] = (float(v.mean()), float(v.std() / math.sqrt(len(rnd))))
        rows.append(dict(task=j + 1, optimal=opt_f, learned=lrn_f, random=stats))
    return rows


def update_norms(
    s: LinearSetting, random_runs: Sequence[ConceptRun], optimal: ConceptRun, learned: ConceptRun
) -> dict[str, list[float]]:
    """``||A_k B_k^T||_2`` per concept and method ((a): mean over runs)."""

    def norms(run: ConceptRun) -> list[float]:
        return [spectral(A @ B.T) for A, B in zip(run.A, run.B, strict=True)]

    per_run = [norms(rr) for rr in random_runs]
    return {
        "(a)": [sum(v[k] for v in per_run) / len(per_run) for k in range(s.num_tasks)],
        "(b)": norms(optimal),
        "(c)": norms(learned),
    }
