"""Janus-LoRA (Sec. 3.2-3.3, App. A.1-A.2): the safe update (Thm 3.1, Eq. 3, 25), the LoRA
factor gradients and composite update (Eq. 4-5, 26), Gradient Rectification (Eq. 6-7, 27-39)
and Online Estimation with its QR retraction (Eq. 8-10).

Conventions: see :mod:`janus.core.geometry`.
"""

from __future__ import annotations

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
