"""SeqLoRA's stylised linear setting (Sec. 2.4 Example 1; App. C.2 Thm 7 / Prop. 2; App. E Thm 8).

A linear model ``W = W0 + sum_j A_j B_j^T`` (SeqLoRA's letters: ``A_j`` is ``n x r``, ``B_j``
the ``m x r`` *input basis*) learns ``num_tasks`` concepts in sequence, each with ``B_j``
orthogonal to the earlier bases (Eq. 5) and the exact least-squares ``A_j``. Everything is a
closed-form population quantity in float64 except the Monte-Carlo checks.

:class:`LinearSetting` holds the parameters, the one ``torch.Generator`` seeded by ``seed`` and
the concepts drawn from it (spectrum, ``W0``, covariances ``Sigma_j``, targets ``W*_j``). Later
draws come from the same generator, so the functions below must be called in the notebook's
order (``reproductions/seqlora_linear.ipynb``) to reproduce its numbers: the three basis choices
(:func:`frozen_random_runs`, :func:`kyfan_run`, :func:`learned_run`), :func:`energy_rows`,
:func:`learned_vs_kyfan`, :func:`forgetting_rows`, then the draw-free rest.

Every paper identity is checked on every call; a violation raises :class:`PaperIdentityError`
naming the equation. The tables and the figure are in :mod:`janus.reporting.seqlora_linear`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from janus.core import geometry as geo
from janus.core.errors import ConfigError

F64 = torch.float64
PAPER = "SeqLoRA (arXiv 2605.22743): Sec. 2.4 Ex. 1, App. C.2 Thm 7 / Prop. 2, App. E Thm 8"
# the quantities averaged over the frozen-random runs in a forgetting row
FORGETTING_KEYS = (
    "crosstalk", "forgetting", "normalized", "normalized_fro", "residual", "C_spec2", "C_fro2"
)


class PaperIdentityError(AssertionError):
    """A formula of the paper does not hold in the computed numbers (a bug, or bad luck in a
    statistical check at several standard errors)."""


def require(ok: bool, what: str) -> None:
    """Raise :class:`PaperIdentityError` with ``what`` (the equation and the values) unless
    ``ok``; unlike ``assert`` it also runs under ``python -O``."""
    if not ok:
        raise PaperIdentityError(what)


@dataclass
class LinearSetting:
    """The parameters and the concepts of App. E, Eq. 108-112 (``n = m``).

    ``Sigma_j = Q_j diag(spectrum) Q_j^T`` with a Haar rotation ``Q_j`` and a geometric
    spectrum (``decay**(i-1)``, unit trace); ``W*_j = W0 + D_j`` with ``D_j`` Haar orthogonal.
    Drawn at construction, in this order: ``W0``, then per concept ``Q_j`` and ``D_j``.
    """

    seed: int = 0
    m: int = 32
    r: int = 2
    num_tasks: int = 6
    draws: int = 200
    decay: float = 0.75
    noise: float = 0.1
    gd_steps: int = 300
    gd_lr: float = 10.0
    mc_samples: int = 4000
    generator: torch.Generator = field(init=False, repr=False)
    spectrum: torch.Tensor = field(init=False, repr=False)
    W0: torch.Tensor = field(init=False, repr=False)
    Sigmas: list[torch.Tensor] = field(init=False, repr=False)
    targets: list[torch.Tensor] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if min(self.m, self.r, self.num_tasks) < 1:
            raise ConfigError(f"m, r and num_tasks must be >= 1, got {self.m}, {self.r}, "
                              f"{self.num_tasks}")
        if self.num_tasks * self.r > self.m:
            raise ConfigError(
                f"num_tasks * r = {self.num_tasks} * {self.r} > m = {self.m}: the orthogonality "
                "constraint (Eq. 5) allows at most m / r concepts (Sec. 5); lower num_tasks or r"
            )
        if min(self.draws, self.mc_samples) < 2:
            raise ConfigError(f"draws and mc_samples need >= 2 samples for a standard error, "
                              f"got {self.draws}, {self.mc_samples}")
        self.generator = torch.Generator().manual_seed(self.seed)
        spectrum = self.decay ** torch.arange(self.m, dtype=F64)
        self.spectrum = spectrum / spectrum.sum()
        self.W0 = self.randn(self.n, self.m) / math.sqrt(self.m)
        self.Sigmas, self.targets = [], []
        for _ in range(self.num_tasks):
            Q = self.haar_frame(self.m, self.m)
            self.Sigmas.append(Q @ torch.diag(self.spectrum) @ Q.T)
            self.targets.append(self.W0 + self.haar_frame(self.n, self.n))

    @property
    def n(self) -> int:
        """The output dimension (equal to ``m``)."""
        return self.m

    @property
    def eye(self) -> torch.Tensor:
        """``I_m`` in float64."""
        return torch.eye(self.m, dtype=F64)

    def randn(self, *shape: int) -> torch.Tensor:
        """A standard Gaussian float64 tensor from the setting's generator."""
        return torch.randn(*shape, generator=self.generator, dtype=F64)

    def haar_frame(self, rows: int, cols: int) -> torch.Tensor:
        """A Haar-random ``rows x cols`` frame: the QR of a Gaussian matrix with diag(R) > 0
        (:func:`~janus.core.geometry.qr_retraction`'s sign convention)."""
        return geo.qr_retraction(self.randn(rows, cols))

    def stack(self, bases: Sequence[torch.Tensor]) -> torch.Tensor:
        """``B_int = [B_1, ..., B_{j-1}]`` (``m x (j-1) r``); empty for the first concept."""
        return torch.cat(list(bases), 1) if bases else torch.zeros(self.m, 0, dtype=F64)

    def loss(self, W: torch.Tensor, j: int) -> float:
        """Eq. 108, population risk of concept ``j``:
        ``Tr((W - W*_j) Sigma_j (W - W*_j)^T) + n noise^2``."""
        D = W - self.targets[j]
        return float(torch.trace(D @ self.Sigmas[j] @ D.T)) + self.n * self.noise**2

    def loss_grad(self, W: torch.Tensor, j: int) -> torch.Tensor:
        """Eq. 121: ``grad L_j(W) = 2 E[(W x - y) x^T] = 2 (W - W*_j) Sigma_j``."""
        return 2 * (W - self.targets[j]) @ self.Sigmas[j]

    def fit_A(self, W_prev: torch.Tensor, j: int, B: torch.Tensor) -> torch.Tensor:
        """``argmin_A L_j(W_prev + A B^T) = (W*_j - W_prev) Sigma_j B (B^T Sigma_j B)^-1``
        (the lower level of Eq. 6, in closed form)."""
        S = self.Sigmas[j]
        return (self.targets[j] - W_prev) @ S @ B @ torch.linalg.inv(B.T @ S @ B)

    def reduced_loss(self, W_prev: torch.Tensor, j: int, B: torch.Tensor) -> float:
        """``Phi(B) = min_A L_j(W_prev + A B^T)``, the reduced bilevel objective of Eq. 6."""
        return self.loss(W_prev + self.fit_A(W_prev, j, B) @ B.T, j)

    def eckart_young_loss(self) -> float:
        """The best rank-r loss of concept 1 from ``W0``: ``1 - sum_{q<=r} lambda_q + n
        noise^2`` (Eckart-Young in the Sigma-norm, ``D_1`` orthogonal)."""
        return 1.0 - float(self.spectrum[: self.r].sum()) + self.n * self.noise**2


