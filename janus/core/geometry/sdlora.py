"""SD-LoRA: the normalised direction (Eq. 3), the magnitude-weighted update (Eq. 4), the
knowledge-distillation coefficients (Eq. 7, Alg. 1 lines 10-11) and the absorbed magnitudes
(Eq. 8, Alg. 1 line 12).

SD-LoRA writes ``dW = A B`` with ``A`` (m x r = d_out x r) and ``B`` (r x n = r x d_in): its
``A`` is our ``B`` and its ``B`` is our ``A``, so its product ``A_k B_k`` is our ``B_k A_k``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


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
