"""EBLoRA (public code): the polar retraction and the tangent projections of the Stiefel
manifold and of the restricted Stiefel manifold ``{Vt : Vt Vt^T = I, Vt P = 0}``.

EBLoRA writes ``dW = s U Vt`` with ``U`` (d_out x r) and ``Vt`` (r x d_in) on Stiefel manifolds.
"""

from __future__ import annotations

import torch


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
