"""Claims of SD-LoRA (Eq. 3, 4, 7, 8, Algorithm 1, Thm 1 / App. A.1), checked against
``janus.core.geometry``.

SD-LoRA writes ``dW = A B`` with ``A`` (``m x r`` = ``d_out x r``) and ``B`` (``r x n`` =
``r x d_in``); the library writes ``W = W0 + s B A`` with ``A`` ``r x d_in`` and ``B``
``d_out x r``, so SD-LoRA's product ``A_k B_k`` is our ``B_k A_k``. The checks use the
library's convention and call :mod:`janus.core.geometry` through the module, so that a perturbed
formula makes them fail. float64, fixed seeds, small dimensions.

Units of the residual test: ``sdlora_kd_coefficients`` fits unit-Frobenius-norm directions
(Eq. 7 with the paper's normalisation), so its residual is the sine of the angle between the
new direction and the span of the old ones, a number in [0, 1]; ``tau = 9e-4`` (Sec. 4.1) is
compared with that number.
"""

from __future__ import annotations

import math

import torch

from janus.core import geometry as geo
from proofs._helpers import F64, gate, gen, listed, orthonormal, randn, rel, spec
from proofs.core import Outcome, claim

PAPER = "SD-LoRA"
TAU = 9e-4  # Sec. 4.1, SD-LoRA-KD residual threshold