@dataclass
class ConceptRun:
    """One sequence of concepts: per concept the basis ``B_j``, the factor ``A_j`` and the
    model ``W_j`` after it (Eq. 110); ``log`` holds method (c)'s descent per concept as
    (loss at the start, final loss, final step size)."""

    B: list[torch.Tensor] = field(default_factory=list)
    A: list[torch.Tensor] = field(default_factory=list)
    W: list[torch.Tensor] = field(default_factory=list)
    log: list[tuple[float, float, float]] = field(default_factory=list)


Chooser = Callable[[int, list[torch.Tensor], torch.Tensor], torch.Tensor]


def residual(B: torch.Tensor, Sigma: torch.Tensor) -> float:
    """Eq. 112: the residual energy ``Tr(P_B^perp Sigma)``, ``P_B`` the projector onto col(B)."""
    P_perp = geo.orthogonal_complement_projector(geo.qr_retraction(B))
    return float(torch.trace(P_perp @ Sigma))


def captured(B: torch.Tensor, Sigma: torch.Tensor) -> float:
    """The captured energy ``Tr(P_B Sigma) = Tr Sigma - Tr(P_B^perp Sigma)``."""
    return float(torch.trace(Sigma)) - residual(B, Sigma)


def spectral(M: torch.Tensor) -> float:
    """The spectral norm ``||M||_2``."""
    return float(torch.linalg.matrix_norm(M, 2))


