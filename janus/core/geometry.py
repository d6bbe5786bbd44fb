"""The linear algebra of Janus-LoRA Sec. 3.3 and Appendix A, as plain torch functions.

Conventions (as in :mod:`janus.model.lora`): a weight (or weight update) is ``d_out x d_in``
and acts as ``y = W x``; LoRA writes ``W = W0 + s B A`` with ``A`` of shape ``r x d_in`` and
``B`` of shape ``d_out x r``. Past inputs are the *columns* of ``X_past`` (``d_in x N``), so an
update is "safe" when ``dW X_past = 0``; an orthonormal basis ``V`` of the protected subspace is
``d_in x k``. Online Estimation (Eq. 8-10) instead takes a mini-batch ``X`` as ``batch x d_in``
(rows are samples), as the paper does. Everything works in any floating dtype; the proofs use
float64.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch


def orthogonal_complement_projector(V: torch.Tensor) -> torch.Tensor:
    """Janus-LoRA Eq. 3 / Sec. 3.2: ``I - V V^T``, the projector onto span(V)^perp."""
    eye = torch.eye(V.shape[0], dtype=V.dtype, device=V.device)
    return eye - V @ V.T


def complement_basis(V: torch.Tensor) -> torch.Tensor:
    """An orthonormal basis (``d x (d - k)``) of span(V)^perp, ``V`` orthonormal ``d x k``."""
    k = V.shape[1]
    return torch.linalg.eigh(orthogonal_complement_projector(V))[1][:, k:]


def safe_update(delta_w: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
    """Janus-LoRA Thm 3.1, Eq. 3 with orthonormal V: ``dW (I - V V^T)``.

    Computed as ``dW - (dW V) V^T``, without forming the ``d_in x d_in`` projector.
    """
    return delta_w - (delta_w @ V) @ V.T


def safe_update_from_inputs(
    delta_w: torch.Tensor, X_past: torch.Tensor, rtol: float | None = None
) -> torch.Tensor:
    """Janus-LoRA App. A.1, Eq. 25: ``dW (I - X (X^T X)^+ X^T)`` for past inputs X (d_in x N).

    Uses the identity ``X (X^T X)^+ X^T = X X^+`` (Moore-Penrose pseudo-inverse), so a
    rank-deficient ``X_past`` is handled; ``rtol`` is passed to :func:`torch.linalg.pinv`.
    """
    return delta_w - (delta_w @ X_past) @ torch.linalg.pinv(X_past, rtol=rtol)


def lora_factor_gradients(
    grad_w: torch.Tensor, A: torch.Tensor, B: torch.Tensor, s: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Janus-LoRA Eq. 4 (transposes corrected): ``dL/dA = s B^T G`` (r x d_in), ``dL/dB = s G A^T``.

    ``G = dL/dW`` (d_out x d_in) for ``W = W0 + s B A``.
    """
    return s * (B.T @ grad_w), s * (grad_w @ A.T)


def composite_update(
    delta_A: torch.Tensor,
    delta_B: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    s: float,
    second_order: bool = False,
) -> torch.Tensor:
    """Janus-LoRA Eq. 5 / A.2 Eq. 26: ``s (B dA + dB A)``, plus ``s dB dA`` if ``second_order``.

    With ``second_order=True`` this is exactly ``W(A + dA, B + dB) - W(A, B)``.
    """
    out = s * (B @ delta_A + delta_B @ A)
    if second_order:
        out = out + s * (delta_B @ delta_A)
    return out