def _lora(g: torch.Generator, d_out: int, d_in: int, r: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A random LoRA pair (A r x d_in, B d_out x r)."""
    return randn(g, r, d_in), randn(g, d_out, r)


# ---------------------------------------------------------------- Eq. 3-4


@claim("sdlora.eq3.decomposition", paper=PAPER, where="Eq. 3-4", method="numeric", tolerance=1e-12)
def eq3_decomposition() -> Outcome:
    """normalized_direction(A, B) = B A / ||B A||_F has unit norm, ||B A||_F times it is B A, and it
    is invariant under (A, B) -> (G A, B G^-1) and positive rescalings; the code's norm
    ||B||_F ||A||_F gives B A / (||B|| ||A||) (norm <= 1, = 1 for r = 1, not invariant under G);
    sdlora_delta with alpha_k = ||B_k A_k||_F (resp. ||B_k|| ||A_k|| with the code's norm)
    reconstructs vanilla LoRA W0 + sum_k B_k A_k exactly"""
    g = gen(3)
    errs, code_norms, code_shift = [], [], []
    for d_out, d_in, r in ((6, 5, 1), (6, 5, 2), (4, 7, 3)):
        A, B = _lora(g, d_out, d_in, r)
        BA = B @ A
        d = geo.normalized_direction(A, B)
        errs += [abs(float(d.norm()) - 1), rel(float(BA.norm()) * d, BA)]
        G = randn(g, r, r) + 2 * torch.eye(r, dtype=F64)
        errs.append(rel(geo.normalized_direction(G @ A, B @ torch.linalg.inv(G)), d))
        errs.append(rel(geo.normalized_direction(3.0 * A, 0.1 * B), d))
        dc = geo.normalized_direction(A, B, norm="factors")
        errs.append(rel(dc, BA / (B.norm() * A.norm())))
        code_norms.append(float(dc.norm()))
        if r == 1:
            errs.append(abs(code_norms[-1] - 1))
        else:
            errs.append(gate(code_norms[-1] < 1 - 1e-6))
            shifted = geo.normalized_direction(G @ A, B @ torch.linalg.inv(G), norm="factors")
            code_shift.append(rel(shifted, dc))
            errs.append(gate(code_shift[-1] > 1e-3))
    # Eq. 4: W0 + sum alpha_k dir_k, with the magnitudes of vanilla LoRA
    W0 = randn(g, 6, 5)
    pairs = [_lora(g, 6, 5, 2) for _ in range(3)]
    As, Bs = [p[0] for p in pairs], [p[1] for p in pairs]
    vanilla = W0 + sum(b @ a for a, b in pairs)
    alphas = [float((b @ a).norm()) for a, b in pairs]
    errs.append(rel(W0 + geo.sdlora_delta(alphas, As, Bs), vanilla))
    alphas_code = [float(b.norm() * a.norm()) for a, b in pairs]
    errs.append(rel(W0 + geo.sdlora_delta(alphas_code, As, Bs, norm="factors"), vanilla))
    return Outcome(
        max(errs),
        "code-normalised direction norms ||BA||/(||B|| ||A||) for r = 1, 2, 3: "
        f"{listed(code_norms, '.3f')}; change under (GA, BG^-1): {listed(code_shift, '.2f')}",
    )


# ---------------------------------------------------------------- Eq. 7-8, Algorithm 1


def _old_directions(g: torch.Generator, k: int = 3) -> list[torch.Tensor]:
    return [geo.normalized_direction(*_lora(g, 6, 5, 2)) for _ in range(k)]


def _with_residual(
    g: torch.Generator, old: list[torch.Tensor], coeffs: torch.Tensor, t: float
) -> torch.Tensor:
    """A unit direction at residual (sine of angle to span(old)) exactly t."""
    comb = sum(c * d for c, d in zip(coeffs, old, strict=True))
    comb = comb / comb.norm()
    M = torch.stack([d.reshape(-1) for d in old], 1)
    z = randn(g, comb.numel())
    z = z - M @ torch.linalg.lstsq(M, z[:, None]).solution[:, 0]
    orth = (z / z.norm()).reshape(comb.shape)
    return math.sqrt(1 - t**2) * comb + t * orth


@claim("sdlora.eq7.kd", paper=PAPER, where="Eq. 7-8, Alg. 1 lines 10-12", method="numeric",
       tolerance=1e-10)
def eq7_kd() -> Outcome:
    """sdlora_kd_coefficients returns the least-squares coefficients of Eq. 7 (= the normal
    equations, zero autograd gradient) and the residual norm; a direction in the span has
    residual ~ 0 <= tau = 9e-4 and is absorbed, a random LoRA direction (residual ~ 1) and one at
    residual 2 tau are kept, one at 0.5 tau is absorbed (unit-norm directions: residual = sine of
    the angle to the span); the absorbed magnitudes alpha_k + alpha_t c_k leave W unchanged up to
    alpha_t times the residual"""
    g = gen(7)
    old = _old_directions(g)
    M = torch.stack([d.reshape(-1) for d in old], 1)
    alphas, alpha_t = torch.tensor([1.3, 0.9, 0.6], dtype=F64), 0.8
    c_true = torch.tensor([0.5, -1.2, 0.7], dtype=F64)
    cases = {
        "in span": (_with_residual(g, old, c_true, 0.0), True),
        "random": (geo.normalized_direction(*_lora(g, 6, 5, 2)), False),
        "0.5 tau": (_with_residual(g, old, c_true, 0.5 * TAU), True),
        "2 tau": (_with_residual(g, old, c_true, 2 * TAU), False),
    }
    errs, notes = [], []
    for name, (new, absorb) in cases.items():
        coeffs, residual = geo.sdlora_kd_coefficients(new, old)
        normal = torch.linalg.solve(M.T @ M, M.T @ new.reshape(-1))
        errs.append(rel(coeffs, normal))
        c = coeffs.clone().requires_grad_(True)
        obj = (new - sum(ci * d for ci, d in zip(c, old, strict=True))).pow(2).sum()
        (grad,) = torch.autograd.grad(obj, c)
        errs.append(float(grad.norm()))
        errs.append(abs(residual - math.sqrt(float(obj.detach()))))
        if name.endswith("tau"):
            t = (0.5 if name.startswith("0.5") else 2) * TAU
            errs.append(abs(residual - t) / t)
        errs.append(gate((residual <= TAU) == absorb))
        W_before = alpha_t * new + sum(a * d for a, d in zip(alphas, old, strict=True))
        new_alphas = geo.sdlora_absorb_magnitudes(alphas, alpha_t, coeffs)
        W_after = sum(a * d for a, d in zip(new_alphas, old, strict=True))
        errs.append(abs(float((W_before - W_after).norm()) - alpha_t * residual))
        notes.append(f"{name}: {residual:.1e}")
    # Alg. 1 line 11 literally (unnormalised products): the residual carries the scale of A_t B_t
    A, B = _lora(g, 6, 5, 2)
    Bs_old = [_lora(g, 6, 5, 2) for _ in range(3)]
    raw_old = [b @ a for a, b in Bs_old]
    _, raw1 = geo.sdlora_kd_coefficients(B @ A, raw_old)
    _, raw10 = geo.sdlora_kd_coefficients(10 * B @ A, raw_old)
    unit_old = [geo.normalized_direction(a, b) for a, b in Bs_old]
    _, unit = geo.sdlora_kd_coefficients(geo.normalized_direction(A, B), unit_old)
    return Outcome(
        max(errs),
        "residuals " + ", ".join(notes) + f" (tau = {TAU:g}); line 11 on raw products: residual "
        f"{raw1:.2f}, x10 for 10 A_t B_t ({raw10:.2f}), vs {unit:.3f} on unit directions",
    )


@claim("sdlora.eq8.printed", paper=PAPER, where="Eq. 8, Alg. 1 line 12", method="numeric",
       tolerance=1e-12, finding=True)
def eq8_printed() -> Outcome:
    """Eq. 8 as printed, alpha_k + dalpha_k, drops the new magnitude alpha_t: it changes W by
    (1 - alpha_t) sum_k dalpha_k dir_k even for a direction exactly in the span (unless
    alpha_t = 1); alpha_k + alpha_t dalpha_k is exact (consistency, the checked error)"""
    g = gen(8)
    old = _old_directions(g)
    alphas = torch.tensor([1.3, 0.9, 0.6], dtype=F64)
    new = _with_residual(g, old, torch.tensor([0.5, -1.2, 0.7], dtype=F64), 0.0)
    coeffs, _ = geo.sdlora_kd_coefficients(new, old)
    errs, shifts = [], []
    for alpha_t in (0.8, 0.3, 1.0):
        W = alpha_t * new + sum(a * d for a, d in zip(alphas, old, strict=True))
        for printed in (False, True):
            a_new = geo.sdlora_absorb_magnitudes(alphas, alpha_t, coeffs, as_printed=printed)
            W_after = sum(a * d for a, d in zip(a_new, old, strict=True))
            if printed:
                shifts.append(rel(W_after, W))
                expected = abs(1 - alpha_t) * float(new.norm())
                errs.append(abs(float((W_after - W).norm()) - expected))
            else:
                errs.append(rel(W_after, W))
    return Outcome(
        max(errs),
        "printed Eq. 8: relative change of W for alpha_t = 0.8 (the code's initial magnitude), "
        "0.3, 1.0: " + listed(shifts, ".3f"),
    )


# ---------------------------------------------------------------- Thm 1, App. A.1


def lora_gd(
    target: torch.Tensor, A: torch.Tensor, B: torch.Tensor, eta: float, steps: int
) -> list[torch.Tensor]:
    """Gradient descent on 1/2||B A - target||^2 (SD-LoRA's A.10 in our convention)."""
    products = [B @ A]
    for _ in range(steps):
        gA, gB = geo.lora_factor_gradients(B @ A - target, A, B, 1.0)
        A, B = A - eta * gA, B - eta * gB
        if not torch.isfinite(B @ A).all():  # diverged (a wrong formula): stop here
            break
        products.append(B @ A)
    return products


def logistic_times(
    U: torch.Tensor, V: torch.Tensor, sigma: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
    eta: float,
) -> list[float]:
    """Thm 1's linearised-logistic prediction of the GD step at which component k of
    dW* = U diag(sigma) V^T reaches sigma_k / 2 from the small initialisation (A, B), one per
    rank of A: ln(sigma_k / p_k(0)) / (2 ln(1 + eta sigma_k)), p_k(0) = ||e_k^T Z0||^2 / 2 with
    e_k = (u_k, v_k) / sqrt(2) and Z0 = [B; A^T] (linear regime Z+ = Z + eta [[0, T], [T^T, 0]] Z).
    """
    Z0 = torch.cat([B, A.T])
    times = []
    for k in range(A.shape[0]):
        e_k = torch.cat([U[:, k], V[:, k]]) / math.sqrt(2)
        p0 = float((e_k @ Z0).pow(2).sum()) / 2
        times.append(math.log(sigma[k] / p0) / (2 * math.log(1 + eta * sigma[k])))
    return times


@claim("sdlora.thm1.sequential", paper=PAPER, where="Thm 1, App. A.1 (Eq. 5, A.10)",
       method="numeric", tolerance=1e-10, finding=True)
def thm1_sequential() -> Outcome:
    """measured: GD from small initialisation on 1/2||B A - dW*||^2 learns the singular components
    one after another, in decreasing order of sigma_k, at times close to the linearised-logistic
    prediction ln(sigma_k / p_k(0)) / (2 ln(1 + eta sigma_k)), and passes near each rank-k
    truncation dW^[k] (Eq. 5); with a large initialisation the components are learned together;
    consistency (the checked error): the dynamics are scale-covariant (c dW*, eta / c, sqrt(c) init
    gives c times the products), order and plateaus hold"""
    g = gen(11)
    d_out, d_in, r, eta, steps = 8, 7, 3, 0.05, 420
    sigma = torch.tensor([4.0, 2.0, 1.0, 0.25, 0.1, 0.05, 0.02], dtype=F64)
    U, V = orthonormal(g, d_out, 7), orthonormal(g, d_in, 7)
    target = U @ torch.diag(sigma) @ V.T
    A0, B0 = randn(g, r, d_in), randn(g, d_out, r)
    errs, lines = [], []
    times: dict[str, list[int]] = {}
    for label, rho in (("small", 1e-4), ("large", 0.5)):
        A, B = rho * A0, rho * B0
        prods = lora_gd(target, A, B, eta, steps)
        modes = torch.stack([torch.diagonal(U.T @ P @ V)[:r] for P in prods])  # u_k^T BA v_k
        t_k = []
        for k in range(r):
            hit = (modes[:, k] >= sigma[k] / 2).nonzero()
            t_k.append(int(hit[0]) if len(hit) else steps + 1)
        times[label] = t_k
        if label == "small":
            pred = logistic_times(U, V, sigma, A, B, eta)
            lines.append(
                "times to reach sigma_k/2 (small init): measured "
                + ", ".join(map(str, t_k))
                + ", predicted "
                + listed(pred, ".0f")
            )
            errs.append(gate(t_k[0] < t_k[1] < t_k[2] <= steps))
            plateau = []
            for k in range(1, r + 1):
                trunc = U[:, :k] @ torch.diag(sigma[:k]) @ V[:, :k].T
                plateau.append(min(spec(P - trunc) for P in prods) / float(sigma[0]))
            errs.append(gate(max(plateau) < 0.02))
            lines.append(
                "min_t ||BA - dW^[k]||_op / sigma_1 = " + listed(plateau, ".1e")
            )
            lines.append(
                "t_k eta sigma_k / ln(1/rho): "
                + ", ".join(
                    f"{t * eta * float(s) / math.log(1 / rho):.2f}"
                    for t, s in zip(t_k, sigma[:r], strict=True)
                )
            )
    big, small = times["large"], times["small"]
    lines.append(
        f"large init (0.5): times {', '.join(map(str, big))}; spread t_3/t_1 "
        f"{big[2] / big[0]:.1f} vs {small[2] / small[0]:.1f}"
    )
    # dimensional analysis: eta must scale as 1/sigma (Thm 2's sigma_j^2/sigma_1^3 does,
    # Thm 1's sigma_j^2/sigma_1 does not)
    c = 7.0
    base = lora_gd(target, 1e-2 * A0, 1e-2 * B0, eta, 60)
    scaled = lora_gd(c * target, math.sqrt(c) * 1e-2 * A0, math.sqrt(c) * 1e-2 * B0, eta / c, 60)
    errs.append(max(rel(s, c * b) for s, b in zip(scaled, base, strict=True)))
    return Outcome(max(errs), "; ".join(lines))