def run_sequence(s: LinearSetting, choose: Chooser, run: ConceptRun | None = None) -> ConceptRun:
    """Learn concepts 1..T in order (Eq. 110): ``B_j = choose(j, earlier bases, W_{j-1})``,
    then the exact ``A_j`` (:meth:`LinearSetting.fit_A`)."""
    run = ConceptRun() if run is None else run
    W = s.W0.clone()
    for j in range(s.num_tasks):
        B = choose(j, run.B, W)
        A = s.fit_A(W, j, B)
        W = W + A @ B.T
        run.B.append(B), run.A.append(A), run.W.append(W)
    return run


def frozen_random_runs(s: LinearSetting) -> list[ConceptRun]:
    """Method (a), Orthogonal Adaptation: per run one Haar orthogonal ``m x m`` matrix whose
    j-th block of r columns is ``B_j`` (``draws`` runs, one draw each)."""
    runs = []
    for _ in range(s.draws):
        Q = s.haar_frame(s.m, s.m)
        runs.append(run_sequence(s, lambda j, bases, W, Q=Q: Q[:, j * s.r : (j + 1) * s.r]))
    return runs


def kyfan_run(s: LinearSetting) -> ConceptRun:
    """Method (b), Thm 7: ``B_j`` spans the top-r eigenvectors of the compressed covariance
    (Eq. 87), :func:`~janus.core.geometry.optimal_feasible_basis` (no draws)."""
    return run_sequence(
        s, lambda j, bases, W: geo.optimal_feasible_basis(s.Sigmas[j], s.stack(bases), s.r)
    )


def learn_basis(
    s: LinearSetting, j: int, bases: list[torch.Tensor], W_prev: torch.Tensor
) -> tuple[torch.Tensor, tuple[float, float, float]]:
    """Method (c) for concept ``j``: projected gradient descent on ``Phi(B)`` from a
    Haar-random feasible start (one ``randn(m, r)``). Each step is projected with Eq. 17
    (eps = 0) and re-orthonormalised; a step that would raise ``Phi`` is halved. The gradient
    is ``grad_W L^T A*`` (envelope theorem). Returns ``B_j`` and (start loss, final, step)."""
    B_int = s.stack(bases)
    B = geo.qr_retraction(geo.regularized_complement_projection(s.randn(s.m, s.r), B_int, 0.0))
    lr, current = s.gd_lr, s.reduced_loss(W_prev, j, B)
    first = current
    for _ in range(s.gd_steps):
        A = s.fit_A(W_prev, j, B)
        grad_B = s.loss_grad(W_prev + A @ B.T, j).T @ A  # grad_B L at A = A*(B)
        while lr > 1e-12:
            cand = geo.qr_retraction(
                geo.regularized_complement_projection(B - lr * grad_B, B_int, 0.0)
            )
            new = s.reduced_loss(W_prev, j, cand)
            if new <= current:
                B, current = cand, new
                break
            lr /= 2
    return B, (first, current, lr)


def learned_run(s: LinearSetting) -> ConceptRun:
    """Method (c): every basis learned by :func:`learn_basis`; ``ConceptRun.log`` keeps its
    descent."""
    run = ConceptRun()

    def choose(j: int, bases: list[torch.Tensor], W_prev: torch.Tensor) -> torch.Tensor:
        B, entry = learn_basis(s, j, bases, W_prev)
        run.log.append(entry)
        return B

    return run_sequence(s, choose, run)


def check_orthogonality(runs: dict[str, Sequence[ConceptRun]], tol: float = 1e-12) -> float:
    """Eq. 5: ``|B_i^T B_j| < tol`` for i < j after orthonormalisation, for every run of
    every method in ``runs`` (name -> runs); returns the worst entry."""
    worst_all = 0.0
    for name, group in runs.items():
        for run in group:
            U = [geo.qr_retraction(B) for B in run.B]
            worst = max(
                (float((U[i].T @ U[j]).abs().max()) for j in range(len(U)) for i in range(j)),
                default=0.0,
            )
            require(worst < tol, f"Eq. 5 fails for method {name}: max |B_i^T B_j| = {worst:.2e}")
            worst_all = max(worst_all, worst)
    return worst_all


