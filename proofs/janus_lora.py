"""Claims of Janus-LoRA (Sec. 3.3, App. A, Sec. 4.1), checked against ``janus.core.geometry``.

Every numeric check calls the functions of :mod:`janus.core.geometry` and :mod:`janus.core.metrics`
through their modules (``geo.safe_update``, ...), so what is proven is what the library runs,
and a test can swap a formula for a wrong one and watch the check fail. Symbolic checks
prove an equation in sympy on small explicit dimensions and then evaluate the same
instance with the library. All numbers are float64 with fixed seeds.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import sympy as sp
import torch

from janus.core import geometry as geo
from janus.core import metrics
from proofs._helpers import (
    F64,
    gate,
    gen,
    listed,
    randn,
    rel,
    slope,
    sym_matrix,
    sym_residual,
    to_torch,
)
from proofs.core import Outcome, claim

PAPER = "Janus-LoRA"


def _low_rank(g: torch.Generator, rows: int, cols: int, rank: int) -> torch.Tensor:
    return randn(g, rows, rank) @ randn(g, rank, cols)


def _basis(X: torch.Tensor, rank: int) -> torch.Tensor:
    """Orthonormal basis of the column space of X (its rank is known by construction)."""
    return torch.linalg.svd(X, full_matrices=False).U[:, :rank]


# ---------------------------------------------------------------- Thm 3.1, App. A.1


@claim("janus.thm31.symbolic", paper=PAPER, where="Thm 3.1, Eq. 13-25", method="symbolic",
       tolerance=1e-12)
def thm31_symbolic() -> Outcome:
    """dW_orig (I - X(X^T X)^-1 X^T) satisfies KKT stationarity (Eq. 17, Lambda of Eq. 21) and
    feasibility (Eq. 14); J(dW* + E) = J(dW*) + ||E||^2/2 for every feasible E, so it is the unique
    minimiser (2x3 dW, 3x1 X, symbolic); the library agrees on an instance"""
    W, X, Z = sym_matrix("w", 2, 3), sym_matrix("x", 3, 1), sym_matrix("z", 2, 3)
    gram_inv = (X.T * X).inv()
    P = X * gram_inv * X.T
    dW = W * (sp.eye(3) - P)  # Eq. 24-25
    lam = W * X * gram_inv  # Eq. 21
    stationarity = dW - W + lam * X.T  # Eq. 17
    feasibility = dW * X  # Eq. 14
    E = Z * (sp.eye(3) - P)  # a generic feasible direction: E X = 0
    # J(dW + E) - J(dW) = <dW - W, E> + ||E||^2 / 2; the cross term must vanish.
    cross = sp.Matrix([((dW - W).T * E).trace()])
    symbolic = sum(map(sym_residual, (stationarity, feasibility, E * X, cross)))
    values = {
        **{w: sp.Rational(k - 3, 2) for k, w in enumerate(W)},
        **{x: sp.Integer(k + 1) for k, x in enumerate(X)},
    }
    code = geo.safe_update_from_inputs(to_torch(W, values), to_torch(X, values))
    gap = rel(code, to_torch(dW, values))
    return Outcome(max(symbolic, gap), f"{symbolic:.0f} non-cancelling entries; code gap {gap:.1e}")


# (d_out, d_in, N, rank of X_past); square and rank-deficient cases included.
THM31_CASES = ((5, 8, 3, 3), (6, 6, 4, 4), (5, 8, 10, 3), (4, 7, 5, 2))


@claim("janus.thm31.numeric", paper=PAPER, where="Thm 3.1, App. A.1 Eq. 25", method="numeric",
       tolerance=1e-10)
def thm31_numeric() -> Outcome:
    """safe_update_from_inputs is feasible, KKT-stationary with Lambda = dW X (X^T X)^+, equals a
    generic KKT solve, is beaten by no feasible perturbation, and equals
    safe_update / orthogonal_complement_projector with V spanning X (incl. rank-deficient X)"""
    g = gen(31)
    errs = []
    for d_out, d_in, n, rank in THM31_CASES:
        W = randn(g, d_out, d_in)
        X = _low_rank(g, d_in, n, rank)
        V = _basis(X, rank)
        p_ref = V @ V.T
        eye = torch.eye(d_in, dtype=F64)
        dW = geo.safe_update_from_inputs(W, X)
        scale = float(W.norm() * torch.linalg.matrix_norm(X, 2))
        errs.append(float((dW @ X).norm()) / scale)  # feasibility, Eq. 14
        lam = W @ X @ torch.linalg.pinv(X.T @ X)  # Eq. 21 with the pseudo-inverse
        errs.append(rel(dW, W - lam @ X.T))  # stationarity, Eq. 17-18
        errs.append(rel(dW, W @ (eye - p_ref)))
        if rank == n:  # the paper's literal (X^T X)^-1 form
            errs.append(rel(dW, W @ (eye - X @ torch.linalg.inv(X.T @ X) @ X.T)))
        # Generic solver: KKT system of min 1/2||w - w0||^2 s.t. C w = 0, vec column-major.
        C = torch.kron(X.T.contiguous(), torch.eye(d_out, dtype=F64))
        m = C.shape[0]
        kkt = torch.cat(
            [
                torch.cat([torch.eye(d_out * d_in, dtype=F64), C.T], 1),
                torch.cat([C, torch.zeros(m, m, dtype=F64)], 1),
            ]
        )
        rhs = torch.cat([W.T.reshape(-1), torch.zeros(m, dtype=F64)])
        sol = torch.linalg.lstsq(kkt, rhs[:, None], driver="gelsd").solution[: d_out * d_in, 0]
        errs.append(rel(dW, sol.reshape(d_in, d_out).T))
        # No feasible perturbation does better: J(dW + E) - J(dW) - ||E||^2/2 = 0.
        J0 = 0.5 * float((dW - W).pow(2).sum())
        for t in (1e-3, 1e-1, 1.0):
            E = t * randn(g, d_out, d_in) @ (eye - p_ref)
            J = 0.5 * float((dW + E - W).pow(2).sum())
            errs.append(abs(J - J0 - 0.5 * float(E.pow(2).sum())) / (J0 + 1e-300))
        errs.append(rel(geo.safe_update(W, V), dW))
        errs.append(rel(W @ geo.orthogonal_complement_projector(V), dW))
    return Outcome(max(errs), f"{len(THM31_CASES)} instances, {len(errs)} checks")


# ---------------------------------------------------------------- GR, Eq. 6-7, App. A.2


@claim("janus.gr.symbolic", paper=PAPER, where="Eq. 6-7, A.2 Eq. 27-39", method="symbolic",
       tolerance=1e-12)
def gr_symbolic() -> Outcome:
    """with delta = gamma/s^2, Eq. 32 zeroes dJ_A/ddA (Eq. 28) and Eq. 39 zeroes dJ_B/ddB (Eq. 35)
    for any R; Eq. 38 = Eq. 39; B^T R = delta (B^T B + delta)^-1 B^T dW and
    R -> (I - B(B^T B)^-1 B^T) dW at delta = 0 (r = 1, 3x3, symbolic); code agrees"""
    s, gamma = sp.symbols("s gamma", positive=True)
    delta = gamma / s**2
    B, A = sym_matrix("b", 3, 1), sym_matrix("a", 1, 3)
    W, R_any = sym_matrix("v", 3, 3), sym_matrix("r", 3, 3)
    one = sp.eye(1)
    dA = (B.T * B + delta * one).inv() * B.T * W / s  # Eq. 32
    grad_A = -s * B.T * (W - s * B * dA) + gamma * dA  # Eq. 28
    dB_any = R_any * A.T * (A * A.T + delta * one).inv() / s  # Eq. 39 for an arbitrary R
    grad_B = -s * (R_any - s * dB_any * A) * A.T + gamma * dB_any  # Eq. 35
    eq38 = s * R_any * A.T * (s**2 * A * A.T + gamma * one).inv()
    R = W - s * B * dA  # Eq. 33
    limit_form = (sp.eye(3) - B * (B.T * B).inv() * B.T) * W
    residuals = (
        grad_A,
        grad_B,
        eq38 - dB_any,
        B.T * R - delta * (B.T * B + delta * one).inv() * B.T * W,
        R.applyfunc(sp.cancel).subs(gamma, 0) - limit_form,
    )
    symbolic = sum(map(sym_residual, residuals))
    values = {
        s: sp.Rational(3, 2),
        gamma: sp.Rational(1, 5),
        **{b: sp.Integer(k - 1) for k, b in enumerate(B)},
        **{a: sp.Rational(k + 2, 3) for k, a in enumerate(A)},
        **{w: sp.Rational(k % 4 - 1, 2) for k, w in enumerate(W)},
    }
    dA_code, dB_code = geo.rectify_factor_updates(
        to_torch(W, values), to_torch(A, values), to_torch(B, values), 1.5, 0.2
    )
    dB_ref = (R * A.T * (A * A.T + delta * one).inv() / s).subs(values)
    gap = max(rel(dA_code, to_torch(dA, values)), rel(dB_code, to_torch(dB_ref, {})))
    return Outcome(max(symbolic, gap), f"{symbolic:.0f} non-cancelling entries; code gap {gap:.1e}")


@claim("janus.gr.eq31-printed", paper=PAPER, where="A.2 Eq. 30-32", method="symbolic",
       tolerance=1e-12, finding=True)
def gr_eq31_printed() -> Outcome:
    """Eq. 31 as printed, (s^2 B^T B + gamma I)^-1 B^T dW, drops the factor s of Eq. 30: it is
    Eq. 32 divided by s and is not stationary unless s = 1 (Eq. 32 itself is right)"""
    s, gamma = sp.symbols("s gamma", positive=True)
    B, W = sym_matrix("b", 3, 1), sym_matrix("v", 3, 3)
    one = sp.eye(1)
    printed = (s**2 * B.T * B + gamma * one).inv() * B.T * W  # Eq. 31 as printed
    corrected = (s**2 * B.T * B + gamma * one).inv() * s * B.T * W  # Eq. 30 solved
    eq32 = (B.T * B + gamma / s**2 * one).inv() * B.T * W / s

    def grad(dA: sp.Matrix) -> sp.Matrix:  # Eq. 28
        return -s * B.T * (W - s * B * dA) + gamma * dA

    error = sum(map(sym_residual, (grad(corrected), corrected - eq32, printed * s - eq32)))
    bad = sym_residual(grad(printed))
    at_one = sym_residual(grad(printed).subs(s, 1))
    return Outcome(
        error,
        f"printed Eq. 31 = Eq. 32 / s; its gradient Eq. 28 is nonzero in {bad:.0f}/3 entries "
        f"(zero when s = 1: {at_one == 0})",
    )


# (d_out, d_in, r, s, gamma): square and rectangular, s above and below 1.
GR_CASES = ((7, 9, 3, 2.0, 0.3), (6, 6, 2, 0.5, 1e-2), (10, 5, 4, 1.7, 2.0))


def _ridge_lstsq(M: torch.Tensor, Y: torch.Tensor, gamma: float) -> torch.Tensor:
    """argmin_Z ||Y - M Z||^2 + gamma ||Z||^2 via lstsq on the stacked system [M; sqrt(g) I]."""
    k = M.shape[1]
    top = torch.cat([M, math.sqrt(gamma) * torch.eye(k, dtype=F64)])
    rhs = torch.cat([Y, torch.zeros(k, Y.shape[1], dtype=F64)])
    return torch.linalg.lstsq(top, rhs, driver="gelsd").solution


@claim("janus.gr.ridge", paper=PAPER, where="Eq. 6-7, A.2 Eq. 27-39", method="numeric",
       tolerance=1e-10)
def gr_ridge() -> Outcome:
    """rectify_factor_updates returns the minimisers of the ridge objectives Eq. 27 and Eq. 34 with
    penalty gamma (autograd gradient 0, Hessian positive definite, equal to a stacked lstsq ridge
    solve and to Eq. 31 (with s) / Eq. 38), i.e. Eq. 32/39 use gamma/s^2"""
    g = gen(6)
    errs, min_eig = [], math.inf
    for d_out, d_in, r, s, gamma in GR_CASES:
        W, A, B = randn(g, d_out, d_in), randn(g, r, d_in), randn(g, d_out, r)
        dA, dB = geo.rectify_factor_updates(W, A, B, s, gamma)
        R = W - s * B @ dA  # Eq. 33

        def J_A(x: torch.Tensor, W=W, B=B, s=s, gamma=gamma) -> torch.Tensor:  # Eq. 27
            return 0.5 * (W - s * B @ x).pow(2).sum() + 0.5 * gamma * x.pow(2).sum()

        def J_B(x: torch.Tensor, R=R, A=A, s=s, gamma=gamma) -> torch.Tensor:  # Eq. 34
            return 0.5 * (R - s * x @ A).pow(2).sum() + 0.5 * gamma * x.pow(2).sum()

        for J, x in ((J_A, dA), (J_B, dB)):
            x = x.clone().requires_grad_(True)
            (grad,) = torch.autograd.grad(J(x), x)
            errs.append(float(grad.norm()) / float(W.norm() * (abs(s) * B.norm() + 1)))
            H = torch.autograd.functional.hessian(J, x.detach()).reshape(x.numel(), x.numel())
            min_eig = min(min_eig, float(torch.linalg.eigvalsh(H)[0]))
        errs.append(rel(dA, _ridge_lstsq(s * B, W, gamma)))
        errs.append(rel(dB, _ridge_lstsq(s * A.T, R.T, gamma).T))
        eye = torch.eye(r, dtype=F64)
        errs.append(rel(dA, torch.linalg.solve(s**2 * B.T @ B + gamma * eye, s * B.T @ W)))
        errs.append(rel(dB, s * R @ A.T @ torch.linalg.inv(s**2 * A @ A.T + gamma * eye)))
    error = max(*errs, gate(min_eig > 0))
    return Outcome(error, f"smallest Hessian eigenvalue {min_eig:.3g} (>= gamma > 0)")


@claim("janus.gr.delta-limit", paper=PAPER, where="A.2 Eq. 33", method="numeric", tolerance=1e-8)
def gr_delta_limit() -> Outcome:
    """B^T R = delta (B^T B + delta I)^-1 B^T dW_safe exactly, so as delta -> 0,
    R -> (I - B(B^T B)^-1 B^T) dW_safe and B^T R -> 0, both linearly in delta"""
    g = gen(33)
    d_out, d_in, r, s = 8, 6, 3, 1.5
    W, A, B = randn(g, d_out, d_in), randn(g, r, d_in), randn(g, d_out, r)
    limit = W - B @ torch.linalg.solve(B.T @ B, B.T @ W)
    deltas = [10.0**-k for k in range(1, 10)]
    to_limit, orth, identity = [], [], []
    for delta in deltas:
        dA, _ = geo.rectify_factor_updates(W, A, B, s, delta * s**2)
        R = W - s * B @ dA
        to_limit.append(rel(R, limit))
        orth.append(float((B.T @ R).norm() / (B.norm() * W.norm())))
        exact = delta * torch.linalg.solve(B.T @ B + delta * torch.eye(r, dtype=F64), B.T @ W)
        identity.append(float((B.T @ R - exact).norm() / (B.norm() * W.norm())))
    slopes = (slope(deltas, to_limit), slope(deltas, orth))
    decreasing = all(b < a for seq in (to_limit, orth) for a, b in zip(seq, seq[1:], strict=False))
    error = max(
        *identity,
        to_limit[-1],
        orth[-1],
        gate(decreasing and all(abs(k - 1) < 0.05 for k in slopes)),
    )
    return Outcome(
        error,
        f"delta 1e-1 -> 1e-9: ||R - R0||/||dW|| {to_limit[0]:.1e} -> {to_limit[-1]:.1e}, "
        f"||B^T R|| rel {orth[0]:.1e} -> {orth[-1]:.1e}, log-log slopes "
        f"{slopes[0]:.3f}, {slopes[1]:.3f}",
    )


@claim("janus.gr.joint-optimum", paper=PAPER, where="Eq. 5 / A.2 Eq. 26", method="numeric",
       tolerance=1e-8)
def gr_joint_optimum() -> Outcome:
    """Eq. 5 is a convex least-squares problem in (dA, dB) (PSD Hessian whose kernel {(K A, -B K)}
    has dimension r^2), and GR's hierarchical solution attains its joint optimum as delta -> 0:
    composite = dW_safe - (I - P_B) dW_safe (I - P_A)"""
    g = gen(5)
    errs, kernels = [], []
    for d_out, d_in, r, s in ((6, 5, 2, 2.0), (7, 9, 3, 0.5)):
        W, A, B = randn(g, d_out, d_in), randn(g, r, d_in), randn(g, d_out, r)
        # vec(s(B dA + dB A)) = design @ [vec dA; vec dB] (column-major vec)
        design = s * torch.cat(
            [
                torch.kron(torch.eye(d_in, dtype=F64), B),
                torch.kron(A.T.contiguous(), torch.eye(d_out, dtype=F64)),
            ],
            1,
        )
        eig = torch.linalg.eigvalsh(design.T @ design)  # Hessian of Eq. 26, up to a factor
        errs.append(max(0.0, -float(eig[0])) / float(eig[-1]))
        kernels.append(int((eig < 1e-10 * eig[-1]).sum()))
        sol = torch.linalg.lstsq(design, W.T.reshape(-1, 1), driver="gelsd").solution[:, 0]
        dA_ls = sol[: r * d_in].reshape(d_in, r).T
        dB_ls = sol[r * d_in :].reshape(r, d_out).T
        joint = geo.composite_update(dA_ls, dB_ls, A, B, s)
        dA, dB = geo.rectify_factor_updates(W, A, B, s, 1e-13 * s**2)
        gr = geo.composite_update(dA, dB, A, B, s)
        P_A = A.T @ torch.linalg.solve(A @ A.T, A)
        P_B = B @ torch.linalg.solve(B.T @ B, B.T)
        closed = W - (torch.eye(d_out, dtype=F64) - P_B) @ W @ (torch.eye(d_in, dtype=F64) - P_A)
        errs += [rel(gr, joint), rel(joint, closed)]
        errs.append(gate(kernels[-1] == r * r))
    return Outcome(max(errs), f"Hessian kernel dimensions {kernels} (= r^2)")


# ---------------------------------------------------------------- what GR guarantees


def _gr_instance(
    g: torch.Generator,
    d_out: int,
    d_in: int,
    r: int,
    n: int,
    s: float,
    gamma: float,
    A: torch.Tensor,
    B: torch.Tensor,
    X: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """One Janus step on the factors: raw gradient -> safe target -> GR, plus the raw factors."""
    grad_w = randn(g, d_out, d_in)
    V = _basis(X, min(n, d_in))
    w_safe = geo.safe_update(grad_w, V)
    dA, dB = geo.rectify_factor_updates(w_safe, A, B, s, gamma)
    gA, gB = geo.lora_factor_gradients(grad_w, A, B, s)
    return {"w_safe": w_safe, "dA": dA, "dB": dB, "gA": gA, "gB": gB, "P": V @ V.T}


def _leak(U: torch.Tensor, X: torch.Tensor) -> float:
    """Relative null-space violation ||U X||_F / (||U||_F ||X||_2) (Fig. 2's metric, scaled)."""
    return float((U @ X).norm() / (U.norm() * torch.linalg.matrix_norm(X, 2) + 1e-300))


def _row_space_operator(A: torch.Tensor, delta: float) -> torch.Tensor:
    """M = A^T (A A^T + delta I)^-1 A, the (regularised) projector GR's dB step applies."""
    return A.T @ torch.linalg.solve(A @ A.T + delta * torch.eye(A.shape[0], dtype=F64), A)


@claim("janus.gr.safe-when", paper=PAPER, where="Sec. 3.3.2, Eq. 5-7", method="numeric",
       tolerance=1e-10)
def gr_safe_when() -> Outcome:
    """GR's dA is always safe (dA X_past = 0, also dB dA X_past = 0), so the leak of s(B dA + dB A)
    is exactly s dB A X_past = R M X_past, M = A^T(AA^T + delta I)^-1 A; it vanishes for every
    dW_orig iff (I - P) A^T A P = 0 (rows of A in span(X_past)^perp, in span(X_past), or a split of
    both); GR leaves A P invariant"""
    g = gen(7)
    d_out, d_in, r, n, s, gamma = 9, 10, 4, 3, 2.0, 1e-3
    delta = gamma / s**2
    X = randn(g, d_in, n)
    P = _basis(X, n) @ _basis(X, n).T
    Q = torch.eye(d_in, dtype=F64) - P
    A0 = randn(g, r, d_in)
    shapes = {
        "generic": A0,
        "rows in span(X)^perp": A0 @ Q,
        "rows in span(X)": A0 @ P,
        "split": torch.cat([A0[:2] @ P, A0[2:] @ Q]),
    }
    errs, worst_safe, generic_leak = [], 0.0, 0.0
    for name, A in shapes.items():
        for B in (randn(g, d_out, r), torch.zeros(d_out, r, dtype=F64)):
            step = _gr_instance(g, d_out, d_in, r, n, s, gamma, A, B, X)
            dA, dB = step["dA"], step["dB"]
            U = geo.composite_update(dA, dB, A, B, s)
            exact = s * (B + dB) @ (A + dA) - s * B @ A  # W(A + dA, B + dB) - W(A, B)
            errs.append(rel(geo.composite_update(dA, dB, A, B, s, second_order=True), exact))
            errs.append(rel(U, s * (B @ dA + dB @ A)))
            x_norm = float(torch.linalg.matrix_norm(X, 2))
            ref = float(step["w_safe"].norm()) * x_norm
            errs.append(abs(s) * float((dA @ X).norm()) / ref)
            errs.append(
                float((dB @ dA @ X).norm()) / (float(dB.norm() * dA.norm()) * x_norm + 1e-300)
            )
            R = step["w_safe"] - s * B @ dA
            predicted = R @ _row_space_operator(A, delta) @ X
            errs.append(float((U @ X - predicted).norm()) / ref)
            errs.append(float(((A + dA) @ P - A @ P).norm() / A.norm()))
            commutator = float((Q @ A.T @ A @ P).norm() / (A.norm() ** 2))
            leak = float((U @ X).norm()) / ref
            if name == "generic":  # the condition fails, and so does safety
                errs.append(gate(commutator > 1e-3 and leak > 1e-3))
                generic_leak = max(generic_leak, leak)
            else:
                worst_safe = max(worst_safe, leak)
                errs += [commutator, leak]
    return Outcome(
        max(errs),
        f"||U X||/(||dW_safe|| ||X||_2): {worst_safe:.1e} when (I-P)A^TAP = 0, "
        f"{generic_leak:.2f} for generic A",
    )


@claim("janus.gr.leak", paper=PAPER, where="Sec. 3.3.2, Fig. 2", method="numeric", tolerance=1e-10,
       finding=True)
def gr_leak() -> Outcome:
    """measured: for generic A, GR's composite update U still leaks into X_past
    (||U X||/(||U|| ||X||)), compared with the unrectified s(B G_A + G_B A); leak = R M X and
    ||U X|| <= ||R|| ||(I-P) M P||_2 ||X||_2 hold (consistency, the checked error)"""
    g = gen(2)
    d_out, d_in, r, n, s, gamma = 12, 16, 4, 6, 2.0, 1e-4
    delta = gamma / s**2
    ratios: dict[str, list[float]] = {"random B": [], "B = 0": []}
    leaks: dict[str, list[float]] = {"random B": [], "B = 0": []}
    errs = []
    for _ in range(20):
        X = randn(g, d_in, n)
        A = randn(g, r, d_in) / math.sqrt(d_in)  # Kaiming-like scale
        for name, B in (
            ("random B", randn(g, d_out, r)),
            ("B = 0", torch.zeros(d_out, r, dtype=F64)),
        ):
            step = _gr_instance(g, d_out, d_in, r, n, s, gamma, A, B, X)
            U = geo.composite_update(step["dA"], step["dB"], A, B, s)
            U_raw = geo.composite_update(step["gA"], step["gB"], A, B, s)
            leaks[name].append(_leak(U, X))
            ratios[name].append(_leak(U, X) / _leak(U_raw, X))
            R = step["w_safe"] - s * B @ step["dA"]
            M = _row_space_operator(A, delta)
            Q = torch.eye(d_in, dtype=F64) - step["P"]
            bound = float(
                R.norm()
                * torch.linalg.matrix_norm(Q @ M @ step["P"], 2)
                * torch.linalg.matrix_norm(X, 2)
            )
            leak_abs = float((U @ X).norm())
            errs.append(abs(leak_abs - float((R @ M @ X).norm())) / (leak_abs + 1e-300))
            errs.append(max(0.0, leak_abs - bound) / (bound + 1e-300))
    parts = [
        f"{k}: GR leak median {np.median(leaks[k]):.3f} (max {max(leaks[k]):.3f}), "
        f"GR/raw median {np.median(ratios[k]):.2f} (range {min(ratios[k]):.2f}-"
        f"{max(ratios[k]):.2f})"
        for k in leaks
    ]
    return Outcome(max(errs), "; ".join(parts) + " over 20 instances")


# B regimes of janus.gr.leak-vs-naive: B = scale * N(0, 1), A = N(0, 1) / sqrt(d_in) (A's
# entries have std 1/sqrt(d_in) = 0.25), so ||B||_F / ||A||_F = scale * sqrt(d_out / d_in).
NAIVE_B_SCALES = (
    ("B = 0", 0.0),
    ("small B (entries 0.1x A's)", 0.025),
    ("B entries the size of A's", 0.25),
    ("B entries 2x A's", 0.5),
    ("B ~ N(0, 1) (entries 4x A's)", 1.0),
)


@claim("janus.gr.leak-vs-naive", paper=PAPER,
       where="Sec. 3.3.2, Fig. 2 (baseline: Table 1 (3), A's gradient projected)", method="numeric",
       tolerance=1e-10, finding=True)
def gr_leak_vs_naive() -> Outcome:
    """measured: GR's relative leak ||U X||/(||U|| ||X||_2) (as in janus.gr.leak) against the naive
    A-projection s(B G_A(I - VV^T) + G_B A) on the same (X, A, B, G_W), for five sizes of B; gated:
    below 1 in the median for B = 0 and small B, above 1 in every instance for B ~ N(0, 1);
    consistency: naive leak = s^2 G_W A^T A X, GR leak = R M X"""
    g = gen(26)
    d_out, d_in, r, n, s, gamma = 12, 16, 4, 6, 2.0, 1e-4
    delta = gamma / s**2
    ratios: dict[str, list[float]] = {name: [] for name, _ in NAIVE_B_SCALES}
    to_raw: dict[str, list[float]] = {name: [] for name, _ in NAIVE_B_SCALES}
    norms: dict[str, list[float]] = {name: [] for name, _ in NAIVE_B_SCALES}
    errs = []
    for _ in range(20):
        X = randn(g, d_in, n)
        V = _basis(X, n)
        A = randn(g, r, d_in) / math.sqrt(d_in)  # Kaiming-like scale
        B0 = randn(g, d_out, r)
        grad_w = randn(g, d_out, d_in)
        x_norm = float(torch.linalg.matrix_norm(X, 2))
        for name, scale in NAIVE_B_SCALES:
            B = scale * B0
            gA, gB = geo.lora_factor_gradients(grad_w, A, B, s)
            w_safe = geo.safe_update(grad_w, V)
            dA, dB = geo.rectify_factor_updates(w_safe, A, B, s, gamma)
            U = geo.composite_update(dA, dB, A, B, s)
            dA_naive = geo.safe_update(gA, V)  # janus-lora gr=False: project A's gradient only
            U_naive = geo.composite_update(dA_naive, gB, A, B, s)
            U_raw = geo.composite_update(gA, gB, A, B, s)
            ratios[name].append(_leak(U, X) / _leak(U_naive, X))
            to_raw[name].append(_leak(U, X) / _leak(U_raw, X))
            norms[name].append(float(B.norm() / A.norm()))
            # Consistency, written from Eq. 4 (corrected) and Eq. 6-7 without the library:
            # the naive step's A-part is safe, so its whole leak is s dB A X = s^2 G_W A^T A X.
            ref = float(grad_w.norm()) * float(A.norm()) ** 2 * x_norm * s**2
            errs.append(float((dA_naive @ X).norm()) / (float(gA.norm()) * x_norm + 1e-300))
            errs.append(float((U_naive @ X - s**2 * grad_w @ A.T @ A @ X).norm()) / ref)
            R = w_safe - s * B @ dA
            leak_gr = float((U @ X).norm())
            errs.append(abs(leak_gr - float((R @ _row_space_operator(A, delta) @ X).norm()))
                        / (leak_gr + 1e-300))
    med = {k: float(np.median(v)) for k, v in ratios.items()}
    names = [name for name, _ in NAIVE_B_SCALES]
    zero, small, large = names[0], names[1], names[-1]
    errs.append(gate(med[zero] < 1 and med[small] < 1 and min(ratios[large]) > 1))
    parts = [
        f"{k} (||B||/||A|| {np.median(norms[k]):.2f}): GR/naive median {med[k]:.2f} (range "
        f"{min(ratios[k]):.2f}-{max(ratios[k]):.2f}, GR worse in "
        f"{sum(x > 1 for x in ratios[k])}/20), GR/unprojected median {np.median(to_raw[k]):.2f}"
        for k in names
    ]
    return Outcome(max(errs), "; ".join(parts))


@claim("janus.exact-safe", paper=PAPER,
       where="Sec. 3.3.2 (our exactly-safe variant, janus-lora exact_safe=True)", method="numeric",
       tolerance=1e-10)
def exact_safe() -> Outcome:
    """dA' = dA(I - VV^T), dB' = dB(I - MM^+) with M = AV make the exact update
    s[(B + dB')(A + dA') - BA] vanish on span(V) for any dA, dB, B, s; dB' is the closest matrix to
    dB with dB' M = 0 (Frobenius), and it is 0 when M has full row rank"""
    g = gen(11)
    errs = []
    for d_out, d_in, r, k in ((9, 12, 3, 5), (9, 12, 4, 2), (20, 16, 2, 6)):
        A, B = randn(g, r, d_in), randn(g, d_out, r)
        dA, dB = randn(g, r, d_in), randn(g, d_out, r)
        V = _basis(randn(g, d_in, k), k)
        sA, sB = geo.exactly_safe_factor_steps(dA, dB, A, V)
        s = 1.7
        exact = s * (B + sB) @ (A + sA) - s * B @ A
        scale = float(s * (dB.norm() * A.norm() + B.norm() * dA.norm()))
        errs.append(float((exact @ V).norm()) / scale)
        M = A @ V
        errs.append(float((sB @ M).norm() / dB.norm()))
        errs.append(rel(sA, dA - dA @ V @ V.T))
        # closest: no feasible Z = dB' + W (I - MM^+) is nearer to dB
        for _ in range(5):
            Z = sB + randn(g, d_out, r) @ (torch.eye(r, dtype=F64) - M @ torch.linalg.pinv(M))
            errs.append(max(0.0, float((dB - sB).norm() - (dB - Z).norm())) / float(dB.norm()))
        if k >= r:  # generic M = AV has full row rank r: B cannot move at all
            errs.append(float(sB.norm() / dB.norm()))
        else:
            errs.append(gate(float(sB.norm()) > 1e-3 * float(dB.norm())))
    return Outcome(max(errs), "exact update on span(V) vanishes; dB' = 0 whenever k >= r")


# ---------------------------------------------------------------- Eq. 4


def _chain_rule_case(g: torch.Generator, d_out: int, d_in: int, r: int, s: float) -> list[float]:
    W0, A, B = randn(g, d_out, d_in), randn(g, r, d_in), randn(g, d_out, r)
    X, Y = randn(g, d_in, 5), randn(g, d_out, 5)

    def loss(W: torch.Tensor) -> torch.Tensor:  # any smooth loss of W
        return (torch.tanh(W @ X) * Y).sum() + 0.1 * W.pow(3).sum()

    A_, B_ = A.clone().requires_grad_(True), B.clone().requires_grad_(True)
    grad_A, grad_B = torch.autograd.grad(loss(W0 + s * B_ @ A_), (A_, B_))
    W = (W0 + s * B @ A).requires_grad_(True)
    (grad_w,) = torch.autograd.grad(loss(W), W)
    code_A, code_B = geo.lora_factor_gradients(grad_w, A, B, s)
    if code_A.shape != A.shape or code_B.shape != B.shape:
        return [math.inf]
    return [rel(code_A, grad_A), rel(code_B, grad_B)]


@claim("janus.eq4.factor-grads", paper=PAPER, where="Eq. 4 (corrected)", method="numeric",
       tolerance=1e-12)
def eq4_factor_grads() -> Outcome:
    """for W = W0 + s B A, dL/dA = s B^T G (r x d_in) and dL/dB = s G A^T (d_out x r), G = dL/dW:
    lora_factor_gradients equals autograd (rectangular and square layers)"""
    g = gen(4)
    errs = _chain_rule_case(g, 5, 7, 2, 1.5) + _chain_rule_case(g, 6, 6, 3, 0.5)
    return Outcome(max(errs))


@claim("janus.eq4.printed", paper=PAPER, where="Eq. 4 (as printed)", method="numeric",
       tolerance=1e-12, finding=True)
def eq4_printed() -> Outcome:
    """Eq. 4 as printed, dA = dW^T B and dB = A^T dW, has the wrong shapes: dW^T B is d_in x r (the
    transpose of B^T dW) and A^T dW is not defined unless r = d_out; both also drop the factor s"""
    g = gen(40)
    d_out, d_in, r, s = 5, 7, 2, 1.5
    G, A, B = randn(g, d_out, d_in), randn(g, r, d_in), randn(g, d_out, r)
    code_A, code_B = geo.lora_factor_gradients(G, A, B, s)
    printed_A = G.T @ B
    conformable = A.T.shape[1] == G.shape[0]
    error = max(rel(s * printed_A.T, code_A), gate(code_B.shape == B.shape))
    return Outcome(
        error,
        f"A is {tuple(A.shape)} but dW^T B is {tuple(printed_A.shape)} (= (dL/dA / s)^T); "
        f"A^T dW: ({d_in}x{r})({d_out}x{d_in}) conformable: {conformable}; correct s G A^T is "
        f"{tuple(code_B.shape)}",
    )


# ---------------------------------------------------------------- Stiefel, Eq. 8-10


def _tangent(g: torch.Generator, V: torch.Tensor) -> torch.Tensor:
    """A random tangent vector at V on the Stiefel manifold: xi = Z - V sym(V^T Z)."""
    Z = randn(g, *V.shape)
    VtZ = V.T @ Z
    return Z - V @ (VtZ + VtZ.T) / 2


@claim("janus.stiefel.qr", paper=PAPER, where="Eq. 10", method="numeric", tolerance=1e-12)
def stiefel_qr() -> Outcome:
    """qr_retraction gives Q^T Q = I and Q^T V~ upper triangular with diagonal >= 0; R_V(0) = V on
    the manifold; ||R_V(t xi) - (V + t xi)|| = O(t^2) for tangent xi"""
    g = gen(10)
    errs, slopes = [], []
    for d, k in ((9, 3), (20, 5), (4, 4)):
        V_tilde = randn(g, d, k)
        Q = geo.qr_retraction(V_tilde)
        errs.append(float((Q.T @ Q - torch.eye(k, dtype=F64)).abs().max()))
        R = Q.T @ V_tilde
        errs.append(float(torch.tril(R, -1).abs().max()) / float(V_tilde.norm()))
        errs.append(max(0.0, -float(torch.diagonal(R).min())))
        errs.append(rel(Q @ R, V_tilde))
        errs.append(rel(geo.qr_retraction(Q), Q))  # R_V(0) = V
        ts = [1e-2, 1e-3, 1e-4]
        xi = _tangent(g, Q)
        gaps = [float((geo.qr_retraction(Q + t * xi) - (Q + t * xi)).norm()) for t in ts]
        slopes.append(slope(ts, gaps))
    error = max(*errs, gate(all(abs(k - 2) < 0.1 for k in slopes)))
    return Outcome(error, "first-order slopes " + listed(slopes, ".3f"))


@claim("janus.stiefel.gradient", paper=PAPER, where="Eq. 8-9", method="numeric", tolerance=1e-10)
def stiefel_gradient() -> Outcome:
    """reconstruction_gradient = autograd of Eq. 8 at any V, = -(I - VV^T) X^T X V on the manifold,
    where it is tangent (V^T grad = 0, so Eq. 9 steps along the tangent direction); a small OE step
    decreases Eq. 8 by lr ||grad||^2 (1 + O(lr))"""
    g = gen(8)
    X = randn(g, 30, 7)
    errs = []
    V_free = randn(g, 7, 3)
    V = geo.qr_retraction(randn(g, 7, 3))
    for W in (V_free, V):
        W_ = W.clone().requires_grad_(True)
        (auto,) = torch.autograd.grad(geo.reconstruction_loss(X, W_), W_)
        errs.append(rel(geo.reconstruction_gradient(X, W), auto))
    grad = geo.reconstruction_gradient(X, V)
    errs.append(rel(grad, -(torch.eye(7, dtype=F64) - V @ V.T) @ X.T @ X @ V))
    errs.append(float((V.T @ grad).norm() / grad.norm()))  # tangent: V^T grad = 0
    loss0, sq = float(geo.reconstruction_loss(X, V)), float(grad.pow(2).sum())
    ratios = []
    for lr in (1e-5, 1e-6, 1e-7):
        drop = loss0 - float(geo.reconstruction_loss(X, geo.online_estimation_step(V, X, lr)))
        ratios.append(drop / (lr * sq))
    # The ratio is 1 + O(lr ||X||^2): check it converges to 1 at the expected rate.
    spread = float(torch.linalg.matrix_norm(X, 2) ** 2) * 1e-5
    error = max(*errs, gate(all(abs(q - 1) < 10 * spread for q in ratios) and ratios[-1] > 0))
    return Outcome(error, "decrease / (lr ||grad||^2) = " + listed(ratios, ".6f"))


@claim("janus.stiefel.oe-converges", paper=PAPER, where="Eq. 8-10", method="numeric",
       tolerance=1e-8)
def stiefel_oe_converges() -> Outcome:
    """iterating online_estimation_step on a fixed batch X keeps V^T V = I, decreases Eq. 8
    monotonically and converges to the top-k right singular subspace of X"""
    g = gen(9)
    n, d, k = 60, 10, 3
    U, _ = torch.linalg.qr(randn(g, n, d))
    Vx, _ = torch.linalg.qr(randn(g, d, d))
    sing = torch.tensor([3.0, 2.6, 2.2, 1.4, 1.2, 1.0, 0.8, 0.6, 0.4, 0.2], dtype=F64)
    X = U @ torch.diag(sing) @ Vx.T
    top = Vx[:, :k] @ Vx[:, :k].T
    V = geo.qr_retraction(randn(g, d, k))
    lr = 0.5 / float(sing[0] ** 2)
    losses, orth = [float(geo.reconstruction_loss(X, V))], 0.0
    for _ in range(400):
        V = geo.online_estimation_step(V, X, lr)
        losses.append(float(geo.reconstruction_loss(X, V)))
        orth = max(orth, float((V.T @ V - torch.eye(k, dtype=F64)).abs().max()))
    gap = float((V @ V.T - top).norm())
    optimum = 0.5 * float(sing[k:].pow(2).sum())
    monotone = all(b <= a + 1e-12 for a, b in zip(losses, losses[1:], strict=False))
    error = max(gap, orth, abs(losses[-1] - optimum) / optimum, gate(monotone))
    return Outcome(error, f"||VV^T - U_k U_k^T||_F = {gap:.1e} after 400 steps")


# ---------------------------------------------------------------- metrics, Sec. 4.1

NAN = float("nan")


@claim("janus.core.metrics.hand", paper=PAPER, where="Sec. 4.1 ACC/MAA/BWT", method="numeric",
       tolerance=1e-12)
def metrics_hand() -> Outcome:
    """janus.core.metrics reproduces ACC = mean_i A[T,i], MAA = mean_t mean_{i<=t} A[t,i],
    BWT = mean_{i<T} (A[T,i] - A[i,i]) on hand-computed accuracy matrices"""
    a3 = [[90, NAN, NAN], [70, 80, NAN], [50, 60, 85]]
    a4 = [[80, NAN, NAN, NAN], [70, 90, NAN, NAN], [60, 85, 75, NAN], [50, 80, 70, 95]]
    F = Fraction
    hand = {
        # ACC = (50 + 60 + 85) / 3;  MAA = (90 + (70 + 80)/2 + (50 + 60 + 85)/3) / 3
        # BWT = ((50 - 90) + (60 - 80)) / 2
        "a3": (F(195, 3), (90 + F(150, 2) + F(195, 3)) / 3, F(-40 - 20, 2), a3),
        # ACC = (50 + 80 + 70 + 95) / 4 = 73.75
        # MAA = (80 + (70 + 90)/2 + (60 + 85 + 75)/3 + 295/4) / 4 = 3685/48
        # BWT = ((50 - 80) + (80 - 90) + (70 - 75)) / 3 = -15
        "a4": (F(295, 4), (80 + F(160, 2) + F(220, 3) + F(295, 4)) / 4, F(-30 - 10 - 5, 3), a4),
        # one task: ACC = MAA = 42, BWT = 0 by convention (the formula divides by T - 1 = 0)
        "a1": (F(42), F(42), F(0), [[42]]),
    }
    errs = []
    for acc, maa, bwt, a in hand.values():
        errs += [
            abs(metrics.final_accuracy(a) - float(acc)),
            abs(metrics.mean_average_accuracy(a) - float(maa)),
            abs(metrics.backward_transfer(a) - float(bwt)),
        ]
    return Outcome(max(errs), "a4: ACC 73.75, MAA 3685/48 = 76.7708, BWT -15")
