"""Claims about EBLoRA's geometry (abstract + public code, see shared/papers/eblora-notes.md),
checked against ``janus.core.geometry``.

Only the abstract of the paper is available; the claims are the mathematical facts the
method relies on: a magnitude-times-direction update ``dW = s U Vt`` with ``U`` (``d_out x
r``, orthonormal columns) and ``Vt`` (``r x d_in``, orthonormal rows) has a balanced spectrum;
the polar retraction is the nearest orthonormal matrix; the restricted tangent projection
keeps ``Vt`` orthogonal to the protected input subspace of earlier tasks. Library
convention: ``y = W x``, ``W`` is ``d_out x d_in``. float64, fixed seeds, small dimensions.
"""

from __future__ import annotations

from typing import Literal

import torch

from janus.core import geometry as geo
from proofs._helpers import eye, gate, gen, listed, orthonormal, randn, rel, slope
from proofs.core import Outcome, claim

PAPER = "EBLoRA"


def _sym(M: torch.Tensor) -> torch.Tensor:
    return (M + M.T) / 2


def _tangent_residual(X: torch.Tensor, Z: torch.Tensor) -> float:
    """||sym(X^T Z)|| (tall X) or ||sym(Z X^T)|| (wide X): 0 iff Z is tangent at X."""
    S = X.T @ Z if X.shape[0] >= X.shape[1] else Z @ X.T
    return float(_sym(S).norm())


def _orthonormality(X: torch.Tensor) -> float:
    G = X.T @ X if X.shape[0] >= X.shape[1] else X @ X.T
    return float((G - eye(G.shape[0])).abs().max())


def _random_stiefel(g: torch.Generator, rows: int, cols: int) -> torch.Tensor:
    return orthonormal(g, rows, cols) if rows >= cols else orthonormal(g, cols, rows).T


@claim("eblora.spectrum.balanced", paper=PAPER, where="abstract; code: dW = s U Vt",
       method="numeric", tolerance=1e-12)
def spectrum_balanced() -> Outcome:
    """for U = polar_retraction(.) (d_out x r) and Vt = polar_retraction(.) (r x d_in), s U Vt has
    exactly r non-zero singular values, all equal to s (a plain LoRA product B A has an imbalanced
    spectrum), also after restricted-Stiefel steps"""
    g = gen(1)
    errs, lora_ratio = [], []
    for d_out, d_in, r, s in ((8, 6, 3, 0.7), (5, 9, 2, 2.5), (6, 6, 6, 1.3)):
        U = geo.polar_retraction(randn(g, d_out, r))
        k = 1 if r < d_in else 0  # a protected direction when there is room for one
        P = orthonormal(g, d_in, k) if k else torch.zeros(d_in, 0, dtype=U.dtype)
        Vt = geo.polar_retraction(randn(g, r, d_in) @ (eye(d_in) - P @ P.T))
        for _ in range(5):  # a few restricted steps keep the spectrum balanced
            Z = geo.restricted_tangent_projection(Vt, randn(g, r, d_in), P)
            Vt = geo.polar_retraction(Vt - 0.2 * Z)
            U = geo.polar_retraction(
                U - 0.2 * geo.stiefel_tangent_projection(U, randn(g, d_out, r))
            )
        sv = torch.linalg.svdvals(s * U @ Vt)
        errs.append(float((sv[:r] - s).abs().max()) / s)
        errs.append(float(sv[r:].abs().max()) / s if len(sv) > r else 0.0)
        A, B = randn(g, r, d_in), randn(g, d_out, r)
        lsv = torch.linalg.svdvals(B @ A)
        lora_ratio.append(float(lsv[0] / lsv[r - 1]))
    return Outcome(
        max(errs),
        "sigma_1/sigma_r of a Gaussian LoRA product B A: "
        + listed(lora_ratio, ".1f"),
    )


@claim("eblora.polar.nearest", paper=PAPER, where="code: polar retraction", method="numeric",
       tolerance=1e-10)