def energy_rows(
    s: LinearSetting, optimal: ConceptRun, random_runs: Sequence[ConceptRun], learned: ConceptRun
) -> list[dict[str, Any]]:
    """Captured / residual energy per concept (Thm 7, Prop. 2, Eq. 85-101), in the free
    subspace left by (b)'s earlier bases, with ``draws`` Haar-random feasible bases per
    concept (``draws`` ``randn(m, r)``); (a) and (c) in their own free subspaces.

    Checks: (b) captures the Ky Fan sum (Eq. 96) and leaves Eq. 90; Eq. 89 on every draw; no
    draw beats Ky Fan; the Haar mean within 4 SE of Eq. 99; Eq. 101; (a)'s mean within 4 SE
    of r/m (Eq. 99 averaged over the earlier random blocks).
    """
    rows = []
    I_m, m, r, draws = s.eye, s.m, s.r, s.draws
    for j in range(s.num_tasks):
        Sigma, B_int = s.Sigmas[j], s.stack(optimal.B[:j])
        P_free = geo.regularized_complement_projection(I_m, B_int, 0.0)  # Eq. 85
        S_tilde = P_free @ Sigma @ P_free  # Eq. 87
        evals, evecs = torch.linalg.eigh(P_free)
        Q_free = evecs[:, evals > 0.5]  # orthonormal basis of the free subspace
        d_free = Q_free.shape[1]
        require(d_free == m - j * r, f"Eq. 86: d_free = {d_free}, expected {m - j * r}")
        lam = torch.linalg.eigvalsh(Q_free.T @ Sigma @ Q_free).flip(0)  # Eq. 88, on range(P_free)
        protected = float(torch.trace((I_m - P_free) @ Sigma))
        tr_tilde = float(torch.trace(S_tilde))
        kyfan = float(lam[:r].sum())  # Eq. 96
        caps, eq89_err = [], 0.0
        for _ in range(draws):
            U = geo.qr_retraction(geo.regularized_complement_projection(s.randn(m, r), B_int, 0.0))
            cap = float(torch.trace(U.T @ S_tilde @ U))
            eq89_err = max(eq89_err, abs(residual(U, Sigma) - (protected + tr_tilde - cap)))
            caps.append(cap)
        caps = torch.tensor(caps, dtype=F64)
        mean, se = float(caps.mean()), float(caps.std() / math.sqrt(draws))
        eq99 = r / d_free * tr_tilde
        oa_caps = torch.tensor([captured(rr.B[j], Sigma) for rr in random_runs], dtype=F64)
        row = dict(
            task=j + 1,
            d_free=d_free,
            protected=protected,
            kyfan=kyfan,
            optimal=captured(optimal.B[j], Sigma),
            eq90=protected + float(lam[r:].sum()),
            optimal_residual=residual(optimal.B[j], Sigma),
            eq99=eq99,
            eq100=protected + (1 - r / d_free) * tr_tilde,
            haar_mean=mean,
            haar_se=se,
            haar_max=float(caps.max()),
            haar_residual_mean=protected + tr_tilde - mean,
            z=(mean - eq99) / se if se > 0 else 0.0,
            oa_mean=float(oa_caps.mean()),
            oa_sd=float(oa_caps.std()),
            oa_se=float(oa_caps.std() / math.sqrt(draws)),
            learned=captured(learned.B[j], Sigma),
            learned_residual=residual(learned.B[j], Sigma),
        )
        rows.append(row)
        _check_energy_row(row, eq89_err, r / m)
    return rows


def _check_energy_row(row: dict[str, Any], eq89_err: float, oa_expected: float) -> None:
    """The identities of :func:`energy_rows` for one concept."""
    j, kyfan = row["task"], row["kyfan"]
    require(abs(row["optimal"] - kyfan) < 1e-10,
            f"Thm 7 / Eq. 96, concept {j}: (b) captures {row['optimal']}, Ky Fan sum {kyfan}")
    require(abs(row["optimal_residual"] - row["eq90"]) < 1e-10,
            f"Eq. 90, concept {j}: residual {row['optimal_residual']} vs {row['eq90']}")
    require(eq89_err < 1e-12, f"Eq. 89, concept {j}: max error {eq89_err:.2e} over the draws")
    require(row["haar_max"] <= kyfan + 1e-12,
            f"Thm 7, concept {j}: a Haar draw captures {row['haar_max']} > Ky Fan {kyfan}")
    require(abs(row["haar_mean"] - row["eq99"]) <= 4 * row["haar_se"] + 1e-12,
            f"Eq. 99, concept {j}: Haar mean {row['haar_mean']:.5f} vs {row['eq99']:.5f}: "
            f"z = {row['z']:.2f}")
    require(kyfan - row["eq99"] >= -1e-12,
            f"Eq. 101, concept {j}: Ky Fan {kyfan} below the Haar expectation {row['eq99']}")
    require(abs(row["oa_mean"] - oa_expected) <= 4 * row["oa_se"] + 1e-12,
            f"Eq. 99 averaged over (a)'s blocks, concept {j}: mean {row['oa_mean']:.5f} vs "
            f"r/m = {oa_expected:.5f} (SE {row['oa_se']:.5f})")


