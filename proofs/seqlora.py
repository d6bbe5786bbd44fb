"""Claims of SeqLoRA (Sec. 3, App. B, C.2, E), checked against ``janus.core.geometry``.

SeqLoRA writes ``W = W0 + A B^T`` with ``A`` (``n x r``, output side) and ``B`` (``m x r``,
the *input* basis, constrained by ``B_j^T B_i = 0``); in the library's convention
``W = W0 + s B A`` SeqLoRA's ``B`` is our ``A^T``. The checks below keep the paper's letters
(``A`` output factor, ``B`` input basis) and call :mod:`janus.core.geometry` through the module,
so that a perturbed formula makes them fail. float64, fixed seeds, small dimensions.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import sympy as sp
import torch

from janus.core import geometry as geo
from proofs._helpers import (
    F64,
    eye,
    gate,
    gen,
    listed,
    orthonormal,
    randn,
    rel,
    slope,
    spd,
    spec,
    sym_matrix,
    sym_residual,
    to_torch,
)
from proofs.core import Outcome, claim

PAPER = "SeqLoRA"
Loss = Callable[..., torch.Tensor]


def bilinear_loss(X: torch.Tensor, Y: torch.Tensor) -> Loss:
    """L(A, B) = 1/2 ||Y - A B^T X||_F^2: one linear layer, SeqLoRA's convention."""

    def loss(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
        return 0.5 * (Y - A @ B.T @ X).pow(2).sum()

    return loss


def _nonlinear(X: torch.Tensor, Y: torch.Tensor, W0: torch.Tensor) -> Loss:
    """L(A, B) = 1/2 ||Y - tanh((W0 + A B^T) X)||^2 + 0.1 ||A B^T||^4 / 4 (generic, smooth)."""

    def loss(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
        W = W0 + A @ B.T
        return 0.5 * (Y - torch.tanh(W @ X)).pow(2).sum() + 0.025 * (A @ B.T).pow(2).sum() ** 2

    return loss


Pair = tuple[torch.Tensor, torch.Tensor]


def _two_layer(
    g: torch.Generator, X: torch.Tensor, Y: torch.Tensor, r: int
) -> tuple[Loss, Pair, Pair]:
    """Two adapted layers, L = 1/2 ||Y - (W2 + A2 B2^T) tanh((W1 + A1 B1^T) X)||^2, with random
    frozen W1, W2 and rank-r factors As = (A1, A2), Bs = (B1, B2), drawn from g in that order.
    Returns (L, As, Bs)."""
    m, n = X.shape[0], Y.shape[0]
    W1, W2 = 0.5 * randn(g, m, m), 0.5 * randn(g, n, m)

    def loss(As: tuple[torch.Tensor, ...], Bs: tuple[torch.Tensor, ...]) -> torch.Tensor:
        H = torch.tanh((W1 + As[0] @ Bs[0].T) @ X)
        return 0.5 * (Y - (W2 + As[1] @ Bs[1].T) @ H).pow(2).sum()

    return loss, (randn(g, m, r), randn(g, n, r)), (randn(g, m, r), randn(g, m, r))


def _grad(loss: Loss, A: torch.Tensor, B: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(grad_A L, grad_B L) by autograd, independent of the library."""
    A_, B_ = A.clone().requires_grad_(True), B.clone().requires_grad_(True)
    gA, gB = torch.autograd.grad(loss(A_, B_), (A_, B_))
    return gA, gB


def _grads_multi(
    loss: Loss, As: tuple[torch.Tensor, ...], Bs: tuple[torch.Tensor, ...]
) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    """Partial gradients of a several-layer loss in all A's and all B's, by autograd."""
    A_ = tuple(a.clone().requires_grad_(True) for a in As)
    B_ = tuple(b.clone().requires_grad_(True) for b in Bs)
    grads = torch.autograd.grad(loss(A_, B_), A_ + B_)
    return grads[: len(As)], grads[len(As) :]


def _phi_autograd(loss: Loss, A: torch.Tensor, B: torch.Tensor, alpha: float) -> torch.Tensor:
    """grad of Phi(B) = L(A - alpha grad_A L(A, B), B) (Eq. 9) by autograd through the step."""
    A_, B_ = A.clone().requires_grad_(True), B.clone().requires_grad_(True)
    (gA,) = torch.autograd.grad(loss(A_, B_), A_, create_graph=True)
    (out,) = torch.autograd.grad(loss(A - alpha * gA, B_), B_)
    return out


def _phi_value(loss: Loss, A: torch.Tensor, B: torch.Tensor, alpha: float) -> float:
    gA, _ = _grad(loss, A, B)
    return float(loss(A - alpha * gA, B))


# ---------------------------------------------------------------- Eq. 13 -> 17


@claim("seqlora.eq17.symbolic", paper=PAPER, where="Eq. 13-17", method="symbolic", tolerance=1e-12)
def eq17_symbolic() -> Outcome:
    """the KKT point of min ||B - B~||^2 s.t. B_int^T B = 0 is [I - B_int (B_int^T B_int)^-1
    B_int^T] B~ (stationarity with Lambda = (B_int^T B_int)^-1 B_int^T B~, feasibility,
    J(B* + E) = J(B*) + ||E||^2/2 for feasible E); Alg. 1's regularised form differs by exactly
    eps B_int G^-1 (G + eps)^-1 B_int^T B~ (3x2 B, 3x1 B_int, symbolic)"""
    Bt, Bint, Z = sym_matrix("b", 3, 2), sym_matrix("c", 3, 1), sym_matrix("z", 3, 2)
    eps = sp.Symbol("eps", positive=True)
    G = Bint.T * Bint
    P = Bint * G.inv() * Bint.T
    B_star = (sp.eye(3) - P) * Bt  # Eq. 17
    lam = G.inv() * Bint.T * Bt
    stationarity = B_star - Bt + Bint * lam  # d/dB [1/2||B - B~||^2 + <Lambda, B_int^T B>]
    feasibility = Bint.T * B_star  # Eq. 5 / 13
    E = (sp.eye(3) - P) * Z  # a generic feasible direction
    cross = sp.Matrix([((B_star - Bt).T * E).trace()])
    regularised = (sp.eye(3) - Bint * (G + eps * sp.eye(1)).inv() * Bint.T) * Bt  # Alg. 1
    deviation = (
        regularised - B_star - eps * Bint * G.inv() * (G + eps * sp.eye(1)).inv() * (Bint.T * Bt)
    )
    symbolic = sum(map(sym_residual, (stationarity, feasibility, Bint.T * E, cross, deviation)))
    values = {
        **{b: sp.Rational(k - 2, 3) for k, b in enumerate(Bt)},
        **{c: sp.Integer(k + 1) for k, c in enumerate(Bint)},
        eps: sp.Rational(1, 10),
    }
    Bt_n, Bint_n = to_torch(Bt, values), to_torch(Bint, values)
    gap = max(
        rel(geo.regularized_complement_projection(Bt_n, Bint_n, 0.0), to_torch(B_star, values)),
        rel(
            geo.regularized_complement_projection(Bt_n, Bint_n, 0.1), to_torch(regularised, values)
        ),
    )
    return Outcome(max(symbolic, gap), f"{symbolic:.0f} non-cancelling entries; code gap {gap:.1e}")


# (m = d_in, r, column blocks of B_int, rank of B_int)
EQ17_CASES = ((8, 2, (2, 2), 4), (6, 3, (1,), 1), (7, 2, (3, 2), 3))


@claim("seqlora.eq17.eps", paper=PAPER, where="Eq. 13-17, Alg. 1 line 20", method="numeric",
       tolerance=1e-9)
def eq17_eps() -> Outcome:
    """regularized_complement_projection(B~, B_int, 0) is feasible, KKT-stationary, equals a generic
    KKT solve and beats every feasible perturbation (also for rank-deficient B_int, via the
    pseudo-inverse); with eps > 0 it deviates from it by exactly eps B_int G^-1 (G + eps I)^-1
    B_int^T B~, i.e. linearly in eps (log-log slope 1)"""
    g = gen(17)
    errs, slopes, notes = [], [], []
    for m, r, blocks, rank in EQ17_CASES:
        cols = sum(blocks)
        B_int = randn(g, m, rank) @ randn(g, rank, cols)  # rank-deficient if rank < cols
        parts = list(torch.split(B_int, list(blocks), dim=1))
        Bt = randn(g, m, r)
        exact = geo.regularized_complement_projection(Bt, parts, 0.0)
        errs.append(float((B_int.T @ exact).norm() / (B_int.norm() * Bt.norm())))  # feasible
        lam = torch.linalg.pinv(B_int.T @ B_int) @ B_int.T @ Bt
        errs.append(rel(exact, Bt - B_int @ lam))  # stationarity: B - B~ + B_int Lambda = 0
        # generic KKT solve, vec row-major: B_int^T B = 0 <=> kron(B_int^T, I_r) vec(B) = 0
        C = torch.kron(B_int.T.contiguous(), eye(r))
        k = C.shape[0]
        kkt = torch.cat(
            [torch.cat([eye(m * r), C.T], 1), torch.cat([C, torch.zeros(k, k, dtype=F64)], 1)]
        )
        rhs = torch.cat([Bt.reshape(-1), torch.zeros(k, dtype=F64)])
        sol = torch.linalg.lstsq(kkt, rhs[:, None], driver="gelsd").solution[: m * r, 0]
        errs.append(rel(exact, sol.reshape(m, r)))
        J0 = 0.5 * float((exact - Bt).pow(2).sum())
        P_free = geo.regularized_complement_projection(eye(m), B_int, 0.0)
        for t in (1e-3, 1e-1, 1.0):
            E = t * P_free @ randn(g, m, r)
            J = 0.5 * float((exact + E - Bt).pow(2).sum())
            errs.append(abs(J - J0 - 0.5 * float(E.pow(2).sum())) / (J0 + 1e-300))
        if rank == cols:  # regularised form: exact deviation and slope 1 in eps
            G = B_int.T @ B_int
            lam_min = float(torch.linalg.eigvalsh(G)[0])
            epss = [lam_min * 10.0**-k for k in range(2, 9)]
            devs = []
            for eps in epss:
                reg = geo.regularized_complement_projection(Bt, B_int, eps)
                predicted = (
                    eps
                    * B_int
                    @ torch.linalg.solve(G, torch.linalg.solve(G + eps * eye(cols), B_int.T @ Bt))
                )
                errs.append(float((reg - exact - predicted).norm() / Bt.norm()))
                devs.append(float((reg - exact).norm() / Bt.norm()))
            slopes.append(slope(epss, devs))
    # scale: Alg. 1's eps is absolute, so its effect grows as B_int shrinks
    B_int, Bt = orthonormal(g, 8, 2), randn(g, 8, 2)
    for c in (1.0, 1e-3, 1e-4):
        reg = geo.regularized_complement_projection(Bt, c * B_int, 1e-8)
        notes.append(f"{float((B_int.T @ reg).norm() / (B_int.T @ Bt).norm()):.1e}")
    error = max(*errs, gate(all(abs(s - 1) < 0.02 for s in slopes) and len(slopes) >= 2))
    return Outcome(
        error,
        "deviation vs eps log-log slopes "
        + listed(slopes, ".4f")
        + "; eps = 1e-8 with orthonormal B_int scaled by 1, 1e-3, 1e-4 leaves "
        + "/".join(notes)
        + " of the B_int^T B~ component",
    )


# ---------------------------------------------------------------- Eq. 15-16


def _explicit_cross(
    loss: Loss, A: torch.Tensor, B: torch.Tensor, g_A: torch.Tensor
) -> torch.Tensor:
    """H_AB[g] from the explicit Hessian of L in z = (vec A, vec B): the (B, A) block times g."""
    nA = A.numel()

    def f(z: torch.Tensor) -> torch.Tensor:
        return loss(z[:nA].reshape(A.shape), z[nA:].reshape(B.shape))

    H = torch.autograd.functional.hessian(f, torch.cat([A.reshape(-1), B.reshape(-1)]))
    return (H[nA:, :nA] @ g_A.reshape(-1)).reshape(B.shape)


@claim("seqlora.eq15.cross-hessian", paper=PAPER, where="Eq. 9, 15-16, Alg. 1 lines 9-18",
       method="numeric", tolerance=1e-7)
def eq15_cross_hessian() -> Outcome:
    """cross_hessian_vector_product (double backward, Eq. 16) equals the (B, A) block of the
    explicit Hessian times g, central finite differences of grad_B L along g, and the closed form
    -X Y^T g + X X^T B (A^T g + g^T A) of 1/2||Y - A B^T X||^2; bilevel_reduced_gradient (Eq. 15)
    equals autograd through the unrolled step Phi(B) = L(A - alpha grad_A L(A, B), B) and finite
    differences of Phi, also for two layers"""
    g = gen(15)
    n, m, r, p, alpha = 4, 5, 2, 7, 0.3
    X, Y = randn(g, m, p) / math.sqrt(p), randn(g, n, p)
    models = {"bilinear": bilinear_loss(X, Y), "nonlinear": _nonlinear(X, Y, 0.3 * randn(g, n, m))}
    errs, cross_share = [], []
    for name, loss in models.items():
        A, B, gA = randn(g, n, r), randn(g, m, r), randn(g, n, r)
        hvp = geo.cross_hessian_vector_product(loss, A, B, gA)
        errs.append(rel(hvp, _explicit_cross(loss, A, B, gA)))
        h = 1e-5
        fd = (_grad(loss, A + h * gA, B)[1] - _grad(loss, A - h * gA, B)[1]) / (2 * h)
        errs.append(rel(hvp, fd))
        if name == "bilinear":
            closed = -X @ Y.T @ gA + X @ X.T @ B @ (A.T @ gA + gA.T @ A)
            errs.append(rel(hvp, closed))
        red = geo.bilevel_reduced_gradient(loss, A, B, alpha)
        auto = _phi_autograd(loss, A, B, alpha)
        errs.append(rel(red, auto))
        D = randn(g, m, r)
        fd_phi = (_phi_value(loss, A, B + h * D, alpha) - _phi_value(loss, A, B - h * D, alpha)) / (
            2 * h
        )
        errs.append(abs(fd_phi - float((red * D).sum())) / float(red.norm() * D.norm()))
        # the alternating baseline drops alpha H[g_A]: how much of grad Phi is that term?
        _, gB_t = _grad(loss, A - alpha * _grad(loss, A, B)[0], B)
        cross_share.append(rel(gB_t, auto))
    # two adapted layers: the contraction includes the cross-layer blocks
    loss2, As, Bs = _two_layer(g, X, Y, r)
    red = geo.bilevel_reduced_gradient(loss2, As, Bs, alpha)
    A_ = tuple(a.clone().requires_grad_(True) for a in As)
    B_ = tuple(b.clone().requires_grad_(True) for b in Bs)
    gAs = torch.autograd.grad(loss2(A_, B_), A_, create_graph=True)
    auto2 = torch.autograd.grad(
        loss2(tuple(a - alpha * ga for a, ga in zip(As, gAs, strict=True)), B_), B_
    )
    errs += [rel(x, y) for x, y in zip(red, auto2, strict=True)]
    return Outcome(
        max(errs),
        "||grad_B L(A~, B) - grad Phi|| / ||grad Phi|| (what the alternating baseline drops): "
        + listed(cross_share, ".2f"),
    )


@claim("seqlora.alg1.reading", paper=PAPER, where="Alg. 1 lines 13-20", method="numeric",
       tolerance=1e-10, finding=True)
def alg1_reading() -> Outcome:
    """measured: Alg. 1 read literally (per-layer cross-Hessian, line 17) drops the cross-layer
    blocks of grad Phi; with S_B > 1 local steps the direction of lines 14-18 at the second step is
    not grad Phi at the current B (A~ and the Hessian point are stale); consistency (the checked
    error): one layer and S_B = 1 give grad Phi exactly"""
    g = gen(18)
    n, m, r, p, alpha, beta = 4, 5, 2, 7, 0.3, 0.05
    X, Y = randn(g, m, p) / math.sqrt(p), randn(g, n, p)
    loss2, As, Bs = _two_layer(g, X, Y, r)
    full = geo.bilevel_reduced_gradient(loss2, As, Bs, alpha)
    # literal line 17: H^(l) uses only layer l's A and B (the other layer held fixed)
    A_t = tuple(a - alpha * ga for a, ga in zip(As, _grads_multi(loss2, As, Bs)[0], strict=True))
    g_A, g_B = _grads_multi(loss2, A_t, Bs)
    literal = []
    for layer in range(2):

        def block(a: torch.Tensor, b: torch.Tensor, layer: int = layer) -> torch.Tensor:
            A_l = tuple(a if i == layer else As[i] for i in range(2))
            B_l = tuple(b if i == layer else Bs[i] for i in range(2))
            return loss2(A_l, B_l)

        h = geo.cross_hessian_vector_product(block, As[layer], Bs[layer], g_A[layer])
        literal.append(g_B[layer] - alpha * h)
    per_layer = [rel(lit, f) for lit, f in zip(literal, full, strict=True)]
    # S_B = 2 on one layer: second local step with stale A~ and Hessian point
    one = bilinear_loss(X, Y)
    A, B = randn(g, n, r), randn(g, m, r)
    errs = [rel(geo.bilevel_reduced_gradient(one, A, B, alpha), _phi_autograd(one, A, B, alpha))]
    A_tilde = A - alpha * _grad(one, A, B)[0]
    betas, stale_gaps = [0.04, 0.02, 0.01], []
    for beta in betas:
        B1 = B - beta * geo.bilevel_reduced_gradient(one, A, B, alpha)
        gA1, gB1 = _grad(one, A_tilde, B1)
        stale = gB1 - alpha * geo.cross_hessian_vector_product(one, A, B, gA1)
        stale_gaps.append(rel(stale, _phi_autograd(one, A, B1, alpha)))
    return Outcome(
        max(errs),
        "per-layer line 17 vs full grad Phi (2 layers): "
        + listed(per_layer, ".2f")
        + "; S_B = 2, 2nd local step vs grad Phi(B) at beta = "
        + ", ".join(f"{b}: {e:.3f}" for b, e in zip(betas, stale_gaps, strict=True))
        + f" (first order in beta, slope {slope(betas, stale_gaps):.2f})",
    )


# ---------------------------------------------------------------- Lemma 4, Thm 1


@claim("seqlora.thm1.algebra", paper=PAPER, where="Lemma 4 Eq. 35, Thm 1, App. B Eq. 43-44",
       method="symbolic", tolerance=0.0)
def thm1_algebra() -> Outcome:
    """L(1 + aL) + a(L^2(1 + aL) + rho M) = L(1 + aL)^2 + a rho M (Eq. 35); with
    ||A~ - A|| = a||grad_A L|| and ||B+ - B|| = b||P grad Phi||, Eq. 43 becomes Eq. 44;
    a/2 - a^2 L/2 and b/2 - L_Phi b^2/2 peak at 1/(2L), 1/(2 L_Phi), and
    1/(2 L_Phi(a*)) = 1/(9L/2 + rho M/L) (symbolic)"""
    a, b, L, LP, rho, M, gA, gB = sp.symbols("alpha beta L L_Phi rho M g_A g_B", positive=True)
    eq35 = (
        L * (1 + a * L) + a * (L**2 * (1 + a * L) + rho * M) - (L * (1 + a * L) ** 2 + a * rho * M)
    )
    eq44 = (
        (1 / (2 * a) - L / 2) * (a * gA) ** 2
        + (1 / (2 * b) - LP / 2) * (b * gB) ** 2
        - ((a / 2 - a**2 * L / 2) * gA**2 + (b / 2 - LP * b**2 / 2) * gB**2)
    )
    coef_a, coef_b = a / 2 - a**2 * L / 2, b / 2 - LP * b**2 / 2
    peaks = [
        sp.solve(sp.diff(coef_a, a), a) == [1 / (2 * L)],
        sp.solve(sp.diff(coef_b, b), b) == [1 / (2 * LP)],
        sp.diff(coef_a, a, 2).is_negative,
        sp.diff(coef_b, b, 2).is_negative,
    ]
    L_phi_star = L * (1 + L / (2 * L)) ** 2 + rho * M / (2 * L)
    beta_star = 1 / (2 * L_phi_star) - 1 / (sp.Rational(9, 2) * L + rho * M / L)
    residual = sum(sp.simplify(e) != 0 for e in (eq35, eq44, beta_star))
    return Outcome(float(residual) + gate(all(peaks)), f"{residual} non-vanishing identities")


def region_constants(
    X: torch.Tensor, Y: torch.Tensor, r: int, a0: float, b: float, alpha: float
) -> dict[str, float]:
    """Constants of Assumption 1 for 1/2||Y - A B^T X||^2 on ||A0||_2 <= a0, ||B||_2 <= b.

    The region for L is {||A||_2 <= a, ||B||_2 <= b} with a >= ||A0|| + alpha ||grad_A L(A0, B)||
    (so it holds A0, A*(B) and the segments between them): the Hessian's quadratic form is
    ||dA B^T X + A dB^T X||^2 - 2<R X^T, dA dB^T>, bounded by x^2(a^2 + b^2) + x(||Y|| + abx);
    the cross-Hessian is g -> -X Y^T g + X X^T B (A0^T g + g^T A0), Lipschitz in B with
    rho = 2 x^2 ||A0||; ||grad_A L(A*, B)||_F <= (||Y||_F + sqrt(r) a b x) x b = M.
    """
    x, y2, yF = spec(X), spec(Y), float(Y.norm())
    a = a0 + alpha * x * b * (y2 + a0 * b * x)
    L = x**2 * (a**2 + b**2) + x * (y2 + a * b * x)
    rho = 2 * x**2 * a0
    M = (yF + math.sqrt(r) * a * b * x) * x * b
    return {"a": a, "L": L, "rho": rho, "M": M, "L_phi": L * (1 + alpha * L) ** 2 + alpha * rho * M}


@claim("seqlora.lemma4.lipschitz", paper=PAPER, where="Lemma 4, Eq. 27-35", method="numeric",
       tolerance=1e-10)
def lemma4_lipschitz() -> Outcome:
    """grad Phi is L_Phi-Lipschitz with L_Phi <= L(1 + aL)^2 + a rho M: on a jointly quadratic L
    (rho = 0) the exact Hessian of Phi (the Jacobian of bilevel_reduced_gradient,
    = a^2 H_BA H_AA H_AB - 2a H_BA H_AB + H_BB) has norm <= L(1 + aL)^2; on
    1/2||Y - A B^T X||^2 with L, rho, M bounded on a ball, every sampled difference quotient of
    grad Phi is <= the bound"""
    g = gen(27)
    n, m, r = 3, 4, 2
    nA, nB = n * r, m * r
    H = spd(g, nA + nB, torch.linspace(-1.0, 3.0, nA + nB).tolist())
    c = randn(g, nA + nB)
    L = float(torch.linalg.eigvalsh(H).abs().max())

    def quad(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
        z = torch.cat([A.reshape(-1), B.reshape(-1)])
        return 0.5 * z @ H @ z - c @ z

    H_AA, H_AB, H_BB = H[:nA, :nA], H[:nA, nA:], H[nA:, nA:]
    errs, quad_ratio = [], []
    for alpha in (0.05, 0.2, 0.9 / L):
        A0, B = randn(g, n, r), randn(g, m, r)
        base = geo.bilevel_reduced_gradient(quad, A0, B, alpha)
        cols = []
        for i in range(nB):
            E = torch.zeros(nB, dtype=F64)
            E[i] = 1.0
            step = geo.bilevel_reduced_gradient(quad, A0, B + E.reshape(m, r), alpha)
            cols.append((step - base).reshape(-1))
        J = torch.stack(cols, dim=1)  # exact: grad Phi is affine in B
        closed = alpha**2 * H_AB.T @ H_AA @ H_AB - 2 * alpha * H_AB.T @ H_AB + H_BB
        errs.append(rel(J, closed))
        bound = L * (1 + alpha * L) ** 2
        quad_ratio.append(spec(J) / bound)
        errs.append(gate(spec(J) <= bound * (1 + 1e-12)))
    # bilinear least squares: rho > 0, constants on a ball
    p, alpha, b = 6, 0.05, 1.0
    X, Y = randn(g, m, p) / math.sqrt(p), randn(g, n, p)
    loss = bilinear_loss(X, Y)
    A0 = 0.7 * randn(g, n, r)
    k = region_constants(X, Y, r, spec(A0), b, alpha)
    worst, inside = 0.0, True
    for scale in (1.0, 1e-3):
        for _ in range(15):
            Z1, Z2 = randn(g, m, r), randn(g, m, r)
            B1 = Z1 * (b * float(torch.rand(1, generator=g)) / spec(Z1))
            B2 = B1 + scale * (Z2 * (b * float(torch.rand(1, generator=g)) / spec(Z2)) - B1)
            diff = geo.bilevel_reduced_gradient(loss, A0, B1, alpha) - (
                geo.bilevel_reduced_gradient(loss, A0, B2, alpha)
            )
            worst = max(worst, float(diff.norm() / (B1 - B2).norm()))
            for Bx in (B1, B2):
                A_star = A0 - alpha * _grad(loss, A0, Bx)[0]
                inside &= spec(A_star) <= k["a"] and spec(Bx) <= b * (1 + 1e-12)
    errs.append(gate(worst <= k["L_phi"] and inside))
    return Outcome(
        max(errs),
        "quadratic: ||Hess Phi|| / (L(1 + aL)^2) = "
        + listed(quad_ratio, ".3f")
        + f"; bilinear: largest difference quotient {worst:.3g} <= bound {k['L_phi']:.3g} "
        f"(L = {k['L']:.3g}, rho = {k['rho']:.3g}, M = {k['M']:.3g})",
    )


def descent_step_sizes(
    X: torch.Tensor, Y: torch.Tensor, r: int, a0: float, b: float
) -> tuple[float, float]:
    """Step sizes alpha < 1/L and beta < 1/L_Phi (0.9 of each bound) of Thm 1 for
    1/2||Y - A B^T X||^2 on the region of :func:`region_constants`; L grows with alpha (the
    region for A widens by alpha ||grad_A L||), so alpha is shrunk once more to fit."""
    alpha = 0.9 / region_constants(X, Y, r, a0, b, 0.0)["L"]
    alpha = min(alpha, 0.9 / region_constants(X, Y, r, a0, b, alpha)["L"])
    return alpha, 0.9 / region_constants(X, Y, r, a0, b, alpha)["L_phi"]


def alg1_step(
    loss: Loss, A: torch.Tensor, B: torch.Tensor, B_int: torch.Tensor, alpha: float, beta: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of Alg. 1 with S_B = S_A' = 1 and the exact projection: B moves along the
    reduced gradient grad Phi (Eq. 15) projected off span(B_int), then A takes one gradient
    step at the new B (Eq. 18). Returns (A+, B+)."""
    grad_phi = geo.bilevel_reduced_gradient(loss, A, B, alpha)
    B_new = geo.regularized_complement_projection(B - beta * grad_phi, B_int, 0.0)
    return A - alpha * _grad(loss, A, B_new)[0], B_new


@claim("seqlora.thm1.descent", paper=PAPER, where="Thm 1, App. B Eq. 36-44", method="numeric",
       tolerance=1e-9)
def thm1_descent() -> Outcome:
    """Algorithm 1 (S_B = S_A' = 1, exact projection) on 1/2||Y - A B^T X||^2 with B_int^T B = 0,
    alpha < 1/L and beta < 1/L_Phi for constants valid on a ball that holds every iterate: B stays
    feasible, ||B+ - B|| = beta ||P grad Phi||, Phi(B+) = L(A+, B+), and the loss decreases at least
    by the amounts of Eq. 43 and Eq. 44 at every step"""
    g = gen(43)
    n, m, r, p, K = 3, 6, 2, 8, 150
    X, Y = randn(g, m, p) / math.sqrt(p), randn(g, n, p)
    loss = bilinear_loss(X, Y)
    B_int = randn(g, m, 2)
    A = 0.5 * randn(g, n, r)
    B = geo.regularized_complement_projection(0.5 * randn(g, m, r), B_int, 0.0)
    a0, b_R = 2.0, 2.0  # region: ||A||_2 <= a0 (for A^(k)), ||B||_2 <= b_R
    alpha, beta = descent_step_sizes(X, Y, r, a0, b_R)
    k = region_constants(X, Y, r, a0, b_R, alpha)
    L, L_phi = k["L"], k["L_phi"]
    errs, ratios, inside = [], [], alpha < 1 / L and beta < 1 / L_phi
    F0 = float(loss(A, B))
    gA0 = float(_grad(loss, A, B)[0].norm())
    for _ in range(K):
        inside &= spec(A) <= a0 and spec(B) <= b_R
        F = float(loss(A, B))
        gA = _grad(loss, A, B)[0]
        A_tilde = A - alpha * gA
        grad_phi = geo.bilevel_reduced_gradient(loss, A, B, alpha)
        A_new, B_new = alg1_step(loss, A, B, B_int, alpha, beta)
        F_new = float(loss(A_new, B_new))
        Pg = geo.regularized_complement_projection(grad_phi, B_int, 0.0)
        errs.append(float((B_int.T @ B_new).norm() / (B_int.norm() * B_new.norm())))
        errs.append(abs(float((B_new - B).norm()) - beta * float(Pg.norm())) / float(B.norm()))
        errs.append(abs(_phi_value(loss, A, B_new, alpha) - F_new) / F)  # Phi(B+) = L(A+, B+)
        dec43 = (1 / (2 * alpha) - L / 2) * float((A_tilde - A).pow(2).sum()) + (
            1 / (2 * beta) - L_phi / 2
        ) * float((B_new - B).pow(2).sum())
        dec44 = (alpha / 2 - alpha**2 * L / 2) * float(gA.pow(2).sum()) + (
            beta / 2 - L_phi * beta**2 / 2
        ) * float(Pg.pow(2).sum())
        for dec in (dec43, dec44):
            errs.append(max(0.0, F_new - (F - dec)) / F)
        ratios.append((F - F_new) / dec43)
        A, B = A_new, B_new
    inside &= spec(A) <= a0 and spec(B) <= b_R
    errs.append(gate(inside))
    P_gB = geo.regularized_complement_projection(_grad(loss, A, B)[1], B_int, 0.0)
    return Outcome(
        max(errs),
        f"alpha = {alpha:.3g} < 1/L = {1 / L:.3g}, beta = {beta:.3g} < 1/L_Phi = "
        f"{1 / L_phi:.3g}; loss {F0:.4f} -> {float(loss(A, B)):.4f} in {K} steps; actual "
        f"decrease / Eq. 43 bound >= {min(ratios):.2f}; ||grad_A L|| {gA0:.2e} -> "
        f"{float(_grad(loss, A, B)[0].norm()):.2e}, ||P grad_B L|| {float(P_gB.norm()):.2e}",
    )


# ---------------------------------------------------------------- Thm 8 (App. E)


def _population(W: torch.Tensor, W_star: torch.Tensor, Sigma: torch.Tensor, noise: float):
    """E||y - W x||^2 for y = W* x + noise e, E[x x^T] = Sigma: Tr(D Sigma D^T) + n noise^2."""
    D = W - W_star
    return float(torch.trace(D @ Sigma @ D.T)) + W.shape[0] * noise**2


@claim("seqlora.thm8.forgetting", paper=PAPER, where="Thm 8, App. E Eq. 113-127", method="numeric",
       tolerance=1e-9)
def thm8_forgetting() -> Outcome:
    """stylized linear model, later bases orthogonal to B_j (built with
    regularized_complement_projection): L_j(W_T) - L_j(W_j) = Tr(C P^perp Sigma P^perp C^T)
    + <grad L_j(W_j), C> exactly (closed form and, for the empirical measure, on 20000 samples); the
    Monte-Carlo estimate matches the population value; bound Eq. 115 holds with
    eps_j = ||grad L_j(W_j)||, and at a stationary W_j Eq. 116 holds with equality and bound"""
    g = gen(8)
    m, n, r, noise, N = 6, 4, 2, 0.3, 20000
    Sigma = spd(g, m, [3.0, 2.0, 1.5, 1.0, 0.5, 0.2])
    W_star, W0 = randn(g, n, m), randn(g, n, m)
    Bs = [randn(g, m, r)]
    for _ in range(2):  # SeqLoRA: each new basis orthogonal to all earlier ones
        Bs.append(geo.regularized_complement_projection(randn(g, m, r), Bs, 0.0))
    As = [0.5 * randn(g, n, r) for _ in Bs]
    W_j = W0 + As[0] @ Bs[0].T
    C = sum(a @ b.T for a, b in zip(As[1:], Bs[1:], strict=True))
    P_perp = geo.regularized_complement_projection(eye(m), Bs[0], 0.0)
    errs = [float((Bs[0].T @ b).norm()) for b in Bs[1:]]

    def decomposition(S: torch.Tensor, grad: torch.Tensor) -> float:  # Eq. 114, right side
        return float(torch.trace(C @ P_perp @ S @ P_perp @ C.T) + (grad * C).sum())

    forget = _population(W_j + C, W_star, Sigma, noise) - _population(W_j, W_star, Sigma, noise)
    grad = 2 * (W_j - W_star) @ Sigma  # Eq. 121
    errs.append(abs(forget - decomposition(Sigma, grad)) / abs(forget))
    eps_j = float(grad.norm())
    bound115 = spec(C) ** 2 * float(torch.trace(P_perp @ Sigma)) + eps_j * float(C.norm())
    errs.append(gate(forget <= bound115))
    # stationary W_j (= W*): Eq. 116
    forget_s = _population(W_star + C, W_star, Sigma, noise) - _population(
        W_star, W_star, Sigma, noise
    )
    bound116 = spec(C) ** 2 * float(torch.trace(P_perp @ Sigma))
    errs.append(abs(forget_s - decomposition(Sigma, torch.zeros_like(grad))) / forget_s)
    errs.append(gate(forget_s <= bound116))
    # Monte Carlo: the identity is exact for the empirical measure; the mean matches
    x = torch.linalg.cholesky(Sigma) @ randn(g, m, N)
    y = W_star @ x + noise * randn(g, n, N)
    e_j, e_T = (y - W_j @ x).pow(2).sum(0), (y - (W_j + C) @ x).pow(2).sum(0)
    S_hat = x @ x.T / N
    grad_hat = 2 * (W_j @ x - y) @ x.T / N
    diff = e_T - e_j
    errs.append(abs(float(diff.mean()) - decomposition(S_hat, grad_hat)) / abs(forget))
    z = abs(float(diff.mean()) - forget) / (float(diff.std()) / math.sqrt(N))
    errs.append(gate(z < 4))
    # without the orthogonality (113) the identity with P^perp fails
    C_raw = sum(a @ randn(g, m, r).T for a in As[1:])
    raw_forget = _population(W_j + C_raw, W_star, Sigma, noise) - _population(
        W_j, W_star, Sigma, noise
    )
    raw_rhs = float(torch.trace(C_raw @ P_perp @ Sigma @ P_perp @ C_raw.T) + (grad * C_raw).sum())
    # a LoRA-stationary W_j (rank-r reduced-rank regression optimum: grad in (A_j, B_j) = 0)
    # is not a stationary point of L_j in W, so Eq. 116 does not apply to it
    w, Q = torch.linalg.eigh(Sigma)
    S, S_inv = Q @ torch.diag(w.sqrt()) @ Q.T, Q @ torch.diag(w.rsqrt()) @ Q.T
    U, sv, Vh = torch.linalg.svd((W_star - W0) @ S)
    A_j, B_j = U[:, :r] * sv[:r], S_inv @ Vh[:r].T  # W_j = W0 + A_j B_j^T
    W_lora = W0 + A_j @ B_j.T
    grad_lora = 2 * (W_lora - W_star) @ Sigma
    errs.append(float((grad_lora @ B_j).norm() + (A_j.T @ grad_lora).norm()) / float(W_star.norm()))
    C_l = sum(
        0.5 * randn(g, n, r) @ geo.regularized_complement_projection(randn(g, m, r), B_j, 0.0).T
        for _ in range(2)
    )
    forget_l = _population(W_lora + C_l, W_star, Sigma, noise) - _population(
        W_lora, W_star, Sigma, noise
    )
    cross_l = float((grad_lora * C_l).sum())
    return Outcome(
        max(errs),
        f"forgetting {forget:.3f} <= Eq. 115 bound {bound115:.3f}; stationary: {forget_s:.3f} "
        f"<= Eq. 116 bound {bound116:.3f}; MC z-score {z:.2f}; non-orthogonal later bases: "
        f"identity off by {abs(raw_forget - raw_rhs) / abs(raw_forget):.2f} (relative); "
        f"LoRA-stationary W_j (rank {r}): ||grad_W L_j|| = {float(grad_lora.norm()):.2f}, "
        f"<grad, C> = {cross_l:.2f} of forgetting {forget_l:.2f}",
    )


# ---------------------------------------------------------------- Thm 7, Prop. 2 (App. C.2)


def _haar_feasible(g: torch.Generator, Q_free: torch.Tensor, r: int) -> torch.Tensor:
    """A Haar-random orthonormal r-frame inside range(Q_free)."""
    return Q_free @ orthonormal(g, Q_free.shape[1], r)


@claim("seqlora.thm7.kyfan", paper=PAPER, where="Thm 7, Prop. 2, App. C.2 Eq. 84-106",
       method="numeric", tolerance=1e-9)
def thm7_kyfan() -> Outcome:
    """optimal_feasible_basis (top-r eigenvectors of P_free Sigma P_free) is feasible, captures
    sum_{q<=r} lambda_q (Eq. 96) and leaves the residual of Eq. 90; Eq. 89 holds for every feasible
    projector; no Haar-random feasible projector, no projected-gradient ascent run and no point of
    an exhaustive sphere grid (r = 1) captures more; the Haar mean is r/d_free Tr(Sigma~)
    (Eq. 99)"""
    g = gen(7)
    errs, notes = [], []
    for d, k, r, eigs in (
        (6, 2, 2, [5.0, 4.0, 3.0, 2.0, 1.0, 0.5]),
        (5, 2, 1, [4.0, 3.0, 2.5, 1.0, 0.3]),
    ):
        Sigma = spd(g, d, eigs)
        B_int = randn(g, d, k)
        V = geo.optimal_feasible_basis(Sigma, B_int, r)
        P_free = geo.regularized_complement_projection(eye(d), B_int, 0.0)
        S_t = P_free @ Sigma @ P_free  # Eq. 87
        lam, vecs = torch.linalg.eigh(S_t)
        lam, vecs = lam.flip(0), vecs.flip(1)
        d_free = d - k
        Q_free = vecs[:, :d_free]
        scale = float(torch.trace(Sigma))
        errs += [
            float((V.T @ V - eye(r)).abs().max()),
            float((B_int.T @ V).norm() / B_int.norm()),
        ]
        opt = float(torch.trace(V.T @ S_t @ V))
        errs.append(abs(opt - float(lam[:r].sum())) / scale)  # Eq. 96
        resid = float(torch.trace((eye(d) - V @ V.T) @ Sigma))
        eq90 = float(torch.trace((eye(d) - P_free) @ Sigma)) + float(lam[r:d_free].sum())
        errs.append(abs(resid - eq90) / scale)
        captured, best_random = [], 0.0
        for _ in range(2000):
            U = _haar_feasible(g, Q_free, r)
            P = U @ U.T
            lhs = float(torch.trace((eye(d) - P) @ Sigma))  # Eq. 89
            rhs = float(torch.trace((eye(d) - P_free) @ Sigma) + torch.trace((P_free - P) @ S_t))
            errs.append(abs(lhs - rhs) / scale)
            captured.append(float(torch.trace(P @ S_t)))
            best_random = max(best_random, captured[-1])
        errs.append(gate(best_random <= opt + 1e-12 * scale))
        mean = sum(captured) / len(captured)
        sd = (sum((c - mean) ** 2 for c in captured) / (len(captured) - 1)) ** 0.5
        z = abs(mean - r / d_free * float(torch.trace(S_t))) / (sd / math.sqrt(len(captured)))
        errs.append(gate(z < 4))  # Eq. 99
        # projected gradient ascent on Tr(U^T S~ U) inside the free subspace, 8 starts
        best_search = 0.0
        for _ in range(8):
            U = _haar_feasible(g, Q_free, r)
            for _ in range(200):
                U = geo.qr_retraction(P_free @ (U + 0.2 * S_t @ U))
            best_search = max(best_search, float(torch.trace(U.T @ S_t @ U)))
        errs.append(gate(best_search <= opt + 1e-12 * scale))
        errs.append(abs(best_search - opt) / scale)
        if r == 1:  # exhaustive grid on the unit sphere of the 3-dimensional free subspace
            th = torch.linspace(0, math.pi, 181, dtype=F64)
            ph = torch.linspace(0, 2 * math.pi, 361, dtype=F64)
            T, Pp = torch.meshgrid(th, ph, indexing="ij")
            pts = torch.stack([T.sin() * Pp.cos(), T.sin() * Pp.sin(), T.cos()]).reshape(3, -1)
            v = Q_free @ pts
            grid = float(((S_t @ v) * v).sum(0).max())
            errs.append(gate(opt * (1 - 1e-3) <= grid <= opt + 1e-12 * scale))
            notes.append(f"grid max / lambda_1 = {grid / opt:.6f}")
        notes.append(
            f"d_free = {d_free}, r = {r}: optimum {opt:.3f}, best of 2000 Haar {best_random:.3f}, "
            f"Haar mean {mean:.3f} (Eq. 99: {r / d_free * float(torch.trace(S_t)):.3f})"
        )
    return Outcome(max(errs), "; ".join(notes))