def rectify_factor_updates(
    delta_w_safe: torch.Tensor, A: torch.Tensor, B: torch.Tensor, s: float, gamma: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Janus-LoRA Gradient Rectification, Eq. 6-7 (App. A.2 Eq. 27-39): rectified ``(dA, dB)``.

    ``gamma`` is the Tikhonov coefficient of the ridge objectives Eq. 27 and Eq. 34,
    ``1/2 ||dW_safe - s B dA||^2 + gamma/2 ||dA||^2`` and
    ``1/2 ||R - s dB A||^2 + gamma/2 ||dB||^2``.
    Their minimisers are Eq. 32 and Eq. 39, written with ``delta = gamma / s**2``:
    ``dA = (1/s) (B^T B + delta I)^-1 B^T dW_safe``, ``R = dW_safe - s B dA`` (Eq. 33) and
    ``dB = (1/s) R A^T (A A^T + delta I)^-1``. ``gamma = 0`` needs ``B`` of full column rank and
    ``A`` of full row rank (a fresh LoRA pair has ``B = 0``, so then ``gamma > 0``).
    """
    return rectify_from_products(B.T @ delta_w_safe, delta_w_safe @ A.T, A, B, s, gamma)


def rectify_from_products(
    bt_w: torch.Tensor,
    w_at: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    s: float,
    gamma: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Janus-LoRA Eq. 6-7 from the only two products of ``dW_safe`` they use.

    ``bt_w = B^T dW_safe`` (r x d_in) and ``w_at = dW_safe A^T`` (d_out x r); the residual
    enters Eq. 7 only as ``R A^T = w_at - s B dA A^T``. This lets a training step rectify
    without ever forming the d_out x d_in matrix ``dW_safe``.
    """
    if gamma < 0:
        raise ValueError(f"the ridge coefficient gamma must be >= 0, got {gamma}")
    delta = gamma / s**2
    eye = torch.eye(A.shape[0], dtype=A.dtype, device=A.device)
    delta_A = torch.linalg.solve(B.T @ B + delta * eye, bt_w) / s
    r_at = w_at - s * (B @ (delta_A @ A.T))
    # dB (A A^T + delta I) = (1/s) R A^T, solved from the symmetric left-hand side.
    delta_B = torch.linalg.solve(A @ A.T + delta * eye, r_at.T).T / s
    return delta_A, delta_B


def projected_gradient_products(
    bt_g: torch.Tensor,
    g_at: torch.Tensor,
    gw_v: torch.Tensor,
    V: torch.Tensor,
    A: torch.Tensor,
    keep: float = 1.0,
    basis_weight: float = -1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``B^T G_W Pi`` and ``G_W Pi A^T`` for ``Pi = keep I + basis_weight V V^T``, from
    ``bt_g = B^T G_W``, ``g_at = G_W A^T`` and ``gw_v = G_W V`` (d_out x k): the two products
    of a projected gradient that :func:`rectify_from_products` needs, without forming G_W.

    The defaults give Janus-LoRA's safe gradient ``G_W (I - V V^T)`` (Thm 3.1, Eq. 3);
    ``keep = 0, basis_weight = 1/sqrt(k)`` gives LoRA-DRS's ``G_W U U^T / ||U U^T||_F``.
    """
    return (
        keep * bt_g + basis_weight * ((bt_g @ V) @ V.T),
        keep * g_at + basis_weight * (gw_v @ (V.T @ A.T)),
    )


def exactly_safe_factor_steps(
    delta_A: torch.Tensor, delta_B: torch.Tensor, A: torch.Tensor, V: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Factor steps whose *exact* composite update vanishes on span(V) (our addition, see
    proofs/ERRATA.md: GR alone leaves the leak ``s dB A V``).

    Returns ``dA' = dA (I - V V^T)`` and ``dB' = dB (I - M M^+)`` with ``M = A V`` (r x k).
    Then ``(B + dB')(A + dA') V - B A V = B dA' V + dB' M + dB' dA' V = 0`` for every B and s.
    ``dB'`` is the closest matrix to ``dB`` (Frobenius) with ``dB' M = 0``; when ``M`` has full
    row rank (generic for k >= r) it is zero, i.e. B is frozen while a history exists.
    """
    safe_A = safe_update(delta_A, V)
    M = A @ V
    safe_B = delta_B - (delta_B @ M) @ torch.linalg.pinv(M)
    return safe_A, safe_B


def reconstruction_loss(X: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
    """Janus-LoRA Eq. 8: ``1/2 ||X - X V V^T||_F^2`` for a batch X (batch x d_in), V (d_in x k)."""
    return 0.5 * (X - (X @ V) @ V.T).pow(2).sum()


def reconstruction_gradient(X: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
    """Janus-LoRA Eq. 8-9: Euclidean gradient of Eq. 8 in V, ``-(X^T E + E^T X) V``.

    ``E = X - X V V^T``. For any V (not only orthonormal); on the Stiefel manifold it reduces
    to ``-(I - V V^T) X^T X V``.
    """
    XV = X @ V
    E = X - XV @ V.T
    return -(X.T @ (E @ V) + E.T @ XV)


def qr_retraction(V_tilde: torch.Tensor) -> torch.Tensor:
    """Janus-LoRA Eq. 10: the Q factor of the thin QR of V_tilde, signed so that diag(R) >= 0.

    The sign convention makes the map unique for full-rank input and continuous, so that
    ``qr_retraction(V) = V`` for orthonormal V (a retraction on the Stiefel manifold).
    """
    Q, R = torch.linalg.qr(V_tilde, mode="reduced")
    signs = torch.sign(torch.diagonal(R))
    signs = torch.where(signs == 0, torch.ones_like(signs), signs)
    return Q * signs


def online_estimation_step(
    V: torch.Tensor, X: torch.Tensor, lr: float | torch.Tensor
) -> torch.Tensor:
    """Janus-LoRA Eq. 9-10: one OE step, ``qr_retraction(V - lr * grad_V L_recon(V))``
    (``lr`` a number or a 0-dim tensor)."""
    return qr_retraction(V - lr * reconstruction_gradient(X, V))


# ---------------------------------------------------------------- SeqLoRA, SD-LoRA, EBLoRA
#
# SeqLoRA writes W = W0 + A B^T with A (n x r = d_out x r) and B (m x r = d_in x r): its B is
# the *input* basis, i.e. our A^T, and its A is our s B. SD-LoRA writes dW = A B with
# A (m x r = d_out x r) and B (r x n = r x d_in): its A is our B and its B is our A, so its
# product A_k B_k is our B_k A_k. EBLoRA (code) writes dW = s U Vt with U (d_out x r) and
# Vt (r x d_in) on Stiefel manifolds.


def _as_tuple(x: torch.Tensor | Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    return (x,) if isinstance(x, torch.Tensor) else tuple(x)


def _like(structure: torch.Tensor | Sequence[torch.Tensor], values: tuple[torch.Tensor, ...]):
    """``values`` in the structure of ``structure``: one tensor, or the tuple itself."""
    return values[0] if isinstance(structure, torch.Tensor) else values


def regularized_complement_projection(
    B: torch.Tensor, bases: torch.Tensor | Sequence[torch.Tensor], eps: float
) -> torch.Tensor:
    """SeqLoRA Eq. 17 / Alg. 1 line 20: ``[I - B_int (B_int^T B_int + eps I)^-1 B_int^T] B``.

    ``B`` is SeqLoRA's input basis (``d_in x r``, our ``A^T``); ``bases`` is
    ``B_int = [B_1, ..., B_{i-1}]`` (``d_in x k``, a tensor or a sequence concatenated along
    columns). ``eps = 0`` is the exact projection of Eq. 17, the minimiser of Eq. 13 (computed
    as ``B - B_int B_int^+ B``, so a rank-deficient ``B_int`` is allowed); ``eps > 0`` is the
    regularised projection of Algorithm 1, which differs from it by
    ``eps B_int G^-1 (G + eps I)^-1 B_int^T B`` (``G = B_int^T B_int``): O(eps / sigma_min^2),
    not scale-invariant in ``B_int``.
    """
    if eps < 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    B_int = bases if isinstance(bases, torch.Tensor) else torch.cat(list(bases), dim=1)
    if B_int.numel() == 0:
        return B.clone()
    if eps == 0:
        return B - B_int @ (torch.linalg.pinv(B_int) @ B)
    gram = B_int.T @ B_int
    eye = torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device)
    return B - B_int @ torch.linalg.solve(gram + eps * eye, B_int.T @ B)


def cross_hessian_operator(
    loss_fn: Callable[..., torch.Tensor],
    A: torch.Tensor | Sequence[torch.Tensor],
    B: torch.Tensor | Sequence[torch.Tensor],
) -> tuple[tuple[torch.Tensor, ...], Callable[..., torch.Tensor | tuple[torch.Tensor, ...]]]:
    """``(grad_A L(A, B), H)`` with ``H(g_A) = grad_B <g_A, grad_A L(A, B)>`` (SeqLoRA Eq. 16).

    One forward and one differentiable backward build the graph of ``grad_A L`` at ``(A, B)``;
    every call of ``H`` is one more backward through it, so Alg. 1's local B-steps, which all
    contract at the same point ``(A^(k), B^(k))`` (line 17), share it. ``A`` (lower level) and
    ``B`` (upper level) are tensors or sequences of tensors (several layers: the contraction
    then includes the cross-layer blocks); ``g_A`` has the structure of ``A`` and ``H(g_A)``
    that of ``B``, zero where ``grad_A L`` does not depend on ``B``.
    """
    As = tuple(a.detach().requires_grad_(True) for a in _as_tuple(A))
    Bs = tuple(b.detach().requires_grad_(True) for b in _as_tuple(B))
    with torch.enable_grad():
        grads_A = torch.autograd.grad(loss_fn(_like(A, As), _like(B, Bs)), As, create_graph=True)

    def apply(g_A: torch.Tensor | Sequence[torch.Tensor]):
        with torch.enable_grad():
            inner = sum(
                (ga * g.detach()).sum() for ga, g in zip(grads_A, _as_tuple(g_A), strict=True)
            )
            if not inner.requires_grad:
                return _like(B, tuple(torch.zeros_like(b) for b in Bs))
            out = torch.autograd.grad(inner, Bs, retain_graph=True, allow_unused=True)
        return _like(
            B, tuple(torch.zeros_like(b) if o is None else o for o, b in zip(out, Bs, strict=True))
        )

    return tuple(g.detach() for g in grads_A), apply


def cross_hessian_vector_product(
    loss_fn: Callable[..., torch.Tensor],
    A: torch.Tensor | Sequence[torch.Tensor],
    B: torch.Tensor | Sequence[torch.Tensor],
    g_A: torch.Tensor | Sequence[torch.Tensor],
) -> torch.Tensor | tuple[torch.Tensor, ...]:
    """SeqLoRA Eq. 16: ``H_AB[g_A] = grad_B <g_A, grad_A L(A, B)>``, by double backward
    (one contraction of :func:`cross_hessian_operator`)."""
    return cross_hessian_operator(loss_fn, A, B)[1](g_A)


def partial_grads(
    loss_fn: Callable[..., torch.Tensor],
    A: torch.Tensor | Sequence[torch.Tensor],
    B: torch.Tensor | Sequence[torch.Tensor],
) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    """Partial gradients ``(grad_A L, grad_B L)`` as tuples (zeros where L does not depend)."""
    As = tuple(a.detach().requires_grad_(True) for a in _as_tuple(A))
    Bs = tuple(b.detach().requires_grad_(True) for b in _as_tuple(B))
    with torch.enable_grad():
        grads = torch.autograd.grad(loss_fn(_like(A, As), _like(B, Bs)), As + Bs, allow_unused=True)
    grads = tuple(
        torch.zeros_like(x) if g is None else g for g, x in zip(grads, As + Bs, strict=True)
    )
    return grads[: len(As)], grads[len(As) :]


def bilevel_reduced_gradient(
    loss_fn: Callable[..., torch.Tensor],
    A: torch.Tensor | Sequence[torch.Tensor],
    B: torch.Tensor | Sequence[torch.Tensor],
    alpha: float,
) -> torch.Tensor | tuple[torch.Tensor, ...]:
    """SeqLoRA Eq. 15 (Alg. 1 lines 9-18, one local step): the gradient of the reduced
    objective ``Phi(B) = L(A - alpha grad_A L(A, B), B)`` (Eq. 9) at ``(A, B) = (A^(k), B^(k))``.

    ``grad Phi = grad_B L(A~, B) - alpha H_AB(A, B)[grad_A L(A~, B)]`` with
    ``A~ = A - alpha grad_A L(A, B)`` and ``H_AB`` of Eq. 16 (the cross-Hessian at ``A``, not
    ``A~``). Structures as in :func:`cross_hessian_operator`.
    """
    grad_A, H = cross_hessian_operator(loss_fn, A, B)
    A_tilde = tuple(a.detach() - alpha * g for a, g in zip(_as_tuple(A), grad_A, strict=True))
    g_A, g_B = partial_grads(loss_fn, _like(A, A_tilde), B)
    return _like(B, reduced_gradient(g_B, _as_tuple(H(g_A)), alpha))


def reduced_gradient(
    g_B: Sequence[torch.Tensor], hvp: Sequence[torch.Tensor], alpha: float
) -> tuple[torch.Tensor, ...]:
    """SeqLoRA Eq. 15 / Alg. 1 line 18: ``grad Phi = g_B - alpha H_AB[g_A]``, per tensor."""
    return tuple(gb - alpha * h for gb, h in zip(g_B, hvp, strict=True))


def normalized_direction(A: torch.Tensor, B: torch.Tensor, norm: str = "product") -> torch.Tensor:
    """SD-LoRA Eq. 3: the direction of the LoRA product ``B A`` (SD-LoRA's ``A_k B_k``).

    ``norm="product"`` (default, the paper): ``B A / ||B A||_F``, unit Frobenius norm and
    invariant under ``(A, B) -> (G A, B G^-1)``; ``norm="factors"`` (the official code):
    ``B A / (||B||_F ||A||_F)``, whose norm is ``<= 1`` (``= 1`` only for rank one) and which
    depends on the factorisation. ``A`` is ``r x d_in``, ``B`` is ``d_out x r``.
    """
    product = B @ A
    if norm == "product":
        return product / product.norm()
    if norm == "factors":
        return product / (B.norm() * A.norm())
    raise ValueError(f"norm must be 'product' or 'factors', got {norm!r}")


def sdlora_delta(
    alphas: Sequence[float] | torch.Tensor,
    As: Sequence[torch.Tensor],
    Bs: Sequence[torch.Tensor],
    norm: str = "product",
) -> torch.Tensor:
    """SD-LoRA Eq. 4: ``sum_k alpha_k normalized_direction(A_k, B_k)`` (W = W0 + this)."""
    terms = [
        alpha * normalized_direction(A, B, norm) for alpha, A, B in zip(alphas, As, Bs, strict=True)
    ]
    return torch.stack(terms).sum(0)


def sdlora_kd_coefficients(
    new_dir: torch.Tensor, old_dirs: Sequence[torch.Tensor]
) -> tuple[torch.Tensor, float]:
    """SD-LoRA Eq. 7 / Alg. 1 lines 10-11: ``argmin_c ||new - sum_k c_k old_k||_F^2`` and the
    residual norm ``||new - sum_k c_k old_k||_F`` (not squared).

    With unit-norm directions (``normalized_direction``, paper norm) the residual is the sine
    of the angle between ``new_dir`` and ``span(old_dirs)``, in [0, 1]: the units in which the
    paper's ``tau = 9e-4`` is compared here. Solved by ``lstsq`` on the vectorised directions
    (minimum-norm coefficients if they are linearly dependent).
    """
    M = torch.stack([d.reshape(-1) for d in old_dirs], dim=1)
    coeffs = torch.linalg.lstsq(M, new_dir.reshape(-1, 1), driver="gelsd").solution[:, 0]
    residual = float((new_dir.reshape(-1) - M @ coeffs).norm())
    return coeffs, residual


def sdlora_absorb_magnitudes(
    alphas: torch.Tensor, alpha_new: float, coeffs: torch.Tensor, as_printed: bool = False
) -> torch.Tensor:
    """SD-LoRA Eq. 8 / Alg. 1 line 12: the old magnitudes after absorbing the new direction.

    The new term ``alpha_t dir_t = alpha_t sum_k c_k dir_k`` (up to the residual) is absorbed
    exactly by ``alpha_k + alpha_t c_k`` (default). ``as_printed=True`` gives the paper's
    ``alpha_k + c_k``, which preserves ``W`` only when ``alpha_t = 1``.
    """
    return alphas + (coeffs if as_printed else alpha_new * coeffs)


def polar_retraction(M: torch.Tensor) -> torch.Tensor:
    """EBLoRA (code): ``U V^T`` of the thin SVD ``M = U S V^T``, the polar factor of M.

    For full-rank M it is the nearest matrix (Frobenius) with orthonormal columns (tall M) or
    rows (wide M), equal to ``M (M^T M)^-1/2`` resp. ``(M M^T)^-1/2 M``; a retraction on the
    Stiefel manifold (``polar_retraction(X) = X`` for orthonormal X).
    """
    U, _, Vh = torch.linalg.svd(M, full_matrices=False)
    return U @ Vh


def stiefel_tangent_projection(X: torch.Tensor, G: torch.Tensor) -> torch.Tensor:
    """EBLoRA (code): orthogonal projection of G onto the tangent space of the Stiefel
    manifold at X: ``G - X sym(X^T G)`` for orthonormal columns (tall X, ``X^T X = I``),
    ``G - sym(G X^T) X`` for orthonormal rows (wide X, ``X X^T = I``); ``sym(M) = (M + M^T)/2``.
    """
    if X.shape[0] >= X.shape[1]:
        XtG = X.T @ G
        return G - X @ (XtG + XtG.T) / 2
    GXt = G @ X.T
    return G - (GXt + GXt.T) / 2 @ X


def restricted_tangent_projection(
    Vt: torch.Tensor, G: torch.Tensor, protected_basis: torch.Tensor
) -> torch.Tensor:
    """EBLoRA (code): projection of G onto the tangent space at Vt (``r x d_in``, orthonormal
    rows, ``Vt P = 0``) of the restricted Stiefel manifold ``{Vt : Vt Vt^T = I, Vt P = 0}``,
    P = ``protected_basis`` (``d_in x k``, orthonormal columns: earlier tasks' input subspace).

    ``stiefel_tangent_projection(Vt, G (I - P P^T))``: the result Z satisfies ``Z P = 0`` and
    ``sym(Z Vt^T) = 0``, so a step ``Vt - lr Z`` followed by :func:`polar_retraction` keeps
    ``Vt P = 0`` (the polar factor of a wide M has the row space of M).
    """
    G_free = G - (G @ protected_basis) @ protected_basis.T
    return stiefel_tangent_projection(Vt, G_free)


def optimal_feasible_basis(
    Sigma: torch.Tensor, bases: torch.Tensor | Sequence[torch.Tensor], r: int
) -> torch.Tensor:
    """SeqLoRA Thm 7 (App. C.2, Eq. 84-90): an orthonormal ``d_in x r`` basis of the top-r
    eigenspace of the compressed covariance ``P_free Sigma P_free`` (Eq. 87),
    ``P_free = I - B_int (B_int^T B_int)^+ B_int^T`` (Eq. 85): the feasible rank-r subspace
    that captures the most energy ``Tr(P Sigma)`` (Eq. 96). ``Sigma`` is the ``d_in x d_in``
    input covariance; needs ``r <= d_in - rank(B_int)``.
    """
    eye = torch.eye(Sigma.shape[0], dtype=Sigma.dtype, device=Sigma.device)
    P_free = regularized_complement_projection(eye, bases, 0.0)
    compressed = P_free @ Sigma @ P_free
    compressed = (compressed + compressed.T) / 2
    _, vecs = torch.linalg.eigh(compressed)
    return vecs[:, -r:].flip(1)


def grown_basis(
    protected: torch.Tensor, gram: torch.Tensor, threshold: float, max_dim: int
) -> torch.Tensor:
    """GPM (Saha et al. 2021, Eq. 8-9) on the Gram ``R R^T`` of a task's layer inputs: append
    the fewest top eigenvectors of the residual ``(I - PP^T) R R^T (I - PP^T)`` such that the
    energy of ``R`` captured by P and them reaches ``threshold`` of ``||R||_F^2``; at most
    ``max_dim`` columns in all."""
    total = float(torch.trace(gram))
    if total <= 0 or protected.shape[1] >= max_dim:
        return protected
    q = orthogonal_complement_projector(protected)
    residual = torch.linalg.eigvalsh(q @ gram @ q).flip(0)
    need = threshold * total - (total - float(residual.sum()))
    if need <= 0:
        return protected
    k = int((residual.cumsum(0) < need).sum()) + 1
    k = min(k, max_dim - protected.shape[1], int((residual > 1e-12 * total).sum()))
    if k == 0:
        return protected
    new = optimal_feasible_basis(gram, protected, k)
    return qr_retraction(torch.cat([protected, new], dim=1))


def first_task_gpm_basis(gram: torch.Tensor, threshold: float, max_dim: int) -> torch.Tensor:
    """InfLoRA's code for GPM's first task (official ``methods/inflora.py`` line 332): the top
    eigenvectors of ``gram`` whose energy ratios' running sum stays *below* ``threshold``, at
    least one and at most ``max_dim``; one fewer than :func:`grown_basis` from an empty basis
    (the smallest count reaching the threshold) when the threshold is not hit exactly."""
    values, vectors = torch.linalg.eigh(gram)
    values, vectors = values.flip(0), vectors.flip(1)
    total = float(values.sum())
    if total <= 0:
        return vectors[:, :0]
    k = max(int((values.cumsum(0) / total < threshold).sum()), 1)
    return vectors[:, : min(k, max_dim)].contiguous()