def isotropic_gap(s: LinearSetting, optimal: ConceptRun) -> tuple[int, float]:
    """Prop. 2's exception: with ``Sigma = I/m`` and (b)'s first T-1 bases protected, Ky Fan
    minus the Haar expectation (Eq. 101) is zero; returns ``(d_free, gap)``."""
    I_m = s.eye
    iso = I_m / s.m
    B_int = s.stack(optimal.B[:-1])
    d_free = s.m - B_int.shape[1]
    gap = captured(geo.optimal_feasible_basis(iso, B_int, s.r), iso) - s.r / d_free * float(
        torch.trace(geo.regularized_complement_projection(I_m, B_int, 0.0) @ iso)
    )
    require(abs(gap) < 1e-12, f"Prop. 2 / Eq. 101 with isotropic Sigma: gap {gap:.2e} != 0")
    return d_free, gap


def learned_vs_kyfan(
    s: LinearSetting, learned: ConceptRun, optimal: ConceptRun
) -> list[dict[str, Any]]:
    """Method (c) against the Ky Fan basis of its own free subspace and state ``W_{j-1}``:
    task loss, captured energy, cosines of the principal angles. Checks that the step rule
    never raised the loss, the logged loss, and Eckart-Young at concept 1 (attained by (b),
    a lower bound for (c))."""
    rows = []
    for j in range(s.num_tasks):
        W_prev = learned.W[j - 1] if j else s.W0
        B_kf = geo.optimal_feasible_basis(s.Sigmas[j], s.stack(learned.B[:j]), s.r)
        U = geo.qr_retraction(learned.B[j])
        first, final, _ = learned.log[j]
        rows.append(dict(
            task=j + 1,
            loss_start=first,
            loss_learned=final,
            loss_kyfan=s.reduced_loss(W_prev, j, B_kf),
            captured_learned=captured(U, s.Sigmas[j]),
            captured_kyfan=captured(B_kf, s.Sigmas[j]),
            cosines=[float(c) for c in torch.linalg.svdvals(B_kf.T @ U)],
        ))
        require(final <= first + 1e-12, f"(c), concept {j + 1}: the descent raised the loss")
        again = s.reduced_loss(W_prev, j, learned.B[j])
        require(abs(final - again) < 1e-9,
                f"(c), concept {j + 1}: logged loss {final} but Phi(B_j) = {again}")
    best = s.eckart_young_loss()
    attained = s.loss(optimal.W[0], 0)
    require(abs(attained - best) < 1e-10,
            f"Eckart-Young, concept 1: (b) reaches {attained}, the bound is {best}")
    require(rows[0]["loss_learned"] >= best - 1e-10,
            f"Eckart-Young, concept 1: (c) reaches {rows[0]['loss_learned']} < bound {best}")
    return rows


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


def rank_sweep(s: LinearSetting, ranks: Sequence[int]) -> list[dict[str, float]]:
    """Mean residual energy over concepts per rank (ranks above m / T skipped): Ky Fan with
    (b)'s bases recomputed at that rank (Eq. 90), Haar in the same free subspaces (Eq. 100),
    frozen random ``1 - r/m``; checks Ky Fan <= Haar."""
    sweep = []
    I_m, T = s.eye, s.num_tasks
    for rank in [k for k in ranks if k * T <= s.m]:
        bases, kf, hr = [], [], []
        for j in range(T):
            B_int = s.stack(bases)
            B = geo.optimal_feasible_basis(s.Sigmas[j], B_int, rank)
            P_free = geo.regularized_complement_projection(I_m, B_int, 0.0)
            d_free = s.m - B_int.shape[1]
            protected = float(torch.trace((I_m - P_free) @ s.Sigmas[j]))
            compressed = float(torch.trace(P_free @ s.Sigmas[j] @ P_free))
            kf.append(residual(B, s.Sigmas[j]))
            hr.append(protected + (1 - rank / d_free) * compressed)
            bases.append(B)
        sweep.append(dict(rank=rank, kyfan=sum(kf) / T, haar=sum(hr) / T, random=1 - rank / s.m))
        require(sweep[-1]["kyfan"] <= sweep[-1]["haar"] + 1e-12,
                f"Eq. 101 at rank {rank}: Ky Fan residual above the Haar expectation")
    return sweep


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