def polar_nearest() -> Outcome:
    """polar_retraction(M) = U V^T is orthonormal, equals M (M^T M)^-1/2 (tall) / (M M^T)^-1/2 M
    (wide), attains tr(Q^T M) = ||M||_* (the Frobenius-optimal property), is closer to M than 500
    random orthonormal matrices and the QR factor, is stationary for ||M - Q||^2 on the manifold,
    and is a retraction: R(X) = X, R(X + t xi) - (X + t xi) = O(t^2)"""
    g = gen(2)
    errs, slopes, margins = [], [], []
    for rows, cols in ((7, 3), (3, 7), (5, 5)):
        M = randn(g, rows, cols)
        Q = geo.polar_retraction(M)
        errs.append(_orthonormality(Q))
        if rows >= cols:
            w, V = torch.linalg.eigh(M.T @ M)
            ref = M @ V @ torch.diag(w.rsqrt()) @ V.T
        else:
            w, V = torch.linalg.eigh(M @ M.T)
            ref = V @ torch.diag(w.rsqrt()) @ V.T @ M
        errs.append(rel(Q, ref))
        nuclear = float(torch.linalg.svdvals(M).sum())
        errs.append(abs(float((Q * M).sum()) - nuclear) / nuclear)
        dist = float((M - Q).norm())
        others = [float((M - _random_stiefel(g, rows, cols)).norm()) for _ in range(500)]
        qr = geo.qr_retraction(M if rows >= cols else M.T)
        others.append(float((M - (qr if rows >= cols else qr.T)).norm()))
        margins.append(min(others) - dist)
        errs.append(gate(margins[-1] > 0))
        # stationarity: the tangent part of grad 1/2||M - Q||^2 = Q - M vanishes at Q
        errs.append(float(geo.stiefel_tangent_projection(Q, Q - M).norm()) / float(M.norm()))
        X = _random_stiefel(g, rows, cols)
        errs.append(rel(geo.polar_retraction(X), X))
        xi = geo.stiefel_tangent_projection(X, randn(g, rows, cols))
        ts = [1e-2, 1e-3, 1e-4]
        gaps = [float((geo.polar_retraction(X + t * xi) - (X + t * xi)).norm()) for t in ts]
        slopes.append(slope(ts, gaps))
    errs.append(gate(all(abs(k - 2) < 0.1 for k in slopes)))
    return Outcome(
        max(errs),
        f"distance margin to the best of 500 random orthonormal / QR: {listed(margins, '.3f')}; "
        f"retraction slopes {listed(slopes, '.3f')}",
    )


def _tangent_projector_matrix(X: torch.Tensor, P: torch.Tensor | None) -> torch.Tensor:
    """The orthogonal projector (in vec space, row-major) onto {Z : sym(Z X^T) = 0 (wide X) or
    sym(X^T Z) = 0 (tall X), Z P = 0}, from an explicit null-space basis of the constraints."""
    rows, cols = X.shape
    n = rows * cols
    constraints = []
    basis = torch.eye(n, dtype=X.dtype)
    for i in range(n):
        Z = basis[i].reshape(rows, cols)
        S = X.T @ Z if rows >= cols else Z @ X.T
        parts = [(S + S.T).reshape(-1)]
        if P is not None:
            parts.append((Z @ P).reshape(-1))
        constraints.append(torch.cat(parts))
    C = torch.stack(constraints, 1)  # columns: constraint values of each basis matrix
    _, sv, Vh = torch.linalg.svd(C)
    rank = int((sv > 1e-10 * sv[0]).sum())
    N = Vh[rank:].T  # null space of C
    return N @ N.T


@claim("eblora.tangent.projection", paper=PAPER, where="code: Riemannian gradient",
       method="numeric", tolerance=1e-10)
def tangent_projection() -> Outcome:
    """stiefel_tangent_projection(X, G) is the orthogonal projection onto the tangent space of the
    Stiefel manifold at X, for orthonormal columns (tall X) and rows (wide X): tangent, idempotent,
    self-adjoint, equal to the projector built from an explicit null-space basis; the two formulas
    agree for square orthogonal X"""
    g = gen(3)
    errs = []
    for rows, cols in ((6, 2), (2, 6), (4, 4)):
        X = _random_stiefel(g, rows, cols)
        G, H = randn(g, rows, cols), randn(g, rows, cols)
        Z = geo.stiefel_tangent_projection(X, G)
        errs.append(_tangent_residual(X, Z) / float(G.norm()))
        errs.append(rel(geo.stiefel_tangent_projection(X, Z), Z))
        lhs = float((Z * H).sum())
        rhs = float((G * geo.stiefel_tangent_projection(X, H)).sum())
        errs.append(abs(lhs - rhs) / float(G.norm() * H.norm()))
        Pm = _tangent_projector_matrix(X, None)
        errs.append(rel(Z.reshape(-1), Pm @ G.reshape(-1)))
        if rows == cols:
            other = G - _sym(G @ X.T) @ X
            errs.append(rel(Z, other))
    return Outcome(max(errs))


@claim("eblora.restricted.orthogonal", paper=PAPER, where="abstract; code: restricted Stiefel",
       method="numeric", tolerance=1e-10)
def restricted_orthogonal() -> Outcome:
    """restricted_tangent_projection(Vt, G, P) is the orthogonal projection onto the tangent space
    of {Vt : Vt Vt^T = I, Vt P = 0} (Z P = 0, sym(Z Vt^T) = 0, equal to the explicit projector); 40
    steps Vt <- polar_retraction(Vt - lr Z) keep Vt Vt^T = I and ||Vt P|| ~ 0, whereas the
    unrestricted tangent projection drifts into span(P)"""
    g = gen(4)
    d_in, r, k = 7, 2, 3
    P = orthonormal(g, d_in, k)
    Q = eye(d_in) - P @ P.T
    Vt = geo.polar_retraction(randn(g, r, d_in) @ Q)
    errs = [float((Vt @ P).norm())]
    G = randn(g, r, d_in)
    Z = geo.restricted_tangent_projection(Vt, G, P)
    errs += [
        float((Z @ P).norm()) / float(G.norm()),
        _tangent_residual(Vt, Z) / float(G.norm()),
        rel(Z.reshape(-1), _tangent_projector_matrix(Vt, P) @ G.reshape(-1)),
        rel(geo.restricted_tangent_projection(Vt, Z, P), Z),
    ]
    restricted, free = Vt.clone(), Vt.clone()
    for _ in range(40):
        G = randn(g, r, d_in)
        restricted = geo.polar_retraction(
            restricted - 0.3 * geo.restricted_tangent_projection(restricted, G, P)
        )
        free = geo.polar_retraction(free - 0.3 * geo.stiefel_tangent_projection(free, G))
        errs.append(float((restricted @ P).norm()))
        errs.append(_orthonormality(restricted))
    drift = float((free @ P).norm())
    errs.append(gate(drift > 1e-2))
    return Outcome(
        max(errs),
        f"after 40 steps ||Vt P||: restricted {float((restricted @ P).norm()):.1e}, "
        f"unrestricted {drift:.2f}",
    )


LeakMode = Literal["sgd", "none", "stiefel", "restricted"]


def projection_leak(
    V0: torch.Tensor, P: torch.Tensor, g: torch.Generator, mode: LeakMode,
    steps: int = 30, lr: float = 0.05,
) -> list[float]:
    """||Vt P||_F after each of ``steps`` polar-retracted steps from ``V0`` (rows orthonormal
    and orthogonal to span(P)) along standard normal gradients drawn from ``g``.

    ``"sgd"``: the raw gradient projected on the plain Stiefel tangent space; the other modes
    take an Adam step (0.9, 0.999, 1e-8) on the restricted-projected gradient and re-project it
    not at all (``"none"``), on the Stiefel tangent space (``"stiefel"``) or on the restricted
    tangent space (``"restricted"``, EBLoRA's projected AdamW step).
    """
    Vt, m, v, leak = V0.clone(), torch.zeros_like(V0), torch.zeros_like(V0), []
    for step in range(1, steps + 1):
        grad = randn(g, *V0.shape)
        if mode == "sgd":
            u = geo.stiefel_tangent_projection(Vt, grad)
        else:
            grad = geo.restricted_tangent_projection(Vt, grad, P)
            m = 0.9 * m + 0.1 * grad
            v = 0.999 * v + 0.001 * grad**2
            u = (m / (1 - 0.9**step)) / ((v / (1 - 0.999**step)).sqrt() + 1e-8)
            if mode == "stiefel":
                u = geo.stiefel_tangent_projection(Vt, u)
            elif mode == "restricted":
                u = geo.restricted_tangent_projection(Vt, u, P)
        Vt = geo.polar_retraction(Vt - lr * u)
        leak.append(float((Vt @ P).norm()))
    return leak


@claim("eblora.adam.reprojection", paper=PAPER, where="code: projected AdamW step",
       method="numeric", tolerance=1e-10, finding=True)
def adam_reprojection() -> Outcome:
    """measured: an Adam-style elementwise rescaling of the restricted-projected gradient leaves the
    restricted tangent space (Z P != 0), so Vt drifts into span(P) unless the step is projected
    again with restricted_tangent_projection; re-projecting with the plain Stiefel projection does
    not remove the drift; consistency (the checked error): with the restricted re-projection
    ||Vt P|| stays ~ 0"""
    g = gen(5)
    d_in, r, k = 8, 2, 3
    P = orthonormal(g, d_in, k)
    V0 = geo.polar_retraction(randn(g, r, d_in) @ (eye(d_in) - P @ P.T))
    leaks = {mode: projection_leak(V0, P, g, mode) for mode in ("none", "stiefel", "restricted")}
    errs = list(leaks["restricted"])
    leaks = {mode: leak[-1] for mode, leak in leaks.items()}
    errs.append(gate(leaks["none"] > 1e-3 and leaks["stiefel"] > 1e-3))
    return Outcome(
        max(errs),
        "||Vt P|| after 30 Adam steps: step not re-projected "
        f"{leaks['none']:.2e}, re-projected on the Stiefel tangent {leaks['stiefel']:.2e}, "
        f"with restricted_tangent_projection {leaks['restricted']:.1e}",
    )
